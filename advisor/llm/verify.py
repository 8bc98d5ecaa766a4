"""Mechanical verification of a proposed fix: splice, parse, compile, re-analyse.

Nothing is executed: the spliced file is only parsed, compiled to bytecode (never run) and
analysed. Comments are removed before analysis, so neither a suppression comment nor any
other text in the proposal can make it pass.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from dataclasses import dataclass

from ..engine import check_source
from .blocks import Block, defined_names, splice


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str
    """``"ok"`` or why the proposal was rejected."""
    new_source: str | None = None
    diff: str = ""


def strip_comments(source: str) -> str:
    """``source`` with every comment token blanked (strings untouched). Returns ``source``
    unchanged if it does not tokenize."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return source
    lines = source.splitlines(keepends=True)
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            line = lines[row - 1]
            end = tok.end[1]
            lines[row - 1] = line[:col] + line[end:]
    return "".join(lines)


def _key(finding) -> tuple[str, str]:
    return finding.code, re.sub(r"\d+", "N", finding.message)


def findings_of(source: str, path: str, settings=None):
    """Findings and errors of ``source`` analysed with comments removed (no suppressions)."""
    result = check_source(strip_comments(source), path, settings)
    return result.findings, result.errors


def _compiles(source: str, path: str) -> str | None:
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        return f"does not compile: {type(exc).__name__}: {getattr(exc, 'msg', exc)}"
    return None


def verify_source(source: str, new_source: str, path: str, finding, settings=None, baseline=None) -> Verdict:
    """Is ``new_source`` an acceptable fix of ``finding`` in ``source``? It must compile,
    analyse without errors, no longer report ``finding`` and report nothing new.
    ``baseline``: ``findings_of(source, ...)`` if already computed."""
    from ..fixes import unified_diff

    diff = unified_diff(path, source, new_source)
    if new_source == source:
        return Verdict(False, "the proposal changes nothing", new_source, diff)
    problem = _compiles(new_source, path)
    if problem:
        return Verdict(False, problem, new_source, diff)
    before, _ = baseline if baseline is not None else findings_of(source, path, settings)
    after, errors = findings_of(new_source, path, settings)
    if errors:
        return Verdict(False, f"cannot be analysed: {errors[0].message}", new_source, diff)
    old, new = Counter(map(_key, before)), Counter(map(_key, after))
    target = _key(finding)
    if old[target] and new[target] >= old[target]:
        return Verdict(False, f"{finding.code} is still reported", new_source, diff)
    added = new - old
    if added:
        code, message = next(iter(added))
        return Verdict(False, f"introduces {code}: {message}", new_source, diff)
    return Verdict(True, "ok", new_source, diff)


def verify_block(source: str, path: str, finding, block: Block, code: str, settings=None, baseline=None) -> Verdict:
    """Verify replacing ``block`` with ``code``: as ``verify_source``, and every name the
    block defined (and each parameter of a function it defined) is still defined."""
    if not code or not code.strip():
        return Verdict(False, "no code in the answer")
    wanted = defined_names(block.text)
    got = defined_names(code)
    if got is None:
        return Verdict(False, "the proposed code does not parse")
    lost = sorted((wanted or set()) - got)
    if lost:
        return Verdict(False, f"no longer defines {', '.join(lost)}")
    new_source = splice(source, block, code)
    return verify_source(source, new_source, path, finding, settings, baseline)
