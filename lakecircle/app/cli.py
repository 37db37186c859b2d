"""The ``lakecircle`` command line: validate, plan, sync, export, demo.

Exit codes: 0 success, 1 failure (configuration errors included, printed as one line
each), and with ``plan --detailed-exitcode`` 2 when changes are pending. Plans and
summaries go to standard output, logs to standard error. Run bare, ``python -m
lakecircle`` behaves like the original entry point: one cycle as ``LCC_ACTIONS`` says.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import click
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakecircle import __version__
from lakecircle.adapters.local import CombinedSource, LocalDefinitionSource
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.app.logs import configure_logging
from lakecircle.app.wiring import Account, build_reconciler, open_account
from lakecircle.core.definitions import Definitions, UnreadableFile
from lakecircle.core.problems import printable
from lakecircle.core.render import plans_json, render_plan_text
from lakecircle.engine.cycle import BucketResult, BucketState, CycleReport, Guard, Reconciler, report_document
from lakecircle.engine.history import BucketHistory, ChangeRecord, History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.rollback import RollbackResult
from lakecircle.errors import LakeCircleError
from lakecircle.ports import BucketRef, DefinitionSource
from lakecircle.settings import LogFormat, LogLevel, Settings, load_settings

if TYPE_CHECKING:
    from lakecircle.adapters.s3.adapter import S3Adapter

log = structlog.get_logger("lakecircle.app.cli")

T = TypeVar("T")

PROGRESS_THRESHOLD = 36
"""Show a progress bar on a terminal when a sync manages more buckets than this."""


async def read_paths(paths: Sequence[str]) -> Definitions:
    """The definitions under local files and directories and ``s3://bucket/prefix/`` URIs, together.

    Read as a cycle reads them (:class:`~lakecircle.engine.loader.DefinitionLoader`): an entry
    that cannot be read, an empty file, a file over the size limit or a download that
    fails is an unreadable file with its reason. Raises DefinitionSourceError when a
    directory or a prefix cannot be listed to its end.
    """
    uris = [p for p in paths if p.startswith("s3://")]
    async with AsyncExitStack() as stack:
        adapter = await stack.enter_async_context(_reader(_settings())) if uris else None
        sources: list[DefinitionSource] = []
        for path in paths:
            if path.startswith("s3://"):
                from lakecircle.adapters.s3.stores import S3DefinitionSource

                assert adapter is not None  # noqa: S101 -- opened above for every URI
                sources.append(S3DefinitionSource(adapter, path, full_names=True))
            else:
                sources.append(LocalDefinitionSource(Path(path)))
        loaded = await DefinitionLoader(CombinedSource(sources)).load()
        return loaded.definitions


def _reader(settings: Settings) -> S3Adapter:
    """An S3 adapter that reads definitions for ``validate``: no STS, no LCC_AWS_ACCOUNT required.

    With LCC_AWS_ACCOUNT set, its calls carry ExpectedBucketOwner (a prefix in a bucket of
    another account is refused, as ``sync`` would refuse it); without, they carry none.
    Credentials and endpoint come the AWS SDK's way; the region is LCC_AWS_REGION, else
    the SDK's, else us-east-1 (S3 redirects to a bucket's own region).
    """
    from lakecircle.adapters.s3.adapter import S3Adapter
    from lakecircle.adapters.s3.botocore import botocore_session

    region = settings.aws_region or botocore_session().get_config_variable("region") or "us-east-1"
    return S3Adapter(
        account=settings.aws_account or "",
        region=str(region),
        concurrency=settings.concurrency,
        content_md5=settings.content_md5,
        verify_account=False,
        retry=RetryPolicy.from_settings(settings),
        max_requests_per_second=settings.max_requests_per_second,
    )


def _print_problems(definitions: Definitions, output: str) -> None:
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "files": len(definitions.files),
                    "buckets": sorted(definitions.buckets),
                    "invalid_buckets": sorted(definitions.invalid),
                    "errors": definitions.error_count,
                    "unreadable_files": [f.as_dict() for f in definitions.unreadable_files],
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


ACCOUNT: Final = ("aws_account", "aws_region")
"""The settings every command that talks to S3 needs."""


def _account_and(definitions_dir: Path | None) -> tuple[str, ...]:
    """The account, and the endpoint unless definitions come from a local directory."""
    return ACCOUNT if definitions_dir is not None else (*ACCOUNT, "endpoint")


def _settings(*, required: Sequence[str] = (), required_to_write: Sequence[str] = (), **overrides: Any) -> Settings:
    """The settings, or one error listing every problem, the command's missing required settings included."""
    try:
        settings = load_settings(required=required, required_to_write=required_to_write, **overrides)
    except LakeCircleError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.app_level, settings.log_format, app_name=settings.app_name)
    return settings


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return anyio.run(fn)
    except LakeCircleError as exc:
        raise click.ClickException(str(exc)) from None


