"""The prefilter skips files without parsing them: it must never skip one that has findings.

Checked on real code: standard-library files the prefilter rejects are analysed anyway (rules
run with the prefilter off) and must give no finding. The regular run takes a deterministic
sample; ``ADVISOR_PREFILTER_FULL=1`` checks every rejected file of the standard library.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from pathlib import Path

import pytest

from advisor.analysis.source import SourceError, read_source
from advisor.engine import PREFILTER, check_source, screen

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FIXTURES = Path(__file__).parent / "fixtures" / "rules"
FULL = os.environ.get("ADVISOR_PREFILTER_FULL") == "1"
SAMPLE_LINES = 12_000


def _texts(root: Path, tests_too: bool = False) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = set(path.relative_to(root).parts)
        if "site-packages" in parts or (not tests_too and parts & {"test", "tests", "idle_test"}):
            continue
        try:
            out[str(path)] = read_source(path).text
        except SourceError:
            continue
    return out


@pytest.fixture(scope="module")
def stdlib() -> dict[str, str]:
    if not STDLIB.is_dir():
        pytest.skip("no standard library sources here")
    return _texts(STDLIB)


def _stable_order(paths) -> list[str]:
    return sorted(paths, key=lambda p: hashlib.sha256(p.encode()).hexdigest())


def _sample(texts: dict[str, str], paths: list[str], budget: int) -> list[str]:
    if FULL:
        return paths
    chosen, lines = [], 0
    for path in _stable_order(paths):
        n = texts[path].count("\n")
        if lines + n <= budget:
            chosen.append(path)
            lines += n
    return chosen


def test_fast_search_matches_the_pattern_exactly() -> None:
    texts = _texts(STDLIB, tests_too=True)
    paths = list(texts) if FULL else _stable_order(texts)[:600]
    assert paths
    for path in paths:
        assert PREFILTER.search(texts[path]) == bool(PREFILTER.pattern.search(texts[path])), path
    edge = ["block = 1", "clock()", "x.cv.wait()", "cond_var = 1", "second = 2", "ex.map(f, xs)", "index.map(f)", "self._mtx", "MUTEX"]
    assert [PREFILTER.search(t) for t in edge] == [bool(PREFILTER.pattern.search(t)) for t in edge]
    assert [PREFILTER.search(t) for t in edge] == [False, False, True, True, False, True, False, True, True]


def test_rule_fixtures_pass_the_prefilter_with_identical_results() -> None:
    files = sorted(FIXTURES.glob("*.py"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        filtered = check_source(text, str(path))
        unfiltered = check_source(text, str(path), prefilter=False)
        assert filtered.to_dict() == unfiltered.to_dict(), path.name


def test_names_only_in_comments_and_strings_are_screened_out() -> None:
    assert screen('"""Not thread-safe; take the lock first."""\nx = 1  # thread\n')[0] == "skip"
    assert screen("import threading\n")[0] == "parse"
    assert screen("def f(ex, xs):\n    return ex.map(g, xs)\n")[0] == "parse"
    assert screen("with self._lock:\n    pass\n")[0] == "parse"


@pytest.mark.parametrize(
    "source",
    [
        "import threading\n",
        "from queue import Queue\n",
        "from concurrent.futures import as_completed\n",
        "def f(pool, xs):\n    return pool.submit(g, xs)\n",
        "def f(executor, xs):\n    return list(executor.map(g, xs))\n",
        "def f(self):\n    with self._lock, open(p) as fh:\n        pass\n",
        "async def f(self):\n    async with self._sem:\n        pass\n",
        "def f(cond):\n    cond.wait()\n",
        "def f(self):\n    if not self.work_queue.empty():\n        pass\n",
        "def f(t):\n    t.acquire()\n",
    ],
)
def test_the_name_screen_keeps_threading_constructs(source: str) -> None:
    assert screen(source)[0] == "parse"


@pytest.mark.parametrize(
    "source",
    [
        "def visit(node, condition):\n    return condition(node)\n",
        "queue = [root]\nwhile queue:\n    queue.pop()\n",
        "def f(pool, xs):\n    return list(map(len, pool))\n",
        "import os\nif hasattr(os, 'fork'):\n    pass\n",
        "def f(self):\n    with self.second_pass():\n        self.cond = 1\n",
        "HAVE_THREADS = False\n",
    ],
)
def test_the_name_screen_drops_words_that_name_no_construct(source: str) -> None:
    assert screen(source)[0] == "skip"


def _assert_silent(texts: dict[str, str], paths: list[str]) -> None:
    noisy = {}
    for path in paths:
        result = check_source(texts[path], path, prefilter=False)
        if result.findings:
            noisy[path] = [(f.code, f.line) for f in result.findings]
    assert noisy == {}


def test_stdlib_files_rejected_by_the_name_screen_have_no_findings(stdlib: dict[str, str]) -> None:
    rejected = [p for p, t in stdlib.items() if PREFILTER.search(t) and screen(t)[0] == "skip"]
    assert rejected
    _assert_silent(stdlib, _sample(stdlib, rejected, SAMPLE_LINES))


def test_stdlib_files_rejected_by_the_word_filter_have_no_findings(stdlib: dict[str, str]) -> None:
    rejected = [p for p, t in stdlib.items() if not PREFILTER.search(t)]
    assert len(rejected) > len(stdlib) // 3
    _assert_silent(stdlib, _sample(stdlib, rejected, SAMPLE_LINES // 2))
