"""The fixes of THR003-THR008: applied to their fixtures, the result parses and the
finding is gone."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from advisor.engine import check_source
from advisor.rules import Edit, Finding

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def apply_edits(source: str, edits: tuple[Edit, ...]) -> str:
    """Apply edits given as 1-based lines and 0-based columns (end exclusive)."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column if line - 1 < len(starts) else len(source)

    out = source
    for edit in sorted(edits, key=lambda e: (e.span.line, e.span.column), reverse=True):
        a = offset(edit.span.line, edit.span.column)
        b = offset(edit.span.end_line, edit.span.end_column)
        out = out[:a] + edit.content + out[b:]
    return out


def findings(source: str, code: str) -> list[Finding]:
    result = check_source(source, "fixture.py")
    assert result.errors == []
    return [f for f in result.findings if f.code == code]


def fixed_once(name: str, code: str) -> list[tuple[Finding, str]]:
    source = (FIXTURES / name).read_text(encoding="utf-8")
    out = []
    for finding in findings(source, code):
        if finding.fix is None:
            continue
        new = apply_edits(source, finding.fix.edits)
        cst.parse_module(new)
        after = findings(new, code)
        assert len(after) == len(findings(source, code)) - 1, (finding.line, new)
        out.append((finding, new))
    return out


def test_thr003_fix_makes_a_tuple() -> None:
    results = fixed_once("thr003_args_not_tuple.py", "THR003")
    assert len(results) == 6
    texts = {f.line: new.splitlines()[f.line - 1].strip() for f, new in results}
    assert texts[18] == "t = threading.Thread(target=fetch, args=(url,))  # expect: THR003"
    assert texts[26] == 'timer = Timer(5.0, greet, args=("world",))  # expect: THR003'
    assert texts[32] == 't = threading.Thread(target=greet, args=("operator",))  # expect: THR003'
    safety = {f.line: f.fix.applicability for f, _ in results}
    assert safety[26] == safety[32] == "safe"
    assert safety[18] == "unsafe"


def test_thr004_fix_turns_pair_into_with() -> None:
    results = fixed_once("thr004_acquire_without_release.py", "THR004")
    lines = sorted(f.line for f, _ in results)
    assert lines == [10, 62, 92, 98]
    finding, new = results[0]
    assert finding.fix.applicability == "safe"
    assert "    with ledger_lock:  # expect: THR004\n        balances[src] -= amount\n" in new
    assert "ledger_lock.release()\n\n\ndef audit" not in new


def test_thr005_fix_turns_if_into_while() -> None:
    results = fixed_once("thr005_wait_not_in_loop.py", "THR005")
    assert [f.line for f, _ in results] == [20, 62, 85, 101, 121, 137, 155]
    finding, new = results[0]
    assert finding.fix.applicability == "unsafe"
    assert "            while not self._jobs:\n                self._cond.wait()  # expect: THR005\n" in new


def test_model_resolves_method_target_of_untyped_object() -> None:
    from advisor.analysis.extract import build_model

    source = (
        "import threading, os\n"
        "class Account:\n"
        "    def deposit(self, n):\n"
        "        self.balance += n\n"
        "class Other:\n"
        "    def run(self):\n"
        "        pass\n"
        "class Third:\n"
        "    def run(self):\n"
        "        pass\n"
        "def go(acct, obj):\n"
        "    threading.Thread(target=acct.deposit, args=(1,)).start()\n"
        "    threading.Thread(target=obj.run).start()\n"
        "    threading.Thread(target=os.sync).start()\n"
    )
    model = build_model(cst.parse_module(source))
    assert set(model.thread_entries) == {"Account.deposit"}


def test_thr004_fix_is_unsafe_for_an_object_of_unknown_type() -> None:
    """`with m:` needs __enter__/__exit__; a cache backend's mutex may only have acquire/release."""
    from advisor.engine import check_source

    source = (
        "import threading\n"
        "guard = threading.Lock()\n"
        "def check_locked(backend, key):\n"
        "    mutex = backend.get_mutex(key)\n"
        "    mutex.acquire()\n"
        "    backend.touch(key)\n"
        "    mutex.release()\n"
        "def touch(store, key):\n"
        "    guard.acquire()\n"
        "    store.touch(key)\n"
        "    guard.release()\n"
    )
    fixes = {f.span.line: f.fix.applicability for f in check_source(source, "m.py").findings if f.code == "THR004"}
    assert fixes == {5: "unsafe", 9: "safe"}
