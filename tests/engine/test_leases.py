"""The lease keeper against the in-memory store, in short real durations: acquiring, renewing, standing
by, taking over a frozen holder, releasing, and what failures, lost answers and hung requests do to the
fence."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio
import pytest
import structlog

from lakecircle.core.lease import Transition, decode
from lakecircle.core.lease_body import LeaseBody, encode
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.testing import LeaseFault, MemoryS3, etag_of
from tests.engine.leasing import ACCOUNT, KEY, D, keeper, running, until

pytestmark = pytest.mark.anyio


@dataclass
class Seen:
    """A LeaseObserver that keeps what it was told."""

    transitions: list[Transition] = field(default_factory=list)
    held: list[bool] = field(default_factory=list)

    def lease_transition(self, account: str, reason: Transition) -> None:
        assert account == ACCOUNT
        self.transitions.append(reason)

    def lease_held(self, account: str, held: bool) -> None:
        assert account == ACCOUNT
        self.held.append(held)


def body(s3: MemoryS3) -> LeaseBody:
    found = decode(s3.objects[KEY])
    assert found is not None
    return found


async def test_a_free_lease_is_acquired_with_epoch_1_and_writes_wait_one_write_timeout() -> None:
    s3, seen = MemoryS3(), Seen()
    a = keeper(s3, "a", observer=seen)
    assert a.key == KEY
    assert a.write_timeout == D / 3  # capped at a third of the duration
    async with running(a):
        acquired = await until(a.held)
        assert not a.may_start_write()  # the new holder's wait
        await a.wait_until_writable()
        assert time.monotonic() - acquired >= a.write_timeout - 0.01
    assert (body(s3).holder, body(s3).epoch, a.epoch, a.holder) == ("a", 1, 1, "a")
    assert seen.transitions[0] is Transition.ACQUIRED
    assert seen.held[:2] == [False, True]


async def test_the_holder_renews_every_third_of_a_duration_with_a_new_body_each_time() -> None:
    s3, seen = MemoryS3(), Seen()
    a = keeper(s3, "a", observer=seen)
    bodies: list[bytes] = []
    with structlog.testing.capture_logs() as logs:
        async with running(a):
            await until(a.held)
            started = time.monotonic()
            while time.monotonic() - started < 1.5 * D:
                if s3.objects[KEY] not in bodies:
                    bodies.append(s3.objects[KEY])
                assert a.held()
                await anyio.sleep(0.005)
    decoded = [decode(data) for data in bodies]
    assert len(bodies) >= 4  # acquired, then renewed at least three times
    assert all(one is not None and (one.holder, one.epoch) == ("a", 1) for one in decoded)
    stamps = [one.renewed for one in decoded if one is not None]
    assert stamps == sorted(stamps)
    assert len({etag_of(data) for data in bodies}) == len(bodies)
    assert seen.transitions.count(Transition.RENEWED) >= 3
    renewed = [line for line in logs if line["event"] == "lease_renewed"]
    line = renewed[0]
    assert (line["account"], line["replica"], line["epoch"], line["log_level"]) == (ACCOUNT, "a", 1, "debug")


async def test_a_second_replica_stands_by_and_takes_over_a_frozen_holder_only_once_its_lease_ran_out() -> None:
    s3 = MemoryS3()
    seen_b = Seen()
    a, b = keeper(s3, "a"), keeper(s3, "b", observer=seen_b)
    with structlog.testing.capture_logs() as logs:
        async with running(a) as scopes:
            await until(a.held)
            async with running(b):
                await until(lambda: b.holder_seen == "a")
                await anyio.sleep(D)  # a renews, b watches
                assert not b.held()
                assert not b.free()
                assert body(s3).holder == "a"
                scopes["a"].cancel()  # frozen: no renewal, no release
                frozen = time.monotonic()
                took_over = await until(b.held, within=3 * D)
                assert not a.held()  # a's own clock says its lease ran out before b holds it
                assert not a.may_start_write()
                assert took_over - frozen <= 2 * D
                await b.wait_until_writable()
    assert (body(s3).holder, body(s3).epoch, b.epoch) == ("b", 2, 2)
    assert seen_b.transitions[0] is Transition.TAKEN_OVER
    [line] = [line for line in logs if line["event"] == "lease_taken_over"]
    assert (line["account"], line["replica"], line["epoch"], line["log_level"]) == (ACCOUNT, "b", 2, "info")


async def test_the_holders_deadline_passes_before_the_other_replica_counts_a_duration() -> None:
    s3 = MemoryS3()
    a, b = keeper(s3, "a"), keeper(s3, "b")
    async with running(a) as scopes:
        await until(a.may_start_write)
        async with running(b):
            await until(lambda: b.holder_seen == "a")
            scopes["a"].cancel()
            last_renewal = body(s3).renewed  # a's Unix time when it sent its last write
            await until(b.held, within=3 * D)
            assert time.time() >= last_renewal + D


class Recording(MemoryS3):
    """Keeps every body the lease store accepted, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[LeaseBody | None] = []

    async def create(self, key: str, data: bytes) -> str | None:
        etag = await super().create(key, data)
        self.written += [decode(data)] if etag is not None else []
        return etag

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        new = await super().replace(key, data, etag)
        self.written += [decode(data)] if new is not None else []
        return new


