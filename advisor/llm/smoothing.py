"""Activation smoothing, so that int8 can read prompts as well as decode.

Dynamic int8 quantization gives each call's input one scale. A few input channels of a
Llama layer carry activations far larger than the rest, so that scale leaves the other
channels a handful of levels. Dividing each input channel by ``s_j = a_j**alpha / w_j**(1 -
alpha)`` (``a_j``: the channel's largest activation on calibration prompts, ``w_j``: the largest
weight it meets) and multiplying the weights by ``s_j`` gives the same products with flatter
inputs. The division is folded into what produces the input: the RMSNorm weights before the
query/key/value and gate/up projections and the final head, the value rows before the output
projection (one scale per key/value head channel, shared by the query heads of its group), the
up rows before the down projection. In fp32 the smoothed model computes the same function.

The largest activations are measured once per model and adapter on the prompts of
``calibration.jsonl`` (one training example of the corpus per rule) and kept in the cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VERSION = 1
ALPHA = 0.8
CALIBRATION = Path(__file__).with_name("calibration.jsonl")


def supported(model) -> bool:
    """Smoothing folds scales into bias-free projections of a fused Llama layer."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for layer in base.model.layers:
        att, mlp = layer.self_attn, layer.mlp
        if any(getattr(m, "bias", None) is not None for m in (att.q_proj, att.k_proj, att.v_proj, att.o_proj,
                                                              mlp.gate_proj, mlp.up_proj, mlp.down_proj)):
            return False
    return getattr(base.lm_head, "bias", None) is None


def fits(model, ranges: dict) -> bool:
    """Whether ``ranges`` has one range of the right width for every projection of ``model``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    widths = {"head": base.lm_head.in_features}
    for i, layer in enumerate(base.model.layers):
        att, mlp = layer.self_attn, layer.mlp
        widths.update({f"{i}.qkv": att.q_proj.in_features, f"{i}.o": att.o_proj.in_features,
                       f"{i}.gate_up": mlp.gate_proj.in_features, f"{i}.down": mlp.down_proj.in_features})
    return set(ranges) == set(widths) and all(tuple(ranges[k].shape) == (w,) for k, w in widths.items())


def calibration_examples(path: Path = CALIBRATION) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def calibration_hash(path: Path = CALIBRATION) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def calibration_prompts(tokenizer, path: Path = CALIBRATION) -> list[str]:
    """The advice prompt of each calibration example's finding for its rule."""
    from ..engine import check_source
    from .prompts import advice_messages, chat_prompt, finding_block

    out = []
    for ex in calibration_examples(path):
        source = ex["code"]
        finding = next((f for f in check_source(source, f"{ex['id']}.py").findings if f.code == ex["rule"]), None)
        if finding is not None:
            out.append(chat_prompt(tokenizer, advice_messages(finding, source, finding_block(finding, source))))
    return out


def activation_ranges(model, tokenizer, prompts: list[str]) -> dict:
    """Largest absolute input of every channel of each projection (``"<layer>.<part>"`` and
    ``"head"``), over the tokens of ``prompts`` read by ``model`` (fused, fp32)."""
    import torch

    from .decoder import Decoder

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    ranges: dict = {}

    def record(name):
        def hook(module, args):
            x = args[0].detach()
            peak = x.abs().reshape(-1, x.shape[-1]).amax(0).float()
            ranges[name] = torch.maximum(ranges[name], peak) if name in ranges else peak

        return hook

    hooks = []
    for i, layer in enumerate(base.model.layers):
        att, mlp = layer.self_attn, layer.mlp
        for part, module in (("qkv", att.qkv_proj), ("o", att.o_proj), ("gate_up", mlp.gate_up_proj), ("down", mlp.down_proj)):
            hooks.append(module.register_forward_pre_hook(record(f"{i}.{part}")))
    hooks.append(base.lm_head.register_forward_pre_hook(record("head")))
    dec = Decoder(model)
    try:
        with torch.inference_mode():
            for prompt in prompts:
                dec.read(tokenizer(prompt, add_special_tokens=False).input_ids)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def smooth(model, ranges: dict, alpha: float = ALPHA) -> None:
    """Fold the smoothing scales into ``model`` (fused, fp32, its own copy) in place."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    group = heads // kv_heads

    def scales(peak, weight):
        largest = weight.abs().amax(0).clamp(min=1e-5)
        return (peak.clamp(min=1e-5) ** alpha / largest ** (1 - alpha)).clamp(min=1e-5)

    with torch.no_grad():
        for i, layer in enumerate(base.model.layers):
            att, mlp = layer.self_attn, layer.mlp
            s = scales(ranges[f"{i}.qkv"], att.qkv_proj.weight)
            layer.input_layernorm.weight.div_(s)
            att.qkv_proj.weight.mul_(s)
            s = scales(ranges[f"{i}.gate_up"], mlp.gate_up_proj.weight)
            layer.post_attention_layernorm.weight.div_(s)
            mlp.gate_up_proj.weight.mul_(s)
            s = scales(ranges[f"{i}.o"], att.o_proj.weight).view(kv_heads, group, head_dim).amax(1)
            values = att.qkv_proj.weight[(heads + kv_heads) * head_dim :]
            values.div_(s.reshape(-1, 1))
            att.o_proj.weight.mul_(s.repeat_interleave(group, 0).reshape(1, -1))
            s = scales(ranges[f"{i}.down"], mlp.down_proj.weight)
            inner = mlp.down_proj.weight.shape[1]
            mlp.gate_up_proj.weight[inner:].div_(s.reshape(-1, 1))
            mlp.down_proj.weight.mul_(s.reshape(1, -1))
        head = base.lm_head
        head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
        s = scales(ranges["head"], head.weight)
        base.model.norm.weight.div_(s)
        head.weight.mul_(s)


def select_calibration(examples, holdout: float) -> list[dict]:
    """The calibration set: the first training-split example of each rule, in corpus order
    (``examples`` as ``advisor.corpus.examples`` loads them)."""
    from ..finetune.pipeline import split_of

    chosen: dict[str, dict] = {}
    for ex in examples:
        if ex.rule not in chosen and split_of(ex.id, holdout) == "train":
            chosen[ex.rule] = {"id": ex.id, "rule": ex.rule, "code": ex.code}
    return [chosen[rule] for rule in sorted(chosen)]
