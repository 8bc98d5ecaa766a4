"""Batched greedy generation.

``generate`` is the fast path: the key/value cache of a prompt's shared prefix
(``Request.prefix``: the system prompt and the rule's documentation, equal for every finding
of a rule) computed once per run and reused by every row that starts with it; each row
stopped, and dropped from the batch, once its answer is complete; waiting prompts join the
running batch as rows finish (continuous batching), so a long answer no longer holds up a
whole batch. For the Llama architecture it runs on ``decoder.Decoder`` (own forward over
preallocated buffers); other architectures run the same batching per fixed batch through
transformers' forward.

``generate_reference`` is the plain transformers ``generate`` call per batch (left padding,
no shared prefix): the baseline the benchmarks compare against, and the tests' reference.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from . import decoder

_CODE_CLOSED = re.compile(r"(`{3}|~{3})[^\n]*\n.*?\n[ \t]*\1", re.S)
_FENCE_OPENED = re.compile(r"(`{3}|~{3})")
_PARAGRAPH_DONE = re.compile(r"[.!?`)][ \t]*\n[ \t]*\n")

MIN_SHARED_PREFIX = 16
"""Shorter shared prefixes are recomputed with the rest of the prompt."""
REFILL = 0.5
"""Waiting requests join the running batch once this share of its rows is free (one prefill
of several rows costs less per token than several prefills of one row)."""


@dataclass(frozen=True)
class Request:
    """One prompt. ``explain_only``: stop at the first code fence (the fix is known).
    ``prefix``: a leading part of ``prompt`` that other requests share (its cache is computed
    once); empty: nothing shared."""

    prompt: str
    max_new_tokens: int = 320
    explain_only: bool = False
    prefix: str = ""


@dataclass
class GenerationStats:
    sequences: int = 0
    batches: int = 0
    prompt_tokens: int = 0
    """Prompt tokens the model computed (a shared prefix counts once)."""
    reused_tokens: int = 0
    """Prompt tokens served from a shared prefix's cache instead."""
    prefixes_loaded: int = 0
    """Shared prefixes read from the on-disk store instead of computed."""
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


def _prepare(tok):
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token


def _shared_length(own: list[int], request: Request, ids: list[int]) -> int:
    """How many leading tokens of ``ids`` are the request's shared prefix (0: none). ``own``
    is the prefix tokenized on its own; only the tokens it has in common with the whole
    prompt's tokenization count, so the model sees exactly the prompt's tokens."""
    if not request.prefix or not request.prompt.startswith(request.prefix):
        return 0
    n = 0
    for a, b in zip(own, ids):
        if a != b:
            break
        n += 1
    n = min(n, len(ids) - 1)
    return n if n >= MIN_SHARED_PREFIX else 0


def generate(
    lm,
    requests: Sequence[Request],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    stop_early: bool = True,
    share_prefix: bool = True,
    store=None,
) -> tuple[list[str], GenerationStats]:
    """Greedy answers for ``requests`` (same order), ``batch_size`` rows at a time, prompts of
    similar length together. ``progress(n)`` is called after each batch with the number of
    rows finished in it. ``stop_early=False``: rows end only at end-of-turn or their token limit.
    ``store``: a ``prefix_cache.PrefixStore`` that shared prefixes are read from and written to."""
    import torch

    from .attention import decoding

    tok = lm.tokenizer
    _prepare(tok)
    stats = GenerationStats(sequences=len(requests))
    outputs: list[str] = [""] * len(requests)
    ids = [tok(r.prompt, add_special_tokens=False).input_ids for r in requests]
    prefix_ids = {}
    if share_prefix:
        for r in requests:
            if r.prefix and r.prefix not in prefix_ids:
                prefix_ids[r.prefix] = tok(r.prefix, add_special_tokens=False).input_ids
    shared = [_shared_length(prefix_ids.get(r.prefix, []), r, i) if share_prefix else 0 for r, i in zip(requests, ids)]
    # answers that propose code run longest: start them first, so that the short explanations fill the tail
    order = sorted(range(len(requests)), key=lambda i: (requests[i].explain_only, len(ids[i]) - shared[i]))
    eos = set(_eos_ids(lm))
    start = time.perf_counter()
    lean = decoder.supports(lm.model)
    dec = decoder.Decoder(lm.model) if lean else None
    prompt_model = getattr(lm, "prompt_model", None)
    reader = decoder.Decoder(prompt_model) if lean and prompt_model is not None else dec
    prefixes: dict[tuple[int, ...], list[tuple[object, object]]] = {}

    def prefix_kv(i: int):
        key = tuple(ids[i][: shared[i]])
        if key and key not in prefixes:
            kv = store.get(key, lm.model.config.num_hidden_layers) if store is not None else None
            if kv is None:
                kv = _prefix_cache_lean(reader, key) if lean else _prefix_cache(lm.model, key)
                stats.prompt_tokens += len(key)
                if store is not None:
                    store.put(key, kv)
            else:
                stats.prefixes_loaded += 1
            prefixes[key] = kv
        stats.reused_tokens += shared[i]
        stats.prompt_tokens += len(ids[i]) - shared[i]
        return prefixes.get(key)

    def answer(i: int, row: list[int]) -> None:
        stats.new_tokens += len(row)
        outputs[i] = tok.decode([t for t in row if t not in eos], skip_special_tokens=True)

    with torch.inference_mode():
        if lean:
            new = _continuous(dec, reader, tok, requests, ids, shared, order, prefix_kv, eos, stop_early,
                              max(1, batch_size), stats, progress)
            for i, row in enumerate(new):
                answer(i, row)
        else:
            with decoding(lm.model):
                for b in range(0, len(order), max(1, batch_size)):
                    rows = order[b : b + batch_size]
                    for i in rows:
                        prefix_kv(i)
                    done = _run_batch(lm, tok, [requests[i] for i in rows], [ids[i] for i in rows],
                                      [shared[i] for i in rows], prefixes, eos, stop_early)
                    stats.batches += 1
                    for i, row in zip(rows, done):
                        answer(i, row)
                    if progress:
                        progress(len(rows))
    stats.seconds = time.perf_counter() - start
    return outputs, stats


