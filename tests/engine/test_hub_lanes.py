"""Accounts on their own schedules (the daemon's hub): a slow account never holds up the
others, is never started twice nor cut for being slow, and gets the newest definitions when
its cycle ends; a stop waits for it within the shutdown timeout (ARCHITECTURE.md, "Many accounts")."""

from __future__ import annotations

import time

import anyio
import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, Trigger
from lakecircle.engine.hub import AccountState
from lakecircle.engine.lanes import Lane
from lakecircle.errors import AccessDenied
from lakecircle.ports import BucketRef
from lakecircle.service.daemon import Daemon
from tests.builders import fleet, rule
from tests.engine.test_hub import A, B, Organization, member

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
