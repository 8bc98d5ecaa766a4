"""A faster ``CSTNode.visit`` for read-only visitors.

libcst visits children by rebuilding every node (``_visit_and_replace_children``), even for a
``CSTVisitor`` that cannot change the tree; for the analyzer that rebuilding costs several times
the parse. :func:`walk` calls the same hooks in the same order without rebuilding anything, and
skips whitespace, comments and punctuation when the visitor has no hook for them (nothing it
could observe). :func:`install` routes ``CSTNode.visit`` for ``CSTVisitor`` instances through it,
so rules keep writing ``node.visit(visitor)``. Transformers are untouched.

The child order of each node class is read from libcst's own ``_visit_and_replace_children``
source; a class whose order cannot be read is visited by libcst itself.
"""

from __future__ import annotations

import linecache
import os
import re
import typing
from abc import ABC
from types import FunctionType

import libcst as cst
from libcst import MaybeSentinel
from libcst._metadata_dependent import MetadataDependent
from libcst._typed_visitor import CSTTypedBaseFunctions, CSTTypedVisitorFunctions

_ORIGINAL_VISIT = cst.CSTNode.visit
_CALL = re.compile(r"\bvisit_(?:required|optional|sentinel|sequence|iterable|body_sequence|body_iterable)\(\s*self,\s*\"(\w+)\"")
_ANY_CALL = re.compile(r"\bvisit_\w+\(")

_WHITESPACE = frozenset(
    {
        cst.SimpleWhitespace, cst.ParenthesizedWhitespace, cst.TrailingWhitespace,
        cst.Newline, cst.EmptyLine, cst.Comment,
    }
)
_PUNCTUATION = frozenset(
    {
        cst.LeftParen, cst.RightParen, cst.LeftSquareBracket, cst.RightSquareBracket,
        cst.LeftCurlyBrace, cst.RightCurlyBrace, cst.Comma, cst.Semicolon, cst.Colon,
        cst.Dot, cst.AssignEqual, cst.Asynchronous,
    }
)


def _operator_classes() -> frozenset[type]:
    out: set[type] = set()
    bases = (cst.BaseUnaryOp, cst.BaseBinaryOp, cst.BaseBooleanOp, cst.BaseCompOp, cst.BaseAugOp)
    stack = list(bases)
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            out.add(sub)
            stack.append(sub)
    return frozenset(out)


_TRIVIA = _PUNCTUATION | _operator_classes()

_fields: dict[type, tuple[str, ...] | None] = {}
_MISSING = object()
_conditional: set[tuple[type, str]] = set()
"""(class, field) pairs libcst visits, attribute hooks included, only when not None."""


def child_fields(cls: type) -> tuple[str, ...] | None:
    """Names of ``cls``'s child fields in libcst's visiting order, or None if unknown."""
    try:
        return _fields[cls]
    except KeyError:
        pass
    order = _read_order(cls)
    _fields[cls] = order
    return order


def _read_order(cls: type) -> tuple[str, ...] | None:
    fn = getattr(cls, "_visit_and_replace_children", None)
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    lines = linecache.getlines(code.co_filename)
    start = code.co_firstlineno - 1
    if not lines or start >= len(lines):
        return None
    indent = len(lines[start]) - len(lines[start].lstrip())
    body = [lines[start]]
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped and len(line) - len(line.lstrip()) <= indent and not stripped.startswith(")"):
            break
        body.append(line)
    text = "".join(body)
    names: list[str] = []
    for m in _CALL.finditer(text):
        if m.group(1) not in names:
            names.append(m.group(1))
    calls = len(_ANY_CALL.findall(text))
    dataclass_fields = getattr(cls, "__dataclass_fields__", {})
    if "return" not in text or calls != len(_CALL.findall(text)) or not all(n in dataclass_fields for n in names):
        return None
    for name in names:
        if re.search(rf"\bif (?:self\.)?{name} is not None", text):
            _conditional.add((cls, name))
    return tuple(names)


