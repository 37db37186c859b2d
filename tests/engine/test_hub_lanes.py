"""Accounts on their own schedules (the daemon's hub): a slow account never holds up the
others, is never started twice nor cut for being slow, and gets the newest definitions when
its cycle ends; a stop waits for it within the shutdown timeout (ARCHITECTURE.md, "Many accounts")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from lakecircle.app.sinks import HubSink
from lakecircle.core.accounts import Account, AccountList
from lakecircle.core.lane_work import Work
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.hub import AccountState
from lakecircle.engine.lanes import Lane
from lakecircle.errors import AccessDenied, LakeCircleError
from lakecircle.ports import BucketRef
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from lakecircle.service.server import Health
from tests.builders import definition, fleet, rule
from tests.engine.test_hub import A, B, C, Organization, member

pytestmark = pytest.mark.anyio


class Held:
    """Holds every lifecycle read of one account's store until released."""

    def __init__(self, org: Organization, account_id: str) -> None:
        self.store = org.stores[account_id]
        self.release = anyio.Event()
        self.reads = 0
        inner = self.store.get_lifecycle

        async def held(bucket: BucketRef) -> LifecycleConfig:
            self.reads += 1
            await self.release.wait()
            return await inner(bucket)

        self.store.get_lifecycle = held  # type: ignore[method-assign]


class Gate:
    """Holds one account's lifecycle reads from :meth:`hold` until :meth:`release`."""

    def __init__(self, org: Organization, account_id: str) -> None:
        self.event: anyio.Event | None = None
        store = org.stores[account_id]
        inner = store.get_lifecycle

        async def get(bucket: BucketRef) -> LifecycleConfig:
            if self.event is not None:
                await self.event.wait()
            return await inner(bucket)

        store.get_lifecycle = get  # type: ignore[method-assign]

    def hold(self) -> None:
        self.event = anyio.Event()

    def release(self) -> None:
        assert self.event is not None
        self.event.set()
        self.event = None


async def settled(org: Organization) -> None:
    with anyio.fail_after(5):
        for lane in list(org.hub._lanes.values()):
            await lane.idle()


def days(org: Organization, account_id: str, bucket: str) -> int | None:
    expiration = org.stores[account_id].lifecycles[bucket].rules[0].expiration
    return expiration.days if expiration is not None else None


def two_accounts() -> Organization:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")
    return org


async def test_a_slow_account_goes_on_alone_while_the_others_cycle_and_gets_the_newest_definitions() -> None:
    org = two_accounts()
    slow = Held(org, B)
    async with org.hub.background(wait=0.2, shutdown_timeout=5):
        first = await org.hub.run_cycle(Trigger.STARTUP)
        assert org.hub.runs[A].state is AccountState.MANAGED
        assert org.hub.runs[B].state is AccountState.RUNNING
        assert first.writes == 1
        assert org.states == {A: AccountState.MANAGED, B: AccountState.RUNNING}

        # The definitions change while B is still in its first cycle: A gets them at once.
        org.hub_store.objects["definition/base.toml"] = fleet(["*"], rule("abort", 3))
        second = await org.hub.run_cycle(Trigger.POLL)
        assert org.hub.runs[B].state is AccountState.RUNNING
        assert second.writes == 1
        assert days(org, A, "a-logs") == 3
        assert org.opened.count(B) == 1  # not started twice
        assert second.counts[BucketState.MISSING] == 0

        slow.release.set()
        with anyio.fail_after(5):
            while org.states.get(B) is not AccountState.MANAGED or slow.reads < 2:
                await anyio.sleep(0.01)
            while org.hub._lanes[B].busy:
                await anyio.sleep(0.01)
    # Its first cycle wrote the first definitions, whole; the one it owed then wrote the newest.
    assert days(org, B, "b-logs") == 3
    assert org.finished[B].writes == 1
    assert org.opened.count(B) == 1


