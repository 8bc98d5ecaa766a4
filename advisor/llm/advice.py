"""Attach model advice to findings: prompts -> (cache | batched generation) -> verification.

The on-disk cache is keyed by model hash, adapter hash, settings and prompt (answers) and
additionally by the file's text (verdicts), so an unchanged re-run loads no model at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

from ..output.sanitize import clean
from .blocks import Block
from .decoder import VERSION as DECODER_VERSION
from .loader import AdapterSpec, ModelSpec, ModelUnavailable, _atomic_write, cache_dir, check_available, scheme
from .prompts import advice_messages, finding_block, parse_answer, prompt_identity
from .verify import VERIFY_VERSION, Verdict, findings_of, verify_block, verify_source

CACHE_VERSION = 2
"""2: per-channel int8 with stacked projections, own decoder (answers differ from version 1)."""
MAX_EXPLANATION = 800


@dataclass
class AdviceOptions:
    model: str | None = None
    adapter: str | None = None
    dtype: str = "float32"
    quantize: str | None = "int8"
    batch_size: int = 8
    use_cache: bool = True
    stop_early: bool = True
    max_new_tokens: int | None = None
    """Cap on generated tokens per answer (default: sized from the block)."""
    threads: int | None = None
    """torch CPU threads for generation (default: torch's choice). On a CPU shared with
    other busy processes, 1 thread avoids OpenMP oversubscription."""
    progress: bool | None = None
    """Progress line on stderr; None: only when stderr is a terminal."""
    method: str = "fast"
    """``fast``: ``generate.generate`` (shared prompt prefixes, rows dropped when done);
    ``reference``: transformers' own ``generate`` (the benchmarks' naive path)."""


@dataclass
class AdviceRun:
    advised: int = 0
    cached: int = 0
    generated: int = 0
    verified: int = 0
    seconds: float = 0.0
    generation: object | None = None
    model: dict | None = None
    note: str | None = None
    """One line for the user when advice could not be produced (what to install)."""
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Item:
    finding: object
    source: str
    block: Block
    identity: dict
    explain_only: bool
    key: str
    answer: str | None = None


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def answer_key(spec: ModelSpec, adapter: AdapterSpec | None, options: AdviceOptions, identity, explain_only: bool) -> str:
    """Cache key of one model answer; ``identity`` is ``prompt_identity(finding, block)``."""
    return _digest({
        "v": CACHE_VERSION,
        "model": spec.hash,
        "adapter": adapter.hash if adapter else None,
        "dtype": options.dtype,
        "quantize": options.quantize,
        "scheme": scheme(options.quantize),
        "explain_only": explain_only,
        "max_new_tokens": options.max_new_tokens,
        "method": options.method,
        "prompt": identity,
    })


def _cache_path(kind: str, key: str):
    return cache_dir() / kind / key[:2] / f"{key}.json"


def _cache_get(kind: str, key: str) -> dict | None:
    try:
        with open(_cache_path(kind, key), encoding="utf-8") as fh:
            value = json.load(fh)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def _cache_put(kind: str, key: str, value: dict) -> None:
    try:
        _atomic_write(_cache_path(kind, key), json.dumps(value))
    except OSError:
        pass


def max_new_tokens(tokenizer, item: _Item, cap: int | None = None) -> int:
    if item.explain_only:
        n = 120
    else:
        n = min(768, int(len(tokenizer(item.block.text, add_special_tokens=False).input_ids) * 1.3) + 140)
    return min(n, cap) if cap else n


def advise(findings: Sequence, sources: dict[str, str], options: AdviceOptions | None = None,
           settings=None, loaded=None) -> AdviceRun:
    """Set ``finding.advice`` for each finding it can. ``sources``: path -> file text.
    ``loaded``: an already loaded ``LoadedModel`` (benchmarks, tests); otherwise the model
    is loaded only if some answer is not cached. Never raises ModelUnavailable: the run's
    ``note`` says what to install instead."""
    options = options or AdviceOptions()
    run = AdviceRun()
    start = time.perf_counter()
    try:
        if loaded is not None:
            spec = ModelSpec(loaded.info.name, loaded.info.kind, loaded.info.source, loaded.info.hash)
            adapter = (AdapterSpec(loaded.info.adapter, loaded.info.adapter_hash, loaded.info.extra.get("adapter_name"))
                       if loaded.info.adapter else None)
        else:
            spec, adapter = check_available(options.model, options.adapter)
    except ModelUnavailable as exc:
        run.note = f"advice skipped: {exc}; {exc.hint}" if exc.hint else f"advice skipped: {exc}"
        return run
    model_id = {"name": spec.name, "adapter": adapter.name if adapter else None, "hash": spec.hash[:16]}
    run.model = model_id

    items: list[_Item] = []
    for f in findings:
        source = sources.get(f.path)
        if source is None:
            continue
        block = finding_block(f, source)
        if block is None:
            run.skipped.append(f"{f.path}:{f.span.line}")
            continue
        identity = prompt_identity(f, block)
        explain_only = f.fix is not None
        items.append(_Item(f, source, block, identity, explain_only, answer_key(spec, adapter, options, identity, explain_only)))

    todo = []
    for item in items:
        hit = _cache_get("answers", item.key) if options.use_cache else None
        if hit and isinstance(hit.get("answer"), str):
            item.answer = hit["answer"]
            run.cached += 1
        else:
            todo.append(item)

    if todo:
        try:
            lm = loaded or _load(options)
        except ModelUnavailable as exc:
            run.note = f"advice skipped: {exc}; {exc.hint}" if exc.hint else f"advice skipped: {exc}"
            return run
        run.generation = _generate(lm, todo, options)
        run.generated = len(todo)
        if options.use_cache:
            for item in todo:
                _cache_put("answers", item.key, {"answer": item.answer, "model": model_id})

    baselines: dict[str, tuple] = {}
    for item in items:
        item.finding.advice = _advice(item, model_id, settings, baselines, options.use_cache)
        run.advised += 1
        run.verified += bool(item.finding.advice["verified"])
    run.seconds = time.perf_counter() - start
    return run


def _load(options: AdviceOptions):
    from .loader import load_model

    return load_model(options.model, options.adapter, dtype=options.dtype, quantize=options.quantize)


def _generate(lm, todo: list[_Item], options: AdviceOptions):
    from .generate import Request, generate, generate_reference
    from .prompts import chat_prompt, shared_prefix

    requests = []
    for it in todo:
        prompt = chat_prompt(lm.tokenizer, advice_messages(it.finding, it.source, it.block))
        requests.append(Request(prompt, max_new_tokens(lm.tokenizer, it, options.max_new_tokens), it.explain_only,
                                shared_prefix(prompt)))
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    show = options.progress if options.progress is not None else sys.stderr.isatty()
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if show:
            sys.stderr.write(f"\radvisor: generating advice {done[0]}/{len(todo)}")
            sys.stderr.flush()

    if show:
        sys.stderr.write(f"advisor: generating advice 0/{len(todo)}")
        sys.stderr.flush()
    if options.method == "reference":
        answers, stats = generate_reference(lm, requests, batch_size=options.batch_size, progress=progress,
                                            stop_early=options.stop_early)
    else:
        answers, stats = generate(lm, requests, batch_size=options.batch_size, progress=progress,
                                  stop_early=options.stop_early, store=_prefix_store(lm, options))
    if show:
        sys.stderr.write("\n")
    for item, answer in zip(todo, answers):
        item.answer = answer
    return stats


def _prefix_store(lm, options: AdviceOptions):
    """The on-disk cache of shared prompt prefixes for this model (None without the cache)."""
    if not options.use_cache:
        return None
    import torch
    import transformers

    from .prefix_cache import PrefixStore

    info = lm.info
    identity = {"model": info.hash, "adapter": info.adapter_hash, "quantize": info.quantize, "dtype": options.dtype,
                "scheme": scheme(info.quantize), "decoder": DECODER_VERSION,
                "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads()}
    return PrefixStore(cache_dir() / "prefixes", identity)


def _advice(item: _Item, model_id: dict, settings, baselines: dict, use_cache: bool) -> dict:
    f = item.finding
    parsed = parse_answer(item.answer or "")
    explanation = tidy_explanation(parsed.explanation)
    verdict_key = _digest({"verifier": VERIFY_VERSION, "answer": item.key, "text": item.answer, "source": hashlib.sha256(item.source.encode()).hexdigest(),
                           "finding": [f.code, f.span.line, f.span.column, f.message], "fix": f.fix.to_dict() if f.fix else None})
    cached = _cache_get("verdicts", verdict_key) if use_cache else None
    if cached and {"verified", "reason", "code", "diff"} <= cached.keys():
        verdict = Verdict(bool(cached["verified"]), cached["reason"], None, cached["diff"] or "")
        code = cached["code"]
    else:
        if f.path not in baselines:
            baselines[f.path] = findings_of(item.source, f.path, settings)
        code, verdict = _verdict(item, parsed.code, settings, baselines[f.path])
        if use_cache:
            _cache_put("verdicts", verdict_key, {"verified": verdict.verified, "reason": verdict.reason, "code": code, "diff": verdict.diff})
    return {
        "explanation": explanation,
        "suggested_code": clean(code) if code else None,
        "diff": clean(verdict.diff) if verdict.verified and verdict.diff else None,
        "verified": verdict.verified,
        "reason": verdict.reason,
        "source": "rule" if item.explain_only else "model",
        "model": dict(model_id),
    }


def _verdict(item: _Item, code: str | None, settings, baseline) -> tuple[str | None, Verdict]:
    f = item.finding
    if item.explain_only:
        from ..fixes.edits import EditError, apply_edits

        try:
            new_source = apply_edits(item.source, f.fix.edits)
        except EditError as exc:
            return None, Verdict(False, f"the rule's fix does not apply: {exc}")
        return _fixed_block(item.block, item.source, new_source), verify_source(item.source, new_source, f.path, f, settings, baseline)
    verdict = verify_block(item.source, f.path, f, item.block, code or "", settings, baseline)
    return code, verdict


def _fixed_block(block: Block, before: str, after: str) -> str | None:
    """The block's text after a fix whose edits stay inside it (else None)."""
    old, new = before.splitlines(), after.splitlines()
    if old[: block.start - 1] != new[: block.start - 1] or old[block.end :] != (new[len(new) - (len(old) - block.end):] if len(old) > block.end else []):
        return None
    end = len(new) - (len(old) - block.end)
    lines = new[block.start - 1 : end]
    return "\n".join(line[len(block.indent):] if line.startswith(block.indent) else line for line in lines)


