"""LoRA fine-tuning of the advice model on the threading corpus, read top to bottom:

config -> checks (corpus, output) -> base model + LoRA -> eval before -> training loop
(data from the threaded pipeline, AdamW, warm-up + cosine, gradient accumulation,
atomic checkpoints) -> adapter (temporary dir) -> eval after -> move into place.

Under ``torchrun`` the same code trains with DDP: each rank reads its shard of the data,
only rank 0 evaluates and writes. torch is imported inside functions only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .config import TRAINING_KEYS, FinetuneConfig, config_fields
from .pipeline import DataConfig, PipelineError, build_corpus_pipeline, example_finding, split_of, tensor_batch

class FinetuneError(Exception):
    """Bad input or environment: reported as one line, exit status 2, nothing written."""


# -- small helpers ---------------------------------------------------------------------------


def lr_at(step: int, total: int, cfg: FinetuneConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    low = cfg.lr * cfg.min_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def corpus_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def _dist():
    """(rank, world, local_rank) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _writable(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=output, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FinetuneError(f"{output}: output directory is not writable ({exc.strerror or exc})") from None


@dataclass
class CorpusInfo:
    files: list[Path]
    programs: list[Path]
    train: list
    held_out: list
    skipped: int
    hash: str


def check_corpus(cfg: FinetuneConfig) -> CorpusInfo:
    """Read and check the whole corpus before anything is loaded: a missing or empty
    directory or a corrupt line (without ``skip_invalid``) raises FinetuneError."""
    from ..corpus.examples import CorpusError, load_corpus

    try:
        loaded = load_corpus(cfg.corpus, skip_invalid=cfg.skip_invalid)
    except CorpusError as exc:
        raise FinetuneError(str(exc)) from None
    if loaded.problems and not cfg.skip_invalid:
        first = loaded.problems[0]
        more = f" (and {len(loaded.problems) - 1} more problem(s))" if len(loaded.problems) > 1 else ""
        raise FinetuneError(f"{first}{more}; fix the corpus or pass --skip-invalid")
    files = sorted({Path(ex.path) for ex in loaded.examples})
    root = Path(cfg.corpus)
    jsonl = sorted(root.glob("*.jsonl")) if root.is_dir() else [root]
    train = [ex for ex in loaded.examples if split_of(ex.id, cfg.holdout) == "train"]
    held = sorted((ex for ex in loaded.examples if split_of(ex.id, cfg.holdout) == "eval" and "~" not in ex.id),
                  key=lambda ex: hashlib.sha256(ex.id.encode()).hexdigest())
    if not train and not loaded.programs:
        raise FinetuneError(f"{cfg.corpus}: no training examples (corpus empty or all held out)")
    skipped = loaded.skipped + len(loaded.problems)
    return CorpusInfo(files or jsonl, loaded.programs, train, held, skipped, corpus_hash(jsonl + loaded.programs))


# -- checkpoints (safetensors + JSON, written to a temp dir and renamed) --------------------


def _ckpt_dir(output: Path) -> Path:
    return output / "checkpoints"


def latest_checkpoint(output: Path) -> Path | None:
    found = []
    for p in _ckpt_dir(output).glob("step-*"):
        if (p / "state.json").is_file() and p.name[5:].isdigit():
            found.append((int(p.name[5:]), p))
    return max(found)[1] if found else None


def save_checkpoint(output: Path, model, optimizer, state: dict) -> Path:
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    root = _ckpt_dir(output)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state['step']:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{final.name}-"))
    try:
        adapter = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(adapter, str(tmp / "adapter.safetensors"))
        opt = {}
        for idx, st in optimizer.state_dict()["state"].items():
            for key, value in st.items():
                opt[f"{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        save_file(opt, str(tmp / "optimizer.safetensors"))
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        save_file(rng, str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
        for p in tmp.iterdir():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model, optimizer) -> dict:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(path / "adapter.safetensors")))
    flat = load_file(str(path / "optimizer.safetensors"))
    opt_state: dict = {}
    for key, value in flat.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = value
    sd = optimizer.state_dict()
    sd["state"] = opt_state
    optimizer.load_state_dict(sd)
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return json.loads((path / "state.json").read_text())


# -- evaluation -------------------------------------------------------------------------------


