"""``advisor finetune``: bad input, determinism, resume after a kill, evaluation, DDP.

Training runs use the tiny random model (real tokenizer) on the shortest corpus examples."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.main import main
from advisor.finetune.pipeline import split_of
from advisor.finetune.train import FinetuneConfig, lr_at

ROOT = Path(__file__).resolve().parent.parent
HOLDOUT = 0.25
FAST = ["--tiny", "--batch-size", "1", "--grad-accum", "2", "--max-len", "900", "--workers", "2", "--quiet"]


@functools.lru_cache(maxsize=None)
def _short_examples(n: int) -> list[dict]:
    from advisor.corpus.examples import parse_line
    from advisor.finetune.pipeline import example_finding

    rows = []
    for path in sorted((ROOT / "corpus").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda d: (len(d["code"]) + len(d["fixed"]), d["id"]))
    picked = []
    for d in rows:
        if example_finding(parse_line(json.dumps(d), "x", 1)) is not None:
            picked.append(d)
        if len(picked) == n:
            break
    return picked


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    rows = _short_examples(12)
    assert any(split_of(d["id"], HOLDOUT) == "eval" for d in rows)
    assert sum(split_of(d["id"], HOLDOUT) == "train" for d in rows) >= 4
    root = tmp_path_factory.mktemp("corpus")
    (root / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows[:6]))
    (root / "b.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows[6:]))
    return root


def _cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["finetune", *map(str, args)])
    return result.exit_code, result.output + (result.stderr if hasattr(result, "stderr") else "")


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


def _no_adapter(out: Path) -> None:
    assert not (out / "adapter_model.safetensors").exists()
    assert not (out / "adapter_config.json").exists()


# -- bad input: clear error, exit 2, nothing written ------------------------------------------------


def test_corrupt_line_fails_with_file_and_line(small_corpus, tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    lines = (small_corpus / "a.jsonl").read_text().splitlines()
    lines.insert(2, '{"id": "x", "rule": "THR001", "code": ')
    (corpus / "a.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    code, text = _cli(corpus, "--output", out, *FAST)
    assert code == 2
    assert f"{corpus / 'a.jsonl'}:3" in text and "--skip-invalid" in text
    _no_adapter(out)


def test_missing_and_empty_corpus(tmp_path):
    code, text = _cli(tmp_path / "nope", "--output", tmp_path / "out", "--tiny")
    assert code == 2 and "no such directory" in text
    (tmp_path / "empty").mkdir()
    code, text = _cli(tmp_path / "empty", "--output", tmp_path / "out", "--tiny")
    assert code == 2 and "empty corpus" in text
    _no_adapter(tmp_path / "out")


def test_unwritable_output(small_corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, text = _cli(small_corpus, "--output", blocker / "out", "--tiny")
    assert code == 2 and "not writable" in text


def test_answer_loss_equals_the_full_logits_loss(small_corpus):
    """Logits from the first answer position on give the loss transformers computes from all
    logits and ``labels``; gradients agree too."""
    import torch

    from advisor.finetune.model import load_base
    from advisor.finetune.pipeline import DataConfig, build_corpus_pipeline, tensor_batch
    from advisor.finetune.train import answer_loss

    base = load_base(tiny=True, seed=1)
    data = DataConfig(files=[str(p) for p in sorted(small_corpus.glob("*.jsonl"))], batch_size=3, max_len=900,
                      seed=0, split="train", holdout=HOLDOUT)
    with build_corpus_pipeline(data, base.tokenizer, tensor_batch()) as pipe:
        batch = next(iter(pipe))
    starts = [int((row != -100).nonzero()[0]) for row in batch["labels"]]
    assert len(set(starts)) > 1 and min(starts) > 50
    ours = answer_loss(base.model, batch)
    ours.backward()
    grad = base.model.model.layers[0].mlp.up_proj.weight.grad.clone()
    base.model.zero_grad()
    full = base.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    full.backward()
    assert torch.allclose(ours, full, atol=1e-5)
    assert torch.allclose(grad, base.model.model.layers[0].mlp.up_proj.weight.grad, atol=1e-6)


def test_augmented_examples_follow_their_original_into_its_split():
    ids = [f"thr{r:03d}-{i:02d}" for r in range(1, 25) for i in range(1, 16)]
    splits = {i: split_of(i, HOLDOUT) for i in ids}
    assert 0.15 < sum(v == "eval" for v in splits.values()) / len(ids) < 0.35
    for i, split in splits.items():
        assert split_of(f"{i}~0.1", HOLDOUT) == split_of(f"{i}~7.2", HOLDOUT) == split


def test_rewrites_of_held_out_examples_are_neither_trained_on_nor_scored(small_corpus, tmp_path):
    from advisor.finetune.model import base_tokenizer
    from advisor.finetune.pipeline import DataConfig, build_corpus_pipeline

    rows = [json.loads(line) for p in sorted(small_corpus.glob("*.jsonl")) for line in p.read_text().splitlines()]
    rewrites = [{**d, "id": d["id"] + "~0.1"} for d in rows]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows + rewrites))
    seen = {}
    for split in ("train", "eval"):
        data = DataConfig(files=[str(corpus / "a.jsonl")], batch_size=2, max_len=900, seed=0, split=split,
                          holdout=HOLDOUT)
        with build_corpus_pipeline(data, base_tokenizer()) as pipe:
            seen[split] = {i for batch in pipe for i in batch["ids"]}
    held = {d["id"] for d in rows if split_of(d["id"], HOLDOUT) == "eval"}
    assert seen["eval"] == held
    assert not {i.split("~")[0] for i in seen["train"]} & held
    assert any("~" in i for i in seen["train"])


def test_learning_rate_schedule():
    cfg = FinetuneConfig(lr=1e-3, warmup_steps=4, min_lr_ratio=0.1)
    lrs = [lr_at(s, 20, cfg) for s in range(20)]
    assert lrs[:4] == sorted(lrs[:4]) and lrs[3] == pytest.approx(1e-3)
    assert lrs[4:] == sorted(lrs[4:], reverse=True)
    assert lrs[-1] >= 1e-4 and lr_at(20, 20, cfg) == pytest.approx(1e-4)


# -- training ----------------------------------------------------------------------------------------


def _train(corpus, out, *extra, seed=0, steps=2):
    code, text = _cli(corpus, "--output", out, "--seed", seed, "--max-steps", steps, "--holdout", HOLDOUT,
                      "--no-eval-loss", "--no-fix-rate", *FAST, *extra)
    assert code == 0, text
    return json.loads((out / "adapter_meta.json").read_text())


def test_same_seed_same_adapter(small_corpus, tmp_path):
    a = _train(small_corpus, tmp_path / "a", seed=3)
    b = _train(small_corpus, tmp_path / "b", seed=3)
    c = _train(small_corpus, tmp_path / "c", seed=4)
    ta, tb, tc = _adapter(tmp_path / "a"), _adapter(tmp_path / "b"), _adapter(tmp_path / "c")
    assert ta.keys() == tb.keys() and all((ta[k] == tb[k]).all() for k in ta)
    assert any(not (ta[k] == tc[k]).all() for k in ta)
    assert all(k.endswith(("lora_A.weight", "lora_B.weight")) for k in ta)
    assert str(next(iter(ta.values())).dtype) == "torch.float16"
    assert any(bool(ta[k].abs().sum()) for k in ta if "lora_B" in k)
    assert a["metrics"]["losses"] == b["metrics"]["losses"]
    assert a["metrics"]["steps"] == 2 and a["corpus"]["hash"] == b["corpus"]["hash"]
    assert a["base_model"]["hash"] and a["config"]["seed"] == 3
    assert not (tmp_path / "a" / "checkpoints").exists()


def test_adapter_loads_through_the_advice_loader(small_corpus, tmp_path):
    from advisor.llm.loader import resolve_adapter

    _train(small_corpus, tmp_path / "a", steps=1)
    spec = resolve_adapter(str(tmp_path / "a"))
    assert spec is not None and spec.hash


def test_skip_invalid_counts_corrupt_lines(small_corpus, tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (corpus / name).write_text((small_corpus / name).read_text())
    with open(corpus / "a.jsonl", "a") as fh:
        fh.write("not json\n")
    meta = _train(corpus, tmp_path / "out", "--skip-invalid", steps=1)
    assert meta["metrics"]["skipped_lines"] == 1


def test_eval_loss_and_fix_rate_before_and_after(small_corpus, tmp_path):
    out = tmp_path / "out"
    code, text = _cli(small_corpus, "--output", out, "--max-steps", 2, "--holdout", HOLDOUT, "--lr", "5e-3",
                      "--gen-tokens", 8, "--json", *FAST)
    assert code == 0, text
    metrics = json.loads((out / "adapter_meta.json").read_text())["metrics"]
    held = [d for d in _short_examples(12) if split_of(d["id"], HOLDOUT) == "eval"]
    for when in ("before", "after"):
        assert metrics[when]["eval"]["tokens"] > 0
        assert metrics[when]["fix"]["examples"] == len(held)
        assert sum(metrics[when]["fix"]["reasons"].values()) == len(held)
    assert metrics["after"]["eval"]["loss"] < metrics["before"]["eval"]["loss"]
    assert 0 <= metrics["data_wait_share"] < 1


def test_scoring_accepts_the_corpus_fix_and_rejects_the_bug():
    from advisor.corpus.examples import parse_line
    from advisor.finetune.model import base_tokenizer
    from advisor.finetune.train import fix_items, score_answers
    from advisor.llm.prompts import answer_text, corresponding_block

    examples = [parse_line(json.dumps(d), "x", 1) for d in _short_examples(6)]
    items = fix_items(examples, base_tokenizer())
    assert len(items) == 6
    good = [answer_text(ex.explanation, corresponding_block(ex.fixed, block)) for ex, _, block, _ in items]
    bad = [answer_text(ex.explanation, block.text) for ex, _, block, _ in items]
    scored = score_answers(items, good)
    assert scored["verified"] >= 3
    # the others fix the bug with a module-level lock or import outside the block: spliced
    # alone, the block would read a name nothing defines
    assert all(r == "ok" or r.startswith("uses undefined name") for r in scored["reasons"]), scored["reasons"]
    assert score_answers(items, bad)["verified"] == 0
    assert score_answers(items, ["no code here"] * 6)["reasons"] == {"no code in the answer": 6}


# -- resume after a kill -------------------------------------------------------------------------------


def test_resume_after_kill_matches_uninterrupted_run(small_corpus, tmp_path):
    args = ["--max-steps", "6", "--checkpoint-every", "2", "--holdout", str(HOLDOUT), "--no-eval-loss", "--no-fix-rate",
            "--seed", "1", *FAST]
    full = tmp_path / "full"
    code, text = _cli(small_corpus, "--output", full, *args)
    assert code == 0, text

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "advisor", "finetune", str(small_corpus), "--output", str(out), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    try:
        while not (out / "checkpoints" / "step-000004").is_dir():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    _no_adapter(out)
    done = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert done and done[-1] >= "step-000004"

    code, text = _cli(small_corpus, "--output", out, "--resume", *args)
    assert code == 0, text
    assert "resuming from step-00000" in text
    ref, got = _adapter(full), _adapter(out)
    assert all((ref[k] == got[k]).all() for k in ref)


def test_existing_checkpoints_need_resume(small_corpus, tmp_path):
    out = tmp_path / "out"
    _train(small_corpus, out, "--keep-checkpoints", "--checkpoint-every", "1", steps=2)
    code, text = _cli(small_corpus, "--output", out, "--tiny")
    assert code == 2 and "--resume" in text


# -- DDP ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(small_corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "advisor", "finetune", str(small_corpus), "--output", str(out), "--max-steps", "2",
           "--holdout", str(HOLDOUT), "--no-fix-rate", "--no-eval-loss", "--threads", "1", *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish:\n{output}")
    assert proc.returncode == 0, output
    meta = json.loads((out / "adapter_meta.json").read_text())
    assert meta["metrics"]["world_size"] == 2 and meta["metrics"]["steps"] == 2
    tensors = _adapter(out)
    assert any(bool(t.abs().sum()) for k, t in tensors.items() if "lora_B" in k)
