"""Applying fixes: edits, the verified fix loop, atomic writes, --fix/--unsafe-fixes/--diff."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.analysis.model import Span
from advisor.cli.main import main
from advisor.engine import FileResult, check_file, check_source
from advisor.fixes import (
    EditError,
    MAX_PASSES,
    WriteError,
    apply_edits,
    applicable,
    fix_file,
    fix_text,
    unified_diff,
    write_atomic,
)
from advisor.fixes.edits import Replacement, map_offset, select
from advisor.rules import Edit, Finding, Fix

from conftest import FIXTURES, ROOT

RULES = FIXTURES / "rules"
FIRING = sorted(p for p in RULES.glob("thr*.py") if not p.stem.endswith("_ok"))
THR001 = RULES / "thr001_thread_run.py"


def _copy(src: Path, tmp_path: Path, name: str | None = None) -> Path:
    dst = tmp_path / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def _fixable(path: Path, unsafe: bool) -> list[Finding]:
    return [f for f in check_file(str(path)).findings if applicable(f, unsafe)]


# -- edits --------------------------------------------------------------------------------


def test_apply_edits_replaces_and_inserts_by_line_and_column() -> None:
    text = "a = f(x)\nb = g(y)\n"
    out = apply_edits(text, [Edit(Span(1, 6, 1, 7), "x,"), Edit(Span(2, 0, 2, 0), "# c\n")])
    assert out == "a = f(x,)\n# c\nb = g(y)\n"


def test_edit_content_takes_the_files_newline_style() -> None:
    text = "if x:\r\n    pass\r\n"
    out = apply_edits(text, [Edit(Span(2, 4, 2, 8), "a()\nb()")])
    assert out == "if x:\r\n    a()\r\nb()\r\n"


def test_columns_count_code_points_and_lone_cr_ends_a_line() -> None:
    text = 'x = "é😀"; t.run()\rt.run()\n'
    out = apply_edits(text, [Edit(Span(1, 12, 1, 15), "start"), Edit(Span(2, 2, 2, 5), "start")])
    assert out == 'x = "é😀"; t.start()\rt.start()\n'


@pytest.mark.parametrize("span", [Span(3, 0, 3, 1), Span(1, 5, 1, 9), Span(1, 3, 1, 1), Span(0, 0, 1, 0)])
def test_edits_outside_the_text_are_rejected(span: Span) -> None:
    with pytest.raises(EditError):
        apply_edits("abc = 1\n", [Edit(span, "x")])


def test_conflicting_fixes_are_taken_whole_in_source_order() -> None:
    first = (Replacement(0, 4, "A"), Replacement(10, 12, "B"))
    overlaps_first = (Replacement(3, 6, "C"),)
    same_start_insert = (Replacement(10, 10, "D"),)
    later = (Replacement(12, 14, "E"),)
    assert select([first, overlaps_first, same_start_insert, later]) == [0, 3]


def test_map_offset_follows_replacements() -> None:
    reps = [Replacement(2, 5, "xxxxx"), Replacement(8, 8, "yy")]
    assert map_offset(1, reps) == 1
    assert map_offset(3, reps) == 2 and map_offset(3, reps, "end") == 7
    assert map_offset(5, reps) == 7
    assert map_offset(8, reps) == 10
    assert map_offset(9, reps) == 13


# -- the fix loop -------------------------------------------------------------------------


def _checker(path: str = "t.py"):
    return lambda text: check_source(text, path)


def _crafted(make_fix):
    """The real analyzer, with THR001's fix replaced by ``make_fix(finding)``."""

    def checker(text: str) -> FileResult:
        result = check_source(text, "t.py")
        for f in result.findings:
            if f.code == "THR001":
                f.fix = make_fix(f)
        return result

    return checker


def _after_call(f: Finding, content: str) -> Fix:
    end = Span(f.span.end_line, f.span.end_column, f.span.end_line, f.span.end_column)
    return Fix("safe", (Edit(end, content),))


def test_unsafe_fixes_need_unsafe_and_then_clear_their_findings() -> None:
    source = THR001.read_text(encoding="utf-8")
    unsafe = [f for f in check_source(source, "t.py").findings if f.fix and f.fix.applicability == "unsafe"]
    assert unsafe
    assert not fix_text(source, _checker()).changed
    out = fix_text(source, _checker(), unsafe=True)
    assert out.changed and out.failures == []
    assert out.fixed == len(unsafe)
    assert not [f for f in out.result.findings if f.code == "THR001"]
    assert out.result.findings == check_source(out.text, "t.py").findings


