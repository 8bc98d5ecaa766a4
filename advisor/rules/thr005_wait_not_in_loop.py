from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted
from ..analysis.model import MODULE, Span
from ..analysis.syntax import ends_with
from ._race import calls_in
from ._threadctx import assigned_values, call_of
from .base import Edit, Finding, Fix, Rule, RuleContext
from .thr004_acquire_without_release import parent_map

CONDITIONISH = re.compile(r"(^|_)(cv|cond|condition|not_empty|not_full|all_tasks_done)$", re.I)


class ConditionWaitNotInLoop(Rule):
    """
    ## What it does
    Flags `Condition.wait()` that is not inside a `while` loop re-checking the
    predicate it waits for (typically `if not ready: cond.wait()`, or a bare
    `cond.wait()`). `wait_for(predicate)` is fine, and so is `Event.wait()`, and so is
    code whose next statement checks the predicate again (`assert`/`if` on what was
    tested, or, after a timed wait, `return ready` reporting the outcome), and a wait that
    ends a pass of a `while` loop whose next pass re-checks. After a wait without a
    timeout, an `if` re-check that returns or raises does not count: it takes a wake-up
    whose item another waiter took for the end state.

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
            if fn.is_async or isinstance(parents.get(id(call.node)), (cst.Await, cst.Yield, cst.Return)):
                continue  # an asyncio.Condition, a coroutine library's (`yield cond.wait()`), or a
                # wait whose result goes back to the caller (`return cond.wait()`: tornado's future)
            loop = _loop_state(call, parents)
            if loop == "inside" or (loop == "unheld" and (call.in_while or looping_callers.get(call.function))):
                continue
            if loop == "outside" and _ends_loop_pass(call, parents):
                continue
            guard = _if_guard(call, parents)
            timed = bool(call.node.args)
            if timed and (guard is None or call.in_while):
                continue  # a timed wait used as an interruptible sleep, or a polling loop
            if _rechecked(fn.node, call, parents, timed):
                continue
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
    if call.receiver and any(_constructs_other(model, value) for _, value in assigned_values(model, call.receiver)):
        return False  # `self._cond = Event()` from another library: the name misleads
    text = dotted(func.value)
    return text is not None and bool(CONDITIONISH.search(text.rsplit(".", 1)[-1]))


def _constructs_other(model, value: cst.BaseExpression) -> bool:
    """An object built by an imported callable other than a ``Condition`` (eventlet's ``Event``)."""
    call = call_of(model, value) if isinstance(value, cst.Call) else None
    full = (call.qualname or "") if call is not None else ""
    if not full or full.split(".")[0] not in {q.split(".")[0] for q in model.imports.values()}:
        return False
    return full.rsplit(".", 1)[-1] != "Condition" and not full.startswith(("threading.", "multiprocessing."))


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


def _ends_loop_pass(call, parents) -> bool:
    """The wait is the last thing a pass of a ``while`` loop does (the last statement of the
    ``with cond:`` block, which is the last of the loop body, ``if`` bodies allowed between):
    after waking, the loop's next pass re-checks everything before acting."""
    node = call.statement
    if node is None:
        return False
    while id(node) in parents:
        block = parents[id(node)]
        if not isinstance(block, cst.IndentedBlock) or block.body[-1] is not node:
            return False
        owner = parents.get(id(block))
        if isinstance(owner, cst.While) and owner.body is block:
            return owner.orelse is None
        if isinstance(owner, cst.If) and owner.body is block:
            while isinstance(parents.get(id(owner)), cst.If):  # an `elif` branch
                owner = parents[id(owner)]
        elif not isinstance(owner, cst.With):
            return False
        node = owner
    return False


def _rechecked(fn_node: cst.CSTNode, call, parents, timed: bool) -> bool:
    """The statement right after the wait looks at the predicate again: an ``assert``, or an
    ``if`` or ``while`` whose test holds whenever the enclosing ``if``'s test still does (or,
    when that cannot be told, that reads everything it tested), or, after a timed wait, a
    ``return`` that reports a value without acting on it (the caller learns whether the
    wait succeeded). Such code handles an early wake-up."""
    test = _enclosing_test(call, parents)
    names = _dotted_names(test) if test is not None else set()
    after = _After(call.node)
    fn_node.visit(after)
    node = after.first
    if isinstance(node, cst.Assert):
        return timed or bool(names) and names <= _dotted_names(node.test)
    if isinstance(node, (cst.If, cst.While)):
        if isinstance(node, cst.If) and not timed and _gives_up(node):
            return False  # another waiter took the item: treating that as the end is the bug
        implied = _implies(test, node.test) if test is not None else None
        if implied is not None:
            return implied
        return bool(names) and names <= _dotted_names(node.test)
    if isinstance(node, cst.Return):
        return timed and node.value is not None and not _acts(node.value)
    return False


def _gives_up(node: cst.If) -> bool:
    """The re-check's branch leaves the function (``return None``, ``raise``): after a wait
    without a timeout, a wake-up that finds the predicate false is taken for the end state."""
    return ends_with(node.body, (cst.Return, cst.Raise))


def _acts(expr: cst.CSTNode) -> bool:
    """``expr`` changes state (``items.pop(0)``): it acts on the predicate rather than report it,
    and another waiter may have taken what it acts on."""
    from ..analysis.extract import MUTATORS

    return any(isinstance(n.func, cst.Attribute) and n.func.attr.value in MUTATORS for n in calls_in(expr))


def _enclosing_test(call, parents) -> cst.BaseExpression | None:
    node = call.node
    while id(node) in parents:
        parent = parents[id(node)]
        if isinstance(parent, cst.If) and node is parent.body:
            return parent.test
        if isinstance(parent, (cst.FunctionDef, cst.Lambda, cst.While, cst.For)):
            return None
        node = parent
    return None


def _implies(guard: cst.BaseExpression, recheck: cst.BaseExpression) -> bool | None:
    """Whether ``recheck`` is true whenever ``guard`` is (so a wake-up that finds the guard
    still true is caught), reading both as ``not``/``and``/``or`` over the same atoms
    (``self._heap``, ``x is None``...). None when the re-check reads other atoms or there are
    too many to tell."""
    atoms: dict[str, int] = {}
    g = _boolean(guard, atoms)
    known = len(atoms)
    r = _boolean(recheck, atoms)
    if len(atoms) > known or known > 8:
        return None  # the re-check tests something else too (`len(q) == 0` for `not q`)
    for bits in range(1 << len(atoms)):
        if _value(g, bits) and not _value(r, bits):
            return False
    return True


def _boolean(expr: cst.BaseExpression, atoms: dict[str, int]):
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Not):
        return ("not", _boolean(expr.expression, atoms))
    if isinstance(expr, cst.BooleanOperation):
        op = "and" if isinstance(expr.operator, cst.And) else "or"
        return (op, _boolean(expr.left, atoms), _boolean(expr.right, atoms))
    text = "".join(cst.Module([]).code_for_node(expr).split())
    return ("atom", atoms.setdefault(text, len(atoms)))


