"""Generated programs never make the analyzer raise or report an internal error.

Two generators: hypothesmith's grammar-based programs (any Python), and a cheap generator of
threaded programs (locks, conditions, threads, executors, shared state) that drives the rules.
The regular run uses a few hundred examples; for thousands:

    ADVISOR_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/test_fuzz.py
"""

from __future__ import annotations

import os

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.engine import check_source

EXAMPLES = int(os.environ.get("ADVISOR_FUZZ_EXAMPLES", "300"))
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
HALF = settings(max_examples=max(1, EXAMPLES // 2), deadline=None, suppress_health_check=_HEALTH)
"""The two grammar-based tests share the budget: EXAMPLES generated programs in all."""

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")


def _assert_clean(source: str) -> None:
    result = check_source(source, "generated.py", prefilter=False)
    for error in result.errors:
        assert "internal error" not in error.message, (error.message, source)
    for finding in result.findings:
        assert finding.code.startswith("THR") and finding.line >= 1, finding
        assert finding.span.end_line >= finding.line


@HALF
@given(hypothesmith.from_grammar())
def test_grammar_generated_programs(source: str) -> None:
    _assert_clean(source)


@HALF
@given(hypothesmith.from_grammar().map(lambda s: "import threading\nlock = threading.Lock()\n" + s))
def test_grammar_generated_programs_with_threading_prelude(source: str) -> None:
    _assert_clean(source)


NAMES = st.sampled_from(["lock", "cond", "data", "count", "items", "worker", "self", "q", "ev", "x", "f", "t", "pool"])
LOCKS = st.sampled_from(["lock", "self._lock", "cond", "self.cond", "mutex", "sem", "LOCK", "other_lock"])

STATEMENTS = [
    "{n} += 1",
    "{n}[k] = {n}.get(k, 0) + 1",
    "{n}.append(1)",
    "global {n}",
    "if k not in {n}:\n    {n}[k] = 1",
    "with {l}:\n    {n} += 1",
    "with {l}:\n    with {l2}:\n        pass",
    "{l}.acquire()",
    "{l}.release()",
    "{l}.acquire()\ntry:\n    {n} = 1\nfinally:\n    {l}.release()",
    "{l}.wait()",
    "while not {n}:\n    {l}.wait()",
    "if not {n}:\n    {l}.wait()",
    "time.sleep(0.1)",
    "while not {n}:\n    time.sleep(0.1)",
    "t = threading.Thread(target={n})\nt.start()",
    "t = threading.Thread(target={n}())\nt.run()",
    "t = Thread(target={n}, args=({n}))\nt.start()\nt.join()",
    "for i in range(3):\n    threading.Thread(target=lambda: {n}(i)).start()",
    "threads = [threading.Thread(target={n}) for _ in range(2)]\nfor th in threads:\n    th.start()",
    "with ThreadPoolExecutor() as ex:\n    ex.submit({n}, 1)",
    "fut = pool.submit({n})\nfut.result()",
    "q.put({n})\nq.task_done()\nq.join()",
    "os.fork()",
    "with threading.Lock():\n    {n} = 2",
    "{n} = threading.local()\nprint({n}.value)",
    "asyncio.get_event_loop().call_soon({n})",
    "return {n}",
    "yield {n}",
    "pass",
]


@st.composite
def threaded_programs(draw) -> str:
    header = draw(st.sampled_from([
        "import threading, time, os, asyncio, queue\nfrom threading import Thread\nfrom concurrent.futures import ThreadPoolExecutor\n",
        "import threading as th\nfrom threading import Lock as L, Condition\nimport time\n",
        "from queue import Queue\nimport threading\n",
    ]))
    lines = [header, "lock = threading.Lock()\nother_lock = threading.RLock()\ncond = threading.Condition(lock)\ncount = 0\ndata = {}\n"]
    for fi in range(draw(st.integers(1, 4))):
        in_class = draw(st.booleans())
        body = []
        for _ in range(draw(st.integers(1, 5))):
            template = draw(st.sampled_from(STATEMENTS))
            body.append(template.format(n=draw(NAMES), l=draw(LOCKS), l2=draw(LOCKS)))
        indent = "        " if in_class else "    "
        text = "\n".join(indent + line for stmt in body for line in stmt.splitlines())
        if in_class:
            lines.append(f"class C{fi}(threading.Thread):\n    def __init__(self):\n        self._lock = threading.Lock()\n        self.cond = threading.Condition()\n    def run(self):\n{text}\n")
        else:
            lines.append(f"def worker{fi}(k=None):\n{text}\n")
    tail = [draw(st.sampled_from(STATEMENTS)).format(n=draw(NAMES), l=draw(LOCKS), l2=draw(LOCKS)) for _ in range(draw(st.integers(0, 3)))]
    lines.extend(t for t in tail if not t.startswith(("return", "yield")))
    return "\n".join(lines) + "\n"


@FUZZ
@given(threaded_programs())
def test_generated_threaded_programs(source: str) -> None:
    try:
        compile(source, "generated.py", "exec")
    except SyntaxError:
        pass
    _assert_clean(source)
