"""The ``lakecircle`` command line: validate, plan, explain, sync, daemon, export, demo, history, rollback.

Exit codes: 0 success, 1 failure (configuration errors included, printed as one line
each), and with ``plan --detailed-exitcode`` 2 when changes are pending. Plans and
summaries go to standard output (:mod:`lakecircle.app.output`), logs to standard error;
what a command opens (settings, S3, a reconciler) is :mod:`lakecircle.app.session`.
Run bare, ``python -m lakecircle`` behaves like the original entry point: one cycle as
``LCC_ACTIONS`` says.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from lakecircle import __version__
from lakecircle.app.accounts import (
    account_histories,
    explain_in_accounts,
    export_accounts,
    rollback_in_account,
    run_hub,
)
from lakecircle.app.logs import configure_logging
from lakecircle.app.output import (
    failed,
    history_line,
    hub_failed,
    hub_plan_json,
    hub_plan_text,
    print_problems,
    summary,
    unmanaged_list,
    unreadable_lines,
)
from lakecircle.app.session import (
    ACCOUNT,
    account_and,
    command_settings,
    explain_bucket,
    history_of,
    open_reconciler,
    read_paths,
    run,
    run_sync,
)
from lakecircle.app.wiring import build_reconciler, open_account
from lakecircle.core.explain import explanation_json, explanation_text
from lakecircle.core.fleet_warnings import shadowed_definitions
from lakecircle.core.problems import printable
from lakecircle.core.render import plans_json, render_plan_text
from lakecircle.core.report import CycleReport, Trigger, report_document
from lakecircle.engine.records import BucketHistory
from lakecircle.engine.rollback import RollbackResult
from lakecircle.errors import LakeCircleError
from lakecircle.ports import BucketRef
from lakecircle.settings import LogFormat, LogLevel, Settings


class _UsageError(click.UsageError):
    exit_code = 1


class _Commands(click.Group):
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


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="lakecircle")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep S3 lifecycle rules equal to TOML definitions."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _paths(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
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


@cli.command()
@click.argument("paths", nargs=-1, required=True, callback=_paths)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(paths: tuple[str, ...], output: str) -> None:
    """Check definition files, directories of them and s3://bucket/prefix/ URIs; print every problem.

    An S3 prefix is read with the AWS SDK's credentials and endpoint (and LCC_AWS_REGION,
    LCC_AWS_ACCOUNT when set); exit 1 on any error, an unreadable file included.
    """
    definitions = run(lambda: read_paths(paths))
    print_problems(definitions, output, shadowed_definitions(definitions))
    sys.exit(1 if definitions.error_count or definitions.partial else 0)


_definitions_option = click.option(
    "--definitions",
    "definitions_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read definitions from this local directory instead of the S3 prefix.",
)
_concurrency_option = click.option("--concurrency", type=int, help="Buckets worked on at once [LCC_CONCURRENCY].")


def _account_ids(_: click.Context, __: click.Parameter, values: tuple[str, ...] | str | None) -> tuple[str, ...]:
    """``--account`` values: 12-digit account IDs, or a usage error that says what one looks like."""
    from lakecircle.core.accounts import account_id_problem

    given = (values,) if isinstance(values, str) else values or ()
    for value in given:
        problem = account_id_problem(value)
        if problem is not None:
            raise click.BadParameter(printable(problem))
    return given


_accounts_option = click.option(
    "--account",
    "account_ids",
    multiple=True,
    metavar="ID",
    callback=_account_ids,
    help="Only this account (repeatable; with LCC_ACCOUNTS).",
)


def _only(settings: Settings, account_ids: tuple[str, ...]) -> frozenset[str] | None:
    """The accounts ``--account`` names (None: every one); a usage error in single-account mode."""
    if not account_ids:
        return None
    if settings.accounts is None:
        raise click.UsageError(
            "--account names one of many accounts and needs LCC_ACCOUNTS (organization, or an accounts file);"
            " without it LakeCircle manages the one account of LCC_AWS_ACCOUNT"
        )
    return frozenset(account_ids)


@cli.command()
@_definitions_option
@_concurrency_option
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending.")
@click.option("--show-unmanaged", is_flag=True, help="List the buckets no definition selects, after the plan.")
@_accounts_option
def plan(  # noqa: PLR0917 -- click passes each option
    definitions_dir: Path | None,
    concurrency: int | None,
    output: str,
    detailed_exitcode: bool,
    show_unmanaged: bool,
    account_ids: tuple[str, ...],
) -> None:
    """Show what a sync would change, writing nothing."""
    settings = command_settings(required=account_and(definitions_dir), concurrency=concurrency)
    only = _only(settings, account_ids)
    if settings.accounts is not None:
        _plan_accounts(settings, definitions_dir, only, output, detailed_exitcode, show_unmanaged)

    async def go() -> CycleReport:
        async with open_reconciler(settings, definitions_dir, dry_run=True, list_unmanaged=show_unmanaged) as r:
            return await r.run_cycle(Trigger.PLAN)

    report = run(go)
    if output == "json":
        extra = {"unmanaged": list(report.unmanaged)} if show_unmanaged else {}
        click.echo(json.dumps(plans_json(report.plans, report=report_document(report), **extra), indent=2))
    else:
        click.echo(render_plan_text(report.plans, color=sys.stdout.isatty(), total=report.compared))
        click.echo(summary(report))
        if show_unmanaged:
            click.echo(unmanaged_list(report))
    if failed(report):
        sys.exit(1)
    sys.exit(2 if detailed_exitcode and report.pending else 0)


@cli.command()
@_definitions_option
@_concurrency_option
@click.option("--dry-run", is_flag=True, help="Plan and report, write nothing (as LCC_ACTIONS=DRYRUN).")
@click.option(
    "--allow-mass-removal", is_flag=True, help="Lift the LCC_MAX_REMOVALS guard for this run (it still logs)."
)
@_accounts_option
def sync(
    definitions_dir: Path | None,
    concurrency: int | None,
    dry_run: bool,
    allow_mass_removal: bool,
    account_ids: tuple[str, ...],
) -> None:
    """Run one cycle: make every managed bucket equal to its definition."""
    settings = command_settings(
        required=account_and(definitions_dir),
        required_to_write=() if dry_run else ("endpoint",),  # write-ahead records go under it
        concurrency=concurrency,
    )
    only = _only(settings, account_ids)
    if settings.accounts is not None:
        hub = run(
            lambda: run_hub(
                settings,
                definitions_dir,
                Trigger.SYNC,
                dry_run=dry_run or settings.dry_run,
                only=only,
                allow_mass_removal=allow_mass_removal,
            )
        )
        click.echo(hub_plan_text(hub, color=sys.stdout.isatty()))
        click.echo(summary(hub.report, hub))
        sys.exit(1 if hub_failed(hub) else 0)
    report = run(
        lambda: run_sync(
            settings, definitions_dir, dry_run=dry_run or settings.dry_run, allow_mass_removal=allow_mass_removal
        )
    )
    click.echo(render_plan_text(report.plans, color=sys.stdout.isatty(), total=report.compared))
    click.echo(summary(report))
    sys.exit(1 if failed(report) else 0)


@cli.command()
@_definitions_option
@_concurrency_option
@click.option("--metrics-addr", help="HOST:PORT for /metrics, /healthz, /readyz [LCC_METRICS_ADDR].")
@click.option("--dry-run", is_flag=True, help="Monitor drift only, write nothing (as LCC_ACTIONS=DRYRUN).")
@click.option("--cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
def daemon(
    definitions_dir: Path | None,
    concurrency: int | None,
    metrics_addr: str | None,
    dry_run: bool,
    cycles: int | None,
) -> None:
    """Run as a service: poll, resync, sync on SIGHUP, stop on SIGTERM; serve metrics."""
    from lakecircle.service.signals import SignalInbox, take_early

    # Before anything slow (the launcher installed it even earlier, when it could): from
    # here on SIGTERM and SIGINT stop the daemon (exit 0) and SIGHUP asks for a cycle,
    # even while it starts.
    signals = take_early() or SignalInbox().install()
    try:
        from lakecircle.app.serve import run_service

        settings = command_settings(
            required=account_and(definitions_dir),
            required_to_write=("endpoint",),  # write-ahead records go under it
            concurrency=concurrency,
            metrics_addr=metrics_addr,
            actions="DRYRUN" if dry_run else None,
        )
        run(lambda: run_service(settings, definitions_dir, max_cycles=cycles, signals=signals))
    finally:
        signals.uninstall()  # the process ends now; a command run in-process gives them back
    sys.exit(0)


@cli.command()
@click.option("--bucket", "buckets", multiple=True, help="Export only this bucket (repeatable).")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@_concurrency_option
@_accounts_option
def export(buckets: tuple[str, ...], output_dir: Path, concurrency: int | None, account_ids: tuple[str, ...]) -> None:
    """Write one definition file per bucket that has lifecycle rules.

    With LCC_ACCOUNTS, each account's files go under OUTPUT/<account ID>/ and say
    Accounts = ["<account ID>"].
    """
    from lakecircle.app.export import Exported, export_account

    settings = command_settings(required=ACCOUNT, concurrency=concurrency)
    only = _only(settings, account_ids)
    exported: Exported
    if settings.accounts is not None:
        exported = run(lambda: export_accounts(settings, output_dir, frozenset(buckets) or None, only))
    else:
        exported = run(lambda: export_account(settings, output_dir, frozenset(buckets) or None))
    for path in exported.written:
        click.echo(str(path))
    click.echo(f"{len(exported.written)} definition file(s) written to {output_dir}")
    for problem in exported.problems:
        click.echo(f"  {printable(problem)}")
    sys.exit(1 if exported.problems else 0)


@cli.command()
@click.option("--cycles", type=click.IntRange(min=1), help="Stop after this many daemon cycles.")
@click.option("--metrics-addr", default="127.0.0.1:9739", show_default=True, help="HOST:PORT for /metrics.")
def demo(cycles: int | None, metrics_addr: str) -> None:
    """Run LakeCircle against an S3 server inside this process: no AWS needed."""
    from lakecircle.app.demo import run_demo

    configure_logging(LogLevel.WARNING, LogFormat.AUTO)
    try:
        code = run_demo(echo=click.echo, cycles=cycles, metrics_addr=metrics_addr)
    except LakeCircleError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def _bucket_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A BUCKET argument S3 could hold, or a usage error that says which rule it breaks."""
    from lakecircle.core.bucket_names import name_problems

    problems = name_problems(value)
    if problems:
        raise click.BadParameter(f"{printable(value)}: {problems[0]}")
    return value


