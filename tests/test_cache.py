"""The result cache: same results with and without it, invalidated by content and settings,
safe for concurrent processes, tolerant of corrupt entries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from advisor.cache import CACHE_DIR, Cache, code_hash
from advisor.config import Settings
from advisor.runner import RunStats, check_paths

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

BUGGY = """\
import threading


def work():
    pass


t = threading.Thread(target=work)
t.run()
"""


def _project(tmp_path: Path) -> Path:
    for src in sorted(EXAMPLES.glob("*.py")):
        (tmp_path / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "buggy.py").write_text(BUGGY, encoding="utf-8")
    (tmp_path / "plain.py").write_text("print('no threads here')\n", encoding="utf-8")
    (tmp_path / "broken.py").write_text("import threading\ndef f(:\n", encoding="utf-8")
    return tmp_path


def _run(root: Path, **kwargs) -> tuple[list[dict], RunStats]:
    stats = RunStats()
    results, errors = check_paths([str(root)], Settings(root=str(root)), stats=stats, **kwargs)
    return [r.to_dict() for r in results] + [e.to_dict() for e in errors], stats


def test_warm_run_hits_the_cache_and_gives_identical_results(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cold, s1 = _run(root, use_cache=False)
    first, s2 = _run(root)
    warm, s3 = _run(root)
    assert first == cold and warm == cold
    assert any(r.get("findings") for r in cold)
    assert s2.cache_hits == 0 and s2.analysed > 0
    assert s3.analysed == 0 and s3.cache_hits == s2.analysed
    assert (root / CACHE_DIR / "CACHEDIR.TAG").exists()


def test_changed_file_is_reanalysed(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _run(root)
    (root / "buggy.py").write_text(BUGGY.replace("t.run()", "t.start()\nt.join()"), encoding="utf-8")
    after, stats = _run(root)
    assert stats.analysed == 1
    buggy = next(r for r in after if r.get("path", "").endswith("buggy.py"))
    assert buggy["findings"] == []
    assert after == _run(root, use_cache=False)[0]


def test_settings_and_code_are_part_of_the_key(tmp_path: Path) -> None:
    a = Cache(tmp_path, Settings(select=("THR001",)).fingerprint())
    b = Cache(tmp_path, Settings(select=("THR002",)).fingerprint())
    assert a.namespace != b.namespace
    assert code_hash() in a.namespace.name
    a.put("x.py", "text", {"path": "x.py", "findings": []})
    assert a.get("x.py", "text") == {"path": "x.py", "findings": []}
    assert b.get("x.py", "text") is None
    assert a.get("x.py", "other text") is None
    assert a.get("y.py", "text") is None


def test_corrupt_and_truncated_entries_are_misses(tmp_path: Path) -> None:
    root = _project(tmp_path)
    cold, first = _run(root)
    entries = sorted((root / CACHE_DIR).rglob("*.json"))
    assert len(entries) == first.analysed
    entries[0].write_bytes(b"\x00garbage{")
    entries[1].write_text(json.dumps({"path": "somewhere-else.py"}), encoding="utf-8")
    entries[2].write_text(json.dumps([1, 2, 3]), encoding="utf-8")
    again, stats = _run(root)
    assert again == cold
    assert stats.analysed == 3


def test_unwritable_cache_directory_does_not_fail_the_run(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / CACHE_DIR).write_text("a file where the cache directory should be", encoding="utf-8")
    results, stats = _run(root)
    assert results == _run(root, use_cache=False)[0]
    assert stats.cache_hits == 0


def test_two_concurrent_processes_share_the_cache(tmp_path: Path) -> None:
    root = _project(tmp_path)
    for i in range(12):
        (root / f"copy_{i}.py").write_text(BUGGY + f"\nVALUE = {i}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "advisor.cli.main", "check", "--no-llm", "--format", "json", "-j", "2", str(root)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 1, err
        assert "Traceback" not in err
    reports = [json.loads(out) for out, _ in outputs]
    assert reports[0] == reports[1]
    reference = subprocess.run(cmd + ["--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert json.loads(reference.stdout) == reports[0]
    leftovers = [p for p in (root / CACHE_DIR).rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []
    warm = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert json.loads(warm.stdout) == reports[0]
