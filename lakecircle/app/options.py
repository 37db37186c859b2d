"""The command line's shared click parts: the group that exits 1 on a usage error, the
options several commands take, and the callbacks that check an argument before a command
runs (a path, an account ID, a bucket name), so a bad one is a usage error that says what
a good one looks like.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from lakecircle.core.problems import printable
from lakecircle.errors import LakeCircleError
from lakecircle.settings import Settings


class _UsageError(click.UsageError):
    exit_code = 1


class Commands(click.Group):
    """click's group, with usage errors (an unknown option, a path that does not exist)
    exiting 1 like every other failure: click's 2 would read as "changes pending" to
    ``plan --detailed-exitcode``."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _UsageError(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _UsageError(exc.format_message(), exc.ctx) from None


def definition_paths(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """``validate``'s PATHS: s3:// URIs that parse, or local paths that exist."""
    for value in values:
        if value.startswith("s3://"):
            from lakecircle.s3_uri import parse_s3_uri

            try:
                parse_s3_uri(value)
            except LakeCircleError as exc:
                raise click.BadParameter(str(exc).removeprefix("invalid configuration:").strip()) from None
        elif not os.path.lexists(value):
            raise click.BadParameter(f"Path '{printable(value)}' does not exist.")
    return values


def bucket_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A BUCKET argument S3 could hold, or a usage error that says which rule it breaks."""
    from lakecircle.core.bucket_names import name_problems

    problems = name_problems(value)
    if problems:
        raise click.BadParameter(f"{printable(value)}: {problems[0]}")
    return value


def account_ids(_: click.Context, __: click.Parameter, values: tuple[str, ...] | str | None) -> tuple[str, ...]:
    """``--account`` values: 12-digit account IDs, or a usage error that says what one looks like."""
    from lakecircle.core.accounts import account_id_problem

    given = (values,) if isinstance(values, str) else values or ()
    for value in given:
        problem = account_id_problem(value)
        if problem is not None:
            raise click.BadParameter(printable(problem))
    return given


def only_accounts(settings: Settings, ids: tuple[str, ...]) -> frozenset[str] | None:
    """The accounts ``--account`` names (None: every one); a usage error in single-account mode."""
    if not ids:
        return None
    if settings.accounts is None:
        raise click.UsageError(
            "--account names one of many accounts and needs LCC_ACCOUNTS (organization, or an accounts file);"
            " without it LakeCircle manages the one account of LCC_AWS_ACCOUNT"
        )
    return frozenset(ids)


definitions_option = click.option(
    "--definitions",
    "definitions_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read definitions from this local directory instead of the S3 prefix.",
)
concurrency_option = click.option("--concurrency", type=int, help="Buckets worked on at once [LCC_CONCURRENCY].")
output_option = click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
lease_wait_option = click.option(
    "--lease-wait",
    type=click.FloatRange(min=0),
    help="Seconds to wait for the account's lease (default: two lease durations, 60 s).",
)
accounts_option = click.option(
    "--account",
    "account_ids",
    multiple=True,
    metavar="ID",
    callback=account_ids,
    help="Only this account (repeatable; with LCC_ACCOUNTS).",
)
