from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted
from ..analysis.model import MODULE, ModuleModel
from .base import Finding, Rule, RuleContext

ORDERED_KINDS = frozenset({"Lock", "RLock", "Condition", None})


@dataclass(frozen=True)
class Take:
    """A lock a function takes, directly or through the calls it makes."""

    ref: str
    kind: str | None
    blocking: bool
    node: cst.CSTNode
    """The acquisition itself (a `with` item or an `acquire()` call)."""
    function: str
    """The function holding ``node``."""


def _release_ref(call) -> str | None:
    func = call.node.func
    if not isinstance(func, cst.Attribute):
        return None
    if call.receiver:
        return call.receiver
    text = dotted(func.value)
    return f"?:{text}" if text else None


def lock_key(model: ModuleModel, function: str, ref: str, node: cst.CSTNode) -> str:
    """``ref``, made instance-precise for locks of sub-objects: ``self.red.lock`` and
    ``self.blue.lock`` are two locks even when both attributes hold a ``Player``."""
    if not ref.startswith("a:"):
        return ref
    expr = node.func.value if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) else node
    text = dotted(expr) if isinstance(expr, cst.BaseExpression) else None
    parts = text.split(".") if text else []
    if len(parts) < 3:
        return ref
    fn = model.functions.get(function)
    while fn is not None and fn.self_name is None and fn.parent in model.functions and fn.is_lambda:
        fn = model.functions[fn.parent]
    if fn is None or fn.self_name != parts[0] or fn.class_name is None:
        return ref
    return f"a:{fn.class_name}." + ".".join(parts[1:])


def trackable(ref: str) -> bool:
    """Refs that name the same lock wherever they appear: globals and instance attributes."""
    return ref.startswith(("g:", "a:"))


def direct_takes(model: ModuleModel, function: str) -> list[Take]:
    """Locks ``function`` acquires itself, except re-acquisitions after releasing the
    same lock (a function that drops and re-takes its caller's lock)."""
    fn = model.functions[function]
    released: set[str] = set()
    events = sorted(
        [(id(c.node), c) for c in fn.calls if c.attr == "release"]
        + [(id(a.node), a) for a in fn.acquires],
        key=lambda e: _order(fn, e[1]),
    )
    out: list[Take] = []
    for _, event in events:
        if hasattr(event, "via"):
            key = lock_key(model, function, event.ref, event.node)
            if key not in released and trackable(key):
                out.append(Take(key, event.kind, event.blocking, event.node, function))
        else:
            ref = _release_ref(event)
            if ref:
                released.add(lock_key(model, function, ref, event.node))
    return out


def _order(fn, event) -> int:
    target = event if isinstance(event, cst.CSTNode) else event.node
    key = fn.__dict__.get("_event_order")
    if key is None:
        key = {}
        stack = [fn.node]
        while stack:
            node = stack.pop()
            key[id(node)] = len(key)
            stack.extend(reversed(node.children))
        fn.__dict__["_event_order"] = key
    return key.get(id(target), 0)


def transitive_takes(model: ModuleModel) -> dict[str, dict[str, Take]]:
    """Function -> lock ref -> how it is taken (directly or in a callee). Instance locks
    (``a:``) are followed only through calls on the same instance (``self.m()``)."""
    cache = model.__dict__.get("_transitive_takes")
    if cache is not None:
        return cache
    takes: dict[str, dict[str, Take]] = {}
    for name in model.functions:
        own: dict[str, Take] = {}
        for take in direct_takes(model, name):
            if take.ref not in own or (take.blocking and not own[take.ref].blocking):
                own[take.ref] = take
        takes[name] = own
    probed = {fn.qualname: _probed_calls(fn) for fn in model.functions.values() if any(not a.blocking for a in fn.acquires)}
    for _ in range(len(model.functions) + 1):
        changed = False
        for fn in model.functions.values():
            mine = takes[fn.qualname]
            skip = probed.get(fn.qualname, {})
            for call in fn.calls:
                for callee in call.callees:
                    for ref, take in takes.get(callee, {}).items():
                        if ref.startswith("a:") and not call.same_instance and not _foreign_own_lock(model, fn, callee, ref):
                            continue
                        if ref in skip.get(id(call.node), ()):
                            continue
                        old = mine.get(ref)
                        if old is None or (take.blocking and not old.blocking):
                            mine[ref] = take
                            changed = True
        if not changed:
            break
    model.__dict__["_transitive_takes"] = takes
    return takes


