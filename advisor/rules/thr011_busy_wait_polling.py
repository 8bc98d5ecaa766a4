from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted

from ..analysis.model import MODULE, FunctionInfo, ModuleModel
from ._race import call_at, function_label, may_run_together, ref_at, spawn_arg_params
from .base import Finding, Rule, RuleContext

SETUP = frozenset({"__init__", "__new__", "__post_init__", "setUp", "setUpClass"})
WRITES = ("write", "rmw", "mutate", "item-write", "item-rmw")


class BusyWaitPolling(Rule):
    """
    ## What it does
    Flags loops that do nothing but re-test a shared flag and sleep (or spin) until
    another thread changes it: `while not self.done: time.sleep(0.1)`,
    `while not ready: pass`, `while not event.is_set(): time.sleep(1)`, or a method that
    only reads such state (`while not self._due(): time.sleep(0.01)`), or a key another
    thread adds to a dict it was handed (`while "port" not in endpoint: ...`). A give-up check in
    the loop (`if time.monotonic() > deadline: raise TimeoutError`) is still polling.

    ## Why is this bad?
    Polling wastes CPU (a bare spin holds the GIL and slows the very thread it waits for)
    and adds up to one sleep interval of latency to every hand-off. A plain attribute
    carries no happens-before guarantee either: nothing says when, or in which order,
    the waiting thread sees the other thread's writes.

    ## Example
    ```python
    def wait_until_loaded(self):
        while not self.loaded:
            time.sleep(0.05)
    ```

    ## Use instead
    ```python
    def wait_until_loaded(self):
        self.loaded.wait()          # self.loaded = threading.Event(); loader calls .set()
    ```
    """

    code = "THR011"
    name = "busy-wait-polling"
    summary = "busy-wait / sleep polling on a flag set by another thread"
    help = "wait on a `threading.Event` (`event.wait(timeout)`) or a `Condition` instead of polling"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for fn in model.functions.values():
            if fn.is_lambda or not model.contexts.get(fn.qualname):
                continue
            for loop in fn.loops:
                for finding in self._check_loop(ctx, fn, loop):
                    yield finding
                    break

    def _check_loop(self, ctx: RuleContext, fn: FunctionInfo, loop: cst.While) -> Iterable[Finding]:
        model = ctx.model
        for flag in _polled(loop):
            expr, is_event, wants_truthy = flag
            if is_event:
                call = call_at(model, expr) if isinstance(expr, cst.Call) else None
                if call is None or call.receiver_kind != "Event" or wants_truthy is not True:
                    continue
                name = ctx.code(expr.func.value)
                yield self.finding(
                    ctx,
                    expr,
                    f"busy-wait on `{name}`: the loop polls `is_set()` and sleeps instead of waiting",
                    help=f"call `{name}.wait()` (with a timeout if the loop does other checks)",
                    function=function_label(fn.qualname),
                )
                continue
            if isinstance(expr, cst.Call):
                found = _predicate_writer(model, fn, expr)
                if found is None:
                    continue
                state, writer = found
                yield self.finding(
                    ctx,
                    expr,
                    f"busy-wait on `{ctx.code(expr)}`: the loop polls state (`{state}`) that `{writer}` "
                    "changes on another thread",
                    function=function_label(fn.qualname),
                )
                continue
            ref = _ref(model, fn, expr)
            if ref is None or model.primitive_kind(ref) is not None:
                continue
            writer = _writer(model, fn, ref, wants_truthy)
            if writer is None:
                continue
            yield self.finding(
                ctx,
                expr,
                f"busy-wait on `{ctx.code(expr)}`: the loop polls a flag that `{writer}` sets on another thread",
                function=function_label(fn.qualname),
            )


