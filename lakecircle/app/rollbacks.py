"""``lakecircle rollback``: one bucket restored from its records, under its account's lease.

In one account (``LCC_AWS_ACCOUNT``) or a hub's member account (``--account``), the same
steps: hold the account's lease while writing (``--lease-wait``; none for a dry run or with
leases off), find the bucket's region, and restore through the write-ahead path
(:func:`lakecircle.engine.rollback.rollback`), fenced by the lease and stamped with it.
"""

from __future__ import annotations

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.app.leasing import held_for_write
from lakecircle.app.session import history_of
from lakecircle.app.wiring import build_reconciler, open_account
from lakecircle.core.definitions import Definitions
from lakecircle.engine.history import History
from lakecircle.engine.rollback import RollbackResult, rollback
from lakecircle.ports import BucketRef
from lakecircle.settings import Settings


async def restore(
    settings: Settings,
    account_id: str,
    bucket: BucketRef,
    *,
    leases: S3Adapter,
    adapter: S3Adapter,
    history: History,
    record: str | None,
    dry_run: bool,
    definitions: Definitions,
    lease_wait: float | None,
) -> RollbackResult:
    """``bucket`` restored in ``account_id`` (reached through ``adapter``) while its lease,
    under ``LCC_ENDPOINT`` (reached through ``leases``), is held."""
    async with held_for_write(
        settings, leases, account_id, dry_run=dry_run, wait=lease_wait, command="rollback"
    ) as fence:
        region = await adapter.region_of(bucket)
        return await rollback(
            adapter,
            history,
            BucketRef(bucket.name, region),
            record=record,
            dry_run=dry_run,
            definitions=definitions,
            fence=fence,
            storage_classes=settings.storage_classes,
        )


async def rollback_here(
    settings: Settings, bucket: str, *, record: str | None, dry_run: bool, lease_wait: float | None
) -> RollbackResult:
    """``lakecircle rollback`` in the one account (``LCC_AWS_ACCOUNT``)."""
    async with open_account(settings) as account:
        loaded = await build_reconciler(settings, account, None, dry_run=True).loader.load()
        return await restore(
            settings,
            settings.aws_account or "",
            BucketRef(bucket),
            leases=account.adapter,
            adapter=account.adapter,
            history=history_of(settings, account),
            record=record,
            dry_run=dry_run,
            definitions=loaded.definitions,
            lease_wait=lease_wait,
        )
