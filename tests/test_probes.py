"""The probe programs of ``benchmarks/probes/`` (realistic programs with seeded bugs): their
answer keys point at real lines, and the clean programs among them stay quiet."""

import json
from pathlib import Path

import pytest

from advisor.engine import check_file

PROBES = Path(__file__).resolve().parent.parent / "benchmarks" / "probes"
FOLDERS = sorted(p for p in PROBES.iterdir() if (p / "key.json").exists())


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_key_points_at_code(folder: Path) -> None:
    key = json.loads((folder / "key.json").read_text(encoding="utf-8"))
    assert key
    for bug in key:
        lines = (folder / bug["file"]).read_text(encoding="utf-8").splitlines()
        assert 1 <= bug["line"] <= len(lines) and lines[bug["line"] - 1].strip(), bug
        assert not bug["file"].startswith("clean_")


CLEAN = sorted(PROBES.glob("*/clean_*.py"))


@pytest.mark.parametrize("path", CLEAN, ids=[f"{p.parent.name}/{p.name}" for p in CLEAN])
def test_clean_programs_have_no_findings(path: Path) -> None:
    result = check_file(str(path))
    assert result.errors == []
    assert [(f.span.line, f.code) for f in result.findings] == []
