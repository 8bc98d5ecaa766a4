"""Small queries over libcst nodes shared by the model and the rules."""

from __future__ import annotations

import libcst as cst


def names_in(node: cst.CSTNode) -> set[str]:
    """Every ``Name`` value under ``node`` (attribute names excluded)."""
    finder = _NameFinder()
    node.visit(finder)
    return finder.names


def all_names(node: cst.CSTNode) -> list[cst.Name]:
    """Every ``Name`` node under ``node`` in source order, attribute names included."""
    out: list[cst.Name] = []

    class V(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            out.append(n)

    node.visit(V())
    return out


def calls_in(node: cst.CSTNode) -> list[cst.Call]:
    """Every call expression under ``node`` (``node`` included)."""
    out: list[cst.Call] = []

    class Finder(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            out.append(call)

    node.visit(Finder())
    return out


class _NameFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False


class OwnBodyVisitor(cst.CSTVisitor):
    """A visitor that stays in the code it is given: nested functions, lambdas and classes
    run elsewhere (or later) and are not entered."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False


def ends_with(body: cst.BaseSuite, kinds: tuple[type, ...]) -> bool:
    """The block's last statement is one of ``kinds`` (``cst.Return``, ``cst.Raise``...)."""
    stmts = body.body if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)) else ()
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, cst.SimpleStatementLine):
        last = last.body[-1] if last.body else None
    return isinstance(last, kinds)