@cli.command()
@click.argument("bucket", callback=_bucket_name)
@_definitions_option
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_accounts_option
def explain(bucket: str, definitions_dir: Path | None, output: str, account_ids: tuple[str, ...]) -> None:
    """Say why a bucket gets its rules: which definitions select it (pattern, tags), what each
    gives, what is overridden, its ownership and the resulting desired configuration.

    Reads the definitions (the S3 prefix, or --definitions DIR) and, when a tag selector's
    pattern matches the bucket and an account is configured, the bucket's tags; never its
    lifecycle configuration (that is `plan`). Exit 1 when the bucket's definitions are
    invalid, a definition file could not be read or the bucket's tags could not be (the
    answer may be incomplete); an unmanaged bucket is exit 0.

    With LCC_ACCOUNTS, the managed accounts (those --account names) are asked which holds the
    bucket, and only the definitions whose Accounts and AccountTags admit that account apply.
    """
    settings = command_settings(required=() if definitions_dir is not None else account_and(None))
    only = _only(settings, account_ids)
    if settings.accounts is not None:
        try:
            settings.require(*ACCOUNT)  # the hub reads the account list even with --definitions
        except LakeCircleError as exc:
            raise click.ClickException(str(exc)) from None
        explained = run(lambda: explain_in_accounts(settings, definitions_dir, bucket, only))
    else:
        explained = run(lambda: explain_bucket(settings, definitions_dir, bucket))
    explanation, definitions = explained.explanation, explained.definitions
    many = settings.accounts is not None
    if output == "json":
        document = explanation_json(explanation)
        document["unreadable_files"] = [f.as_dict() for f in definitions.unreadable_files]
        if many:
            document.setdefault("account", None)
            document.setdefault("out_of_scope", [])
            document["accounts_searched"] = explained.searched
            document["unreachable_accounts"] = list(explained.unreachable)
        click.echo(json.dumps(document, indent=2))
    else:
        text = explanation_text(explanation).split("\n")
        if many and explained.account is None:
            text.insert(
                1,
                f"account: none of the {explained.searched} managed account(s) searched holds it;"
                " every definition is shown as it would apply in any account",
            )
        click.echo("\n".join(text))
    for unreachable in explained.unreachable:
        click.echo(f"warning: could not ask {printable(unreachable)}", err=True)
    if definitions.partial:
        click.echo("warning: some definition files could not be read, so this picture may be incomplete:", err=True)
        for line in unreadable_lines(definitions):
            click.echo(f"  unreadable: {line}", err=True)
    if explained.tags_failed:
        click.echo(
            "warning: the bucket's tags could not be read, so the selectors that need them are left out", err=True
        )
    sys.exit(0 if explained.complete and explanation.valid else 1)


