"""The daemon verifying a hub's accounts continuously, in fake time: after the start-up pass each
account's buckets are verified in its lane as their turns come (the daemon counts no slice of
its own), a resync lists every account and reads none, an event for one account's bucket repairs
it at the next tick, events for a hub reach the account they name, and each account's lag is its
own series, gone with the account."""

from __future__ import annotations

import anyio
import pytest

from lakecircle.app.events import DaemonEvents
from lakecircle.app.serve import hub_verifier
from lakecircle.app.sinks import HubSink
from lakecircle.core.accounts import AccountList
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import Trigger
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from tests.builders import fleet, rule
from tests.engine.test_hub import A, B, Organization, member
from tests.service.test_daemon import FakeClock

pytestmark = pytest.mark.anyio

READ = "GetBucketLifecycleConfiguration"


class LaneClock(FakeClock):
    """Fake time that moves only once every lane of the hub is idle (a slice takes no time)."""

    def __init__(self, org: Organization) -> None:
        super().__init__()
        self.org = org

    async def sleep(self, seconds: float) -> None:
        for lane in list(self.org.hub.schedule.lanes.values()):
            await lane.idle()
        await super().sleep(seconds)


def two_accounts(n: int) -> Organization:
    org = Organization(member(A), member(B), logs=fleet(["logs-*"], rule("expire")))
    for account_id in (A, B):
        for i in range(n):
            org.stores[account_id].add_bucket(f"logs-{account_id[0]}-{i:03d}")
    return org


async def run_for(org: Organization, daemon: Daemon, clock: FakeClock, seconds: float) -> None:
    until = clock.now() + seconds
    async with org.hub.background(wait=5, shutdown_timeout=5), anyio.create_task_group() as tg:
        tg.start_soon(daemon.run)
        while clock.now() < until:
            await anyio.lowlevel.checkpoint()
        daemon.request_stop()


def hub_daemon(org: Organization, clock: FakeClock, metrics: Metrics, *, resync: float, poll: float) -> Daemon:
    org.hub.observer = HubSink(metrics)
    verifier = hub_verifier(org.hub, metrics, resync, clock)
    return Daemon(
        org.hub, clock=clock, jitter=lambda: 1.0, poll_interval=poll, resync_interval=resync, verifier=verifier
    )


async def test_each_account_is_verified_in_its_lane_and_a_resync_reads_no_bucket() -> None:
    org = two_accounts(20)
    clock, metrics = LaneClock(org), Metrics(multi_account=True)
    daemon = hub_daemon(org, clock, metrics, resync=100.0, poll=30.0)
    with anyio.fail_after(20):
        await run_for(org, daemon, clock, 150.0)
    for account_id in (A, B):
        store = org.stores[account_id]
        assert store.calls["ListBuckets"] == 2  # the start-up pass, one resync (a listing pass)
        assert 20 + 20 <= store.calls[READ] <= 20 + 30 + 1  # the pass, then 0.2 a second: no burst at the resync
    text = metrics.render().decode()
    assert f'lakecircle_cycles_total{{account="{A}",result="success",trigger="verify"}}' in text


async def test_an_event_for_one_accounts_bucket_repairs_it_at_the_next_tick() -> None:
    org = two_accounts(200)
    clock, metrics = LaneClock(org), Metrics(multi_account=True)
    daemon = hub_daemon(org, clock, metrics, resync=100_000.0, poll=100_000.0)
    asked: list[float] = []
    repaired: list[float] = []

    async def drift_and_announce() -> None:
        while clock.now() < 1000 + 10.5:
            await anyio.lowlevel.checkpoint()
        org.stores[B].lifecycles["logs-2-199"] = LifecycleConfig((rule("expire", 3),))  # due last
        await DaemonEvents(daemon, "999999999999", hub=True).bucket_changed(B, "logs-2-199")
        asked.append(clock.now())
        while org.stores[B].lifecycles["logs-2-199"] != LifecycleConfig((rule("expire"),)):
            await anyio.lowlevel.checkpoint()
        repaired.append(clock.now())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drift_and_announce)
            await run_for(org, daemon, clock, 30.0)
    assert repaired
    assert repaired[0] - asked[0] <= 1.0


async def test_each_accounts_lag_is_its_own_series_and_leaves_with_the_account() -> None:
    org = two_accounts(10)
    clock, metrics = FakeClock(), Metrics(multi_account=True)
    daemon = hub_daemon(org, clock, metrics, resync=100.0, poll=30.0)
    verifier = daemon.verifier
    assert verifier is not None
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock.now)
        clock.t += 150.0  # no slice ran: every bucket is late
        text = metrics.render().decode()
        assert f'lakecircle_verification_lag_seconds{{account="{A}"}} 140.0' in text
        assert f'lakecircle_verification_lag_seconds{{account="{B}"}} 140.0' in text
        org.source.list = AccountList((member(A),))
        await verifier.run_pass(Trigger.RESYNC, None, read=False, clock=clock.now)
    text = metrics.render().decode()
    assert f'lakecircle_verification_lag_seconds{{account="{B}"}}' not in text
    assert f'lakecircle_verification_lag_seconds{{account="{A}"}}' in text