async def test_a_release_lets_the_other_replica_acquire_the_lease_without_waiting_a_duration() -> None:
    s3, seen_a, seen_b = Recording(), Seen(), Seen()
    a, b = keeper(s3, "a", observer=seen_a), keeper(s3, "b", observer=seen_b)
    with structlog.testing.capture_logs() as logs:
        async with running(a, b):
            await until(a.may_start_write)
            await until(lambda: b.holder_seen == "a")
            asked = time.monotonic()
            await a.release()
            assert not a.held()
            assert not a.may_start_write()
            acquired = await until(b.held)
            assert acquired - asked < D / 2  # at b's next read, a third of a duration at most
    bodies = [(one.holder, one.epoch, one.released) for one in s3.written if one is not None]
    assert bodies[-2:] == [("a", 1, True), ("b", 2, False)]
    assert seen_a.transitions[-1] is Transition.RELEASED
    assert seen_a.held[-1] is False
    assert seen_b.transitions[0] is Transition.ACQUIRED
    [line] = [line for line in logs if line["event"] == "lease_released"]
    assert (line["replica"], line["epoch"]) == ("a", 1)


async def released_to_b(*, write: str) -> tuple[LeaseKeeper, float]:
    """a holds the lease and makes one bucket write (``answered``, ``cut``: it never answered, or
    none), releases it, and b takes it: b, and a time before b took it."""
    s3 = MemoryS3()
    a, b = keeper(s3, "a"), keeper(s3, "b")
    async with running(a, b):
        await until(a.may_start_write)
        if write != "none":
            with a.writing() as answered:
                if write == "answered":
                    answered()
        await until(lambda: b.holder_seen == "a")
        asked = time.monotonic()  # before b can have taken the lease
        await a.release()
        await until(b.held)
    assert body(s3).holder == "b"
    return b, asked


async def test_a_release_with_no_write_that_may_still_apply_lets_the_next_holder_write_at_once() -> None:
    for write in ("none", "answered"):
        b, _ = await released_to_b(write=write)
        assert b.may_start_write(), f"a {write} write made the next holder wait"


async def test_a_release_soon_after_a_write_left_unanswered_makes_the_next_holder_wait_two_write_timeouts() -> None:
    s3 = MemoryS3()
    a, b = keeper(s3, "a"), keeper(s3, "b")
    async with running(a, b):  # b renews meanwhile: its wait is longer than a write timeout
        await until(a.may_start_write)
        with a.writing():
            pass  # cut: never answered
        await until(lambda: b.holder_seen == "a")
        asked = time.monotonic()
        await a.release()
        await until(b.held)
        assert not b.may_start_write()
        await b.wait_until_writable()
        # The cut write may still apply until two of its timeouts after it started, before the release.
        assert time.monotonic() - asked >= 2 * b.write_timeout + b.margin


async def test_a_write_left_unanswered_long_enough_ago_no_longer_keeps_a_release_from_being_settled() -> None:
    now = [0.0]
    a = keeper(MemoryS3(), "a", clock=lambda: now[0])
    with a.writing():
        assert not a.flights.settled()  # under way
    assert not a.flights.settled()
    now[0] = 2 * a.write_timeout + a.margin
    assert a.flights.settled()


