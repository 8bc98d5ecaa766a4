"""Run the rules over files: parse, build the model, check, suppress."""

from __future__ import annotations

import os
import re
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .analysis.names import LOCKISH
from .analysis.source import SourceError, decode_source, read_source
from .config import Settings
from .rules import Finding
from .rules import matches as code_matches

_WORDS = (
    r"thread|acquire|submit|executor|pool|queue|fork|semaphore|barrier|mutex"
    r"|(?<![bc])lock|(?<![a-z0-9])(?:mtx|cv|cond(?:ition)?|sem)(?![a-z0-9])"
)


class _Prefilter:
    """Words every threading construct the model recognises contains (its names, the lock-like
    names of ``analysis.names.LOCKISH``, executor ``submit``/``map``). A file none of them appears in
    cannot give a finding and is not parsed.

    ``pattern`` is the definition; ``search`` finds the same files with plain substring scans,
    several times faster than the regex on large trees."""

    pattern = re.compile(_WORDS + r"|(?<![a-z0-9_])(?:ex|exe|tpe)\.map(?![a-z0-9_])", re.IGNORECASE)
    _plain = ("thread", "acquire", "submit", "executor", "pool", "queue", "fork", "semaphore", "barrier", "mutex")
    _segments = ("cv", "mtx", "cond", "condition", "sem")
    _maps = ("ex.map", "exe.map", "tpe.map")

    def search(self, text: str) -> bool:
        low = text.lower()
        if any(word in low for word in self._plain):
            return True
        i = low.find("lock")
        while i != -1:
            if i == 0 or low[i - 1] not in "bc":
                return True
            i = low.find("lock", i + 4)
        return _bounded(low, self._segments, True) or _bounded(low, self._maps, False)


def _bounded(low: str, words: tuple[str, ...], underscore_splits: bool) -> bool:
    """Whether one of ``words`` occurs in ``low`` as a whole word: no ASCII letter or digit
    (nor ``_``, unless ``underscore_splits``) right before or after it."""
    for word in words:
        i = low.find(word)
        while i != -1:
            j = i + len(word)
            before = low[i - 1] if i else " "
            after = low[j] if j < len(low) else " "
            if not _inside_word(before, underscore_splits) and not _inside_word(after, underscore_splits):
                return True
            i = low.find(word, i + 1)
    return False


def _inside_word(ch: str, underscore_splits: bool) -> bool:
    return (ch.isascii() and ch.isalnum()) or (ch == "_" and not underscore_splits)


PREFILTER = _Prefilter()

_NAME_FILTER = re.compile(_WORDS, re.IGNORECASE)
_ANCHORS = frozenset(
    {
        "threading", "multiprocessing", "concurrent.futures", "Thread", "Timer", "Process", "start_new_thread",
        "start_new", "to_thread", "run_in_executor", "submit", "acquire", "task_done", "Lock", "RLock", "_RLock",
        "_CRLock", "Condition", "Semaphore", "BoundedSemaphore", "Barrier", "_local", "allocate_lock",
        "LockType", "Queue", "SimpleQueue", "LifoQueue", "PriorityQueue", "JoinableQueue", "ThreadPoolExecutor",
        "ProcessPoolExecutor", "ThreadPool", "run_coroutine_threadsafe", "call_soon_threadsafe",
    }
)
"""Names that make a file worth analysing on their own: the threading modules (``from
threading import local`` names ``threading``), what creates a thread, a primitive, a queue or
an executor, and the calls only primitives have."""
_LOCK_USE = frozenset({"release", "wait", "wait_for", "notify", "notify_all", "locked"})
_WITH = re.compile(r"^[ \t]*(?:async[ \t]+)?with[ \t(]+([^\n]*)", re.M)
_WITH_ITEM = re.compile(r"([A-Za-z_][\w.]*?)(?:\(\))?[ \t]*(?:\bas\b[^,:]*)?[ \t]*[,:)]")
_EXECUTOR_MAP = re.compile(r"(?:executor|pool)\w*[ \t]*\.[ \t]*map\b|\b(?:ex|exe|tpe)[ \t]*\.[ \t]*map\b", re.I)
_QUEUE_CALL = re.compile(r"queue\w*[ \t]*\.[ \t]*(?:empty|full|qsize|get_nowait|put_nowait|join)[ \t]*\(", re.I)
_TOO_DEEP = ("too many nested", "too many levels of indentation", "too many statically nested")
MAX_BRACKET_DEPTH = 200
"""Python itself refuses deeper bracket nesting; libcst's native parser can crash on it."""

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

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "parsed": self.parsed,
            "findings": [{**f.to_dict(), "context": f.context} for f in self.findings],
            "errors": [e.to_dict() for e in self.errors],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FileResult":
        return cls(
            data["path"],
            [Finding.from_dict(f) for f in data["findings"]],
            [FileError(e["path"], e["line"], e["message"]) for e in data["errors"]],
            bool(data["parsed"]),
        )


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


def _syntax_error(exc) -> tuple[int, str]:
    message = str(exc.message).strip().splitlines()[0] if exc.message else "invalid syntax"
    return exc.raw_line, f"syntax error: {message} (line {exc.raw_line}, column {exc.raw_column + 1})"


