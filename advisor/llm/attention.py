"""``advisor_sdpa``: transformers' SDPA attention, except that a single query token (each
decoding step) is computed with two small matrix products per key/value head group.

PyTorch's CPU flash kernel, which SDPA picks for grouped-query attention, costs about 0.8 ms
per layer for one query token over a few hundred cached keys in a batch of 8; the two products
cost a fraction of that. Prefill (many query tokens) stays on SDPA.
"""

from __future__ import annotations

from contextlib import contextmanager

NAME = "advisor_sdpa"


def decode_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Same contract as transformers' ``sdpa_attention_forward``: ``query`` is
    ``[batch, heads, q_len, dim]``, ``key``/``value`` ``[batch, kv_heads, kv_len, dim]``, the
    mask boolean (True: attend) or additive; returns ``([batch, q_len, heads, dim], None)``."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    if q_len != 1 or dropout or kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    kv_heads = key.shape[1]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(grouped, key.transpose(-1, -2))
    scores.mul_(dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores.masked_fill_(~attention_mask, float("-inf"))
        else:
            scores.add_(attention_mask)
    out = torch.matmul(torch.softmax(scores, dim=-1), value)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2), None


@contextmanager
def decoding(model):
    """``model`` (a transformers model or a peft wrapper) uses ``advisor_sdpa`` inside the
    block if it used SDPA before; any other choice is left alone."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    before = base.config._attn_implementation
    if before != "sdpa":
        yield
        return
    AttentionInterface.register(NAME, decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    base.set_attn_implementation(NAME)
    try:
        yield
    finally:
        base.set_attn_implementation(before)
