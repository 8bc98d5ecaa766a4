from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, Call, ModuleModel, Spawn
from ..analysis.syntax import all_names
from ._threadctx import call_of, function_label, last_name, thread_entries_of
from .base import Edit, Finding, Fix, Rule, RuleContext

LOOP_FACTORIES = frozenset(
    {"asyncio.get_event_loop", "asyncio.get_running_loop", "asyncio.new_event_loop", "asyncio.events.get_event_loop"}
)
ASYNC_TYPES = {
    "asyncio.Future": "future",
    "asyncio.Queue": "queue",
    "asyncio.LifoQueue": "queue",
    "asyncio.PriorityQueue": "queue",
    "asyncio.Event": "event",
    "asyncio.Condition": "event",
}
UNSAFE = {
    "loop": frozenset({"call_soon", "call_later", "call_at", "create_task", "stop", "add_reader", "add_writer", "add_signal_handler"}),
    "future": frozenset({"set_result", "set_exception", "cancel", "add_done_callback"}),
    "queue": frozenset({"put_nowait", "get_nowait"}),
    "event": frozenset({"set", "clear", "notify", "notify_all"}),
}
MODULE_UNSAFE = frozenset({"asyncio.create_task", "asyncio.ensure_future"})
RUNS_LOOP = frozenset({"run_forever", "run_until_complete"})
OWN_LOOP = frozenset({"asyncio.run", "asyncio.set_event_loop", "asyncio.new_event_loop", "asyncio.Runner"})


class AsyncioFromThread(Rule):
    """
    ## What it does
    Flags asyncio event-loop, future, `asyncio.Queue` and `asyncio.Event` methods
    (`loop.call_soon`, `loop.create_task`, `fut.set_result`, `queue.put_nowait`, `event.set`,
    `asyncio.ensure_future`...) called from a worker thread while the loop runs on another
    thread, and loop methods called from the main thread on a loop that a worker thread runs.
    Calls in a branch chosen by asking which thread runs the code (`get_ident()`,
    `current_thread()`) are left alone.

    ## Why is this bad?
    asyncio objects are not thread-safe: only `call_soon_threadsafe` and
    `run_coroutine_threadsafe` may be used from another thread. Other calls race with the
    loop's own bookkeeping and do not wake the loop up, so callbacks run late or never,
    `await fut` hangs, and occasionally internal state is corrupted.

    ## Example
    ```python
    def worker(loop, fut):
        result = blocking_io()
        fut.set_result(result)                       # from a worker thread

    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    threading.Thread(target=worker, args=(loop, fut)).start()
    ```

    ## Use instead
    ```python
    def worker(loop, fut):
        result = blocking_io()
        loop.call_soon_threadsafe(fut.set_result, result)
    ```
    """

    code = "THR019"
    name = "asyncio-from-thread"
    summary = "asyncio loop/future method called from another thread instead of `call_soon_threadsafe`"
    help = "hand work to the loop with `loop.call_soon_threadsafe(callback, *args)` or `asyncio.run_coroutine_threadsafe(coro, loop)`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        if not any(v.split(".")[0] == "asyncio" for v in model.imports.values()):
            return
        kinds = _async_refs(model)
        own_loop = _entries_with_own_loop(model)
        loop_threads = _loop_thread_refs(model, kinds)
        outside = _not_plain_main(model)
        for fn in model.functions.values():
            if fn.is_async or fn.qualname == MODULE:
                continue
            entries = thread_entries_of(model, fn.qualname)
            worker = bool(entries) and not (entries & own_loop)
            checks = None
            for call in fn.calls:
                kind = kinds.get(call.receiver or "") or _loop_by_name(call)
                unsafe = call.attr in UNSAFE.get(kind or "", ())
                if unsafe or call.qualname in MODULE_UNSAFE:
                    checks = _thread_checked(fn.node) if checks is None else checks
                    if id(call.node) in checks:
                        continue
                if worker and (unsafe or call.qualname in MODULE_UNSAFE):
                    entry = sorted(entries)[0]
                    yield self._report(ctx, call, f"from a worker thread (`{entry}`)")
                elif (
                    kind == "loop"
                    and unsafe
                    and call.receiver in loop_threads
                    and model.contexts.get(fn.qualname) == frozenset({"main"})
                    and fn.qualname not in outside
                ):
                    yield self._report(ctx, call, "on a loop that runs on a worker thread")

    def _report(self, ctx: RuleContext, call: Call, where: str) -> Finding:
        func = call.node.func
        fix = None
        if call.attr == "call_soon" and isinstance(func, cst.Attribute):
            fix = Fix("unsafe", (Edit(ctx.span(func.attr), "call_soon_threadsafe"),), "Use `call_soon_threadsafe`")
        return self.finding(
            ctx,
            call.node,
            f"`{ctx.code(func)}()` is called {where}; asyncio objects may only be touched from their loop's thread",
            fix=fix,
            function=function_label(call.function),
        )


