"""The process's request rate under throttling: a rate limiter, and the gate that adapts it.

When S3 throttles, one request's backoff is not enough: the other workers keep sending.
The :class:`ThrottleGate`, shared by every request of the process, adapts the process's
request rate (multiplicative decrease and increase, as below), separately from each
request's retry backoff (:mod:`lakecircle.adapters.retry`). An optional
:class:`RateLimiter` (``LCC_MAX_REQUESTS_PER_SECOND``) spreads the requests of a large
resync instead of sending them in one burst; the gate never goes above it.

The gate's rule:

- **Decrease.** On a significant burst of throttled answers, the rate limiter's rate
  becomes :data:`DECREASE` (0.8) times the rate of successful requests over the last
  second (over the busy spell, if it began less than a second ago), never below
  :data:`MIN_RATE` (1/s) nor above ``LCC_MAX_REQUESTS_PER_SECOND``, nor above the rate
  already set; a limiter is created if there is none. New requests are held for one
  interval of the new rate, not for an exponential delay. A burst counts once: answers
  to requests that started before the last decrease do not decrease the rate again.
- **Which bursts.** A burst is significant when throttled answers make up at least
  :data:`MIN_SHARE` (20%) of the last second's answers, over at least
  :data:`MIN_ANSWERS` (50) answers. The success rate at a significant burst (measured
  over a full second) is kept as the endpoint's capacity: once the rate has climbed
  back to it, any new burst decreases the rate, so a rate-limited endpoint sees a
  tight sawtooth just under its limit. Other throttled answers are retried without
  slowing everyone: S3 answers SlowDown now and then for reasons of its own, and a rate
  cut for each of those compounds down to the floor (with 10% of answers SlowDown at
  random, as in the fault campaign of tests/test_faults.py, a cycle would never finish).
- **Increase.** Multiplicative: the rate set at the decrease times :data:`INCREASE`
  (1.05) per throttle-free second, compounded continuously, up to
  ``LCC_MAX_REQUESTS_PER_SECOND``; times :data:`FAST_INCREASE` (2) per second when the
  decrease came in the first second of a busy spell, where the success rate measured
  says little about the endpoint (without it, a cold cycle against an endpoint that
  throttles above 200/s was cut to 85/s in its first half-second and spent 17 s climbing
  back). Multiplicative rather than additive so that a deep
  cut (to the floor, after a second with no success) recovers in minutes, not hours.
  With no maximum configured, once the rate is more than :data:`DROP_ABOVE` (2) times
  the success rate of the last second, a second after the decrease with no throttled
  answer in it, the limiter is dropped. At its configured maximum, or dropped, the gate
  is at rest: ``level`` 0, capacity forgotten.

Clock and sleep are injected, so tests run a minute of throttling in milliseconds
(ARCHITECTURE.md, "Testing"). This module knows LakeCircle's errors only.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from lakecircle import errors
from lakecircle.clocks import MonotonicClock

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep (``anyio.sleep``)."""

DECREASE = 0.8
"""A decrease sets the rate to this times the success rate of the last second."""

INCREASE = 1.05
"""Each throttle-free second multiplies the rate by this (compounded continuously)."""

FAST_INCREASE = 2.0
"""The same, after a decrease whose success rate was measured over less than a second
(the start of a busy spell, while connections open): that rate says little about the
endpoint's capacity, so the rate doubles each second until the next burst measures it."""

MIN_RATE = 1.0
"""The lowest rate a decrease sets, in requests per second."""

MIN_SHARE = 0.2
"""A burst is significant when throttled answers are at least this share of the last second's answers ..."""

MIN_ANSWERS = 50
"""... and the last second had at least this many answers."""

WINDOW = 1.0
"""Seconds over which the success rate and the share of throttled answers are measured."""

MIN_SPAN = 0.05
"""The shortest time a success rate is measured over, at the start of a busy spell."""

DROP_ABOVE = 2.0
"""With no configured maximum, a limiter this many times above the success rate is dropped."""


