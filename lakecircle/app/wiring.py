"""Wiring shared by the commands and the daemon: settings in, a checked S3 adapter out.

One account (``LCC_ACCOUNTS`` unset): :func:`open_account`. Many: one
:func:`service_identity` (the hub) and one :func:`request_slots` per process, then
:func:`open_member` for each member account, which yields the same :class:`Account` as
:func:`open_account` once the member account's identity is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from lakecircle.adapters.retry import RequestObserver, RetryPolicy
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.settings import Settings

if TYPE_CHECKING:
    from lakecircle.adapters.s3.adapter import S3Adapter
    from lakecircle.adapters.s3.roles import ServiceIdentity
    from lakecircle.adapters.slots import RequestSlots
    from lakecircle.core.accounts import Account as Member

log = structlog.get_logger("lakecircle.app.wiring")


@asynccontextmanager
async def open_account(
    settings: Settings,
    *,
    need_endpoint: bool = True,
    retry: RetryPolicy | None = None,
    observer: RequestObserver | None = None,
) -> AsyncIterator[Account]:
    """An S3 adapter for the configured account, after the account guard has passed.

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
    from lakecircle.adapters.local import LocalDefinitionSource
    from lakecircle.adapters.s3.stores import S3DefinitionSource, S3EndpointStore

    if not dry_run:
        settings.require("endpoint")
    adapter = account.adapter
    source = (
        LocalDefinitionSource(definitions_dir)
        if definitions_dir is not None
        else S3DefinitionSource(adapter, settings.definition_uri)
    )
    history = (
        History(S3EndpointStore(adapter, settings.endpoint), caller=account.caller)
        if settings.endpoint is not None
        else None
    )
    return Reconciler(
        adapter,
        DefinitionLoader(source, concurrency=settings.concurrency),
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
    )
