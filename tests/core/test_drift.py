"""Telling a server's dropped fields from real drift."""

from __future__ import annotations

from typing import Any

import pytest

from lakecircle.core.drift import Applied, Verdict, dropped_fields, judge, server_dropped
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.plan import plan_bucket
from lakecircle.core.report import BucketState
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import rule

SIZED = rule(
    Filter={"And": {"Prefix": "p/", "ObjectSizeGreaterThan": 10}},
    Expiration=None,
    NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 3},
)


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (
            rule(Filter={"Prefix": "p/"}, Expiration=None, NoncurrentVersionExpiration={"NoncurrentDays": 5}),
            ["Filter.ObjectSizeGreaterThan", "NoncurrentVersionExpiration.NewerNoncurrentVersions"],
        ),
        (
            rule(
                Filter={"Prefix": "p/"},
                Expiration=None,
                NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 3},
            ),
            ["Filter.ObjectSizeGreaterThan"],
        ),
        (
            rule(Filter={"Prefix": "q/"}, Expiration=None, NoncurrentVersionExpiration={"NoncurrentDays": 5}),
            None,
        ),  # other value
        (rule(Filter={"Prefix": "p/"}, Expiration=None, NoncurrentVersionExpiration={"NoncurrentDays": 6}), None),
        (
            rule(Filter={"Prefix": "p/"}, Expiration={"Days": 1}, NoncurrentVersionExpiration={"NoncurrentDays": 5}),
            None,
        ),
    ],
)
def test_dropped_fields_only_when_live_is_a_subset(live: Rule, expected: list[str] | None) -> None:
    assert dropped_fields(SIZED, live) == expected


def test_added_or_removed_rules_are_never_a_servers_dropping() -> None:
    desired = LifecycleConfig((SIZED,))
    assert server_dropped(plan_bucket("b", desired, LifecycleConfig())) is None
    tdmos_only = plan_bucket(
        "b",
        LifecycleConfig((SIZED,), "varies_by_storage_class"),
        LifecycleConfig((SIZED,), "all_storage_classes_128K"),
    )
    assert server_dropped(tdmos_only) == ["TransitionDefaultMinimumObjectSize"]


def lossy(config: LifecycleConfig) -> LifecycleConfig:
    """Keeps what moto's server keeps: no object sizes, no NewerNoncurrentVersions on expiration."""
    rules = []
    for r in config.rules:
        wire = r.to_wire()
        and_ = wire.get("Filter", {}).get("And")
        if and_:
            and_.pop("ObjectSizeGreaterThan", None)
            and_.pop("ObjectSizeLessThan", None)
        wire.get("NoncurrentVersionExpiration", {}).pop("NewerNoncurrentVersions", None)
        rules.append(Rule.model_validate(wire))
    return LifecycleConfig(tuple(rules), "all_storage_classes_128K")