def test_fix_whose_result_does_not_parse_is_not_applied() -> None:
    source = THR001.read_text(encoding="utf-8")
    out = fix_text(source, _crafted(lambda f: _after_call(f, "(")))
    assert out.text == source and out.fixed == 0
    lines = {f.line for f in check_source(source, "t.py").findings if f.code == "THR001"}
    assert {fail.line for fail in out.failures} == lines
    assert all("not valid Python" in fail.reason for fail in out.failures)


def test_fix_whose_finding_persists_is_not_applied() -> None:
    source = THR001.read_text(encoding="utf-8")
    out = fix_text(source, _crafted(lambda f: _after_call(f, "  ")))
    assert out.text == source and out.fixed == 0
    assert out.failures and all("still reported" in fail.reason for fail in out.failures)


def test_good_fixes_are_kept_when_others_in_the_batch_fail() -> None:
    source = THR001.read_text(encoding="utf-8")
    first = min(f.span.line for f in check_source(source, "t.py").findings if f.code == "THR001")

    def make(f: Finding) -> Fix:
        return f.fix if f.span.line == first else _after_call(f, "(")

    out = fix_text(source, _crafted(make), unsafe=True)
    assert out.fixed == 1
    changed = [i + 1 for i, (a, b) in enumerate(zip(source.splitlines(), out.text.splitlines())) if a != b]
    assert changed == [first]
    assert len(out.failures) == 3 and first not in {fail.line for fail in out.failures}


def _token_checker(chain: dict[str, str]):
    """Reports each ``XA``-style token (code THR900 + letter) with a fix to its successor."""

    def checker(text: str) -> FileResult:
        result = FileResult("t.py", parsed=True)
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in re.finditer(r"X[A-Z]", line):
                span = Span(lineno, m.start(), lineno, m.end())
                fix = Fix("safe", (Edit(span, chain[m.group()]),))
                code = f"THR9{ord(m.group()[1]) - ord('A'):02d}"
                result.findings.append(Finding(code, "token", "t.py", span, "token", "", fix=fix))
        return result

    return checker


def test_fix_loop_runs_until_nothing_is_left_to_fix() -> None:
    out = fix_text('a = "XA"\nb = "XC"\n', _token_checker({"XA": "XB", "XB": "ok", "XC": "fine"}))
    assert out.text == 'a = "ok"\nb = "fine"\n'
    assert out.fixed == 3 and out.result.findings == []


def test_failures_in_later_passes_name_the_original_line() -> None:
    chain = {"XA": 'ok"\nz = "XB', "XB": '" +', "XC": "XD", "XD": '" +'}
    out = fix_text('a = "XA"\nb = "XC"\n', _token_checker(chain))
    assert out.text == 'a = "ok"\nz = "XB"\nb = "XD"\n'
    assert out.fixed == 2
    assert sorted((f.code, f.line) for f in out.failures) == [("THR901", 1), ("THR903", 2)]
    assert all("not valid Python" in f.reason for f in out.failures)


def test_fix_loop_is_capped() -> None:
    seen = []
    checker = _token_checker({"XA": "XB", "XB": "XA"})

    def counting(text: str) -> FileResult:
        seen.append(text)
        return checker(text)

    out = fix_text('a = "XA"\n', counting)
    assert out.fixed == MAX_PASSES
    assert len(seen) == MAX_PASSES + 1


# -- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIRING, ids=[p.name for p in FIRING])
def test_every_fixture_fix_applies_and_verifies(fixture: Path, tmp_path: Path) -> None:
    """Every rule's fixes, applied to its own fixture: none fails verification, and no
    fixable finding is left."""
    path = _copy(fixture, tmp_path)
    before = _fixable(path, unsafe=True)
    result = fix_file(str(path), _checker(str(path)), unsafe=True)
    assert result.errors == []
    assert (path.read_bytes() != fixture.read_bytes()) == bool(before)
    assert result.fixed >= len(before)
    assert _fixable(path, unsafe=True) == []
    assert [f.to_dict() for f in check_file(str(path)).findings] == [f.to_dict() for f in result.result.findings]