@asynccontextmanager
async def open_reconciler(
    settings: Settings, definitions_dir: Path | None, *, dry_run: bool, allow_mass_removal: bool = False
) -> AsyncIterator[Reconciler]:
    """The S3 adapter, the account check and a reconciler, for one command."""
    async with open_account(settings, need_endpoint=definitions_dir is None) as account:
        yield build_reconciler(
            settings, account, definitions_dir, dry_run=dry_run, allow_mass_removal=allow_mass_removal
        )


def summary(report: CycleReport) -> str:
    """One paragraph a person reads after a cycle."""
    c = report.counts
    verb = "would change" if report.dry_run else "changed"
    changed = c[BucketState.DRIFTED] if report.dry_run else c[BucketState.CHANGED]
    lines = [
        f"{changed} bucket(s) {verb}, {c[BucketState.IN_SYNC]} in sync, {c[BucketState.MISSING]} missing,"
        f" {c[BucketState.INVALID]} invalid, {c[BucketState.FAILED]} failed"
        f" ({report.buckets_listed} bucket(s) in the account, {report.duration:.1f} s)."
    ]
    if not report.dry_run:
        lines.append(
            f"Rules: {report.rules_added} added, {report.rules_changed} changed, {report.rules_removed} removed."
        )
    if c[BucketState.PROPAGATING] or c[BucketState.DIVERGING]:
        lines.append(
            f"{c[BucketState.PROPAGATING]} bucket(s) propagating (just written; S3 still answers with the old"
            f" rules), {c[BucketState.DIVERGING]} diverging (rewritten only with backoff)."
        )
    for result in report.results:
        bucket = printable(result.bucket)
        if result.state in (BucketState.FAILED, BucketState.INVALID, BucketState.MISSING):
            lines.append(f"  {result.state.value}: {bucket}: {printable(result.error or '')}")
        elif result.dropped:
            lines.append(f"  {result.state.value}: {bucket}: the server did not keep {', '.join(result.dropped)}")
        if result.external:
            lines.append(f"  drift: {bucket} was changed by another writer since LakeCircle wrote it")
    if Guard.PARTIAL_DEFINITIONS in report.guards:
        lines.append("Guard: some definition files could not be read, so no rule was removed anywhere.")
    if Guard.BLAST_RADIUS in report.guards:
        lines.append(
            f"Guard: {report.removals_planned} rule removal(s) planned, more than LCC_MAX_REMOVALS"
            f" ({report.max_removals}), so none was made: every one is held back (marked ! in the plan)."
            " Review the plan, then run `lakecircle sync --allow-mass-removal` once"
            " (the daemon: LCC_ALLOW_MASS_REMOVAL=true)."
        )
    if report.definitions is not None and report.definitions.partial:
        files = report.definitions.unreadable_files
        lines.append(f"{len(files)} definition file(s) could not be read; a partial picture removes no rule:")
        lines.extend(f"  unreadable: {_unreadable_line(f)}" for f in files)
    if report.fatal is not None:
        lines.append(f"Cycle failed: {report.fatal}")
    return "\n".join(lines)