DEFINITION = b"""BucketName = "drift-bucket"
TransitionDefaultMinimumObjectSize = "varies_by_storage_class"
[[LifecycleConfiguration.Rules]]
ID = "r"
Status = "Enabled"
Filter = { And = { Prefix = "p/", ObjectSizeGreaterThan = 10, Tags = [{ Key = "k", Value = "v" }] } }
NoncurrentVersionExpiration = { NoncurrentDays = 5, NewerNoncurrentVersions = 3 }
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def world(**kwargs: Any) -> tuple[MemoryS3, Clock, Reconciler]:
    s3 = MemoryS3(**kwargs)
    s3.objects["definition/b.toml"] = DEFINITION
    s3.add_bucket("drift-bucket")
    clock = Clock()
    reconciler = Reconciler(s3, DefinitionLoader(s3), clock=clock, settle_seconds=300)
    return s3, clock, reconciler


@pytest.mark.anyio
async def test_a_server_that_drops_fields_forever_is_diverging_and_rewritten_only_with_backoff() -> None:
    s3, clock, reconciler = world(stores=lossy)
    first = await reconciler.run_cycle()
    assert first.counts[BucketState.CHANGED] == 1
    states = []
    for _ in range(24 * 60):  # a day of cycles, one a minute
        clock.t += 60
        report = await reconciler.run_cycle()
        states.append(report.results[0].state)
        assert "TransitionDefaultMinimumObjectSize" in report.results[0].dropped
    assert set(states) == {BucketState.DIVERGING}
    writes = s3.calls["PutBucketLifecycleConfiguration"]
    # Rewrites after 300, 600, 1200, ... seconds: about log2(86400 / 300) of them in a day.
    assert 2 <= writes <= 1 + 10
    assert writes < len(states) / 100


def stale_for(seconds: float, clock: Clock) -> type[MemoryS3]:
    class Stale(MemoryS3):
        """Answers with the old configuration for ``seconds`` after each write."""

        def __init__(self) -> None:
            super().__init__()
            self.old: dict[str, tuple[LifecycleConfig, float]] = {}

        async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
            self.old[bucket.name] = (self.lifecycles[bucket.name], clock.t)
            await super().put_lifecycle(bucket, config)

        async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
            fresh = await super().get_lifecycle(bucket)
            old = self.old.get(bucket.name)
            if old is not None and clock.t - old[1] < seconds:
                return old[0]
            return fresh

    return Stale


@pytest.mark.anyio
async def test_a_bucket_that_reads_back_its_old_rules_for_a_while_is_propagating_not_rewritten() -> None:
    clock = Clock()
    s3 = stale_for(120, clock)()
    s3.objects["definition/b.toml"] = DEFINITION
    s3.add_bucket("drift-bucket", LifecycleConfig((rule(Filter={"Prefix": "old/"}, Expiration={"Days": 9}),)))
    reconciler = Reconciler(s3, DefinitionLoader(s3), clock=clock, settle_seconds=300)
    assert (await reconciler.run_cycle()).counts[BucketState.CHANGED] == 1
    seen = []
    for _ in range(10):
        clock.t += 30
        seen.append((await reconciler.run_cycle()).results[0].state)
    assert seen[:3] == [BucketState.PROPAGATING] * 3
    assert set(seen[4:]) == {BucketState.IN_SYNC}
    assert s3.calls["PutBucketLifecycleConfiguration"] == 1


@pytest.mark.anyio
async def test_drift_by_another_writer_after_a_confirmed_write_is_corrected_at_once() -> None:
    s3, clock, reconciler = world()
    await reconciler.run_cycle()
    clock.t += 60
    assert (await reconciler.run_cycle()).results[0].state is BucketState.IN_SYNC
    s3.lifecycles["drift-bucket"] = LifecycleConfig((rule(Filter={"Prefix": "other/"}, Expiration={"Days": 1}),))
    clock.t += 60
    report = await reconciler.run_cycle()
    assert report.results[0].state is BucketState.CHANGED
    assert report.results[0].external
    assert report.external_drift == 1
    assert s3.calls["PutBucketLifecycleConfiguration"] == 2


# -- judge: what a differing bucket means after LakeCircle wrote it -------------------------

WRITTEN = LifecycleConfig((rule(Filter={"Prefix": "new/"}, Expiration={"Days": 30}),))
BEFORE = LifecycleConfig((rule(Filter={"Prefix": "old/"}, Expiration={"Days": 9}),))
OTHER = LifecycleConfig((rule(Filter={"Prefix": "other/"}, Expiration={"Days": 1}),))
NOTHING = LifecycleConfig()
SETTLE = 300.0


@pytest.mark.parametrize(
    ("live", "confirmed", "rewrites", "elapsed", "expected"),
    [
        pytest.param(BEFORE, False, 0, 10, Verdict.PROPAGATING, id="old-rules-just-after-the-write"),
        pytest.param(NOTHING, False, 0, 10, Verdict.PROPAGATING, id="no-rules-just-after-the-write"),
        pytest.param(OTHER, False, 0, 10, Verdict.EXTERNAL_DRIFT, id="someone-elses-rules-just-after"),
        pytest.param(BEFORE, True, 0, 10, Verdict.EXTERNAL_DRIFT, id="old-rules-after-a-read-confirmed-the-write"),
        pytest.param(NOTHING, True, 0, 10, Verdict.EXTERNAL_DRIFT, id="no-rules-after-a-read-confirmed-the-write"),
        pytest.param(BEFORE, False, 0, 400, Verdict.EXTERNAL_DRIFT, id="old-rules-past-the-settle-window"),
        pytest.param(NOTHING, True, 2, 10, Verdict.EXTERNAL_DRIFT, id="confirmed-after-diverging"),
        pytest.param(BEFORE, False, 1, 400, Verdict.DIVERGING_WAIT, id="reverted-again-before-the-backoff"),
        pytest.param(BEFORE, False, 1, 700, Verdict.DIVERGING_WRITE, id="reverted-again-after-the-backoff"),
    ],
)
def test_judge_tells_propagation_from_another_writer(
    live: LifecycleConfig, confirmed: bool, rewrites: int, elapsed: float, expected: Verdict
) -> None:
    record = Applied.of(WRITTEN, BEFORE, 1000.0, rewrites=rewrites, confirmed=confirmed)
    plan = plan_bucket("b", WRITTEN, live)
    assert judge(plan, record, now=1000.0 + elapsed, settle=SETTLE) is expected


def test_judge_says_write_when_the_definitions_changed_or_nothing_was_written() -> None:
    plan = plan_bucket("b", OTHER, BEFORE)
    assert judge(plan, None, now=0.0, settle=SETTLE) is Verdict.WRITE
    assert judge(plan, Applied.of(WRITTEN, BEFORE, 0.0, confirmed=True), now=1.0, settle=SETTLE) is Verdict.WRITE


@pytest.mark.anyio
async def test_confirmed_rules_that_vanish_are_rewritten_in_the_next_cycle() -> None:
    s3, clock, reconciler = world()
    await reconciler.run_cycle()
    clock.t += 10
    assert (await reconciler.run_cycle()).results[0].state is BucketState.IN_SYNC  # the read confirms
    s3.lifecycles["drift-bucket"] = LifecycleConfig()  # another writer deletes the rules, within the settle window
    clock.t += 10
    report = await reconciler.run_cycle()
    assert report.results[0].state is BucketState.CHANGED
    assert report.results[0].external
    assert s3.calls["PutBucketLifecycleConfiguration"] == 2


@pytest.mark.anyio
async def test_a_record_another_process_wrote_moments_ago_is_not_taken_as_confirmed() -> None:
    clock = Clock()
    s3 = MemoryS3()
    s3.objects["definition/b.toml"] = DEFINITION
    s3.add_bucket("drift-bucket", BEFORE)
    first = Reconciler(s3, DefinitionLoader(s3), clock=clock, settle_seconds=300, history=History(s3))
    assert (await first.run_cycle()).results[0].state is BucketState.CHANGED
    s3.lifecycles["drift-bucket"] = BEFORE  # S3 still answers with the old rules
    clock.t += 5
    second = Reconciler(s3, DefinitionLoader(s3), clock=clock, settle_seconds=300, history=History(s3))
    assert (await second.run_cycle()).results[0].state is BucketState.PROPAGATING