def test_failed_fix_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    path = _copy(THR001, tmp_path)
    original = path.read_bytes()
    result = fix_file(str(path), _crafted(lambda f: _after_call(f, "(")), unsafe=True)
    assert path.read_bytes() == original
    assert result.fixed == 0 and result.errors
    assert all(e.path == str(path) and "not valid Python" in e.message for e in result.errors)
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_unencodable_fix_is_reported_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "legacy.py"
    body = THR001.read_text(encoding="utf-8")
    path.write_bytes(("# -*- coding: latin-1 -*-\n# caf\xe9\n" + body).encode("latin-1"))
    original = path.read_bytes()

    def make(f: Finding) -> Fix:
        return Fix("safe", f.fix.edits + (Edit(Span(2, 6, 2, 6), " \u20ac"),))

    result = fix_file(str(path), _crafted(make))
    assert path.read_bytes() == original
    assert any("cannot be encoded" in e.message for e in result.errors)
    assert result.fixed == 0
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_write_atomic_refuses_a_file_changed_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    path.write_bytes(b"x = 1\n")
    with pytest.raises(WriteError):
        write_atomic(str(path), b"x = 2\n", expected=b"x = 0\n")
    assert path.read_bytes() == b"x = 1\n"
    assert os.listdir(tmp_path) == ["f.py"]


def _fixed_lf(tmp_path: Path, fixture: Path) -> str:
    ref = _copy(fixture, tmp_path, "ref.py")
    fix_file(str(ref), _checker(str(ref)), unsafe=True)
    return ref.read_text(encoding="utf-8")


def test_crlf_file_round_trips(tmp_path: Path) -> None:
    expected = _fixed_lf(tmp_path, THR001)
    path = tmp_path / "crlf.py"
    path.write_bytes(THR001.read_bytes().replace(b"\n", b"\r\n"))
    result = fix_file(str(path), _checker(str(path)), unsafe=True)
    assert result.fixed and result.errors == []
    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data == expected.replace("\n", "\r\n").encode("utf-8")


def test_latin1_file_with_cookie_round_trips(tmp_path: Path) -> None:
    header = "# -*- coding: latin-1 -*-\n# Grüße, café\n"
    expected = _fixed_lf(tmp_path, THR001)
    path = tmp_path / "latin.py"
    path.write_bytes((header + THR001.read_text(encoding="utf-8")).encode("latin-1"))
    result = fix_file(str(path), _checker(str(path)), unsafe=True)
    assert result.fixed and result.errors == []
    assert path.read_bytes() == (header + expected).encode("latin-1")


def test_utf8_bom_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "bom.py"
    path.write_bytes(b"\xef\xbb\xbf" + THR001.read_bytes())
    fix_file(str(path), _checker(str(path)), unsafe=True)
    assert path.read_bytes() == b"\xef\xbb\xbf" + _fixed_lf(tmp_path, THR001).encode("utf-8")


def test_mode_is_kept_and_symlinks_stay_links(tmp_path: Path) -> None:
    real = _copy(THR001, tmp_path, "real.py")
    os.chmod(real, 0o640)
    link = tmp_path / "link.py"
    link.symlink_to(real.name)
    result = fix_file(str(link), _checker(str(link)), unsafe=True)
    assert result.fixed
    assert link.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert "start()" in real.read_text(encoding="utf-8")


def test_unified_diff_marks_missing_final_newline() -> None:
    diff = unified_diff("f.py", "a\nb", "a\nc")
    assert diff.splitlines() == ["--- f.py", "+++ f.py", "@@ -1,2 +1,2 @@", " a", "-b",
                                 "\\ No newline at end of file", "+c", "\\ No newline at end of file"]


# -- CLI ------------------------------------------------------------------------------------


def _safe_fixture() -> Path:
    for path in FIRING:
        if _fixable(path, unsafe=False):
            return path
    pytest.skip("no rule offers a safe fix yet")


def test_cli_fix_applies_only_safe_fixes(tmp_path: Path) -> None:
    fixture = _safe_fixture()
    path = _copy(fixture, tmp_path)
    safe = _fixable(path, unsafe=False)
    unsafe_only = [f for f in _fixable(path, unsafe=True) if f.fix.applicability == "unsafe"]
    ref = _copy(fixture, tmp_path, "ref.py")
    expected = fix_file(str(ref), _checker(str(ref)))
    assert expected.fixed >= len(safe)
    res = CliRunner().invoke(main, ["check", "--no-llm", "--fix", str(path)])
    assert f"{expected.fixed} fixed" in res.output
    assert path.read_bytes() == ref.read_bytes()
    assert path.read_bytes() != fixture.read_bytes()
    assert _fixable(path, unsafe=False) == []
    assert len([f for f in _fixable(path, unsafe=True) if f.fix.applicability == "unsafe"]) == len(unsafe_only)
    remaining = check_file(str(path)).findings
    assert res.exit_code == (1 if remaining else 0)
    for f in remaining:
        assert f"{path}:{f.span.line}:{f.span.column + 1}: {f.code}" in res.output