def _foreign_own_lock(model: ModuleModel, caller, callee: str, ref: str) -> bool:
    """``acct.reserve()`` from another class, where ``reserve`` takes ``self.lock``: the caller
    takes ``Account.lock`` of that object. (Calls on another instance of the caller's own class
    stay out: which instance's lock is taken matters there, see the argument-order check.)"""
    cls = model.functions[callee].class_name
    return cls is not None and cls != caller.class_name and ref.startswith(f"a:{cls}.") and ref.count(".") == 1


def _probed_calls(fn) -> dict[int, set[str]]:
    """Calls inside ``if lock.acquire(False):`` (a try-lock used as a probe): they run only
    when nobody held ``lock``, so the locks they take cannot be the caller's own."""
    from .thr004_acquire_without_release import parent_map

    parents = parent_map(fn.node)
    tests: list[tuple[cst.If, str]] = []
    for acq in fn.acquires:
        if acq.blocking:
            continue
        node = acq.node
        while id(node) in parents:
            parent = parents[id(node)]
            if isinstance(parent, cst.If) and node is parent.test:
                tests.append((parent, acq.ref))
                break
            if isinstance(parent, cst.BaseStatement):
                break
            node = parent
    out: dict[int, set[str]] = {}
    for call in fn.calls:
        node = call.node
        while id(node) in parents:
            parent = parents[id(node)]
            for branch, ref in tests:
                if parent is branch and node is branch.body:
                    out.setdefault(id(call.node), set()).add(ref)
            node = parent
    return out


def held_refs(model: ModuleModel, function: str, held, at: cst.CSTNode | None = None) -> frozenset[str]:
    """Locks really held at ``at``: `with` and blocking `acquire()` (a failed try-lock
    holds nothing), less those released in between (``lock.release()`` inside
    ``with lock:`` drops it until the next ``acquire()``)."""
    fn = model.functions[function]
    blocking = {id(a.node): a.blocking for a in fn.acquires}
    refs = {
        lock_key(model, function, h.ref, h.node): h
        for h in held
        if h.via == "with" or blocking.get(id(h.node), True)
    }
    if at is None or not refs:
        return frozenset(refs)
    here = _order(fn, at)
    out = set()
    for ref, h in refs.items():
        start = _order(fn, h.node)
        last = None
        for pos, kind in _events(model, fn).get(ref, ()):
            if start < pos < here:
                last = kind
        if last != "release":
            out.add(ref)
    return frozenset(out)


def _events(model: ModuleModel, fn) -> dict[str, list[tuple[int, str]]]:
    cached = fn.__dict__.get("_lock_events")
    if cached is None:
        cached = {}
        for call in fn.calls:
            if call.attr == "release":
                ref = _release_ref(call)
                if ref:
                    key = lock_key(model, fn.qualname, ref, call.node)
                    cached.setdefault(key, []).append((_order(fn, call.node), "release"))
        for acq in fn.acquires:
            key = lock_key(model, fn.qualname, acq.ref, acq.node)
            cached.setdefault(key, []).append((_order(fn, acq.node), "acquire"))
        fn.__dict__["_lock_events"] = cached
    return cached


@dataclass(frozen=True)
class OrderEdge:
    outer: str
    inner: str
    function: str
    site: cst.CSTNode
    """Where ``inner`` is taken in ``function``: the acquisition, or the call leading to it."""
    take: Take
    held: frozenset[str]
    via_call: str | None
    guards: frozenset[str] = frozenset()
    """``held`` plus the locks every caller of ``function`` holds."""


