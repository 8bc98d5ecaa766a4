"""The corpus: the real examples stay valid, bad input is reported, augmentation and
mining are reproducible."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.corpus.augment import augment, executor, imports, method, normalize, rename, retext
from advisor.corpus.examples import CorpusError, Example, load_corpus, parse_line
from advisor.corpus.mine import mine_paths, mine_source
from advisor.corpus.validate import judge, known_rules, validate_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="module")
def real_report():
    return validate_corpus(CORPUS)


@pytest.fixture(scope="module")
def real_examples():
    return load_corpus(CORPUS).examples


def test_real_corpus_is_valid(real_report):
    assert [str(p) for p in real_report.problems] == []
    assert real_report.valid > 0


def test_every_implemented_rule_with_examples_has_fifteen_verified(real_report, real_examples):
    rules_with_files = {ex.rule for ex in real_examples}
    for rule in sorted(rules_with_files & known_rules()):
        assert real_report.per_rule[rule] >= 15, rule


def test_examples_are_distinct_and_ids_follow_their_rule(real_examples):
    seen = set()
    for ex in real_examples:
        assert ex.id.startswith(ex.rule.lower() + "-"), ex.id
        key = normalize(ex.code)
        assert key not in seen, ex.id
        seen.add(key)
        prose = re.sub(r"`[^`]*`", "x", ex.explanation)
        assert 2 <= len(re.findall(r"[.?!](?:\s|$)", prose)) <= 5, ex.id
        assert len(ex.code.splitlines()) <= 45, ex.id


def test_programs_exist_and_are_clean(real_report):
    assert real_report.programs >= 8


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_example(rule="THR001"):
    return next(ex for ex in load_corpus(CORPUS).examples if ex.rule == rule)


def test_corrupt_line_names_file_and_line(tmp_path):
    good = json.dumps(_one_example().to_dict())
    f = _write(tmp_path / "thr001_x.jsonl", [good, '{"id": "broken", "rule": ', "", "[1, 2]"])
    result = CliRunner().invoke(main, ["corpus", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{f}:2: invalid JSON" in result.output
    assert f"{f}:4: expected a JSON object" in result.output
    skipped = CliRunner().invoke(main, ["corpus", "validate", "--skip-invalid", str(tmp_path)])
    assert skipped.exit_code == 0, skipped.output
    assert "2 invalid line(s) skipped" in skipped.output
    assert "1 examples (1 verified)" in skipped.output


def test_missing_fields_and_bad_rule_are_reported():
    with pytest.raises(ValueError, match="missing field"):
        parse_line('{"id": "a", "rule": "THR001"}', "f", 1)
    with pytest.raises(ValueError, match="not a rule code"):
        parse_line(json.dumps({"id": "a", "rule": "X1", "code": "x", "explanation": "e", "fixed": "y"}), "f", 1)
    with pytest.raises(ValueError, match="unknown field"):
        parse_line(json.dumps({"id": "a", "rule": "THR001", "code": "x", "explanation": "e", "fixed": "y", "z": ""}), "f", 1)


def test_example_that_does_not_trigger_is_an_error(tmp_path):
    ex = _one_example().to_dict()
    bad = dict(ex, id="thr001-bad", code=ex["fixed"])
    still = dict(ex, id="thr001-still", fixed=ex["code"].replace("\n\n", "\n\n\n", 1))
    f = _write(tmp_path / "c.jsonl", [json.dumps(ex), json.dumps(bad), json.dumps(still)])
    report = validate_corpus(tmp_path)
    messages = [str(p) for p in report.problems]
    assert any(m.startswith(f"{f}:2: [thr001-bad] code does not trigger THR001") for m in messages), messages
    assert any(m.startswith(f"{f}:3: [thr001-still] fixed code still triggers THR001") for m in messages), messages
    assert report.valid == 1
    result = CliRunner().invoke(main, ["corpus", "validate", str(tmp_path)])
    assert result.exit_code == 2


def test_unparsable_snippet_and_duplicate_id(tmp_path):
    ex = _one_example().to_dict()
    broken = dict(ex, id="thr001-syntax", code="def f(:\n    pass\n")
    f = _write(tmp_path / "c.jsonl", [json.dumps(ex), json.dumps(broken), json.dumps(ex)])
    messages = [str(p) for p in validate_corpus(tmp_path).problems]
    assert any(m.startswith(f"{f}:2: [thr001-syntax] code does not parse") for m in messages), messages
    assert any(f"{f}:3: [{ex['id']}] duplicate id (first at {f}:1)" in m for m in messages), messages


def test_program_with_a_finding_is_reported(tmp_path):
    prog = _write(tmp_path / "bad.py", ["import threading", "", "def f():", "    pass", "",
                                        "t = threading.Thread(target=f)", "t.run()"])
    messages = [str(p) for p in validate_corpus(tmp_path).problems]
    assert messages and messages[0].startswith(f"{prog}:7:") and "THR001" in messages[0]


def test_missing_and_empty_corpus(tmp_path):
    with pytest.raises(CorpusError, match="no such directory"):
        validate_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="empty corpus"):
        validate_corpus(tmp_path)
    result = CliRunner().invoke(main, ["corpus", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such directory" in result.output


# -- augmentation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(real_examples):
    rules = known_rules()
    picked = [ex for ex in real_examples if ex.rule in rules]
    return random.Random(7).sample(picked, min(8, len(picked)))


def test_augment_is_deterministic_and_revalidated(sample):
    first = augment(sample, seed=3, per_example=2)
    second = augment(sample, seed=3, per_example=2)
    assert [v.to_dict() for v in first.variants] == [v.to_dict() for v in second.variants]
    assert first.variants, "no variant survived"
    originals = {normalize(ex.code) for ex in sample}
    ids = [v.id for v in first.variants]
    assert len(ids) == len(set(ids))
    for v in first.variants:
        assert normalize(v.code) not in originals
        assert judge(v.code, v.fixed, v.rule).ok, v.id
    other = augment(sample, seed=4, per_example=2)
    assert [v.to_dict() for v in other.variants] != [v.to_dict() for v in first.variants]


def test_invalid_examples_produce_no_variants():
    ex = _one_example()
    broken = Example(ex.id, ex.rule, ex.code, ex.explanation, ex.code.replace("\n\n", "\n\n\n", 1))
    report = augment([broken], seed=1, per_example=3)
    assert report.variants == []
    assert report.dropped_invalid >= 1


def test_rename_is_consistent_between_code_and_fixed():
    code = (
        "import threading\n\ncount = 0\n\n\ndef worker(items):\n    global count\n"
        "    for item in items:\n        count += 1\n\n\n"
        "threads = [threading.Thread(target=worker, args=([1],)) for _ in range(2)]\n"
    )
    fixed = code.replace("        count += 1\n", "        with lock:\n            count += 1\n").replace(
        "count = 0\n", "count = 0\nlock = threading.Lock()\n")
    new_code, new_fixed, names = rename(code, fixed, random.Random(1))
    assert "worker" not in new_code and "count" not in new_code
    assert new_fixed.replace("        with lock:\n            ", "        ").replace("\nlock = threading.Lock()", "") == new_code
    assert "target=" in new_code and "args=" in new_code and "threading.Thread" in new_code
    assert retext("`count += 1` in `worker`; count words", names) == f"`{names['count']} += 1` in `{names['worker']}`; count words"


def test_method_and_import_transforms():
    code = "import threading\n\n\ndef work(n):\n    return n\n\n\ndef go():\n    t = threading.Thread(target=work, args=(1,))\n    t.run()\n"
    fixed = code.replace("t.run()", "t.start()\n    t.join()")
    a, b = method(code, fixed, random.Random(0))
    assert "class " in a and "target=self.work" in a and "def go(self):" in b
    c, d, names = imports(code, fixed, random.Random(0))
    assert names == {"threading.Thread": "Thread"}
    assert c.startswith("from threading import Thread") and "Thread(target=work" in d
    assert judge(a, b, "THR001").ok and judge(c, d, "THR001").ok
    assert method("x = f()\n\n\ndef f():\n    return 1\n", "y = 1\n", random.Random(0)) is None


def test_threads_to_executor_transform():
    code = (
        "import threading\n\n\ndef work(n, out):\n    out.append(n)\n\n\ndef go(ns):\n    out = []\n"
        "    threads = [threading.Thread(target=work, args=(n, out)) for n in ns]\n"
        "    for t in threads:\n        t.start()\n    for t in threads:\n        t.join()\n    return out\n"
    )
    fixed = code.replace("    threads = [", "    out.clear()\n    threads = [")
    a, b = executor(code, fixed, random.Random(0))
    for text in (a, b):
        assert "from concurrent.futures import ThreadPoolExecutor" in text
        assert ".submit(work, n, out) for n in ns]" in text and "future.result()" in text
        assert "t.start()" not in text
    assert executor(code, code.replace("t.join()", "t.join(1)"), random.Random(0)) is None


def test_augment_cli_writes_reproducible_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    lines = next(CORPUS.glob("thr001_*.jsonl")).read_text().splitlines()[:5]
    (src / "thr001.jsonl").write_text("\n".join(lines) + "\n")
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = CliRunner().invoke(main, ["corpus", "augment", str(src), "--seed", "9", "-n", "1", "-o", str(out)])
        assert result.exit_code == 0, result.output
        outs.append(sorted((p.name, p.read_text()) for p in out.iterdir()))
    assert outs[0] == outs[1] and outs[0]
    assert validate_corpus(tmp_path / "a").ok


def test_augment_cli_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["corpus", "augment", str(CORPUS), "-o", str(blocker / "out")])
    assert result.exit_code == 2 and "cannot create output directory" in result.output


# -- mining -----------------------------------------------------------------------------

THREADED = '''import queue
import threading

lock = threading.Lock()
jobs = queue.Queue()
done = []


def worker():
    while True:
        item = jobs.get()
        if item is None:
            break
        with lock:
            done.append(item)
        jobs.task_done()


def run(items):
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for item in items:
        jobs.put(item)
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    t.run()


def plain(x):
    return x + 1
'''


def test_build_mines_threading_functions(tmp_path):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "jobs.py").write_text(THREADED)
    (tree / "pkg" / "broken.py").write_text("import threading\ndef f(:\n")
    (tree / "notes.py").write_text("print('nothing to see')\n")
    one = mine_paths([str(tree)], workers=1)
    many = mine_paths([str(tree)], workers=3)
    assert [m.to_dict() for m in one.functions] == [m.to_dict() for m in many.functions]
    names = [m.function for m in one.functions]
    assert names == ["worker", "run"]
    run = one.functions[1]
    assert run.code.startswith("def run(items):") and any(f["code"] == "THR001" for f in run.findings)
    assert one.files == 3 and one.skipped == 1
    assert any("broken.py:2" in e for e in one.errors)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["corpus", "build", str(tree), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "mined.jsonl").read_text().splitlines()]
    assert [r["function"] for r in rows] == ["worker", "run"]
    missing = CliRunner().invoke(main, ["corpus", "build", str(tmp_path / "nope"), "-o", str(out)])
    assert missing.exit_code == 2 and "no such file or directory" in missing.output


def test_mine_source_skips_files_without_threading():
    assert mine_source("def f():\n    return 1\n", "x.py") == []
