"""Applying rule fixes: ``--fix``, ``--unsafe-fixes`` and ``--diff``."""

from .edits import EditError, apply_edits
from .files import FileFix, FixRun, WriteError, fix_file, fix_paths, unified_diff, write_atomic
from .runner import MAX_PASSES, FixFailure, FixOutcome, applicable, fix_text

__all__ = [
    "EditError",
    "FileFix",
    "FixFailure",
    "FixOutcome",
    "FixRun",
    "MAX_PASSES",
    "WriteError",
    "applicable",
    "apply_edits",
    "fix_file",
    "fix_paths",
    "fix_text",
    "unified_diff",
    "write_atomic",
]
