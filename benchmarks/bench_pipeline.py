"""Data pipeline benchmark: items/s with 1 vs N threads per stage, and the share of
training time the trainer waits for data (tiny model, real tokenizer).

    .venv/bin/python benchmarks/bench_pipeline.py [--workers 1,2,4] [--repeats 3] [--out docs/bench/pipeline.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def throughput(files, tokenizer, workers: int, repeats: int) -> dict:
    from advisor.finetune.pipeline import DataConfig, build_corpus_pipeline, tensor_batch

    runs, reports = [], []
    for r in range(repeats):
        cfg = DataConfig(files=files, batch_size=4, seed=r, split=None, workers=workers)
        start = time.perf_counter()
        with build_corpus_pipeline(cfg, tokenizer, tensor_batch()) as pipe:
            n = sum(len(b["ids"]) for b in pipe)
        runs.append(n / (time.perf_counter() - start))
        reports.append(pipe.report())
    stages = {s["stage"]: s for s in reports[-1]["stages"]}
    return {"workers": workers, "items_per_s": statistics.median(runs), "runs": runs, "examples": n,
            "stages": stages, "queues": reports[-1]["queues"]}


def data_wait(corpus: str, steps: int, workers: int) -> dict:
    from advisor.finetune.train import FinetuneConfig, run

    with tempfile.TemporaryDirectory() as out:
        cfg = FinetuneConfig(corpus=corpus, output=out, tiny=True, max_steps=steps, batch_size=4, grad_accum=1,
                             eval_loss=False, fix_rate=False, workers=workers, checkpoint_every=0)
        m = run(cfg, progress=False)
    return {"steps": m["steps"], "train_s": m["train_seconds"], "wait_s": m["data_wait_seconds"],
            "share": m["data_wait_share"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(ROOT / "corpus"))
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench" / "pipeline.md"))
    args = ap.parse_args()

    from advisor.finetune.model import base_tokenizer
    from advisor.finetune.pipeline import DataConfig, build_corpus_pipeline

    tok = base_tokenizer()
    files = sorted(str(p) for p in Path(args.corpus).glob("*.jsonl"))
    with build_corpus_pipeline(DataConfig(files=files, split=None, workers=1), tok) as pipe:
        for _ in pipe:
            pass
    before = load()
    counts = [int(w) for w in args.workers.split(",")]
    rows = [throughput(files, tok, w, args.repeats) for w in counts]
    waits = {w: data_wait(args.corpus, args.steps, w) for w in (1, max(counts))}
    after = load()

    base = rows[0]["items_per_s"]
    lines = [
        "# Data pipeline benchmark",
        "",
        f"`benchmarks/bench_pipeline.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"corpus `{Path(args.corpus).name}/` ({rows[0]['examples']} examples rendered per pass), real tokenizer.",
        f"Machine load: before `{before}`; after `{after}` (2 cores shared with other work: absolute numbers are noisy, compare within a run).",
        "",
        "## Throughput: threads per stage (read -> parse -> render -> tokenize -> pack -> prefetch)",
        "",
        f"Median of {args.repeats} full passes after a warm-up pass.",
        "",
        "| threads/stage | examples/s (median) | runs | vs 1 | render items/busy-s | tokenize items/busy-s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        st = r["stages"]
        lines.append(f"| {r['workers']} | {r['items_per_s']:.1f} | {', '.join(f'{x:.1f}' for x in r['runs'])} | "
                     f"{r['items_per_s'] / base:.2f}x | {st['render']['items_per_busy_s']} | {st['tokenize']['items_per_busy_s']} |")
    lines += ["", "Queue occupancy (mean fill of each bounded queue, last pass with the most threads):", ""]
    lines += [f"- `{q['queue']}`: mean {q['mean']} of {q['maxsize']} (peak {q['peak']})" for q in rows[-1]["queues"]]
    lines += [
        "",
        "## Trainer data-wait share (tiny random model, batch 4, real prompts)",
        "",
        "| threads/stage | steps | training s | waiting for data s | share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for w, d in waits.items():
        lines.append(f"| {w} | {d['steps']} | {d['train_s']} | {d['wait_s']} | {d['share'] * 100:.2f}% |")
    lines += [
        "",
        "The tiny model steps far faster than the real one, so its wait share is an upper bound for real training.",
        "",
        "```json",
        json.dumps({"throughput": [{k: v for k, v in r.items() if k != "queues"} for r in rows], "data_wait": waits}, indent=1)[:6000],
        "```",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines[:30]))


if __name__ == "__main__":
    main()
