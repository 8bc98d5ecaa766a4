"""Report formats: text (code frames), json, sarif, github annotations."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engine import FileError
from ..rules import Finding

FORMATS = ("text", "json", "sarif", "github")


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files_checked: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    fixed: int = 0
    notes: list[str] = field(default_factory=list)


def render(report: Report, fmt: str, color: bool = False, quiet: bool = False) -> str:
    if fmt == "json":
        from .machine import render_json

        return render_json(report)
    if fmt == "sarif":
        from .machine import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from .machine import render_github

        return render_github(report)
    from .text import render_text

    return render_text(report, color=color, quiet=quiet)