def _code_names(code: types.CodeType, out: set[str]) -> set[str]:
    out.update(code.co_names, code.co_varnames, code.co_cellvars, code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_names(const, out)
    return out


def bracket_depth(source: str) -> int:
    """Deepest nesting of ``([{`` in ``source`` (strings and comments included: an upper bound)."""
    depth = deepest = 0
    for m in re.finditer(r"[(\[{]|[)\]}]", source):
        if m.group() in "([{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif depth:
            depth -= 1
    return deepest


def screen(source: str) -> tuple[str, int | None, str]:
    """Second, exact prefilter: compile ``source`` with Python's own (C) compiler and look at
    the names the code uses, strings and comments left out.

    Returns ``("skip", ...)`` when no name can belong to a threading construct, ``("error",
    line, reason)`` for nesting too deep to analyse safely, else ``("parse", ...)``: libcst
    parses it. For a file Python cannot compile, ``parse`` comes with Python's syntax error:
    reported if libcst (which knows newer grammar) cannot parse the file either."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = compile(source, "<advisor>", "exec", dont_inherit=True, optimize=0)
    except SyntaxError as exc:
        message = str(exc.msg) if getattr(exc, "msg", None) else str(exc)
        if any(marker in message for marker in _TOO_DEEP):
            return "error", exc.lineno, f"too deeply nested to analyse: {message}"
        if bracket_depth(source) > MAX_BRACKET_DEPTH:
            return "error", None, f"too deeply nested to analyse: brackets nested deeper than {MAX_BRACKET_DEPTH}"
        where = f" (line {exc.lineno}, column {exc.offset})" if exc.lineno and exc.offset else ""
        return "parse", exc.lineno, f"syntax error: {message}{where}"
    except (RecursionError, MemoryError):
        return "error", None, "too deeply nested to analyse: Python's own parser gives up"
    except ValueError:
        return "parse", None, ""
    return ("parse" if _may_hold_construct(_code_names(code, set()), source) else "skip"), None, ""


def _may_hold_construct(names: set[str], source: str) -> bool:
    """Whether the names a file's code uses can belong to a construct the model recognises:
    an anchor (``_ANCHORS``), a lock-like name used as a lock (a ``with`` item, or next to
    ``wait``/``release``...), ``<executor-like>.map``, ``<queue-like>.empty()``...; a word of
    the prefilter alone (``condition``, ``queue``, ``fork``) is not enough."""
    if names & _ANCHORS:
        return True
    if "map" in names and _EXECUTOR_MAP.search(source):
        return True
    if not _NAME_FILTER.search("\n".join(names)):
        return False
    if any(LOCKISH.search(n) for n in names) and (names & _LOCK_USE or _lock_in_with(source)):
        return True
    return any("queue" in n.lower() for n in names) and bool(_QUEUE_CALL.search(source))


def _lock_in_with(source: str) -> bool:
    """A ``with`` statement one of whose items is a lock-like name (``with self._lock:``)."""
    for match in _WITH.finditer(source):
        for item in _WITH_ITEM.finditer(match.group(1)):
            if LOCKISH.search(item.group(1).rsplit(".", 1)[-1]):
                return True
    return False


def check_source(source: str, path: str, settings: Settings | None = None, *, prefilter: bool = True) -> FileResult:
    """Analyse one file's text. Never raises for bad input: problems become ``errors``.

    Every file is compiled by Python (cheap), so every file Python cannot compile is reported;
    only files that may hold threading constructs are parsed by libcst and checked.
    With ``prefilter=False`` every file is parsed and checked (used to test the prefilter)."""
    settings = settings or Settings()
    result = FileResult(path)
    verdict, line, reason = screen(source)
    if verdict == "error":
        result.errors.append(FileError(path, line, reason))
        return result
    if prefilter and verdict == "skip":
        return result
    if prefilter and reason and not PREFILTER.search(source):
        result.errors.append(FileError(path, line, reason))
        return result
    return _analyse(source, path, settings, result, (line, reason) if reason else None)


def _analyse(
    source: str, path: str, settings: Settings, result: FileResult, syntax: tuple[int | None, str] | None = None
) -> FileResult:
    import libcst as cst

    from .analysis.extract import build_model
    from .analysis.parse import parse
    from .analysis.positions import Positions
    from .rules import RuleContext, select_rules

    try:
        module = parse(source)
    except cst.ParserSyntaxError as exc:
        line, message = syntax or _syntax_error(exc)
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
    except RecursionError:
        result.errors.append(FileError(path, None, "too deeply nested to analyse"))
        return result
    except Exception as exc:
        result.errors.append(
            FileError(path, None, f"internal error while analysing: {type(exc).__name__}: {exc}")
        )
        return result
    ctx = RuleContext(path, source, model, Positions(module))
    findings: list[Finding] = []
    for rule in rules:
        try:
            findings.extend(rule.check(ctx))
        except RecursionError:
            result.errors.append(FileError(path, None, f"too deeply nested for {rule.code} to analyse"))
        except Exception as exc:
            result.errors.append(
                FileError(path, None, f"internal error in {rule.code}: {type(exc).__name__}: {exc}")
            )
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
            # A directory named explicitly is walked even if it lies in an excluded one (a
            # virtualenv's package); then only what lies below it can be excluded.
            base = raw if settings.is_excluded(raw) else None
            # Below a directory that is not excluded, only user patterns can exclude a .py file
            # (the default patterns name directories), so the per-file check is skipped without them.
            check_files = bool(settings.exclude)
            for root, dirs, files in os.walk(raw, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not settings.is_excluded(os.path.join(root, d), base))
                for name in sorted(files):
                    if not name.endswith(".py"):
                        continue
                    full = os.path.join(root, name)
                    if check_files and settings.is_excluded(full, base):
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