def test_cli_fix_leaves_unsafe_fixes_alone(tmp_path: Path) -> None:
    path = _copy(THR001, tmp_path)
    assert _fixable(path, unsafe=True) and not _fixable(path, unsafe=False)
    res = CliRunner().invoke(main, ["check", "--no-llm", "--fix", str(path)])
    assert res.exit_code == 1
    assert path.read_bytes() == THR001.read_bytes()
    assert not re.search(r"\d+ fixed", res.output)


def test_cli_unsafe_fixes_then_clean(tmp_path: Path) -> None:
    path = _copy(THR001, tmp_path)
    n = len(_fixable(path, unsafe=True))
    res = CliRunner().invoke(main, ["check", "--no-llm", "--unsafe-fixes", str(path)])
    assert f"{n} fixed" in res.output
    remaining = check_file(str(path)).findings
    assert not [f for f in remaining if f.code == "THR001"]
    assert res.exit_code == (1 if remaining else 0)


def test_cli_diff_writes_nothing_and_previews_exactly_the_fix(tmp_path: Path) -> None:
    path = _copy(THR001, tmp_path)
    res = CliRunner().invoke(main, ["check", "--no-llm", "--diff", "--unsafe-fixes", str(path)])
    assert res.exit_code == 1
    assert path.read_bytes() == THR001.read_bytes()
    expected = unified_diff(str(path), THR001.read_text(encoding="utf-8"), _fixed_lf(tmp_path, THR001))
    assert res.stdout == expected
    n = len(_fixable(path, unsafe=True))
    assert f"Would fix {n} findings in 1 file." in res.stderr


def test_cli_diff_without_changes_exits_zero(tmp_path: Path) -> None:
    path = _copy(RULES / "thr001_thread_run_ok.py", tmp_path)
    res = CliRunner().invoke(main, ["check", "--no-llm", "--diff", str(path)])
    assert res.exit_code == 0
    assert res.stdout == ""
    assert "No fixes to apply." in res.stderr


def test_cli_fix_reports_bad_input_and_goes_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_bytes(b"import threading\ndef f(:\n")
    good = _copy(THR001, tmp_path)
    res = CliRunner().invoke(main, ["check", "--no-llm", "--unsafe-fixes", "--format", "json", str(broken), str(good)])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert [e["path"] for e in data["errors"]] == [str(broken)]
    assert not [f for f in data["findings"] if f["code"] == "THR001"]
    assert broken.read_bytes() == b"import threading\ndef f(:\n"
    assert "start()" in good.read_text(encoding="utf-8")


def test_subprocess_diff_applies_with_patch(tmp_path: Path) -> None:
    path = _copy(THR001, tmp_path, "prog.py")
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli.main", "check", "--no-llm", "--diff", "--unsafe-fixes", "prog.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1, proc.stderr
    assert path.read_bytes() == THR001.read_bytes()
    if shutil.which("patch") is None:
        pytest.skip("patch(1) not installed")
    subprocess.run(["patch", "-p0", "--quiet"], input=proc.stdout, cwd=tmp_path, check=True, text=True, timeout=60)
    assert path.read_text(encoding="utf-8") == _fixed_lf(tmp_path, THR001)


def test_subprocess_fix_writes_atomically(tmp_path: Path) -> None:
    path = _copy(THR001, tmp_path, "prog.py")
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli.main", "check", "--no-llm", "--unsafe-fixes", "--format", "json", "prog.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    remaining = json.loads(proc.stdout)["findings"]
    assert proc.returncode == (1 if remaining else 0), proc.stderr
    assert not [f for f in remaining if f["code"] == "THR001"]
    assert path.read_text(encoding="utf-8") == _fixed_lf(tmp_path, THR001)
    os.unlink(tmp_path / "ref.py")
    assert sorted(os.listdir(tmp_path)) == ["prog.py"]
