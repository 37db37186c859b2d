"""Wiring shared by the commands and the daemon: settings in, a checked S3 adapter out.

One account (``LCC_ACCOUNTS`` unset): :func:`open_account`, then :func:`build_reconciler`.
Many: :func:`open_hub`, which opens the hub's own account (where ``LCC_ENDPOINT`` and the
definitions live) as :func:`open_account` does, its account source, one
:func:`service_identity` and one :func:`request_slots` for the process, and yields a
:class:`~lakecircle.engine.hub.Hub` whose members are opened by :func:`open_member` (the
same :class:`Account` as :func:`open_account`, once the member account's identity is
checked) and reconciled by :func:`build_member_reconciler`, their records under
``accounts/<id>/`` below ``LCC_ENDPOINT`` (:func:`member_endpoint`).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from lakecircle.adapters.retry import RequestObserver, RetryPolicy
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


def service_identity(settings: Settings, *, replica: str | None = None) -> ServiceIdentity:
    """The hub: the service's own identity, from which every member account's role is assumed.

    Its STS is ``LCC_AWS_REGION``'s (the SDK's endpoint settings apply); the RoleSessionName
    is ``lakecircle-<replica>``, the host name when no replica is named.
    """
    from lakecircle.adapters.s3.roles import ServiceIdentity, role_session_name

    settings.require("aws_region")
    assert settings.aws_region is not None  # noqa: S101 -- checked by require()
    return ServiceIdentity(region=settings.aws_region, session_name=role_session_name(replica))


def request_slots(settings: Settings) -> RequestSlots:
    """``LCC_CONCURRENCY`` requests under way across every member account, half of them at most for one."""
    from lakecircle.adapters.slots import RequestSlots

    return RequestSlots(settings.concurrency)


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
    account); ``slots`` is the process's :func:`request_slots`. Use the adapter for the
    member account's buckets only: records under ``LCC_ENDPOINT`` go through the hub's.
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
) -> Reconciler:
    """The reconciler of a command or the daemon: definitions, history and guards wired.

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
    )


def definition_loader(settings: Settings, adapter: S3Adapter, definitions_dir: Path | None) -> DefinitionLoader:
    """The definitions of ``definitions_dir``, else of the S3 prefix read through ``adapter``."""
    from lakecircle.adapters.local import LocalDefinitionSource
    from lakecircle.adapters.s3.stores import S3DefinitionSource

    source = (
        LocalDefinitionSource(definitions_dir)
        if definitions_dir is not None
        else S3DefinitionSource(adapter, settings.definition_uri)
    )
    return DefinitionLoader(source, concurrency=settings.concurrency)


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
    )


# -- many accounts ---------------------------------------------------------------------------

RequestObservers = Callable[[str | None], RequestObserver | None]
"""The request observer of an account's adapter, by account ID (None: the hub's own adapter);
how the daemon gives each account's requests an ``account`` label."""

AdapterOpened = Callable[[str | None, "S3Adapter"], None]
"""Told of each adapter :func:`open_hub` opens, by account ID (None: the hub's own), once it
is verified: how the daemon watches each account's throttle gate (``adapter.gate``)."""


def member_endpoint(settings: Settings, account_id: str) -> str:
    """``LCC_ENDPOINT/accounts/<id>/``: where a member account's ``current/``, ``previous/``,
    ``history/`` and ``log/`` records live (the hub's ``definition/`` stays where it is)."""
    settings.require("endpoint")
    assert settings.endpoint is not None  # noqa: S101 -- checked by require()
    return f"{settings.endpoint}accounts/{account_id}/"


def member_history(settings: Settings, hub: S3Adapter, account_id: str, caller: str | None) -> History:
    """A member account's records, written and read through the hub's adapter (the endpoint
    is in the hub's account); ``caller`` is the member's role session, which makes its writes."""
    from lakecircle.adapters.s3.stores import S3EndpointStore

    return History(S3EndpointStore(hub, member_endpoint(settings, account_id)), caller=caller)