def _finished(request: Request, tokens: list[int], eos, tok, stop_early: bool) -> bool:
    if tokens[-1] in eos or len(tokens) >= request.max_new_tokens:
        return True
    return stop_early and answer_complete(tok.decode(tokens, skip_special_tokens=True), request.explain_only)


def _continuous(dec, reader, tok, requests, ids, shared, order, prefix_kv, eos, stop_early, batch_size, stats,
                progress):
    """New tokens of every request, decoded with continuous batching: up to ``batch_size``
    rows decode together, and as soon as rows finish, waiting requests are prefilled and join
    the running batch (their cache right-aligned to it) instead of waiting for the whole batch.
    ``reader`` computes the prompts' caches, ``dec`` the decoding steps (int8: fp32 and int8)."""
    import torch

    waiting = list(order)
    new: list[list[int]] = [[] for _ in requests]
    rows: list[int] = []
    cache = pending = positions = None
    keep: list[int] | None = None
    """Rows of the batch still decoding (None: all). Finished rows stay in the cache, decoded
    and ignored, until a refill or until they are half of the batch: dropping them copies the
    whole cache (about 0.1 s for 8 rows of 700 columns), a finished row costs a few ms a step."""

    def remaining(which: list[int]) -> int:
        return max((requests[r].max_new_tokens - len(new[r]) for r in which), default=0)

    while waiting or rows:
        free = batch_size - (len(keep) if keep is not None else len(rows))
        if waiting and (free >= max(1, int(batch_size * REFILL)) or not rows):
            group, waiting = waiting[:free], waiting[free:]
            kvs = [prefix_kv(i) for i in group]
            g_cache, logits, g_pos = _prefill(reader, tok, [ids[i] for i in group], [shared[i] for i in group], kvs)
            stats.batches += 1
            chosen = logits.argmax(-1)
            g_keep = _take(group, chosen, new, requests, eos, tok, stop_early, progress)
            if keep is None:
                keep = list(range(len(rows)))
            budget = remaining([rows[j] for j in keep] + [group[j] for j in g_keep])
            parts = [(cache, keep), (g_cache, g_keep)] if cache is not None else [(g_cache, g_keep)]
            cache = _rebuild(dec, parts, budget)
            pending = torch.cat([pending[keep], chosen[g_keep]]) if pending is not None else chosen[g_keep]
            positions = torch.cat([positions[keep], g_pos[g_keep]]) if positions is not None else g_pos[g_keep]
            rows = [rows[j] for j in keep] + [group[j] for j in g_keep]
            keep = None
        elif keep is not None and 2 * (len(rows) - len(keep)) >= len(rows):
            if keep:
                cache = _rebuild(dec, [(cache, keep)], remaining([rows[j] for j in keep]))
                pending, positions = pending[keep], positions[keep]
            rows = [rows[j] for j in keep]
            keep = None
        if not rows:
            cache = pending = positions = None
            continue
        cache.bias[:, cache.length] = 0
        logits = dec.forward(pending[:, None], positions[:, None], cache)
        positions = positions + 1
        pending = logits.argmax(-1)
        live = keep if keep is not None else list(range(len(rows)))
        kept = [live[k] for k in _take([rows[j] for j in live], pending[live], new, requests, eos, tok, stop_early,
                                       progress)]
        keep = kept if len(kept) < len(rows) else None
    return new