class RateLimiter:
    """At most ``rate`` requests per second: a token bucket one token deep.

    Each request reserves the next free slot, ``1 / rate`` seconds after the previous
    one, and sleeps until it, so N requests arriving together start over
    ``(N - 1) / rate`` seconds, in the order they asked. :meth:`set_rate` changes the
    spacing of the slots not yet reserved.
    """

    def __init__(self, rate: float, *, clock: MonotonicClock = time.monotonic, sleep: Sleep = anyio.sleep) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf

    @property
    def rate(self) -> float:
        """Requests per second."""
        return 1.0 / self.interval

    def set_rate(self, rate: float) -> None:
        """From now on, at most ``rate`` requests per second."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.interval = 1.0 / rate

    async def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        pause = slot - now
        if pause > 0:
            await self._sleep(pause)
        return pause


class ThrottleGate:
    """The process's request rate under throttling, shared by every request (see the module docstring).

    Every request (first attempts and retries, of every worker) goes :meth:`through` the
    gate: it waits (:meth:`wait`) before it starts, and its answer is counted
    (:meth:`on_success` or :meth:`on_throttled`). A
    significant burst of throttling sets :attr:`limiter` to ``decrease`` times the
    success rate of the last second and holds new requests for one interval of it; each
    throttle-free second raises the rate by ``increase``. ``max_requests_per_second``
    (0: none) is the configured limit: the adaptive rate never exceeds it, and it stays
    in force when the gate is at rest. ``max_delay`` caps a hold (the S3 adapter passes
    its retry policy's).
    """

    def __init__(
        self,
        *,
        max_delay: float = 20.0,
        max_requests_per_second: float = 0.0,
        decrease: float = DECREASE,
        increase: float = INCREASE,
        min_rate: float = MIN_RATE,
        min_share: float = MIN_SHARE,
        min_answers: int = MIN_ANSWERS,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not max_delay > 0:
            raise ValueError(f"max_delay must be positive, not {max_delay}")
        if max_requests_per_second < 0:
            raise ValueError(f"max_requests_per_second must be 0 (off) or positive, not {max_requests_per_second}")
        if not 0 < decrease < 1 or not increase > 1:
            raise ValueError(f"expected 0 < decrease < 1 < increase, got {decrease} and {increase}")
        if not min_rate > 0 or not 0 <= min_share <= 1 or min_answers < 0:
            raise ValueError(
                "expected min_rate > 0, 0 <= min_share <= 1 and min_answers >= 0,"
                f" got {min_rate}, {min_share} and {min_answers}"
            )
        self.max_delay = max_delay
        self.max_rate = max_requests_per_second if max_requests_per_second > 0 else None
        """The configured limit (``LCC_MAX_REQUESTS_PER_SECOND``), None when there is none."""
        self.decrease = decrease
        self.increase = increase
        self.min_rate = min(min_rate, self.max_rate) if self.max_rate is not None else min_rate
        self.min_share = min_share
        self.min_answers = min_answers
        self.limiter = RateLimiter(self.max_rate, clock=clock, sleep=sleep) if self.max_rate is not None else None
        """The rate limit in force, None when there is none; its rate is set by the gate."""
        self.capacity: float | None = None
        """The success rate the endpoint served at the last significant burst (None: not known)."""
        self._clock = clock
        self._sleep = sleep
        self._until = -math.inf  # the end of the hold after the last decrease
        self._successes: deque[float] = deque()  # when each success of the last second was answered
        self._throttles: deque[float] = deque()  # likewise for throttled answers
        self._busy_since = -math.inf  # when the first request of this busy spell started
        self._cut_at = -math.inf  # when the rate was last decreased; earlier requests are of that burst
        self._cut_rate = 0.0  # the rate set then
        self._level = 0

    @property
    def level(self) -> int:
        """Decreases since the gate was last at rest (0: at rest, i.e. unlimited or at the configured maximum)."""
        return self._level

    @property
    def rate(self) -> float | None:
        """The requests per second allowed now (None: no limit)."""
        if self._level:
            return self._recovered(self._clock())
        return self.max_rate

    def remaining(self, deadline_at: float | None = None) -> float:
        """Seconds until the hold after the last decrease ends, or ``deadline_at`` comes (0: no hold)."""
        end = self._until if deadline_at is None else min(self._until, deadline_at)
        return max(0.0, end - self._clock())

    def success_rate(self, now: float | None = None) -> float:
        """Successful requests per second over the second before ``now`` (default: the clock's now),
        or since the busy spell began, if later."""
        now = self._clock() if now is None else now
        successes = _trim(self._successes, now)
        if not successes:
            return 0.0
        return len(successes) / max(min(WINDOW, now - self._busy_since), MIN_SPAN)

    def _recovered(self, now: float) -> float:
        """The rate after the throttle-free time since the last decrease, capped at the maximum."""
        factor = self.increase if self.capacity is not None else FAST_INCREASE
        rate: float = self._cut_rate * factor ** (now - self._cut_at)
        return rate if self.max_rate is None else min(rate, self.max_rate)

    def on_success(self, started: float) -> None:
        """A request that started at ``started`` succeeded: count it in the success rate."""
        now = self._clock()
        successes = self._successes
        if not successes or successes[-1] <= now - WINDOW:
            self._busy_since = started  # the first success after a quiet second: a new busy spell
        successes.append(now)
        _trim(successes, now)

    def on_throttled(self, started: float) -> None:
        """A request that started at ``started`` was throttled: decrease the rate if the burst calls for it."""
        now = self._clock()
        throttles = self._throttles
        throttles.append(now)
        _trim(throttles, now)
        if started <= self._cut_at:
            return  # sent before the last decrease: that burst has been answered already
        observed = self.success_rate(now)
        answers = len(throttles) + len(self._successes)
        significant = answers >= self.min_answers and len(throttles) >= self.min_share * answers
        current = self._adjust(now)
        if significant:
            # Over less than a second, at the start of a busy spell, the rate is inflated
            # by the endpoint's burst allowance: not a capacity.
            self.capacity = observed if now - self._busy_since >= WINDOW else None
        elif self.capacity is None or current < self.capacity:
            return  # a stray throttled answer, below the rate the endpoint has shown it serves
        rate = max(self.min_rate, min(self.decrease * observed, current))
        if self.max_rate is not None:
            rate = min(rate, self.max_rate)
        if self.limiter is None:
            self.limiter = RateLimiter(rate, clock=self._clock, sleep=self._sleep)
        else:
            self.limiter.set_rate(rate)
        self._cut_at = now
        self._cut_rate = rate
        self._level += 1
        self._until = max(self._until, now + min(1.0 / rate, self.max_delay))

    def _adjust(self, now: float) -> float:
        """Bring the limiter up to date with the time since the last decrease; returns its rate (inf: none)."""
        limiter = self.limiter
        if not self._level or limiter is None:
            return limiter.rate if limiter is not None else math.inf
        rate = self._recovered(now)
        limiter.set_rate(rate)
        if self.max_rate is not None:
            if rate >= self.max_rate:
                self._rest()
        elif (
            now - self._cut_at >= WINDOW
            and (not self._throttles or self._throttles[-1] <= now - WINDOW)
            and rate > DROP_ABOVE * self.success_rate(now)
        ):
            self.limiter = None  # far above what is used: no limit is needed
            self._rest()
            return math.inf
        return rate

    def _rest(self) -> None:
        """Back at the configured rate (or none): the decreases and the capacity are forgotten."""
        self._level = 0
        self.capacity = None

    async def wait(self, *, deadline_at: float | None = None) -> float:
        """Wait out a hold (not past ``deadline_at``), then for a slot at the current rate.

        Returns the seconds waited. If a new hold starts while waiting (another worker
        was throttled meanwhile), waits for it too.
        """
        waited = 0.0
        while (pause := self.remaining(deadline_at)) > 0:
            hold = self._until
            await self._sleep(pause)
            waited += pause
            if self._until <= hold:  # one sleep per hold: a timer that fires early is not slept again
                break
        if self._level:
            self._adjust(self._clock())
        if self.limiter is not None:
            waited += await self.limiter.acquire()
        return waited

    async def through(self, request: Callable[[], Awaitable[T]], *, deadline_at: float | None = None) -> T:
        """``await request()`` once it may start (see :meth:`wait`), its answer counted.

        A throttled answer goes to :meth:`on_throttled` and is raised; a success to
        :meth:`on_success`; any other error is raised without counting.
        """
        await self.wait(deadline_at=deadline_at)
        started = self._clock()
        try:
            result = await request()
        except errors.Throttled:
            self.on_throttled(started)
            raise
        self.on_success(started)
        return result


def _trim(answers: deque[float], now: float) -> deque[float]:
    """``answers`` without those answered a :data:`WINDOW` or more before ``now`` (oldest first)."""
    cutoff = now - WINDOW
    while answers and answers[0] <= cutoff:
        answers.popleft()
    return answers
