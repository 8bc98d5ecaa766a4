"""Corpus examples and reading them from JSONL files."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = ("id", "rule", "code", "explanation", "fixed", "notes")
REQUIRED = ("id", "rule", "code", "explanation", "fixed")
RULE_CODE = re.compile(r"THR\d{3}")


class CorpusError(Exception):
    """A problem with the corpus itself (missing directory, unreadable file)."""


@dataclass(frozen=True)
class Example:
    id: str
    rule: str
    code: str
    explanation: str
    fixed: str
    notes: str = ""
    path: str = ""
    line: int = 0

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in FIELDS}

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str
    example: str | None = None

    def __str__(self) -> str:
        loc = self.path if self.line is None else f"{self.path}:{self.line}"
        ident = f" [{self.example}]" if self.example else ""
        return f"{loc}:{ident} {self.message}"


@dataclass
class LoadResult:
    examples: list[Example] = field(default_factory=list)
    programs: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0


def parse_line(text: str, path: str, line: int) -> Example:
    """One JSONL line -> Example; raises ValueError with a readable reason."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    for key in FIELDS:
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"field {key!r} must be a string")
    for key in REQUIRED:
        if not data[key].strip():
            raise ValueError(f"field {key!r} is empty")
    if not RULE_CODE.fullmatch(data["rule"]):
        raise ValueError(f"rule {data['rule']!r} is not a rule code like THR001")
    return Example(
        data["id"], data["rule"], data["code"], data["explanation"], data["fixed"],
        data.get("notes", ""), path, line,
    )


def load_jsonl(path: str | Path, skip_invalid: bool = False, result: LoadResult | None = None) -> LoadResult:
    """Read one JSONL file. Bad lines become problems (or are counted with ``skip_invalid``)."""
    result = result if result is not None else LoadResult()
    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        result.problems.append(Problem(path, None, f"not UTF-8: {exc.reason}"))
        return result
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for lineno, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            result.examples.append(parse_line(text, path, lineno))
        except ValueError as exc:
            if skip_invalid:
                result.skipped += 1
            else:
                result.problems.append(Problem(path, lineno, str(exc)))
    return result


def corpus_files(root: str | Path) -> tuple[list[Path], list[Path]]:
    """The ``*.jsonl`` and ``*.py`` files directly in ``root`` (sorted)."""
    root = Path(root)
    if not root.exists():
        raise CorpusError(f"{root}: no such directory")
    if root.is_file():
        if root.suffix == ".jsonl":
            return [root], []
        if root.suffix == ".py":
            return [], [root]
        raise CorpusError(f"{root}: not a corpus directory or .jsonl file")
    if not os.access(root, os.R_OK | os.X_OK):
        raise CorpusError(f"{root}: directory is not readable")
    jsonl = sorted(p for p in root.iterdir() if p.suffix == ".jsonl" and p.is_file())
    programs = sorted(p for p in root.iterdir() if p.suffix == ".py" and p.is_file())
    return jsonl, programs


def load_corpus(root: str | Path, skip_invalid: bool = False) -> LoadResult:
    """Every example and program under ``root``; raises CorpusError when there are none."""
    jsonl, programs = corpus_files(root)
    if not jsonl and not programs:
        raise CorpusError(f"{root}: empty corpus (no .jsonl or .py files)")
    result = LoadResult(programs=programs)
    for path in jsonl:
        load_jsonl(path, skip_invalid, result)
    seen: dict[str, Example] = {}
    for ex in result.examples:
        if ex.id in seen:
            result.problems.append(
                Problem(ex.path, ex.line, f"duplicate id (first at {seen[ex.id].where})", ex.id)
            )
        else:
            seen[ex.id] = ex
    return result
