"""Wiring of leases (app/leasing.py): the commands' holds, and the leases' own way to S3.

The lease requests go through an adapter of their own beside the account's, so that a
renewal never waits behind the account's bucket work (its rate limit, its throttle gate, a
hub's slots). Against moto's server over HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from lakecircle.app import leasing
from lakecircle.app.wiring import open_account
from lakecircle.core.lease import Transition
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.ports import BucketRef
from lakecircle.settings import Settings
from lakecircle.testing import MemoryS3
from tests.adapters.test_s3 import create_bucket
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.engine.leasing import until

pytestmark = pytest.mark.anyio

ENDPOINT = "lease-lane"
D = 6.0
"""The shortest LCC_LEASE_SECONDS allowed: renewals every 2 s, each bounded by 2 s."""
READERS = 8


async def test_a_sync_that_took_a_free_lease_but_not_its_first_write_in_time_is_not_told_someone_holds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryS3()

    @asynccontextmanager
    async def opened(settings: Any, adapter: Any) -> AsyncIterator[MemoryS3]:
        yield store

    monkeypatch.setattr(leasing, "open_lease_store", opened)
    settings = SimpleNamespace(
        aws_account="123456789012", replica_id="laptop", lease_seconds=30.0, require=lambda _: None
    )
    adapter = SimpleNamespace(attempt_timeout=70.0)
    with pytest.raises(leasing.LeaseHeld) as raised:
        async with leasing.hold_lease(settings, adapter, 2.0):  # type: ignore[arg-type]
            pass
    assert store.objects, "the lease was created: this sync holds it"
    assert "held by" not in str(raised.value)
    assert "took its lease" in str(raised.value)
    assert "--lease-wait" in str(raised.value)


@pytest.mark.parametrize(
    ("command", "way_out"),
    [("sync", "Let the service do the sync"), ("rollback", "Stop the service first (scale it to 0 replicas")],
)
async def test_a_command_refused_by_the_services_lease_names_the_holder_and_its_own_way_out(
    command: leasing.Writer, way_out: str
) -> None:
    store = MemoryS3()
    service = LeaseKeeper(store, "123456789012", "pod-a", 30.0, write_timeout=10.0)
    settings = SimpleNamespace(replica_id="laptop", lease_seconds=30.0)
    async with leasing.keeping(service):
        with anyio.fail_after(5):
            while not service.held():
                await anyio.sleep(0.01)
        with pytest.raises(leasing.LeaseHeld) as raised:
            async with leasing.holding(settings, store, "123456789012", 10.0, 0.3, command=command):  # type: ignore[arg-type]
                pass
    message = str(raised.value)
    assert "is held by pod-a" in message
    assert way_out in message
    assert ("Let the service do the sync" in message) == (command == "sync")


# -- the leases' own adapter -------------------------------------------------------------------


class Transitions(Counter[Transition]):
    """A LeaseObserver that counts the transitions."""

    def lease_transition(self, account: str, reason: Transition) -> None:
        self[reason] += 1

    def lease_held(self, account: str, held: bool) -> None:
        return None


def lane_settings(**extra: Any) -> Settings:
    values: dict[str, Any] = {
        "endpoint": f"s3://{ENDPOINT}/lc/",
        "aws_account": MOTO_ACCOUNT,
        "aws_region": MOTO_REGION,
        "lease_seconds": D,
        "replica_id": "pod-a",
        "concurrency": READERS,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def buckets(moto: str, s3_client: Any) -> list[BucketRef]:
    create_bucket(s3_client, ENDPOINT)
    for n in range(READERS):
        create_bucket(s3_client, f"lane-data-{n}")
    return [BucketRef(f"lane-data-{n}", MOTO_REGION) for n in range(READERS)]


async def test_a_keepers_renewals_never_wait_behind_the_accounts_rate_limited_bucket_reads(
    buckets: list[BucketRef],
) -> None:
    # A cycle's readers (LCC_CONCURRENCY of them) keep LCC_MAX_REQUESTS_PER_SECOND's limiter
    # booked seconds ahead; moto answers every request at once.
    settings = lane_settings(max_requests_per_second=2)
    seen = Transitions()
    async with open_account(settings) as account, leasing.open_lease_store(settings, account.adapter) as store:
        keeper = leasing.account_keeper(settings, store, account.adapter, seen)

        async def reader(bucket: BucketRef) -> None:
            while True:
                await account.adapter.get_lifecycle(bucket)

        async with anyio.create_task_group() as group:
            group.start_soon(keeper.run)
            await until(keeper.held, within=D)
            for bucket in buckets:
                group.start_soon(reader, bucket)
            # Three renewals take a whole duration: a renewal held up in the limiter loses the lease by then.
            await until(lambda: seen[Transition.RENEWED] >= 3 or seen[Transition.LOST] > 0, within=3 * D)
            group.cancel_scope.cancel()

    assert seen[Transition.LOST] == 0, seen
    assert account.adapter.gate.limiter is not None, "the account's requests were rate-limited throughout"


async def test_the_leases_go_through_an_adapter_of_their_own_without_limits_closed_with_the_store(
    buckets: list[BucketRef],
) -> None:
    settings = lane_settings(max_requests_per_second=2)
    async with open_account(settings) as account:
        calls = Counter(account.adapter.calls)
        async with leasing.open_lease_store(settings, account.adapter) as store:
            await store.read(f"lease/{MOTO_ACCOUNT}.json")
            lane = store.adapter
        assert account.adapter.calls == calls, "no lease request (the probe, a read) went through the account's"
        assert lane is not account.adapter
        assert (lane.account, lane.region, lane.endpoint_url) == (MOTO_ACCOUNT, MOTO_REGION, None)
        assert lane.gate.limiter is None, "no LCC_MAX_REQUESTS_PER_SECOND"
        assert lane.slots is None
        assert lane.retry is account.adapter.retry
        assert lane.attempt_timeout == account.adapter.attempt_timeout
        with pytest.raises(RuntimeError, match="outside its `async with` block"):
            await store.read(f"lease/{MOTO_ACCOUNT}.json")
