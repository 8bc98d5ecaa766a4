"""Advice generation speed: naive (fp32, one finding at a time, transformers' ``generate``) vs
optimized (fp32 reads the prompts, or bfloat16 on CPUs with AMX, int8 decodes; continuous batching; each rule's prompt prefix
computed once; rows stopped when their answer is complete), side by side in one run, plus
the unchanged re-run through the CLI, and the int8-throughout variant (``quantize="int8-all"``:
smoothed activations, prompts read in runs of 32 tokens; answers a little further from fp32's),
and, where the default reads prompts in bfloat16, the default with fp32 prompts. Also compares
the variants' answers with fp32 answers.

    .venv/bin/python benchmarks/bench_advice.py [--sizes 1,5,20] [--max-new-tokens 160] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = "import threading\nimport time\n\nlock = threading.Lock()\ntotals = {}\n\n\ndef work(x):\n    return x * 2\n"
PATTERNS = [
    # THR001: rule fix, the model explains
    '''
def start_{i}(items):
    threads = [threading.Thread(target=work, args=(x,)) for x in items]
    for t in threads:
        t.run()
    return threads
''',
    # THR006: no rule fix, the model proposes code
    '''
hits_{i} = 0


def count_{i}():
    global hits_{i}
    hits_{i} += 1


def run_counters_{i}():
    workers = [threading.Thread(target=count_{i}) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
''',
    # THR016: no rule fix
    '''
def record_{i}(key, value):
    with lock:
        totals[key] = value
        time.sleep(0.1)
''',
    # THR004: rule fix
    '''
def bump_{i}(key):
    lock.acquire()
    totals[key] = totals.get(key, 0) + 1
    lock.release()
''',
]


def make_file(n: int, first: int = 0) -> str:
    """A module whose ``n`` functions carry one finding each (names numbered from ``first``)."""
    return HEADER + "".join(PATTERNS[i % len(PATTERNS)].format(i=first + i) for i in range(n))


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    import transformers

    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def bandwidth_gbs(size_mb: int = 256, repeat: int = 7) -> float:
    """Memory bandwidth from large tensor copies (bytes read + written per second)."""
    import torch

    a = torch.ones(size_mb * 2**20 // 4)
    b = torch.empty_like(a)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - t)
    return 2 * a.numel() * 4 / statistics.median(times) / 1e9


def weight_bytes(model) -> int:
    """Bytes of weights read per decoding step (embedding rows excluded, int8 packed weights
    counted at one byte per parameter, projections that have a stacked copy counted once)."""
    import torch

    total = 0
    stacked = {name.rsplit(".", 1)[0] for name, _ in model.named_modules() if name.endswith(("qkv_proj", "gate_up_proj"))}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding):
            continue
        parent, _, leaf = name.rpartition(".")
        if parent in stacked and leaf in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"):
            continue  # the own decoder reads the stacked copy instead
        if hasattr(module, "_packed_params") and callable(getattr(module, "weight", None)):
            total += module.weight().numel()
        elif isinstance(module, torch.nn.Linear):
            total += module.weight.numel() * module.weight.element_size()
        elif hasattr(module, "weight") and isinstance(getattr(module, "weight"), torch.Tensor) and not list(module.children()):
            total += module.weight.numel() * module.weight.element_size()
    return total


@contextlib.contextmanager
def pinned_precision(value: str):
    """``ADVISOR_PROMPT_PRECISION`` set to ``value`` inside the block (loading and cache keys)."""
    old = os.environ.get("ADVISOR_PROMPT_PRECISION")
    os.environ["ADVISOR_PROMPT_PRECISION"] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ["ADVISOR_PROMPT_PRECISION"]
        else:
            os.environ["ADVISOR_PROMPT_PRECISION"] = old


def run_advice(findings, source, path, lm, options):
    from advisor.llm.advice import advise

    for f in findings:
        f.advice = None
    t = time.perf_counter()
    run = advise(findings, {path: source}, options, loaded=lm)
    return run, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,5,20")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both paths (0: torch default)")
    ap.add_argument("--out", help="also write the figures (markdown) to this file")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    cache = tempfile.mkdtemp(prefix="advisor-bench-")
    os.environ["ADVISOR_CACHE"] = cache
    os.environ["ADVISOR_MAX_NEW_TOKENS"] = str(args.max_new_tokens)
    real_cache = Path(os.path.expanduser("~/.cache/advisor/models"))
    if real_cache.is_dir():  # reuse the converted weights instead of converting again
        (Path(cache) / "models").symlink_to(real_cache)

    from advisor.engine import check_source
    from advisor.llm.advice import AdviceOptions
    from advisor.llm.loader import load_model, prompt_precision
    from advisor.llm.prompts import parse_answer

    load_before = load()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    facts = machine()
    bw = bandwidth_gbs()
    t = time.perf_counter()
    fp32 = load_model(quantize=None)
    fp32_load = time.perf_counter() - t
    t = time.perf_counter()
    int8 = load_model(quantize="int8")
    int8_load = time.perf_counter() - t
    int8_all = load_model(quantize="int8-all")
    precision = prompt_precision()
    with pinned_precision("fp32"):
        int8_fp32 = load_model(quantize="int8")
    bytes32, bytes8 = weight_bytes(fp32.model), weight_bytes(int8.model)

    threads = args.threads or None
    naive_opts = AdviceOptions(use_cache=False, batch_size=1, stop_early=False, quantize=None, method="reference",
                               max_new_tokens=args.max_new_tokens, threads=threads)
    fast_opts = AdviceOptions(use_cache=True, batch_size=args.batch_size, stop_early=True, quantize="int8",
                              max_new_tokens=args.max_new_tokens, threads=threads)

    all_opts = AdviceOptions(use_cache=True, batch_size=args.batch_size, stop_early=True, quantize="int8-all",
                             max_new_tokens=args.max_new_tokens, threads=threads)
    rows = []
    quality = {"pairs": 0, "same_code": 0, "same_expl": 0, "verified32": 0, "verified8": 0, "model_rows": 0,
               "same_code_all": 0, "verified_all": 0}
    workdir = Path(tempfile.mkdtemp(prefix="advisor-bench-src-"))
    for n in sizes:
        source = make_file(n)
        path = str(workdir / f"f{n}.py")
        Path(path).write_text(source)
        findings = check_source(source, path).findings
        # naive: one finding at a time, fp32, no early stop
        tokens, prompt, gen_s, wall = 0, 0, 0.0, 0.0
        naive_answers = []
        for f in findings:
            run, w = run_advice([f], source, path, fp32, naive_opts)
            tokens += run.generation.new_tokens
            prompt += run.generation.prompt_tokens
            gen_s += run.generation.seconds
            wall += w
            naive_answers.append(dict(f.advice))
        naive = {"tokens": tokens, "prompt": prompt, "gen_s": gen_s, "wall": wall}
        # optimized, with no shared prefix stored yet ...
        shutil.rmtree(Path(cache) / "prefixes", ignore_errors=True)
        run, w = run_advice(findings, source, path, int8, fast_opts)
        fast = {"tokens": run.generation.new_tokens, "prompt": run.generation.prompt_tokens,
                "gen_s": run.generation.seconds, "wall": w}
        # ... and on another file with the same rules, the prefixes stored by that run
        other_source = make_file(n, first=1000)
        other_path = str(workdir / f"g{n}.py")
        Path(other_path).write_text(other_source)
        run2, w2 = run_advice(check_source(other_source, other_path).findings, other_source, other_path, int8, fast_opts)
        fast["warm_wall"], fast["warm_prompt"] = w2, run2.generation.prompt_tokens
        fast_answers = [dict(f.advice) for f in findings]
        shutil.rmtree(Path(cache) / "prefixes", ignore_errors=True)
        run3, w3 = run_advice(findings, source, path, int8_all, all_opts)
        fast["all_wall"], fast["all_tokens"] = w3, run3.generation.new_tokens
        if precision != "fp32":
            all_answers = [dict(f.advice) for f in findings]
            shutil.rmtree(Path(cache) / "prefixes", ignore_errors=True)
            with pinned_precision("fp32"):
                run4, w4 = run_advice(findings, source, path, int8_fp32, fast_opts)
            fast["fp32_wall"], fast["fp32_tokens"] = w4, run4.generation.new_tokens
            for f, a in zip(findings, all_answers):
                f.advice = a
        for a32, a8, f in zip(naive_answers, fast_answers, findings):
            if f.advice["source"] == "model":
                quality["same_code_all"] += (a32["suggested_code"] or "") == (f.advice["suggested_code"] or "")
                quality["verified_all"] += bool(f.advice["verified"])
            quality["pairs"] += 1
            quality["same_expl"] += a32["explanation"] == a8["explanation"]
            if a8["source"] == "model":
                quality["model_rows"] += 1
                quality["same_code"] += (a32["suggested_code"] or "") == (a8["suggested_code"] or "")
                quality["verified32"] += bool(a32["verified"])
                quality["verified8"] += bool(a8["verified"])
        # unchanged re-run: in-process (cache only) and the whole CLI in a fresh process
        _, cached_s = run_advice(check_source(source, path).findings, source, path, None, AdviceOptions(max_new_tokens=args.max_new_tokens))
        cli = []
        for _ in range(3):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "advisor.cli.main", "check", "--format", "json", path],
                                  capture_output=True, text=True, env=dict(os.environ))
            cli.append(time.perf_counter() - t)
            assert '"advice": {' in proc.stdout, proc.stderr[-2000:]
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "advisor.cli.main", "check", "--format", "json", path],
                              capture_output=True, text=True, env=dict(os.environ))
        heavy = [ln for ln in proc.stderr.splitlines() if ln.rstrip().endswith(("| torch", "| transformers"))]
        assert not heavy, "the unchanged re-run imported torch/transformers"
        rows.append((n, len(findings), naive, fast, cached_s, statistics.median(cli)))
        print(f"{n:>3} findings: naive {naive['tokens']} tok in {naive['gen_s']:.1f}s, optimized {fast['tokens']} tok in "
              f"{fast['gen_s']:.1f}s, re-run {statistics.median(cli):.2f}s", file=sys.stderr)

    load_after = load()
    out = [
        "| findings | prompt tokens computed (naive / optimized / stored prefixes) | naive tok/s | optimized tok/s "
        "| naive wall | optimized wall | ratio | with stored prefixes | ratio | int8 throughout | ratio "
        "| fp32 prompts | ratio | unchanged re-run (CLI) | cached advise() |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, nf, naive, fast, cached_s, cli_s in rows:
        ntps = naive["tokens"] / naive["gen_s"]
        ftps = fast["tokens"] / fast["gen_s"]
        out.append(f"| {nf} | {naive['prompt']} / {fast['prompt']} / {fast['warm_prompt']} | {ntps:.1f} ({naive['tokens']} tok) "
                   f"| {ftps:.1f} ({fast['tokens']} tok) | {naive['wall']:.1f} s | {fast['wall']:.1f} s "
                   f"| {naive['wall'] / fast['wall']:.1f}x | {fast['warm_wall']:.1f} s | {naive['wall'] / fast['warm_wall']:.1f}x "
                   f"| {fast['all_wall']:.1f} s ({fast['all_tokens']} tok) | {naive['wall'] / fast['all_wall']:.1f}x "
                   + (f"| {fast['fp32_wall']:.1f} s ({fast['fp32_tokens']} tok) | {naive['wall'] / fast['fp32_wall']:.1f}x "
                      if "fp32_wall" in fast else "| (the default) | ")
                   + f"| {cli_s:.2f} s | {cached_s * 1000:.0f} ms |")
    q = quality
    text = "\n".join([
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['memory']}, torch {facts['torch']} "
        f"({facts['torch_threads']} threads), transformers {facts['transformers']}, Python {facts['python']}.",
        f"Load average before/after: {load_before} / {load_after} (the CPUs are shared).",
        f"Model load: fp32 {fp32_load:.1f} s, int8 {int8_load:.1f} s (from the converted safetensors cache). "
        f"Adapter: {fp32.info.extra.get('adapter_name') or 'none'}. Max new tokens per answer: {args.max_new_tokens}; "
        f"optimized batch size {args.batch_size}. The optimized path reads prompts in {precision} on this CPU "
        "(`ADVISOR_PROMPT_PRECISION`); the fp32-prompts column pins fp32.",
        "",
        *out,
        "",
        f"Memory bandwidth (tensor copy): {bw:.1f} GB/s. Weights read per decoding step: fp32 {bytes32 / 1e6:.0f} MB, "
        f"int8 {bytes8 / 1e6:.0f} MB. Bandwidth ceiling per sequence: fp32 {bw * 1e9 / bytes32:.0f} tok/s, "
        f"int8 {bw * 1e9 / bytes8:.0f} tok/s (a batch of B shares one read of the weights: B times that, "
        "until compute-bound).",
        "",
        f"int8 vs fp32 on the same {q['pairs']} findings: identical explanation {q['same_expl']}/{q['pairs']}; "
        f"model-proposed code identical {q['same_code']}/{q['model_rows']}; verified fp32 {q['verified32']}/{q['model_rows']}, "
        f"int8 {q['verified8']}/{q['model_rows']} (fp32 one at a time without early stop; int8 batched with early stop). "
        f"int8 throughout: model-proposed code identical {q['same_code_all']}/{q['model_rows']}, "
        f"verified {q['verified_all']}/{q['model_rows']}.",
    ])
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
