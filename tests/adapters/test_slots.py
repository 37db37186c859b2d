"""The process's bound on requests under way, and each account's share of it.

The slots themselves are tested with tasks that hold them as long as a test says; the
adapters' use of them against moto's server, behind the fault proxy, where one account's
requests are made slow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from lakecircle import errors
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.roles import MemberAdapter, ServiceIdentity
from lakecircle.adapters.slots import AccountSlots, RequestSlots, default_share
from lakecircle.core.accounts import Account
from lakecircle.ports import BucketRef
from tests.conftest import MOTO_REGION
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import assumed_client

pytestmark = pytest.mark.anyio


class Peak:
    """Holds a slot per request until released, and keeps the most requests under way at once."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total_peak = 0
        self.release = anyio.Event()

    async def request(self, slots: AccountSlots) -> None:
        async with slots:
            account = slots.account_id
            self.now[account] = self.now.get(account, 0) + 1
            self.peak[account] = max(self.peak.get(account, 0), self.now[account])
            self.total_peak = max(self.total_peak, sum(self.now.values()))
            await self.release.wait()
            self.now[account] -= 1


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    ("total", "share"),
    [
        pytest.param(1, 1, id="one slot is one account's"),
        pytest.param(2, 1, id="two slots: one each"),
        pytest.param(3, 2, id="an odd bound rounds the share up"),
        pytest.param(16, 8, id="the default concurrency: eight per account"),
    ],
)
def test_an_accounts_share_is_half_the_bound_at_least_one(total: int, share: int) -> None:
    assert default_share(total) == share
    assert RequestSlots(total).per_account == share


async def test_the_process_never_has_more_requests_under_way_than_its_bound() -> None:
    slots = RequestSlots(4)
    peak = Peak()

    async with anyio.create_task_group() as tasks:
        for account in ("a", "b", "c", "d", "e"):
            for _ in range(3):
                tasks.start_soon(peak.request, slots.account(account))
        await settle()
        assert slots.in_use == 4
        peak.release.set()

    assert peak.total_peak == 4
    assert slots.in_use == 0


async def test_one_account_never_holds_more_than_its_share() -> None:
    slots = RequestSlots(4)
    peak = Peak()

    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(peak.request, slots.account("busy"))
        await settle()
        assert (slots.account("busy").in_use, slots.in_use) == (2, 2), "waiting at its share holds no process slot"
        peak.release.set()

    assert peak.peak == {"busy": 2}


async def test_a_slow_account_leaves_the_other_accounts_their_slots() -> None:
    slots = RequestSlots(4)
    slow = Peak()  # never released while the other account works
    done = []

    async def quick() -> None:
        async with slots.account("quick"):
            done.append(1)

    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(slow.request, slots.account("slow"))
        await settle()
        with anyio.fail_after(1):
            for _ in range(5):
                await quick()
        slow.release.set()

    assert done == [1] * 5
    assert slow.peak == {"slow": 2}


async def test_a_request_cancelled_while_it_waits_gives_back_its_accounts_slot() -> None:
    slots = RequestSlots(2, per_account=2)
    hold = Peak()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold.request, slots.account("a"))
        tasks.start_soon(hold.request, slots.account("a"))
        await settle()
        with anyio.move_on_after(0.05):
            await slots.account("b").__aenter__()  # waits for a process slot, then gives up
        assert slots.account("b").in_use == 0
        hold.release.set()


def test_a_bound_and_a_share_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="total"):
        RequestSlots(0)
    with pytest.raises(ValueError, match="per_account"):
        RequestSlots(4, per_account=5)


# -- the adapters, over HTTP ------------------------------------------------------------------

SLOW, QUICK = "111111111111", "222222222222"


def account(account_id: str) -> Account:
    return Account(account_id, f"arn:aws:iam::{account_id}:role/lakecircle")


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    for account_id in (SLOW, QUICK):
        assumed_client("s3", account(account_id).role_arn).create_bucket(Bucket=f"bucket-{account_id}")
    with FaultProxy(moto, delay_seconds=1.0) as started:
        yield started


async def test_a_slow_accounts_requests_leave_the_other_account_its_share(proxy: FaultProxy) -> None:
    proxy.force("GetBucketLifecycleConfiguration", f"bucket-{SLOW}", Fault.DELAY)
    slots = RequestSlots(2)
    hub = ServiceIdentity(region=MOTO_REGION, endpoint_url=proxy.url, session_name="lakecircle-slots")
    quick_took: list[float] = []

    async with (
        MemberAdapter(member=account(SLOW), identity=hub, slots=slots.account(SLOW)) as slow,
        MemberAdapter(member=account(QUICK), identity=hub, slots=slots.account(QUICK)) as quick,
    ):
        await slow.check_account()
        await quick.check_account()

        async def read_quick() -> None:
            started = time.monotonic()
            await quick.get_lifecycle(BucketRef(f"bucket-{QUICK}", MOTO_REGION))
            quick_took.append(time.monotonic() - started)

        async with anyio.create_task_group() as tasks:
            for _ in range(2):
                tasks.start_soon(slow.get_lifecycle, BucketRef(f"bucket-{SLOW}", MOTO_REGION))
            await anyio.sleep(0.2)  # the slow account's requests are under way
            assert slots.account(SLOW).in_use == 1
            await read_quick()

    assert quick_took[0] < 0.8, "the quick account did not wait for the slow one's requests"


async def test_a_slot_is_held_for_an_attempt_and_not_during_the_wait_before_a_retry(proxy: FaultProxy) -> None:
    proxy.force("GetBucketLifecycleConfiguration", f"bucket-{QUICK}", Fault.SLOWDOWN, times=2)
    slots = RequestSlots(2)
    held_while_waiting: list[int] = []

    async def sleep(seconds: float) -> None:
        held_while_waiting.append(slots.in_use)

    hub = ServiceIdentity(region=MOTO_REGION, endpoint_url=proxy.url, session_name="lakecircle-slots")
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    adapter: Any
    async with MemberAdapter(
        member=account(QUICK), identity=hub, slots=slots.account(QUICK), retry=policy, sleep=sleep
    ) as adapter:
        await adapter.get_lifecycle(BucketRef(f"bucket-{QUICK}", MOTO_REGION))

    assert held_while_waiting == [0, 0]
    assert slots.in_use == 0


async def test_a_failed_attempt_gives_its_slot_back(proxy: FaultProxy) -> None:
    proxy.force("GetBucketLifecycleConfiguration", f"bucket-{QUICK}", Fault.DENIED)
    slots = RequestSlots(2)
    hub = ServiceIdentity(region=MOTO_REGION, endpoint_url=proxy.url, session_name="lakecircle-slots")

    async with MemberAdapter(member=account(QUICK), identity=hub, slots=slots.account(QUICK)) as adapter:
        with pytest.raises(errors.AccessDenied):
            await adapter.get_lifecycle(BucketRef(f"bucket-{QUICK}", MOTO_REGION))

    assert slots.in_use == 0
