"""Applying ``Edit``s to source text: positions to offsets, conflicts, newline style."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Sequence

from ..analysis.model import Span
from ..rules.base import Edit, Fix

NEWLINE = re.compile(r"\r\n|\r|\n")
"""Line breaks as Python's tokenizer (and libcst's positions) count them."""


class EditError(ValueError):
    """An edit that does not fit the text it is applied to."""


def line_starts(text: str) -> list[int]:
    """Offset of the first character of each line (line 1 at index 0)."""
    return [0] + [m.end() for m in NEWLINE.finditer(text)]


def newline_style(text: str) -> str:
    m = NEWLINE.search(text)
    return m.group() if m else "\n"


@dataclass(frozen=True)
class TextIndex:
    """Converts 1-based line / 0-based column positions of ``text`` to offsets and back."""

    text: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> "TextIndex":
        return cls(text, tuple(line_starts(text)))

    def line_end(self, line: int) -> int:
        """Offset just past the last character of ``line``, before its line break."""
        if line >= len(self.starts):
            return len(self.text)
        end = self.starts[line]
        return end - (2 if self.text[end - 2 : end] == "\r\n" else 1)

    def offset(self, line: int, column: int) -> int:
        if line < 1 or line > len(self.starts):
            raise EditError(f"line {line} is outside the file (1..{len(self.starts)})")
        if column < 0 or self.starts[line - 1] + column > self.line_end(line):
            raise EditError(f"column {column} is outside line {line}")
        return self.starts[line - 1] + column

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1]

    def range(self, span: Span) -> tuple[int, int]:
        start = self.offset(span.line, span.column)
        end = self.offset(span.end_line, span.end_column)
        if end < start:
            raise EditError(f"edit ends before it starts ({span})")
        return start, end


@dataclass(frozen=True)
class Replacement:
    """An edit resolved to offsets: ``text[start:end]`` becomes ``content``."""

    start: int
    end: int
    content: str


def resolve(index: TextIndex, fix: Fix) -> tuple[Replacement, ...]:
    """The fix's edits as offsets, sorted; raises ``EditError`` if they do not fit or overlap."""
    newline = newline_style(index.text)
    out = sorted(
        (Replacement(*index.range(e.span), NEWLINE.sub(newline, e.content)) for e in fix.edits),
        key=lambda r: (r.start, r.end),
    )
    for a, b in zip(out, out[1:]):
        if _conflict(a, b):
            raise EditError("the fix's own edits overlap")
    return tuple(out)


def _conflict(a: Replacement, b: Replacement) -> bool:
    """Overlapping ranges, or two edits at the same start (their order would be ambiguous)."""
    return a.start == b.start or (a.start < b.end and b.start < a.end)


def select(fixes: Sequence[tuple[Replacement, ...]]) -> list[int]:
    """Indexes of the fixes to apply together: in source order, each taken whole only when
    none of its edits conflicts with an edit already taken."""
    order = sorted(range(len(fixes)), key=lambda i: (fixes[i][0].start, fixes[i][0].end) if fixes[i] else (-1, -1))
    taken: list[Replacement] = []
    chosen: list[int] = []
    for i in order:
        if not fixes[i]:
            continue
        if any(_conflict(r, t) for r in fixes[i] for t in taken):
            continue
        taken.extend(fixes[i])
        chosen.append(i)
    return sorted(chosen)


def apply(text: str, replacements: Sequence[Replacement]) -> str:
    """Apply non-conflicting replacements (given as offsets into ``text``)."""
    ordered = sorted(replacements, key=lambda r: (r.start, r.end))
    for a, b in zip(ordered, ordered[1:]):
        if _conflict(a, b):
            raise EditError("edits overlap")
    parts: list[str] = []
    pos = 0
    for r in ordered:
        parts.append(text[pos : r.start])
        parts.append(r.content)
        pos = r.end
    parts.append(text[pos:])
    return "".join(parts)


def map_offset(offset: int, replacements: Sequence[Replacement], side: str = "start") -> int:
    """Where ``offset`` of the old text lands in the new text. An offset strictly inside a
    replaced range maps to the start (``side="start"``) or the end of the new content."""
    shift = 0
    for r in sorted(replacements, key=lambda r: (r.start, r.end)):
        if offset <= r.start:
            return offset + shift
        if offset < r.end:
            return r.start + shift + (len(r.content) if side == "end" else 0)
        shift += len(r.content) - (r.end - r.start)
    return offset + shift


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Convenience: apply one set of edits (one fix) to ``text``."""
    return apply(text, resolve(TextIndex.of(text), Fix("safe", tuple(edits))))