def _is_waiting_statement(stmt: cst.BaseStatement) -> bool:
    """``pass``, ``continue``, ``time.sleep(...)``/``sleep(...)`` and nothing else."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    for small in stmt.body:
        if isinstance(small, (cst.Pass, cst.Continue)):
            continue
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and _is_sleep(small.value.func):
            continue
        if isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.Ellipsis)):
            continue
        return False
    return True


def _is_escape(stmt: cst.BaseStatement) -> bool:
    """A give-up check that leaves the loop (``if time.monotonic() > deadline: raise ...``, with
    ``return`` or ``break`` too) or a local counter for one (``waited += step``): the loop still
    waits by polling."""
    if isinstance(stmt, cst.If):
        if stmt.orelse is not None:
            return False
        if isinstance(stmt.body, cst.SimpleStatementSuite):
            smalls = list(stmt.body.body)
        else:
            smalls = []
            for line in stmt.body.body:
                if not isinstance(line, cst.SimpleStatementLine):
                    return False
                smalls.extend(line.body)
        return bool(smalls) and all(isinstance(x, (cst.Raise, cst.Return, cst.Break)) for x in smalls)
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.AugAssign)
        and isinstance(stmt.body[0].target, cst.Name)
    )


def _is_sleep(func: cst.BaseExpression) -> bool:
    """``sleep(...)``, ``time.sleep(...)`` or ``asyncio.sleep(...)``; ``conn.sleep(0)`` on an
    object may run an event loop that sets the flag (pika's ``BlockingConnection.sleep``), and
    so does ``gevent.sleep(0)``."""
    if isinstance(func, cst.Name):
        return func.value == "sleep"
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "sleep"
        and isinstance(func.value, cst.Name)
        and (func.value.value.endswith("time") or func.value.value == "asyncio")
    )


def _polled(loop: cst.While) -> list[tuple[cst.BaseExpression, bool, bool | None]]:
    """The flags a do-nothing loop waits on (each operand of ``while not a and b:``), whether
    each is ``event.is_set()``, and whether the loop ends when it becomes truthy (None for
    comparisons)."""
    body = loop.body
    if not isinstance(body, cst.IndentedBlock) or loop.orelse is not None:
        return []
    stmts = list(body.body)
    test = loop.test
    exit_when_true = False
    if isinstance(test, cst.Name) and test.value == "True" and stmts:
        exit_when_true = True
        first = stmts[0]
        if not (isinstance(first, cst.If) and first.orelse is None and _is_break(first.body)):
            return []
        test, stmts = first.test, stmts[1:]
        if not any(_sleeps(s) for s in stmts):
            return []
    elif not stmts:
        return []
    if not all(_is_waiting_statement(s) or _is_escape(s) for s in stmts):
        return []
    if not any(_is_waiting_statement(s) for s in stmts):
        return []
    # any one operand ends the loop: `while a and b:`, `if a or b: break`
    joiner = cst.Or if exit_when_true else cst.And
    out = []
    for operand in _operands(test, joiner):
        flag = _flag(operand)
        if flag is not None:
            expr, is_event, negated, compared = flag
            out.append((expr, is_event, None if compared else (exit_when_true != negated)))
    return out


def _operands(test: cst.BaseExpression, joiner: type) -> list[cst.BaseExpression]:
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, joiner):
        return _operands(test.left, joiner) + _operands(test.right, joiner)
    return [test]


def _sleeps(stmt: cst.BaseStatement) -> bool:
    return _is_waiting_statement(stmt) and "sleep" in cst.Module([stmt]).code


def _is_break(body: cst.BaseSuite) -> bool:
    if isinstance(body, cst.SimpleStatementSuite):
        return len(body.body) == 1 and isinstance(body.body[0], cst.Break)
    return (
        isinstance(body, cst.IndentedBlock)
        and len(body.body) == 1
        and isinstance(body.body[0], cst.SimpleStatementLine)
        and len(body.body[0].body) == 1
        and isinstance(body.body[0].body[0], cst.Break)
    )


def _flag(test: cst.BaseExpression) -> tuple[cst.BaseExpression, bool, bool, bool] | None:
    """(flag, is ``is_set()``, negated by ``not``, compared with ``is``/``==``)."""
    negated = compared = False
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test, negated = test.expression, True
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        comp = test.comparisons[0]
        left = test.left
        if (
            isinstance(left, cst.Call)
            and isinstance(left.func, cst.Name)
            and left.func.value == "len"
            and len(left.args) == 1
            and isinstance(left.args[0].value, (cst.Name, cst.Attribute))
        ):
            return left.args[0].value, False, negated, True
        if isinstance(comp.operator, (cst.In, cst.NotIn)) and isinstance(comp.comparator, (cst.Name, cst.Attribute)):
            # ``while "port" not in endpoint:`` waits for another thread to add the key
            return comp.comparator, False, negated != isinstance(comp.operator, cst.NotIn), False
        if isinstance(comp.operator, (cst.Is, cst.IsNot, cst.Equal, cst.NotEqual)) and isinstance(
            comp.comparator, (cst.Name, cst.Integer, cst.SimpleString)
        ):
            test, compared = test.left, True
        else:
            return None
    if isinstance(test, cst.Call):
        func = test.func
        each = _each_flag(test)
        if each is not None:
            return each, False, negated, compared
        if isinstance(func, cst.Attribute) and func.attr.value == "is_set" and not test.args:
            return test, True, negated, compared
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and not test.args:
            return test, False, negated, True  # `self._due()`: a predicate method, read below
        return None
    if isinstance(test, (cst.Name, cst.Attribute)):
        return test, False, negated, compared
    return None


def _each_flag(test: cst.Call) -> cst.Attribute | None:
    """``w.finished`` in ``all(w.finished for w in workers)``: the flag polled on each item."""
    if not (isinstance(test.func, cst.Name) and test.func.value == "all" and len(test.args) == 1):
        return None
    gen = test.args[0].value
    if not isinstance(gen, cst.GeneratorExp) or not isinstance(gen.elt, cst.Attribute):
        return None
    target = gen.for_in.target
    base = gen.elt.value
    if isinstance(base, cst.Name) and isinstance(target, cst.Name) and base.value == target.value:
        return gen.elt
    return None


def _ref(model: ModuleModel, fn: FunctionInfo, expr: cst.BaseExpression) -> str | None:
    ref = ref_at(model, expr)
    local_attr = ref is not None and isinstance(expr, cst.Attribute) and ref == f"l:{fn.qualname}.{dotted(expr)}"
    if (ref is None or local_attr) and isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        # an item of a collection of objects of unknown type: the one class that sets this attribute
        owners = {a.ref for a in model.accesses if a.kind == "write" and a.ref.startswith("a:")
                  and a.ref.count(".") == 1 and a.ref.endswith("." + expr.attr.value)}
        if len(owners) == 1:
            ref = owners.pop()
    if ref is not None:
        return ref if ref.startswith(("g:", "a:", "l:")) else None
    if isinstance(expr, cst.Name) and expr.value in fn.local_names:
        return f"l:{fn.qualname}.{expr.value}"
    return None


PURE_CALLS = frozenset({"len", "bool", "min", "max", "abs", "time.time", "time.monotonic", "time.perf_counter"})
"""Calls a predicate method may make and still only read state."""


def _predicate_writer(model: ModuleModel, fn: FunctionInfo, expr: cst.Call) -> tuple[str, str] | None:
    """``self._due()`` where ``_due`` only reads state (attributes, the clock): the first
    attribute or global it reads that a function on another thread writes, and that function."""
    call = call_at(model, expr)
    if call is None or len(call.callees) != 1:
        return None
    pred = model.functions[call.callees[0]]
    own = f"l:{pred.qualname}."
    if any(a.kind != "read" and not a.ref.startswith(own) for a in pred.accesses) or any(
        (c.qualname or dotted(c.node.func) or "") not in PURE_CALLS for c in pred.calls
    ):
        return None
    for acc in pred.accesses:
        if acc.ref.startswith(("a:", "g:")) and model.primitive_kind(acc.ref) is None:
            writer = _writer(model, fn, acc.ref, None)
            if writer is not None:
                return acc.ref.split(":", 1)[1].rsplit(".", 1)[-1], writer
    return None


ADDERS = frozenset({"append", "appendleft", "add", "extend", "insert", "update", "setdefault", "put", "__setitem__"})
REMOVERS = frozenset({"pop", "popleft", "popitem", "remove", "discard", "clear", "__delitem__"})


def _writer(model: ModuleModel, fn: FunctionInfo, ref: str, wants_truthy: bool | None) -> str | None:
    """A function on another thread that changes the flag in the direction that ends the loop
    (through a parameter, when ``fn`` hands the object to the thread in ``args``)."""
    refs = {ref} | _handed_to_threads(model, fn, ref)
    for other in model.functions.values():
        if other is fn or other.name in SETUP or other.qualname == MODULE:
            continue
        if not any(a.ref in refs and _ends_wait(a, wants_truthy) for a in other.accesses):
            continue
        if may_run_together(model, fn.qualname, other.qualname):
            return other.qualname
    return None


def _handed_to_threads(model: ModuleModel, fn: FunctionInfo, ref: str) -> set[str]:
    """The parameters of thread targets that ``fn`` passes its local ``ref`` to in ``args``."""
    return {
        param for spawn in model.spawns if spawn.function == fn.qualname
        for arg, param in spawn_arg_params(model, spawn)
        if isinstance(arg, cst.Name) and f"l:{fn.qualname}.{arg.value}" == ref
    }


def _ends_wait(acc, wants_truthy: bool | None) -> bool:
    if acc.kind in ("write", "rmw") or wants_truthy is None:
        return acc.kind in WRITES
    if acc.kind == "mutate" and isinstance(acc.node, cst.Call) and isinstance(acc.node.func, cst.Attribute):
        method = acc.node.func.attr.value
        return method in (ADDERS if wants_truthy else REMOVERS)
    if acc.kind in ("item-write", "item-rmw"):
        is_del = acc.statement is not None and any(
            isinstance(s, cst.Del) and s.target is acc.node for s in acc.statement.body
        )
        return is_del != wants_truthy
    return False