def tidy_explanation(text: str, max_sentences: int = 4) -> str:
    """The explanation as shown: repeated lines dropped (small models loop), a trailing
    lead-in to the code ("The corrected function is:") removed, at most ``max_sentences``."""
    seen: set[str] = set()
    kept: list[str] = []
    for line in text.splitlines():
        key = line.strip().lower()
        if key and key in seen:
            break
        seen.add(key)
        kept.append(line.rstrip())
    while kept and (not kept[-1].strip() or kept[-1].rstrip().endswith(":")):
        kept.pop()
    text = " ".join(ln.strip() for ln in kept if ln.strip())
    sentences = []
    for sentence in (x for x in re.split(r"(?<=[.!?])\s+", text) if x):
        if sentence.lower() in (k.lower() for k in sentences):
            break
        sentences.append(sentence)
    if sentences and not sentences[-1].rstrip().endswith((".", "!", "?", ")", "`")):
        sentences.pop()  # a fragment cut off by the token limit or the stop rule
    return " ".join(sentences[:max_sentences])[:MAX_EXPLANATION].strip()


def suggestion_fix(finding, source: str):
    """A verified model suggestion as an unsafe ``Fix`` replacing the block's lines (for
    ``--fix --unsafe-fixes``); None when the advice is not a verified model suggestion or the
    source no longer matches it."""
    from ..analysis.model import Span
    from ..rules import Edit, Fix
    from .blocks import splice

    advice = finding.advice or {}
    if not (advice.get("verified") and advice.get("source") == "model" and advice.get("suggested_code")):
        return None
    block = finding_block(finding, source)
    if block is None:
        return None
    lines = source.splitlines()
    new_lines = splice(source, block, advice["suggested_code"]).splitlines()
    tail = len(lines) - block.end
    content = "\n".join(new_lines[block.start - 1 : len(new_lines) - tail])
    span = Span(block.start, 0, block.end, len(lines[block.end - 1]))
    return Fix("unsafe", (Edit(span, content),), f"Replace `{block.name}` with the verified model suggestion")
