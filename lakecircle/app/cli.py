"""The ``lakecircle`` command line: validate, plan, explain, sync, daemon, export, demo, history, rollback, schema.

Exit codes: 0 success, 1 failure (configuration errors included, printed as one line
each), and with ``plan --detailed-exitcode`` 2 when changes are pending. Plans and
summaries go to standard output (:mod:`lakecircle.app.output`), logs to standard error;
what a command opens (settings, S3, a reconciler) is :mod:`lakecircle.app.session`. The
options several commands share are :mod:`lakecircle.app.options`; with many accounts
(``LCC_ACCOUNTS``) a command goes on in :mod:`lakecircle.app.hub_commands`.
Run bare, ``python -m lakecircle`` behaves like the original entry point: one cycle as
``LCC_ACTIONS`` says.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lakecircle import __version__
from lakecircle.app.accounts import export_accounts, rollback_in_account, run_hub
from lakecircle.app.hub_commands import explain_accounts, history_accounts, plan_accounts, sync_accounts
from lakecircle.app.logs import configure_logging
from lakecircle.app.options import (
    Commands,
    account_ids,
    accounts_option,
    bucket_name,
    concurrency_option,
    definition_paths,
    definitions_option,
    lease_wait_option,
    only_accounts,
    output_option,
)
from lakecircle.app.output import (
    failed,
    history_line,
    hub_failed,
    print_explained,
    print_problems,
    summary,
    unmanaged_list,
)
from lakecircle.app.rollbacks import rollback_here
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
from lakecircle.app.wiring import open_account
from lakecircle.core.definition_schema import schema_text
from lakecircle.core.fleet_warnings import shadowed_definitions
from lakecircle.core.problems import printable
from lakecircle.core.render import plans_json, render_plan_text
from lakecircle.core.report import CycleReport, Trigger, report_document
from lakecircle.engine.records import BucketHistory
from lakecircle.engine.rollback import RollbackResult
from lakecircle.errors import LakeCircleError
from lakecircle.settings import LogFormat, LogLevel


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="lakecircle")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep S3 lifecycle rules equal to TOML definitions."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@click.argument("paths", nargs=-1, required=True, callback=definition_paths)
@output_option
def validate(paths: tuple[str, ...], output: str) -> None:
    """Check definition files, directories of them and s3://bucket/prefix/ URIs; print every problem.

    An S3 prefix is read with the AWS SDK's credentials and endpoint (and LCC_AWS_REGION,
    LCC_AWS_ACCOUNT when set); exit 1 on any error, an unreadable file included.
    """
    definitions = run(lambda: read_paths(paths))
    print_problems(definitions, output, shadowed_definitions(definitions))
    sys.exit(1 if definitions.error_count or definitions.partial else 0)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of definition files, for editors and CI (README "Editors and CI")."""
    click.echo(schema_text(), nl=False)


@cli.command()
@definitions_option
@concurrency_option
@output_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending.")
@click.option("--show-unmanaged", is_flag=True, help="List the buckets no definition selects, after the plan.")
@accounts_option
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
    only = only_accounts(settings, account_ids)
    if settings.accounts is not None:
        plan_accounts(settings, definitions_dir, only, output, detailed_exitcode, show_unmanaged)

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
@definitions_option
@concurrency_option
@click.option("--dry-run", is_flag=True, help="Plan and report, write nothing (as LCC_ACTIONS=DRYRUN).")
@click.option(
    "--allow-mass-removal", is_flag=True, help="Lift the LCC_MAX_REMOVALS guard for this run (it still logs)."
)
@accounts_option
@lease_wait_option
def sync(
    definitions_dir: Path | None,
    concurrency: int | None,
    *,
    dry_run: bool,
    allow_mass_removal: bool,
    account_ids: tuple[str, ...],
    lease_wait: float | None,
) -> None:
    """Run one cycle: make every managed bucket equal to its definition."""
    settings = command_settings(
        required=account_and(definitions_dir),
        required_to_write=() if dry_run else ("endpoint",),  # write-ahead records go under it
        concurrency=concurrency,
    )
    only = only_accounts(settings, account_ids)
    if settings.accounts is not None:
        writes = {"dry_run": dry_run or settings.dry_run, "allow_mass_removal": allow_mass_removal}
        sync_accounts(settings, definitions_dir, only, **writes, lease_wait=lease_wait)
    report = run(
        lambda: run_sync(
            settings,
            definitions_dir,
            dry_run=dry_run or settings.dry_run,
            allow_mass_removal=allow_mass_removal,
            lease_wait=lease_wait,
        )
    )
    click.echo(render_plan_text(report.plans, color=sys.stdout.isatty(), total=report.compared))
    click.echo(summary(report))
    sys.exit(1 if failed(report) else 0)


