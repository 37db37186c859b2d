"""The daemon verifying a single account continuously, in fake time: the start-up pass reads every
managed bucket, then each is verified once per resync interval at a steady rate (no burst at the
resync, which only lists the account), drift is repaired when its bucket's turn comes or at once
when an event names it, SIGHUP still reads everything, a poll can be asked for, and the reports
carry the whole account's picture for the bucket gauges."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.verify import SLICE, VERIFY, Verifier
from lakecircle.errors import AccessDenied
from lakecircle.service.daemon import Daemon
from lakecircle.testing import MemoryS3
from tests import builders
from tests.service.test_daemon import FakeClock

pytestmark = pytest.mark.anyio

READ = "GetBucketLifecycleConfiguration"
PUT = "PutBucketLifecycleConfiguration"


def fleet(n: int) -> MemoryS3:
    s3 = MemoryS3()
    s3.objects["definition/logs.toml"] = builders.fleet(["logs-*"], builders.rule("expire"))
    for i in range(n):
        s3.add_bucket(f"logs-{i:03d}")
    return s3


class Reports:
    def __init__(self) -> None:
        self.reports: list[CycleReport] = []

    def cycle_finished(self, report: CycleReport) -> None:
        self.reports.append(report)

    def cycle_crashed(self, trigger: str) -> None:
        raise AssertionError(f"a {trigger} cycle crashed")

    def of(self, trigger: str) -> list[CycleReport]:
        return [r for r in self.reports if r.trigger == trigger]


def continuous(s3: MemoryS3, clock: FakeClock, *, resync: float = 100.0, poll: float = 30.0) -> tuple[Daemon, Reports]:
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=4, keep_plans=False)
    seen = Reports()
    daemon = Daemon(
        reconciler,
        clock=clock,
        jitter=lambda: 1.0,
        poll_interval=poll,
        resync_interval=resync,
        observer=seen,
        verifier=Verifier(reconciler, resync),
    )
    return daemon, seen


async def run_for(daemon: Daemon, clock: FakeClock, seconds: float) -> None:
    """Run the daemon for ``seconds`` of fake time, then stop it."""
    until = clock.now() + seconds
    async with anyio.create_task_group() as tg:
        tg.start_soon(daemon.run)
        while clock.now() < until:
            await anyio.lowlevel.checkpoint()
        daemon.request_stop()


async def at(clock: FakeClock, t: float) -> None:
    while clock.now() < t:
        await anyio.lowlevel.checkpoint()


async def test_after_the_start_up_pass_each_bucket_is_verified_once_per_interval_at_a_steady_rate() -> None:
    s3, clock = fleet(200), FakeClock()
    daemon, seen = continuous(s3, clock, resync=100.0, poll=1_000.0)
    with anyio.fail_after(10):
        await run_for(daemon, clock, 99.5)
    assert s3.calls["ListBuckets"] == 1  # the start-up pass's; no resync yet
    assert s3.calls[READ] == 200 + 198  # the pass, then 2 a second for 99 s
    per_slice = {sum(r.counts.values()) for r in seen.of(VERIFY)}
    assert per_slice == {2}  # never a burst
    assert daemon.stats.cycles == 1
    assert daemon.stats.slices >= 99


async def test_a_resync_lists_the_account_reads_no_bucket_and_verifies_a_new_one_at_once() -> None:
    s3, clock = fleet(10), FakeClock()
    daemon, seen = continuous(s3, clock, resync=1_000.0, poll=30.0)

    async def create_later() -> None:
        await at(clock, 1000 + 500)
        s3.add_bucket("logs-new")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_later)
            await run_for(daemon, clock, 1_000 + 40)
    resyncs = seen.of("resync")
    assert len(resyncs) == 1
    assert resyncs[0].counts[BucketState.IN_SYNC] == 0  # it read none
    assert s3.lifecycles["logs-new"].rules, "the bucket the resync found was verified (and written) at once"
    assert s3.calls[READ] <= 10 + 10 + 1 + 2  # the pass, one interval's verifications, the new one, rounding


async def test_drift_is_repaired_when_its_buckets_turn_comes_without_a_full_cycle() -> None:
    s3, clock = fleet(50), FakeClock()
    daemon, _ = continuous(s3, clock, resync=100.0, poll=1_000.0)

    async def drift_later() -> None:
        await at(clock, 1000 + 10)
        s3.lifecycles["logs-040"] = LifecycleConfig((builders.rule("expire", 3),))  # behind LakeCircle's back

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drift_later)
            await run_for(daemon, clock, 95)
    assert s3.lifecycles["logs-040"] == LifecycleConfig((builders.rule("expire"),))
    assert s3.calls["ListBuckets"] == 1


async def test_a_bucket_an_event_names_is_verified_at_once_ahead_of_the_schedule() -> None:
    s3, clock = fleet(1_000), FakeClock()
    daemon, _ = continuous(s3, clock, resync=10_000.0, poll=1_000.0)
    repaired_at: list[float] = []
    asked_at: list[float] = []

    async def drift_and_announce() -> None:
        await at(clock, 1000 + 20.5)
        s3.lifecycles["logs-999"] = LifecycleConfig((builders.rule("expire", 3),))  # due last, ~10,000 s away
        daemon.request_verify(["logs-999"])
        asked_at.append(clock.now())
        while s3.lifecycles["logs-999"] != LifecycleConfig((builders.rule("expire"),)):
            await anyio.lowlevel.checkpoint()
        repaired_at.append(clock.now())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drift_and_announce)
            await run_for(daemon, clock, 30)
    assert repaired_at
    assert repaired_at[0] - asked_at[0] <= 1.0  # at the next step, not when its turn comes 10,000 s later


async def test_sighup_reads_every_bucket_again_and_respreads_the_schedule() -> None:
    s3, clock = fleet(20), FakeClock()
    daemon, seen = continuous(s3, clock, resync=10_000.0, poll=1_000.0)

    async def hup_later() -> None:
        await at(clock, 1000 + 5)
        daemon.request_sync()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hup_later)
            await run_for(daemon, clock, 10)
    signals = seen.of("signal")
    assert len(signals) == 1
    assert signals[0].counts[BucketState.IN_SYNC] == 20


async def test_a_poll_asked_for_runs_at_once_not_at_the_next_poll_interval() -> None:
    s3, clock = fleet(5), FakeClock()
    daemon, seen = continuous(s3, clock, resync=10_000.0, poll=1_000.0)

    async def edit_and_ask() -> None:
        await at(clock, 1000 + 5)
        s3.objects["definition/logs.toml"] = builders.fleet(["logs-*"], builders.rule("expire", 9))
        daemon.request_poll()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(edit_and_ask)
            await run_for(daemon, clock, 10)
    assert daemon.stats.polls == 1
    assert len(seen.of("poll")) == 1
    assert all(c == LifecycleConfig((builders.rule("expire", 9),)) for c in s3.lifecycles.values())


async def test_every_report_carries_the_whole_accounts_picture() -> None:
    s3, clock = fleet(30), FakeClock()
    s3.add_bucket("unmanaged")
    s3.fail(READ, "logs-007", lambda op, b: AccessDenied("no", operation=op, bucket=b))
    daemon, seen = continuous(s3, clock, resync=100.0, poll=1_000.0)
    with anyio.fail_after(10):
        await run_for(daemon, clock, 20)
    last = seen.of(VERIFY)[-1]
    assert len(last.results) < 30
    assert last.picture is not None
    assert last.picture.counts[BucketState.FAILED] == 1
    assert last.picture.counts[BucketState.UNMANAGED] == 1
    assert sum(last.picture.counts.values()) == 31


async def test_an_event_wakes_the_daemon_between_ticks() -> None:
    """Real time, a tick of a minute: the bucket is repaired within a second, not at the next tick."""
    s3 = fleet(10)
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=4, keep_plans=False)
    verifier = Verifier(reconciler, 10_000.0, tick=60.0)
    daemon = Daemon(reconciler, poll_interval=1_000, resync_interval=10_000, verifier=verifier)
    async with anyio.create_task_group() as tg:
        tg.start_soon(daemon.run)
        with anyio.fail_after(5):
            while daemon.stats.slices < 1:  # the start-up pass is over; the first tick's slice ran
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)  # asleep until the next tick, a minute away
        s3.lifecycles["logs-005"] = LifecycleConfig((builders.rule("expire", 3),))
        daemon.request_verify(["logs-005"])
        with anyio.fail_after(1):
            while s3.lifecycles["logs-005"] != LifecycleConfig((builders.rule("expire"),)):
                await anyio.sleep(0.01)
        daemon.request_stop()


def named_and_fleet(n: int) -> MemoryS3:
    """``n`` buckets of a fleet, plus ``one`` and ``two``, each named by a file of its own."""
    s3 = fleet(n)
    for name in ("one", "two"):
        s3.objects[f"definition/{name}.toml"] = builders.definition(name, builders.rule("own"))
        s3.add_bucket(name)
    return s3


async def changed_at(daemon: Daemon, clock: FakeClock, t: float, change: Callable[[], None]) -> dict[str, int]:
    """Run the daemon; at ``t`` make ``change`` and ask for a poll; the requests the poll's cycle made."""
    store = daemon.reconciler.store  # type: ignore[attr-defined]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await at(clock, t)
            before = dict(store.calls)
            change()
            daemon.request_poll()
            while not isinstance(daemon.observer, Reports) or not daemon.observer.of("poll"):
                await anyio.lowlevel.checkpoint()
            daemon.request_stop()
    after = store.calls
    return {op: after[op] - before.get(op, 0) for op in after if after[op] != before.get(op, 0)}