def _unreadable_line(file: UnreadableFile) -> str:
    where = f" (line {file.line})" if file.line is not None else ""
    return f"{printable(file.file)}{where}: {printable(file.reason)}"


def _failed(report: CycleReport) -> bool:
    """Exit 1: a bucket failed or is invalid, the cycle could not run, or a definition file is unreadable."""
    partial = report.definitions is not None and report.definitions.partial
    return not report.ok or partial or report.counts[BucketState.INVALID] > 0


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
            from lakecircle.settings import parse_s3_uri

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
    definitions = _run(lambda: read_paths(paths))
    _print_problems(definitions, output)
    sys.exit(1 if definitions.error_count or definitions.partial else 0)


_definitions_option = click.option(
    "--definitions",
    "definitions_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read definitions from this local directory instead of the S3 prefix.",
)
_concurrency_option = click.option("--concurrency", type=int, help="Buckets worked on at once [LCC_CONCURRENCY].")


@cli.command()
@_definitions_option
@_concurrency_option
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending.")
def plan(definitions_dir: Path | None, concurrency: int | None, output: str, detailed_exitcode: bool) -> None:
    """Show what a sync would change, writing nothing."""
    settings = _settings(required=_account_and(definitions_dir), concurrency=concurrency)

    async def go() -> CycleReport:
        async with open_reconciler(settings, definitions_dir, dry_run=True) as reconciler:
            return await reconciler.run_cycle("plan")

    report = _run(go)
    if output == "json":
        click.echo(json.dumps(plans_json(report.plans, report=report_document(report)), indent=2))
    else:
        click.echo(render_plan_text(report.plans, color=sys.stdout.isatty(), total=report.compared))
        click.echo(summary(report))
    if _failed(report):
        sys.exit(1)
    sys.exit(2 if detailed_exitcode and report.pending else 0)


@cli.command()
@_definitions_option
@_concurrency_option
@click.option("--dry-run", is_flag=True, help="Plan and report, write nothing (as LCC_ACTIONS=DRYRUN).")
@click.option(
    "--allow-mass-removal", is_flag=True, help="Lift the LCC_MAX_REMOVALS guard for this run (it still logs)."
)
def sync(definitions_dir: Path | None, concurrency: int | None, dry_run: bool, allow_mass_removal: bool) -> None:
    """Run one cycle: make every managed bucket equal to its definition."""
    settings = _settings(
        required=_account_and(definitions_dir),
        required_to_write=() if dry_run else ("endpoint",),  # write-ahead records go under it
        concurrency=concurrency,
    )
    report = _run(
        lambda: run_sync(
            settings, definitions_dir, dry_run=dry_run or settings.dry_run, allow_mass_removal=allow_mass_removal
        )
    )
    click.echo(render_plan_text(report.plans, color=sys.stdout.isatty(), total=report.compared))
    click.echo(summary(report))
    sys.exit(1 if _failed(report) else 0)


