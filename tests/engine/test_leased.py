"""The single-account runner with replicas: a cycle waits in standby until this replica may write, a lease
lost part way cuts the cycle, and two replicas on one account never write in overlapping epochs."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import structlog

from lakecircle.core.lease_body import LeaseBody, encode
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.cycle_scope import CycleScope
from lakecircle.engine.history import History
from lakecircle.engine.leased import LeasedRunner
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.records import Outcome
from lakecircle.ports import BucketRef
from lakecircle.service.daemon import Daemon
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule
from tests.engine.leasing import ACCOUNT, KEY, D, keeper, running, until

pytestmark = pytest.mark.anyio


@dataclass
class Standby:
    """A StandbyObserver that keeps what it was told."""

    told: list[bool] = field(default_factory=list)

    def standby(self, waiting: bool) -> None:
        self.told.append(waiting)


@dataclass(frozen=True)
class Window:
    """A bucket write, from its start to its end, by a replica in an epoch (as it held when it started)."""

    replica: str
    epoch: int | None
    start: float
    end: float


class Timed:
    """One replica's view of the shared account: its lifecycle writes take ``seconds`` and are recorded."""

    def __init__(self, s3: MemoryS3, keeper: LeaseKeeper, windows: list[Window], seconds: float = 0.01) -> None:
        self.s3, self.keeper, self.windows, self.seconds = s3, keeper, windows, seconds

    async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        async for page in self.s3.iter_buckets():
            yield page

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        return await self.s3.get_lifecycle(bucket)

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        start, epoch = time.monotonic(), self.keeper.epoch
        try:
            await anyio.sleep(self.seconds)
            await self.s3.put_lifecycle(bucket, config)
        finally:
            self.windows.append(Window(self.keeper.replica, epoch, start, time.monotonic()))

    async def delete_lifecycle(self, bucket: BucketRef) -> None:
        raise AssertionError("no test here deletes a configuration")


def account(buckets: int, version: int = 1) -> MemoryS3:
    s3 = MemoryS3()
    for i in range(buckets):
        s3.add_bucket(f"bkt{i}")
    define(s3, buckets, version)
    return s3


def define(s3: MemoryS3, buckets: int, version: int) -> None:
    """Every bucket's definition wants rule ``v<version>``."""
    for i in range(buckets):
        s3.objects[f"definition/b{i}.toml"] = definition(f"bkt{i}", rule(f"v{version}"))


def runner(
    s3: MemoryS3,
    keeper: LeaseKeeper,
    *,
    windows: list[Window] | None = None,
    observer: Standby | None = None,
    seconds: float = 0.01,
) -> LeasedRunner:
    """A replica's runner over the shared account, each write taking ``seconds`` and recorded in ``windows``."""
    store = Timed(s3, keeper, windows if windows is not None else [], seconds)
    reconciler = Reconciler(store, DefinitionLoader(s3), history=History(s3), concurrency=1, fence=keeper)
    return LeasedRunner(reconciler, keeper, observer=observer)


def documents(s3: MemoryS3, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(data) for key, data in sorted(s3.objects.items()) if key.startswith(prefix)]


async def test_a_replica_stands_by_until_it_may_write_then_runs_its_cycle_in_its_epoch() -> None:
    s3, standby, reports = account(2), Standby(), []
    a, b = keeper(s3, "a"), keeper(s3, "b")
    b_runner = runner(s3, b, observer=standby)

    async def cycle() -> None:
        reports.append(await b_runner.run_cycle(Trigger.STARTUP))

    with structlog.testing.capture_logs() as logs:
        async with running(a, b), anyio.create_task_group() as tg:
            await until(a.held)
            await until(lambda: b.holder_seen == "a")
            tg.start_soon(cycle)
            await anyio.sleep(D)
            assert standby.told == [True]
            assert not reports
            assert s3.calls["PutBucketLifecycleConfiguration"] == 0
            await a.release()
            await until(lambda: bool(reports))
    [report] = reports
    assert report.counts[BucketState.CHANGED] == 2
    assert standby.told == [True, False]
    assert all(doc["lease"] == {"holder": "b", "epoch": 2} for doc in documents(s3, "history/"))
    [line] = [line for line in logs if line["event"] == "lease_standby"]
    assert (line["account"], line["replica"], line["holder"]) == (ACCOUNT, "b", "a")


