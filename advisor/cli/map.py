"""``advisor map FILE``: which functions run on which threads, what they share, under which locks."""

from __future__ import annotations

import sys

import click


@click.command("map")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid"]), default="text", show_default=True,
              help="Plain text, or a Mermaid flowchart (renders in GitHub Markdown).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="pyproject.toml to read [tool.advisor] from (default: the nearest one).")
def map_cmd(path: str, fmt: str, config_path: str | None) -> None:
    """Draw the threading map of one Python FILE, with its findings marked.

    Exit status: 0 map printed, 1 the file could not be analysed, 2 usage or config error.
    """
    import libcst as cst

    from ..analysis.extract import build_model
    from ..analysis.positions import Positions
    from ..analysis.source import SourceError, read_source
    from ..config import ConfigError, load_settings
    from ..engine import _syntax_error, check_source
    from ..mapping import build_map, render_mermaid, render_text
    from ..output.sanitize import clean

    try:
        settings = load_settings(config_path, start=path)
    except ConfigError as exc:
        raise click.UsageError(f"invalid configuration: {exc}") from None

    def fail(message: str, line: int | None = None) -> None:
        where = f"{path}:{line}:" if line else f"{path}:"
        click.echo(clean(f"{where} error: {message}"), err=True)
        sys.exit(1)

    try:
        source = read_source(path).text
    except SourceError as exc:
        fail(exc.message, exc.line)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        fail(*reversed(_syntax_error(exc)))
    except RecursionError:
        fail("too deeply nested to parse")
    try:
        model = build_model(module, path)
        result = check_source(source, path, settings)
        tmap = build_map(model, result.findings, Positions(module).span)
    except RecursionError:
        fail("too deeply nested to analyse")
    click.echo(render_mermaid(tmap) if fmt == "mermaid" else render_text(tmap), nl=False)
