"""The ``lakecircle`` command line: validate, plan, sync, export, rollback, daemon, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import click

from lakecircle import __version__
from lakecircle.definitions import Definitions, load_definitions
from lakecircle.parse import MAX_FILE_BYTES


def read_local(paths: Sequence[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every ``*.toml`` under the given files and directories, sorted.

    A file over the size limit is not read past it: the parser refuses it by its size.
    """
    for path in paths:
        files = sorted(path.rglob("*.toml")) if path.is_dir() else [path]
        for file in files:
            with file.open("rb") as handle:
                yield str(file), handle.read(MAX_FILE_BYTES + 1)


def _print_problems(definitions: Definitions, output: str) -> None:
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "files": len(definitions.files),
                    "buckets": sorted(definitions.buckets),
                    "invalid_buckets": sorted(definitions.invalid),
                    "errors": definitions.error_count,
                    "problems": [p.as_dict() for p in definitions.problems],
                },
                indent=2,
            )
        )
        return
    for problem in definitions.problems:
        click.echo(str(problem))
    warnings = len(definitions.problems) - definitions.error_count
    click.echo(
        f"{len(definitions.files)} file(s), {len(definitions.buckets)} valid bucket(s),"
        f" {len(definitions.invalid)} invalid; {definitions.error_count} error(s), {warnings} warning(s)"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lakecircle")
def cli() -> None:
    """Keep S3 lifecycle rules equal to TOML definitions."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(paths: tuple[Path, ...], output: str) -> None:
    """Check definition files (or directories of them) and print every problem."""
    try:
        definitions = load_definitions(read_local(paths))
    except OSError as exc:
        raise click.ClickException(f"cannot read {exc.filename}: {exc.strerror}") from exc
    _print_problems(definitions, output)
    sys.exit(1 if definitions.error_count else 0)


def main() -> None:
    cli()