def answer_loss(model, batch):
    """Mean cross-entropy of the answer tokens (``labels`` not -100), as transformers computes
    it from ``labels``, but with logits only from the batch's first answer position on: the
    vocabulary projection of prompt positions is never needed."""
    import torch.nn.functional as F

    labels = batch["labels"]
    wanted = (labels[:, 1:] != -100).any(0).nonzero()
    first = int(wanted[0]) if len(wanted) else labels.shape[1] - 1
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                logits_to_keep=labels.shape[1] - first)
    if not len(wanted):
        return out.logits.sum() * 0.0
    logits = out.logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, first + 1 :].reshape(-1), ignore_index=-100)


def eval_loss(model, tokenizer, cfg: FinetuneConfig, info: CorpusInfo, device) -> dict:
    """Token-weighted loss on the answers of the held-out split."""
    import torch

    data = DataConfig(files=[str(p) for p in info.files], batch_size=cfg.batch_size, max_len=cfg.max_len,
                      seed=cfg.seed, split="eval", holdout=cfg.holdout, skip_invalid=cfg.skip_invalid,
                      workers=cfg.workers)
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    with build_corpus_pipeline(data, tokenizer, tensor_batch(str(device))) as pipe, torch.no_grad():
        seen = 0
        for batch in pipe:
            if cfg.eval_limit and seen >= cfg.eval_limit:
                break
            seen += len(batch["ids"])
            labels = batch["labels"]
            n = int((labels[:, 1:] != -100).sum())
            total += float(answer_loss(model, batch)) * n
            tokens += n
    model.train(was_training)
    return {"loss": round(total / tokens, 4) if tokens else None, "tokens": tokens, "examples": seen}


def fix_items(examples, tokenizer) -> list[tuple]:
    """``(example, finding, block, prompt)`` for each example the analyzer flags, with the
    prompt exactly as advice renders it."""
    from ..llm.prompts import advice_messages, chat_prompt, finding_block

    items = []
    for ex in examples:
        finding = example_finding(ex)
        block = finding_block(finding, ex.code) if finding else None
        if block is not None:
            items.append((ex, finding, block, chat_prompt(tokenizer, advice_messages(finding, ex.code, block))))
    return items


def score_answers(items: list[tuple], answers: list[str]) -> dict:
    """Verify each answer's code against its item's finding (``verify_block``, as advice does)."""
    from collections import Counter

    from ..llm.prompts import parse_answer
    from ..llm.verify import verify_block

    reasons: Counter = Counter()
    per_rule: dict = {}
    verified = 0
    for (ex, finding, block, _), text in zip(items, answers):
        verdict = verify_block(ex.code, finding.path, finding, block, parse_answer(text).code or "")
        verified += verdict.verified
        reasons[verdict.reason.split(":")[0][:60]] += 1
        ok, n = per_rule.get(ex.rule, (0, 0))
        per_rule[ex.rule] = (ok + verdict.verified, n + 1)
    return {
        "examples": len(items),
        "verified": verified,
        "fix_rate": round(verified / len(items), 4) if items else None,
        "per_rule": {r: f"{ok}/{n}" for r, (ok, n) in sorted(per_rule.items())},
        "reasons": dict(reasons.most_common()),
    }


def fix_rate(lm, examples, max_new_tokens: int = 384, batch_size: int = 8) -> dict:
    """Share of ``examples`` (buggy code + rule) whose generated fix passes the advice
    verification; greedy generation as ``advisor check`` does it."""
    from ..llm.generate import Request, generate
    from ..llm.prompts import shared_prefix

    tok = lm.tokenizer
    items = fix_items(examples, tok)
    if not items:
        return score_answers([], [])
    requests = []
    for _, _, block, prompt in items:
        need = len(tok(block.text, add_special_tokens=False).input_ids)
        requests.append(Request(prompt, max_new_tokens=min(max_new_tokens, int(need * 1.3) + 140),
                                prefix=shared_prefix(prompt)))
    start = time.perf_counter()
    answers, stats = generate(lm, requests, batch_size=batch_size)
    result = score_answers(items, answers)
    result.update(new_tokens=stats.new_tokens, seconds=round(time.perf_counter() - start, 1))
    return result


def _generation_model(cfg: FinetuneConfig, adapter_dir: str | None, model=None, tokenizer=None):
    """The model the fix rate is measured with: the product's loading path (merged adapter,
    int8) for real weights; the in-memory model for a tiny one."""
    from ..llm.loader import LoadedModel, load_model

    if cfg.tiny:
        return LoadedModel(model, tokenizer, None)
    quant = None if cfg.gen_quantize in ("", "none") else cfg.gen_quantize
    return load_model(cfg.model, adapter=adapter_dir or "none", quantize=quant)


# -- the run ------------------------------------------------------------------------------------


