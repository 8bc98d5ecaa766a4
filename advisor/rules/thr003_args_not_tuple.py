from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.extract import _kwarg, _positional
from ..analysis.model import MODULE
from .base import Edit, Finding, Fix, Rule, RuleContext

_STRINGS = (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)
_SCALARS = (cst.Integer, cst.Float, cst.Imaginary, *_STRINGS)
_PLAIN = (cst.Name, cst.Attribute, cst.Subscript, *_SCALARS)
_SEQUENCE_HINT = re.compile(r"(?i)tuple|list|sequence|iterable")
_PROCESS = frozenset({"multiprocessing.Process", "multiprocessing.context.Process"})


class ThreadArgsNotTuple(Rule):
    """
    ## What it does
    Flags `Thread(target=f, args=(x))`, where the parentheses around a single value do
    not make a tuple, and `args="text"`, a string passed as the argument sequence.

    ## Why is this bad?
    `args` is unpacked into the target's positional arguments. `(x)` is just `x`: a
    string is spread into one argument per character, a list into one argument per
    element, and most other values fail in the new thread with `TypeError`, far from
    the line that caused it.

    ## Example
    ```python
    t = threading.Thread(target=fetch, args=(url))
    ```

    ## Use instead
    ```python
    t = threading.Thread(target=fetch, args=(url,))
    ```
    """

    code = "THR003"
    name = "thread-args-not-tuple"
    summary = "`args=(x)` is not a tuple: the value is unpacked into the target's arguments"
    help = "write a one-element tuple with a trailing comma: `args=(x,)`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        seen: set[int] = set()
        sites: list[tuple[cst.Arg, str]] = []
        for spawn in model.spawns:
            if spawn.kind in ("thread", "timer", "subclass", "start_new_thread") and spawn.args is not None:
                sites.append((spawn.args, spawn.function))
        for call in model.calls:
            if call.qualname in _PROCESS:
                arg = _kwarg(call.node, "args") or _positional(call.node, 3)
                if arg is not None:
                    sites.append((arg, call.function))
        for arg, function in sites:
            if id(arg) in seen or arg.star:
                continue
            seen.add(id(arg))
            value = arg.value
            fn = model.functions.get(function)
            verdict = _not_a_tuple(value, fn, ctx.module)
            if verdict is None:
                continue
            inner = ctx.code(value.with_changes(lpar=(), rpar=()))
            fixed = f"({inner},)"
            safe = isinstance(value, _SCALARS)
            content = f"{inner}," if value.lpar else fixed
            fix = Fix(
                "safe" if safe else "unsafe",
                (Edit(ctx.span(value), content),),
                "Make `args` a one-element tuple",
            )
            yield self.finding(
                ctx,
                value,
                f"`args={ctx.code(value)}` is {verdict}, not a tuple; its items become the target's arguments",
                help=f"write `args={fixed}`",
                fix=fix,
                function=function if function != MODULE else None,
            )


def _not_a_tuple(value: cst.BaseExpression, fn, module: cst.Module) -> str | None:
    """Why ``value`` is not the tuple its author meant, or None when it may be right."""
    if isinstance(value, cst.Tuple):
        return None
    parenthesised = bool(value.lpar)
    if isinstance(value, _STRINGS):
        return "a string" if not parenthesised else "a parenthesised string"
    if not parenthesised or not isinstance(value, _PLAIN):
        return None
    if isinstance(value, cst.Name) and (
        (fn is not None and _bound_to_sequence(fn.node, value.value)) or _bound_to_sequence(module, value.value)
    ):
        return None
    return "a parenthesised single value"


def _bound_to_sequence(node: cst.CSTNode, name: str) -> bool:
    """True when ``name`` is assigned a tuple or list display somewhere in ``node``."""
    finder = _SequenceBinding(name)
    node.visit(finder)
    return finder.found


class _SequenceBinding(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.found = False

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(value, (cst.Tuple, cst.List, cst.ListComp)) and isinstance(target, cst.Name) and (
            target.value == self.name
        ):
            self.found = True

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._bind(t.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node.target, node.value)

    def visit_Param(self, node: cst.Param) -> None:
        if node.name.value == self.name and node.annotation is not None:
            text = cst.Module([]).code_for_node(node.annotation.annotation)
            if _SEQUENCE_HINT.search(text):
                self.found = True
