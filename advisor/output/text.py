"""Human output: ``path:line:col: CODE message``, a code frame, a help line."""

from __future__ import annotations

import click

from ..rules import Finding
from . import Report
from .sanitize import clean


def _style(text: str, color: bool, **kw) -> str:
    return click.style(text, **kw) if color else text


def frame(finding: Finding, lines: list[str], color: bool) -> list[str]:
    span = finding.span
    first, last = span.line, min(span.end_line, span.line + 5)
    if first < 1 or first > len(lines):
        return []
    width = len(str(last))
    bar = _style(" " * width + " |", color, fg="blue", bold=True)
    out = [bar]
    for lineno in range(first, last + 1):
        if lineno > len(lines):
            break
        text = clean(lines[lineno - 1].rstrip("\n").expandtabs(1))
        num = _style(f"{lineno:>{width}} |", color, fg="blue", bold=True)
        out.append(f"{num} {text}".rstrip())
        start = span.column if lineno == span.line else len(text) - len(text.lstrip())
        end = span.end_column if lineno == span.end_line else len(text)
        end = max(end, start + 1)
        if lineno == last:
            marks = " " * start + "^" * (end - start) + " " + finding.code
        else:
            marks = " " * start + "^" * (end - start)
        out.append(f"{bar} {_style(marks, color, fg='red', bold=True)}")
    out.append(bar)
    return out


def render_text(report: Report, color: bool = False, quiet: bool = False) -> str:
    out: list[str] = []
    lines_cache: dict[str, list[str]] = {}
    for f in report.findings:
        loc = _style(f"{clean(f.path)}:{f.span.line}:{f.span.column + 1}:", color, bold=True)
        code = _style(f.code, color, fg="red", bold=True)
        fix = " [*]" if f.fix is not None and f.fix.applicability == "safe" else ""
        out.append(f"{loc} {code}{fix} {clean(f.message)}")
        if quiet:
            continue
        if f.path not in lines_cache:
            lines_cache[f.path] = report.sources.get(f.path, "").splitlines()
        out.extend(frame(f, lines_cache[f.path], color))
        width = len(str(min(f.span.end_line, f.span.line + 5)))
        out.append(" " * width + " " + _style("= help:", color, fg="cyan", bold=True) + " " + clean(f.help))
        if f.advice:
            out.extend(_advice_lines(f.advice, width, color))
        out.append("")
    for e in report.errors:
        where = f"{clean(e.path)}:{e.line}:" if e.line else f"{clean(e.path)}:"
        out.append(f"{_style(where, color, bold=True)} {_style('error:', color, fg='red', bold=True)} {clean(e.message)}")
    for note in report.notes:
        out.append(clean(note))
    out.append(summary(report, color))
    return "\n".join(out) + "\n"


def _advice_lines(advice: dict, width: int, color: bool) -> list[str]:
    pad = " " * width + " "
    label = "verified" if advice.get("verified") else "unverified"
    src = advice.get("source", "model")
    explanation = clean(advice.get("explanation") or "").strip() or "(the model gave no usable explanation)"
    out = [pad + _style(f"= advice ({src}, {label}):", color, fg="magenta", bold=True) + " " + explanation]
    diff = advice.get("diff")
    if diff and advice.get("verified"):
        for line in clean(diff).splitlines():
            style = {"+": "green", "-": "red"}.get(line[:1])
            out.append(pad + "  " + (_style(line, color, fg=style) if style else line))
    return out


def summary(report: Report, color: bool = False) -> str:
    n = len(report.findings)
    files = len({f.path for f in report.findings})
    safe = sum(1 for f in report.findings if f.fix is not None and f.fix.applicability == "safe")
    parts = []
    if n:
        parts.append(f"Found {n} finding{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''}")
    else:
        parts.append("No threading issues found")
    parts.append(f"{report.files_checked} file{'s' if report.files_checked != 1 else ''} checked")
    if report.errors:
        parts.append(f"{len(report.errors)} could not be analysed")
    if report.fixed:
        parts.append(f"{report.fixed} fixed")
    text = parts[0] + " (" + ", ".join(parts[1:]) + ")."
    if safe:
        text += f"\n[*] {safe} fixable with `advisor check --fix`."
    return _style(text, color, bold=True)