@cli.command()
@click.argument("bucket", callback=_bucket_name)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_accounts_option
def history(bucket: str, output: str, account_ids: tuple[str, ...]) -> None:
    """List a bucket's change records, newest first, each with its outcome.

    An outcome is applied, failed (with the error), not_started, or unknown (a process
    stopped before it recorded one). A record that cannot be read is named on standard
    error with what is wrong; the others are still listed, and the exit code is 1.

    With LCC_ACCOUNTS, the records of every managed account (those --account names) are
    read, each account's under its header.
    """
    settings = command_settings(required=(*ACCOUNT, "endpoint"))
    only = _only(settings, account_ids)
    if settings.accounts is not None:
        _history_accounts(settings, bucket, only, output)

    async def go() -> BucketHistory:
        async with open_account(settings) as account:
            return await history_of(settings, account).bucket_history(bucket)

    found = run(go)
    for problem in found.unreadable:
        click.echo(f"unreadable record {problem}", err=True)
    if output == "json":
        unreadable = [{"key": p.key, "unreadable": p.reason} for p in found.unreadable]
        click.echo(json.dumps([r.as_dict() for r in found.records] + unreadable, indent=2))
    elif not found.records and not found.unreadable:
        click.echo(f"no history for {printable(bucket)}")
    for record in found.records if output == "text" else ():
        click.echo(history_line(record))
    sys.exit(1 if found.unreadable else 0)