async def test_one_file_changed_among_many_costs_the_poll_that_file_and_its_buckets_read_and_written() -> None:
    s3, clock = named_and_fleet(500), FakeClock()
    daemon, seen = continuous(s3, clock, resync=100_000.0, poll=100_000.0)

    def change() -> None:
        s3.objects["definition/one.toml"] = builders.definition("one", builders.rule("own", 9))

    counted = await changed_at(daemon, clock, 1000 + 0.2, change)
    # The poll's listing, the file, the bucket read and written: no listing of the account.
    assert counted == {"ListObjectsV2": 1, "GetObject": 1, READ: 1, PUT: 1}
    assert s3.lifecycles["one"] == LifecycleConfig((builders.rule("own", 9),))
    polls = seen.of("poll")
    assert len(polls) == 1
    assert polls[0].counts == {BucketState.CHANGED: 1}


async def test_a_widened_selector_verifies_the_buckets_it_now_selects_at_once_and_schedules_them() -> None:
    s3, clock = fleet(20), FakeClock()
    s3.add_bucket("other-a")
    s3.add_bucket("other-b")
    daemon, _ = continuous(s3, clock, resync=100_000.0, poll=100_000.0)
    verifier = daemon.verifier
    assert isinstance(verifier, Verifier)

    def change() -> None:
        s3.objects["definition/logs.toml"] = builders.fleet(["logs-*", "other-*"], builders.rule("expire"))

    counted = await changed_at(daemon, clock, 1000 + 0.2, change)
    assert counted[READ] <= 22  # the two it now selects, and those its old version selected
    assert "ListBuckets" not in counted
    assert s3.lifecycles["other-a"] == LifecycleConfig((builders.rule("expire"),))
    assert "other-b" in verifier.schedule
    assert len(verifier.schedule) == 22


