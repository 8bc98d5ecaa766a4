"""``advisor finetune CORPUS``: LoRA fine-tuning (flags generated from FinetuneConfig).

Under ``torchrun --nproc_per_node=N`` the same command trains with DDP. torch is imported
only when the command runs.
"""

from __future__ import annotations

import json
import sys
import typing

import click

from ..finetune.config import FinetuneConfig, config_fields


def _option(f):
    name = "--" + f.name.replace("_", "-")
    help = f.metadata["help"]
    hint = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if hint == "bool":
        if f.default:
            return click.option(f"{name}/--no-{f.name.replace('_', '-')}", f.name, default=True, show_default=True, help=help)
        return click.option(name, f.name, is_flag=True, default=False, help=help)
    kind = {"int": int, "float": float}.get(hint, str)
    return click.option(name, f.name, type=kind, default=f.default, show_default=f.default is not None, help=help)


def _with_config_options(fn):
    for f in reversed(config_fields()):
        fn = _option(f)(fn)
    return fn


@click.command("finetune")
@click.argument("corpus", type=click.Path())
@_with_config_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON on stdout.")
def finetune(corpus: str, quiet: bool, as_json: bool, **values) -> None:
    """Fine-tune a LoRA adapter on CORPUS (a directory of *.jsonl examples).

    Writes adapter_model.safetensors, adapter_config.json and adapter_meta.json (hashes,
    config, metrics) to --output only when the run completes. Exit 2 on bad input."""
    from ..finetune.pipeline import PipelineError
    from ..finetune.train import FinetuneError, run

    cfg = FinetuneConfig(corpus=corpus, **values)
    try:
        metrics = run(cfg, progress=not quiet)
    except (FinetuneError, PipelineError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: no adapter written; the last checkpoint is kept (continue with --resume)", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    before, after = metrics.get("before", {}), metrics.get("after", {})
    if not after and not before:
        return
    click.echo(f"adapter written to {cfg.output}")
    for key, label in (("eval", "held-out loss"), ("fix", "fix rate")):
        b, a = before.get(key), after.get(key)
        if b or a:
            fmt = (lambda m: f"{m['loss']}") if key == "eval" else (lambda m: f"{m['verified']}/{m['examples']}")
            click.echo(f"{label}: {fmt(b) if b else '-'} -> {fmt(a) if a else '-'}")
    click.echo(f"data wait: {metrics.get('data_wait_share', 0) * 100:.2f}% of training time")
