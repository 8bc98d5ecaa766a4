from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted
from ..analysis.model import MODULE, NON_REENTRANT, ModuleModel
from ._race import ref_at
from .base import Finding, Rule, RuleContext
from .thr007_lock_order_inversion import _release_ref, display, held_refs, lock_key, transitive_takes


class LockReacquiredWhileHeld(Rule):
    """
    ## What it does
    Flags a non-reentrant `threading.Lock` acquired again by the thread that already
    holds it: a nested `with lock:`, or a call made while holding the lock to a
    function or method of the module that takes it again.

    ## Why is this bad?
    A `Lock` does not know its owner: the second `acquire()` waits for a release that
    can only come from the thread now waiting. The thread deadlocks on itself, and
    every other thread needing the lock hangs behind it.

    ## Example
    ```python
    class Cache:
        def __init__(self):
            self._lock = threading.Lock()

        def put(self, key, value):
            with self._lock:
                self._data[key] = value
                self._evict()

        def _evict(self):
            with self._lock:
                ...
    ```

    ## Use instead
    ```python
        def _evict(self):
            # caller holds self._lock
            ...
    ```
    (or use `threading.RLock` when re-entry is intended)
    """

    code = "THR008"
    name = "lock-reacquired-while-held"
    summary = "non-reentrant `Lock` acquired again while held by the same thread (self-deadlock)"
    help = "do not re-acquire: split out a helper that assumes the lock is held, or use `threading.RLock`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        locks = {ref for ref, p in model.primitives.items() if p.kind in NON_REENTRANT}
        if not locks:
            return
        locks -= _handed_over(model, locks)
        if not locks:
            return
        takes = None
        for fn in model.functions.values():
            name = fn.qualname
            for acq in fn.acquires:
                if acq.ref not in locks or not acq.blocking:
                    continue
                key = lock_key(model, name, acq.ref, acq.node)
                if key not in held_refs(model, name, acq.held_before, acq.node) or _passed_on(fn, acq.node):
                    continue
                first = next(h for h in acq.held_before if lock_key(model, name, h.ref, h.node) == key)
                yield self.finding(
                    ctx,
                    acq.node,
                    f"`{display(key)}` is a non-reentrant Lock already held here "
                    f"(taken at line {ctx.span(first.node).line}): this acquire waits for ever",
                    function=name if name != MODULE else None,
                )
            for call in fn.calls:
                if not call.callees or not call.held:
                    continue
                kinds = {lock_key(model, name, h.ref, h.node): h.ref for h in call.held if h.ref in locks}
                held = sorted(held_refs(model, name, call.held, call.node) & kinds.keys())
                if not held:
                    continue
                if takes is None:
                    takes = transitive_takes(model)
                for callee in call.callees:
                    for key in held:
                        take = takes.get(callee, {}).get(key)
                        if take is None or not take.blocking:
                            continue
                        if key.startswith("a:") and not call.same_instance:
                            continue
                        short = callee.split(".<locals>.")[-1]
                        yield self.finding(
                            ctx,
                            call.node,
                            f"`{display(key)}` (a non-reentrant Lock) is held while calling `{short}()`, "
                            f"which acquires it again at line {ctx.span(take.node).line}: the thread deadlocks on itself",
                            function=name if name != MODULE else None,
                        )


def _passed_on(fn, node) -> bool:
    """True when the lock is handed to a call in this function (``start_new_thread(f,
    (lock,))``): another thread may release it, so a second acquire can be a wait."""
    func = getattr(node, "func", None)
    target = func.value if isinstance(func, cst.Attribute) else node
    text = dotted(target)
    if text is None:
        return False
    for call in fn.calls:
        for arg in call.node.args:
            values = [e.value for e in arg.value.elements] if isinstance(arg.value, (cst.Tuple, cst.List)) else [arg.value]
            if any(dotted(v) == text for v in values if isinstance(v, (cst.Name, cst.Attribute))):
                return True
    return False


_PAIRED_RELEASERS = frozenset({"__exit__", "__aexit__", "release", "unlock"})


def _handed_over(model: ModuleModel, locks: set[str]) -> set[str]:
    """Locks some function releases without ever taking them itself, or whose ``release`` is
    handed to other code as a callback: used as signals between threads (or released for the
    caller), so a second acquire may be a wait."""
    out: set[str] = set()
    for fn in model.functions.values():
        if fn.name in _PAIRED_RELEASERS:
            continue
        taken = {a.ref for a in fn.acquires}
        for call in fn.calls:
            if call.attr == "release":
                ref = _release_ref(call)
                if ref in locks and ref not in taken:
                    out.add(ref)
            for arg in call.node.args:
                value = arg.value
                if isinstance(value, cst.Attribute) and value.attr.value == "release":
                    whole = ref_at(model, value) or ""  # ``on_click(lock.release)``: another thread releases it
                    ref = ref_at(model, value.value) or (whole[: -len(".release")] if whole.endswith(".release") else None)
                    if ref in locks:
                        out.add(ref)
    return out
