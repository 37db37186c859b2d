"""Continuous verification over the in-memory account, in fake time: a full pass spreads the next
verifications over the interval, each bucket is verified once per interval at a steady rate, drift
is repaired when its bucket's turn comes, buckets asked for now go first, a listing pass schedules
the new buckets and drops the gone ones without reading any, and the picture of the account's
buckets follows each slice."""

from __future__ import annotations

import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.cycle_scope import CycleScope
from lakecircle.engine.verify import SLICE, VERIFY, Verifier
from lakecircle.errors import AccessDenied
from lakecircle.testing import MemoryS3
from tests.builders import definition, fleet, rule
from tests.engine.test_cycle import account, reconciler

pytestmark = pytest.mark.anyio

INTERVAL = 100.0
READ = "GetBucketLifecycleConfiguration"


def fleet_of(buckets: int) -> MemoryS3:
    s3 = account(logs=fleet(["logs-*"], rule("expire")))
    for i in range(buckets):
        s3.add_bucket(f"logs-{i:03d}")
    return s3


def verifier_of(s3: MemoryS3) -> tuple[Verifier, Reconciler]:
    runner = reconciler(s3)
    return Verifier(runner, INTERVAL), runner


async def passed(verifier: Verifier, runner: Reconciler, now: float, *, read: bool = True) -> CycleReport:
    """A pass at ``now``: the daemon's start-up or SIGHUP cycle (``read``), or its resync's listing pass."""
    verifier.pass_begins()
    report = await runner.run_cycle("startup" if read else "resync", verifier.track, scope=CycleScope(reads=read))
    verifier.pass_ended(report, now, read=read)
    return report


async def step(verifier: Verifier, runner: Reconciler, now: float) -> CycleReport | None:
    return await verifier.step(now)


async def test_every_bucket_is_verified_once_per_interval_at_a_steady_rate() -> None:
    s3 = fleet_of(200)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    reads = s3.calls["GetBucketLifecycleConfiguration"]
    per_tick = []
    for second in range(1, int(INTERVAL) + 1):
        report = await step(verifier, runner, float(second))
        per_tick.append(len(report.results) if report is not None else 0)
        assert report is None or report.trigger == VERIFY
    assert sum(per_tick) == 200
    assert set(per_tick) == {2}  # 200 buckets / 100 s, every second
    assert s3.calls["GetBucketLifecycleConfiguration"] - reads == 200
    assert s3.calls["ListBuckets"] == 1  # the pass's; none since
    assert verifier.lag(INTERVAL) == 0.0


async def test_drift_is_repaired_when_its_buckets_turn_comes() -> None:
    s3 = fleet_of(10)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    wanted = s3.lifecycles["logs-004"]
    s3.lifecycles["logs-004"] = LifecycleConfig((rule("expire", 3),))  # drift behind LakeCircle's back
    for second in range(1, int(INTERVAL) + 1):
        await step(verifier, runner, float(second))
    assert s3.lifecycles["logs-004"] == wanted


async def test_buckets_asked_for_now_go_first_beyond_the_rate_and_new_ones_join_the_schedule() -> None:
    s3 = fleet_of(100)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    s3.add_bucket("logs-new")  # created since the listing; an event names it
    wanted = s3.lifecycles["logs-050"]
    s3.lifecycles["logs-050"] = LifecycleConfig((rule("expire", 3),))
    verifier.now(["logs-050", "logs-new"], 0.5)
    report = await step(verifier, runner, 1.0)
    assert report is not None
    # The two, and the one due at the steady rate (1 a second); the report lists them by name.
    assert [r.bucket for r in report.results] == ["logs-000", "logs-050", "logs-new"]
    assert s3.lifecycles["logs-050"] == wanted
    assert "logs-new" in verifier.schedule


async def test_a_backlog_drains_at_no_more_than_twice_the_rate() -> None:
    s3 = fleet_of(100)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    await step(verifier, runner, 50.0)  # the first step after a long pause: half the buckets are due
    assert verifier.lag(50.0) > 0
    report = await step(verifier, runner, 51.0)
    assert report is not None
    assert len(report.results) == 2


async def test_a_listing_pass_reads_nothing_drops_the_gone_buckets_and_verifies_the_new_ones_first() -> None:
    s3 = fleet_of(3)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    del s3.lifecycles["logs-002"]
    s3.regions.pop("logs-002")
    s3.add_bucket("logs-new")
    reads = s3.calls["GetBucketLifecycleConfiguration"]
    report = await passed(verifier, runner, 10.0, read=False)
    assert s3.calls["GetBucketLifecycleConfiguration"] == reads
    assert report.counts[BucketState.IN_SYNC] == 0
    assert "logs-002" not in verifier.schedule
    assert "logs-002" not in verifier.regions
    due = await step(verifier, runner, 10.5)
    assert due is not None
    assert [r.bucket for r in due.results] == ["logs-new"]
    assert s3.lifecycles["logs-new"].rules


