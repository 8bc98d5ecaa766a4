"""Batched greedy generation: left padding, per-row stop at the end of the answer's code block."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

_CODE_CLOSED = re.compile(r"(`{3}|~{3})[^\n]*\n.*?\n[ \t]*\1", re.S)
_FENCE_OPENED = re.compile(r"(`{3}|~{3})")
_PARAGRAPH_DONE = re.compile(r"[.!?`)][ \t]*\n[ \t]*\n")


@dataclass(frozen=True)
class Request:
    """One prompt. ``explain_only``: stop at the first code fence (the fix is known)."""

    prompt: str
    max_new_tokens: int = 320
    explain_only: bool = False


@dataclass
class GenerationStats:
    sequences: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0


def answer_complete(text: str, explain_only: bool = False) -> bool:
    """True once ``text`` holds a closed code block (explain-only: an opened code block or a
    paragraph ending in a full sentence), or once it is looping (a line repeated three times)."""
    if explain_only:
        if _FENCE_OPENED.search(text) or _PARAGRAPH_DONE.search(text):
            return True
    elif _CODE_CLOSED.search(text):
        return True
    return _looping(text)


def _looping(text: str) -> bool:
    lines = text.split("\n")
    if len(lines) < 4:
        return False
    last = lines[-2].strip()
    return len(last) > 3 and sum(1 for ln in lines[:-1] if ln.strip() == last) >= 3


def _stopper(tokenizer, requests: Sequence[Request], prompt_len: int):
    import torch
    from transformers import StoppingCriteria

    class AnswerDone(StoppingCriteria):
        def __init__(self) -> None:
            self.texts = [""] * len(requests)
            self.seen = prompt_len

        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, self.seen :].tolist()
            self.seen = input_ids.shape[1]
            done = []
            for i, toks in enumerate(new):
                self.texts[i] += tokenizer.decode(toks, skip_special_tokens=True)
                done.append(answer_complete(self.texts[i], requests[i].explain_only))
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return AnswerDone()


def generate(
    lm,
    requests: Sequence[Request],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    stop_early: bool = True,
) -> tuple[list[str], GenerationStats]:
    """Greedy answers for ``requests`` (same order), generated ``batch_size`` at a time,
    prompts of similar length batched together. ``progress(n)`` is called after each batch
    with the number of sequences finished in it."""
    import torch

    tok = lm.tokenizer
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    stats = GenerationStats(sequences=len(requests))
    outputs: list[str] = [""] * len(requests)
    lengths = [len(tok(r.prompt, add_special_tokens=False).input_ids) for r in requests]
    order = sorted(range(len(requests)), key=lambda i: (lengths[i], requests[i].max_new_tokens))
    start = time.perf_counter()
    eos = _eos_ids(lm)
    for b in range(0, len(order), max(1, batch_size)):
        idx = order[b : b + batch_size]
        batch = [requests[i] for i in idx]
        enc = tok([r.prompt for r in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        width = enc.input_ids.shape[1]
        kwargs = dict(
            max_new_tokens=max(r.max_new_tokens for r in batch),
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=eos,
        )
        if stop_early:
            kwargs["stopping_criteria"] = [_stopper(tok, batch, width)]
        with torch.inference_mode():
            out = lm.model.generate(input_ids=enc.input_ids, attention_mask=enc.attention_mask, **kwargs)
        stats.batches += 1
        stats.prompt_tokens += int(enc.attention_mask.sum())
        for row, i in enumerate(idx):
            new = out[row, width:].tolist()
            new = new[: requests[i].max_new_tokens]
            cut = _first_stop(new, eos, tok.pad_token_id)
            stats.new_tokens += cut + (1 if cut < len(new) else 0)
            outputs[i] = tok.decode(new[:cut], skip_special_tokens=True)
        if progress:
            progress(len(idx))
    stats.seconds = time.perf_counter() - start
    return outputs, stats


def _eos_ids(lm) -> list[int]:
    ids = set()
    cfg = getattr(lm.model, "generation_config", None)
    value = getattr(cfg, "eos_token_id", None) if cfg is not None else None
    if isinstance(value, int):
        ids.add(value)
    elif value:
        ids.update(value)
    if lm.tokenizer.eos_token_id is not None:
        ids.add(lm.tokenizer.eos_token_id)
    return sorted(ids)


def _first_stop(tokens: list[int], eos: list[int], pad: int | None) -> int:
    stops = set(eos) | ({pad} if pad is not None else set())
    for n, t in enumerate(tokens):
        if t in stops:
            return n
    return len(tokens)
