"""The README and hook files stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from advisor.rules import all_rules

ROOT = Path(__file__).resolve().parent.parent


def test_readme_rule_table_matches_registry() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (THR\d{3}) \| `([a-z0-9-]+)` \| (.*?) \|", readme, re.M)
    assert [(code, name) for code, name, _ in rows] == [(r.code, r.name) for r in all_rules()]


def test_quick_start_and_ci_use_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_pre_commit_hooks_run_advisor_check() -> None:
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    ids = re.findall(r"^- id: (\S+)", hooks, re.M)
    assert ids == ["advisor", "advisor-llm"]
    assert "entry: advisor check --no-llm" in hooks