def order_edges(model: ModuleModel) -> list[OrderEdge]:
    """Every (held lock -> acquired lock) pair, direct or through a call."""
    takes = transitive_takes(model)
    edges: list[OrderEdge] = []
    for fn in model.functions.values():
        entry = model.held_on_entry.get(fn.qualname, frozenset()) if fn.qualname in _called(model) else frozenset()
        for acq in fn.acquires:
            key = lock_key(model, fn.qualname, acq.ref, acq.node)
            if not trackable(key):
                continue
            held = held_refs(model, fn.qualname, acq.held_before, acq.node)
            take = Take(key, acq.kind, acq.blocking, acq.node, fn.qualname)
            for outer in held:
                edges.append(OrderEdge(outer, key, fn.qualname, acq.node, take, held, None, held | entry))
        for call in fn.calls:
            if not call.held or not call.callees:
                continue
            held = held_refs(model, fn.qualname, call.held, call.node)
            for callee in call.callees:
                for ref, take in takes.get(callee, {}).items():
                    if ref.startswith("a:") and not call.same_instance and not _foreign_own_lock(model, fn, callee, ref):
                        continue
                    for outer in held:
                        edges.append(OrderEdge(outer, ref, fn.qualname, call.node, take, held, callee, held | entry))
    return edges


def _called(model: ModuleModel) -> frozenset[str]:
    cached = model.__dict__.get("_called_functions")
    if cached is None:
        cached = frozenset(c for call in model.calls for c in call.callees if c != call.function)
        model.__dict__["_called_functions"] = cached
    return cached


def display(ref: str) -> str:
    return ref.split(":", 1)[1] if ":" in ref else ref


class LockOrderInversion(Rule):
    """
    ## What it does
    Flags two code paths in a module that take the same two locks in opposite orders:
    lock `A` then `B` on one path, `B` then `A` on another, either nested directly or
    through calls to functions and methods of the module. Also flags a function that
    nests the same-named locks of two of its arguments (`with src.lock: with dst.lock:`)
    without ordering them: `transfer(a, b)` and `transfer(b, a)` are the two paths.

    ## Why is this bad?
    When two threads run the two paths at the same time, each can take its first lock
    and then wait for ever for the lock the other one holds: a deadlock that shows up
    only under load, and never in a debugger.

    ## Example
    ```python
    def transfer():
        with accounts_lock:
            with audit_lock:
                ...

    def report():
        with audit_lock:
            with accounts_lock:
                ...
    ```

    ## Use instead
    ```python
    def report():
        with accounts_lock:      # always accounts_lock before audit_lock
            with audit_lock:
                ...
    ```
    """

    code = "THR007"
    name = "lock-order-inversion"
    summary = "two code paths take the same two locks in opposite orders (deadlock risk)"
    help = "take the locks in one global order everywhere (or merge them into one lock)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        yield from _argument_order(self, ctx)
        model = ctx.model
        if sum(1 for a in model.acquires if trackable(a.ref)) < 2:
            return
        edges = [
            e for e in order_edges(model)
            if e.outer != e.inner
            and trackable(e.outer)
            and e.take.blocking
            and e.inner not in e.held
            and model.primitive_kind(e.outer) in ORDERED_KINDS
            and e.take.kind in ORDERED_KINDS
        ]
        by_pair: dict[tuple[str, str], list[OrderEdge]] = {}
        for edge in edges:
            by_pair.setdefault((edge.outer, edge.inner), []).append(edge)
        reported: set[frozenset[str]] = set()
        for (a, b), forward in by_pair.items():
            pair = frozenset((a, b))
            backward = by_pair.get((b, a))
            if not backward or pair in reported:
                continue
            found = _first_unguarded(ctx, forward, backward, a, b)
            if found is None:
                continue
            reported.add(pair)
            first, second = found
            first_line = ctx.span(first.site).line
            through = f" (through `{second.via_call.split('.<locals>.')[-1]}()`, line {ctx.span(second.take.node).line})" if second.via_call else ""
            outer, inner = display(second.outer), display(second.inner)
            yield self.finding(
                ctx,
                second.site,
                f"`{inner}` is taken while holding `{outer}`{through}, but line {first_line} takes "
                f"`{outer}` while holding `{inner}`: two threads running both paths can deadlock",
                function=second.function if second.function != MODULE else None,
            )


