from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE
from .base import Edit, Finding, Fix, Rule, RuleContext


class ThreadRunInsteadOfStart(Rule):
    """
    ## What it does
    Flags `t.run()` on a `threading.Thread` (or `Timer`, or a `Thread` subclass) object.

    ## Why is this bad?
    `run()` is the method the new thread executes; calling it directly runs the target
    synchronously on the *calling* thread. No thread is started, `join()` later returns at
    once, and code that was meant to run in parallel runs serially.

    ## Example
    ```python
    t = threading.Thread(target=download, args=(url,))
    t.run()
    ```

    ## Use instead
    ```python
    t = threading.Thread(target=download, args=(url,))
    t.start()
    ```
    """

    code = "THR001"
    name = "thread-run-instead-of-start"
    summary = "`Thread.run()` called instead of `start()`: the target runs on the calling thread"
    help = "call `start()` to run the target on a new thread (and `join()` it when you need the result)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for call in model.calls:
            if call.attr != "run" or call.node.args:
                continue
            func = call.node.func
            assert isinstance(func, cst.Attribute)
            is_thread = call.receiver in model.thread_vars or _is_spawn_expr(model, func.value)
            if not is_thread:
                continue
            fn = model.functions.get(call.function)
            if fn is not None and fn.name == "run" and fn.class_name:
                continue
            fix = Fix(
                "unsafe",
                (Edit(ctx.span(func.attr), "start"),),
                "Replace `run()` with `start()` (the target then runs concurrently)",
            )
            yield self.finding(
                ctx,
                call.node,
                f"`{ctx.code(func.value)}.run()` runs the thread's target on the calling thread; no thread is started",
                fix=fix,
                function=call.function if call.function != MODULE else None,
            )


def _is_spawn_expr(model, expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and any(
        s.node is expr and s.kind in ("thread", "timer", "subclass") for s in model.spawns
    )
