"""The fix loop: apply fixes to a text, verify the result, repeat until nothing changes.

Pure: the analyzer is passed in as ``checker`` (text -> ``FileResult``), so the loop can be
driven with any rule set, including crafted ones in tests.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable, Sequence

import libcst as cst

from ..engine import FileResult
from ..rules.base import Finding
from .edits import EditError, Replacement, TextIndex, apply, map_offset, resolve, select

Checker = Callable[[str], FileResult]
MAX_PASSES = 8


@dataclass(frozen=True)
class FixFailure:
    """A fix that was not applied, with the line of its finding in the original text."""

    code: str
    line: int
    reason: str


@dataclass
class FixOutcome:
    source: str
    text: str
    """The fixed text (``source`` itself when nothing could be fixed)."""
    fixed: int
    initial: FileResult
    result: FileResult
    """The analyzer's findings on ``text``."""
    failures: list[FixFailure] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.source


def applicable(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    if fix is None or not fix.edits:
        return False
    return fix.applicability == "safe" or (unsafe and fix.applicability == "unsafe")


@dataclass(frozen=True)
class _Candidate:
    findings: tuple[Finding, ...]
    replacements: tuple[Replacement, ...]


def fix_text(source: str, checker: Checker, *, unsafe: bool = False, max_passes: int = MAX_PASSES) -> FixOutcome:
    """Apply the applicable fixes of ``checker``'s findings, pass after pass.

    Each batch is verified before it is kept: the fixed text must parse (and compile, when the
    original did) and no fixed finding may persist. A batch that fails is retried one fix at
    a time; fixes that fail alone are reported and never retried."""
    initial = checker(source)
    outcome = FixOutcome(source, source, 0, initial, initial)
    if initial.errors or not initial.parsed:
        return outcome
    compiles = _compile_error(source) is None
    text, result = source, initial
    blocked: set[tuple] = set()
    lines = _LineTracker()
    for _ in range(max_passes):
        index = TextIndex.of(text)
        candidates = _candidates(index, result.findings, unsafe, blocked, outcome.failures, lines)
        if not candidates:
            break
        chosen = [candidates[i] for i in select([c.replacements for c in candidates])]
        trial = _verify(text, result, chosen, checker, compiles)
        if isinstance(trial, str):
            accepted: list[_Candidate] = []
            first_reason, trial = trial, None
            for cand in chosen:
                attempt = first_reason if len(chosen) == 1 else _verify(text, result, accepted + [cand], checker, compiles)
                if isinstance(attempt, str):
                    blocked.add(_key(text, cand))
                    outcome.failures.extend(
                        FixFailure(f.code, lines.original_line(index, f), attempt) for f in cand.findings
                    )
                else:
                    accepted.append(cand)
                    trial = attempt
            chosen = accepted
            if trial is None:
                continue
        new_text, new_result = trial
        lines.advance(index, [r for c in chosen for r in c.replacements])
        outcome.fixed += sum(len(c.findings) for c in chosen)
        text, result = new_text, new_result
    outcome.text, outcome.result = text, result
    return outcome


def _candidates(
    index: TextIndex,
    findings: Sequence[Finding],
    unsafe: bool,
    blocked: set[tuple],
    failures: list[FixFailure],
    lines: "_LineTracker",
) -> list[_Candidate]:
    grouped: dict[tuple[Replacement, ...], list[Finding]] = {}
    for f in findings:
        if not applicable(f, unsafe):
            continue
        try:
            reps = resolve(index, f.fix)
        except EditError as exc:
            key = ("bad-edit", f.code, f.message)
            if key not in blocked:
                blocked.add(key)
                failures.append(FixFailure(f.code, lines.original_line(index, f), f"its edit does not fit the file ({exc})"))
            continue
        grouped.setdefault(reps, []).append(f)
    out = [_Candidate(tuple(fs), reps) for reps, fs in grouped.items()]
    return [c for c in out if _key(index.text, c) not in blocked]


def _key(text: str, cand: _Candidate) -> tuple:
    """Identifies a fix independently of where earlier passes moved it."""
    return (
        tuple(sorted((f.code, f.message) for f in cand.findings)),
        tuple((text[r.start : r.end], r.content) for r in cand.replacements),
    )


def _verify(
    text: str, result: FileResult, chosen: Sequence[_Candidate], checker: Checker, compiles: bool
) -> tuple[str, FileResult] | str:
    """The fixed text and its findings, or why the fixes cannot be kept."""
    reps = [r for c in chosen for r in c.replacements]
    try:
        new_text = apply(text, reps)
    except EditError as exc:
        return f"its edits overlap ({exc})"
    if new_text == text:
        return "the fix changes nothing"
    new_result = checker(new_text)
    if new_result.errors:
        return f"the fixed code is not valid Python ({new_result.errors[0].message})"
    if not new_result.parsed:
        try:
            cst.parse_module(new_text)
        except Exception as exc:
            return f"the fixed code is not valid Python ({type(exc).__name__})"
    error = _compile_error(new_text) if compiles else None
    if error:
        return f"the fixed code is not valid Python ({error})"
    persisting = _persisting(TextIndex.of(text), result.findings, chosen, TextIndex.of(new_text), new_result.findings)
    if persisting:
        f = persisting[0]
        return f"{f.code} is still reported after the fix"
    return new_text, new_result


def _persisting(
    old: TextIndex,
    old_findings: Sequence[Finding],
    chosen: Sequence[_Candidate],
    new: TextIndex,
    new_findings: Sequence[Finding],
) -> list[Finding]:
    """Fixed findings that the analyzer still reports at (the new place of) their span.

    A new finding is matched first to an unfixed old finding of the same code that starts at
    the same (mapped) place; only findings no unfixed one explains count against a fix."""
    reps = [r for c in chosen for r in c.replacements]
    fixed_ids = {id(f) for c in chosen for f in c.findings}

    def mapped(f: Finding) -> tuple[int, int] | None:
        try:
            start, end = old.range(f.span)
        except EditError:
            return None
        return map_offset(start, reps, "start"), map_offset(end, reps, "end")

    unfixed_starts = {
        (f.code, m[0]) for f in old_findings if id(f) not in fixed_ids and (m := mapped(f)) is not None
    }
    fixed_ranges = [(f, m) for c in chosen for f in c.findings if (m := mapped(f)) is not None]
    out = []
    for nf in new_findings:
        try:
            start = new.offset(nf.span.line, nf.span.column)
        except EditError:
            continue
        if (nf.code, start) in unfixed_starts:
            continue
        for f, (ms, me) in fixed_ranges:
            if f.code == nf.code and ms <= start < max(me, ms + 1):
                out.append(f)
                break
    return out


def _compile_error(text: str) -> str | None:
    """Why Python's own parser rejects ``text`` (it is stricter than libcst), or None."""
    try:
        compile(text, "<fix>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return f"{exc.msg}, line {exc.lineno}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return type(exc).__name__
    return None


class _LineTracker:
    """Maps lines of the text of a later pass back to lines of the original source, so
    failures name the line the user sees."""

    def __init__(self) -> None:
        self.history: list[tuple[TextIndex, list[Replacement]]] = []

    def advance(self, index: TextIndex, reps: list[Replacement]) -> None:
        self.history.append((index, reps))

    def original_line(self, index: TextIndex, f: Finding) -> int:
        try:
            offset = index.offset(f.span.line, f.span.column)
        except EditError:
            return f.span.line
        for old_index, reps in reversed(self.history):
            offset = _unmap(offset, reps)
            index = old_index
        return index.position(offset)[0]


def _unmap(offset: int, reps: Sequence[Replacement]) -> int:
    """Inverse of ``map_offset`` for start positions (inside new content -> its old start)."""
    shift = 0
    for r in sorted(reps, key=lambda r: (r.start, r.end)):
        new_start = r.start + shift
        if offset < new_start:
            break
        if offset < new_start + len(r.content):
            return r.start
        shift += len(r.content) - (r.end - r.start)
    return offset - shift
