"""The forward pass of a Llama-architecture model (SmolLM2) written out over the model's own
modules, on key/value buffers that generation manages itself.

transformers' forward builds a 4-D mask through its masking utilities on every decoding
step, dispatches attention through its interface, and PyTorch's CPU flash kernel, which SDPA
picks for grouped-query attention, costs ~0.8 ms per layer for one query token in a batch
of 8. Here the mask is an additive row kept next to the cache, one query token is attended with
two small matrix products per key/value head group, and prefill stays on SDPA. The weights,
projections (fp32, bfloat16, int8 or LoRA-wrapped), rotary embedding and norms are the model's modules.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED = frozenset({"llama"})
VERSION = 2
"""Changes when the keys/values this forward produces could differ (stored prefixes)."""
PREFILL_CHUNK = "advisor_prefill_chunk"
"""Attribute a quantizer sets on a model whose projections should see at most that many tokens
of one row per call when reading a prompt (dynamic int8: one activation scale per call)."""


def supports(model) -> bool:
    """True for the architectures this forward reproduces."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    return (
        getattr(config, "model_type", None) in SUPPORTED
        and getattr(config, "pretraining_tp", 1) == 1
        and hasattr(base, "model")
        and hasattr(base.model, "layers")
    )


def fuse_projections(model) -> int:
    """Give each layer one ``qkv_proj`` (query, key and value projections stacked) and one
    ``gate_up_proj``, used by :class:`Decoder` instead of five calls (one int8 matmul costs
    about as much as each of the ones it replaces). The plain ``nn.Linear`` modules stay, their
    weights now views into the stacked ones (no extra memory). Returns the layers fused."""
    import torch

    if not supports(model):
        return 0
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    fused = 0
    for layer in base.model.layers:
        att, mlp = layer.self_attn, layer.mlp
        parts = (att.q_proj, att.k_proj, att.v_proj, mlp.gate_proj, mlp.up_proj)
        if not all(type(p) is torch.nn.Linear for p in parts):
            continue
        att.qkv_proj = _stacked([att.q_proj, att.k_proj, att.v_proj])
        mlp.gate_up_proj = _stacked([mlp.gate_proj, mlp.up_proj])
        fused += 1
    return fused


def _stacked(linears):
    import torch

    weight = torch.cat([lin.weight.detach() for lin in linears])
    has_bias = any(lin.bias is not None for lin in linears)
    out = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias, dtype=weight.dtype)
    with torch.no_grad():
        out.weight.copy_(weight)
        if has_bias:
            out.bias.copy_(torch.cat([lin.bias.detach() if lin.bias is not None else
                                      lin.weight.new_zeros(lin.weight.shape[0]) for lin in linears]))
    start = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight = torch.nn.Parameter(out.weight.detach()[start : start + rows], lin.weight.requires_grad)
        if lin.bias is not None:
            lin.bias = torch.nn.Parameter(out.bias.detach()[start : start + rows], lin.bias.requires_grad)
        start += rows
    return out.eval()


PROMPT_PROJECTIONS = (("self_attn", "qkv_proj", ("q_proj", "k_proj", "v_proj")), ("self_attn", "o_proj", ()),
                      ("mlp", "gate_up_proj", ("gate_proj", "up_proj")), ("mlp", "down_proj", ()))


def bf16_projections(model) -> int:
    """Keep the projections :class:`Decoder` reads prompts with (stacked query/key/value,
    output, stacked gate/up, down) in bfloat16, for CPUs that multiply bfloat16 natively; the
    parts of a stacked projection become views of its bfloat16 weight. Embeddings, norms, the
    head, attention and the residual stream stay in the model's dtype: the decoder casts each
    projection's input to bfloat16 and its output back. Needs ``fuse_projections`` first;
    returns the layers converted."""
    import torch

    if not supports(model):
        return 0
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    done = 0
    for layer in base.model.layers:
        if not all(hasattr(getattr(layer, owner), name) for owner, name, _ in PROMPT_PROJECTIONS):
            continue
        for owner, name, parts in PROMPT_PROJECTIONS:
            holder = getattr(layer, owner)
            stacked = getattr(holder, name).to(torch.bfloat16)
            setattr(holder, name, stacked)
            start = 0
            for part in parts:
                lin = getattr(holder, part)
                rows = lin.weight.shape[0]
                lin.weight = torch.nn.Parameter(stacked.weight.detach()[start : start + rows], False)
                if lin.bias is not None:
                    lin.bias = torch.nn.Parameter(stacked.bias.detach()[start : start + rows], False)
                start += rows
        done += 1
    return done


@dataclass
class Cache:
    """Keys and values of a batch, per layer ``[rows, kv_heads, capacity, head_dim]``;
    ``bias[r, c]`` is 0 where row ``r`` attends to column ``c`` and -inf for padding;
    ``length`` columns are filled (the same for every row: rows are right-aligned)."""

    keys: list
    values: list
    bias: object
    length: int = 0

    @property
    def rows(self) -> int:
        return self.bias.shape[0]

    @property
    def capacity(self) -> int:
        return self.bias.shape[1]


