"""Functional tests: every ``# expect: CODE`` marker must be reported, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advisor.engine import check_file
from advisor.rules import all_rules

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")
FILES = sorted(FIXTURES.glob("*.py"))


def expected_markers(path: Path) -> set[tuple[int, str]]:
    out = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = EXPECT.search(line)
        if m:
            out.update((lineno, code.strip()) for code in m.group(1).split(",") if code.strip())
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture_findings_match_markers(path: Path) -> None:
    result = check_file(str(path))
    assert result.errors == []
    found = {(f.span.line, f.code) for f in result.findings}
    expected = expected_markers(path)
    missing = sorted(expected - found)
    extra = sorted(found - expected)
    assert not missing and not extra, f"missing={missing} extra={extra}"


def test_every_rule_has_firing_and_quiet_fixtures() -> None:
    for rule in all_rules():
        firing = [p for p in FILES if any(code == rule.code for _, code in expected_markers(p))]
        quiet = [p for p in FILES if p.stem.startswith(rule.code.lower()) and p.stem.endswith("_ok")]
        assert firing, f"{rule.code} has no fixture where it fires"
        assert quiet, f"{rule.code} has no near-miss fixture (tests/fixtures/rules/{rule.code.lower()}_*_ok.py)"
        for path in quiet:
            assert not any(code == rule.code for _, code in expected_markers(path)), path


def test_rule_docs_have_all_sections() -> None:
    for rule in all_rules():
        doc = rule.documentation()
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert section in doc, f"{rule.code} docstring lacks {section!r}"
        assert re.fullmatch(r"THR\d{3}", rule.code)
        assert rule.summary and rule.help and rule.name


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture_names_are_unique(path: Path) -> None:
    """A second top-level ``def crawl`` would replace the first in the model, and the first
    case would silently go untested."""
    import ast

    names = [n.name for n in ast.parse(path.read_text(encoding="utf-8")).body
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
