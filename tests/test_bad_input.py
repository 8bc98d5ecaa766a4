"""Bad input never stops a run: each bad file is an ``errors`` entry with its path and a reason,
and every other file is still analysed. Checked through the CLI, in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
import threading


def work():
    pass


t = threading.Thread(target=work)
t.run()
"""
"""A small file with one certain finding (THR001), to show the run went on."""


def _cli(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output


def _subprocess(args: list[str], **kwargs) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli.main", *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT, **kwargs,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _report(output: str) -> dict:
    data = json.loads(output)
    assert data["version"] == 1
    return data


def _errors_by_name(report: dict) -> dict[str, str]:
    return {Path(e["path"]).name: e["message"] for e in report["errors"]}


def _assert_good_file_analysed(report: dict, tmp: Path) -> None:
    good = [f for f in report["findings"] if Path(f["path"]).name == "good.py"]
    assert [f["code"] for f in good] == ["THR001"], report["findings"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A directory with one good file and one file of every kind of bad input."""
    (tmp_path / "good.py").write_text(GOOD, encoding="utf-8")
    (tmp_path / "syntax.py").write_text("import threading\ndef broken(:\n    pass\n", encoding="utf-8")
    (tmp_path / "latin1_cookie.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nimport threading\nNAME = '\xe9t\xe9'\nt = threading.Thread(target=print)\nt.run()\n"
    )
    (tmp_path / "latin1_nocookie.py").write_bytes(b"import threading\nNAME = '\xe9t\xe9'\n")
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4)
    (tmp_path / "empty.py").write_bytes(b"")
    (tmp_path / "loop.py").symlink_to("loop.py")
    (tmp_path / "subdir").mkdir()
    (tmp_path / "subdir" / "back").symlink_to("..", target_is_directory=True)
    (tmp_path / "parens.py").write_text("import threading\nx = " + "(" * 5000 + "1" + ")" * 5000 + "\n", encoding="utf-8")
    (tmp_path / "lists.py").write_text("import threading\nx = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    (tmp_path / "unary.py").write_text("import threading\nx = " + "-" * 5000 + "1\n", encoding="utf-8")
    (tmp_path / "nested_broken.py").write_text(
        "import threading\ndef f(:\n    pass\nx = " + "(" * 5000 + ")" * 5000 + "\n", encoding="utf-8"
    )
    os.mkfifo(tmp_path / "fifo.py")
    return tmp_path


EXPECTED_ERRORS = {
    "syntax.py": "syntax error",
    "latin1_nocookie.py": "cannot decode as utf-8",
    "binary.py": "binary file",
    "loop.py": "symbolic links",
    "parens.py": "too deeply nested",
    "lists.py": "too deeply nested",
    "unary.py": "too deeply nested",
    "nested_broken.py": "too deeply nested",
    "fifo.py": "not a regular file",
}


def _check_tree_report(report: dict, tree: Path, missing: str) -> None:
    errors = _errors_by_name(report)
    for name, reason in EXPECTED_ERRORS.items():
        assert name in errors, f"{name} not reported: {report['errors']}"
        assert reason in errors[name].lower(), (name, errors[name])
    assert errors[Path(missing).name] == "no such file or directory"
    assert "empty.py" not in errors and "latin1_cookie.py" not in errors
    for e in report["errors"]:
        assert e["path"] and e["message"]
    _assert_good_file_analysed(report, tree)
    cookie = [f["code"] for f in report["findings"] if Path(f["path"]).name == "latin1_cookie.py"]
    assert cookie == ["THR001"]
    assert report["files_checked"] == 12
    syntax = next(e for e in report["errors"] if e["path"].endswith("syntax.py"))
    assert syntax["line"] == 2


def test_every_bad_input_is_an_error_and_the_run_goes_on_cli_runner(tree: Path) -> None:
    missing = str(tree / "does_not_exist.py")
    code, out = _cli(["check", "--no-llm", "--format", "json", str(tree), missing])
    assert code == 1
    _check_tree_report(_report(out), tree, missing)


def test_every_bad_input_is_an_error_and_the_run_goes_on_subprocess(tree: Path) -> None:
    missing = str(tree / "does_not_exist.py")
    code, out, err = _subprocess(["check", "--no-llm", "--format", "json", "--no-cache", "-j", "2", str(tree), missing])
    assert code == 1, err
    assert "Traceback" not in err
    _check_tree_report(_report(out), tree, missing)


def test_text_format_names_each_bad_file(tree: Path) -> None:
    code, out, err = _subprocess(["check", "--no-llm", "--no-cache", str(tree)])
    assert code == 1
    assert "Traceback" not in out + err
    for name in EXPECTED_ERRORS:
        assert name in out + err


def test_empty_file_alone_is_clean(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    code, out = _cli(["check", "--no-llm", "--format", "json", str(tmp_path / "empty.py")])
    report = _report(out)
    assert code == 0 and report["errors"] == [] and report["files_checked"] == 1


def test_missing_path_alone_exits_1_with_an_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    code, out, _ = _subprocess(["check", "--no-llm", "--format", "json", missing])
    assert code == 1
    assert _report(out)["errors"] == [{"path": missing, "line": None, "message": "no such file or directory"}]


def test_fifty_thousand_line_file_is_analysed(tmp_path: Path) -> None:
    body = "".join(f"value_{i} = {i}\n" for i in range(50_000 - len(GOOD.splitlines())))
    big = tmp_path / "big.py"
    big.write_text(body + GOOD, encoding="utf-8")
    assert len(big.read_text(encoding="utf-8").splitlines()) == 50_000
    code, out = _cli(["check", "--no-llm", "--format", "json", "--no-cache", str(big)])
    report = _report(out)
    assert report["errors"] == []
    assert [(f["code"], f["line"]) for f in report["findings"]] == [("THR001", 50_000)]
    assert code == 1


@pytest.mark.parametrize(
    "table, key",
    [
        ('select = "THR001"', "select"),
        ("colour = true", "colour"),
        ('per-file-ignores = ["x"]', "per-file-ignores"),
        ('ignore = ["XYZ1"]', "ignore"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, table: str, key: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.advisor]\n{table}\n", encoding="utf-8")
    (tmp_path / "good.py").write_text(GOOD, encoding="utf-8")
    code, out, err = _subprocess(["check", "--no-llm", "--format", "json", str(tmp_path)])
    assert code == 2
    assert key in err and "pyproject.toml" in err
    assert "Traceback" not in err
    result = CliRunner().invoke(main, ["check", "--no-llm", str(tmp_path)])
    assert result.exit_code == 2 and key in result.output


def test_invalid_toml_exits_2(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.advisor\nselect = [\n", encoding="utf-8")
    (tmp_path / "good.py").write_text(GOOD, encoding="utf-8")
    code, _, err = _subprocess(["check", "--no-llm", str(tmp_path)])
    assert code == 2 and "invalid TOML" in err


def _nobody() -> tuple[int, int] | None:
    try:
        import pwd

        entry = pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return None
    return entry.pw_uid, entry.pw_gid


def _unprivileged_python() -> str | None:
    """An interpreter user ``nobody`` may run (the venv's lives under root's home)."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if os.path.exists(candidate) and os.stat(candidate).st_mode & 0o001:
            return candidate
    return None


def test_unreadable_file_is_an_error() -> None:
    """chmod 000. Root reads such files anyway, so as root the CLI runs as ``nobody``."""
    import sysconfig

    user = _nobody() if os.geteuid() == 0 else None
    python = sys.executable
    if os.geteuid() == 0:
        python = _unprivileged_python()
        if user is None or python is None:
            pytest.skip("running as root with no unprivileged user and interpreter to drop to")
    work = Path(tempfile.mkdtemp(prefix="advisor-unreadable-"))
    try:
        work.chmod(0o755)
        (work / "good.py").write_text(GOOD, encoding="utf-8")
        (work / "good.py").chmod(0o644)
        secret = work / "secret.py"
        secret.write_text(GOOD, encoding="utf-8")
        secret.chmod(0o000)

        def drop() -> None:
            if user is not None:
                os.setgid(user[1])
                os.setuid(user[0])

        site = sysconfig.get_paths()["purelib"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), site]), "HOME": str(work)}
        proc = subprocess.run(
            [python, "-m", "advisor.cli.main", "check", "--no-llm", "--format", "json", str(work)],
            capture_output=True, text=True, timeout=600, cwd=ROOT, env=env, preexec_fn=drop,
        )
        assert proc.returncode == 1, proc.stderr
        report = _report(proc.stdout)
        assert _errors_by_name(report) == {"secret.py": "permission denied"}
        _assert_good_file_analysed(report, work)
    finally:
        (work / "secret.py").chmod(0o644)
        shutil.rmtree(work, ignore_errors=True)