def build_member_reconciler(
    settings: Settings,
    hub: S3Adapter,
    member: Member,
    opened: Account,
    loader: DefinitionLoader,
    *,
    dry_run: bool,
    allow_mass_removal: bool = False,
    keep_plans: bool = True,
    list_unmanaged: bool = False,
) -> Reconciler:
    """A member account's reconciler: its buckets through ``opened`` (its role), its records
    under ``accounts/<id>/`` through the hub's adapter, the definitions of the hub's
    ``loader``, and the guards and settings :func:`build_reconciler` gives one account."""
    if not dry_run:
        settings.require("endpoint")
    history = member_history(settings, hub, member.id, opened.caller) if settings.endpoint is not None else None
    return _reconciler(
        settings,
        opened,
        loader,
        history,
        dry_run=dry_run,
        allow_mass_removal=allow_mass_removal,
        keep_plans=keep_plans,
        list_unmanaged=list_unmanaged,
        member=member,
    )


def accounts_at_once(settings: Settings) -> int:
    """How many member accounts run their cycle at once: one per four of ``LCC_CONCURRENCY``'s
    slots, at least two (four with the default 16).

    One account holds at most half of the slots (:func:`request_slots`), so fewer than two
    would leave half of the bound unused, and a long account would delay every other
    account's cycle. An account rarely keeps its whole share busy: its AssumeRole and
    identity check, each ListBuckets page (one request at a time) and a small account's few
    reads leave most of it idle, so more accounts run at once as the bound grows. More than
    that only adds accounts waiting for slots, with their clients open.
    """
    return max(2, math.ceil(settings.concurrency / 4))


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
) -> AsyncIterator[Hub]:
    """The hub of many accounts (``LCC_ACCOUNTS``), ready to run cycles; closed (every member
    account's clients and credentials) on the way out.

    The hub's own account (``LCC_AWS_ACCOUNT``, where ``LCC_ENDPOINT`` and the definitions
    live) is opened and verified as :func:`open_account` does: a wrong account stops here,
    before anything is read. Its adapter reads the definitions (or ``definitions_dir``) once
    per cycle for every account, the account source and every member's records. Each member
    account is opened when its first cycle starts (:func:`open_member`, through its role,
    with the process's :func:`request_slots`), and reconciled by
    :func:`build_member_reconciler`. ``only`` is ``--account``; ``observer`` is told of each
    account's cycle (metrics per account); ``requests`` gives each adapter's request
    observer (:data:`RequestObservers`); ``replica`` names the role sessions; ``opened`` is
    told of each adapter once verified (:data:`AdapterOpened`).
    """
    from lakecircle.adapters.accounts import account_source
    from lakecircle.engine.hub import Hub

    if settings.accounts is None:
        raise ConfigError(
            [
                "LCC_ACCOUNTS: required for many accounts but not set"
                " (organization, or an accounts file: s3://bucket/accounts.toml or a local path)"
            ]
        )
    if not dry_run:
        settings.require("endpoint")
    retry = retry if retry is not None else RetryPolicy.from_settings(settings)
    identity = service_identity(settings, replica=replica)
    slots = request_slots(settings)
    async with open_account(
        settings,
        need_endpoint=definitions_dir is None,
        retry=retry,
        observer=requests(None) if requests is not None else None,
        slots=slots.account(""),  # the hub's own share (records, definitions), never a member's
    ) as own:
        if opened is not None:
            opened(None, own.adapter)
        source = account_source(settings, own.adapter)
        assert source is not None  # noqa: S101 -- LCC_ACCOUNTS is set (required above)
        loader = definition_loader(settings, own.adapter, definitions_dir)

        @asynccontextmanager
        async def member(account: Member) -> AsyncIterator[Reconciler]:
            async with open_member(
                settings,
                identity,
                account,
                slots=slots,
                retry=retry,
                observer=requests(account.id) if requests is not None else None,
            ) as reached:
                if opened is not None:
                    opened(account.id, reached.adapter)
                yield build_member_reconciler(
                    settings,
                    own.adapter,
                    account,
                    reached,
                    loader,
                    dry_run=dry_run,
                    allow_mass_removal=allow_mass_removal,
                    keep_plans=keep_plans,
                    list_unmanaged=list_unmanaged,
                )

        hub = Hub(
            loader,
            source,
            member,
            accounts_at_once=accounts_at_once(settings),
            only=only,
            dry_run=dry_run,
            observer=observer,
        )
        try:
            yield hub
        finally:
            await hub.aclose()