def _take(rows, chosen, new, requests, eos, tok, stop_early, progress) -> list[int]:
    """Append each row's chosen token; the indices of the rows that go on."""
    go_on, done = [], 0
    for j, r in enumerate(rows):
        new[r].append(int(chosen[j]))
        if _finished(requests[r], new[r], eos, tok, stop_early):
            done += 1
        else:
            go_on.append(j)
    if done and progress:
        progress(done)
    return go_on


def _prefill(dec, tok, ids, shared, kvs):
    """Cache, last logits and next positions of a group of new rows: each row's shared prefix
    (cached: ``kvs``) right-aligned at width ``P``, its own tokens right-aligned at width ``S``."""
    import torch

    n = len(ids)
    P = max(shared)
    S = max(len(i) - s for i, s in zip(ids, shared))
    cache = dec.empty(n, P + S)
    input_ids = torch.full((n, S), tok.pad_token_id, dtype=torch.long)
    positions = torch.ones(n, S, dtype=torch.long)
    for r, (row, k, kv) in enumerate(zip(ids, shared, kvs)):
        own = row[k:]
        input_ids[r, S - len(own) :] = torch.tensor(own)
        positions[r, S - len(own) :] = torch.arange(k, k + len(own))
        cache.bias[r, P + S - len(own) :] = 0
        if k:
            cache.bias[r, P - k : P] = 0
            for layer, (keys, values) in enumerate(kv):
                cache.keys[layer][r, :, P - k : P] = keys[0]
                cache.values[layer][r, :, P - k : P] = values[0]
    cache.length = P
    logits = dec.forward(input_ids, positions, cache)
    return cache, logits, positions[:, -1] + 1


def _rebuild(dec, parts, budget: int):
    """One cache holding the rows ``keep`` of each ``(cache, keep)`` part, right-aligned, with
    room for ``budget`` more columns; leading columns no kept row attends to are dropped."""
    import torch

    spans = []
    for cache, keep in parts:
        index = torch.tensor(keep, dtype=torch.long)
        attends = cache.bias[index, : cache.length] == 0
        first = int(attends.to(torch.uint8).argmax(1).min()) if len(keep) else cache.length
        spans.append((index, cache.length - first))
    width = max(span for _, span in spans)
    out = dec.empty(sum(len(keep) for _, keep in parts), width + budget + 1, zeros=False)
    out.length = width
    r = 0
    for (cache, keep), (index, span) in zip(parts, spans):
        k = len(keep)
        if not k:
            continue
        lo, hi = cache.length - span, cache.length
        whole = k == cache.rows and keep == list(range(k))
        for layer in range(len(out.keys)):
            for src, dst in ((cache.keys[layer], out.keys[layer]), (cache.values[layer], out.values[layer])):
                dst[r : r + k, :, : width - span] = 0
                dst[r : r + k, :, width - span : width] = src[:, :, lo:hi] if whole else src[index, :, lo:hi]
        out.bias[r : r + k, width - span : width] = cache.bias[index, lo:hi]
        r += k
    return out


def _prefix_cache_lean(dec, prefix: tuple[int, ...]) -> list[tuple[object, object]]:
    """Per layer ``(keys, values)`` of ``prefix``, shape ``[1, kv_heads, len, head_dim]``."""
    _, cache = dec.read(list(prefix))
    return list(zip(cache.keys, cache.values))


