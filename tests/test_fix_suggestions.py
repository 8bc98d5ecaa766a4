"""`--fix --unsafe-fixes` applies fixes that come from outside the rules (verified model
suggestions) through the same verified, atomic path."""

from __future__ import annotations

import textwrap
from pathlib import Path

from advisor.analysis.model import Span
from advisor.config import Settings
from advisor.fixes.files import fix_paths
from advisor.rules import Edit, Fix

RACY = textwrap.dedent(
    """\
    import threading

    counter = 0


    def work():
        global counter
        for _ in range(1000):
            counter += 1


    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)
LOCKED_BODY = "        with lock:\n            counter += 1"


def _suggest_with(content: str):
    calls = []

    def suggest(findings, path, text):
        calls.append(path)
        for f in findings:
            if f.code == "THR006" and f.fix is None:
                f.fix = Fix("unsafe", (Edit(Span(9, 0, 9, len("        counter += 1")), content),), "model")

    return suggest, calls


def test_suggested_fix_is_applied_and_rechecked(tmp_path: Path) -> None:
    path = tmp_path / "racy.py"
    path.write_text(RACY.replace("counter = 0\n", "counter = 0\nlock = threading.Lock()\n").replace(
        "\n\ndef work", "\ndef work"))
    source = path.read_text()
    line = source.splitlines().index("        counter += 1") + 1
    suggest_calls = []

    def suggest(findings, p, text):
        suggest_calls.append(p)
        for f in findings:
            if f.code == "THR006":
                f.fix = Fix("unsafe", (Edit(Span(line, 0, line, 20), LOCKED_BODY),), "model")

    run = fix_paths([str(path)], Settings(), unsafe=True, suggest=suggest)
    assert run.fixed == 1, run.errors
    assert "with lock:\n            counter += 1" in path.read_text()
    assert suggest_calls == [str(path)]


def test_suggested_fix_that_keeps_the_finding_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "racy.py"
    path.write_text(RACY)
    before = path.read_bytes()
    suggest, _ = _suggest_with("        counter = counter + 1")
    run = fix_paths([str(path)], Settings(), unsafe=True, suggest=suggest)
    assert run.fixed == 0
    assert path.read_bytes() == before
    assert any("THR006" in e.message for e in run.errors)


def test_suggestions_are_not_applied_without_unsafe(tmp_path: Path) -> None:
    path = tmp_path / "racy.py"
    path.write_text(RACY)
    before = path.read_bytes()
    suggest, _ = _suggest_with("        pass")
    run = fix_paths([str(path)], Settings(), unsafe=False, suggest=suggest)
    assert run.fixed == 0 and path.read_bytes() == before
