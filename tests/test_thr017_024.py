"""Unit tests for rules THR017-THR024 beyond the fixtures: fixes apply and resolve the finding."""

from __future__ import annotations

import libcst as cst

from advisor.config import Settings
from advisor.engine import check_source
from advisor.rules.base import Edit


def apply_edits(source: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (1-based lines, 0-based columns) to ``source``."""
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column

    ordered = sorted(edits, key=lambda e: (e.span.line, e.span.column), reverse=True)
    out = source
    for edit in ordered:
        a = offset(edit.span.line, edit.span.column)
        b = offset(edit.span.end_line, edit.span.end_column)
        out = out[:a] + edit.content + out[b:]
    return out


def findings(source: str, code: str):
    return check_source(source, "snippet.py", Settings(select=(code,))).findings


def fix_all(source: str, code: str) -> str:
    found = findings(source, code)
    assert found and all(f.fix is not None for f in found)
    edits = {(e.span, e.content): e for f in found for e in f.fix.edits}
    return apply_edits(source, list(edits.values()))


OVER_RELEASE_ATTR = """\
import threading

slots = threading.Semaphore(4)


def fetch(url, download):
    slots.acquire()
    try:
        data = download(url)
        slots.release()
        return data
    finally:
        slots.release()
"""

OVER_RELEASE_NAME = """\
from threading import Semaphore, Thread

slots = Semaphore(2)


def store(rows, conn):
    with slots:
        for row in rows:
            conn.append(row)
        slots.release()


Thread(target=store, args=([], [])).start()
"""


def test_bounded_semaphore_fix_via_module_attribute() -> None:
    fixed = fix_all(OVER_RELEASE_ATTR, "THR018")
    cst.parse_module(fixed)
    assert "slots = threading.BoundedSemaphore(4)" in fixed
    assert findings(fixed, "THR018") == []


def test_bounded_semaphore_fix_adds_import() -> None:
    found = findings(OVER_RELEASE_NAME, "THR018")
    assert [f.fix.applicability for f in found] == ["unsafe"]
    fixed = fix_all(OVER_RELEASE_NAME, "THR018")
    module = cst.parse_module(fixed)
    assert "from threading import BoundedSemaphore, Semaphore, Thread" in module.code
    assert "slots = BoundedSemaphore(2)" in fixed
    assert findings(fixed, "THR018") == []


CALL_SOON_FROM_THREAD = """\
import asyncio
import threading


def poll(loop, results):
    for item in range(3):
        loop.call_soon(results.append, item)


async def main():
    loop = asyncio.get_running_loop()
    results = []
    t = threading.Thread(target=poll, args=(loop, results))
    t.start()
    await asyncio.sleep(0.1)
    t.join()
"""


def test_call_soon_fix_uses_threadsafe_variant() -> None:
    found = findings(CALL_SOON_FROM_THREAD, "THR019")
    assert len(found) == 1 and found[0].fix.applicability == "unsafe"
    fixed = fix_all(CALL_SOON_FROM_THREAD, "THR019")
    cst.parse_module(fixed)
    assert "loop.call_soon_threadsafe(results.append, item)" in fixed
    assert findings(fixed, "THR019") == []


def test_fresh_lock_rule_ignores_condition_over_shared_lock() -> None:
    source = "import threading\nlock = threading.Lock()\n\ndef f(x):\n    with threading.Condition(lock):\n        x.append(1)\n    with threading.Condition():\n        x.append(2)\n"
    found = findings(source, "THR023")
    assert [f.line for f in found] == [7]
