"""Reading source files safely: encodings, binary files, size limits."""

from __future__ import annotations

import codecs
import io
import re
import stat
import tokenize
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class SourceError(Exception):
    """A file that cannot be analysed; the message says why."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str
    encoding: str
    data: bytes


def decode_source(data: bytes, path: str = "<string>") -> tuple[str, str]:
    """Decode Python source bytes as the interpreter would (BOM, PEP 263 cookie, UTF-8)."""
    if b"\x00" in data[:8192]:
        raise SourceError("binary file (contains NUL bytes), not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError(f"bad encoding declaration: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r} in coding cookie") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = "" if _has_cookie(data) else " (add a PEP 263 coding cookie if the file is not UTF-8)"
        raise SourceError(f"cannot decode as {encoding}: {exc.reason}{hint}", line=line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, encoding


def _has_cookie(data: bytes) -> bool:
    return any(_COOKIE.match(line) for line in data.splitlines()[:2])


def read_source(path: str | Path, max_bytes: int = MAX_BYTES) -> SourceFile:
    p = Path(path)
    try:
        info = p.stat()
        if stat.S_ISDIR(info.st_mode):
            raise SourceError("is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise SourceError(f"file too large ({size} bytes > {max_bytes} limit)")
        data = p.read_bytes()
    except SourceError:
        raise
    except IsADirectoryError:
        raise SourceError("is a directory") from None
    except PermissionError:
        raise SourceError("permission denied") from None
    except FileNotFoundError:
        raise SourceError("no such file") from None
    except OSError as exc:
        raise SourceError(exc.strerror or str(exc)) from None
    text, encoding = decode_source(data, str(path))
    return SourceFile(str(path), text, encoding, data)
