"""A cycle over given buckets only (a slice of continuous verification, an event, a definition
change): no listing, only those buckets read and written, none judged missing or unmanaged."""

from __future__ import annotations

import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState
from lakecircle.engine.cycle_scope import CycleScope
from lakecircle.ports import BucketRef
from tests.builders import definition, fleet, rule
from tests.engine.test_cycle import account, reconciler, writes

pytestmark = pytest.mark.anyio


async def test_a_slice_reads_and_writes_only_its_buckets_and_lists_none() -> None:
    s3 = account(a=definition("bkt1", rule("r1")), b=definition("bkt2", rule("r1")), c=definition("ghost", rule("r1")))
    s3.add_bucket("bkt1")
    s3.add_bucket("bkt2")
    report = await reconciler(s3).run_cycle(scope=CycleScope(buckets=[BucketRef("bkt2")]))
    assert [(r.bucket, r.state) for r in report.results] == [("bkt2", BucketState.CHANGED)]
    assert s3.calls["ListBuckets"] == 0
    assert s3.calls["GetBucketLifecycleConfiguration"] == 1
    assert writes(s3) == 1
    assert report.counts[BucketState.MISSING] == 0  # "ghost" is judged by full passes only


async def test_a_slice_verifies_buckets_a_selector_matches_and_skips_those_no_longer_managed() -> None:
    s3 = account(logs=fleet(["logs-*"], rule("expire")))
    s3.add_bucket("logs-a", LifecycleConfig((rule("old"),)))
    s3.add_bucket("scratch", LifecycleConfig((rule("theirs"),)))
    report = await reconciler(s3).run_cycle(scope=CycleScope(buckets=[BucketRef("logs-a"), BucketRef("scratch")]))
    assert [r.bucket for r in report.results] == ["logs-a"]
    assert s3.lifecycles["scratch"].rules[0].id == "theirs"
    assert s3.calls["GetBucketLifecycleConfiguration"] == 1


async def test_a_slice_says_nothing_of_definitions_with_problems_which_full_passes_report() -> None:
    s3 = account(a=definition("bkt1", rule("r1")), bad=definition("x", rule("r1")))
    s3.add_bucket("bkt1")
    report = await reconciler(s3).run_cycle(scope=CycleScope(buckets=[BucketRef("bkt1")]))
    assert [r.bucket for r in report.results] == ["bkt1"]
    full = await reconciler(s3).run_cycle()
    assert BucketState.INVALID in {r.state for r in full.results}
