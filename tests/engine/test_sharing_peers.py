"""Who counts as a live replica (engine/sharing.py over core/sharing.py's Peers): a crashed pod's
heartbeat never does, so live replicas never give back leases for it; a replica back from a pause
counts again as soon as it renews its heartbeat; a new one counts within a renewal or so."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

from lakecircle.core.lease_body import LeaseBody, encode
from lakecircle.engine.sharing import Sharing
from lakecircle.ports import Versioned
from lakecircle.testing import MemoryS3
from tests.engine.leasing import until
from tests.engine.test_sharing import D, Freezable, held, replica

pytestmark = pytest.mark.anyio

FOUR = [f"{n:012d}" for n in range(1, 5)]
OLD = "lease/replicas/lakecircle-old.json"


class CountingReads(MemoryS3):
    """The in-memory store, counting lease reads by key."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[str, int] = {}

    async def read(self, key: str) -> Versioned | None:
        self.reads[key] = self.reads.get(key, 0) + 1
        return await super().read(key)


async def holds_within(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether ``condition`` comes to hold within ``seconds``."""
    with anyio.move_on_after(seconds):
        await until(condition, within=seconds + 1)
        return True
    return False


async def test_a_lone_replica_beside_a_crashed_pods_heartbeat_takes_every_account_at_once_and_keeps_them() -> None:
    store = CountingReads()
    # A pod that crashed long ago (OOM, a node lost): its heartbeat was never released.
    store.objects[OLD] = encode(LeaseBody("lakecircle-old", 1, 1.0, 2.0, D))
    a = Sharing(store, store, "pod-a", D, write_timeout=D / 6)
    a.accounts(FOUR)
    counted: set[str] = set()
    fewest = len(FOUR)

    def looked(listings: int) -> Callable[[], bool]:
        def look() -> bool:
            nonlocal fewest
            counted.update(a.live())
            fewest = min(fewest, len(held(a)))
            return "lakecircle-old" not in a.peers.watched and store.calls["ListObjectsV2"] >= listings

        return look

    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        at_once = await holds_within(lambda: len(held(a)) == len(FOUR), D / 2)
        await until(looked(6), within=4 * D)  # found free after a duration, then listed again and again
        reads = store.reads[OLD]
        await until(looked(9), within=2 * D)
        group.cancel_scope.cancel()
    assert at_once, "pod-a, alone, did not take every account at once: it counted the crashed pod"
    assert counted == {"pod-a"}, "the crashed pod's heartbeat counted as a live replica"
    assert fewest == len(FOUR), f"pod-a, alone, gave back leases (down to {fewest})"
    assert store.reads[OLD] == reads == 1, "a heartbeat found free was read again, its ETag unchanged"


async def test_a_replica_back_from_a_pause_gets_its_share_within_two_durations() -> None:
    store = MemoryS3()
    way_b = Freezable(store)
    a, b = replica(store, "pod-a"), replica(way_b, "pod-b")
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        group.start_soon(b.run)
        await until(lambda: len(held(a)) + len(held(b)) == 10 and bool(held(b)), within=4 * D)
        way_b.frozen = True  # pod-b paused (SIGSTOP, a partition from S3): every call of it hangs
        await until(lambda: len(held(a)) == 10 and "pod-b" not in a.live(), within=4 * D)
        way_b.frozen = False
        back = time.monotonic()
        balanced = await until(lambda: len(held(a)) <= 6 and len(held(b)) >= 4, within=4 * D)
        group.cancel_scope.cancel()
    assert balanced - back <= 2 * D, f"pod-b got its share {(balanced - back) / D:.1f} durations after its pause"


async def test_a_replica_that_starts_is_counted_within_a_renewal_and_a_listing() -> None:
    store = MemoryS3()
    a, b = replica(store, "pod-a"), replica(store, "pod-b")
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        await until(lambda: len(held(a)) == 10, within=D)
        group.start_soon(b.run)
        started = time.monotonic()
        counted = await until(lambda: "pod-b" in a.live(), within=2 * D)
        group.cancel_scope.cancel()
    assert counted - started <= D, f"pod-b counted {(counted - started) / D:.2f} durations after it started"
