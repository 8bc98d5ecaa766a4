from __future__ import annotations

import weakref
from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, Call, ModuleModel
from ._threadctx import function_label, thread_entries_of
from .base import Finding, Rule, RuleContext

FORKS = frozenset({"os.fork", "os.forkpty", "pty.fork"})
FORK_METHOD = frozenset({"multiprocessing.set_start_method", "multiprocessing.get_context"})
SPAWN_STARTS = frozenset({"start_new_thread", "submit", "map", "to_thread", "run_in_executor"})


class ForkWithThreads(Rule):
    """
    ## What it does
    Flags `os.fork()`, `os.forkpty()`, `pty.fork()` and choosing the `"fork"` start method of
    `multiprocessing` when this module has already started threads at that point: in the same
    function before the fork (and not joined), at import time, or when the fork itself runs
    on a worker thread.

    ## Why is this bad?
    The child process contains only the thread that called `fork()`. Locks held by the other
    threads at that instant (the logging lock, the import lock, a queue's mutex, `malloc`'s
    arena lock) are copied in their locked state and nobody will ever release them, so the
    child deadlocks at random. Work the other threads had in progress is also silently
    missing in the child.

    ## Example
    ```python
    threading.Thread(target=heartbeat, daemon=True).start()
    pid = os.fork()
    if pid == 0:
        handle_requests()
    ```

    ## Use instead
    ```python
    ctx = multiprocessing.get_context("spawn")   # or "forkserver"
    ctx.Process(target=handle_requests).start()
    threading.Thread(target=heartbeat, daemon=True).start()
    ```
    """

    code = "THR022"
    name = "fork-with-threads"
    summary = "`fork()` in a process that has already started threads: the child can deadlock on their locks"
    help = "fork before starting any thread, or use `subprocess` / a `spawn` or `forkserver` multiprocessing context"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        forks = [c for c in model.calls if _is_fork(c)]
        if not forks or not model.spawns:
            return
        starters = _functions_starting_threads(model)
        module_start = _first_start(model, model.functions[MODULE].calls, starters, None)
        for call in forks:
            why = None
            if thread_entries_of(model, call.function):
                why = "it runs on a worker thread"
            else:
                own = model.functions[call.function].calls
                start = _first_start(model, own, starters, call)
                if start is not None:
                    why = f"a thread was started before it in `{call.function}` and not joined"
                elif module_start is not None and call.function != MODULE:
                    why = "a thread is started when the module is imported"
                else:
                    caller = _caller_after_start(model, call.function, starters)
                    if caller is not None:
                        why = f"`{caller}` starts a thread before calling `{call.function}`"
            if why is None:
                continue
            name = ctx.code(call.node.func)
            yield self.finding(
                ctx,
                call.node,
                f"`{name}(...)` forks while other threads may be running ({why}); "
                "the child inherits their locks in whatever state they were",
                function=function_label(call.function),
            )


def _caller_after_start(model: ModuleModel, function: str, starters: set[str]) -> str | None:
    for fn in model.functions.values():
        for call in fn.calls:
            if function in call.callees and fn.qualname != function:
                if _first_start(model, fn.calls, starters - {function}, call) is not None:
                    return fn.qualname
    return None


def _is_fork(call: Call) -> bool:
    qual = call.qualname or ""
    if qual in FORKS:
        return True
    if qual in FORK_METHOD or (call.attr in ("set_start_method", "get_context") and qual.startswith("multiprocessing")):
        args = call.node.args
        return bool(args) and isinstance(args[0].value, cst.SimpleString) and args[0].value.evaluated_value == "fork"
    return False


def _starts_thread(model: ModuleModel, call: Call) -> bool:
    if call.attr == "start" and not call.node.args:
        func = call.node.func
        if call.receiver in model.thread_vars:
            return True
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            spawn = _spawn_at(model, func.value)
            return spawn is not None and spawn.kind in ("thread", "timer", "subclass")
        return False
    return id(call.node) in _pool_starts(model)


_POOL: "weakref.WeakKeyDictionary[ModuleModel, frozenset[int]]" = weakref.WeakKeyDictionary()


def _pool_starts(model: ModuleModel) -> frozenset[int]:
    found = _POOL.get(model)
    if found is None:
        found = frozenset(id(s.node) for s in model.spawns if s.kind in SPAWN_STARTS and s.certain)
        _POOL[model] = found
    return found


def _spawn_at(model: ModuleModel, node: cst.CSTNode):
    index = _SPAWNS.get(model)
    if index is None:
        index = {id(s.node): s for s in model.spawns}
        _SPAWNS[model] = index
    return index.get(id(node))


_SPAWNS: "weakref.WeakKeyDictionary[ModuleModel, dict]" = weakref.WeakKeyDictionary()


def _is_join(call: Call) -> bool:
    if call.attr == "shutdown":
        return True
    if call.attr != "join":
        return False
    positional = [a for a in call.node.args if a.keyword is None]
    return not positional or isinstance(positional[0].value, (cst.Integer, cst.Float))


def _functions_starting_threads(model: ModuleModel) -> set[str]:
    """Functions that return with a thread started (by them or a callee) and not joined."""
    callers: dict[str, set[str]] = {}
    for name, callees in model.callgraph.items():
        for callee in callees:
            callers.setdefault(callee, set()).add(name)
    found = {
        fn.qualname
        for fn in model.functions.values()
        if fn.qualname != MODULE and _first_start(model, fn.calls, set(), None) is not None
    }
    stack = list(found)
    while stack:
        for caller in callers.get(stack.pop(), ()):
            if caller not in found and caller != MODULE:
                found.add(caller)
                stack.append(caller)
    return found


def _first_start(model: ModuleModel, calls: list[Call], starters: set[str], until: Call | None) -> Call | None:
    """The earliest thread start among ``calls`` (before ``until``) not joined afterwards."""
    started: Call | None = None
    for call in calls:
        if call is until:
            break
        if _starts_thread(model, call) or any(c in starters for c in call.callees):
            started = started or call
        elif started is not None and _is_join(call):
            started = None
    return started
