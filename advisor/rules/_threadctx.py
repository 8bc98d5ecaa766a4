"""Small queries over a :class:`ModuleModel` shared by rules THR017-THR024."""

from __future__ import annotations

import weakref
from typing import Iterable, Iterator

import libcst as cst

from ..analysis.model import MODULE, Call, ModuleModel
from ._race import may_run_together, thread_entries_of

_CALLS: "weakref.WeakKeyDictionary[ModuleModel, dict[int, Call]]" = weakref.WeakKeyDictionary()


def call_of(model: ModuleModel, node: cst.CSTNode) -> Call | None:
    """The model's record of the call expression ``node``."""
    index = _CALLS.get(model)
    if index is None:
        index = {id(c.node): c for c in model.calls}
        _CALLS[model] = index
    return index.get(id(node))


def assigned_values(model: ModuleModel, ref: str) -> Iterator[tuple[str, cst.BaseExpression]]:
    """(function, value) for each plain ``ref = value`` in the module."""
    for fn in model.functions.values():
        for acc in fn.accesses:
            if acc.ref != ref or acc.kind not in ("write", "rmw") or acc.statement is None:
                continue
            for small in acc.statement.body:
                if isinstance(small, cst.Assign) and any(t.target is acc.node for t in small.targets):
                    yield fn.qualname, small.value
                elif isinstance(small, cst.AnnAssign) and small.target is acc.node and small.value is not None:
                    yield fn.qualname, small.value


class Ancestry(cst.CSTVisitor):
    """Records the chain of enclosing nodes of selected nodes (by identity)."""

    def __init__(self, wanted: Iterable[cst.CSTNode]) -> None:
        self.wanted = {id(n) for n in wanted}
        self.stack: list[cst.CSTNode] = []
        self.chains: dict[int, tuple[cst.CSTNode, ...]] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) in self.wanted:
            self.chains[id(node)] = tuple(self.stack)
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


def ancestry(root: cst.CSTNode, wanted: Iterable[cst.CSTNode]) -> dict[int, tuple[cst.CSTNode, ...]]:
    visitor = Ancestry(wanted)
    root.visit(visitor)
    return visitor.chains


def function_label(function: str) -> str | None:
    return None if function == MODULE else function


def last_name(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return None
