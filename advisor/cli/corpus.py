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


def _writable_dir(path: str) -> None:
    import os
    from pathlib import Path

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"{path}: cannot create output directory: {exc.strerror or exc}")
    if not p.is_dir() or not os.access(p, os.W_OK):
        _fail(f"{path}: output directory is not writable")


@corpus.command()
@click.argument("root", default="corpus", type=click.Path())
@click.option("--seed", default=0, show_default=True, help="Seed for the rewrites; the same seed gives the same output.")
@click.option("-n", "--per-example", default=3, show_default=True, help="Rewrites tried per example.")
@click.option("-o", "--output", default="build/corpus-augmented", show_default=True, type=click.Path(file_okay=False), help="Directory for the augmented JSONL files.")
@click.option("--skip-invalid", is_flag=True, help="Skip corrupt JSONL lines instead of failing.")
def augment(root: str, seed: int, per_example: int, output: str, skip_invalid: bool) -> None:
    """Write seeded libcst rewrites of the examples in ROOT (renamed identifiers, functions
    moved into a class, import styles), each re-validated and de-duplicated."""
    from ..corpus.augment import augment as run_augment
    from ..corpus.augment import write_variants
    from ..corpus.examples import CorpusError, load_corpus

    try:
        loaded = load_corpus(root, skip_invalid=skip_invalid)
    except CorpusError as exc:
        _fail(str(exc))
        return
    if loaded.problems:
        for p in loaded.problems:
            click.echo(str(p), err=True)
        _fail(f"{len(loaded.problems)} corrupt line(s); fix them or pass --skip-invalid")
    if not loaded.examples:
        _fail(f"{root}: no examples to augment")
    _writable_dir(output)
    report = run_augment(loaded.examples, seed=seed, per_example=per_example)
    try:
        files = write_variants(report.variants, output)
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror or exc}")
        return
    click.echo(
        f"{len(report.variants)} variants from {len(loaded.examples)} examples into {len(files)} file(s) in {output} "
        f"(tried {report.tried}; dropped {report.dropped_invalid} invalid, {report.dropped_duplicate} duplicate; "
        f"{report.skipped_unchecked} examples of unimplemented rules skipped)"
    )


@corpus.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Directory for mined.jsonl.")
@click.option("--workers", default=2, show_default=True, help="Parser threads.")
@click.option("--min-score", default=2, show_default=True, help="Minimum threading score of a mined function.")
@click.option("--max-lines", default=60, show_default=True, help="Longest function kept.")
def build(sources: tuple[str, ...], output: str, workers: int, min_score: int, max_lines: int) -> None:
    """Mine threading-heavy functions from SOURCES (a repository, the standard library...)
    into OUTPUT/mined.jsonl, with the findings the analyzer reports in each."""
    from ..corpus.mine import mine_paths, write_mined

    _writable_dir(output)
    try:
        report = mine_paths(list(sources), workers=workers, min_score=min_score, max_lines=max_lines)
    except FileNotFoundError as exc:
        _fail(str(exc))
        return
    for err in report.errors:
        click.echo(f"skipped: {err}", err=True)
    if report.files == 0:
        _fail("no Python files found in " + ", ".join(sources))
    try:
        target = write_mined(report, output)
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror or exc}")
        return
    with_findings = sum(1 for m in report.functions if m.findings)
    click.echo(
        f"{len(report.functions)} functions ({with_findings} with findings) from {report.files} files "
        f"({report.skipped} skipped) -> {target}"
    )