_lean: dict[type, tuple[str, ...] | None] = {}
_PUNCTUATION_BASES = (
    cst.BaseParenthesizableWhitespace, cst.TrailingWhitespace, cst.Newline, cst.EmptyLine, cst.Comment,
    *_PUNCTUATION,
)


def lean_fields(cls: type) -> tuple[str, ...] | None:
    """``child_fields`` less the fields whose declared type allows only whitespace, comments
    and punctuation (visited for nothing by a visitor that has no hook for those)."""
    try:
        return _lean[cls]
    except KeyError:
        pass
    fields = child_fields(cls)
    if fields is not None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            hints = {}
        fields = tuple(name for name in fields if not _only_punctuation(hints.get(name)))
    _lean[cls] = fields
    return fields


def _only_punctuation(hint) -> bool:
    if hint is None:
        return False
    args = typing.get_args(hint)
    if args:
        return all(_only_punctuation(a) for a in args if a is not type(None) and a is not MaybeSentinel)
    return isinstance(hint, type) and issubclass(hint, _PUNCTUATION_BASES)


class _Plan:
    """How to drive one visitor class: direct hook functions, or its generic ``on_*``."""

    __slots__ = ("generic", "hooks", "skip", "handled", "lean", "table")

    def __init__(self, visitor_cls: type) -> None:
        own: set[str] = set()
        for klass in visitor_cls.__mro__:
            if klass in _BASES:
                continue
            own.update(n for n in vars(klass) if n.startswith(("visit_", "leave_", "on_")))
        self.generic = any(n in own for n in ("on_visit", "on_leave"))
        self.hooks = "on_visit_attribute" in own or "on_leave_attribute" in own or any(
            n.count("_") >= 2 for n in own if n.startswith(("visit_", "leave_"))
        )
        self.handled = {n.split("_", 1)[1] for n in own if n.startswith(("visit_", "leave_"))}
        handles_ws = any(c.__name__ in self.handled for c in _WHITESPACE)
        if self.generic or self.hooks or handles_ws:
            self.skip: frozenset[type] = frozenset()
        else:
            self.skip = _WHITESPACE | frozenset(c for c in _TRIVIA if c.__name__ not in self.handled)
        punctuation = {c.__name__ for c in _WHITESPACE | _PUNCTUATION}
        self.lean = not self.generic and not self.hooks and not (self.handled & punctuation)
        self.table: dict[type, tuple] = {}
        for name in own:
            value = getattr(visitor_cls, name, None)
            if name.startswith(("visit_", "leave_")) and not isinstance(value, FunctionType):
                self.generic = True
                self.skip = frozenset()

    def entry(self, visitor_cls: type, node_cls: type) -> tuple:
        """(child fields, visit hook, leave hook) for ``node_cls``; cached."""
        fields = lean_fields(node_cls) if self.lean else child_fields(node_cls)
        hooks = []
        for prefix in ("visit", "leave"):
            fn = None
            if node_cls.__name__ in self.handled:
                fn = getattr(visitor_cls, f"{prefix}_{node_cls.__name__}", None)
            hooks.append(fn)
        entry = self.table[node_cls] = (fields, hooks[0], hooks[1])
        return entry


_BASES = (cst.CSTVisitor, CSTTypedVisitorFunctions, CSTTypedBaseFunctions, MetadataDependent, ABC, object)
_plans: dict[type, _Plan] = {}


def _plan(visitor: cst.CSTVisitor) -> _Plan:
    cls = type(visitor)
    plan = _plans.get(cls)
    if plan is None:
        plan = _plans[cls] = _Plan(cls)
    if not plan.generic and any(k.startswith(("visit_", "leave_", "on_")) for k in vars(visitor)):
        return _generic_plan()
    return plan


_GENERIC: _Plan | None = None


