from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted
from ..analysis.model import MODULE, Span
from .base import Edit, Finding, Fix, Rule, RuleContext
from .thr004_acquire_without_release import parent_map

CONDITIONISH = re.compile(r"(^|_)(cv|cond|condition|not_empty|not_full|all_tasks_done)$", re.I)


class ConditionWaitNotInLoop(Rule):
    """
    ## What it does
    Flags `Condition.wait()` that is not inside a `while` loop re-checking the
    predicate it waits for (typically `if not ready: cond.wait()`, or a bare
    `cond.wait()`). `wait_for(predicate)` is fine, and so is `Event.wait()`.

    ## Why is this bad?
    Waking up from `wait()` says only that someone called `notify()`: with several
    waiters, another thread may already have consumed the item or changed the state,
    and a `notify()` sent before `wait()` started is lost. Code after a single `wait()`
    then runs with the predicate false: it pops from an empty list, or hangs waiting
    for a notification that already happened.

    ## Example
    ```python
    with cond:
        if not items:
            cond.wait()
        item = items.pop()
    ```

    ## Use instead
    ```python
    with cond:
        while not items:
            cond.wait()
        item = items.pop()
    ```
    (or `cond.wait_for(lambda: items)`)
    """

    code = "THR005"
    name = "condition-wait-not-in-loop"
    summary = "`Condition.wait()` not inside a `while` loop that re-checks the predicate"
    help = "wait in a loop, `while not predicate: cond.wait()`, or use `cond.wait_for(predicate)`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        looping_callers: dict[str, bool] = {}
        maps: dict[str, dict] = {}
        for call in model.calls:
            for callee in call.callees:
                looping_callers[callee] = looping_callers.get(callee, True) and call.in_while
        for call in model.calls:
            if call.attr != "wait" or not _is_condition(model, call):
                continue
            fn = model.functions[call.function]
            parents = maps.get(fn.qualname)
            if parents is None:
                parents = maps[fn.qualname] = parent_map(fn.node)
            if fn.is_async or isinstance(parents.get(id(call.node)), cst.Await):
                continue  # an asyncio.Condition
            loop = _loop_state(call, parents)
            if loop == "inside" or (loop == "unheld" and (call.in_while or looping_callers.get(call.function))):
                continue
            guard = _if_guard(call, parents)
            timed = bool(call.node.args)
            if timed and (guard is None or call.in_while):
                continue  # a timed wait used as an interruptible sleep, or a polling loop
            fix = None
            if guard is not None and not timed:
                start = ctx.span(guard)
                fix = Fix(
                    "unsafe",
                    (Edit(Span(start.line, start.column, start.line, start.column + 2), "while"),),
                    "Turn the `if` into a `while` so the predicate is re-checked after waking",
                )
            receiver = ctx.code(call.node.func.value)  # type: ignore[attr-defined]
            shape = "under an `if`" if guard is not None else "without a loop"
            yield self.finding(
                ctx,
                call.node,
                f"`{receiver}.wait()` {shape}: after waking, the predicate may be false again "
                "(another waiter ran first, or the notification came before the wait)",
                fix=fix,
                function=call.function if call.function != MODULE else None,
            )


def _is_condition(model, call) -> bool:
    kind = call.receiver_kind or model.primitive_kind(call.receiver)
    if kind is not None:
        return kind == "Condition"
    func = call.node.func
    if not isinstance(func, cst.Attribute):
        return False
    text = dotted(func.value)
    return text is not None and bool(CONDITIONISH.search(text.rsplit(".", 1)[-1]))


def _loop_state(call, parents) -> str:
    """"inside": a `while` inside the `with cond:` block encloses the wait; "outside": the
    function takes the condition with `with` but loops only around that block (each pass
    waits once, without re-checking); "unheld": no `with cond:` here (acquired elsewhere)."""
    receiver = dotted(call.node.func.value)
    node = call.node
    while id(node) in parents:
        parent = parents[id(node)]
        if isinstance(parent, cst.While) and node is parent.body:
            return "inside"
        if isinstance(parent, cst.With) and any(dotted(i.item) == receiver for i in parent.items):
            return "outside"
        if isinstance(parent, (cst.FunctionDef, cst.Lambda)):
            break
        node = parent
    return "unheld"


def _if_guard(call, parents) -> cst.If | None:
    """The `if` whose body is exactly this wait statement (the `if pred: cond.wait()` shape)."""
    stmt = call.statement
    if stmt is None:
        return None
    block = parents.get(id(stmt))
    node = parents.get(id(block))
    if not isinstance(block, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return None
    if isinstance(block, cst.SimpleStatementSuite):
        return None
    if not isinstance(node, cst.If) or node.orelse is not None or len(block.body) != 1:
        return None
    if isinstance(parents.get(id(node)), cst.If):
        return None  # an `elif`
    return node
