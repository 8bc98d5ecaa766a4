"""Worker processes: identical, deterministically ordered results for any job count; a worker
that crashes or hangs costs only its file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from advisor import runner
from advisor.config import Settings
from advisor.engine import check_paths as check_sequentially
from advisor.runner import RunStats, check_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rules"


def _as_dicts(results, errors) -> list[dict]:
    return [r.to_dict() for r in results] + [e.to_dict() for e in errors]


def test_same_results_for_any_job_count_and_same_as_sequential() -> None:
    settings = Settings(root=str(ROOT))
    paths = [str(FIXTURES), str(ROOT / "examples"), str(ROOT / "nonexistent_dir")]
    expected = _as_dicts(*check_sequentially(paths, settings))
    assert any(r.get("findings") for r in expected)
    for jobs in (1, 2, 3, 8):
        got = _as_dicts(*check_paths(paths, settings, jobs=jobs, use_cache=False))
        assert got == expected, f"jobs={jobs}"


def test_cli_output_identical_across_jobs_and_hash_seeds() -> None:
    """Any job count, and any string hash seed (set iteration order must not reach messages)."""
    outputs = []
    for jobs, seed in (("1", "1"), ("4", "2"), ("2", "3")):
        proc = subprocess.run(
            [sys.executable, "-m", "advisor.cli.main", "check", "--no-llm", "--format", "json", "--no-cache", "-j", jobs,
             str(FIXTURES), str(ROOT / "benchmarks" / "probes")],
            cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert proc.returncode == 1, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert json.loads(outputs[0])["findings"]


def _crash_on(marker: str, how: str):
    original = runner.check_source

    def analyse(text, path, settings, **kwargs):
        if marker in text:
            if how == "segfault":
                os.kill(os.getpid(), signal.SIGSEGV)
            if how == "hang":
                import time

                time.sleep(600)
        return original(text, path, settings, **kwargs)

    return analyse


@pytest.mark.parametrize("how, reason", [("segfault", "crashed"), ("hang", "timed out")])
def test_a_crashing_or_hanging_file_costs_only_that_file(tmp_path: Path, monkeypatch, how: str, reason: str) -> None:
    """A real SIGSEGV / a real hang inside a worker (what libcst's native parser can do on
    pathological input): the file becomes an error, a fresh worker finishes the rest."""
    for src in (ROOT / "examples").glob("*.py"):
        (tmp_path / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "poison.py").write_text("import threading\nPOISON_PILL = 1\n", encoding="utf-8")
    settings = Settings(root=str(tmp_path))
    expected = _as_dicts(*check_sequentially([str(tmp_path)], settings))
    monkeypatch.setattr(runner, "check_source", _crash_on("POISON_PILL", how))
    stats = RunStats()
    results, errors = check_paths([str(tmp_path)], settings, jobs=2, use_cache=False, timeout=30, stats=stats)
    got = _as_dicts(results, errors)
    poison = [r for r in got if r.get("path", "").endswith("poison.py")]
    assert len(poison) == 1 and reason in poison[0]["errors"][0]["message"]
    assert [r for r in got if r not in poison] == [r for r in expected if not r.get("path", "").endswith("poison.py")]
    assert stats.crashed == [str(tmp_path / "poison.py")]