def _generic_plan() -> _Plan:
    global _GENERIC
    if _GENERIC is None:
        plan = _Plan(cst.CSTVisitor)
        plan.generic = True
        plan.hooks = True
        plan.skip = frozenset()
        _GENERIC = plan
    return _GENERIC


def walk(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """Visit ``node`` and its subtree with ``visitor`` exactly as ``node.visit`` would."""
    plan = _plan(visitor)
    if plan.generic or plan.hooks:
        _walk_generic(node, visitor, plan.hooks)
    else:
        _walk_direct(node, visitor, plan, type(visitor))


_node_types: dict[type, bool] = {}


def _is_node(cls: type) -> bool:
    known = _node_types.get(cls)
    if known is None:
        known = _node_types[cls] = issubclass(cls, cst.CSTNode)
    return known


def _walk_direct(node: cst.CSTNode, visitor: cst.CSTVisitor, plan: _Plan, vcls: type) -> None:
    cls = type(node)
    entry = plan.table.get(cls)
    if entry is None:
        entry = plan.entry(vcls, cls)
    fields, visit, leave = entry
    if fields is None:
        _ORIGINAL_VISIT(node, visitor)
        return
    if visit is None or visit(visitor, node) is not False:
        skip = plan.skip
        for name in fields:
            value = getattr(node, name)
            if type(value) is tuple or type(value) is list:
                for child in value:
                    if type(child) not in skip:
                        _walk_direct(child, visitor, plan, vcls)
            elif value is not None and type(value) not in skip and _is_node(type(value)):
                _walk_direct(value, visitor, plan, vcls)
    if leave is not None:
        leave(visitor, node)


def _walk_generic(node: cst.CSTNode, visitor: cst.CSTVisitor, hooks: bool) -> None:
    fields = child_fields(type(node))
    if fields is None:
        _ORIGINAL_VISIT(node, visitor)
        return
    if visitor.on_visit(node):
        for name in fields:
            value = getattr(node, name)
            if value is None and (type(node), name) in _conditional:
                continue
            if hooks:
                visitor.on_visit_attribute(node, name)
            if type(value) is tuple or type(value) is list:
                for child in value:
                    _walk_generic(child, visitor, hooks)
            elif value is not None and _is_node(type(value)):
                _walk_generic(value, visitor, hooks)
            if hooks:
                visitor.on_leave_attribute(node, name)
    visitor.on_leave(node)


def _fast_visit(self: cst.CSTNode, visitor):
    if isinstance(visitor, cst.CSTVisitor):
        walk(self, visitor)
        return self
    return _ORIGINAL_VISIT(self, visitor)


_ORIGINAL_CHILDREN = cst.CSTNode.children


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node.children`` without rebuilding ``node``."""
    fields = child_fields(type(node))
    if fields is None:
        return list(_ORIGINAL_CHILDREN.fget(node))
    out: list[cst.CSTNode] = []
    for name in fields:
        value = getattr(node, name)
        if type(value) is tuple or type(value) is list:
            out.extend(value)
        elif value is not None and _is_node(type(value)):
            out.append(value)
    return out


def original_visit(node: cst.CSTNode, visitor) -> object:
    """libcst's own traversal (for comparison in tests)."""
    previous = cst.CSTNode.visit
    cst.CSTNode.visit = _ORIGINAL_VISIT
    try:
        return node.visit(visitor)
    finally:
        cst.CSTNode.visit = previous


def install() -> bool:
    """Route ``CSTNode.visit`` for read-only visitors through :func:`walk` (idempotent).

    ``ADVISOR_FAST_VISIT=0`` in the environment keeps libcst's own traversal."""
    if os.environ.get("ADVISOR_FAST_VISIT", "1") == "0":
        return False
    cst.CSTNode.visit = _fast_visit
    cst.CSTNode.children = property(children, doc=_ORIGINAL_CHILDREN.__doc__)
    return True
