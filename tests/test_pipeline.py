"""The threaded data pipeline: order, errors, shutdown, and the corpus stages."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest

from advisor.finetune.pipeline import (
    SKIP,
    DataConfig,
    Fold,
    Map,
    Pipeline,
    PipelineError,
    Source,
    build_corpus_pipeline,
    split_of,
)

ROOT = Path(__file__).resolve().parent.parent


def _threads() -> set[int]:
    return {t.ident for t in threading.enumerate()}


@pytest.fixture
def no_leak():
    before = _threads()
    yield
    deadline = time.monotonic() + 5
    while _threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = [t.name for t in threading.enumerate() if t.ident in _threads() - before]
    assert not leaked, f"leaked threads: {leaked}"


def _jitter(x):
    time.sleep(random.random() * 0.002)
    return x


def _numbers(n: int, workers: int, fail_at: dict | None = None, batch: int = 3, queue_size: int = 4) -> Pipeline:
    """source 0..n-1 -> square (jittered, drops multiples of 7) -> +1 -> batches of ``batch``."""
    fail_at = fail_at or {}

    def source():
        for i in range(n):
            if fail_at.get("read") == i:
                raise OSError("disk on fire")
            yield f"item {i}", i

    def square(x):
        if fail_at.get("square") == x:
            raise ValueError("bad square")
        _jitter(x)
        return SKIP if x % 7 == 0 else x * x

    def plus(x):
        if fail_at.get("plus") == x:
            raise KeyError("bad plus")
        return _jitter(x + 1)

    def pack(pairs):
        buf = []
        for label, x in pairs:
            if fail_at.get("pack") == x:
                raise RuntimeError("bad pack")
            buf.append(x)
            if len(buf) == batch:
                yield "batch", tuple(buf)
                buf = []
        if buf:
            yield "batch", tuple(buf)

    return Pipeline(
        Source("read", source),
        [Map("square", square, workers), Map("plus", plus, workers), Fold("pack", pack), Map("prefetch", _jitter, 1)],
        queue_size=queue_size,
    )


def _expected(n: int, batch: int = 3) -> list[tuple]:
    vals = [i * i + 1 for i in range(n) if i % 7]
    return [tuple(vals[i : i + batch]) for i in range(0, len(vals), batch)]


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_same_output_whatever_the_thread_count(workers, no_leak):
    with _numbers(200, workers) as pipe:
        out = list(pipe)
    assert out == _expected(200)
    assert pipe.delivered == len(out)
    report = pipe.report()
    assert [s["stage"] for s in report["stages"]] == ["read", "square", "plus", "pack", "prefetch"]
    assert report["stages"][1]["items"] == 200 and report["stages"][1]["produced"] == 200 - len(range(0, 200, 7))
    assert all(0 <= q["mean_fill"] <= 1 for q in report["queues"])


@pytest.mark.parametrize(
    "stage,where,exc",
    [("read", 13, OSError), ("square", 13, ValueError), ("plus", 169, KeyError), ("pack", 170, RuntimeError)],
)
@pytest.mark.parametrize("workers", [1, 3])
def test_error_in_any_stage_names_stage_and_item(stage, where, exc, workers, no_leak):
    pipe = _numbers(200, workers, {stage: where})
    start = time.monotonic()
    with pytest.raises(PipelineError) as info:
        with pipe:
            for _ in pipe:
                pass
    assert time.monotonic() - start < 10
    err = info.value
    assert err.stage == stage
    assert isinstance(err.__cause__, exc)
    item = {"read": "item 12", "square": "item 13", "plus": "item 13", "pack": "item 13"}[stage]
    assert item in str(err) and stage in str(err)
    assert not pipe.alive()


def test_error_reaches_consumer_without_context_manager(no_leak):
    pipe = _numbers(100, 2, {"square": 50})
    with pytest.raises(PipelineError, match="square.*item 50"):
        list(pipe)
    assert not pipe.alive()


def test_early_break_stops_every_thread(no_leak):
    pipe = _numbers(10_000, 3, queue_size=2)
    with pipe:
        for i, _ in enumerate(pipe):
            if i == 2:
                break
    assert not pipe.alive()
    assert pipe.report()["stages"][0]["items"] < 10_000


def test_keyboard_interrupt_in_consumer_stops_cleanly(no_leak):
    pipe = _numbers(10_000, 3, queue_size=2)
    with pytest.raises(KeyboardInterrupt):
        with pipe:
            for i, _ in enumerate(pipe):
                if i == 3:
                    raise KeyboardInterrupt
    assert not pipe.alive()


def test_generator_close_without_context_manager(no_leak):
    pipe = _numbers(10_000, 2, queue_size=2)
    it = iter(pipe)
    next(it)
    it.close()
    assert not pipe.alive()


def test_slow_consumer_blocks_producers_on_bounded_queues(no_leak):
    pipe = _numbers(1000, 2, queue_size=2)
    with pipe:
        it = iter(pipe)
        next(it)
        time.sleep(0.3)
        read = pipe.report()["stages"][0]["items"]
        assert read < 60, read
    assert not pipe.alive()


def test_consumer_wait_is_measured(no_leak):
    def slow_source():
        for i in range(5):
            time.sleep(0.05)
            yield str(i), i

    with Pipeline(Source("read", slow_source), [Map("id", lambda x: x, 2)]) as pipe:
        assert list(pipe) == [0, 1, 2, 3, 4]
    assert pipe.wait_seconds >= 0.2


# -- the corpus pipeline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    from advisor.finetune.model import base_tokenizer

    return base_tokenizer()


def _corpus(tmp_path, lines: list[str]):
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _real_lines(n: int) -> list[str]:
    lines = []
    for path in sorted((ROOT / "corpus").glob("*.jsonl")):
        lines.extend(ln for ln in path.read_text().splitlines() if ln.strip())
    random.Random(0).shuffle(lines)
    return lines[:n]


def _run(cfg, tok):
    with build_corpus_pipeline(cfg, tok) as pipe:
        return list(pipe), pipe


def test_corpus_pipeline_deterministic_across_threads(tmp_path, tokenizer, no_leak):
    path = _corpus(tmp_path, _real_lines(24))
    outs = []
    for workers in (1, 4):
        cfg = DataConfig(files=[str(path)], batch_size=3, workers=workers, seed=5, split=None)
        batches, pipe = _run(cfg, tokenizer)
        outs.append(batches)
    assert outs[0] == outs[1]
    assert sum(len(b["ids"]) for b in outs[0]) + pipe.counters.get("no_finding", 0) == 24
    other, _ = _run(DataConfig(files=[str(path)], batch_size=3, workers=2, seed=6, split=None), tokenizer)
    assert [b["ids"] for b in other] != [b["ids"] for b in outs[0]]


def test_corpus_pipeline_matches_inference_prompt(tmp_path, tokenizer):
    from advisor.corpus.examples import parse_line
    from advisor.finetune.pipeline import example_finding
    from advisor.llm.prompts import advice_messages, answer_text, chat_prompt, corresponding_block, finding_block

    line = _real_lines(1)[0]
    ex = parse_line(line, "x", 1)
    finding = example_finding(ex)
    assert finding is not None
    prompt = chat_prompt(tokenizer, advice_messages(finding, ex.code))
    block = finding_block(finding, ex.code)
    answer = answer_text(ex.explanation, corresponding_block(ex.fixed, block))
    (batch,), _ = _run(DataConfig(files=[str(_corpus(tmp_path, [line]))], batch_size=4, split=None), tokenizer)
    p = tokenizer(prompt, add_special_tokens=False).input_ids
    a = tokenizer(answer, add_special_tokens=False).input_ids
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    assert ids[: len(p)] == p
    assert labels[: len(p)] == [-100] * len(p)
    assert labels[len(p) : len(p) + len(a)] == a
    assert tokenizer.decode(labels[-1:]) == "<|im_end|>"


def test_corrupt_line_names_file_and_line(tmp_path, tokenizer, no_leak):
    lines = _real_lines(6)
    lines.insert(3, '{"id": "broken", "rule": "THR001", ')
    path = _corpus(tmp_path, lines)
    with pytest.raises(PipelineError) as info:
        _run(DataConfig(files=[str(path)], split=None), tokenizer)
    assert info.value.stage == "parse"
    assert f"{path}:4" in str(info.value)
    batches, pipe = _run(DataConfig(files=[str(path)], split=None, skip_invalid=True), tokenizer)
    assert pipe.counters["invalid_lines"] == 1
    assert sum(len(b["ids"]) for b in batches) + pipe.counters.get("no_finding", 0) == 6


def test_split_and_rank_shards_partition_the_data(tmp_path, tokenizer):
    lines = _real_lines(20)
    path = _corpus(tmp_path, lines)
    ids = [json.loads(x)["id"] for x in lines]

    def got(**kw):
        batches, _ = _run(DataConfig(files=[str(path)], batch_size=2, seed=1, holdout=0.3, **kw), tokenizer)
        return [i for b in batches for i in b["ids"]]

    train, held = got(split="train"), got(split="eval")
    assert not set(train) & set(held)
    assert set(held) == {i for i in set(train) | set(held) if split_of(i, 0.3) == "eval"}
    r0, r1 = got(split="train", world=2, rank=0), got(split="train", world=2, rank=1)
    assert not set(r0) & set(r1) and set(r0) | set(r1) == set(train)
    assert set(train) | set(held) <= set(ids)
