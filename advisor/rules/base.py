"""What a rule is and what it reports."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator

from ..analysis.model import ModuleModel, Span

if TYPE_CHECKING:
    import libcst as cst

    from ..analysis.positions import Positions


@dataclass(frozen=True)
class Edit:
    """Replace the text in ``span`` with ``content``."""

    span: Span
    content: str

    def to_dict(self) -> dict:
        return {
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "content": self.content,
        }


@dataclass(frozen=True)
class Fix:
    applicability: str  # "safe" | "unsafe"
    edits: tuple[Edit, ...]
    message: str = ""

    def to_dict(self) -> dict:
        return {
            "applicability": self.applicability,
            "message": self.message,
            "edits": [e.to_dict() for e in self.edits],
        }


@dataclass
class Finding:
    code: str
    name: str
    path: str
    span: Span
    message: str
    help: str
    severity: str = "warning"
    fix: Fix | None = None
    advice: dict | None = None
    context: str | None = None
    """Qualname of the enclosing function (for advice prompts)."""

    @property
    def line(self) -> int:
        return self.span.line

    def sort_key(self) -> tuple:
        return (self.path, self.span.line, self.span.column, self.code)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "message": self.message,
            "help": self.help,
            "fix": self.fix.to_dict() if self.fix else None,
            "advice": self.advice,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        fix = None
        if d.get("fix"):
            f = d["fix"]
            fix = Fix(
                f["applicability"],
                tuple(
                    Edit(Span(e["line"], e["column"], e["end_line"], e["end_column"]), e["content"])
                    for e in f["edits"]
                ),
                f.get("message", ""),
            )
        return cls(
            d["code"], d["name"], d["path"],
            Span(d["line"], d["column"], d["end_line"], d["end_column"]),
            d["message"], d["help"], d.get("severity", "warning"), fix, d.get("advice"),
            d.get("context"),
        )


@dataclass
class RuleContext:
    """What a rule sees of one file."""

    path: str
    source: str
    model: ModuleModel
    positions: Positions
    _lines: list[str] | None = field(default=None, repr=False)

    @property
    def module(self) -> cst.Module:
        return self.model.module

    def span(self, node: cst.CSTNode) -> Span:
        return self.positions.span(node)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def line(self, number: int) -> str:
        """Line ``number`` (1-based) of the source, counted as libcst's positions count them."""
        if self._lines is None:
            self._lines = _NEWLINE.split(self.source)
        return self._lines[number - 1]


_NEWLINE = re.compile(r"\r\n|\r|\n")


class Rule:
    """Base class. Subclasses set ``code``, ``name``, ``summary``, ``help`` and a docstring
    with the sections *What it does / Why is this bad? / Example / Use instead*."""

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    help: ClassVar[str]
    severity: ClassVar[str] = "warning"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        raise NotImplementedError

    def finding(
        self,
        ctx: RuleContext,
        node: cst.CSTNode,
        message: str,
        *,
        help: str | None = None,
        fix: Fix | None = None,
        function: str | None = None,
    ) -> Finding:
        return Finding(
            code=self.code,
            name=self.name,
            path=ctx.path,
            span=ctx.span(node),
            message=message,
            help=help or self.help,
            severity=self.severity,
            fix=fix,
            context=function,
        )

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def iter_rule_classes(module) -> Iterator[type[Rule]]:
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and getattr(value, "code", None):
            if value.__module__ == module.__name__:
                yield value
