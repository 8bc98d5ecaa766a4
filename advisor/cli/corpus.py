"""``advisor corpus``: validate, augment and mine the threading corpus."""

from __future__ import annotations

import sys

import click


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group("corpus")
def corpus() -> None:
    """Work with the training corpus (examples and idiomatic programs)."""


@corpus.command()
@click.argument("root", default="corpus", type=click.Path())
@click.option("--skip-invalid", is_flag=True, help="Skip corrupt JSONL lines (and count them) instead of failing.")
@click.option("--warnings/--no-warnings", "show_warnings", default=True, help="Show fixed code that triggers other rules.")
def validate(root: str, skip_invalid: bool, show_warnings: bool) -> None:
    """Check every example in ROOT: buggy code triggers its rule, fixed code does not,
    and the idiomatic .py programs are clean. Exit 2 when anything is wrong."""
    from ..corpus.examples import CorpusError
    from ..corpus.validate import validate_corpus

    try:
        report = validate_corpus(root, skip_invalid=skip_invalid)
    except CorpusError as exc:
        _fail(str(exc))
        return
    for p in report.problems:
        click.echo(f"{p}", err=True)
    if show_warnings:
        for w in report.warnings:
            click.echo(f"warning: {w}", err=True)
    click.echo(
        f"{report.examples} examples ({report.valid} verified), {report.programs} programs, "
        f"{len(report.problems)} problem(s), {len(report.warnings)} warning(s)"
        + (f", {report.skipped} invalid line(s) skipped" if report.skipped else "")
    )
    if report.unchecked:
        rules = ", ".join(f"{r} ({n})" for r, n in sorted(report.unchecked.items()))
        click.echo(f"not verified (rule not implemented yet): {rules}")
    sys.exit(0 if report.ok else 2)
