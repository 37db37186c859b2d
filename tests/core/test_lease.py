"""The lease machine step by step, table by table: the body's codec, the free rule, acquiring, renewing,
releasing, taking over, the new holder's wait and writes whose outcome is unknown."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecircle.core.lease import Create, Lease, LeaseBody, Read, Replace, Step, Transition, Wait, decode, encode
from lakecircle.ports import Versioned

KEY = "lease/123456789012.json"
D = 30.0
WT = 10.0
MARGIN = 3.0


ME = "i-me"
"""This process's instance token."""


def body(
    holder: str = "other",
    epoch: int = 1,
    *,
    released: bool = False,
    settled: bool = False,
    duration: float = D,
    instance: str | None = None,
) -> bytes:
    instance = (ME if holder == "me" else "i-other") if instance is None else instance
    value = LeaseBody(holder, epoch, 1.0, 2.0, duration, released=released, settled=settled, instance=instance)
    return encode(value)


def lease(*, wanted: bool = True, duration: float = D) -> Lease:
    return Lease(KEY, "me", duration, wanted=wanted, instance=ME)


def read(machine: Lease, found: Versioned | None, now: float) -> None:
    step = machine.next(now)
    assert step == Read(KEY), step
    machine.read_result(found, now)


def write(machine: Lease, now: float, etag: str | None = "ours", *, answered: float | None = None) -> Create | Replace:
    step = machine.next(now)
    assert isinstance(step, Create | Replace), step
    machine.write_result(etag, now, now if answered is None else answered)
    return step


def held_from(now: float = 100.0, *, answered: float | None = None) -> Lease:
    """A lease this replica created at ``now`` (answered at ``answered``), the object missing for a
    whole duration before (so only the new-holder wait counts), its transitions drained."""
    machine = lease(wanted=False)
    read(machine, None, now - D)  # watched, missing
    machine.want(True)
    write(machine, now, "e1", answered=answered)
    assert machine.transitions() == (Transition.ACQUIRED,)
    return machine


def sent_body(step: Step) -> LeaseBody:
    assert isinstance(step, Create | Replace), step
    decoded = decode(step.data)
    assert decoded is not None
    return decoded


# --- the body -----------------------------------------------------------------------------------

VALID = {"acquired": 1.5, "duration": 30, "epoch": 3, "holder": "pod-a", "released": False, "renewed": 2, "version": 1}


