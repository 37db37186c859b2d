"""Wiring shared by the commands and the daemon: settings in, a checked S3 adapter out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import structlog

from lakecircle.retry import RequestObserver, RetryPolicy
from lakecircle.settings import Settings

if TYPE_CHECKING:
    from lakecircle.s3 import S3Adapter

log = structlog.get_logger("lakecircle.runtime")


@asynccontextmanager
async def open_account(
    settings: Settings,
    *,
    need_endpoint: bool = True,
    retry: RetryPolicy | None = None,
    observer: RequestObserver | None = None,
) -> AsyncIterator[S3Adapter]:
    """An S3 adapter for the configured account, after the account guard has passed.

    Raises ConfigError for missing settings and AccountMismatch for wrong credentials
    before anything else is read.
    """
    from lakecircle.s3 import S3Adapter

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
        yield adapter