class Decoder:
    def __init__(self, model) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = base.config
        self.body = base.model
        self.head = base.lm_head
        self.layers = list(self.body.layers)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        self.scale = self.head_dim**-0.5
        self.dtype = self.body.embed_tokens.weight.dtype
        self.split = (self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim)
        self.chunk = getattr(base, PREFILL_CHUNK, 0)
        weight = getattr(getattr(self.layers[0].self_attn, "qkv_proj", None), "weight", None) if self.layers else None
        self.compute = weight.dtype if hasattr(weight, "dtype") and weight.dtype != self.dtype else None
        """dtype the projections multiply in when it differs from the model's (``bf16_projections``)."""
        self.packed = _int8_packed(self.layers)
        """Dynamic int8 projections -> their packed weights, called without the module's wrapper
        (its call and output cast were ~5 % of an int8 decoding run)."""
        import torch

        self.int8_linear = torch.ops.quantized.linear_dynamic

    def empty(self, rows: int, capacity: int, zeros: bool = True) -> Cache:
        """A cache with nothing attended. ``zeros=False``: buffers uninitialised (the caller
        fills every column it will attend, padding included: 0 * NaN is NaN)."""
        import torch

        shape = (rows, self.kv_heads, capacity, self.head_dim)
        make = torch.zeros if zeros else torch.empty
        keys = [make(shape, dtype=self.dtype) for _ in self.layers]
        values = [make(shape, dtype=self.dtype) for _ in self.layers]
        return Cache(keys, values, torch.full((rows, capacity), float("-inf"), dtype=self.dtype))

    def read(self, ids: list[int]):
        """Logits after one row of ``ids`` read from position 0, and the cache that holds them."""
        import torch

        cache = self.empty(1, len(ids))
        cache.bias.zero_()
        return self.forward(torch.tensor([ids]), torch.arange(len(ids))[None], cache), cache

    def forward(self, ids, positions, cache: Cache):
        """Logits of the last column for ``ids`` (``[rows, S]``) at ``positions``; their keys
        and values are written at columns ``cache.length ...`` and ``length`` advances. The
        caller sets ``cache.bias`` for the new columns (0 for real tokens) beforehand."""
        import torch
        import torch.nn.functional as F

        rows, s = ids.shape
        start, end = cache.length, cache.length + s
        x = self.body.embed_tokens(ids)
        cos, sin = self.body.rotary_emb(x, positions)
        cos, sin = cos[:, None], sin[:, None]
        if s == 1:
            mask = cache.bias[:, None, None, :end]
        else:
            mask = cache.bias[:, None, None, :end].expand(rows, 1, s, end).clone()
            mask[..., start:] += torch.full((s, s), float("-inf"), dtype=self.dtype).triu(1)
            mask[..., torch.arange(s), start + torch.arange(s)] = 0
        width = x.shape[-1]
        pads = torch.isinf(cache.bias[:, start:end]).sum(1).tolist() if self.chunk and s > 1 else None
        for i, layer in enumerate(self.layers):
            att = layer.self_attn
            h = F.rms_norm(x, (width,), layer.input_layernorm.weight, self.eps)
            if hasattr(att, "qkv_proj"):
                q, k, v = self._project(att.qkv_proj, h, pads).split(self.split, dim=-1)
            else:
                q, k, v = att.q_proj(h), att.k_proj(h), att.v_proj(h)
            q = q.reshape(rows, s, self.heads, self.head_dim).transpose(1, 2)
            k = k.reshape(rows, s, self.kv_heads, self.head_dim).transpose(1, 2)
            v = v.reshape(rows, s, self.kv_heads, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            cache.keys[i][:, :, start:end] = k
            cache.values[i][:, :, start:end] = v
            keys, values = cache.keys[i][:, :, :end], cache.values[i][:, :, :end]
            if s == 1:
                grouped = q.reshape(rows, self.kv_heads, self.heads // self.kv_heads, self.head_dim)
                scores = torch.matmul(grouped, keys.transpose(-1, -2)).mul_(self.scale).add_(mask)
                out = torch.matmul(torch.softmax(scores, dim=-1), values).reshape(rows, self.heads, 1, self.head_dim)
            else:
                out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scale,
                                                     enable_gqa=self.kv_heads != self.heads)
            x = x + self._project(att.o_proj, out.transpose(1, 2).reshape(rows, s, self.heads * self.head_dim), pads)
            h = F.rms_norm(x, (width,), layer.post_attention_layernorm.weight, self.eps)
            mlp = layer.mlp
            if hasattr(mlp, "gate_up_proj"):
                gate, up = self._project(mlp.gate_up_proj, h, pads).chunk(2, dim=-1)
            else:
                gate, up = mlp.gate_proj(h), mlp.up_proj(h)
            x = x + self._project(mlp.down_proj, mlp.act_fn(gate) * up, pads)
        cache.length = end
        last = F.rms_norm(x[:, -1], (width,), self.body.norm.weight, self.eps)
        if pads is not None:
            return torch.cat([self.head(row) for row in last.split(1)])
        return self.head(last)

    def _project(self, module, x, pads):
        """``module(x)``; when reading a prompt (``pads``: each row's leading padding) with
        ``chunk`` set, each row's padding and then its tokens in runs of ``chunk`` go through
        separately, each quantized with its own scale, never with another row's."""
        if self.compute is not None:
            return module(x.to(self.compute)).to(self.dtype)
        packed = self.packed.get(module)
        if pads is None:
            return module(x) if packed is None else self.int8_linear(x, packed, True)
        import torch

        call = module if packed is None else lambda part: self.int8_linear(part, packed, True)
        out = []
        for row, pad in zip(x.unbind(0), pads):
            parts = ([row[:pad]] if pad else []) + list(row[pad:].split(self.chunk))
            out.append(torch.cat([call(part) for part in parts]))
        return torch.stack(out)


def _int8_packed(layers) -> dict:
    """Each dynamically quantized int8 projection of ``layers`` (weights with one scale per
    output channel, ``reduce_range`` activations: what its own ``forward`` computes) -> its
    packed weights."""
    import torch

    out = {}
    for layer in layers:
        for module in layer.modules():
            params = getattr(module, "_packed_params", None)
            if (params is not None and getattr(params, "dtype", None) == torch.qint8
                    and (getattr(module, "version", None) or 0) >= 4):
                out[module] = params._packed_params
    return out


def _rotate_half(x):
    import torch

    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)
