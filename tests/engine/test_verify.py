"""Continuous verification over the in-memory account, in fake time: a full pass spreads the next
verifications over the interval, each bucket is verified once per interval at a steady rate, drift
is repaired when its bucket's turn comes, buckets asked for now go first, and the schedule follows
the listing."""

from __future__ import annotations

import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.engine.verify import VERIFY, Verifier
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, fleet, rule
from tests.engine.test_cycle import account, reconciler

pytestmark = pytest.mark.anyio

INTERVAL = 100.0


def fleet_of(buckets: int) -> MemoryS3:
    s3 = account(logs=fleet(["logs-*"], rule("expire")))
    for i in range(buckets):
        s3.add_bucket(f"logs-{i:03d}")
    return s3


async def passed(verifier: Verifier, now: float) -> None:
    """A full pass at ``now``, as the daemon's start-up or resync cycle."""
    await verifier.reconciler.run_cycle()
    refs = [ref async for page in verifier.reconciler.store.iter_buckets() for ref in page]
    verifier.passed(refs, now)


async def test_every_bucket_is_verified_once_per_interval_at_a_steady_rate() -> None:
    s3 = fleet_of(200)
    verifier = Verifier(reconciler(s3), INTERVAL)
    await passed(verifier, 0.0)
    reads = s3.calls["GetBucketLifecycleConfiguration"]
    per_tick = []
    for second in range(1, int(INTERVAL) + 1):
        report = await verifier.step(float(second))
        per_tick.append(len(report.results) if report is not None else 0)
        assert report is None or report.trigger == VERIFY
    assert sum(per_tick) == 200
    assert set(per_tick) == {2}  # 200 buckets / 100 s, every second
    assert s3.calls["GetBucketLifecycleConfiguration"] - reads == 200
    assert s3.calls["ListBuckets"] == 2  # the pass's cycle and its listing; none since
    assert verifier.lag(INTERVAL) == 0.0


async def test_drift_is_repaired_when_its_buckets_turn_comes() -> None:
    s3 = fleet_of(10)
    verifier = Verifier(reconciler(s3), INTERVAL)
    await passed(verifier, 0.0)
    wanted = s3.lifecycles["logs-004"]
    s3.lifecycles["logs-004"] = LifecycleConfig((rule("expire", 3),))  # drift behind LakeCircle's back
    for second in range(1, int(INTERVAL) + 1):
        await verifier.step(float(second))
    assert s3.lifecycles["logs-004"] == wanted


async def test_buckets_asked_for_now_go_first_beyond_the_rate_and_new_ones_join_the_schedule() -> None:
    s3 = fleet_of(100)
    verifier = Verifier(reconciler(s3), INTERVAL)
    await passed(verifier, 0.0)
    s3.add_bucket("logs-new")  # created since the listing; an event names it
    wanted = s3.lifecycles["logs-050"]
    s3.lifecycles["logs-050"] = LifecycleConfig((rule("expire", 3),))
    verifier.now(["logs-050", "logs-new"], 0.5)
    report = await verifier.step(1.0)
    assert report is not None
    # The two, and the one due at the steady rate (1 a second); the report lists them by name.
    assert [r.bucket for r in report.results] == ["logs-000", "logs-050", "logs-new"]
    assert s3.lifecycles["logs-050"] == wanted
    assert "logs-new" in verifier.schedule


async def test_a_backlog_drains_at_no_more_than_twice_the_rate() -> None:
    s3 = fleet_of(100)
    verifier = Verifier(reconciler(s3), INTERVAL)
    await passed(verifier, 0.0)
    await verifier.step(50.0)  # the first step after a long pause: half the buckets are due
    assert verifier.lag(50.0) > 0
    report = await verifier.step(51.0)
    assert report is not None
    assert len(report.results) == 2


async def test_a_full_pass_drops_the_buckets_no_longer_listed() -> None:
    s3 = fleet_of(3)
    verifier = Verifier(reconciler(s3), INTERVAL)
    await passed(verifier, 0.0)
    verifier.passed([BucketRef("logs-000"), BucketRef("logs-001")], 10.0)
    assert "logs-002" not in verifier.schedule
    assert len(verifier.schedule) == 2


async def test_a_bucket_no_longer_defined_is_not_written_when_its_turn_comes() -> None:
    s3 = account(a=definition("bkt-one", rule("r1")))
    s3.add_bucket("bkt-one", LifecycleConfig((rule("theirs"),)))
    verifier = Verifier(reconciler(s3), INTERVAL)
    verifier.passed([BucketRef("bkt-one")], 0.0)
    del s3.objects["definition/a.toml"]
    await verifier.step(INTERVAL)
    assert [r.id for r in s3.lifecycles["bkt-one"].rules] == ["theirs"]