THREAD_IDENTITY = frozenset({"get_ident", "get_native_id", "current_thread", "currentThread", "main_thread", "ident",
                             "native_id", "get_running_loop", "_get_running_loop"})
"""Names a test uses to ask which thread (or loop) it runs on."""


def _thread_checked(root: cst.CSTNode) -> set[int]:
    """Ids of the nodes in ``if``/``else`` branches chosen by asking which thread runs the
    code (``if loop_thread.ident != get_ident(): ... else: loop.create_task(...)``)."""
    inside: set[int] = set()

    class Branch(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            inside.add(id(node))
            return True

    class Tests(cst.CSTVisitor):
        def visit_If(self, node: cst.If) -> None:
            if {n.value for n in all_names(node.test)} & THREAD_IDENTITY:
                node.body.visit(Branch())
                if node.orelse is not None:
                    node.orelse.visit(Branch())

    root.visit(Tests())
    return inside


LOOP_ONLY = frozenset({"call_soon", "call_later", "call_at", "create_task"})


def _loop_by_name(call: Call) -> str | None:
    """``x.loop.call_soon(...)``: methods only event loops have, on something named like a loop."""
    func = call.node.func
    if call.attr in LOOP_ONLY and isinstance(func, cst.Attribute):
        name = last_name(func.value) or ""
        if name.lower().endswith("loop"):
            return "loop"
    return None


def _async_refs(model: ModuleModel) -> dict[str, str]:
    """Refs known to hold an asyncio loop, future/task, queue or event."""
    refs: dict[str, str] = {}
    for _ in range(2):
        for fn in model.functions.values():
            for acc in fn.accesses:
                if acc.kind != "write" or acc.ref in refs:
                    continue
                for _f, value in assigned_values_once(model, acc):
                    kind = _kind_of(model, value, refs)
                    if kind:
                        refs[acc.ref] = kind
        for spawn in model.spawns:
            for param, expr in _spawn_params(model, spawn):
                ref = _expr_ref(model, expr, spawn.function, refs)
                kind = refs.get(ref or "") or (_kind_of(model, expr, refs) if isinstance(expr, cst.Call) else None)
                if kind:
                    refs.setdefault(param, kind)
    return refs


def assigned_values_once(model: ModuleModel, acc) -> Iterable[tuple[str, cst.BaseExpression]]:
    stmt = acc.statement
    if stmt is None:
        return ()
    out = []
    for small in stmt.body:
        if isinstance(small, cst.Assign) and any(t.target is acc.node for t in small.targets):
            out.append((acc.function, small.value))
        elif isinstance(small, cst.AnnAssign) and small.target is acc.node and small.value is not None:
            out.append((acc.function, small.value))
    return out


def _kind_of(model: ModuleModel, value: cst.BaseExpression, refs: dict[str, str]) -> str | None:
    if not isinstance(value, cst.Call):
        return None
    call = call_of(model, value)
    if call is None:
        return None
    if call.qualname in LOOP_FACTORIES:
        return "loop"
    if call.qualname in ASYNC_TYPES:
        return ASYNC_TYPES[call.qualname]
    if call.qualname in MODULE_UNSAFE:
        return "future"
    if call.attr in ("create_future", "create_task") and isinstance(value.func, cst.Attribute):
        inner = value.func.value
        if refs.get(call.receiver or "") == "loop" or (
            isinstance(inner, cst.Call) and _kind_of(model, inner, refs) == "loop"
        ):
            return "future"
    return None


def _expr_ref(model: ModuleModel, expr: cst.BaseExpression, function: str, refs: dict[str, str]) -> str | None:
    if isinstance(expr, cst.Name):
        for ref in (f"l:{function}.{expr.value}", f"g:{expr.value}"):
            if ref in refs:
                return ref
        return None
    for acc in model.functions[function].accesses:
        if acc.node is expr:
            return acc.ref
    return None


def _spawn_params(model: ModuleModel, spawn: Spawn) -> list[tuple[str, cst.BaseExpression]]:
    """(param ref of the target, argument expression) for arguments passed to a thread."""
    if len(spawn.targets) != 1:
        return []
    fn = model.functions.get(spawn.targets[0])
    if fn is None:
        return []
    params = list(fn.params)
    if fn.self_name and isinstance(spawn.target, cst.Attribute):
        params = params[1:]
    values: list[cst.BaseExpression] = []
    if spawn.kind in ("thread", "timer", "start_new_thread") and spawn.args is not None:
        if isinstance(spawn.args.value, (cst.Tuple, cst.List)):
            values = [el.value for el in spawn.args.value.elements]
    elif spawn.kind in ("submit", "to_thread", "run_in_executor"):
        skip = 2 if spawn.kind == "run_in_executor" else 1
        values = [a.value for a in spawn.node.args[skip:] if a.keyword is None and not a.star]
    return [(f"l:{fn.qualname}.{p}", v) for p, v in zip(params, values)]


def _entries_with_own_loop(model: ModuleModel) -> frozenset[str]:
    """Thread entries that run an event loop themselves: asyncio's, or another library's
    (``self.io_loop.start()``, ``io_loop.run_sync(...)`` on tornado's IOLoop)."""
    out = set()
    for entry in model.thread_entries:
        for name in model.reachable([entry]):
            if any(c.qualname in OWN_LOOP or c.attr in RUNS_LOOP or _starts_named_loop(c) for c in model.functions[name].calls):
                out.add(entry)
                break
    return frozenset(out)


def _starts_named_loop(call: Call) -> bool:
    func = call.node.func
    return (
        call.attr in ("start", "run_sync")
        and isinstance(func, cst.Attribute)
        and (last_name(func.value) or "").lower().endswith("loop")
    )


def _loop_thread_refs(model: ModuleModel, kinds: dict[str, str]) -> set[str]:
    """Loop refs run by a worker thread (``Thread(target=loop.run_forever)`` or inside a target)."""
    refs = set()
    for spawn in model.spawns:
        t = spawn.target
        if isinstance(t, cst.Attribute) and t.attr.value in RUNS_LOOP:
            ref = _expr_ref(model, t.value, spawn.function, kinds)
            if ref and kinds.get(ref) == "loop":
                refs.add(ref)
    for fn in model.functions.values():
        if not thread_entries_of(model, fn.qualname):
            continue
        for call in fn.calls:
            if call.attr in RUNS_LOOP and kinds.get(call.receiver or "") == "loop" and not call.receiver.startswith("l:"):
                refs.add(call.receiver)
    return refs


def _not_plain_main(model: ModuleModel) -> set[str]:
    """Functions that may run on the loop: coroutines, callbacks handed to other code, and their callees."""
    names = set()
    for call in model.calls:
        for arg in call.node.args:
            n = last_name(arg.value)
            if n:
                names.add(n)
    roots = [q for q, fn in model.functions.items() if fn.is_async or fn.name in names]
    return model.reachable(roots)
