"""Adversarial review of continuous verification (issue 18): each test here states what a
whole-account cycle guaranteed, or what the README and ARCHITECTURE promise, and checks that
slices, targeted changes and events keep it."""

from __future__ import annotations

import pytest

from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.verify import Verifier
from lakecircle.testing import MemoryS3
from tests.builders import definition, fleet, rule
from tests.engine.test_cycle import account

pytestmark = pytest.mark.anyio

INTERVAL = 100.0


def fleet_of(buckets: int, *rules: object) -> MemoryS3:
    s3 = account(logs=fleet(["logs-*"], *(rules or (rule("expire"),))))  # type: ignore[arg-type]
    for i in range(buckets):
        s3.add_bucket(f"logs-{i:03d}")
    return s3


def verifier_of(s3: MemoryS3, **kwargs: object) -> tuple[Verifier, Reconciler]:
    runner = Reconciler(s3, DefinitionLoader(s3), concurrency=4, **kwargs)  # type: ignore[arg-type]
    return Verifier(runner, INTERVAL), runner


async def passed(verifier: Verifier, runner: Reconciler, now: float, *, read: bool = True) -> CycleReport:
    verifier.pass_begins()
    report = await runner.run_cycle("startup" if read else "resync", verifier.track, reads=read)
    verifier.pass_ended(report, now, read=read)
    return report


def ids(s3: MemoryS3, bucket: str) -> list[str | None]:
    return sorted(r.id for r in s3.lifecycles[bucket].rules)


async def test_removals_the_blast_radius_guard_held_in_a_change_are_not_made_one_slice_at_a_time() -> None:
    s3 = fleet_of(20, rule("expire"), rule("keep", 60, prefix="k/"))
    verifier, runner = verifier_of(s3, max_removals=5)
    await passed(verifier, runner, 0.0)
    assert ids(s3, "logs-000") == ["expire", "keep"]
    s3.objects["definition/logs.toml"] = fleet(["logs-*"], rule("expire"))  # drops "keep" from 20 buckets
    refs = await runner.loader.list_refs()
    change = await verifier.changed("poll", refs, clock=lambda: 10.0)
    assert change.guards, "the change's 20 removals trip LCC_MAX_REMOVALS=5"
    for second in range(11, 11 + 2 * int(INTERVAL)):
        await verifier.step(float(second))
    # A whole-account cycle holds these removals at every resync until a person allows them (a
    # stop, not an allowance); slices of one bucket each must not let them through one by one.
    removed = [b for b in sorted(s3.lifecycles) if "keep" not in ids(s3, b)]
    assert removed == []


async def test_a_bucket_made_invalid_by_a_change_is_still_counted_in_the_picture() -> None:
    s3 = account(a=definition("bkt-a", rule("r1")), b=definition("bkt-b", rule("r1")))
    s3.add_bucket("bkt-a")
    s3.add_bucket("bkt-b")
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    await passed(verifier, runner, 1.0)
    assert verifier.picture().counts == {BucketState.IN_SYNC: 2}
    s3.objects["definition/a.toml"] = definition("bkt-a", rule("r1"), Ownership="nonsense")
    refs = await runner.loader.list_refs()
    await verifier.changed("poll", refs, clock=lambda: 10.0)
    # The bucket still exists and a definition names it: the gauges must not lose it until the next listing.
    assert verifier.picture().counts == {BucketState.IN_SYNC: 1, BucketState.INVALID: 1}


async def test_slices_remove_no_rule_while_a_definition_file_cannot_be_read() -> None:
    s3 = fleet_of(10)
    s3.objects["definition/keep.toml"] = fleet(["logs-*"], rule("keep", 60, prefix="k/"))
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    assert ids(s3, "logs-000") == ["expire", "keep"]
    s3.objects["definition/keep.toml"] = b"BucketMatch = ["  # saved broken: the picture is partial
    refs = await runner.loader.list_refs()
    await verifier.changed("poll", refs, clock=lambda: 10.0)
    for second in range(11, 11 + 2 * int(INTERVAL)):
        await verifier.step(float(second))
    assert [b for b in sorted(s3.lifecycles) if "keep" not in ids(s3, b)] == []
