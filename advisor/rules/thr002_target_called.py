from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE
from ..analysis.syntax import OwnBodyVisitor
from .base import Edit, Finding, Fix, Rule, RuleContext

class ThreadTargetCalled(Rule):
    """
    ## What it does
    Flags `Thread(target=f())`, `Timer(delay, f())` and `executor.submit(f())`: the
    callable is *called* where it should be passed.

    ## Why is this bad?
    `f()` runs immediately on the current thread and its return value (usually `None`)
    becomes the target. The work happens serially before the thread exists, and the
    thread itself does nothing (or fails with `'NoneType' object is not callable`).

    ## Example
    ```python
    t = threading.Thread(target=worker(queue))
    ```

    ## Use instead
    ```python
    t = threading.Thread(target=worker, args=(queue,))
    ```
    """

    code = "THR002"
    name = "thread-target-called"
    summary = "thread target is called (`target=f()`) instead of passed (`target=f`)"
    help = "pass the function itself and its arguments separately: `target=f, args=(...)`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for spawn in model.spawns:
            target = spawn.target
            if spawn.kind not in ("thread", "timer", "submit", "start_new_thread", "to_thread", "run_in_executor"):
                continue
            if not isinstance(target, cst.Call):
                continue
            if spawn.kind == "submit" and not spawn.certain:
                continue
            call = next((c for c in model.functions[spawn.function].calls if c.node is target), None)
            if call is None or not _returns_plain_value(model, call):
                continue
            fix = None
            if not target.args:
                fix = Fix(
                    "unsafe",
                    (Edit(ctx.span(target), ctx.code(target.func)),),
                    "Pass the function instead of calling it",
                )
            callee = ctx.code(target.func)
            yield self.finding(
                ctx,
                target,
                f"`{ctx.code(target)}` is called here, on the current thread; the thread gets its return value as target",
                help=f"pass `{callee}` itself" + (" and its arguments via `args=(...)`" if target.args else ""),
                fix=fix,
                function=spawn.function if spawn.function != MODULE else None,
            )


def _returns_plain_value(model, call) -> bool:
    """True when the callee is a module function that returns no value (a procedure):
    its result cannot be the intended target. For a method of an object of unknown type, every
    method of that name in the module must be one. Unknown callees and functions that return
    something (possibly a callable) are left alone."""
    for callee in call.callees:
        fn = model.functions.get(callee)
        if fn is not None and isinstance(fn.node, cst.FunctionDef):
            return _procedure(fn)
    func = call.node.func
    if isinstance(func, cst.Attribute) and func.attr.value in NEVER_CALLABLE:
        named = [fn for fn in model.functions.values()
                 if fn.class_name and fn.name == func.attr.value and isinstance(fn.node, cst.FunctionDef)]
        return all(_procedure(fn) for fn in named)
    candidates = _same_named_methods(model, call.node)
    return bool(candidates) and all(_procedure(fn) for fn in candidates)


def _procedure(fn) -> bool:
    finder = _ReturnFinder()
    fn.node.body.visit(finder)
    return not finder.returns_value


def _same_named_methods(model, node: cst.Call) -> list:
    """For ``obj.name()`` on an object of unknown type: the module's methods called ``name``
    (``limiter.refill()`` with ``limiter`` a parameter and ``refill`` defined by a class here).
    Names a thread or a container also has (``start``, ``get``...) are left alone."""
    func = node.func
    if not isinstance(func, cst.Attribute) or func.attr.value in _COMMON:
        return []
    name = func.attr.value
    return [fn for fn in model.functions.values()
            if fn.class_name and fn.name == name and isinstance(fn.node, cst.FunctionDef)]


NEVER_CALLABLE = frozenset({"close", "stop", "join", "start", "wait", "write", "send", "sendall", "release",
                            "acquire", "set", "clear", "put", "shutdown", "cancel", "flush", "notify", "notify_all"})
"""Methods that return None, a bool or a count on every object that has them (files, sockets,
threads, primitives, queues, executors): never a thread target, unless a method of that name
defined in the module returns something."""

_COMMON = frozenset({"run", "start", "join", "get", "put", "wait", "close", "stop", "read", "write", "send", "recv",
                     "update", "pop", "copy", "result", "submit", "acquire", "release", "set", "clear", "__call__"})


class _ReturnFinder(OwnBodyVisitor):
    def __init__(self) -> None:
        self.returns_value = False

    def visit_Return(self, node: cst.Return) -> None:
        value = node.value
        if value is not None and not (isinstance(value, cst.Name) and value.value == "None"):
            self.returns_value = True

    def visit_Yield(self, node: cst.Yield) -> None:
        self.returns_value = True