async def test_the_daemon_keeps_cycling_the_healthy_account_while_one_hangs_and_a_stop_ends_it_in_time() -> None:
    org = two_accounts()
    Held(org, B)
    daemon = Daemon(org.hub, poll_interval=0.05, resync_interval=0.0, shutdown_timeout=0.5)
    began = 0.0
    async with org.hub.background(wait=0.05, shutdown_timeout=0.5), anyio.create_task_group() as group:
        group.start_soon(daemon.run)
        with anyio.fail_after(10):
            while daemon.stats.cycles < 5:
                await anyio.sleep(0.01)
        assert org.hub.runs[B].state is AccountState.RUNNING
        assert org.hub.runs[A].state is AccountState.MANAGED
        assert org.opened.count(B) == 1
        daemon.request_stop("SIGTERM")
        began = time.monotonic()
    took = time.monotonic() - began
    assert took < 3, took  # the shutdown timeout (0.5 s) and the report's shielded save, not the hang
    assert org.finished[B].interrupted  # cut short at shutdown, and said so
    assert not org.hub._lanes[B].busy


async def test_a_selector_that_may_select_in_an_account_not_seen_whole_is_no_warning() -> None:
    org = Organization(member(A), member(B), typo=fleet(["acme-nothing-*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")
    org.refused[B] = AccessDenied("not authorized to perform sts:AssumeRole", operation="AssumeRole")
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert org.hub.runs[B].state is AccountState.FAILED
    assert report.warnings == ()
    del org.refused[B]
    report = await org.hub.run_cycle(Trigger.RESYNC)
    assert [w.file for w in report.warnings] == ["definition/typo.toml"]


async def test_a_lane_runs_the_newest_request_once_and_never_two_at_once() -> None:
    lane = Lane(member(A))
    ran: list[int] = []
    gate = anyio.Event()
    at_once = 0

    async def run(_account: object, request: object) -> None:
        nonlocal at_once
        at_once += 1
        assert at_once == 1
        ran.append(request.generation)  # type: ignore[attr-defined]
        await gate.wait()
        at_once -= 1

    class R:
        work, slice = Work.CYCLE, False

        def __init__(self, generation: int) -> None:
            self.generation = generation

    async with anyio.create_task_group() as group:
        assert lane.offer(member(A), R(0))  # type: ignore[arg-type]
        group.start_soon(lane.drive, run)
        await anyio.sleep(0.01)
        assert not lane.offer(member(A), R(1))  # type: ignore[arg-type]
        assert not lane.offer(member(A), R(2))  # type: ignore[arg-type]
        gate.set()
        await lane.idle()
    assert ran == [0, 2]
    assert not lane.busy


async def test_an_account_removed_while_its_cycle_runs_gets_no_new_cycle_when_it_ends() -> None:
    org = two_accounts()
    slow = Held(org, B)
    async with org.hub.background(wait=0.1, shutdown_timeout=5):
        await org.hub.run_cycle(Trigger.STARTUP)  # B still running
        await org.hub.run_cycle(Trigger.POLL)  # B owes this one
        org.source.list = AccountList((member(A),))
        await org.hub.run_cycle(Trigger.RESYNC)  # B leaves the list while it runs
        slow.release.set()
        await settled(org)
    assert org.opened.count(B) == 1, org.opened
    assert slow.reads == 1


async def test_a_late_finish_of_an_account_that_left_the_list_does_not_bring_its_series_back() -> None:
    org = two_accounts()
    gate = Gate(org, B)
    metrics = Metrics(multi_account=True)
    org.hub.observer = HubSink(metrics)
    async with org.hub.background(wait=0.1, shutdown_timeout=5):
        await org.hub.run_cycle(Trigger.STARTUP)
        assert B in metrics.render().decode()
        gate.hold()
        await org.hub.run_cycle(Trigger.RESYNC)  # B running
        org.source.list = AccountList((member(A),))
        await org.hub.run_cycle(Trigger.RESYNC)  # B left: forgotten
        gate.release()
        await settled(org)
        await org.hub.run_cycle(Trigger.RESYNC)
    assert B not in metrics.render().decode()


async def test_a_late_finish_does_not_make_a_hub_that_manages_no_account_ready() -> None:
    org = two_accounts()
    gate = Gate(org, B)
    health = Health(max_age=60, outage_limit=60, clock=lambda: 1000.0)
    org.hub.observer = HubSink(Metrics(multi_account=True), health)
    async with org.hub.background(wait=0.1, shutdown_timeout=5):
        gate.hold()
        await org.hub.run_cycle(Trigger.STARTUP)  # B running
        org.source.list = AccountList(())
        report = await org.hub.run_cycle(Trigger.RESYNC)
        assert "no account to manage" in (report.fatal or "")
        gate.release()
        await settled(org)
    assert health.unmanaged is not None


async def test_a_stop_after_the_last_of_cycles_n_still_ends_within_the_shutdown_timeout() -> None:
    org = two_accounts()
    Held(org, B)  # B's reads never answer
    daemon = Daemon(org.hub, poll_interval=0.05, resync_interval=600, shutdown_timeout=0.3, max_cycles=1)
    stopped_at = 0.0

    async def stop_later() -> None:
        nonlocal stopped_at
        while daemon.last_report is None:
            await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # the loop has ended; the hub waits for B
        stopped_at = time.monotonic()
        daemon.request_stop("SIGTERM")

    with anyio.fail_after(4):
        async with anyio.create_task_group() as group:
            group.start_soon(stop_later)
            async with org.hub.background(wait=0.05, shutdown_timeout=0.3):
                await daemon.run()
    assert time.monotonic() - stopped_at < 2


async def test_an_error_closing_a_failed_accounts_clients_is_logged_and_the_daemon_goes_on() -> None:
    org = two_accounts()
    org.crash.add(B)  # B's cycle raises (a bug): it fails alone and is closed
    opener = org.open_member

    @asynccontextmanager
    async def open_member(account: Account) -> AsyncIterator[Reconciler]:
        async with opener(account) as reconciler:
            yield reconciler
        if account.id == B:
            raise RuntimeError("error while closing the session")

    org.hub.members.open_member = open_member
    daemon = Daemon(org.hub, poll_interval=0.02, resync_interval=0.0, shutdown_timeout=0.3)
    with anyio.fail_after(15):
        async with org.hub.background(wait=0.5, shutdown_timeout=0.3), anyio.create_task_group() as group:
            group.start_soon(daemon.run)
            while daemon.stats.cycles < 4:
                await anyio.sleep(0.01)
            daemon.request_stop("SIGTERM")
    assert org.states[A] is AccountState.MANAGED
    assert org.states[B] is AccountState.FAILED


async def test_hung_accounts_give_their_place_to_the_others_after_the_wait() -> None:
    org = Organization(member(A), member(B), member(C), base=fleet(["*"], rule("abort", 7)))
    for account_id in (A, B, C):
        org.stores[account_id].add_bucket(f"b-{account_id}")
    Held(org, A)
    Held(org, B)  # as many hung accounts as accounts_at_once (2)
    async with org.hub.background(wait=0.1, shutdown_timeout=0.2):
        for _ in range(3):
            await org.hub.run_cycle(Trigger.POLL)
        assert C in org.finished
        assert org.rules(C, f"b-{C}") == ["abort"]
        org.hub.drain()


async def test_an_account_always_slower_than_the_wait_is_judged_by_its_last_cycle_for_missing_buckets() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)), ghost=definition("ghost", rule("r1")))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")
    inner = org.stores[B].get_lifecycle

    async def slow(bucket: BucketRef) -> LifecycleConfig:
        await anyio.sleep(0.15)  # longer than the hub waits, every cycle (a big account)
        return await inner(bucket)

    org.stores[B].get_lifecycle = slow  # type: ignore[method-assign]
    missing = []
    async with org.hub.background(wait=0.1, shutdown_timeout=1):
        for _ in range(3):
            report = await org.hub.run_cycle(Trigger.RESYNC)
            assert org.hub.runs[B].state is AccountState.RUNNING
            missing.append([r.bucket for r in report.results if r.state is BucketState.MISSING])
            await anyio.sleep(0.2)  # B ends between hub cycles, every time
    assert missing == [[], ["ghost"], ["ghost"]]  # the first cycle has no whole cycle of B yet


async def test_an_error_from_the_daemon_side_comes_out_of_the_background_as_it_was_raised() -> None:
    org = two_accounts()

    async def daemon_side() -> None:
        async with org.hub.background(wait=0.1, shutdown_timeout=0.2):
            await org.hub.run_cycle(Trigger.STARTUP)
            raise LakeCircleError("the daemon could not go on")

    with pytest.raises(LakeCircleError, match="the daemon could not go on"):
        await daemon_side()
    assert org.hub.draining