def _log(rank: int, msg: str) -> None:
    if rank == 0:
        print(f"finetune: {msg}", file=sys.stderr, flush=True)


def run(cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Train; returns the metrics (rank 0) written to ``adapter_meta.json``."""
    rank, world, local_rank = _dist()
    output = Path(cfg.output)
    info = check_corpus(cfg)
    if rank == 0:
        _writable(output)
        if not cfg.resume and latest_checkpoint(output) is not None:
            raise FinetuneError(f"{output} holds checkpoints of an earlier run: pass --resume or choose another --output")

    import warnings

    import torch
    import torch.distributed as dist
    from peft import LoraConfig, get_peft_model

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)

    from .model import load_base

    t_load = time.perf_counter()
    base = load_base(cfg.model, tiny=cfg.tiny, seed=cfg.seed)
    tokenizer = base.tokenizer
    torch.manual_seed(cfg.seed)
    n_layers = base.model.config.num_hidden_layers
    layers = list(range(max(0, n_layers - cfg.lora_layers), n_layers)) if cfg.lora_layers else None
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=[m.strip() for m in cfg.target_modules.split(",") if m.strip()],
                      layers_to_transform=layers, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(base.model, lora).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    _log(rank, f"{base.info.name}: {sum(p.numel() for p in trainable):,} trainable of "
               f"{sum(p.numel() for p in model.parameters()):,} parameters; loaded in {time.perf_counter() - t_load:.1f}s")

    per_step = cfg.batch_size * cfg.grad_accum * world
    steps_per_epoch = max(1, math.ceil(len(info.train) / per_step))
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    metrics: dict = {"train_examples": len(info.train), "held_out_examples": len(info.held_out),
                     "skipped_lines": info.skipped, "world_size": world, "total_steps": total}

    state = {"step": 0, "epoch": 0, "micro_in_epoch": 0, "metrics": {}, "losses": []}
    resumed = latest_checkpoint(output) if cfg.resume else None
    if resumed is not None:
        saved = json.loads((resumed / "state.json").read_text())
        diff = [k for k in TRAINING_KEYS if saved["config"].get(k) != getattr(cfg, k)]
        if diff:
            raise FinetuneError(f"{resumed}: checkpoint was made with different settings ({', '.join(diff)})")
        state = load_checkpoint(resumed, model, optimizer)
        _log(rank, f"resuming from {resumed.name} (step {state['step']}, epoch {state['epoch']})")
    elif cfg.resume:
        _log(rank, f"no checkpoint in {output}; starting from the beginning")

    if rank == 0 and state["step"] == 0 and "before" not in state["metrics"]:
        model.eval()
        before = {}
        if cfg.eval_loss and info.held_out:
            before["eval"] = eval_loss(model, tokenizer, cfg, info, device)
            _log(rank, f"held-out loss before: {before['eval']['loss']}")
        if cfg.fix_rate and info.held_out:
            gen = _generation_model(cfg, None, model, tokenizer)
            before["fix"] = fix_rate(gen, info.held_out[: cfg.eval_limit or None], cfg.gen_tokens)
            del gen
            _log(rank, f"fix rate before: {before['fix']['verified']}/{before['fix']['examples']}")
        state["metrics"]["before"] = before
    if world > 1:
        dist.barrier()

    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    model.train()

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=state["step"], desc="finetune", unit="step", dynamic_ncols=True)
    step, epoch, skip = state["step"], state["epoch"], state["micro_in_epoch"]
    micro = 0
    wait = train_time = 0.0
    step_tokens = 0
    step_loss = 0.0
    t_step = time.perf_counter()
    loop_start = time.perf_counter()
    pipeline_report = None
    try:
        while step < total:
            data = DataConfig(files=[str(p) for p in info.files], programs=[str(p) for p in info.programs],
                              batch_size=cfg.batch_size, max_len=cfg.max_len, seed=cfg.seed, epoch=epoch,
                              split="train", holdout=cfg.holdout, skip_invalid=cfg.skip_invalid,
                              rank=rank, world=world, workers=cfg.workers)
            consumed = 0
            with build_corpus_pipeline(data, tokenizer, tensor_batch(str(device))) as pipe:
                it = iter(pipe)
                while step < total:
                    t0 = time.perf_counter()
                    batch = next(it, None)
                    wait += time.perf_counter() - t0
                    if world > 1:
                        more = torch.tensor([0 if batch is None else 1], device=device)
                        dist.all_reduce(more, op=dist.ReduceOp.MIN)
                        if not int(more):
                            break
                    elif batch is None:
                        break
                    consumed += 1
                    if consumed <= skip:
                        continue
                    micro += 1
                    sync = micro == cfg.grad_accum
                    ctx = net.no_sync() if (world > 1 and not sync) else _null()
                    with ctx:
                        loss = answer_loss(net, batch)
                        (loss / cfg.grad_accum).backward()
                    step_loss += float(loss.detach()) / cfg.grad_accum
                    step_tokens += batch["tokens"]
                    if not sync:
                        continue
                    for g in optimizer.param_groups:
                        g["lr"] = lr_at(step, total, cfg)
                    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    micro = 0
                    now = time.perf_counter()
                    tps = step_tokens * world / (now - t_step)
                    state["losses"].append(round(step_loss, 4))
                    if bar is not None:
                        bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tps:.0f}", lr=f"{lr_at(step - 1, total, cfg):.1e}")
                        bar.update(1)
                    step_loss, step_tokens, t_step = 0.0, 0, now
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                        state.update(step=step, epoch=epoch, micro_in_epoch=consumed, config=cfg.to_dict(),
                                     train_seconds=state.get("train_seconds", 0.0) + time.perf_counter() - loop_start,
                                     data_wait_seconds=state.get("data_wait_seconds", 0.0) + wait)
                        loop_start, wait = time.perf_counter(), 0.0
                        if rank == 0:
                            save_checkpoint(output, model, optimizer, state)
                pipeline_report = pipe.report()
            if step < total:
                epoch += 1
                skip = 0
                if consumed == 0:
                    raise FinetuneError(f"{cfg.corpus}: the pipeline produced no training batches "
                                        f"({pipeline_report['counters']})")
    finally:
        if bar is not None:
            bar.close()
    train_time = state.get("train_seconds", 0.0) + time.perf_counter() - loop_start
    wait += state.get("data_wait_seconds", 0.0)
    model.eval()
    metrics.update(steps=step, epochs_started=epoch + 1, final_train_loss=state["losses"][-1] if state["losses"] else None,
                   train_seconds=round(train_time, 1), data_wait_seconds=round(wait, 3),
                   data_wait_share=round(wait / train_time, 5) if train_time else None,
                   pipeline=pipeline_report, losses=state["losses"])
    if world > 1:
        dist.barrier()
    if rank != 0:
        dist.destroy_process_group()
        return metrics

    tmp = Path(tempfile.mkdtemp(dir=output, prefix=".adapter-tmp-"))
    try:
        save_adapter(model, tmp, name=base.info.name)
        after = {}
        if cfg.eval_loss and info.held_out:
            after["eval"] = eval_loss(model, tokenizer, cfg, info, device)
            _log(rank, f"held-out loss after: {after['eval']['loss']}")
        if cfg.fix_rate and info.held_out:
            gen = _generation_model(cfg, str(tmp), model, tokenizer)
            after["fix"] = fix_rate(gen, info.held_out[: cfg.eval_limit or None], cfg.gen_tokens)
            del gen
            _log(rank, f"fix rate after: {after['fix']['verified']}/{after['fix']['examples']}")
        metrics["before"] = state["metrics"].get("before", {})
        metrics["after"] = after
        meta = {
            "name": "advisor-lora",
            "base_model": {"name": base.info.name, "hash": base.info.hash},
            "corpus": {"path": str(cfg.corpus), "hash": info.hash, "files": [p.name for p in info.files]},
            "config": cfg.to_dict(),
            "metrics": metrics,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "adapter_meta.json").write_text(json.dumps(meta, indent=2))
        for name in ("adapter_meta.json", "adapter_config.json", "adapter_model.safetensors"):
            os.replace(tmp / name, output / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not cfg.keep_checkpoints:
        shutil.rmtree(_ckpt_dir(output), ignore_errors=True)
    if world > 1:
        dist.destroy_process_group()
    return metrics


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def save_adapter(model, directory: Path, dtype: str = "float16", name: str | None = None) -> None:
    """``adapter_config.json`` + ``adapter_model.safetensors`` (half precision) as peft
    writes them, loadable with ``PeftModel.from_pretrained``."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    torch_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
    state = {k: v.detach().to("cpu", torch_dtype).contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = copy.copy(model.peft_config["default"])
    config.base_model_name_or_path = name or config.base_model_name_or_path
    config.inference_mode = True
    config.save_pretrained(str(directory))


__all__ = ["FinetuneConfig", "FinetuneError", "PipelineError", "run", "fix_rate", "eval_loss", "answer_loss", "lr_at", "config_fields"]
