"""A cycle's writes fenced by this replica's lease: none starts while the fence is closed, a closed fence
stops the cycle's writes, a write is cut after the fence's write timeout, and the records name the holder
and the epoch (issue 17; the keeper itself is tested in test_leases.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.leases import Fence, Flights
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.records import Outcome
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
NOT_WRITTEN = f"not written: this replica's lease of account {ACCOUNT} is lost or about to expire"
WRITES = ("PutBucketLifecycleConfiguration", "DeleteBucketLifecycle")


@dataclass
class FakeFence:
    """A fence a test opens and closes."""

    open: bool = True
    account: str = ACCOUNT
    holder: str = "replica-a"
    epoch: int | None = 7
    write_timeout: float = 5.0
    flights: Flights = field(default_factory=lambda: Flights(time.monotonic, 60.0))

    def may_start_write(self) -> bool:
        return self.open

    def writing(self) -> AbstractContextManager[Callable[[], None]]:
        return self.flights.writing()


def account(s3: MemoryS3 | None = None, buckets: int = 3) -> MemoryS3:
    """``buckets`` buckets whose definitions each want a rule they do not have."""
    s3 = s3 or MemoryS3()
    for i in range(buckets):
        s3.objects[f"definition/b{i}.toml"] = definition(f"bkt{i}", rule("wanted"))
        s3.add_bucket(f"bkt{i}", LifecycleConfig((rule("old", prefix=None),)))
    return s3


async def cycle(s3: MemoryS3, fence: Fence | None, *, concurrency: int = 1) -> CycleReport:
    reconciler = Reconciler(s3, DefinitionLoader(s3), history=History(s3), concurrency=concurrency, fence=fence)
    with anyio.fail_after(5):
        return await reconciler.run_cycle()


def writes(s3: MemoryS3) -> int:
    return sum(s3.calls[op] for op in WRITES)


def documents(s3: MemoryS3, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(data) for key, data in sorted(s3.objects.items()) if key.startswith(prefix)]


async def test_a_closed_fence_writes_nothing_and_reports_the_bucket_not_written() -> None:
    s3 = account()
    report = await cycle(s3, FakeFence(open=False), concurrency=4)
    assert writes(s3) == 0
    assert not documents(s3, "history/")
    assert not documents(s3, "previous/")
    failed = report.failed
    assert failed
    assert {(r.error, r.stage) for r in failed} == {(NOT_WRITTEN, "write")}
    assert report.interrupted
    assert report.counts[BucketState.CHANGED] == 0


class ClosesAfterFirstWrite(MemoryS3):
    """Closes the fence once the first lifecycle write is made."""

    def __init__(self, fence: FakeFence) -> None:
        super().__init__()
        self.fence = fence

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        await super().put_lifecycle(bucket, config)
        self.fence.open = False


async def test_a_fence_that_closes_mid_cycle_stops_the_writes_not_yet_started() -> None:
    fence = FakeFence()
    s3 = account(ClosesAfterFirstWrite(fence), buckets=5)
    report = await cycle(s3, fence)
    assert writes(s3) == 1
    assert report.counts[BucketState.CHANGED] == 1
    assert [(r.bucket, r.error) for r in report.failed] == [("bkt1", NOT_WRITTEN)]  # the rest: not started
    assert report.interrupted
    assert len(documents(s3, "history/")) == 1


class ClosesWhileRecording(MemoryS3):
    """Closes the fence while the write-ahead change record is saved."""

    def __init__(self, fence: FakeFence) -> None:
        super().__init__()
        self.fence = fence

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        await super().put_bytes(key, data, content_type)
        if key.startswith("history/"):
            self.fence.open = False


async def test_a_fence_that_closes_while_the_records_are_saved_leaves_the_bucket_unwritten_and_says_so() -> None:
    fence = FakeFence()
    s3 = account(ClosesWhileRecording(fence), buckets=1)
    report = await cycle(s3, fence)
    assert writes(s3) == 0
    [result] = report.failed
    assert result.error == NOT_WRITTEN
    assert result.history is not None
    [record] = (await History(s3).bucket_history("bkt0")).records
    assert (record.outcome, record.error) == (Outcome.NOT_STARTED, NOT_WRITTEN)


class HangingWrites(MemoryS3):
    """Lifecycle writes never answer (a stalled connection)."""

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self.calls["PutBucketLifecycleConfiguration"] += 1
        await anyio.sleep_forever()


async def test_a_write_that_hangs_past_the_write_timeout_is_cut_and_recorded_failed() -> None:
    s3, fence = account(HangingWrites(), buckets=2), FakeFence(write_timeout=0.05)
    report = await cycle(s3, fence, concurrency=2)
    assert not fence.flights.settled(), "a cut write may still apply: a release now must not be settled"
    cut = (
        "cut after 0.05 s, the longest a write may take under this replica's lease:"
        " the bucket may hold either configuration"
    )
    assert writes(s3) == 2
    assert [(r.state, r.error, r.stage) for r in report.results] == [(BucketState.FAILED, cut, "write")] * 2
    assert not report.interrupted  # a failed write; the fence is still open, the others go on
    for bucket in ("bkt0", "bkt1"):
        [record] = (await History(s3).bucket_history(bucket)).records
        assert (record.outcome, record.error) == (Outcome.FAILED, cut)


async def test_the_change_and_current_records_name_the_lease_holder_and_epoch() -> None:
    s3, fence = account(buckets=2), FakeFence(holder="pod-7f", epoch=3)
    report = await cycle(s3, fence)
    assert report.counts[BucketState.CHANGED] == 2
    assert fence.flights.settled(), "every write was answered: nothing may still apply"
    history, current = documents(s3, "history/"), documents(s3, "current/")
    assert len(history) == len(current) == 2
    assert all(doc["lease"] == {"holder": "pod-7f", "epoch": 3} for doc in history + current)
    [record] = (await History(s3).bucket_history("bkt0")).records
    assert record.outcome is Outcome.APPLIED
    assert record.as_dict()["lease"] == {"holder": "pod-7f", "epoch": 3}


async def test_without_a_fence_the_records_have_no_lease_and_writes_are_not_cut() -> None:
    s3 = account(buckets=2)
    report = await cycle(s3, None)
    assert report.counts[BucketState.CHANGED] == 2
    assert not report.interrupted
    assert all("lease" not in doc for doc in documents(s3, "history/") + documents(s3, "current/"))


async def test_a_fence_without_an_epoch_writes_nothing() -> None:
    s3 = account(buckets=1)
    report = await cycle(s3, FakeFence(epoch=None))
    assert writes(s3) == 0
    assert [r.error for r in report.failed] == [NOT_WRITTEN]


async def test_a_replica_that_holds_the_lease_anew_forgets_what_it_remembered_of_the_buckets_writes() -> None:
    s3 = account(buckets=1)
    fence_a = FakeFence(holder="pod-a", epoch=1)
    a = Reconciler(s3, DefinitionLoader(s3), history=History(s3), fence=fence_a)
    await a.run_cycle()
    mine = a.applied.known["bkt0"].history
    # pod-b holds the lease (epoch 2) and writes newer definitions; then pod-a takes it back (epoch 3).
    s3.objects["definition/b0.toml"] = definition("bkt0", rule("newer"))
    b = Reconciler(s3, DefinitionLoader(s3), history=History(s3), fence=FakeFence(holder="pod-b", epoch=2))
    assert (await b.run_cycle()).counts[BucketState.CHANGED] == 1
    theirs = b.applied.known["bkt0"].history
    fence_a.epoch = 3
    await a.run_cycle()
    remembered = a.applied.known.get("bkt0")
    assert remembered is None or remembered.history == theirs != mine
