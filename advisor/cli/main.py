"""``advisor``: check, rules, explain (and the commands the other modules add)."""

from __future__ import annotations

import json
import sys

import click

from .. import __version__
from ..config import ConfigError, Settings, load_settings
from ..output import FORMATS, Report, render
from ..rules import all_rules, get_rule


def _split_codes(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        out.extend(v.strip().upper() for v in value.split(",") if v.strip())
    return tuple(out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="advisor")
def main() -> None:
    """advisor: finds threading bugs in Python code and explains how to fix them."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format.")
@click.option("--select", multiple=True, help="Only these rule codes or prefixes (comma-separated, repeatable).")
@click.option("--ignore", multiple=True, help="Skip these rule codes or prefixes (comma-separated, repeatable).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to read [tool.advisor] from (default: the nearest one).")
@click.option("--no-llm", is_flag=True, help="Static findings only; never load the model.")
@click.option("-q", "--quiet", is_flag=True, help="One line per finding, no code frames.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are reported.")
@click.option("--fix", is_flag=True, help="Apply safe fixes in place (atomically; each fix is re-checked first).")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply unsafe fixes (implies --fix unless --diff is given).")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and write nothing; exit 1 if there are any.")
@click.option("--model", "model_path", type=click.Path(), help="Advice model: a GGUF file or safetensors model directory.")
@click.option("--adapter", help="LoRA adapter directory for the advice model, or `none`.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, help="Worker processes (default 0: one per CPU core).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache (.advisor_cache/).")
def check(paths, fmt, select, ignore, config_path, no_llm, quiet, exit_zero, fix=False, unsafe_fixes=False, diff=False, model_path=None, adapter=None, jobs=0, no_cache=False) -> None:
    """Check FILES or directories (recursively) for threading bugs.

    Exit status: 0 no findings, 1 findings or files that could not be analysed,
    2 usage, configuration or internal error.
    """
    try:
        settings = load_settings(config_path, start=paths[0] if paths else ".")
    except ConfigError as exc:
        raise click.UsageError(f"invalid configuration: {exc}") from None
    cli_select = _split_codes(select)
    cli_ignore = _split_codes(ignore)
    _validate_codes(cli_select + cli_ignore)
    settings = Settings(
        select=cli_select or settings.select,
        ignore=settings.ignore + cli_ignore,
        exclude=settings.exclude,
        per_file_ignores=settings.per_file_ignores,
        root=settings.root,
        source=settings.source,
    )
    fixing = None
    if fix or unsafe_fixes or diff:
        from ..fixes import fix_paths

        suggest = None
        if unsafe_fixes and not no_llm:
            from .model import model_suggestions

            suggest = model_suggestions(settings, model=model_path, adapter=adapter)
        fixing = fix_paths(paths, settings, unsafe=unsafe_fixes, write=not diff, suggest=suggest)
        if diff:
            click.echo(fixing.diff, nl=False)
            click.echo(fixing.diff_notes(), err=True)
            sys.exit(1 if fixing.diff_failed and not exit_zero else 0)
        results, errors = fixing.results, fixing.errors
    else:
        from ..runner import check_paths as run_checks

        results, errors = run_checks(paths, settings, jobs=jobs or None, use_cache=not no_cache)
    report = Report(files_checked=len(results), errors=errors, fixed=fixing.fixed if fixing else 0)
    for result in results:
        report.findings.extend(result.findings)
        report.errors.extend(result.errors)
    if not no_llm and report.findings and not (fmt == "text" and quiet):
        from .model import attach_advice

        attach_advice(report, settings, model=model_path, adapter=adapter, fmt=fmt)
    if fmt == "text" and not quiet:
        for path in {f.path for f in report.findings}:
            report.sources[path] = _read_text(path)
    color = fmt == "text" and sys.stdout.isatty()
    click.echo(render(report, fmt, color=color, quiet=quiet), nl=False, color=color)
    failed = bool(report.findings or report.errors)
    sys.exit(1 if failed and not exit_zero else 0)


def _read_text(path: str) -> str:
    from ..analysis.source import SourceError, read_source

    try:
        return read_source(path).text
    except SourceError:
        return ""


def _validate_codes(codes: tuple[str, ...]) -> None:
    import re

    for code in codes:
        if not re.fullmatch(r"THR\d{0,3}", code):
            raise click.BadParameter(f"{code!r} is not a rule code or prefix (like THR001 or THR)")


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_cmd(fmt: str) -> None:
    """List every rule with its code, name and summary."""
    rules = all_rules()
    if fmt == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "summary": r.summary} for r in rules], indent=2))
        return
    for r in rules:
        click.echo(f"{r.code}  {r.name:<34} {r.summary}")


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Print a rule's documentation: what it does, why it is bad, example, fix."""
    rule = get_rule(code)
    if rule is None:
        raise click.BadParameter(f"unknown rule {code!r}; see `advisor rules`", param_hint="CODE")
    click.echo(f"{rule.code} ({rule.name})\n")
    click.echo(rule.documentation())


from .corpus import corpus as _corpus_group  # noqa: E402

main.add_command(_corpus_group)
from .map import map_cmd as _map_cmd  # noqa: E402

main.add_command(_map_cmd)
from .model import model as _model_group  # noqa: E402

main.add_command(_model_group)
from .finetune import finetune as _finetune_cmd  # noqa: E402

main.add_command(_finetune_cmd)


if __name__ == "__main__":
    main()
