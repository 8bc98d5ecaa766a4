"""Unit tests for THR009-THR016 beyond the fixtures: the THR012 fix applied and re-checked."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from advisor.config import Settings
from advisor.engine import check_source


def apply_edits(source: str, edits) -> str:
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column

    out = source
    for edit in sorted(edits, key=lambda e: (e.span.line, e.span.column), reverse=True):
        a = offset(edit.span.line, edit.span.column)
        b = offset(edit.span.end_line, edit.span.end_column)
        out = out[:a] + edit.content + out[b:]
    return out


def only(code: str, source: str):
    return [f for f in check_source(source, "t.py", Settings(select=(code,))).findings if f.code == code]


CASES = [
    """
    import threading
    def run(items, work):
        for i in items:
            threading.Thread(target=lambda: work(i)).start()
    """,
    """
    import threading
    def run(items, work):
        for i, j in items:
            threading.Thread(target=lambda a: work(a, i, j), args=(1,)).start()
    """,
    """
    from concurrent.futures import ThreadPoolExecutor
    def run(items, work):
        with ThreadPoolExecutor() as pool:
            for i in items:
                pool.submit(lambda *a: work(i, *a))
    """,
    """
    import threading
    def run(items, work):
        for i in items:
            def job():
                work(i)
            threading.Timer(1.0, job).start()
    """,
    """
    import threading
    def run(items, work):
        for i in items:
            def job(a, *, flag=True):
                work(i, a, flag)
            threading.Thread(target=job, args=(1,)).start()
    """,
]


@pytest.mark.parametrize("source", CASES)
def test_thr012_fix_binds_loop_variable(source: str) -> None:
    source = textwrap.dedent(source)
    findings = only("THR012", source)
    assert len(findings) == 1
    fix = findings[0].fix
    assert fix is not None and fix.applicability == "unsafe"
    fixed = apply_edits(source, fix.edits)
    assert fixed != source
    cst.parse_module(fixed)
    compile(fixed, "t.py", "exec")
    assert only("THR012", fixed) == []
