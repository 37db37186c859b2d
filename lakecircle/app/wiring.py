"""Wiring shared by the commands and the daemon: settings in, a checked S3 adapter out.

One account (``LCC_ACCOUNTS`` unset): :func:`open_account`, then :func:`build_reconciler`.
Many: :func:`open_hub`, which opens the hub's own account (where ``LCC_ENDPOINT`` and the
definitions live) as :func:`open_account` does, its account source, and what the process
shares among its accounts (:mod:`lakecircle.app.shares`: one service identity, one bound on
requests), and yields a :class:`~lakecircle.engine.hub.Hub` whose members are opened by
:func:`open_member` with a reconciler of their own, their records under ``accounts/<id>/``
below ``LCC_ENDPOINT`` (:func:`member_endpoint`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from lakecircle.adapters.retry import RequestObserver, RetryPolicy
from lakecircle.app.shares import accounts_at_once, request_slots, service_identity
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import ConfigError
from lakecircle.settings import Settings

if TYPE_CHECKING:
    from lakecircle.adapters.s3.adapter import S3Adapter
    from lakecircle.adapters.s3.roles import ServiceIdentity
    from lakecircle.adapters.slots import AccountSlots, RequestSlots
    from lakecircle.core.accounts import Account as Member
    from lakecircle.engine.hub import Hub, HubObserver
    from lakecircle.engine.leases import Fence, LeaseObserver

log = structlog.get_logger("lakecircle.app.wiring")


@asynccontextmanager
async def open_account(
    settings: Settings,
    *,
    need_endpoint: bool = True,
    retry: RetryPolicy | None = None,
    observer: RequestObserver | None = None,
    slots: AccountSlots | None = None,
) -> AsyncIterator[Account]:
    """An S3 adapter for the configured account, after the account guard has passed
    (``slots``: its way through a hub's bound on requests under way).

    Raises ConfigError for missing settings and AccountMismatch for wrong credentials
    before anything else is read.
    """
    from lakecircle.adapters.s3.adapter import S3Adapter

    settings.require("aws_account", "aws_region", *(["endpoint"] if need_endpoint else []))
    assert settings.aws_account is not None  # noqa: S101 -- checked by require()
    assert settings.aws_region is not None  # noqa: S101
    async with S3Adapter(
        account=settings.aws_account,
        region=settings.aws_region,
        concurrency=settings.concurrency,
        content_md5=settings.content_md5,
        verify_account=settings.verify_account,
        retry=retry if retry is not None else RetryPolicy.from_settings(settings),
        observer=observer,
        max_requests_per_second=settings.max_requests_per_second,
        slots=slots,
    ) as adapter:
        arn = await adapter.check_account()
        if arn is None:
            log.warning(
                "account_not_verified",
                account=settings.aws_account,
                reason="LCC_VERIFY_ACCOUNT is false: the caller's account was not checked",
            )
        else:
            log.info("account_verified", account=settings.aws_account, caller=arn)
        yield Account(adapter, arn)


@asynccontextmanager
async def open_member(
    settings: Settings,
    identity: ServiceIdentity,
    member: Member,
    *,
    slots: RequestSlots | None = None,
    retry: RetryPolicy | None = None,
    observer: RequestObserver | None = None,
) -> AsyncIterator[Account]:
    """A member account's adapter, through its role, after its identity check has passed.

    Raises :class:`~lakecircle.errors.RoleError` (the role could not be assumed) or
    :class:`~lakecircle.errors.RoleAccountMismatch` (it answered as another account) before
    anything else is read: that account fails, the others go on. The adapter has its own
    clients, retries and throttle gate (``LCC_MAX_REQUESTS_PER_SECOND`` applies to each
    account); ``slots`` is the process's :func:`~lakecircle.app.shares.request_slots`. Use
    the adapter for the member account's buckets only: records under ``LCC_ENDPOINT`` go
    through the hub's.
    """
    from lakecircle.adapters.s3.roles import MemberAdapter

    async with MemberAdapter(
        member=member,
        identity=identity,
        concurrency=settings.concurrency,
        content_md5=settings.content_md5,
        retry=retry if retry is not None else RetryPolicy.from_settings(settings),
        observer=observer,
        max_requests_per_second=settings.max_requests_per_second,
        slots=slots.account(member.id) if slots is not None else None,
    ) as adapter:
        arn = await adapter.check_account()
        log.info("account_verified", account=member.id, role=member.role_arn, caller=arn)
        yield Account(adapter, arn)


@dataclass(frozen=True)
class Account:
    adapter: S3Adapter
    caller: str | None
    """The caller's ARN, when the account was verified."""


def build_reconciler(
    settings: Settings,
    account: Account,
    definitions_dir: Path | None,
    *,
    dry_run: bool,
    allow_mass_removal: bool = False,
    keep_plans: bool = True,
    list_unmanaged: bool = False,
    fence: Fence | None = None,
) -> Reconciler:
    """The reconciler of a command or the daemon: definitions, history and guards wired
    (``fence``: the lease every bucket write asks first, with replicas).

    Writing needs ``LCC_ENDPOINT``: every write is preceded by its history record there.
    """
    from lakecircle.adapters.s3.stores import S3EndpointStore

    if not dry_run:
        settings.require("endpoint")
    adapter = account.adapter
    history = (
        History(S3EndpointStore(adapter, settings.endpoint), caller=account.caller)
        if settings.endpoint is not None
        else None
    )
    return _reconciler(
        settings,
        account,
        definition_loader(settings, adapter, definitions_dir),
        history,
        dry_run=dry_run,
        allow_mass_removal=allow_mass_removal,
        keep_plans=keep_plans,
        list_unmanaged=list_unmanaged,
        fence=fence,
    )


def definition_loader(settings: Settings, adapter: S3Adapter, definitions_dir: Path | None) -> DefinitionLoader:
    """The definitions of ``definitions_dir``, else of the S3 prefix read through ``adapter``."""
    from lakecircle.adapters.local import READERS, LocalDefinitionSource
    from lakecircle.adapters.s3.stores import S3DefinitionSource

    classes = settings.storage_classes
    if definitions_dir is not None:
        local = LocalDefinitionSource(definitions_dir)
        return DefinitionLoader(local, concurrency=min(settings.concurrency, READERS), storage_classes=classes)
    source = S3DefinitionSource(adapter, settings.definition_uri)
    return DefinitionLoader(source, concurrency=settings.concurrency, storage_classes=classes)


def _reconciler(
    settings: Settings,
    account: Account,
    loader: DefinitionLoader,
    history: History | None,
    *,
    dry_run: bool,
    allow_mass_removal: bool,
    keep_plans: bool,
    list_unmanaged: bool,
    member: Member | None = None,
    fence: Fence | None = None,
) -> Reconciler:
    adapter = account.adapter
    return Reconciler(
        adapter,
        loader,
        concurrency=settings.concurrency,
        dry_run=dry_run,
        bucket_filter=settings.bucket_filter,
        history=history,
        settle_seconds=settings.settle_seconds,
        max_removals=settings.max_removals,
        allow_mass_removal=allow_mass_removal or settings.allow_mass_removal,
        around_cycle=adapter.cycle_deadline,
        keep_plans=keep_plans,
        tags=adapter,
        list_unmanaged=list_unmanaged,
        account=member,
        fence=fence,
    )


# -- many accounts ---------------------------------------------------------------------------

RequestObservers = Callable[[str | None], RequestObserver | None]
"""The request observer of an account's adapter, by account ID (None: the hub's own)."""

AdapterOpened = Callable[[str | None, "S3Adapter"], None]
"""Told of each adapter :func:`open_hub` opens, by account ID (None: the hub's own), once verified."""


def member_endpoint(settings: Settings, account_id: str) -> str:
    """``LCC_ENDPOINT/accounts/<id>/``: where a member account's ``current/``, ``history/`` and
    ``log/`` records live (the hub's ``definition/`` stays where it is)."""
    settings.require("endpoint")
    assert settings.endpoint is not None  # noqa: S101 -- checked by require()
    return f"{settings.endpoint}accounts/{account_id}/"


def member_history(settings: Settings, hub: S3Adapter, account_id: str, caller: str | None) -> History:
    """A member account's records, written and read through the hub's adapter (the endpoint
    is in the hub's account); ``caller`` is the member's role session, which makes its writes."""
    from lakecircle.adapters.s3.stores import S3EndpointStore

    return History(S3EndpointStore(hub, member_endpoint(settings, account_id)), caller=caller)


@asynccontextmanager
async def open_hub(
    settings: Settings,
    definitions_dir: Path | None = None,
    *,
    dry_run: bool,
    only: frozenset[str] | None = None,
    keep_plans: bool = True,
    allow_mass_removal: bool = False,
    list_unmanaged: bool = False,
    observer: HubObserver | None = None,
    requests: RequestObservers | None = None,
    retry: RetryPolicy | None = None,
    replica: str | None = None,
    opened: AdapterOpened | None = None,
    leases: LeaseObserver | None = None,
    lease_wait: float | None = None,
) -> AsyncIterator[Hub]:
    """The hub of many accounts (``LCC_ACCOUNTS``), ready to run cycles; closed (every member
    account's clients and credentials) on the way out.

    The hub's own account (``LCC_AWS_ACCOUNT``: ``LCC_ENDPOINT``, the definitions) is opened
    and verified as :func:`open_account` does; members are opened when their first cycle
    starts (:func:`open_member`, through their roles) and reconciled as :class:`_HubWiring`
    builds them. ``only`` is ``--account``; ``observer`` is told of each account's cycle;
    ``requests`` and ``opened`` watch each adapter; ``replica`` names the role sessions;
    ``leases`` (the daemon): the hub shares the accounts with the other replicas, else a sync
    holds each account's lease around its cycle, waiting ``lease_wait`` for it
    (:mod:`lakecircle.app.leasing`). The daemon enters :meth:`Hub.background
    <lakecircle.engine.hub.Hub.background>` to run the accounts on their own schedules.
    """
    _require_accounts(settings, dry_run=dry_run)
    retry = retry if retry is not None else RetryPolicy.from_settings(settings)
    wiring = _HubWiring(
        settings,
        service_identity(settings, replica=replica),
        request_slots(settings),
        retry,
        dry_run=dry_run,
        allow_mass_removal=allow_mass_removal,
        keep_plans=keep_plans,
        list_unmanaged=list_unmanaged,
        requests=requests,
        opened=opened,
    )
    from lakecircle.app.leasing import hub_leases

    async with (
        wiring.open_own(definitions_dir) as own,
        hub_leases(settings, own.adapter, leases, lease_wait, dry_run=dry_run) as (sharing, hold),
        aclosing(wiring.hub(own.adapter, definitions_dir, only=only, observer=observer)) as hub,
    ):
        hub.share(sharing)
        hub.hold = hold
        yield hub


def _require_accounts(settings: Settings, *, dry_run: bool) -> None:
    """``LCC_ACCOUNTS``, and ``LCC_ENDPOINT`` unless nothing is written."""
    if settings.accounts is None:
        raise ConfigError(
            [
                "LCC_ACCOUNTS: required for many accounts but not set"
                " (organization, or an accounts file: s3://bucket/accounts.toml or a local path)"
            ]
        )
    if not dry_run:
        settings.require("endpoint")


@dataclass(frozen=True)
class _HubWiring:
    """What :func:`open_hub` wires a hub with: the process's one identity, request slots and
    retry policy, the command's guards, and the daemon's request observers and adapter watch.

    :meth:`open_own` opens the hub's own account, :meth:`hub` the hub over it, and
    :meth:`member_reconciler` each member account's reconciler when its first cycle starts.
    """

    settings: Settings
    identity: ServiceIdentity
    slots: RequestSlots
    retry: RetryPolicy
    dry_run: bool
    allow_mass_removal: bool
    keep_plans: bool
    list_unmanaged: bool
    requests: RequestObservers | None
    opened: AdapterOpened | None

    @asynccontextmanager
    async def open_own(self, definitions_dir: Path | None) -> AsyncIterator[Account]:
        """The hub's own account, opened and verified as :func:`open_account` does."""
        async with open_account(
            self.settings,
            need_endpoint=definitions_dir is None,
            retry=self.retry,
            observer=self.requests(None) if self.requests is not None else None,
            slots=self.slots.account(""),  # the hub's own share (records, definitions), never a member's
        ) as own:
            if self.opened is not None:
                self.opened(None, own.adapter)
            yield own

    def hub(
        self, own: S3Adapter, definitions_dir: Path | None, *, only: frozenset[str] | None, observer: HubObserver | None
    ) -> Hub:
        """The hub over the hub's own adapter ``own``: its account list, its definitions (or
        ``definitions_dir``'s), and its members opened by :meth:`member_reconciler`."""
        from lakecircle.adapters.accounts import account_source
        from lakecircle.engine.hub import Hub

        settings = self.settings
        source = account_source(settings, own)
        assert source is not None  # noqa: S101 -- LCC_ACCOUNTS is set (required by open_hub)
        loader = definition_loader(settings, own, definitions_dir)
        return Hub(
            loader,
            source,
            partial(self.member_reconciler, own, loader),
            accounts_at_once=accounts_at_once(settings),
            only=only,
            dry_run=self.dry_run,
            observer=observer,
        )

    @asynccontextmanager
    async def member_reconciler(
        self, own: S3Adapter, loader: DefinitionLoader, member: Member
    ) -> AsyncIterator[Reconciler]:
        """A member account's reconciler: its buckets through its role (:func:`open_member`),
        its records under ``accounts/<id>/`` through the hub's adapter ``own``, the definitions
        of the hub's ``loader``, and the guards and settings :func:`build_reconciler` gives one
        account."""
        settings = self.settings
        async with open_member(
            settings,
            self.identity,
            member,
            slots=self.slots,
            retry=self.retry,
            observer=self.requests(member.id) if self.requests is not None else None,
        ) as reached:
            if self.opened is not None:
                self.opened(member.id, reached.adapter)
            if not self.dry_run:
                settings.require("endpoint")
            history = (
                member_history(settings, own, member.id, reached.caller) if settings.endpoint is not None else None
            )
            yield _reconciler(
                settings,
                reached,
                loader,
                history,
                dry_run=self.dry_run,
                allow_mass_removal=self.allow_mass_removal,
                keep_plans=self.keep_plans,
                list_unmanaged=self.list_unmanaged,
                member=member,
            )