@cli.command()
@click.argument("bucket", callback=_bucket_name)
@click.option("--to", "record", help="An applied change record's key: restore what the bucket held before that change.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored, write nothing.")
@click.option(
    "--account",
    "account_id",
    metavar="ID",
    callback=_account_ids,
    help="The account that holds the bucket, whose records are read (required with LCC_ACCOUNTS).",
)
def rollback(bucket: str, record: str | None, dry_run: bool, account_id: tuple[str, ...]) -> None:
    """Restore what a bucket held before LakeCircle's last applied change (or before a
    recorded applied change)."""
    from lakecircle.engine.rollback import rollback as do_rollback

    settings = command_settings(required=(*ACCOUNT, "endpoint"))
    _only(settings, account_id)
    if settings.accounts is not None and not account_id:
        raise click.UsageError(
            "--account is required with LCC_ACCOUNTS: it names the account that holds the bucket,"
            " whose records (under accounts/<ID>/) are restored from"
        )

    async def go() -> RollbackResult:
        if account_id:
            return await rollback_in_account(settings, account_id[0], bucket, record=record, dry_run=dry_run)
        async with open_account(settings) as account:
            store = history_of(settings, account)
            loaded = await build_reconciler(settings, account, None, dry_run=True).loader.load()
            region = await account.adapter.region_of(BucketRef(bucket))
            return await do_rollback(
                account.adapter,
                store,
                BucketRef(bucket, region),
                record=record,
                dry_run=dry_run,
                definitions=loaded.definitions,
            )

    result = run(go)
    for problem in result.unreadable:
        click.echo(f"unreadable record {problem}", err=True)
    click.echo(printable(f"restoring {bucket} from {result.source}"))
    click.echo(render_plan_text([result.plan], color=sys.stdout.isatty()))
    if result.applied:
        click.echo(f"rolled back; change record {result.history}")
    elif not dry_run and not result.plan.has_changes:
        click.echo("nothing to do: the bucket already holds that configuration")
    if result.undone_by_definitions:
        click.echo(
            f"warning: the definitions of {bucket} differ from the restored configuration; the next sync"
            " (or the running daemon's next cycle) will write them back. Change the definitions to keep it.",
            err=True,
        )
    sys.exit(1 if result.unreadable else 0)


