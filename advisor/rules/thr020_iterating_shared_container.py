from __future__ import annotations

import weakref
from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, Access, ModuleModel
from ._threadctx import function_label
from .base import Finding, Rule, RuleContext

VIEWS = frozenset({"items", "keys", "values"})
SETUP = frozenset({"__init__", "__new__", "__post_init__", "setUp", "setUpClass", "__enter__"})


class IteratingSharedContainer(Rule):
    """
    ## What it does
    Flags a `for` loop or comprehension over a shared dict, list or set (directly or through
    `.items()`, `.keys()`, `.values()`) when another thread may add or remove elements at
    the same time and no common lock is held on both sides.

    ## Why is this bad?
    Iterating is not atomic: the GIL can switch threads between any two iterations. A
    concurrent insert or delete makes dict and set iteration fail with `RuntimeError:
    dictionary changed size during iteration`, and makes list iteration skip or repeat
    elements. The failure is intermittent and load-dependent.

    ## Example
    ```python
    def expire_loop(self):
        while True:
            for key, (value, stamp) in self._data.items():   # worker thread
                ...
    def put(self, key, value):
        self._data[key] = (value, time.time())              # request threads
    ```

    ## Use instead
    ```python
    def expire_loop(self):
        while True:
            with self._lock:
                snapshot = list(self._data.items())
            for key, (value, stamp) in snapshot:
                ...
    def put(self, key, value):
        with self._lock:
            self._data[key] = (value, time.time())
    ```
    """

    code = "THR020"
    name = "iterating-shared-container"
    summary = "shared container iterated while another thread may mutate it, without a common lock"
    help = "hold the same lock while iterating and mutating, or iterate over a copy taken under the lock (`list(d.items())`)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        if not model.thread_entries:
            return
        mutations: dict[str, list[Access]] = {}
        for acc in model.accesses:
            if _is_mutation(model, acc):
                mutations.setdefault(acc.ref, []).append(acc)
        if not mutations:
            return
        collector = _IterCollector()
        ctx.module.visit(collector)
        long_running = _long_running_entries(model)
        reported: set[tuple[str, str]] = set()
        for acc in model.accesses:
            if acc.kind != "read" or id(acc.node) not in collector.iterated:
                continue
            if acc.ref not in mutations or (acc.function, acc.ref) in reported:
                continue
            if model.primitive_kind(acc.ref) or acc.ref in model.types:
                continue
            if _joins_or_forked(model, acc.function) or model.functions[acc.function].is_async:
                continue
            held = model.effective_held(acc.function, acc.held)
            for mut in mutations[acc.ref]:
                if model.functions[mut.function].is_async:
                    continue
                mheld = model.effective_held(mut.function, mut.held)
                if held and mheld:
                    continue
                if not _concurrent(model, acc.function, mut.function, long_running, acc.ref):
                    continue
                reported.add((acc.function, acc.ref))
                name = ctx.code(acc.node)
                yield self.finding(
                    ctx,
                    acc.node,
                    f"`{name}` is iterated in `{acc.function}` while `{mut.function}` may change it on another thread "
                    f"(`{ctx.code(mut.node)}`) without a common lock",
                    function=function_label(acc.function),
                )
                break


def _is_mutation(model: ModuleModel, acc: Access) -> bool:
    if not acc.ref.startswith(("g:", "a:", "l:")):
        return False
    if _only_setup(model, acc.function):
        return False
    if acc.kind in ("mutate", "item-write"):
        return True
    if acc.kind == "item-rmw" and acc.statement is not None:
        return any(isinstance(s, cst.Assign) for s in acc.statement.body)
    return False


def _joins_or_forked(model: ModuleModel, function: str) -> bool:
    """Iterations in code that first waits for threads, or that runs in a forked child."""
    fn = model.functions[function]
    if "fork" in fn.name.lower() or any(c.qualname in ("os.fork", "os.forkpty", "os.fork1") for c in fn.calls):
        return True
    return any(c.attr == "join" and _thread_join(model, c) for c in fn.calls)


def _thread_join(model: ModuleModel, call) -> bool:
    positional = [a.value for a in call.node.args if a.keyword is None]
    if call.receiver in model.thread_vars or not positional:
        return True
    value = positional[0]
    return isinstance(value, (cst.Integer, cst.Float)) or (
        isinstance(value, cst.Name) and "timeout" in value.value.lower()
    )


def _long_running_entries(model: ModuleModel) -> set[str]:
    """Thread entries that loop (service threads), and so overlap with whatever main does."""
    out = set()
    for entry in model.thread_entries:
        if any(c.in_while for name in model.reachable([entry]) for c in model.functions[name].calls):
            out.add(entry)
    return out


def _concurrent(model: ModuleModel, a: str, b: str, long_running: set[str], ref: str) -> bool:
    ca = model.contexts.get(a, frozenset())
    cb = model.contexts.get(b, frozenset())
    owner = ref[2:].split(".", 1)[0] if ref.startswith("a:") else None

    def shared(*entries: str) -> bool:
        """For instance attributes, a thread must run a method of that class (one shared ``self``)."""
        if owner is None:
            return True
        return any(e != "main" and model.functions[e].class_name == owner for e in entries)

    for x in ca:
        for y in cb:
            if x == "main" and y == "main":
                continue
            if x == y:
                if model.is_multi_instance(x) and shared(x):
                    return True
                continue
            if "main" in (x, y):
                thread = y if x == "main" else x
                main_side = a if x == "main" else b
                if thread in long_running and not _only_setup(model, main_side) and shared(thread):
                    return True
                continue
            if shared(x, y):
                return True
    return False


def _only_setup(model: ModuleModel, function: str) -> bool:
    """True for set-up code: module level, constructors, and functions only they call."""
    return function in _setup_functions(model)


_SETUP_CACHE: "weakref.WeakKeyDictionary[ModuleModel, frozenset[str]]" = weakref.WeakKeyDictionary()


def _setup_functions(model: ModuleModel) -> frozenset[str]:
    cached = _SETUP_CACHE.get(model)
    if cached is not None:
        return cached
    callers: dict[str, set[str]] = {}
    for name, callees in model.callgraph.items():
        for callee in callees:
            callers.setdefault(callee, set()).add(name)
    setup = {n for n, fn in model.functions.items() if fn.name in SETUP or n == MODULE}
    changed = True
    while changed:
        changed = False
        for name in model.functions:
            if name not in setup and callers.get(name) and callers[name] <= setup:
                setup.add(name)
                changed = True
    result = frozenset(setup)
    _SETUP_CACHE[model] = result
    return result


class _IterCollector(cst.CSTVisitor):
    """Ids of expressions iterated by a Python-level loop (the container itself)."""

    def __init__(self) -> None:
        self.iterated: set[int] = set()

    def _add(self, expr: cst.BaseExpression) -> None:
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            if expr.func.attr.value in VIEWS and not expr.args:
                self.iterated.add(id(expr.func.value))
            return
        if isinstance(expr, (cst.Name, cst.Attribute)):
            self.iterated.add(id(expr))

    def visit_For(self, node: cst.For) -> None:
        self._add(node.iter)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._add(node.iter)