def _value(form, bits: int) -> bool:
    kind = form[0]
    if kind == "atom":
        return bool(bits >> form[1] & 1)
    if kind == "not":
        return not _value(form[1], bits)
    if kind == "and":
        return _value(form[1], bits) and _value(form[2], bits)
    return _value(form[1], bits) or _value(form[2], bits)


def _dotted_names(expr: cst.CSTNode) -> set[str]:
    """``self.items``, ``ready``... read in ``expr`` (``self`` alone does not count)."""
    out: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            text = dotted(node)
            if text:
                out.add(text)
                return False
            return True

        def visit_Name(self, node: cst.Name) -> None:
            if node.value not in ("self", "cls", "not", "None", "True", "False"):
                out.add(node.value)

    expr.visit(V())
    return out


class _After(cst.CSTVisitor):
    """The first statement that begins after ``node`` in source order (``first``)."""

    def __init__(self, node: cst.CSTNode) -> None:
        self.target = node
        self.seen = False
        self.first: cst.CSTNode | None = None
        self._root: cst.CSTNode | None = None

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.first is not None:
            return False
        if self._root is None:
            self._root = node
        elif isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            return False
        if node is self.target:
            self.seen = True
            return False
        if self.seen and isinstance(node, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
            self.first = node
            return False
        return True


def _if_guard(call, parents) -> cst.If | None:
    """The `if` whose body is exactly this wait statement (the `if pred: cond.wait()` shape),
    or a time-out check around it (`if pred: if not cond.wait(t): raise TimeoutError`)."""
    stmt = call.statement
    if stmt is None:
        node, up = call.node, parents.get(id(call.node))
        while isinstance(up, (cst.UnaryOperation, cst.Comparison, cst.ComparisonTarget)):
            node, up = up, parents.get(id(up))
        if not (isinstance(up, cst.If) and up.test is node and up.orelse is None and _gives_up(up)):
            return None
        stmt = up
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