async def test_a_change_that_makes_the_picture_partial_is_a_full_pass() -> None:
    s3, clock = named_and_fleet(10), FakeClock()
    daemon, seen = continuous(s3, clock, resync=100_000.0, poll=100_000.0)

    def change() -> None:
        s3.objects["definition/two.toml"] = b"BucketName = [unclosed"

    counted = await changed_at(daemon, clock, 1000 + 0.2, change)
    # Every bucket a readable file selects (not two, whose file no longer reads): nothing is narrowed
    # on a partial picture.
    assert counted[READ] == 11
    assert counted["ListBuckets"] == 1
    report = seen.of("poll")[0]
    assert report.definitions is not None
    assert report.definitions.partial


async def test_a_new_file_naming_a_bucket_created_since_the_listing_lists_the_account_and_writes_it_at_once() -> None:
    s3, clock = fleet(10), FakeClock()
    daemon, seen = continuous(s3, clock, resync=100_000.0, poll=100_000.0)
    wanted = LifecycleConfig((builders.rule("own"),))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await at(clock, 1000.2)
            listed = s3.calls["ListBuckets"]
            s3.add_bucket("fresh")  # created after the start-up pass listed the account
            s3.objects["definition/fresh.toml"] = builders.definition("fresh", builders.rule("own"))
            daemon.request_poll()
            asked = clock.now()
            while s3.lifecycles["fresh"] != wanted:
                await anyio.lowlevel.checkpoint()
            done = clock.now()
            daemon.request_stop()
    assert s3.calls["ListBuckets"] == listed + 1  # only a listing tells a new bucket from a missing one
    assert done - asked < 1.0  # the poll's listing pass, then the slice right after it
    assert seen.of("poll")[0].counts[BucketState.MISSING] == 0


async def test_a_bucket_deleted_since_the_listing_leaves_the_schedule_when_an_event_names_it() -> None:
    s3, clock = fleet(10), FakeClock()
    daemon, seen = continuous(s3, clock, resync=100_000.0, poll=100_000.0)
    verifier = daemon.verifier
    assert isinstance(verifier, Verifier)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await at(clock, 1000.2)
            del s3.lifecycles["logs-003"]  # DeleteBucket, announced
            daemon.request_verify(["logs-003"])
            while "logs-003" in verifier.schedule:
                await anyio.lowlevel.checkpoint()
            daemon.request_stop()
    assert "logs-003" not in verifier.regions
    missing = [r for r in seen.of(VERIFY) if r.counts[BucketState.MISSING]]
    assert [r.bucket for r in missing[0].results] == ["logs-003"]
    assert not any(r.counts[BucketState.FAILED] for r in seen.reports)


async def test_a_large_accounts_second_of_verifications_goes_in_slices_back_to_back() -> None:
    s3, clock = fleet(2_000), FakeClock()
    daemon, seen = continuous(s3, clock, resync=1.0, poll=100_000.0)  # 2,000 verifications a second
    with anyio.fail_after(20):
        await run_for(daemon, clock, 5.5)
    slices = seen.of(VERIFY)
    assert max(sum(r.counts.values()) for r in slices) <= SLICE  # an event waits for one slice at most
    assert s3.calls[READ] >= 2_000 + 4 * 2_000  # the pass, then the steady rate for four seconds and more
