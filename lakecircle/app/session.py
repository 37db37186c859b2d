"""What one command opens: its settings, an S3 reader, a reconciler, a bucket's history,
the definitions and tags ``explain`` puts together.

Every command that talks to S3 goes through here, so that a configuration problem is one
line naming every setting at fault (ARCHITECTURE.md, "Code map", app) and a
LakeCircleError ends the command with exit 1, never a traceback.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakecircle.adapters.local import CombinedSource, LocalDefinitionSource
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.app.logs import configure_logging
from lakecircle.app.wiring import Account, build_reconciler, open_account
from lakecircle.core.definitions import Definitions
from lakecircle.core.explain import Explanation, explain
from lakecircle.core.report import BucketResult, CycleReport, Trigger
from lakecircle.core.selectors import Matcher, needing_tags
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import LakeCircleError, UnsupportedConfiguration
from lakecircle.ports import BucketRef, DefinitionSource, LifecycleStore
from lakecircle.settings import Settings, load_settings

if TYPE_CHECKING:
    from lakecircle.adapters.s3.adapter import S3Adapter
    from lakecircle.core.accounts import Account as Member

T = TypeVar("T")

PROGRESS_THRESHOLD = 36
"""Show a progress bar on a terminal when a sync manages more buckets than this."""

ONE_SHOT_EARLY_READS = 10_000
"""Buckets ``plan`` and ``sync`` may read while their definitions still load, at most
(:mod:`~lakecircle.engine.early`): each holds its configuration until the picture is whole."""


async def read_paths(paths: Sequence[str]) -> Definitions:
    """The definitions under local files and directories and ``s3://bucket/prefix/`` URIs, together.

    Read as a cycle reads them (:class:`~lakecircle.engine.loader.DefinitionLoader`): an entry
    that cannot be read, an empty file, a file over the size limit or a download that
    fails is an unreadable file with its reason. Raises DefinitionSourceError when a
    directory or a prefix cannot be listed to its end. The settings are read (their problems
    end the command) for ``LCC_STORAGE_CLASSES``, which validation takes into account.
    """
    uris = [p for p in paths if p.startswith("s3://")]
    settings = command_settings()
    async with AsyncExitStack() as stack:
        adapter = await stack.enter_async_context(_reader(settings)) if uris else None
        sources: list[DefinitionSource] = []
        for path in paths:
            if path.startswith("s3://"):
                from lakecircle.adapters.s3.stores import S3DefinitionSource

                assert adapter is not None  # noqa: S101 -- opened above for every URI
                sources.append(S3DefinitionSource(adapter, path, full_names=True))
            else:
                sources.append(LocalDefinitionSource(Path(path)))
        loaded = await DefinitionLoader(CombinedSource(sources), storage_classes=settings.storage_classes).load()
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


ACCOUNT: Final = ("aws_account", "aws_region")
"""The settings every command that talks to S3 needs."""


def account_and(definitions_dir: Path | None) -> tuple[str, ...]:
    """The account, and the endpoint unless definitions come from a local directory."""
    return ACCOUNT if definitions_dir is not None else (*ACCOUNT, "endpoint")


def command_settings(
    *, required: Sequence[str] = (), required_to_write: Sequence[str] = (), **overrides: Any
) -> Settings:
    """The settings, or one error listing every problem, the command's missing required settings included."""
    try:
        settings = load_settings(required=required, required_to_write=required_to_write, **overrides)
    except LakeCircleError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.app_level, settings.log_format, app_name=settings.app_name)
    return settings


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's async body; a LakeCircleError becomes click's one-line error (exit 1).

    The body's value is handed out beside the event loop's main task, never as its result:
    on the way out, asyncio's runner looks up the SIGINT handler it installed, whose repr
    holds the main task and so the task's result (Python 3.11's ``signal`` module formats it
    in a lookup that fails), twice. A report of 5,000 buckets with their plans took 0.25 s
    of ``plan``'s CPU so (issue 18, the one-shot path).
    """
    value: list[T] = []

    async def body() -> None:
        value.append(await fn())

    try:
        anyio.run(body)
    except LakeCircleError as exc:
        raise click.ClickException(str(exc)) from None
    return value[0]


ONE_RUN_YOUNG = 10_000
"""Allocations between two collections of the youngest generation during one command's cycle (Python's default: 700)."""


@contextmanager
def collector_for_one_run() -> Iterator[None]:
    """Python's cyclic garbage collector, set for one command's cycle.

    The objects of the process so far (modules, the SDK's service models, settings) are
    moved out of the collector's reach (``gc.freeze``: they live as long as the process),
    and the youngest generation is collected every 10,000 allocations, the older ones
    less often. ``plan`` at 5,000 buckets spent 0.24 s in the collector (4% of its CPU),
    ``sync`` 0.43 s, walking thousands of definition briefs and bucket answers again and
    again; so set, 0.09 s and 0.12 s. Both are restored on the way out."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(ONE_RUN_YOUNG, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@asynccontextmanager
async def open_reconciler(
    settings: Settings,
    definitions_dir: Path | None,
    *,
    dry_run: bool,
    allow_mass_removal: bool = False,
    list_unmanaged: bool = False,
    lease_wait: float | None = None,
) -> AsyncIterator[Reconciler]:
    """The S3 adapter, the account check and a reconciler, for one command; one that writes
    holds the account's lease first, waiting ``lease_wait`` seconds at most (README "Replicas")."""
    async with open_account(settings, need_endpoint=definitions_dir is None) as account, AsyncExitStack() as stack:
        stack.enter_context(collector_for_one_run())
        fence = None
        if not dry_run and settings.lease_seconds > 0:
            from lakecircle.app.leasing import hold_lease

            fence = await stack.enter_async_context(hold_lease(settings, account.adapter, lease_wait))
        reconciler = build_reconciler(
            settings,
            account,
            definitions_dir,
            dry_run=dry_run,
            allow_mass_removal=allow_mass_removal,
            list_unmanaged=list_unmanaged,
            fence=fence,
        )
        # One cycle, definitions loaded from nothing: the buckets they name are read meanwhile.
        reconciler.early_reads = ONE_SHOT_EARLY_READS
        yield reconciler


async def run_sync(
    settings: Settings,
    definitions_dir: Path | None,
    *,
    dry_run: bool,
    allow_mass_removal: bool = False,
    lease_wait: float | None = None,
) -> CycleReport:
    """One cycle for ``sync`` (and the bare entry point), with a progress bar on a terminal
    when it manages many buckets."""
    console = Console(stderr=True)
    async with open_reconciler(
        settings, definitions_dir, dry_run=dry_run, allow_mass_removal=allow_mass_removal, lease_wait=lease_wait
    ) as reconciler:
        if not console.is_terminal:
            return await reconciler.run_cycle(Trigger.SYNC)
        loaded = await reconciler.loader.load()
        total = len(loaded.definitions.buckets)
        if total <= PROGRESS_THRESHOLD:
            return await reconciler.run_cycle(Trigger.SYNC)
        columns = (TextColumn("syncing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("sync", total=total)

            def advance(_: BucketResult) -> None:
                progress.advance(task)

            return await reconciler.run_cycle(Trigger.SYNC, on_result=advance)


def history_of(settings: Settings, account: Account) -> History:
    """The records under LCC_ENDPOINT of an opened account (``history``, ``rollback``)."""
    from lakecircle.adapters.s3.stores import S3EndpointStore

    settings.require("endpoint")
    assert settings.endpoint is not None  # noqa: S101 -- checked by require()
    return History(S3EndpointStore(account.adapter, settings.endpoint), caller=account.caller)


NO_ACCOUNT_FOR_TAGS: Final = (
    "no account to read them from (--definitions without LCC_AWS_ACCOUNT and LCC_AWS_REGION);"
    " set both to read the bucket's tags"
)


@dataclass(frozen=True, slots=True)
class Explained:
    """What ``lakecircle explain`` says, and how sure it is."""

    explanation: Explanation
    definitions: Definitions
    tags_failed: bool = False
    """A tag selector's pattern matches and the bucket's tags could not be read: the answer
    leaves those selectors out, and may be wrong (exit 1, as for an unreadable file)."""
    account: Member | None = None
    """With many accounts: the account that holds the bucket (None: none of those searched)."""
    searched: int = 0
    """With many accounts: how many accounts were asked whether they hold the bucket."""
    unreachable: tuple[str, ...] = ()
    """With many accounts, when none holds the bucket: each account that could not be asked,
    named with its role and cause (it may hold the bucket: the answer is incomplete)."""

    unsupported: str | None = None
    """The bucket is managed and its live rules hold a field LakeCircle does not know: the
    message naming it (the bucket is never written; exit 1)."""

    @property
    def complete(self) -> bool:
        return not (self.definitions.partial or self.tags_failed or self.unreachable)


async def unsupported_in(store: LifecycleStore, ref: BucketRef) -> str | None:
    """Why LakeCircle cannot manage the bucket's live rules (a field it does not know), or
    None. Any other failed read is left to ``plan``: ``explain`` answers about definitions."""
    try:
        await store.get_lifecycle(ref)
    except UnsupportedConfiguration as exc:
        return str(exc)
    except LakeCircleError:
        return None
    return None


async def explain_bucket(settings: Settings, definitions_dir: Path | None, bucket: str) -> Explained:
    """Why ``bucket`` gets its rules (``lakecircle explain``), and the definitions read for it.

    The definitions come from ``definitions_dir`` or the S3 prefix, as ``plan`` reads them.
    The bucket's tags are read (one GetBucketTagging) only when a selector whose pattern
    matches its name asks for tags, and only with an account: with ``--definitions`` and
    no account settings, those selectors are shown as needing the tags. A failed tag read
    is said, not fatal. The live lifecycle configuration of a managed bucket is read with an
    account, only to say whether it holds a field LakeCircle does not know (``unsupported``).
    """
    with_account = definitions_dir is None or (settings.aws_account is not None and settings.aws_region is not None)
    async with AsyncExitStack() as stack:
        account = (
            await stack.enter_async_context(open_account(settings, need_endpoint=definitions_dir is None))
            if with_account
            else None
        )
        source: DefinitionSource
        if definitions_dir is not None:
            source = LocalDefinitionSource(definitions_dir)
        else:
            from lakecircle.adapters.s3.stores import S3DefinitionSource

            assert account is not None  # noqa: S101 -- opened above when there is no local directory
            source = S3DefinitionSource(account.adapter, settings.definition_uri)
        loader = DefinitionLoader(source, concurrency=settings.concurrency, storage_classes=settings.storage_classes)
        definitions = (await loader.load()).definitions
        matches = Matcher(definitions.selectors).match(bucket)
        tags: dict[str, str] | None = None
        note: str | None = None
        if needing_tags(matches):
            if account is None:
                note = NO_ACCOUNT_FOR_TAGS
            else:
                try:
                    tags = await account.adapter.get_bucket_tags(BucketRef(bucket))
                except LakeCircleError as exc:
                    note = f"the read failed: {exc}"
        explanation = explain(bucket, definitions, matches, tags, note)
        unsupported = None
        if account is not None and explanation.managed:
            unsupported = await unsupported_in(account.adapter, BucketRef(bucket))
        return Explained(
            explanation, definitions, tags_failed=note is not None and account is not None, unsupported=unsupported
        )
