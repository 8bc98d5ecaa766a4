"""Run the rules over files: parse, build the model, check, suppress."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import libcst as cst

from .analysis.extract import build_model
from .analysis.positions import Positions
from .analysis.source import SourceError, decode_source, read_source
from .config import Settings
from .rules import Finding, RuleContext, select_rules
from .rules import matches as code_matches

PREFILTER = re.compile(
    r"thread|lock|mutex|semaphore|condition|barrier|executor|queue|fork|_cv\b|\bcv\b|cond\b|sem\b|pool",
    re.IGNORECASE,
)
"""A file none of these words appears in cannot give a finding: it is not parsed."""

_SUPPRESS = re.compile(r"#\s*(?:advisor:\s*ignore\[([^\]]*)\]|noqa:\s*([A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))", re.I)


@dataclass(frozen=True)
class FileError:
    path: str
    line: int | None
    message: str

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "message": self.message}


@dataclass
class FileResult:
    path: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    parsed: bool = False


def suppressions(source: str) -> dict[int, tuple[str, ...]]:
    """Line number -> codes suppressed on that line."""
    out: dict[int, tuple[str, ...]] = {}
    if "noqa" not in source and "advisor:" not in source:
        return out
    for lineno, line in enumerate(source.splitlines(), 1):
        if "#" not in line:
            continue
        codes: list[str] = []
        for m in _SUPPRESS.finditer(line):
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            codes.extend(c.strip().upper() for c in raw.split(",") if c.strip())
        if codes:
            out[lineno] = tuple(codes)
    return out


def _syntax_error(exc: cst.ParserSyntaxError) -> tuple[int, str]:
    message = str(exc.message).strip().splitlines()[0] if exc.message else "invalid syntax"
    return exc.raw_line, f"syntax error: {message} (line {exc.raw_line}, column {exc.raw_column + 1})"


def check_source(source: str, path: str, settings: Settings | None = None) -> FileResult:
    """Analyse one file's text. Never raises for bad input: problems become ``errors``."""
    settings = settings or Settings()
    result = FileResult(path)
    if not PREFILTER.search(source):
        return result
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        line, message = _syntax_error(exc)
        result.errors.append(FileError(path, line, message))
        return result
    except RecursionError:
        result.errors.append(FileError(path, None, "too deeply nested to parse"))
        return result
    except Exception as exc:  # libcst can raise other errors on odd input
        result.errors.append(FileError(path, None, f"cannot parse: {type(exc).__name__}: {exc}"))
        return result
    result.parsed = True
    rules = select_rules(settings.select, settings.ignore + settings.ignored_for(path))
    try:
        model = build_model(module, path)
        ctx = RuleContext(path, source, model, Positions(module))
        findings: list[Finding] = []
        for rule in rules:
            findings.extend(rule.check(ctx))
    except RecursionError:
        result.errors.append(FileError(path, None, "too deeply nested to analyse"))
        return result
    except Exception as exc:
        result.errors.append(
            FileError(path, None, f"internal error while analysing: {type(exc).__name__}: {exc}")
        )
        return result
    suppressed = suppressions(source)
    kept = []
    for f in findings:
        codes = suppressed.get(f.span.line, ()) + suppressed.get(f.span.end_line, ())
        if codes and code_matches(f.code, codes):
            continue
        kept.append(f)
    result.findings = sorted(_dedupe(kept), key=Finding.sort_key)
    return result


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple] = set()
    out = []
    for f in findings:
        key = (f.code, f.span, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def check_file(path: str, settings: Settings | None = None) -> FileResult:
    try:
        src = read_source(path)
    except SourceError as exc:
        return FileResult(path, errors=[FileError(path, exc.line, exc.message)])
    return check_source(src.text, path, settings)


def check_bytes(data: bytes, path: str, settings: Settings | None = None) -> FileResult:
    try:
        text, _ = decode_source(data, path)
    except SourceError as exc:
        return FileResult(path, errors=[FileError(path, exc.line, exc.message)])
    return check_source(text, path, settings)


def discover(paths: Iterable[str], settings: Settings) -> Iterator[str | FileError]:
    """Python files under ``paths`` (explicit files are always checked), or errors."""
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if not os.path.lexists(raw):
            yield FileError(raw, None, "no such file or directory")
            continue
        if p.is_dir():
            for root, dirs, files in os.walk(raw, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not settings.is_excluded(os.path.join(root, d)))
                for name in sorted(files):
                    if not name.endswith(".py"):
                        continue
                    full = os.path.join(root, name)
                    if settings.is_excluded(full):
                        continue
                    key = os.path.normpath(full)
                    if key not in seen:
                        seen.add(key)
                        yield full
        else:
            key = os.path.normpath(raw)
            if key not in seen:
                seen.add(key)
                yield raw


def check_paths(paths: Iterable[str], settings: Settings) -> tuple[list[FileResult], list[FileError]]:
    """Check every file under ``paths``; returns per-file results and discovery errors."""
    results: list[FileResult] = []
    errors: list[FileError] = []
    for item in discover(paths, settings):
        if isinstance(item, FileError):
            errors.append(item)
        else:
            results.append(check_file(item, settings))
    return results, errors
