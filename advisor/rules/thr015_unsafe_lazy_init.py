from __future__ import annotations

from typing import Iterable, Iterator

import libcst as cst

from ..analysis.model import MODULE, Access, FunctionInfo, ModuleModel, assigned_value
from ._race import accesses_at, chain, function_label, may_run_together
from .base import Finding, Rule, RuleContext

SETUP = frozenset({"__init__", "__new__", "__post_init__", "__init_subclass__", "setUp", "setUpClass"})
FRESH = (cst.Call, cst.Dict, cst.List, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)


class UnsafeLazyInit(Rule):
    """
    ## What it does
    Flags lazy initialisation of shared state (`if self._x is None: self._x = make()`,
    a module-level singleton behind `global`) in code that runs on several threads
    without a lock, and double-checked locking whose second check inside the lock is
    missing. An attribute whose class's `__init__` always runs the initialising method is
    set before any thread sees the object, and is left alone.

    ## Why is this bad?
    Two threads can both see `None` and both create the object. Each gets a different
    instance: connections are opened twice, one thread's cached entries or registered
    callbacks vanish when the other's assignment wins. Taking a lock only *after* the
    unlocked test does not help unless the test is repeated inside the lock.

    ## Example
    ```python
    def get_client():
        global _client
        if _client is None:
            with _lock:
                _client = Client()
        return _client
    ```

    ## Use instead
    ```python
    def get_client():
        global _client
        if _client is None:
            with _lock:
                if _client is None:
                    _client = Client()
        return _client
    ```
    Or create the object eagerly, or use `functools.cache` on a factory guarded by a lock.
    """

    code = "THR015"
    name = "unsafe-lazy-init"
    summary = "lazy initialisation of shared state without a lock, or double-checked locking without the second check"
    help = "take a lock around the test and the assignment, and repeat the test inside the lock"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for fn in model.functions.values():
            if fn.qualname == MODULE or fn.is_lambda or fn.name in SETUP:
                continue
            if not fn.accesses:
                continue
            writes = [a for a in fn.accesses if a.kind == "write" and a.ref.startswith(("g:", "a:"))]
            if not writes:
                continue
            for stmt in _ifs(fn.node):
                finding = self._judge(ctx, model, fn, stmt, writes)
                if finding is not None:
                    yield finding

    def _judge(self, ctx, model: ModuleModel, fn: FunctionInfo, stmt: cst.If, writes: list[Access]) -> Finding | None:
        tested = _tested(model, stmt.test)
        if tested is None:
            return None
        ref, expr, test_held = tested
        if model.exclusive_held(fn.qualname, test_held):
            return None
        for acc in writes:
            if acc.ref != ref:
                continue
            up = chain(model, fn.node, acc.node)
            if stmt.body not in up:
                continue
            value = assigned_value(acc)
            if value is None:
                continue
            name = ctx.code(expr)
            new_locks = [h for h in acc.held if h.ref not in {t.ref for t in test_held}]
            if new_locks:
                if _rechecked(model, ctx, up, stmt, name):
                    return None
                return self.finding(
                    ctx,
                    acc.node,
                    f"double-checked locking without the second check: `{name}` is tested before the lock "
                    "is taken but not again inside it, so two threads can both assign it",
                    help="repeat the test inside the lock: `if x is None:` / `with lock:` / `if x is None: x = ...`",
                    function=function_label(fn.qualname),
                )
            if model.exclusive_held(fn.qualname, acc.held) or not _fresh(fn, value):
                continue
            if not may_run_together(model, fn.qualname, fn.qualname, acc.ref):
                continue
            if _primed_in_constructor(model, fn, acc.ref):
                continue
            return self.finding(
                ctx,
                stmt.test,
                f"unsafe lazy initialisation of `{name}`: threads running `{fn.name}` at once can each see it unset "
                "and each create their own object",
                function=function_label(fn.qualname),
            )
        return None