def _plan_accounts(  # noqa: PLR0917 -- plan's options, given once
    settings: Settings,
    definitions_dir: Path | None,
    only: frozenset[str] | None,
    output: str,
    detailed_exitcode: bool,
    show_unmanaged: bool,
) -> None:
    """``plan`` with many accounts: the hub's cycle, grouped by account; exits."""
    hub = run(
        lambda: run_hub(settings, definitions_dir, Trigger.PLAN, dry_run=True, only=only, list_unmanaged=show_unmanaged)
    )
    if output == "json":
        click.echo(json.dumps(hub_plan_json(hub, show_unmanaged=show_unmanaged), indent=2))
    else:
        click.echo(hub_plan_text(hub, color=sys.stdout.isatty()))
        click.echo(summary(hub.report, hub))
        if show_unmanaged:
            click.echo(unmanaged_list(hub.report, hub))
    if hub_failed(hub):
        sys.exit(1)
    sys.exit(2 if detailed_exitcode and hub.report.pending else 0)


def _history_accounts(settings: Settings, bucket: str, only: frozenset[str] | None, output: str) -> None:
    """``history`` with many accounts: each account's records under its header; exits."""
    found = run(lambda: account_histories(settings, bucket, only))
    unreadable = False
    for account_id, records in found:
        for problem in records.unreadable:
            unreadable = True
            click.echo(f"unreadable record of account {account_id}: {problem}", err=True)
    if output == "json":
        entries = [
            {"account": account_id, **entry}
            for account_id, records in found
            for entry in [r.as_dict() for r in records.records]
            + [{"key": p.key, "unreadable": p.reason} for p in records.unreadable]
        ]
        click.echo(json.dumps(entries, indent=2))
    else:
        shown = [(account_id, records) for account_id, records in found if records.records]
        for account_id, records in shown:
            click.echo(f"account {account_id}:")
            for record in records.records:
                click.echo(f"  {history_line(record)}")
        if not shown and not unreadable:
            click.echo(f"no history for {printable(bucket)} in {len(found)} account(s)")
    sys.exit(1 if unreadable else 0)


def original_entry() -> int:
    """The original entry point: one cycle as LCC_ACTIONS says, 0 on success, 1 on failure."""
    try:
        settings = command_settings(required=(*ACCOUNT, "endpoint"))
        if settings.accounts is not None:
            hub = run(lambda: run_hub(settings, None, Trigger.SYNC, dry_run=settings.dry_run))
        else:
            report = run(lambda: run_sync(settings, None, dry_run=settings.dry_run))
    except click.ClickException as exc:
        exc.show()
        return 1
    if settings.accounts is not None:
        click.echo(summary(hub.report, hub))
        return 1 if hub_failed(hub) else 0
    click.echo(summary(report))
    return 1 if failed(report) else 0


def main() -> None:
    if len(sys.argv) == 1 and sys.argv[0].endswith("__main__.py"):
        sys.exit(original_entry())
    cli()