def doc(**changes: object) -> bytes:
    document = {**VALID, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


REFUSED = [
    pytest.param(b"", id="empty bytes"),
    pytest.param(b"\xff\xfe{", id="bytes that are not text"),
    pytest.param(b"{", id="text that is not JSON"),
    pytest.param(b"[1]", id="JSON that is not an object"),
    pytest.param(doc(version=2), id="another version"),
    pytest.param(doc(settled="yes"), id="settled that is not a boolean"),
    pytest.param(doc(instance=7), id="an instance that is not text"),
    pytest.param(doc(version="1"), id="a version written as a string"),
    pytest.param(doc(version=True), id="a version written as true"),
    pytest.param(doc(version=...), id="no version"),
    pytest.param(doc(holder=...), id="no holder"),
    pytest.param(doc(holder=""), id="an empty holder"),
    pytest.param(doc(holder=7), id="a holder that is a number"),
    pytest.param(doc(epoch=0), id="epoch 0"),
    pytest.param(doc(epoch=-2), id="a negative epoch"),
    pytest.param(doc(epoch=2.0), id="an epoch that is a float"),
    pytest.param(doc(epoch=True), id="an epoch written as true"),
    pytest.param(doc(epoch="3"), id="an epoch written as a string"),
    pytest.param(doc(released="false"), id="released written as a string"),
    pytest.param(doc(released=0), id="released written as a number"),
    pytest.param(doc(released=...), id="no released"),
    pytest.param(doc(duration=0), id="a duration of 0"),
    pytest.param(doc(duration=-30), id="a negative duration"),
    pytest.param(doc(duration=True), id="a duration written as true"),
    pytest.param(doc(duration=...), id="no duration"),
    pytest.param(doc(acquired="now"), id="acquired written as a string"),
    pytest.param(doc(renewed=None), id="renewed null"),
    pytest.param(doc(renewed=...), id="no renewed"),
    pytest.param(doc().replace(b'"renewed": 2', b'"renewed": NaN'), id="a NaN"),
    pytest.param(doc().replace(b'"renewed": 2', b'"renewed": Infinity'), id="an infinity"),
    pytest.param(doc().replace(b'"renewed": 2', b'"renewed": 1e400'), id="a number too large to be finite"),
    pytest.param(doc(padding="x" * 4096), id="more than 4 KiB"),
    pytest.param(b"[" * 4000 + b"]" * 4000, id="nesting deep enough to exhaust the parser"),
]


@pytest.mark.parametrize("data", REFUSED)
def test_a_body_that_is_not_exactly_version_1_reads_as_none(data: bytes) -> None:
    assert decode(data) is None


def test_a_valid_body_reads_with_unknown_keys_ignored() -> None:
    assert decode(doc(later="field")) == LeaseBody("pod-a", 3, 1.5, 2.0, 30.0, released=False)


def test_a_body_without_settled_or_instance_reads_as_unsettled_from_no_known_process() -> None:
    found = decode(doc(released=True))
    assert found is not None
    assert (found.released, found.settled, found.instance) == (True, False, "")


def test_a_body_is_written_as_compact_json_with_sorted_keys_and_version_1() -> None:
    data = encode(LeaseBody("pod-a", 3, 1.5, 2.0, 30.0))
    assert data == (
        b'{"acquired":1.5,"duration":30.0,"epoch":3,"holder":"pod-a","instance":"",'
        b'"released":false,"renewed":2.0,"settled":false,"version":1}'
    )


bodies = st.builds(
    LeaseBody,
    holder=st.text(min_size=1, max_size=60),
    epoch=st.integers(1, 2**53),
    acquired=st.floats(allow_nan=False, allow_infinity=False),
    renewed=st.floats(allow_nan=False, allow_infinity=False),
    duration=st.floats(min_value=1e-3, max_value=1e9),
    released=st.booleans(),
    settled=st.booleans(),
    instance=st.text(max_size=20),
)


@given(bodies)
def test_every_body_reads_back_as_written(value: LeaseBody) -> None:
    assert decode(encode(value)) == value


@given(st.one_of(st.binary(max_size=300), bodies.map(encode).map(lambda b: b[: len(b) // 2])))
def test_decode_never_raises(data: bytes) -> None:
    decode(data)


# --- the free rule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Free:
    reads: tuple[tuple[Versioned | None, float], ...]
    now: float
    free: bool


HELD = Versioned(body("other"), "e1")
FREE_RULE = {
    "not_known_before_a_first_read": Free((), 0.0, False),
    "no_object_is_free_at_once": Free(((None, 0.0),), 0.0, True),
    "a_released_lease_is_free_at_once": Free(((Versioned(body(released=True), "e1"), 0.0),), 0.0, True),
    "a_held_lease_is_not_free_before_its_duration": Free(((HELD, 0.0),), D - 0.1, False),
    "a_held_lease_is_free_once_its_etag_stood_a_duration": Free(((HELD, 0.0),), D, True),
    "the_same_etag_read_again_keeps_the_time_it_was_first_seen": Free(((HELD, 0.0), (HELD, 20.0)), D, True),
    "a_new_etag_starts_the_count_again": Free(((HELD, 0.0), (Versioned(body(), "e2"), 20.0)), 20.0 + D - 0.1, False),
    "a_new_etag_is_free_a_duration_after_it_was_first_seen": Free(
        ((HELD, 0.0), (Versioned(body(), "e2"), 20.0)), 20.0 + D, True
    ),
    "the_bodys_own_duration_counts": Free(((Versioned(body(duration=5.0), "e1"), 0.0),), 5.0, True),
    "an_unreadable_body_counts_the_configured_duration": Free(((Versioned(b"junk", "e1"), 0.0),), D - 0.1, False),
    "an_unreadable_body_is_free_after_the_configured_duration": Free(((Versioned(b"junk", "e1"), 0.0),), D, True),
}


@pytest.mark.parametrize("case", FREE_RULE.values(), ids=FREE_RULE.keys())
def test_the_free_rule(case: Free) -> None:
    machine = lease()
    for found, at in case.reads:
        read(machine, found, at)
    assert machine.free(case.now) is case.free


def test_the_writers_unix_times_are_never_trusted() -> None:
    stale = encode(LeaseBody("other", 1, acquired=0.0, renewed=0.0, duration=D))
    machine = lease()
    read(machine, Versioned(stale, "e1"), 1_000_000.0)
    assert machine.next(1_000_000.0) == Wait(1_000_000.0 + D / 3)
    assert not machine.free(1_000_000.0 + D - 1)
    assert machine.free(1_000_000.0 + D)


def test_a_replica_that_wants_the_lease_reads_every_third_of_a_duration_and_wakes_when_it_is_free() -> None:
    short = Versioned(body(duration=25.0), "e1")
    machine = lease()
    read(machine, short, 0.0)
    assert machine.next(1.0) == Wait(D / 3)
    read(machine, short, D / 3)
    read(machine, short, 2 * D / 3)
    assert machine.next(21.0) == Wait(25.0)
    assert isinstance(machine.next(25.0), Replace)


# --- acquiring and taking over ------------------------------------------------------------------


@dataclass(frozen=True)
class Acquire:
    found: Versioned | None
    now: float
    step: type[Create | Replace]
    epoch: int
    reason: Transition


ACQUIRE = {
    "no_object_is_created_with_epoch_1": Acquire(None, 0.0, Create, 1, Transition.ACQUIRED),
    "a_released_lease_is_acquired_with_the_next_epoch": Acquire(
        Versioned(body(epoch=4, released=True), "e1"), 0.0, Replace, 5, Transition.ACQUIRED
    ),
    "another_holders_expired_lease_is_taken_over": Acquire(
        Versioned(body(epoch=4), "e1"), D, Replace, 5, Transition.TAKEN_OVER
    ),
    "an_unreadable_lease_is_taken_over_with_epoch_1": Acquire(
        Versioned(b"junk", "e1"), D, Replace, 1, Transition.TAKEN_OVER
    ),
    "this_processs_own_expired_lease_is_acquired": Acquire(
        Versioned(body("me", epoch=2), "e1"), D, Replace, 3, Transition.ACQUIRED
    ),
    "another_process_with_this_replica_id_has_its_expired_lease_taken_over": Acquire(
        Versioned(body("me", epoch=2, instance="i-restarted"), "e1"), D, Replace, 3, Transition.TAKEN_OVER
    ),
}


@pytest.mark.parametrize("case", ACQUIRE.values(), ids=ACQUIRE.keys())
def test_acquiring(case: Acquire) -> None:
    machine = lease()
    read(machine, case.found, 0.0)
    step = machine.next(case.now)
    assert isinstance(step, case.step)
    if isinstance(step, Replace):
        assert case.found is not None
        assert step.etag == case.found.etag
    sent = sent_body(step)
    assert (sent.holder, sent.epoch, sent.duration, sent.released) == ("me", case.epoch, D, False)
    machine.write_result("new", case.now, case.now + 1)
    assert machine.transitions() == (case.reason,)
    assert (machine.epoch, machine.holder) == (case.epoch, "me")
    assert machine.held(case.now + D - 0.1)
    assert not machine.held(case.now + D)


def test_a_replica_that_does_not_want_the_lease_only_watches() -> None:
    machine = lease(wanted=False)
    read(machine, None, 0.0)
    assert machine.next(0.0) == Wait(D / 3)
    assert machine.next(D / 3) == Read(KEY)


def test_a_lost_race_to_acquire_reads_again_and_counts_nothing() -> None:
    machine = lease()
    read(machine, None, 0.0)
    write(machine, 0.0, None)
    assert machine.transitions() == ()
    assert not machine.free(0.0)
    assert machine.next(0.0) == Read(KEY)


def test_the_epoch_never_goes_below_one_already_seen() -> None:
    machine = lease()
    read(machine, Versioned(body(epoch=7, released=True), "e1"), 0.0)
    machine.want(False)
    read(machine, None, D)
    machine.want(True)
    assert sent_body(machine.next(D)).epoch == 8


# --- renewing, fencing, releasing ---------------------------------------------------------------


def test_the_holder_renews_every_third_of_a_duration_keeping_its_epoch() -> None:
    machine = held_from(100.0)
    assert machine.next(105.0) == Wait(110.0)
    renewal = machine.next(110.0)
    assert isinstance(renewal, Replace)
    assert renewal.etag == "e1"
    assert sent_body(renewal).epoch == 1
    machine.write_result("e2", 110.5, 111.0)
    assert machine.transitions() == (Transition.RENEWED,)
    assert machine.held(110.5 + D - 0.1)
    assert not machine.held(110.5 + D)
    assert machine.next(111.0) == Wait(110.5 + D / 3)


def test_no_two_bodies_are_the_same_even_when_the_wall_clock_stands_still() -> None:
    machine = held_from(100.0)
    first = machine.next(110.0, unix=5.0)
    machine.write_result("e2", 110.0, 110.0)
    second = machine.next(120.0, unix=5.0)
    assert isinstance(first, Replace)
    assert isinstance(second, Replace)
    assert first.data != second.data
    assert sent_body(second).renewed > sent_body(first).renewed


def test_the_deadline_runs_from_when_the_write_was_sent_not_answered() -> None:
    machine = held_from(100.0, answered=104.0)
    assert not machine.held(100.0 + D)


@dataclass(frozen=True)
class Fence:
    now: float
    may: bool


# Acquired by a write sent at 100 and answered at 101: deadline 130, new-holder wait until 111.
FENCE = {
    "not_during_the_new_holders_wait": Fence(110.9, False),
    "once_the_new_holders_wait_is_over": Fence(111.0, True),
    "while_the_write_timeout_and_margin_are_left": Fence(130.0 - WT - MARGIN, True),
    "not_once_less_than_the_write_timeout_and_margin_are_left": Fence(130.0 - WT - MARGIN + 0.01, False),
    "not_after_the_deadline": Fence(131.0, False),
}


@pytest.mark.parametrize("case", FENCE.values(), ids=FENCE.keys())
def test_may_start_write(case: Fence) -> None:
    machine = held_from(100.0, answered=101.0)
    assert machine.may_start_write(case.now, WT, MARGIN) is case.may


def test_a_renewal_does_not_restart_the_new_holders_wait() -> None:
    machine = held_from(100.0)
    machine.next(110.0)
    machine.write_result("e2", 110.0, 110.0)
    assert machine.may_start_write(110.0, WT, MARGIN)


def test_a_replica_that_wants_the_lease_no_more_starts_no_write_and_releases_it() -> None:
    machine = held_from(100.0)
    machine.want(False)
    assert not machine.may_start_write(112.0, WT, MARGIN)
    release = machine.next(112.0)
    assert isinstance(release, Replace)
    assert release.etag == "e1"
    assert sent_body(release).released
    assert sent_body(release).epoch == 1
    machine.write_result("e2", 112.0, 112.0)
    assert machine.transitions() == (Transition.RELEASED,)
    assert (machine.epoch, machine.holder, machine.held(112.0)) == (None, None, False)
    machine.want(True)
    assert machine.free(112.0)
    assert sent_body(machine.next(112.0)).epoch == 2


def test_a_renewal_that_loses_the_race_is_lost_at_once() -> None:
    machine = held_from(100.0)
    machine.next(110.0)
    machine.write_result(None, 110.0, 110.5)
    assert machine.transitions() == (Transition.LOST,)
    assert not machine.may_start_write(110.5, WT, MARGIN)
    assert machine.epoch is None
    assert machine.next(110.5) == Read(KEY)


def test_a_holder_that_misses_its_deadline_has_lost_the_lease() -> None:
    machine = held_from(100.0)
    assert isinstance(machine.next(100.0 + D), Replace)  # a takeover of its own lapsed lease
    assert machine.transitions() == (Transition.LOST,)
    machine.write_result("e2", 130.0, 130.0)
    assert machine.transitions() == (Transition.ACQUIRED,)
    assert machine.epoch == 2
    # Its own epoch-1 writes all ended before the deadline it missed: no new-holder wait.
    assert machine.may_start_write(130.1, WT, MARGIN)


def test_a_created_lease_is_written_once_the_object_has_been_missing_for_a_whole_duration() -> None:
    created = Lease(KEY, "pod-a", D, wanted=False)
    created.next(100.0)
    created.read_result(None, 100.0)  # missing since 100
    created.want(True)
    assert isinstance(created.next(105.0), Create)
    created.write_result("e1", 105.0, 105.0)
    assert isinstance(created.next(115.0), Replace)  # renewed
    created.write_result("e2", 115.0, 115.0)
    assert not created.may_start_write(100.0 + D - 0.1, WT, MARGIN)
    assert created.may_start_write(100.0 + D, WT, MARGIN)


def test_a_holder_whose_lease_another_replica_holds_now_has_lost_it() -> None:
    machine = held_from(100.0)
    machine.next(110.0)
    machine.write_unknown(115.0)
    read(machine, Versioned(body("other", 2), "e9"), 116.0)
    assert machine.transitions() == (Transition.LOST,)
    assert machine.holder == "other"


# --- unknown outcomes ---------------------------------------------------------------------------


def test_an_unknown_renewal_stops_writes_at_once_until_a_read() -> None:
    machine = held_from(100.0)
    machine.next(110.0)
    machine.write_unknown(115.0)
    assert not machine.may_start_write(115.0, WT, MARGIN)
    assert machine.held(115.0)
    read(machine, Versioned(body("me"), "e1"), 116.0)  # the renewal has not applied (yet)
    assert machine.transitions() == ()
    assert machine.may_start_write(116.0, WT, MARGIN)
    assert isinstance(machine.next(116.0), Replace)


def test_an_unknown_renewal_read_back_counts_from_when_it_was_asked_for() -> None:
    machine = held_from(100.0)
    renewal = machine.next(110.0)
    assert isinstance(renewal, Replace)
    machine.write_unknown(115.0)
    read(machine, Versioned(renewal.data, "e2"), 116.0)
    assert machine.transitions() == (Transition.RENEWED,)
    assert machine.held(110.0 + D - 0.1)
    assert not machine.held(110.0 + D)


def test_a_renewal_applied_late_is_recognised_after_the_next_one_loses_the_race() -> None:
    machine = held_from(100.0)
    late = machine.next(110.0)
    assert isinstance(late, Replace)
    machine.write_unknown(115.0)
    read(machine, Versioned(body("me"), "e1"), 116.0)
    machine.next(116.0)
    machine.write_result(None, 116.0, 116.5)  # the late renewal applied first
    assert machine.transitions() == ()
    assert not machine.may_start_write(116.5, WT, MARGIN)
    read(machine, Versioned(late.data, "e2"), 117.0)
    assert machine.transitions() == (Transition.RENEWED,)
    assert machine.epoch == 1


def test_an_unknown_acquisition_read_back_is_held_and_waits_from_the_read() -> None:
    machine = lease(wanted=False)
    read(machine, None, -D)  # missing for a whole duration already
    machine.want(True)
    create = machine.next(0.0)
    assert isinstance(create, Create)
    machine.write_unknown(5.0)
    assert not machine.free(5.0)
    read(machine, Versioned(create.data, "e1"), 6.0)
    assert machine.transitions() == (Transition.ACQUIRED,)
    assert not machine.may_start_write(6.0 + WT - 0.1, WT, MARGIN)
    assert machine.may_start_write(6.0 + WT, WT, MARGIN)
    assert not machine.held(D)


def test_an_unknown_acquisition_not_applied_is_asked_again_with_another_body() -> None:
    machine = lease()
    read(machine, None, 0.0)
    first = machine.next(0.0)
    machine.write_unknown(5.0)
    read(machine, None, 6.0)
    second = machine.next(6.0)
    assert isinstance(first, Create)
    assert isinstance(second, Create)
    assert first.data != second.data


def test_an_unknown_acquisition_read_back_after_its_deadline_is_not_held() -> None:
    machine = lease()
    read(machine, None, 0.0)
    create = machine.next(0.0)
    assert isinstance(create, Create)
    machine.write_unknown(5.0)
    read(machine, Versioned(create.data, "e1"), D)
    assert machine.transitions() == ()
    assert machine.epoch is None
    assert sent_body(machine.next(D)).epoch == 2


def test_a_failed_read_is_asked_again_a_tenth_of_a_duration_later() -> None:
    machine = lease()
    assert machine.next(0.0) == Read(KEY)
    machine.read_failed(1.0)
    assert machine.next(1.0) == Wait(1.0 + D / 10)
    assert machine.next(1.0 + D / 10) == Read(KEY)


# --- the caller's mistakes ----------------------------------------------------------------------


def test_a_second_request_before_the_answer_to_the_first_is_refused() -> None:
    machine = lease()
    machine.next(0.0)
    with pytest.raises(RuntimeError, match="under way"):
        machine.next(0.0)


def test_an_answer_to_a_question_not_asked_is_refused() -> None:
    machine = lease()
    with pytest.raises(RuntimeError, match="was asked"):
        machine.write_result("e1", 0.0, 0.0)
    machine.next(0.0)
    with pytest.raises(RuntimeError, match="was asked"):
        machine.write_unknown(0.0)


@pytest.mark.parametrize("duration", [0.0, -1.0, float("nan"), float("inf")])
def test_a_lease_needs_a_positive_finite_duration(duration: float) -> None:
    with pytest.raises(ValueError, match="positive number"):
        Lease(KEY, "me", duration)


def test_a_new_holder_waits_at_least_the_write_timeout_of_a_holder_with_a_longer_lease() -> None:
    """A service at LCC_LEASE_SECONDS=180 (writes up to 60 s) taken over by a replica at 120 whose
    writes take 10 s at most: the new holder waits 60 s, not 10."""
    machine = lease(duration=120.0)
    read(machine, Versioned(body("other", 4, duration=180.0), "e1"), 0.0)
    write(machine, 180.0, "e2")
    assert machine.transitions() == (Transition.TAKEN_OVER,)
    assert not machine.may_start_write(180.0 + 59.0, WT, MARGIN)
    assert machine.may_start_write(180.0 + 60.0, WT, MARGIN)