def _argument_order(rule: Rule, ctx: RuleContext) -> Iterable[Finding]:
    """``with a.lock: with b.lock:`` where ``a`` and ``b`` are two parameters (``self``
    included) and the locks have the same name: the locks of two objects of one kind, taken
    in the order the caller passed them, with nothing ordering them (``sorted``/``min``/
    ``max``/``id()`` or a ``<`` comparison of the two) and no other lock held around them."""
    for fn in ctx.model.functions.values():
        if not isinstance(fn.node, cst.FunctionDef) or len(fn.params) < 2:
            continue
        for inner in fn.acquires:
            mine = _param_lock(fn, inner.node)
            if mine is None or not inner.blocking:
                continue
            outer = [(h, _param_lock(fn, h.node)) for h in inner.held_before]
            if any(lock is None for _, lock in outer):
                continue  # another lock serialises the whole section
            match = next(((h, lock[0]) for h, lock in outer if lock[0] != mine[0] and lock[1] == mine[1]), None)
            if match is None or _ordered(fn.node, mine[0], match[1]):
                continue
            first, second = ctx.code(match[0].node), ctx.code(inner.node)
            a, b = match[1], mine[0]
            yield rule.finding(
                ctx,
                inner.node,
                f"`{second}` is taken while holding `{first}`: the order depends on the arguments, so "
                f"`{fn.name}` called with `{a}` and `{b}` swapped on another thread takes the same two locks in "
                "the opposite order and the two calls can deadlock",
                help="take the two locks in one fixed order (for example `sorted((a, b), key=id)`), or use one lock for both",
                function=fn.qualname if fn.qualname != MODULE else None,
            )
            break


def _param_lock(fn, node: cst.CSTNode) -> tuple[str, str] | None:
    """``("a", "lock")`` for the lock ``a.lock`` (or ``a.lock.acquire()``) with ``a`` a parameter."""
    expr = node.func.value if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) else node
    text = dotted(expr) if isinstance(expr, cst.BaseExpression) else None
    if not text or "." not in text:
        return None
    base, rest = text.split(".", 1)
    return (base, rest) if base in fn.params else None


_ORDERING_CALLS = frozenset({"sorted", "min", "max", "id"})


def _ordered(node: cst.CSTNode, a: str, b: str) -> bool:
    finder = _OrderFinder(a, b)
    node.visit(finder)
    return finder.found


class _OrderFinder(cst.CSTVisitor):
    def __init__(self, a: str, b: str) -> None:
        self.names = {a, b}
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value in _ORDERING_CALLS:
            self.found = True

    def visit_Comparison(self, node: cst.Comparison) -> None:
        ordering = (cst.LessThan, cst.GreaterThan, cst.LessThanEqual, cst.GreaterThanEqual)
        if any(isinstance(t.operator, ordering) for t in node.comparisons):
            seen = _NameCollector()
            node.visit(seen)
            if self.names <= seen.names:
                self.found = True


class _NameCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _first_unguarded(ctx, forward, backward, a, b):
    """The earliest pair of opposite edges with no common outer lock, ordered by line."""
    best = None
    for e1 in forward:
        for e2 in backward:
            if (e1.guards - {a, b}) & (e2.guards - {a, b}):
                continue
            l1, l2 = ctx.span(e1.site).line, ctx.span(e2.site).line
            first, second = (e1, e2) if (l1, id(e1)) <= (l2, id(e2)) else (e2, e1)
            key = (max(l1, l2), min(l1, l2))
            if best is None or key < best[0]:
                best = (key, (first, second))
    return best[1] if best else None
