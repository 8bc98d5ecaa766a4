"""Source positions, computed only when a finding needs one.

The spans are libcst's ``PositionProvider`` ranges (syntactic positions: leading and trailing
whitespace a node owns left out), produced by one code generation pass over the module with
a lean recording state: plain tuples instead of position objects, a small context object
instead of a generator context manager, and no newline search in tokens that have none.
It takes about a quarter of the provider's time; ``tests/test_parse.py`` checks that every
node gets exactly the provider's range.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst._nodes.internal import CodegenState

from .model import Span

_NEWLINE = re.compile(r"\r\n?|\n")


class _Recording(CodegenState):
    """A codegen state that records ``(line, column, end_line, end_column)`` per node."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.line = 1
        self.column = 0
        self.spans: dict[cst.CSTNode, tuple[int, int, int, int]] = {}
        self._starts: list[tuple[int, int]] = []

    def _advance(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._starts.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        line, column = self._starts.pop()
        if node not in self.spans:
            self.spans[node] = (line, column, self.line, self.column)

    def record_syntactic_position(self, node, *, start_node=None, end_node=None):
        return _Syntactic(self, node, start_node, end_node)


class _Syntactic:
    __slots__ = ("end_node", "node", "start", "start_node", "state")

    def __init__(self, state: _Recording, node, start_node, end_node) -> None:
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc) -> bool:
        state = self.state
        spans = state.spans
        start = spans[self.start_node][:2] if self.start_node is not None else self.start
        end = spans[self.end_node][2:] if self.end_node is not None else (state.line, state.column)
        spans[self.node] = start + end
        return False


def node_spans(module: cst.Module) -> dict[cst.CSTNode, tuple[int, int, int, int]]:
    """``(line, column, end_line, end_column)`` of every node of ``module`` (1-based lines)."""
    state = _Recording(module)
    module._codegen(state)
    return state.spans


class Positions:
    """Maps CST nodes to spans. Resolving positions costs about half a parse, so it happens
    on the first request, i.e. only for files with findings."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._spans: dict[cst.CSTNode, tuple[int, int, int, int]] | None = None

    def span(self, node: cst.CSTNode) -> Span:
        if self._spans is None:
            self._spans = node_spans(self.module)
        return Span(*self._spans[node])