class SlowCreate(MemoryS3):
    """Creates take ``seconds`` to answer; notes when the last one was sent."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.sent = 0.0

    async def create(self, key: str, data: bytes) -> str | None:
        self.sent = time.monotonic()
        etag = await super().create(key, data)
        await anyio.sleep(self.seconds)
        return etag


async def test_the_holders_deadline_runs_from_when_its_write_was_sent_not_answered() -> None:
    s3 = SlowCreate(D / 4)
    a = keeper(s3, "a")
    async with running(a) as scopes:
        await until(a.held)
        scopes["a"].cancel()  # no renewal
        ran_out = await until(lambda: not a.held())
    assert ran_out - s3.sent < D + D / 8  # from the answer, it would be D + D / 4


async def stopped_holder(s3: MemoryS3) -> LeaseKeeper:
    """A keeper that acquired the lease, then stopped running (no renewal, no release yet)."""
    a = keeper(s3, "a")
    async with running(a) as scopes:
        await until(a.held)
        scopes["a"].cancel()
    return a


async def test_a_release_without_a_running_keeper_drives_the_lease_itself() -> None:
    s3 = MemoryS3()
    a = await stopped_holder(s3)
    await a.release()
    assert body(s3).released
    assert not a.held()


async def test_a_release_while_the_acquisition_is_under_way_releases_what_it_acquired() -> None:
    s3 = SlowCreate(D / 6)  # the create applies at once, its answer comes later
    a = keeper(s3, "a")
    async with running(a) as scopes:
        await until(lambda: s3.sent > 0)
        assert a.epoch is None  # not answered yet
        await a.release()
        scopes["a"].cancel()
    assert (body(s3).holder, body(s3).released) == ("a", True)


async def test_a_release_after_an_acquisition_cut_mid_request_reads_it_back_and_releases_it() -> None:
    s3 = SlowCreate(D / 6)  # the create applies at once, its answer comes later
    a = keeper(s3, "a")
    async with running(a) as scopes:
        await until(lambda: s3.sent > 0)
        scopes["a"].cancel()  # the keeper stopped before the answer: an unknown outcome
    assert a.epoch is None
    await a.release()
    assert (body(s3).holder, body(s3).released) == ("a", True)


async def test_a_renewal_whose_answer_is_lost_stops_writes_until_the_lease_is_read_again() -> None:
    s3 = MemoryS3()
    a, lost = keeper(s3, "a"), []
    a.on_lost(lambda: lost.append(a.held()))
    with structlog.testing.capture_logs() as logs:
        async with running(a):
            await until(a.may_start_write)
            s3.lease_fault("replace", LeaseFault.LOSE_ANSWER)  # renewals apply, their answers are lost
            s3.lease_fault("read", LeaseFault.HANG)  # and the lease cannot be read back for now
            applied = s3.objects[KEY]
            await until(lambda: s3.objects[KEY] != applied)
            await until(lambda: not a.may_start_write())
            assert a.held()  # still believed held: in doubt, not lost
            assert lost == [True]
            s3.lease_fault("replace", None)
            s3.lease_fault("read", None)
            await until(a.may_start_write)  # read back: its own renewal, recognised
            assert a.epoch == 1
    failed = [line for line in logs if line["event"] == "lease_request_failed"]
    assert failed[0]["log_level"] == "warning"
    assert failed[0]["operation"] == "replace"
    assert "answer was lost" in failed[0]["error"]
    assert all(line["log_level"] == "debug" for line in failed[1:])
    assert not [line for line in logs if line["event"] == "lease_lost"]


async def test_a_store_that_fails_costs_one_warning_line_and_the_keeper_goes_on() -> None:
    s3 = MemoryS3()
    s3.lease_fault("read", LeaseFault.FAIL)
    a = keeper(s3, "a")
    with structlog.testing.capture_logs() as logs:
        async with running(a):
            await until(lambda: s3.calls["GetObject"] >= 3)
            assert not a.held()
            s3.lease_fault("read", None)
            await until(a.held)
    failed = [line for line in logs if line["event"] == "lease_request_failed"]
    assert [line["log_level"] for line in failed][:3] == ["warning", "debug", "debug"]
    assert "exc_info" not in failed[0]
    assert failed[0]["account"] == ACCOUNT


async def test_each_lease_request_tells_whether_it_reached_the_store() -> None:
    s3, contacts = MemoryS3(), list[bool]()
    s3.lease_fault("read", LeaseFault.FAIL)
    a = keeper(s3, "a")
    a.contact = contacts.append  # a standby's readiness: its lease reads are its only contact with S3
    async with running(a):
        await until(lambda: False in contacts)
        s3.lease_fault("read", None)
        await until(a.held)
    assert contacts[0] is False
    assert contacts[-1] is True


async def test_a_request_that_hangs_is_given_up_after_a_third_of_a_duration_as_an_unknown_outcome() -> None:
    s3 = MemoryS3()
    s3.lease_fault("create", LeaseFault.HANG)
    a = keeper(s3, "a")
    with structlog.testing.capture_logs() as logs:
        async with running(a):
            await until(lambda: s3.calls["PutObject"] >= 2, within=2 * D)  # asked again after a read
            assert KEY not in s3.objects
            s3.lease_fault("create", None)
            await until(a.held)
    failed = [line for line in logs if line["event"] == "lease_request_failed"]
    assert failed[0]["error"] == f"no answer within {D / 3:g} s"


async def test_writes_stop_and_on_lost_fires_when_the_deadline_draws_near_while_a_renewal_hangs() -> None:
    offset = [0.0]
    s3 = MemoryS3()
    a, told = keeper(s3, "a", clock=lambda: time.monotonic() + offset[0]), []
    a.on_lost(lambda: told.append((a.held(), a.may_start_write())))
    async with running(a):
        await until(a.may_start_write)
        s3.lease_fault("replace", LeaseFault.HANG)
        calls = s3.calls["PutObject"]
        await until(lambda: s3.calls["PutObject"] > calls)  # the renewal is under way, and hangs
        offset[0] = D / 2  # time jumps: less than the write timeout and the margin are left
        await until(lambda: bool(told), within=D / 10)
        assert told == [(True, False)]  # held, but no write may start


async def test_on_lost_fires_when_another_replica_wins_and_the_lease_is_logged_lost() -> None:
    s3, seen = MemoryS3(), Seen()
    a, told = keeper(s3, "a", observer=seen), []
    a.on_lost(lambda: told.append(True))
    with structlog.testing.capture_logs() as logs:
        async with running(a):
            await until(a.may_start_write)
            other = LeaseBody("b", 5, acquired=1.0, renewed=1.0, duration=D)
            s3.objects[KEY] = encode(other)  # another writer got there (a race a read would explain)
            await until(lambda: not a.held())
            assert told == [True]
            assert a.holder_seen == "b"
            assert not a.may_start_write()
    assert Transition.LOST in seen.transitions
    assert seen.held[-1] is False
    [line] = [line for line in logs if line["event"] == "lease_lost"]
    assert (line["log_level"], line["account"], line["replica"], line["epoch"]) == ("warning", ACCOUNT, "a", 1)


async def test_a_replica_that_does_not_want_the_lease_watches_until_want_wakes_it_at_once() -> None:
    s3 = MemoryS3()
    a = keeper(s3, "a", wanted=False)
    async with running(a):
        await until(lambda: s3.calls["GetObject"] >= 1)
        await anyio.sleep(0.05)
        assert KEY not in s3.objects
        assert a.free()
        a.want(True)
        asked = time.monotonic()
        assert await until(a.held) - asked < D / 10


async def test_a_keeper_cancelled_mid_request_runs_again() -> None:
    s3 = MemoryS3()
    s3.lease_fault("create", LeaseFault.HANG)
    a = keeper(s3, "a")
    async with running(a) as scopes:
        await until(lambda: s3.calls["PutObject"] >= 1)
        scopes["a"].cancel()
    s3.lease_fault("create", None)
    async with running(a):
        await until(a.held)


def test_a_write_timeout_must_be_a_positive_number() -> None:
    with pytest.raises(ValueError, match="write timeout"):
        LeaseKeeper(MemoryS3(), ACCOUNT, "a", D, write_timeout=0.0)


async def test_the_memory_store_writes_only_on_its_conditions_with_md5_etags() -> None:
    s3 = MemoryS3()
    assert await s3.read(KEY) is None
    first = await s3.create(KEY, b"one")
    assert first == etag_of(b"one") == '"' + "f97c5d29941bfb1b2fdab0874906ab82" + '"'
    assert await s3.create(KEY, b"two") is None
    assert await s3.replace(KEY, b"two", '"stale"') is None
    assert await s3.replace("lease/none.json", b"two", first) is None
    second = await s3.replace(KEY, b"two", first)
    found = await s3.read(KEY)
    assert found is not None
    assert (found.data, found.etag) == (b"two", second)
    s3.lease_fault("replace", LeaseFault.LOSE_ANSWER, key=KEY)
    with pytest.raises(Exception, match="answer was lost"):
        await s3.replace(KEY, b"three", found.etag)
    assert s3.objects[KEY] == b"three"


async def test_a_release_the_store_never_confirms_is_said_in_a_warning() -> None:
    s3 = MemoryS3()
    a = await stopped_holder(s3)
    s3.lease_fault("replace", LeaseFault.FAIL)
    with structlog.testing.capture_logs() as logs:
        await a.release()
    [line] = [line for line in logs if line["event"] == "lease_release_unconfirmed"]
    assert (line["log_level"], line["account"], line["replica"], line["epoch"]) == ("warning", ACCOUNT, "a", 1)
    assert not body(s3).released
