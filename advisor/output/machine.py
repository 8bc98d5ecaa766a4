"""Machine-readable formats: JSON (schema version 1), SARIF 2.1.0, GitHub annotations."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..rules import all_rules
from . import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def render_json(report: Report) -> str:
    data = {
        "version": 1,
        "files_checked": report.files_checked,
        "findings": [f.to_dict() for f in report.findings],
        "errors": [e.to_dict() for e in report.errors],
    }
    return json.dumps(data, indent=2) + "\n"


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_posix() if not p.is_absolute() else p.as_uri()


def render_sarif(report: Report) -> str:
    rules = list(all_rules())
    index = {r.code: i for i, r in enumerate(rules)}
    results = []
    for f in report.findings:
        result = {
            "ruleId": f.code,
            "ruleIndex": index.get(f.code, -1),
            "level": LEVELS.get(f.severity, "warning"),
            "message": {"text": f"{f.message}\nhelp: {f.help}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.path)},
                        "region": {
                            "startLine": f.span.line,
                            "startColumn": f.span.column + 1,
                            "endLine": f.span.end_line,
                            "endColumn": f.span.end_column + 1,
                        },
                    }
                }
            ],
        }
        if f.fix is not None:
            result["fixes"] = [
                {
                    "description": {"text": f.fix.message or f"{f.fix.applicability} fix"},
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": _uri(f.path)},
                            "replacements": [
                                {
                                    "deletedRegion": {
                                        "startLine": e.span.line,
                                        "startColumn": e.span.column + 1,
                                        "endLine": e.span.end_line,
                                        "endColumn": e.span.end_column + 1,
                                    },
                                    "insertedContent": {"text": e.content},
                                }
                                for e in f.fix.edits
                            ],
                        }
                    ],
                }
            ]
        results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(e.path)},
                        **({"region": {"startLine": e.line}} if e.line else {}),
                    }
                }
            ],
        }
        for e in report.errors
    ]
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "advisor",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/threading-advisor/",
                        "rules": [
                            {
                                "id": r.code,
                                "name": r.name,
                                "shortDescription": {"text": r.summary},
                                "fullDescription": {"text": r.documentation().split("\n\n")[0]},
                                "help": {"text": r.documentation(), "markdown": r.documentation()},
                                "defaultConfiguration": {"level": LEVELS.get(r.severity, "warning")},
                                "properties": {"tags": ["concurrency", "threading"]},
                            }
                            for r in rules
                        ],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for f in report.findings:
        level = "error" if f.severity == "error" else "warning"
        props = (
            f"file={_escape_prop(f.path)},line={f.span.line},col={f.span.column + 1},"
            f"endLine={f.span.end_line},endColumn={f.span.end_column + 1},"
            f"title={_escape_prop(f'{f.code} ({f.name})')}"
        )
        lines.append(f"::{level} {props}::{_escape_data(f'{f.code} {f.message} (help: {f.help})')}")
    for e in report.errors:
        props = f"file={_escape_prop(e.path)}" + (f",line={e.line}" if e.line else "")
        lines.append(f"::error {props}::{_escape_data(e.message)}")
    return "\n".join(lines) + ("\n" if lines else "")
