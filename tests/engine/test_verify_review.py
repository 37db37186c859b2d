"""Adversarial review of continuous verification (issue 18): each test here states what a
whole-account cycle guaranteed, or what the README and ARCHITECTURE promise, and checks that
slices, targeted changes and events keep it."""

from __future__ import annotations

import pytest

from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.cycle_scope import CycleScope
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
    report = await runner.run_cycle("startup" if read else "resync", verifier.track, scope=CycleScope(reads=read))
    verifier.pass_ended(report, now, read=read)
    return report


def ids(s3: MemoryS3, bucket: str) -> list[str]:
    return sorted(r.id or "" for r in s3.lifecycles[bucket].rules)


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


async def test_a_bucket_an_event_announces_while_a_pass_is_listing_is_verified_at_the_next_step() -> None:
    s3 = fleet_of(5)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    verifier.pass_begins()  # a resync's listing pass: at a million buckets it lists for minutes
    report = await runner.run_cycle("resync", verifier.track, scope=CycleScope(reads=False))
    s3.add_bucket("logs-new")  # created after the listing passed its page; CreateBucket's event comes
    verifier.now(["logs-new"], 10.0)
    verifier.pass_ended(report, 10.0, read=False)
    due = await verifier.step(10.5)
    assert due is not None
    assert [r.bucket for r in due.results] == ["logs-new"]
    assert ids(s3, "logs-new") == ["expire"]


async def test_the_tags_of_buckets_gone_from_the_account_are_not_kept_for_ever() -> None:
    s3 = account(team=fleet(["logs-*"], rule("expire"), BucketTags={"team": "a"}))
    for i in range(10):
        s3.add_bucket(f"logs-{i:03d}", tags={"team": "a"})
    verifier, runner = verifier_of(s3, tags=s3)
    await passed(verifier, runner, 0.0)
    assert len(runner.tags) == 10
    for i in range(10):  # short-lived buckets: created, verified, deleted
        del s3.lifecycles[f"logs-{i:03d}"]
        s3.regions.pop(f"logs-{i:03d}")
    for t in range(1, 6):  # resyncs: listing passes; the start-up's full pass never comes again
        await passed(verifier, runner, t * INTERVAL, read=False)
    assert "logs-000" not in verifier.regions
    assert len(runner.tags) == 0


async def test_an_event_naming_a_bucket_the_account_does_not_hold_leaves_nothing_behind() -> None:
    s3 = fleet_of(3)
    verifier, runner = verifier_of(s3)
    await passed(verifier, runner, 0.0)
    verifier.now([f"not-ours-{i}" for i in range(100)], 1.0)  # another account's, or unmanaged ones
    await verifier.step(1.5)
    assert sorted(verifier.regions) == ["logs-000", "logs-001", "logs-002"]
    assert len(verifier.schedule) == 3
