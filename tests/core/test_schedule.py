"""Continuous verification's due times (core/schedule.py): even spreading, a steady rate, buckets
taken once until verified, new buckets at once, pushes ahead of the rest, and the lag."""

from __future__ import annotations

import math

import pytest

from lakecircle.core.schedule import Schedule

NAMES = [f"bucket-{i:04d}" for i in range(8)]


def test_a_full_pass_spreads_the_next_verifications_evenly_over_the_interval_in_listing_order() -> None:
    schedule = Schedule(100.0)
    schedule.spread(NAMES[:4], now=0.0)
    assert [schedule.due_at(n) for n in NAMES[:4]] == [25.0, 50.0, 75.0, 100.0]
    assert schedule.take_due(24.9, limit=10) == []
    assert schedule.take_due(50.0, limit=10) == NAMES[:2]


def test_over_one_interval_every_bucket_is_taken_once_at_a_steady_rate() -> None:
    buckets, interval = 1000, 100.0
    names = [f"b{i}" for i in range(buckets)]
    schedule = Schedule(interval)
    schedule.spread(names, now=0.0)
    per_second: list[int] = []
    seen: list[str] = []
    for second in range(1, int(interval) + 1):
        taken = schedule.take_due(float(second), limit=buckets)
        for name in taken:
            schedule.verified(name, float(second))
        per_second.append(len(taken))
        seen += taken
    assert sorted(seen) == sorted(names)  # each exactly once
    assert set(per_second) == {buckets // int(interval)}  # 10 a second, every second
    assert schedule.take_due(interval + 1, limit=buckets) == [f"b{i}" for i in range(10)]  # the next round


def test_a_bucket_taken_is_not_taken_again_until_it_is_said_verified_or_released() -> None:
    schedule = Schedule(60.0)
    schedule.spread(NAMES[:3], now=0.0)
    assert schedule.take_due(60.0, limit=2) == NAMES[:2]
    assert schedule.take_due(60.0, limit=5) == [NAMES[2]]
    assert schedule.take_due(61.0, limit=5) == []
    schedule.released(NAMES[0])  # its verification could not start: due as it was
    schedule.verified(NAMES[1], now=61.0)
    assert schedule.take_due(61.0, limit=5) == [NAMES[0]]
    assert schedule.due_at(NAMES[1]) == 121.0


def test_the_limit_takes_the_longest_overdue_first() -> None:
    schedule = Schedule(100.0)
    schedule.spread(NAMES[:4], now=0.0)
    assert schedule.take_due(500.0, limit=1) == [NAMES[0]]


def test_a_new_bucket_is_due_at_once_and_a_known_one_keeps_its_time() -> None:
    schedule = Schedule(100.0)
    schedule.spread([NAMES[0]], now=0.0)
    assert schedule.add(NAMES[1], now=10.0)
    assert not schedule.add(NAMES[0], now=10.0)
    assert schedule.due_at(NAMES[0]) == 100.0
    assert schedule.take_due(10.0, limit=5) == [NAMES[1]]
    assert len(schedule) == 2
    assert NAMES[1] in schedule


def test_a_bucket_gone_is_never_taken_again() -> None:
    schedule = Schedule(100.0)
    schedule.spread(NAMES[:2], now=0.0)
    schedule.discard(NAMES[0])
    schedule.discard("never-scheduled")
    assert schedule.take_due(1000.0, limit=5) == [NAMES[1]]
    assert NAMES[0] not in schedule
    schedule.verified(NAMES[0], now=1000.0)  # its verification ended after it was dropped
    assert NAMES[0] not in schedule


def test_the_lag_is_how_far_behind_the_oldest_due_bucket_is() -> None:
    schedule = Schedule(100.0)
    assert schedule.lag(0.0) == 0.0
    schedule.spread(NAMES[:4], now=0.0)
    assert schedule.lag(10.0) == 0.0
    assert schedule.lag(40.0) == 15.0
    schedule.discard(NAMES[0])
    assert schedule.lag(40.0) == 0.0


def test_the_heap_stays_within_twice_the_buckets_however_often_they_are_verified() -> None:
    schedule = Schedule(10.0)
    schedule.spread(NAMES, now=0.0)
    for round_ in range(1, 200):
        for name in NAMES:
            schedule.verified(name, now=float(round_))
    assert len(schedule._heap) <= 2 * len(NAMES) + 64
    assert schedule.take_due(1000.0, limit=100) == sorted(NAMES)


@pytest.mark.parametrize("interval", [0.0, -1.0, math.inf, math.nan])
def test_the_interval_must_be_a_positive_number_of_seconds(interval: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        Schedule(interval)


def test_the_pacer_allows_the_rate_since_the_last_step_twice_it_behind_and_never_a_burst() -> None:
    from lakecircle.core.schedule import Pacer

    pacer = Pacer(tick=1.0)
    pacer.reset(0.0)
    assert pacer.take(1.0, 10.0, behind=False) == 10
    pacer.spent(10)
    assert pacer.take(2.0, 10.0, behind=True) == 20
    pacer.spent(20)
    assert pacer.take(1_000.0, 10.0, behind=True) == 20  # a long pause: two ticks' worth at most
    assert pacer.allowed(1_000.0, 0.001, behind=False) == 1.0  # a small account: one at a time


def test_a_name_listed_again_is_held_once_as_the_schedule_first_saw_it() -> None:
    first = "".join(["bucket-", "0"])
    again = "".join(["bucket-", "0"])
    assert first == again
    assert first is not again
    schedule = Schedule(100.0)
    schedule.spread([first], now=0.0)
    schedule.spread([again], now=50.0)  # the next pass's listing: an equal string, another object
    schedule.verified(again, now=60.0)
    [taken] = schedule.take_due(200.0, limit=5)
    assert taken is first
    assert schedule.names()[0] is first
