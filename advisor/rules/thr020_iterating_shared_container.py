from __future__ import annotations

import weakref
from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, Access, ModuleModel, assigned_value
from ._race import closure_local_together
from ._threadctx import function_label
from .base import Finding, Rule, RuleContext

VIEWS = frozenset({"items", "keys", "values"})
SETUP = frozenset({"__init__", "__new__", "__post_init__", "setUp", "setUpClass", "__enter__"})


class IteratingSharedContainer(Rule):
    """
    ## What it does
    Flags a `for` loop or comprehension over a shared dict, list or set (directly or through
    `.items()`, `.keys()`, `.values()`) when another thread may add or remove elements at
    the same time and no common lock is held on both sides (reading `d[key]` of a
    `defaultdict` inserts the key; a `Condition` built on a lock is that lock). This
    includes a function that
    starts a thread (or submits a task) changing the container and then, before any
    `join()` or wait, iterates it itself or calls code that does, and the reverse: a function
    that starts a service thread (one that loops, or paces a loop with `sleep`) iterating the
    container and then changes it before joining. A local that nested functions share is
    shared only by the threads of one call of its function.

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
        lists = _list_refs(model)
        for acc in model.accesses:
            if _is_mutation(model, acc):
                mutations.setdefault(acc.ref, []).append(acc)
        if not mutations:
            return
        collector = _IterCollector()
        ctx.module.visit(collector)
        long_running = _long_running_entries(model)
        reported: set[tuple[str, str]] = set()
        windows = [
            (acc, f"while a thread started before it may still change it in `{mut.function}` (`{ctx.code(mut.node)}`)")
            for acc, mut in _in_start_windows(model, collector.iterated, mutations)
        ] + [
            (acc, f"on a thread that `{starter}` starts and then, before joining it, changes it in "
                  f"`{mut.function}` (`{ctx.code(mut.node)}`)")
            for acc, mut, starter in _changed_in_start_windows(model, collector.iterated, lists, long_running)
        ]
        for acc, why in windows:
            if (acc.function, acc.ref) in reported:
                continue
            reported.add((acc.function, acc.ref))
            yield self.finding(
                ctx,
                acc.node,
                f"`{ctx.code(acc.node)}` is iterated in `{acc.function}` {why} without a common lock",
                function=function_label(acc.function),
            )
        for acc in model.accesses:
            if acc.kind != "read" or id(acc.node) not in collector.iterated:
                continue
            if acc.ref not in mutations or (acc.function, acc.ref) in reported:
                continue
            if model.primitive_kind(acc.ref) or acc.ref in model.types:
                continue
            if _joins_or_forked(model, acc.function) or model.functions[acc.function].is_async:
                continue
            held = model.exclusive_held(acc.function, acc.held)
            for mut in mutations[acc.ref]:
                if model.functions[mut.function].is_async or (acc.ref in lists and _grows_at_end(mut)):
                    continue
                mheld = model.exclusive_held(mut.function, mut.held)
                if held and mheld:
                    continue
                if not _concurrent(model, acc.function, mut.function, long_running, acc.ref):
                    continue
                if _before_start(model, mut, acc.function) or _own_local(acc, mut):
                    continue
                reported.add((acc.function, acc.ref))
                name = ctx.code(acc.node)
                yield self.finding(
                    ctx,
                    acc.node,
                    f"`{name}` is iterated in `{acc.function}` while "
                    + (f"`{mut.function}`" if mut.function != acc.function else f"another call of `{mut.function}`")
                    + f" may change it on another thread (`{ctx.code(mut.node)}`) without a common lock",
                    function=function_label(acc.function),
                )
                break


def _is_mutation(model: ModuleModel, acc: Access) -> bool:
    return not _only_setup(model, acc.function) and _changes(acc)


def _changes(acc: Access) -> bool:
    """``acc`` changes the container it names (adds, removes or replaces items)."""
    if not acc.ref.startswith(("g:", "a:", "l:")):
        return False
    if acc.kind in ("mutate", "item-write"):
        return True
    if acc.kind == "item-rmw" and acc.statement is not None:
        return any(isinstance(s, cst.Assign) for s in acc.statement.body)
    return False


GROWTH = frozenset({"append", "extend"})
LIST_CALLS = frozenset({"list", "sorted"})


def _grows_at_end(acc: Access) -> bool:
    """``x.append(...)`` / ``x.extend(...)``: a list iterator sees the new items at the end
    and neither skips nor repeats one (dicts, sets and deques do fail on any growth)."""
    node = acc.node
    return (
        acc.kind == "mutate" and isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in GROWTH
    )


def _list_refs(model: ModuleModel) -> frozenset[str]:
    """Refs every binding of which is a fresh list (``[]``, ``[...]``, a list comprehension,
    ``list(...)``, ``sorted(...)``)."""
    verdict: dict[str, bool] = {}
    for acc in model.accesses:
        if acc.kind != "write" or verdict.get(acc.ref) is False:
            continue
        verdict[acc.ref] = _binds_list(acc)
    return frozenset(ref for ref, ok in verdict.items() if ok)


def _binds_list(acc: Access) -> bool:
    value = assigned_value(acc)
    if isinstance(value, (cst.List, cst.ListComp)):
        return True
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in LIST_CALLS


def _joins_or_forked(model: ModuleModel, function: str) -> bool:
    """Iterations in code that first waits for threads, or that runs in a forked child."""
    fn = model.functions[function]
    return _forks(fn) or any(c.attr == "join" and _thread_join(model, c) for c in fn.calls)


def _forks(fn) -> bool:
    return "fork" in fn.name.lower() or any(c.qualname in ("os.fork", "os.forkpty", "os.fork1") for c in fn.calls)


def _thread_join(model: ModuleModel, call) -> bool:
    positional = [a.value for a in call.node.args if a.keyword is None]
    if call.receiver in model.thread_vars or not positional:
        return True
    value = positional[0]
    return isinstance(value, (cst.Integer, cst.Float)) or (
        isinstance(value, cst.Name) and "timeout" in value.value.lower()
    )


def _long_running_entries(model: ModuleModel) -> set[str]:
    """Thread entries that loop (service threads) or pace a loop with sleeps (a feed that ticks
    for a while), and so overlap with whatever main does."""
    out = set()
    for entry in model.thread_entries:
        if any(c.in_while or (c.loop_depth and c.qualname == "time.sleep")
               for name in model.reachable([entry]) for c in model.functions[name].calls):
            out.add(entry)
    return out


def _concurrent(model: ModuleModel, a: str, b: str, long_running: set[str], ref: str) -> bool:
    if closure_local_together(model, a, b, ref) is False:
        return False
    ca = model.contexts_for(a, ref)
    cb = model.contexts_for(b, ref)
    owner = ref[2:].split(".", 1)[0] if ref.startswith("a:") else None

    def shared(*entries: str) -> bool:
        """For instance attributes, a thread must run a method of that class (one shared
        ``self``), a module function, which reaches the object through what it is handed
        (objects it builds for itself are left out by ``contexts_for``), or a method of a
        class whose objects do not each build their own."""
        if owner is None:
            return True
        return any(e != "main" and reaches(model.functions[e].class_name) for e in entries)

    def reaches(cls: str | None) -> bool:
        if cls in (owner, None):
            return True
        built = model.constructions.get(owner, [])
        return not (built and all(model.functions[c.function].class_name == cls for c in built))

    for x in ca:
        for y in cb:
            if x == "main" and y == "main":
                continue
            if x == y:
                if model.is_multi_instance(x) and shared(x) and not model.own_state(x, ref):
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


WAITS = frozenset({"join", "wait", "wait_for", "get", "result", "exception", "shutdown", "as_completed"})
"""Calls after which a started thread or task may have finished: the window closes there."""


def _in_start_windows(model: ModuleModel, iterated: set[int], mutations: dict[str, list[Access]]):
    """``(iteration, mutation)`` pairs where a function starts a thread (or submits a task)
    that changes a container, and then, before any join or wait, iterates that container
    itself or calls a function that does (``t.start(); for x in seen: ...; t.join()``)."""
    by_function: dict[str, list] = {}
    for spawn in model.spawns:
        if spawn.kind != "subclass":
            by_function.setdefault(spawn.function, []).append(spawn)
    for name, spawns in by_function.items():
        fn = model.functions[name]
        if fn.is_async or _forks(fn):
            continue
        span = _spans(model, fn)
        waits = sorted(span.enter[id(c.node)] for c in fn.calls if _closes_window(model, c) and id(c.node) in span.enter)
        for spawn in spawns:
            window = _window(model, fn, spawn, span, waits)
            if window is None:
                continue
            reach = model.reachable(spawn.targets)
            changed = {
                ref: muts for ref, muts in mutations.items()
                for muts in [[m for m in muts if m.function in reach]] if muts
            }
            if not changed:
                continue
            for acc in _window_accesses(model, fn, span, window, reach):
                if acc.kind != "read" or id(acc.node) not in iterated or acc.ref not in changed:
                    continue
                if model.primitive_kind(acc.ref) or acc.ref in model.types:
                    continue
                held = model.exclusive_held(acc.function, acc.held)
                for mut in changed[acc.ref]:
                    if held and model.exclusive_held(mut.function, mut.held):
                        continue
                    yield acc, mut
                    break


def _own_local(acc: Access, mut: Access) -> bool:
    """A local of the function itself (``result = Result()``): each call has its own."""
    return acc.ref.startswith(f"l:{acc.function}.") and acc.function == mut.function


def _before_start(model: ModuleModel, mut: Access, function: str) -> bool:
    """``mut`` runs in the function that starts the threads iterating, before it starts them
    (``self._options.update(...)``, then ``Thread(target=self._read_loop).start()``)."""
    entries = [e for e in model.contexts.get(function, ()) if e != "main"]
    fn = model.functions[mut.function]
    spawns = [s for e in entries for s in model.thread_entries.get(e, [])]
    if not entries or not spawns or any(s.function != mut.function for s in spawns):
        return False
    span = _spans(model, fn)
    at = span.enter.get(id(mut.node))
    starts = [_start_index(model, fn, s, span) for s in spawns]
    return at is not None and all(i is not None and i > at for i in starts)


def _changed_in_start_windows(model: ModuleModel, iterated: set[int], lists: frozenset[str], long_running: set[str]):
    """``(iteration, mutation, starter)``: a function starts a service thread (one that loops)
    that iterates a container, and then, before any join or wait, changes that container
    itself or through a function it calls (``feed.start(); hub.subscribe(...)``)."""
    for spawn in model.spawns:
        if not any(t in long_running for t in spawn.targets):
            continue
        fn = model.functions[spawn.function]
        if fn.is_async or _forks(fn):
            continue
        span = _spans(model, fn)
        waits = [span.enter[id(c.node)] for c in fn.calls if _closes_window(model, c) and id(c.node) in span.enter]
        window = _window(model, fn, spawn, span, waits)
        if window is None:
            continue
        reach = model.reachable(spawn.targets)
        iters: dict[str, list[Access]] = {}
        for name in reach:
            for acc in model.functions[name].accesses:
                if acc.kind == "read" and id(acc.node) in iterated and not model.primitive_kind(acc.ref) \
                        and acc.ref not in model.types:
                    iters.setdefault(acc.ref, []).append(acc)
        if not iters:
            continue
        for mut in _window_accesses(model, fn, span, window, reach):
            if mut.ref not in iters or not _changes(mut) or (mut.ref in lists and _grows_at_end(mut)):
                continue
            for acc in iters[mut.ref]:
                if model.exclusive_held(acc.function, acc.held) and model.exclusive_held(mut.function, mut.held):
                    continue
                yield acc, mut, spawn.function
                break


def _window(model: ModuleModel, fn, spawn, span: _Spans, waits: list[int]) -> tuple[int, int | None] | None:
    """Where ``spawn``'s code starts running in ``fn`` and the first join or wait after it
    (or the end of its executor's ``with`` block)."""
    started = _start_index(model, fn, spawn, span)
    if started is None:
        return None
    close = min((w for w in waits if w > started), default=None)
    scope = _executor_scope(model, fn, spawn, span)
    if scope is not None:
        close = scope if close is None else min(close, scope)
    return started, close


def _window_accesses(model: ModuleModel, fn, span: _Spans, window: tuple[int, int | None], reach: set[str]) -> list[Access]:
    """What ``fn`` touches inside the window, itself or through the (synchronous) functions it
    calls there that the thread does not run."""
    started, close = window
    out: list[Access] = [a for a in fn.accesses if span.between(a.node, started, close)]
    for call in fn.calls:
        if span.between(call.node, started, close) and call.callees:
            for callee in model.reachable(call.callees) - reach:
                if not model.functions[callee].is_async:
                    out.extend(model.functions[callee].accesses)
    return out


def _closes_window(model: ModuleModel, call) -> bool:
    if call.attr == "join":
        return _thread_join(model, call)
    if call.attr in WAITS:
        return True
    return (call.qualname or "").rsplit(".", 1)[-1] in ("wait", "as_completed")


def _start_index(model: ModuleModel, fn, spawn, span: _Spans) -> int | None:
    """Where ``spawn``'s code starts running: its ``start()`` call for a thread (or an object
    of a ``Thread`` subclass, when that call is found), else the spawn."""
    if spawn.kind not in ("thread", "timer", "subclass"):
        return span.enter.get(id(spawn.node))
    starts = [
        span.enter[id(c.node)] for c in fn.calls
        if c.attr == "start" and id(c.node) in span.enter and (
            (isinstance(c.node.func, cst.Attribute) and c.node.func.value is spawn.node)
            or model.thread_vars.get(c.receiver or "") is spawn
        )
    ]
    if spawn.kind == "subclass" and not starts:
        return span.enter.get(id(spawn.node))
    return min(starts, default=None)


def _executor_scope(model: ModuleModel, fn, spawn, span: _Spans) -> int | None:
    """The end of the ``with`` block of the executor a task was submitted to (it waits there)."""
    if spawn.kind not in ("submit", "map") or spawn.executor is None:
        return None
    at = span.enter.get(id(spawn.node))
    ends = [
        span.exit[id(w)] for w in span.withs
        if span.enter[id(w)] < at <= span.exit[id(w)] and any(
            isinstance(item.asname, cst.AsName) and isinstance(item.asname.name, cst.Name)
            and spawn.executor.endswith("." + item.asname.name.value)
            for item in w.items
        )
    ]
    return min(ends, default=None)


_SPANS: "weakref.WeakKeyDictionary[ModuleModel, dict[str, _Spans]]" = weakref.WeakKeyDictionary()


def _spans(model: ModuleModel, fn) -> "_Spans":
    """``_Spans`` of ``fn``, computed once per model."""
    table = _SPANS.setdefault(model, {})
    if fn.qualname not in table:
        table[fn.qualname] = _Spans(fn.node)
    return table[fn.qualname]


class _Spans(cst.CSTVisitor):
    """Pre-order numbering of a function's nodes: ``enter``/``exit`` index of each node,
    the ``with`` statements, and which nodes lie in a nested function or lambda."""

    def __init__(self, root: cst.CSTNode) -> None:
        self.enter: dict[int, int] = {}
        self.exit: dict[int, int] = {}
        self.withs: list[cst.With] = []
        self._inner: set[int] = set()
        self._depth = 0
        self._root = root
        self._n = 0
        root.visit(self)

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._n += 1
        self.enter[id(node)] = self._n
        if self._depth:
            self._inner.add(id(node))
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and node is not self._root:
            self._depth += 1
        if isinstance(node, cst.With):
            self.withs.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and original_node is not self._root:
            self._depth -= 1
        self.exit[id(original_node)] = self._n

    def between(self, node: cst.CSTNode, start: int, end: int | None) -> bool:
        """``node`` runs after index ``start`` and before ``end`` (None: the end), in this
        function's own code (not in a nested function or lambda)."""
        i = self.enter.get(id(node))
        return i is not None and i > start and (end is None or i < end) and id(node) not in self._inner


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
