"""The lease machine against a deleted lease object and a released one (never two writers)."""

from __future__ import annotations

from lakecircle.core.lease import Create, Lease, Read, Replace, Transition
from lakecircle.ports import Versioned
from lakecircle.testing import etag_of

D, WT, MARGIN = 30.0, 10.0, 3.0  # the defaults: LCC_LEASE_SECONDS=30, write timeout min(70, 30/3)
KEY = "lease/123456789012.json"


def test_a_deleted_lease_object_never_gives_two_replicas_the_fence_at_once() -> None:
    obj: dict[str, Versioned | None] = {"o": None}

    def serve(lease: Lease, now: float) -> None:
        """Drive ``lease`` one step against the object, answered at once."""
        step = lease.next(now, 1e9 + now)
        if isinstance(step, Read):
            lease.read_result(obj["o"], now)
        elif isinstance(step, (Create, Replace)):
            cur = obj["o"]
            if (cur.etag if cur else None) != (step.etag if isinstance(step, Replace) else None):
                lease.write_result(None, now, now)
            else:
                written = Versioned(step.data, etag_of(step.data))
                obj["o"] = written
                lease.write_result(written.etag, now, now)

    a = Lease(KEY, "pod-a", D)
    serve(a, 0.0)  # read: none
    serve(a, 0.0)  # create
    assert a.epoch == 1
    serve(a, 10.0)  # renewal sent and answered at t=10
    assert a.transitions()[-1] is Transition.RENEWED
    obj["o"] = None  # someone deletes lease/123456789012.json at t=10.01
    b = Lease(KEY, "pod-b", D)
    serve(b, 10.02)  # pod-b reads: none
    serve(b, 10.02)  # pod-b creates (epoch 1 again: it never saw pod-a's)
    assert b.epoch is not None
    # pod-a's next renewal is due at t=20; S3 answers it (404: the condition fails) 2 s later, at t=22.
    step = a.next(20.0, 1e9 + 20)
    assert isinstance(step, Replace)
    t = 20.5  # the renewal is under way
    both = a.may_start_write(t, WT, MARGIN) and b.may_start_write(t, WT, MARGIN)
    assert not both, "pod-a (epoch 1) and pod-b (epoch 2) may both start a bucket write at t=20.5"


def released_by_a(*, settled: bool) -> Versioned:
    """pod-a's lease, created at 0 and released at 5 (``settled``: no write of its may still apply)."""
    a = Lease(KEY, "pod-a", D, instance="i-a")
    a.next(0.0)
    a.read_result(None, 0.0)
    step = a.next(0.0)
    assert isinstance(step, Create)
    a.write_result(etag_of(step.data), 0.0, 0.0)
    a.want(False, settled=settled)
    step = a.next(5.0)
    assert isinstance(step, Replace)
    a.write_result(etag_of(step.data), 5.0, 5.0)
    assert a.transitions()[-1] is Transition.RELEASED
    return Versioned(step.data, etag_of(step.data))


def taken_by_b(released: Versioned) -> Lease:
    b = Lease(KEY, "pod-b", D, instance="i-b")
    b.next(5.1)
    b.read_result(released, 5.1)
    step = b.next(5.1)
    assert isinstance(step, Replace)
    b.write_result(etag_of(step.data), 5.1, 5.1)
    assert b.transitions() == (Transition.ACQUIRED,)
    return b


def test_a_lease_released_with_a_write_possibly_in_flight_makes_its_new_holder_wait_two_write_timeouts() -> None:
    """pod-a's shutdown cut a PUT that S3 may still apply until two write timeouts after it started,
    maybe just before the release, so its release is not settled and pod-b waits that long and the
    margin (one write timeout was not enough: the lease property test's counterexample)."""
    b = taken_by_b(released_by_a(settled=False))
    assert not b.may_start_write(5.1, WT, MARGIN), "pod-b writes at once after pod-a's unsettled release"
    assert not b.waited(5.1 + WT, WT), "pod-b waits one write timeout only"
    assert b.waited(5.1 + 2 * WT + D / 10, WT)  # (its renewals keep the deadline ahead meanwhile)


def test_a_settled_release_is_written_at_once_by_its_new_holder() -> None:
    """pod-a had no write that may still apply when it released: nothing to wait for."""
    b = taken_by_b(released_by_a(settled=True))
    assert b.may_start_write(5.1, WT, MARGIN)


def test_wanting_the_lease_again_forgets_that_a_release_would_be_settled() -> None:
    a = Lease(KEY, "pod-a", D, instance="i-a")
    a.want(False, settled=True)
    a.want(True)
    a.next(0.0)
    a.read_result(None, 0.0)
    step = a.next(0.0)
    assert isinstance(step, Create)
    a.write_result(etag_of(step.data), 0.0, 0.0)
    a.want(False)
    release = a.next(1.0)
    assert isinstance(release, Replace)
    assert b'"settled":false' in release.data
