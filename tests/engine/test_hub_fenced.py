"""A hub account whose lease went while its member was being opened (an assumed role is slow) runs
no cycle: the loss cuts the opening, and no bucket is ever written without a fence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from lakecircle.core.accounts import Account, AccountList
from lakecircle.core.report import Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.sharing import Sharing
from lakecircle.testing import LeaseFault, MemoryS3
from tests.builders import fleet, rule
from tests.engine.leasing import until
from tests.engine.test_hub import A, B, Organization, member
from tests.engine.test_sharing import D

pytestmark = pytest.mark.anyio


class SlowOpen(Organization):
    """Opening a member (assuming its role) waits for ``opened``."""

    def __init__(self, *accounts: Account, **files: bytes) -> None:
        super().__init__(*accounts, **files)
        self.opening = anyio.Event()
        self.opened_ok = anyio.Event()

    @asynccontextmanager
    async def open_member(self, account: Account) -> AsyncIterator[Reconciler]:
        if account.id == A:
            self.opening.set()
            await self.opened_ok.wait()
        async with super().open_member(account) as reconciler:
            yield reconciler


async def test_an_account_whose_lease_went_while_its_member_opened_is_not_written() -> None:
    org = SlowOpen(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")
    leases = MemoryS3()
    pod = Sharing(leases, leases, "pod-a", D, write_timeout=D / 6)
    org.hub.share(pod)
    async with org.hub.background(wait=0.02, shutdown_timeout=0.5), anyio.create_task_group() as group:
        group.start_soon(pod.run)
        await org.hub.run_cycle(Trigger.STARTUP)  # keepers for A and B; A runs once its lease opens
        with anyio.fail_after(4 * D):
            await org.opening.wait()  # A's cycle started: holds(A) was True; its member opens (STS)
        leases.lease_fault("replace", LeaseFault.FAIL)  # renewals fail from now: the lease runs out
        org.source.list = AccountList((member(B),))  # and A leaves the account list
        await org.hub.run_cycle(Trigger.RESYNC)
        # The lease runs out while the member opens: the cycle is cut there, its keeper dropped after.
        await until(lambda: A not in pod.keepers, within=3 * D)
        org.opened_ok.set()
        await until(lambda: not org.hub.schedule.busy(A), within=2 * D)  # its cycle ended (unlisted: not observed)
        group.cancel_scope.cancel()
    assert not org.stores[A].lifecycles.get("a-logs") or not org.stores[A].lifecycles["a-logs"].rules, (
        "a-logs was written after the lease was lost"
    )
    assert org.hub.runs.get(A) is None or "lease lost" in (org.hub.runs[A].error or "")
