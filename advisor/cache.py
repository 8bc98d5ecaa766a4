"""Per-file result cache in ``.advisor_cache/`` at the project root.

An entry is keyed by the file's path and text; its directory (the namespace) by the advisor
version, a hash of the analyzer's own source (rules, analysis, engine, config) and the settings
fingerprint, so any change there starts afresh. Entries are written atomically (temp file +
rename), so two advisor processes can share a cache; an unreadable or corrupt entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from . import __version__

CACHE_DIR = ".advisor_cache"
FORMAT = 1
_CODE_DIRS = ("analysis", "rules")
_CODE_FILES = ("engine.py", "config.py", "cache.py", "runner.py", "__init__.py")


@lru_cache(maxsize=1)
def code_hash() -> str:
    """Hash of the analyzer's source files: editing a rule invalidates cached results."""
    pkg = Path(__file__).resolve().parent
    files = [pkg / name for name in _CODE_FILES]
    for directory in _CODE_DIRS:
        files.extend(sorted((pkg / directory).rglob("*.py")))
    digest = hashlib.sha256()
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest.update(str(path.relative_to(pkg)).encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def entry_key(path: str, text: str) -> str:
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape"))
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class Cache:
    """Maps (path, text) to the serialised result of checking that text at that path."""

    def __init__(self, root: str | os.PathLike, fingerprint: str) -> None:
        self.base = Path(root) / CACHE_DIR
        self.namespace = self.base / f"v{FORMAT}-{__version__}-{code_hash()}-{fingerprint}"
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self.write_errors = 0

    def _entry(self, key: str) -> Path:
        return self.namespace / key[:2] / f"{key[2:]}.json"

    def get(self, path: str, text: str) -> dict | None:
        if not self.enabled:
            return None
        try:
            with open(self._entry(entry_key(path, text)), "rb") as fh:
                data = json.loads(fh.read())
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(data, dict) or data.get("path") != path:
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, path: str, text: str, data: dict) -> None:
        if not self.enabled:
            return
        target = self._entry(entry_key(path, text))
        try:
            if not self.base.exists():
                self._create_base()
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, separators=(",", ":"))
                os.replace(tmp, target)
            except BaseException:
                _unlink(tmp)
                raise
        except OSError:
            self.write_errors += 1
            if self.write_errors >= 3:
                self.enabled = False

    def _create_base(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        for name, content in (
            ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n# advisor result cache\n"),
            (".gitignore", "*\n"),
        ):
            try:
                with open(self.base / name, "x", encoding="utf-8") as fh:
                    fh.write(content)
            except FileExistsError:
                pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def cache_root(settings_root: str) -> Path:
    """The directory holding ``.advisor_cache``: the project root (a file's parent)."""
    root = Path(settings_root)
    return root if root.is_dir() else root.parent
