"""``[tool.advisor]`` in pyproject.toml, validated."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "build", "dist",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".advisor_cache",
    "node_modules", "*.egg-info",
)


class ConfigError(Exception):
    """An invalid configuration; the message names the file and key."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    root: str = "."
    source: str | None = None

    def fingerprint(self) -> str:
        data = json.dumps(
            [self.select, self.ignore, self.per_file_ignores], sort_keys=True, default=list
        )
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def ignored_for(self, path: str) -> tuple[str, ...]:
        rel = _relative(path, self.root)
        codes: list[str] = []
        for pattern, pattern_codes in self.per_file_ignores:
            if _glob_match(rel, pattern):
                codes.extend(pattern_codes)
        return tuple(codes)

    def is_excluded(self, path: str, base: str | None = None) -> bool:
        """Whether ``path`` matches a default or ``exclude`` pattern, looking at its path
        relative to the project root, or to ``base`` (only what lies below ``base`` counts)."""
        rel = _relative(path, base if base is not None else self.root)
        parts = Path(rel).parts
        for pattern in (*DEFAULT_EXCLUDE, *self.exclude):
            if _glob_match(rel, pattern) or any(fnmatch.fnmatch(part, pattern) for part in parts):
                return True
        return False


def _relative(path: str, root: str) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return Path(path).as_posix()


def _glob_match(rel: str, pattern: str) -> bool:
    pattern = pattern.rstrip("/")
    return fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, f"{pattern}/*") or fnmatch.fnmatch(
        rel, f"*/{pattern}"
    )


_KEYS = {"select", "ignore", "exclude", "extend-exclude", "per-file-ignores"}


def _codes(value, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: [tool.advisor] {key} must be a list of strings, got {value!r}")
    for code in value:
        if not re.fullmatch(r"THR\d{0,3}", code.upper()):
            raise ConfigError(f"{where}: [tool.advisor] {key}: {code!r} is not a rule code or prefix (like THR001 or THR)")
    return tuple(v.upper() for v in value)


def parse_settings(table: dict, where: str, root: str) -> Settings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [tool.advisor] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key [tool.advisor] {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    select = _codes(table.get("select", []), "select", where)
    ignore = _codes(table.get("ignore", []), "ignore", where)
    exclude: list[str] = []
    for key in ("exclude", "extend-exclude"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: [tool.advisor] {key} must be a list of glob strings")
        exclude.extend(value)
    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict):
        raise ConfigError(f"{where}: [tool.advisor] per-file-ignores must be a table of glob = [codes]")
    per_file = tuple(
        (pattern, _codes(codes, f"per-file-ignores.{pattern!r}", where)) for pattern, codes in pfi.items()
    )
    return Settings(select, ignore, tuple(exclude), per_file, root, where)


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(config: str | None = None, start: str | None = None) -> Settings:
    """Settings from ``config`` (a pyproject.toml) or the nearest one above ``start``."""
    path = Path(config) if config else find_pyproject(Path(start or "."))
    if path is None:
        return Settings(root=str(Path(start or ".").resolve()))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("tool", {}).get("advisor")
    if table is None:
        return Settings(root=str(path.parent.resolve()), source=str(path))
    return parse_settings(table, str(path), str(path.parent.resolve()))