def _prefix_cache(model, prefix: tuple[int, ...]) -> list[tuple[object, object]]:
    """Per layer ``(keys, values)`` of ``prefix``, shape ``[1, kv_heads, len, head_dim]``."""
    import torch
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    model(input_ids=torch.tensor([prefix]), use_cache=True, logits_to_keep=1, **{_cache_arg(model): cache})
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cache_arg(model) -> str:
    """The forward argument that takes the cache: ``cache`` in newer transformers 5 releases,
    ``past_key_values`` before."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _buffer_cache(n_layers: int, capacity: int):
    """A cache whose layers write into preallocated buffers instead of concatenating."""
    from transformers.cache_utils import Cache, DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self) -> None:
            super().__init__()
            self.length = 0

        def lazy_initialization(self, key_states, value_states) -> None:
            import torch

            b, h, _, d = key_states.shape
            self.device = key_states.device
            self.k_buf = torch.zeros(b, h, capacity, d, dtype=key_states.dtype, device=self.device)
            self.v_buf = torch.zeros(b, h, capacity, value_states.shape[-1], dtype=value_states.dtype, device=self.device)
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[-2]
            self.k_buf[:, :, self.length : self.length + n] = key_states
            self.v_buf[:, :, self.length : self.length + n] = value_states
            self.length += n
            self.keys = self.k_buf[:, :, : self.length]
            self.values = self.v_buf[:, :, : self.length]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices) -> None:
            self.k_buf = self.k_buf[indices]
            self.v_buf = self.v_buf[indices]
            self.keys = self.k_buf[:, :, : self.length]
            self.values = self.v_buf[:, :, : self.length]

    return Cache(layers=[BufferLayer() for _ in range(n_layers)])


def _run_batch(lm, tok, requests, ids, shared, prefixes, eos, stop_early) -> list[list[int]]:
    """New tokens of each row. Layout of row ``r``: its shared prefix (already cached,
    right-aligned at width ``P``), then its own tokens right-aligned at width ``S``; padding in
    front of both is masked out and positions count real tokens only."""
    import torch

    model = lm.model
    n = len(requests)
    P = max(shared)
    S = max(len(i) - s for i, s in zip(ids, shared))
    limit = max(r.max_new_tokens for r in requests)
    cache = _buffer_cache(model.config.num_hidden_layers, P + S + limit)
    mask = torch.zeros(n, P + S, dtype=torch.long)
    input_ids = torch.full((n, S), tok.pad_token_id, dtype=torch.long)
    positions = torch.ones(n, S, dtype=torch.long)
    for r, (row, k) in enumerate(zip(ids, shared)):
        own = row[k:]
        mask[r, P - k : P] = 1
        mask[r, P + S - len(own) :] = 1
        input_ids[r, S - len(own) :] = torch.tensor(own)
        positions[r, S - len(own) :] = torch.arange(k, k + len(own))
    if P:
        for index, layer in enumerate(cache.layers):
            keys, values = [], []
            for row, k in zip(ids, shared):
                k_row, v_row = prefixes[tuple(row[:k])][index] if k else (None, None)
                keys.append(_left_pad(k_row, P))
                values.append(_left_pad(v_row, P))
            like = next(t for t in keys if t is not None)
            zeros = like.new_zeros(1, like.shape[1], P, like.shape[3])
            layer.update(torch.cat([zeros if t is None else t for t in keys]),
                         torch.cat([zeros if t is None else t for t in values]))
    arg = _cache_arg(model)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                **{arg: cache})
    live = list(range(n))
    new: list[list[int]] = [[] for _ in range(n)]
    last = positions[:, -1].clone()
    while True:
        nxt = out.logits[:, -1].argmax(-1)
        keep = []
        for j, r in enumerate(live):
            t = int(nxt[j])
            new[r].append(t)
            if not _finished(requests[r], new[r], eos, tok, stop_early):
                keep.append(j)
        if not keep:
            return new
        if len(keep) < len(live):
            index = torch.tensor(keep)
            cache.batch_select_indices(index)
            mask, nxt, last = mask[index], nxt[index], last[index]
            live = [live[j] for j in keep]
        mask = torch.cat([mask, torch.ones(len(live), 1, dtype=torch.long)], 1)
        last = last + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None], use_cache=True,
                    **{arg: cache})


def _left_pad(tensor, width: int):
    """``tensor`` (``[1, heads, k, dim]``) with zeros in front up to ``width`` positions;
    None stays None (a row without a shared prefix)."""
    import torch

    if tensor is None or tensor.shape[2] == width:
        return tensor
    pad = tensor.new_zeros(1, tensor.shape[1], width - tensor.shape[2], tensor.shape[3])
    return torch.cat([pad, tensor], dim=2)


def generate_reference(
    lm,
    requests: Sequence[Request],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    stop_early: bool = True,
) -> tuple[list[str], GenerationStats]:
    """Like :func:`generate` through transformers' own ``generate`` (no shared prefix, the
    default growing cache, finished rows kept until the whole batch ends)."""
    import torch

    tok = lm.tokenizer
    _prepare(tok)
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


def _stopper(tokenizer, requests: Sequence[Request], prompt_len: int):
    import torch
    from transformers import StoppingCriteria

    class AnswerDone(StoppingCriteria):
        def __init__(self) -> None:
            self.new = [[] for _ in requests]
            self.seen = prompt_len

        def __call__(self, input_ids, scores, **kwargs):
            fresh = input_ids[:, self.seen :].tolist()
            self.seen = input_ids.shape[1]
            done = []
            for i, toks in enumerate(fresh):
                self.new[i].extend(toks)
                text = tokenizer.decode(self.new[i], skip_special_tokens=True)
                done.append(answer_complete(text, requests[i].explain_only))
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return AnswerDone()


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