async def run_sync(
    settings: Settings, definitions_dir: Path | None, *, dry_run: bool, allow_mass_removal: bool = False
) -> CycleReport:
    console = Console(stderr=True)
    async with open_reconciler(
        settings, definitions_dir, dry_run=dry_run, allow_mass_removal=allow_mass_removal
    ) as reconciler:
        if not console.is_terminal:
            return await reconciler.run_cycle("sync")
        loaded = await reconciler.loader.load()
        total = len(loaded.definitions.buckets)
        if total <= PROGRESS_THRESHOLD:
            return await reconciler.run_cycle("sync")
        columns = (TextColumn("syncing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("sync", total=total)

            def advance(_: BucketResult) -> None:
                progress.advance(task)

            return await reconciler.run_cycle("sync", on_result=advance)


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

        settings = _settings(
            required=_account_and(definitions_dir),
            required_to_write=("endpoint",),  # write-ahead records go under it
            concurrency=concurrency,
            metrics_addr=metrics_addr,
            actions="DRYRUN" if dry_run else None,
        )
        _run(lambda: run_service(settings, definitions_dir, max_cycles=cycles, signals=signals))
    finally:
        signals.uninstall()  # the process ends now; a command run in-process gives them back
    sys.exit(0)


@cli.command()
@click.option("--bucket", "buckets", multiple=True, help="Export only this bucket (repeatable).")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@_concurrency_option
def export(buckets: tuple[str, ...], output_dir: Path, concurrency: int | None) -> None:
    """Write one definition file per bucket that has lifecycle rules."""
    from lakecircle.app.export import export_account

    settings = _settings(required=ACCOUNT, concurrency=concurrency)
    exported = _run(lambda: export_account(settings, output_dir, frozenset(buckets) or None))
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
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def history(bucket: str, output: str) -> None:
    """List a bucket's change records, newest first, each with its outcome.

    An outcome is applied, failed (with the error), not_started, or unknown (a process
    stopped before it recorded one). A record that cannot be read is named on standard
    error with what is wrong; the others are still listed, and the exit code is 1.
    """
    settings = _settings(required=(*ACCOUNT, "endpoint"))

    async def go() -> BucketHistory:
        async with open_account(settings) as account:
            return await _history_of(settings, account).bucket_history(bucket)

    found = _run(go)
    for problem in found.unreadable:
        click.echo(f"unreadable record {problem}", err=True)
    if output == "json":
        unreadable = [{"key": p.key, "unreadable": p.reason} for p in found.unreadable]
        click.echo(json.dumps([r.as_dict() for r in found.records] + unreadable, indent=2))
    elif not found.records and not found.unreadable:
        click.echo(f"no history for {printable(bucket)}")
    for record in found.records if output == "text" else ():
        click.echo(_history_line(record))
    sys.exit(1 if found.unreadable else 0)


def _history_line(record: ChangeRecord) -> str:
    doc = record.document

    def count(name: str) -> int:
        value = doc.plan.get(name)
        return len(value) if isinstance(value, list) else 0

    held = f" !{count('held')}" if count("held") else ""
    outcome = record.outcome.value + (f": {record.error}" if record.error else "")
    return printable(
        f"{record.key}  {doc.time}  {doc.kind} {doc.action}"
        f"  +{count('added')} ~{count('changed')} -{count('removed')}{held}"
        f"  cycle {doc.cycle_id}  {outcome}"
    )


def _history_of(settings: Settings, account: Account) -> History:
    from lakecircle.adapters.s3.stores import S3EndpointStore

    settings.require("endpoint")
    assert settings.endpoint is not None  # noqa: S101 -- checked by require()
    return History(S3EndpointStore(account.adapter, settings.endpoint), caller=account.caller)


@cli.command()
@click.argument("bucket", callback=_bucket_name)
@click.option("--to", "record", help="An applied change record's key: restore what the bucket held before that change.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored, write nothing.")
def rollback(bucket: str, record: str | None, dry_run: bool) -> None:
    """Restore what a bucket held before LakeCircle's last applied change (or before a
    recorded applied change)."""
    from lakecircle.engine.rollback import rollback as do_rollback

    settings = _settings(required=(*ACCOUNT, "endpoint"))

    async def go() -> RollbackResult:
        async with open_account(settings) as account:
            store = _history_of(settings, account)
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

    result = _run(go)
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
        settings = _settings(required=(*ACCOUNT, "endpoint"))
        report = _run(lambda: run_sync(settings, None, dry_run=settings.dry_run))
    except click.ClickException as exc:
        exc.show()
        return 1
    click.echo(summary(report))
    return 1 if _failed(report) else 0


def main() -> None:
    if len(sys.argv) == 1 and sys.argv[0].endswith("__main__.py"):
        sys.exit(original_entry())
    cli()
