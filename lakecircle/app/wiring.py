"""Wiring shared by the commands and the daemon: settings in, a checked S3 adapter out."""

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
