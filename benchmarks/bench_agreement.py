"""How close each fast generation path stays to fp32: teacher-forced top-1 agreement, and the
time each path takes to read the prompts.

fp32 answers each prompt greedily (advisor's own decoder, one row, until end of turn or the
token cap). Each variant then reads the same prompt with its prompt model and predicts every
answer token from the true prefix with its decoding model; the figure is the share of answer
tokens whose top-1 prediction equals fp32's token. Prompts are advisor's advice prompts for
the findings of ``bench_advice.py``'s 20-finding module and of the blind probe programs
(``benchmarks/probes``), so no prompt is one the calibration or training data holds.

    .venv/bin/python benchmarks/bench_agreement.py [--limit 40] [--max-new-tokens 160]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def prompts(tokenizer, limit: int, cap: int) -> list[tuple[str, list[int], int]]:
    """``(label, prompt ids, answer cap)``: the bench module's findings, then probe findings."""
    from bench_advice import make_file

    from advisor.engine import check_source
    from advisor.llm.advice import _Item, max_new_tokens
    from advisor.llm.prompts import advice_messages, chat_prompt, finding_block, prompt_identity

    sources = [("bench/f20.py", make_file(20))]
    for path in sorted((ROOT / "benchmarks" / "probes").rglob("*.py")):
        sources.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    out = []
    for path, source in sources:
        for f in check_source(source, path).findings:
            block = finding_block(f, source)
            if block is None:
                continue
            item = _Item(f, source, block, prompt_identity(f, block), f.fix is not None, "")
            text = chat_prompt(tokenizer, advice_messages(f, source, block))
            ids = tokenizer(text, add_special_tokens=False).input_ids
            out.append((f"{path}:{f.span.line} {f.code}", ids, max_new_tokens(tokenizer, item, cap)))
            if len(out) >= limit:
                return out
    return out


def greedy(dec, ids: list[int], cap: int, eos: set[int]) -> list[int]:
    import torch

    cache = dec.empty(1, len(ids) + cap + 1)
    cache.bias.zero_()
    logits = dec.forward(torch.tensor([ids]), torch.arange(len(ids))[None], cache)
    out: list[int] = []
    while len(out) < cap:
        token = int(logits[0].argmax())
        out.append(token)
        if token in eos:
            break
        logits = dec.forward(torch.tensor([[token]]), torch.tensor([[cache.length]]), cache)
    return out


def agreement(reader, dec, ids: list[int], answer: list[int]) -> tuple[int, float]:
    """Answer tokens predicted as fp32 did, and the seconds the prompt took to read."""
    import torch

    cache = reader.empty(1, len(ids) + len(answer) + 1)
    cache.bias.zero_()
    t = time.perf_counter()
    logits = reader.forward(torch.tensor([ids]), torch.arange(len(ids))[None], cache)
    read = time.perf_counter() - t
    same = 0
    for i, token in enumerate(answer):
        same += int(logits[0].argmax()) == token
        if i + 1 < len(answer):
            logits = dec.forward(torch.tensor([[token]]), torch.tensor([[cache.length]]), cache)
    return same, read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40, help="prompts (the bench module's 20 first)")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    args = ap.parse_args()

    import torch

    from advisor.llm import decoder
    from advisor.llm.generate import _eos_ids
    from advisor.llm.loader import load_model

    os.environ["ADVISOR_PROMPT_PRECISION"] = "fp32"
    fp32 = load_model(quantize=None)
    int8 = load_model(quantize="int8")
    everything = load_model(quantize="int8-all")
    bf16 = load_model(quantize=None)
    decoder.fuse_projections(bf16.model)
    decoder.bf16_projections(bf16.model)
    ref, q8, bf, all8 = (decoder.Decoder(m.model) for m in (fp32, int8, bf16, everything))
    variants = {
        "fp32 prompt + int8 decoding": (ref, q8),
        "bf16 prompt + int8 decoding": (bf, q8),
        "bf16 throughout": (bf, bf),
        "int8 throughout (smoothed, int8-all)": (all8, all8),
        "fp32 throughout (control)": (ref, ref),
    }
    eos = set(_eos_ids(fp32))
    items = prompts(fp32.tokenizer, args.limit, args.max_new_tokens)
    print(f"{len(items)} prompts, {sum(len(i) for _, i, _ in items)} prompt tokens; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, AMX {torch.cpu._is_amx_tile_supported()}", file=sys.stderr)
    answers = [greedy(ref, ids, cap, eos) for _, ids, cap in items]
    total = sum(len(a) for a in answers)
    rows = []
    for name, (reader, dec) in variants.items():
        same, reads = 0, []
        for (_, ids, _), answer in zip(items, answers):
            s, r = agreement(reader, dec, ids, answer)
            same += s
            reads.append(len(ids) / r)
        rows.append((name, same, statistics.median(reads)))
        print(f"{name}: {same}/{total} = {100 * same / total:.1f} %", file=sys.stderr)
    bench = sum(1 for label, _, _ in items if label.startswith("bench/"))
    print(f"{len(items)} prompts ({bench} from the bench module, {len(items) - bench} from probe programs), "
          f"{total} fp32 answer tokens.\n")
    print("| variant | top-1 agreement with fp32 | prompt read, tokens/s (median, one row) |")
    print("|---|---|---|")
    for name, same, speed in rows:
        print(f"| {name} | {100 * same / total:.1f} % ({same}/{total}) | {speed:.0f} |")


if __name__ == "__main__":
    main()