@cli.command()
@definitions_option
@concurrency_option
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
@concurrency_option
@accounts_option
def export(buckets: tuple[str, ...], output_dir: Path, concurrency: int | None, account_ids: tuple[str, ...]) -> None:
    """Write one definition file per bucket that has lifecycle rules.

    With LCC_ACCOUNTS, each account's files go under OUTPUT/<account ID>/ and say
    Accounts = ["<account ID>"].
    """
    from lakecircle.app.export import Exported, export_account

    settings = command_settings(required=ACCOUNT, concurrency=concurrency)
    only = only_accounts(settings, account_ids)
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


@cli.command()
@click.argument("bucket", callback=bucket_name)
@definitions_option
@output_option
@accounts_option
def explain(bucket: str, definitions_dir: Path | None, output: str, account_ids: tuple[str, ...]) -> None:
    """Say why a bucket gets its rules: which definitions select it (pattern, tags), what each
    gives, what is overridden, its ownership and the resulting desired configuration.

    Reads the definitions (the S3 prefix, or --definitions DIR) and, when a tag selector's
    pattern matches the bucket and an account is configured, the bucket's tags; its lifecycle
    configuration only to say whether it holds a field LakeCircle does not know (unsupported:
    never written; the rules themselves are `plan`'s). Exit 1 when the bucket's definitions
    are invalid, it is unsupported, a definition file could not be read or the bucket's tags
    could not be (the answer may be incomplete); an unmanaged bucket is exit 0.

    With LCC_ACCOUNTS, the managed accounts (those --account names) are asked which holds the
    bucket, and only the definitions whose Accounts and AccountTags admit that account apply.
    """
    settings = command_settings(required=() if definitions_dir is not None else account_and(None))
    only = only_accounts(settings, account_ids)
    if settings.accounts is not None:
        explained = explain_accounts(settings, definitions_dir, bucket, only)
    else:
        explained = run(lambda: explain_bucket(settings, definitions_dir, bucket))
    print_explained(explained, output, many=settings.accounts is not None)
    sys.exit(0 if explained.complete and explained.explanation.valid and explained.unsupported is None else 1)


@cli.command()
@click.argument("bucket", callback=bucket_name)
@output_option
@accounts_option
def history(bucket: str, output: str, account_ids: tuple[str, ...]) -> None:
    """List a bucket's change records, newest first, each with its outcome.

    An outcome is applied, failed (with the error), not_started, or unknown (a process
    stopped before it recorded one). A record that cannot be read is named on standard
    error with what is wrong; the others are still listed, and the exit code is 1.

    With LCC_ACCOUNTS, the records of every managed account (those --account names) are
    read, each account's under its header.
    """
    settings = command_settings(required=(*ACCOUNT, "endpoint"))
    only = only_accounts(settings, account_ids)
    if settings.accounts is not None:
        history_accounts(settings, bucket, only, output)

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
@click.argument("bucket", callback=bucket_name)
@click.option("--to", "record", help="An applied change record's key: restore what the bucket held before that change.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored, write nothing.")
@click.option(
    "--account",
    "account_id",
    metavar="ID",
    callback=account_ids,
    help="The account that holds the bucket, whose records are read (required with LCC_ACCOUNTS).",
)
@lease_wait_option
def rollback(
    bucket: str, record: str | None, dry_run: bool, account_id: tuple[str, ...], lease_wait: float | None
) -> None:
    """Restore what a bucket held before LakeCircle's last applied change (or before a
    recorded applied change)."""
    settings = command_settings(required=(*ACCOUNT, "endpoint"))
    only_accounts(settings, account_id)
    if settings.accounts is not None and not account_id:
        raise click.UsageError(
            "--account is required with LCC_ACCOUNTS: it names the account that holds the bucket,"
            " whose records (under accounts/<ID>/) are restored from"
        )

    async def go() -> RollbackResult:
        if account_id:
            return await rollback_in_account(
                settings, account_id[0], bucket, record=record, dry_run=dry_run, lease_wait=lease_wait
            )
        return await rollback_here(settings, bucket, record=record, dry_run=dry_run, lease_wait=lease_wait)

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
