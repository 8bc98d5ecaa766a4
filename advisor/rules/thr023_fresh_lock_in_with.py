from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import LOCK_KINDS, MODULE, PRIMITIVE_TYPES
from ._threadctx import call_of, function_label
from .base import Finding, Rule, RuleContext


class FreshLockInWith(Rule):
    """
    ## What it does
    Flags `with threading.Lock():` (or `RLock()`, `Condition()`, `Semaphore()`) on a lock
    created in the `with` statement itself, and locks created in a function's local variable
    that is only ever used by that one call (never stored, passed or captured).

    ## Why is this bad?
    A lock only excludes threads that acquire *the same* lock object. A lock created on the
    spot is a new object each time, so every thread gets its own, acquisition always succeeds
    and the block runs unprotected. The code looks synchronised but is not.

    ## Example
    ```python
    def record(self, item):
        with threading.Lock():
            self.items.append(item)
            self.count += 1
    ```

    ## Use instead
    ```python
    def __init__(self):
        self._lock = threading.Lock()

    def record(self, item):
        with self._lock:
            self.items.append(item)
            self.count += 1
    ```
    """

    code = "THR023"
    name = "fresh-lock-in-with"
    summary = "lock created where it is acquired: every caller gets its own lock, so it guards nothing"
    help = "create the lock once (module global or `self._lock` in `__init__`) and acquire that shared object"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        ctor_ids = {
            id(c.node)
            for c in model.calls
            if PRIMITIVE_TYPES.get(c.qualname or "") in LOCK_KINDS
        }
        if not ctor_ids:
            return
        collector = _WithCollector()
        ctx.module.visit(collector)
        for function, item in collector.items:
            if id(item) in ctor_ids:
                call = call_of(model, item)
                kind = PRIMITIVE_TYPES.get(call.qualname or "") if call else "Lock"
                if kind == "Condition" and isinstance(item, cst.Call) and item.args:
                    continue
                yield self.finding(
                    ctx,
                    item,
                    f"`with {ctx.code(item)}:` acquires a {kind} created right here; no other thread can ever hold it, so the block is not protected",
                    function=function_label(call.function if call else MODULE),
                )
        for fn in model.functions.values():
            if fn.qualname == MODULE or fn.is_lambda:
                continue
            for prim in model.primitives.values():
                if prim.function != fn.qualname or prim.kind not in LOCK_KINDS:
                    continue
                prefix = f"l:{fn.qualname}."
                if not prim.ref.startswith(prefix):
                    continue
                name = prim.ref[len(prefix):]
                if "." in name or name in fn.params:
                    continue
                if any(
                    a.function != fn.qualname and (a.ref == prim.ref or a.ref.startswith(prim.ref + "."))
                    for a in model.accesses
                ):
                    continue
                uses = _LocalLockUses(name)
                _visit_body(fn.node, uses)
                if uses.escapes or uses.assignments != 1 or not uses.acquired:
                    continue
                for node in uses.acquired:
                    yield self.finding(
                        ctx,
                        node,
                        f"`{name}` is a new {prim.kind} on every call of `{fn.qualname}` and is never shared, so acquiring it protects nothing",
                        function=fn.qualname,
                    )


def _visit_body(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    if isinstance(node, cst.FunctionDef):
        node.body.visit(visitor)
    else:
        node.visit(visitor)


class _WithCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.items: list[tuple[str, cst.BaseExpression]] = []

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            if isinstance(item.item, cst.Call):
                self.items.append((MODULE, item.item))


class _LocalLockUses(cst.CSTVisitor):
    """Occurrences of one local name: acquisitions, assignments, and anything else (escapes)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.acquired: list[cst.CSTNode] = []
        self.assignments = 0
        self.escapes = False
        self._ok: set[int] = set()

    def _is(self, expr: cst.CSTNode) -> bool:
        return isinstance(expr, cst.Name) and expr.value == self.name

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return True

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return True

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            if self._is(item.item):
                self._ok.add(id(item.item))
                self.acquired.append(item.item)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if self._is(target.target):
                self._ok.add(id(target.target))
                self.assignments += 1
            elif not isinstance(target.target, cst.Name):
                self.escapes = self.escapes or _mentions(target.target, self.name)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self._is(node.target):
            self._ok.add(id(node.target))
            self.assignments += 1

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and self._is(func.value) and func.attr.value in ("acquire", "release", "locked"):
            self._ok.add(id(func.value))
            if func.attr.value == "acquire":
                self.acquired.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._ok.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._ok.add(id(node.keyword))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name and id(node) not in self._ok:
            self.escapes = True

    def visit_Global(self, node: cst.Global) -> None:
        if any(n.name.value == self.name for n in node.names):
            self.escapes = True

    visit_Nonlocal = visit_Global  # type: ignore[assignment]


def _mentions(expr: cst.CSTNode, name: str) -> bool:
    found = []

    class _F(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                found.append(node)

    expr.visit(_F())
    return bool(found)