async def test_a_pass_that_could_not_list_drops_nothing() -> None:
    s3 = fleet_of(3)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    s3.fail("ListBuckets", "*", lambda op, b: AccessDenied("Access Denied", operation=op))
    report = await passed(verifier, runner, 10.0, read=False)
    assert report.fatal is not None
    assert len(verifier.schedule) == 3
    assert len(verifier.regions) == 3


async def test_a_bucket_no_longer_defined_leaves_the_schedule_unwritten_when_its_turn_comes() -> None:
    s3 = account(a=definition("bkt-one", rule("r1")))
    s3.add_bucket("bkt-one", LifecycleConfig((rule("theirs"),)))
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    s3.lifecycles["bkt-one"] = LifecycleConfig((rule("theirs"),))
    del s3.objects["definition/a.toml"]
    runner.loaded = await runner.loader.load()  # the daemon's poll found the definitions changed
    await verifier.step(INTERVAL)
    assert [r.id for r in s3.lifecycles["bkt-one"].rules] == ["theirs"]
    assert "bkt-one" not in verifier.schedule


async def test_the_picture_counts_every_managed_bucket_by_its_last_verification() -> None:
    s3 = fleet_of(10)
    s3.add_bucket("other")
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    assert verifier.picture().counts == {BucketState.CHANGED: 10, BucketState.UNMANAGED: 1}
    await passed(verifier, runner, 0.5)
    assert verifier.picture().counts == {BucketState.IN_SYNC: 10, BucketState.UNMANAGED: 1}
    s3.fail(READ, "logs-000", lambda op, b: AccessDenied("no", operation=op, bucket=b))
    verifier.now(["logs-000"], 1.0)
    await step(verifier, runner, 1.0)
    assert verifier.picture().counts == {BucketState.IN_SYNC: 9, BucketState.FAILED: 1, BucketState.UNMANAGED: 1}
    del s3.failures[(READ, "logs-000")]
    verifier.now(["logs-000"], 2.0)
    await step(verifier, runner, 2.0)
    assert verifier.picture().counts == {BucketState.IN_SYNC: 10, BucketState.UNMANAGED: 1}


async def test_slices_use_the_listed_regions_and_never_ask_where_a_bucket_is() -> None:
    s3 = fleet_of(5)
    for name in list(s3.regions):
        s3.regions[name] = "eu-west-1"
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    asked = []
    read = s3.get_lifecycle

    async def get_lifecycle(ref):  # type: ignore[no-untyped-def]
        asked.append(ref.region)
        return await read(ref)

    s3.get_lifecycle = get_lifecycle  # type: ignore[method-assign]
    for second in range(1, int(INTERVAL) + 1):
        await step(verifier, runner, float(second))
    assert asked == ["eu-west-1"] * 5
    assert verifier.regions["logs-000"] is verifier.regions["logs-004"]  # one string for the region


async def test_a_change_verifying_every_bucket_at_once_spreads_their_next_turns() -> None:
    s3 = fleet_of(200)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    s3.objects["definition/logs.toml"] = fleet(["logs-*"], rule("expire", 9))
    report = await verifier.changed("poll", None, clock=lambda: 10.0)
    assert sum(report.counts.values()) == 200
    per_tick = []
    for second in range(11, 11 + int(INTERVAL)):
        due = await step(verifier, runner, float(second))
        per_tick.append(sum(due.counts.values()) if due is not None else 0)
        assert verifier.lag(float(second)) <= 1.0
    assert set(per_tick) == {2}  # 200 over the interval, not 200 at once at 110 s


async def test_a_change_cut_short_is_measured_again_from_the_definitions_verified_whole() -> None:
    s3 = fleet_of(10)
    verifier, runner = verifier_of(s3)
    await verifier.run_pass("startup", None, read=True, clock=lambda: 0.0)
    s3.objects["definition/logs.toml"] = fleet(["logs-*"], rule("expire", 9))
    runner.drain()  # a shutdown, or the lease lost, as the change's cycle starts
    cut = await verifier.changed("poll", None, clock=lambda: 10.0)
    assert cut.interrupted
    runner._draining = False
    again = await verifier.changed("poll", None, clock=lambda: 20.0)
    assert sum(again.counts.values()) == 10
    assert all(c == LifecycleConfig((rule("expire", 9),)) for c in s3.lifecycles.values())


async def test_a_slice_takes_at_most_a_few_hundred_buckets_and_a_bucket_asked_for_goes_in_the_next() -> None:
    s3 = fleet_of(1_000)
    runner = reconciler(s3)
    verifier = Verifier(runner, 1.0)  # 1,000 buckets a second
    await verifier.run_pass("startup", None, read=True, clock=lambda: 0.0)
    first = await verifier.step(5.0)  # far behind: two seconds' worth allowed, in slices
    assert first is not None
    assert sum(first.counts.values()) == SLICE
    assert verifier.ready(5.0)
    verifier.now(["logs-999"], 5.0)  # an event, while the schedule catches up
    second = verifier.due(5.0, SLICE)
    assert second[0].name == "logs-999"
    assert len(second) == SLICE
