"""The fine-tuning configuration: one dataclass, saved with every checkpoint and adapter.

Free of heavy imports: the ``advisor finetune`` flags are generated from it whenever the CLI
starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

TRAINING_KEYS = ("model", "tiny", "seed", "batch_size", "grad_accum", "lr", "warmup_steps", "min_lr_ratio",
                 "weight_decay", "lora_r", "lora_alpha", "lora_dropout", "lora_layers", "target_modules", "max_len",
                 "holdout")
"""Config fields a resumed run must share with the checkpoint."""


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class FinetuneConfig:
    """Everything a run depends on; saved with every checkpoint and with the adapter.
    The ``advisor finetune`` flags are generated from these fields."""

    corpus: str = _f("corpus", "Corpus directory (*.jsonl examples, *.py programs).", cli=False)
    output: str = _f("finetune-out", "Output directory for the adapter and checkpoints.")
    model: str | None = _f(None, "Base model (GGUF file or safetensors dir); default: the advice model.")
    tiny: bool = _f(False, "Train a tiny random model of the same architecture (tests, benchmarks).")
    epochs: int = _f(1, "Passes over the training split.")
    max_steps: int = _f(0, "Train this many optimizer steps, overriding --epochs (0: --epochs decides).")
    seed: int = _f(0, "Seed for LoRA init, dropout and data order.")
    batch_size: int = _f(4, "Examples per micro-batch (per process).")
    grad_accum: int = _f(2, "Micro-batches per optimizer step.")
    lr: float = _f(3e-4, "Peak learning rate.")
    warmup_steps: int = _f(4, "Linear warm-up steps.")
    min_lr_ratio: float = _f(0.1, "Cosine decays to lr * this.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha.")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_layers: int = _f(0, "Adapt only the last N transformer layers (0: all); backward then stops there.")
    target_modules: str = _f("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "Modules to adapt (comma-separated).")
    max_len: int = _f(1024, "Longest example in tokens (longer ones are skipped and counted).")
    holdout: float = _f(0.12, "Share of examples held out for evaluation (by a hash of the id).")
    checkpoint_every: int = _f(10, "Write a checkpoint every N optimizer steps (0: never).")
    resume: bool = _f(False, "Continue from the latest checkpoint in the output directory.")
    skip_invalid: bool = _f(False, "Skip corrupt corpus lines (and count them) instead of failing.")
    workers: int = _f(2, "Threads per data-pipeline stage.")
    threads: int = _f(0, "torch intra-op threads (0: torch's default).")
    eval_loss: bool = _f(True, "Measure held-out loss before and after training.")
    fix_rate: bool = _f(True, "Measure the held-out fix rate (generation + verification) before and after.")
    eval_limit: int = _f(40, "At most this many held-out examples for eval loss and fix rate (0: all).")
    gen_tokens: int = _f(384, "Most new tokens per generated answer in the fix-rate evaluation.")
    gen_quantize: str = _f("int8", "Quantization for fix-rate generation: int8 (as advice uses) or none.")
    keep_checkpoints: bool = _f(False, "Keep the checkpoints after a successful run.")

    def to_dict(self) -> dict:
        return asdict(self)


def config_fields():
    """The config fields with their defaults and help (the CLI flags are made from these)."""
    return [f for f in fields(FinetuneConfig) if f.metadata.get("cli", True)]