async def test_a_lease_lost_part_way_cuts_the_cycle_and_no_write_starts_after_the_loss() -> None:
    s3, windows, lost_at = account(40), list[Window](), list[float]()
    a = keeper(s3, "a")
    a.on_lost(lambda: lost_at.append(time.monotonic()))
    a_runner = runner(s3, a, windows=windows, seconds=0.03)
    with structlog.testing.capture_logs() as logs:
        async with running(a):
            await until(a.may_start_write)
            async with anyio.create_task_group() as tg:

                async def steal() -> None:
                    await until(lambda: len(windows) >= 2)
                    s3.objects[KEY] = encode(LeaseBody("b", 9, 1.0, 1.0, D))  # another replica's lease now

                tg.start_soon(steal)
                with anyio.fail_after(5):
                    report = await a_runner.run_cycle(Trigger.STARTUP)
    [loss] = lost_at
    assert report.interrupted
    assert 2 <= report.counts[BucketState.CHANGED] < 40
    assert all(window.start < loss for window in windows)
    assert a_runner.cut_short is None  # returned, not left for a shutdown to pick up
    cut = [r for r in report.failed if r.error is not None and "cut short" in r.error]
    why = f"cut short by the loss of this replica's lease of account {ACCOUNT} while it was being written"
    assert [r.error for r in cut] == [why]
    [record] = (await History(s3).bucket_history(cut[0].bucket)).records
    assert record.outcome is Outcome.FAILED
    assert f"cut short by the loss of this replica's lease of account {ACCOUNT}" in (record.error or "")
    [line] = [line for line in logs if line["event"] == "lease_lost_in_cycle"]
    assert (line["account"], line["replica"], line["log_level"]) == (ACCOUNT, "a", "warning")
    assert [key for key in s3.objects if key.startswith("log/")]  # the cut cycle's report is recorded


async def test_a_stop_during_standby_ends_the_wait_at_once_with_an_empty_interrupted_report() -> None:
    s3 = account(1)
    a = keeper(s3, "a", wanted=False)  # never holds the lease
    a_runner = runner(s3, a)
    reports: list[CycleReport] = []

    async def cycle() -> None:
        reports.append(await a_runner.run_cycle(Trigger.STARTUP, refs=[]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(cycle)
        await anyio.sleep(0.05)
        a_runner.drain()
        await until(lambda: bool(reports), within=0.1)
    [report] = reports
    assert (report.interrupted, report.results, report.definitions, report.trigger) == (True, (), None, "startup")
    assert a_runner.draining
    assert s3.calls["ListBuckets"] == 0


async def test_a_standby_that_drains_no_longer_takes_the_lease_a_holder_gives_back() -> None:
    s3 = account(1)
    a, b = keeper(s3, "a"), keeper(s3, "b")
    b_runner = runner(s3, b)
    async with running(a, b):
        await until(a.held)
        await until(lambda: b.holder_seen == "a")
        b_runner.drain()  # a rollout: b is on its way out too
        await a.release()
        await anyio.sleep(D)  # b reads the released lease within a third of a duration
        assert not b.held()


async def test_the_daemon_runs_a_leased_runner_as_it_runs_a_reconciler() -> None:
    s3, standby = account(3), Standby()
    a = keeper(s3, "a")
    daemon = Daemon(runner(s3, a, observer=standby), max_cycles=1)
    async with running(a):
        with anyio.fail_after(5):
            await daemon.run()
    assert daemon.last_report is not None
    assert daemon.last_report.counts[BucketState.CHANGED] == 3
    assert standby.told == [True, False]  # it waited out the new holder's wait


async def test_two_replicas_on_one_account_never_write_in_overlapping_epochs_when_the_first_is_frozen() -> None:
    buckets, s3, windows = 4, account(4), list[Window]()
    a, b = keeper(s3, "a"), keeper(s3, "b")
    runners = [runner(s3, a, windows=windows), runner(s3, b, windows=windows)]

    async def replica(one: LeasedRunner) -> None:
        while True:
            await one.run_cycle(Trigger.POLL)
            await anyio.sleep(0.005)

    async def edit() -> None:
        for version in range(2, 10_000):
            await anyio.sleep(0.03)
            define(s3, buckets, version)

    with anyio.fail_after(15):
        async with running(a, b) as scopes, anyio.create_task_group() as tg:
            tg.start_soon(edit)
            for one in runners:
                tg.start_soon(replica, one)
            await until(lambda: sum(w.epoch == 1 for w in windows) >= 8, within=3)
            scopes["a"].cancel()  # a's keeper freezes; its reconciler goes on, fenced
            await until(lambda: sum(w.epoch == 2 for w in windows) >= 8, within=4 * D)
            tg.cancel_scope.cancel()
    assert {(w.replica, w.epoch) for w in windows} == {("a", 1), ("b", 2)}
    first = [w for w in windows if w.epoch == 1]
    second = [w for w in windows if w.epoch == 2]
    assert max(w.end for w in first) <= min(w.start for w in second)
    leases = {(doc["lease"]["holder"], doc["lease"]["epoch"]) for doc in documents(s3, "history/")}
    assert leases == {("a", 1), ("b", 2)}


async def test_a_slice_that_waited_for_the_lease_verifies_with_the_definitions_of_now_not_of_before() -> None:
    s3, reports = account(2), []
    a, b = keeper(s3, "a"), keeper(s3, "b")
    b_runner = runner(s3, b)
    old = await b_runner.reconciler.loader.load()  # what b knew when it fell to standby
    define(s3, 2, 2)  # the holder, a, applied newer definitions meanwhile

    async def slice_() -> None:
        reports.append(await b_runner.run_cycle(Trigger.VERIFY, scope=CycleScope(old, [BucketRef("bkt0")])))

    async with running(a, b), anyio.create_task_group() as tg:
        await until(a.held)
        await until(lambda: b.holder_seen == "a")
        tg.start_soon(slice_)
        await anyio.sleep(D)
        await a.release()
        await until(lambda: bool(reports))
    assert [r.id for r in s3.lifecycles["bkt0"].rules] == ["v2"]  # never v1 written back