_BRANCHES = (cst.If, cst.IfExp, cst.For, cst.While, cst.Try, cst.With, cst.Match, cst.BooleanOperation, cst.Lambda)


def _primed_in_constructor(model: ModuleModel, fn: FunctionInfo, ref: str) -> bool:
    """``fn`` lazily sets an attribute of its own class and that class's ``__init__`` calls it
    unconditionally: the value is set before the object (or the class) is used by threads."""
    cls = fn.class_name
    init = model.functions.get(f"{cls}.__init__") if cls else None
    if init is None or not ref.startswith(f"a:{cls}."):
        return False
    return any(fn.qualname in call.callees and _always_runs(model, init.node, call.node) for call in init.calls)


def _always_runs(model: ModuleModel, root: cst.CSTNode, node: cst.CSTNode) -> bool:
    """``node`` runs whenever ``root`` does: it is in no branch, loop or handler (an ``if``'s
    test and the left side of ``and``/``or`` always run)."""
    child = node
    for parent in chain(model, root, node):
        if parent is root:
            return True
        if isinstance(parent, (cst.If, cst.While)) and child is parent.test:
            pass
        elif isinstance(parent, cst.BooleanOperation) and child is parent.left:
            pass
        elif isinstance(parent, _BRANCHES):
            return False
        child = parent
    return True


def _fresh(fn: FunctionInfo, value: cst.BaseExpression) -> bool:
    """A new object: built right there, or a local the function bound to one
    (``service = FlagService(...); service.start(); _service = service``)."""
    if isinstance(value, FRESH):
        return True
    if not isinstance(value, cst.Name):
        return False
    local = f"l:{fn.qualname}.{value.value}"
    bound = [assigned_value(a) for a in fn.accesses if a.ref == local and a.kind == "write"]
    return bool(bound) and all(isinstance(v, FRESH) for v in bound)


class _Ifs(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.If] = []

    def visit_If(self, node: cst.If) -> None:
        self.found.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _ifs(node: cst.CSTNode) -> list[cst.If]:
    visitor = _Ifs()
    body = getattr(node, "body", None)
    if body is not None:
        body.visit(visitor)
    return visitor.found


def _conjuncts(test: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        yield from _conjuncts(test.left)
        yield from _conjuncts(test.right)
    else:
        yield test


def _tested(model: ModuleModel, test: cst.BaseExpression):
    """(ref, expr, held) for ``x is None`` / ``x == None`` / ``not x`` on shared ``x``."""
    for part in _conjuncts(test):
        expr = None
        if isinstance(part, cst.Comparison) and len(part.comparisons) == 1:
            comp = part.comparisons[0]
            if isinstance(comp.operator, (cst.Is, cst.Equal)) and isinstance(comp.comparator, cst.Name) and comp.comparator.value == "None":
                expr = part.left
        elif isinstance(part, cst.UnaryOperation) and isinstance(part.operator, cst.Not):
            expr = part.expression
        if not isinstance(expr, (cst.Name, cst.Attribute)):
            continue
        for acc in accesses_at(model, expr):
            if acc.ref.startswith(("g:", "a:")) and model.primitive_kind(acc.ref) is None:
                return acc.ref, expr, acc.held
    return None


def _rechecked(model: ModuleModel, ctx: RuleContext, up: list[cst.CSTNode], outer: cst.If, name: str) -> bool:
    """Another test of the same state inside the outer ``if`` (enclosing the assignment or an
    early-return guard before it)."""
    wanted = "".join(name.split())
    finder = _Tests()
    outer.body.visit(finder)
    return any(wanted in "".join(ctx.code(test).split()) for test in finder.tests)


class _Tests(cst.CSTVisitor):
    def __init__(self) -> None:
        self.tests: list[cst.BaseExpression] = []

    def visit_If(self, node: cst.If) -> None:
        self.tests.append(node.test)

    def visit_While(self, node: cst.While) -> None:
        self.tests.append(node.test)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False
