"""The removal guard keeps the writes that wait for the cycle's total in brief, and gives them
back as they were, in the order they came."""

from __future__ import annotations

from lakecircle.core.decide import decide
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.plan import plan_bucket
from lakecircle.core.report import Guard
from lakecircle.engine.removals import RemovalGuard
from lakecircle.engine.write import PendingWrite
from lakecircle.ports import BucketRef
from tests.builders import rule


def removing(name: str) -> PendingWrite:
    """A write of ``name`` that removes a rule the bucket holds and changes another."""
    desired = LifecycleConfig((rule("keep", days=40, prefix="logs/"),))
    live = LifecycleConfig((rule("keep", days=30, prefix="logs/"), rule("old", days=7, prefix="tmp/")))
    plan = plan_bucket(name, desired, live)
    decision = decide(plan, None, now=0.0, settle=60.0, partial=False)
    assert decision.removals == 1
    return PendingWrite(BucketRef(name, "eu-west-1"), decision, None, ("keep",))


def test_the_writes_that_wait_for_the_total_come_back_as_they_were_in_the_order_they_came() -> None:
    guard = RemovalGuard(limit=10)
    writes = [removing(f"bucket-{i}") for i in (3, 1, 2)]
    for write in writes:
        assert list(guard.admit(write)) == []
    released = list(guard.release())
    assert released == writes
    assert list(guard.release()) == []


def test_a_guard_that_trips_gives_the_waiting_writes_back_without_their_removals() -> None:
    guard = RemovalGuard(limit=1)
    first, second = removing("bucket-a"), removing("bucket-b")
    assert list(guard.admit(first)) == []
    released = list(guard.admit(second))
    assert [w.ref.name for w in released if isinstance(w, PendingWrite)] == ["bucket-a", "bucket-b"]
    for write in released:
        assert isinstance(write, PendingWrite)
        assert write.decision.removals == 0
        assert write.decision.guard is Guard.BLAST_RADIUS
        assert write.decision.plan.desired.rules[0] == first.decision.plan.desired.rules[0]
