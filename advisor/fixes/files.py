"""Fixing files on disk: atomic writes that keep mode, encoding and newlines; diffs."""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..analysis.source import SourceError, read_source
from ..config import Settings
from ..output.sanitize import clean
from ..engine import FileError, FileResult, check_source, discover
from .runner import Checker, FixOutcome, fix_text


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class WriteError(Exception):
    """The fixed text could not be written; the original file is unchanged."""


@dataclass
class FileFix:
    path: str
    result: FileResult
    """Findings for the file as it is on disk afterwards (or would be, with ``--diff``)."""
    fixed: int = 0
    diff: str = ""
    errors: list[FileError] = field(default_factory=list)


@dataclass
class FixRun:
    files: list[FileFix] = field(default_factory=list)
    discovery_errors: list[FileError] = field(default_factory=list)

    @property
    def results(self) -> list[FileResult]:
        return [f.result for f in self.files]

    @property
    def errors(self) -> list[FileError]:
        """Missing paths and fixes that were not applied or written (not analysis errors,
        which are in ``results``)."""
        return self.discovery_errors + [e for f in self.files for e in f.errors]

    @property
    def fixed(self) -> int:
        return sum(f.fixed for f in self.files)

    @property
    def diff(self) -> str:
        return "".join(f.diff for f in self.files)

    @property
    def diff_failed(self) -> bool:
        """``--diff`` exit status: there are changes, or files that could not be fixed or read."""
        return bool(self.diff or self.errors or any(r.errors for r in self.results))

    def diff_notes(self) -> str:
        """Errors and a summary for stderr, so stdout stays a clean patch."""
        lines = []
        for e in self.errors + [e for r in self.results for e in r.errors]:
            where = f"{e.path}:{e.line}:" if e.line else f"{e.path}:"
            lines.append(clean(f"{where} error: {e.message}"))
        changed = sum(1 for f in self.files if f.diff)
        n = sum(f.fixed for f in self.files if f.diff)
        if changed:
            lines.append(f"Would fix {n} finding{'s' if n != 1 else ''} in {changed} file{'s' if changed != 1 else ''}.")
        else:
            lines.append("No fixes to apply.")
        return "\n".join(lines)


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff of two texts (``--- path`` / ``+++ path`` headers, as ``patch -p0`` reads)."""
    lines = []
    for line in difflib.unified_diff(_lines(before), _lines(after), fromfile=path, tofile=path, lineterm="\n"):
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def _lines(text: str) -> list[str]:
    """Lines with their breaks; only LF, CRLF and CR end a line, as for Python."""
    return _LINE.findall(text)


def encode(text: str, encoding: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise WriteError(f"the fixed code cannot be encoded as {encoding}: {exc.reason}") from None


def write_atomic(path: str, data: bytes, expected: bytes | None = None) -> None:
    """Replace ``path``'s contents with ``data`` through a temporary file in the same
    directory and ``os.replace``; the file's mode (and owner, where allowed) is kept.
    With ``expected``, refuse when the file no longer holds those bytes."""
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except OSError as exc:
        raise WriteError(f"cannot stat: {exc.strerror or exc}") from None
    if not os.access(target, os.W_OK):
        raise WriteError("the file is not writable")
    directory = os.path.dirname(target) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".advisor-fix", dir=directory)
    except OSError as exc:
        raise WriteError(f"cannot create a temporary file next to it: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        if hasattr(os, "chown"):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass
        if expected is not None:
            with open(target, "rb") as fh:
                if fh.read() != expected:
                    raise WriteError("the file changed while it was being fixed")
        os.replace(tmp, target)
    except WriteError:
        _unlink(tmp)
        raise
    except OSError as exc:
        _unlink(tmp)
        raise WriteError(f"cannot write: {exc.strerror or exc}") from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fix_file(path: str, checker: Checker, *, unsafe: bool = False, write: bool = True) -> FileFix:
    """Fix one file. With ``write=False`` only compute the diff."""
    try:
        src = read_source(path)
    except SourceError as exc:
        return FileFix(path, FileResult(path, errors=[FileError(path, exc.line, exc.message)]))
    outcome: FixOutcome = fix_text(src.text, checker, unsafe=unsafe)
    out = FileFix(path, outcome.result, outcome.fixed)
    out.errors.extend(
        FileError(path, fail.line, f"fix for {fail.code} not applied: {fail.reason}") for fail in outcome.failures
    )
    if not outcome.changed:
        return out
    try:
        if encode(src.text, src.encoding) != src.data:
            raise WriteError(f"the file does not round-trip through {src.encoding}; not rewriting it")
        data = encode(outcome.text, src.encoding)
        if write:
            write_atomic(path, data, expected=src.data)
        else:
            out.diff = unified_diff(path, src.text, outcome.text)
    except WriteError as exc:
        out.errors.append(FileError(path, None, f"fixes not written: {exc}"))
        out.result, out.fixed = outcome.initial, 0
    return out


def fix_paths(
    paths: Iterable[str],
    settings: Settings,
    *,
    unsafe: bool = False,
    write: bool = True,
    suggest: Callable[[list, str, str], None] | None = None,
) -> FixRun:
    """Fix every Python file under ``paths`` with the configured rules. ``suggest(findings,
    path, text)`` may give findings without a rule fix a fix of its own (verified model
    suggestions); it is asked once per file, on the text as read."""
    run = FixRun()
    for item in discover(paths, settings):
        if isinstance(item, FileError):
            run.discovery_errors.append(item)
            continue
        checker = _checker(item, settings, suggest)
        run.files.append(fix_file(item, checker, unsafe=unsafe, write=write))
    return run


def _checker(path: str, settings: Settings, suggest=None) -> Checker:
    asked = False

    def check(text: str):
        nonlocal asked
        result = check_source(text, path, settings)
        if suggest is not None and not asked:
            asked = True
            suggest(result.findings, path, text)
        return result

    return check
