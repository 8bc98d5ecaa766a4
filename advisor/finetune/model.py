"""The model fine-tuning starts from: the advice model from the loader, or a tiny random
model of the same architecture with the real tokenizer (tests, benchmarks)."""

from __future__ import annotations

import hashlib
import json

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16)


def base_dir(model: str | None = None):
    """The safetensors directory of the base model (converted from GGUF once)."""
    from ..llm.loader import ensure_converted, resolve_model

    return ensure_converted(resolve_model(model))


def base_tokenizer(model: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir(model)))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(model: str | None = None, tiny: bool = False, seed: int = 0, dtype: str = "float32"):
    """A ``LoadedModel`` (fp32, no adapter, eval mode). ``tiny``: random 2-layer model built
    from the base model's config, seeded."""
    from ..llm.loader import LoadedModel, ModelInfo, load_model

    if not tiny:
        return load_model(model, adapter="none", dtype=dtype)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = base_dir(model)
    config = AutoConfig.from_pretrained(str(folder))
    for key, value in TINY.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    net = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    net.eval()
    tok = base_tokenizer(model)
    digest = hashlib.sha256(json.dumps({"tiny": TINY, "seed": seed, "vocab": config.vocab_size}, sort_keys=True).encode()).hexdigest()
    info = ModelInfo(name="tiny-random", kind="tiny", source=str(folder), hash=digest, weights_dir=str(folder),
                     parameters=sum(p.numel() for p in net.parameters()))
    return LoadedModel(net, tok, info)
