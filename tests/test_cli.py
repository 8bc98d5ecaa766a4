"""The command line: exit codes, formats, selection, suppression, configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.rules import all_rules

BUGGY = textwrap.dedent(
    """\
    import threading

    def work():
        pass

    t = threading.Thread(target=work)
    t.run()
    """
)
CLEAN = "import threading\n\nt = threading.Thread(target=print)\nt.start()\nt.join()\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "buggy.py").write_text(BUGGY)
    (tmp_path / "pkg" / "clean.py").write_text(CLEAN)
    return tmp_path


def run(args, cwd: Path | None = None):
    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        return runner.invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)


def test_findings_exit_1_and_text_frame(tree: Path) -> None:
    result = run(["check", "--no-llm", str(tree / "pkg")], cwd=tree)
    assert result.exit_code == 1
    out = result.output
    assert f"{tree / 'pkg' / 'buggy.py'}:7:1: THR001" in out
    assert "7 | t.run()" in out
    assert "^^^^^^^ THR001" in out
    assert "= help:" in out
    assert "Found 1 finding in 1 file (2 files checked)." in out
    assert "\x1b[" not in out


def test_clean_exit_0(tree: Path) -> None:
    result = run(["check", "--no-llm", str(tree / "pkg" / "clean.py")], cwd=tree)
    assert result.exit_code == 0, result.output
    assert "No threading issues found (1 file checked)." in result.output


def test_exit_zero(tree: Path) -> None:
    assert run(["check", "--no-llm", "--exit-zero", str(tree / "pkg")], cwd=tree).exit_code == 0


def test_json_schema(tree: Path) -> None:
    result = run(["check", "--no-llm", "--format", "json", str(tree / "pkg")], cwd=tree)
    data = json.loads(result.output)
    assert data["version"] == 1
    assert data["files_checked"] == 2
    assert data["errors"] == []
    (f,) = data["findings"]
    assert set(f) >= {"code", "name", "path", "line", "column", "end_line", "end_column", "severity",
                      "message", "help", "fix", "advice"}
    assert (f["code"], f["line"], f["column"], f["end_line"], f["end_column"]) == ("THR001", 7, 0, 7, 7)
    assert f["fix"]["applicability"] == "unsafe"
    assert f["fix"]["edits"][0]["content"] == "start"


def test_sarif(tree: Path) -> None:
    result = run(["check", "--no-llm", "--format", "sarif", str(tree / "pkg")], cwd=tree)
    sarif = json.loads(result.output)
    assert sarif["version"] == "2.1.0"
    run0 = sarif["runs"][0]
    ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    assert ids == [r.code for r in all_rules()]
    (res,) = run0["results"]
    assert res["ruleId"] == "THR001"
    assert ids[res["ruleIndex"]] == "THR001"
    region = res["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 7, "startColumn": 1, "endLine": 7, "endColumn": 8}


def test_github_annotations(tree: Path) -> None:
    result = run(["check", "--no-llm", "--format", "github", str(tree / "pkg")], cwd=tree)
    (line,) = result.output.splitlines()
    assert line.startswith("::warning file=")
    assert ",line=7,col=1," in line
    assert "::THR001 " in line


def test_select_and_ignore(tree: Path) -> None:
    assert run(["check", "--no-llm", "--ignore", "THR001", str(tree / "pkg")], cwd=tree).exit_code == 0
    assert run(["check", "--no-llm", "--select", "THR002", str(tree / "pkg")], cwd=tree).exit_code == 0
    assert run(["check", "--no-llm", "--select", "THR0", str(tree / "pkg")], cwd=tree).exit_code == 1
    bad = run(["check", "--no-llm", "--select", "E501", str(tree / "pkg")], cwd=tree)
    assert bad.exit_code == 2 and "E501" in bad.output


@pytest.mark.parametrize(
    "comment, suppressed",
    [
        ("# advisor: ignore[THR001]", True),
        ("# noqa: THR001", True),
        ("# noqa: THR002", False),
        ("# noqa", False),
        ("# advisor: ignore[THR002, THR001]", True),
    ],
)
def test_line_suppression(tmp_path: Path, comment: str, suppressed: bool) -> None:
    path = tmp_path / "m.py"
    path.write_text(BUGGY.replace("t.run()", f"t.run()  {comment}"))
    result = run(["check", "--no-llm", str(path)], cwd=tmp_path)
    assert result.exit_code == (0 if suppressed else 1), result.output


def write_config(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text("[tool.advisor]\n" + textwrap.dedent(body))


def test_config_ignore_exclude_and_per_file(tree: Path) -> None:
    write_config(tree, 'ignore = ["THR001"]\n')
    assert run(["check", "--no-llm", "pkg"], cwd=tree).exit_code == 0
    write_config(tree, 'exclude = ["pkg/buggy.py"]\n')
    result = run(["check", "--no-llm", "pkg"], cwd=tree)
    assert result.exit_code == 0 and "1 file checked" in result.output
    write_config(tree, '[tool.advisor.per-file-ignores]\n"pkg/*.py" = ["THR001"]\n')
    assert run(["check", "--no-llm", "pkg"], cwd=tree).exit_code == 0
    write_config(tree, 'select = ["THR002"]\n')
    assert run(["check", "--no-llm", "pkg"], cwd=tree).exit_code == 0


def test_explicit_directory_inside_an_excluded_one_is_checked(tree: Path) -> None:
    write_config(tree, 'ignore = ["THR002"]\n')
    pkg = tree / ".venv" / "lib" / "site-packages" / "vendored"
    (pkg / "build").mkdir(parents=True)
    (pkg / "mod.py").write_text(BUGGY)
    (pkg / "build" / "generated.py").write_text(BUGGY)
    whole = run(["check", "--no-llm", "."], cwd=tree)
    assert ".venv" not in whole.output
    result = run(["check", "--no-llm", str(pkg)], cwd=tree)
    assert result.exit_code == 1 and "1 file checked" in result.output
    assert "mod.py:7:1: THR001" in result.output and "generated.py" not in result.output


@pytest.mark.parametrize(
    "body, key",
    [
        ('selct = ["THR001"]\n', "selct"),
        ('ignore = "THR001"\n', "ignore"),
        ('select = ["XYZ1"]\n', "select"),
        ("per-file-ignores = 3\n", "per-file-ignores"),
        ("exclude = [1]\n", "exclude"),
    ],
)
def test_invalid_config_is_exit_2_naming_the_key(tree: Path, body: str, key: str) -> None:
    write_config(tree, body)
    result = run(["check", "--no-llm", "pkg"], cwd=tree)
    assert result.exit_code == 2
    assert key in result.output


def test_broken_toml_is_exit_2(tree: Path) -> None:
    (tree / "pyproject.toml").write_text("[tool.advisor\nselect = 1")
    result = run(["check", "--no-llm", "pkg"], cwd=tree)
    assert result.exit_code == 2 and "invalid TOML" in result.output


def test_rules_json_and_explain() -> None:
    data = json.loads(run(["rules", "--format", "json"]).output)
    assert [d["code"] for d in data] == [r.code for r in all_rules()]
    assert all(set(d) == {"code", "name", "summary"} for d in data)
    text = run(["explain", "THR001"]).output
    assert "## Why is this bad?" in text and "start()" in text
    assert run(["explain", "thread-run-instead-of-start"]).exit_code == 0
    assert run(["explain", "THR999"]).exit_code == 2


def test_usage_error_exit_2() -> None:
    assert run(["check"]).exit_code == 2
    assert run(["check", "--format", "xml", "."]).exit_code == 2


def test_real_subprocess(tree: Path) -> None:
    exe = [sys.executable, "-m", "advisor", "check", "--no-llm", "--format", "json", "pkg"]
    proc = subprocess.run(exe, cwd=tree, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [f["code"] for f in data["findings"]] == ["THR001"]
    proc = subprocess.run(
        [sys.executable, "-m", "advisor", "check", "--no-llm", "pkg/clean.py"],
        cwd=tree, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
