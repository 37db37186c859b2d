"""The one retry layer: tenacity around each S3 request, with a backoff shared by the process.

Every S3 and STS request goes through :func:`call_with_retries` (the S3 adapter's
``call()`` wraps each request in it). botocore is told to make one attempt only, so this
is the only place that retries, and it sees, counts and times every attempt.

- Only :class:`~lakecircle.errors.TransientError` is retried (throttling, 5xx,
  connection failures); a :class:`~lakecircle.errors.PermanentError` fails at once.
- Each retry waits a random time between 0 and ``base_delay * 2**(attempt - 1)``,
  capped at ``max_delay`` ("full jitter"), for at most ``max_attempts`` attempts, and
  never starts a sleep that would end past the cycle's deadline: it gives up instead,
  re-raising the last error.
- When S3 throttles, one worker's backoff is not enough: the others keep hammering.
  The :class:`ThrottleGate` is shared by every request of the process; a throttled
  answer pushes its "slow down until" time out (exponential, full jitter, capped) and
  every request waits for it, so the whole daemon slows down; successes relax it.
- An optional :class:`RateLimiter` (``LCC_MAX_REQUESTS_PER_SECOND``) spreads the
  requests of a large resync instead of sending them in one burst.

Clock and sleep are injected everywhere, so tests run a minute of backoff in
milliseconds. This module imports no AWS SDK: it knows LakeCircle's errors only.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

from lakecircle import errors

if TYPE_CHECKING:
    from lakecircle.settings import Settings

T = TypeVar("T")

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``)."""

Sleep = Callable[[float], Awaitable[None]]
"""An async sleep (``anyio.sleep``)."""

OUTCOMES = ("success", "throttled", "server_error", "connection", "denied", "not_found", "invalid", "error")
"""The values of the ``outcome`` label of ``lakecircle_s3_requests_total``."""

RETRY_REASONS = ("throttled", "server_error", "connection")
"""The values of the ``reason`` label of ``lakecircle_s3_retries_total``."""

_NOT_FOUND_CODES = frozenset({"NoSuchLifecycleConfiguration", "NoSuchKey", "NoSuchBucket", "NotFound", "404"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one S3 call is retried.

    ``deadline`` is the time allowed for a whole cycle, in seconds: no retry starts a
    sleep that would end after it (the S3 adapter's ``cycle_deadline()`` fixes the
    cycle's start; outside one, a call's own start counts). None means no deadline.
    """

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 20.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError(f"expected 0 < base_delay <= max_delay, got {self.base_delay} and {self.max_delay}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be positive, not {self.deadline}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy of ``LCC_RETRY_MAX_ATTEMPTS``, ``LCC_RETRY_*_DELAY`` and ``LCC_CYCLE_DEADLINE``.

        Each value is checked on its own when the settings load; that the base delay does
        not exceed the cap is checked here, as a configuration error naming both variables.
        """
        if settings.retry_base_delay > settings.retry_max_delay:
            raise errors.ConfigError(
                [
                    f"LCC_RETRY_BASE_DELAY: {settings.retry_base_delay:g} s is more than LCC_RETRY_MAX_DELAY"
                    f" ({settings.retry_max_delay:g} s); the first retry's delay must not exceed the cap"
                ]
            )
        return cls(
            max_attempts=settings.retry_max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            deadline=settings.cycle_deadline,
        )


class RequestObserver(Protocol):
    """Told about every request attempt and every retry; the metrics implement it."""

    def on_request(self, operation: str, outcome: str, seconds: float) -> None:
        """One HTTP request of ``operation`` ended with ``outcome`` (one of :data:`OUTCOMES`)."""

    def on_retry(self, operation: str, reason: str, delay: float) -> None:
        """``operation`` will be retried after ``delay`` seconds (``reason``: :data:`RETRY_REASONS`)."""


def outcome_of(exc: BaseException | None) -> str:
    """The ``outcome`` label of a request that raised ``exc`` (None: it succeeded)."""
    if exc is None:
        return "success"
    if isinstance(exc, errors.TransientError):
        return reason_of(exc)
    if isinstance(exc, errors.AccessDenied):
        return "denied"
    if isinstance(exc, errors.NoSuchBucket) or (
        isinstance(exc, errors.S3Error) and (exc.code in _NOT_FOUND_CODES or exc.status == 404)
    ):
        return "not_found"
    if isinstance(exc, errors.InvalidRequest):
        return "invalid"
    return "error"


def reason_of(exc: errors.TransientError) -> str:
    """The ``reason`` label of a retry after ``exc``."""
    if isinstance(exc, errors.Throttled):
        return "throttled"
    if isinstance(exc, errors.ConnectionFailed):
        return "connection"
    return "server_error"


class RateLimiter:
    """At most ``rate`` requests per second: a token bucket one token deep.

    Each request reserves the next free slot, ``1 / rate`` seconds after the previous
    one, and sleeps until it, so N requests arriving together start over
    ``(N - 1) / rate`` seconds, in the order they asked.
    """

    def __init__(self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf

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
    """A "slow down until" time shared by every request of the process, and its rate limit.

    A throttled answer raises the gate's level by one and pushes the time out by a random
    delay between 0 and ``base_delay * 2**(level - 1)``, capped at ``max_delay``. Every
    request (first attempts and retries, of every worker) waits for that time before it
    starts, so a throttled account sees the whole daemon slow down. Each success lowers
    the level by one. Answers to requests that were already in flight when the gate last
    went up do not move it again: one burst of throttling counts once, not once per worker.
    """

    def __init__(
        self,
        *,
        base_delay: float = 0.2,
        max_delay: float = 20.0,
        max_requests_per_second: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not 0 < base_delay <= max_delay:
            raise ValueError(f"expected 0 < base_delay <= max_delay, got {base_delay} and {max_delay}")
        if max_requests_per_second < 0:
            raise ValueError(f"max_requests_per_second must be 0 (off) or positive, not {max_requests_per_second}")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.limiter = (
            RateLimiter(max_requests_per_second, clock=clock, sleep=sleep) if max_requests_per_second > 0 else None
        )
        self._clock = clock
        self._sleep = sleep
        self._until = -math.inf
        self._raised_at = -math.inf
        self._level = 0

    @property
    def level(self) -> int:
        """How many throttled answers are not yet relaxed by successes."""
        return self._level

    def remaining(self) -> float:
        """Seconds until requests may start again (0 when the gate is open)."""
        return max(0.0, self._until - self._clock())

    def on_throttled(self, started: float) -> None:
        """A request that started at ``started`` was throttled: slow everyone down."""
        if started <= self._raised_at:
            return
        now = self._clock()
        self._level += 1
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(self._level - 1, 60))
        self._until = max(self._until, now + random.uniform(0.0, cap))  # noqa: S311 -- jitter, not cryptography
        self._raised_at = now

    def on_success(self, started: float) -> None:
        """A request that started at ``started`` succeeded: relax the gate by one level."""
        if started > self._raised_at and self._level > 0:
            self._level -= 1

    async def wait(self, *, deadline_at: float | None = None) -> float:
        """Wait until the gate is open (not past ``deadline_at``), then for a rate-limit slot.

        Returns the seconds waited. If the gate moves further out while waiting (another
        worker was throttled meanwhile), waits for the new time too.
        """
        waited = 0.0
        target = self._until
        while True:
            end = target if deadline_at is None else min(target, deadline_at)
            pause = end - self._clock()
            if pause <= 0:
                break
            await self._sleep(pause)
            waited += pause
            if self._until <= target:
                break
            target = self._until
        if self.limiter is not None:
            waited += await self.limiter.acquire()
        return waited


class _StopAtDeadline(stop_base):
    """Stop rather than start a sleep that would end past ``deadline_at``."""

    def __init__(self, deadline_at: float | None, clock: Clock) -> None:
        self.deadline_at = deadline_at
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline_at is not None and self.clock() + retry_state.upcoming_sleep > self.deadline_at


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    operation: str,
    policy: RetryPolicy,
    gate: ThrottleGate | None = None,
    sleep: Sleep = anyio.sleep,
    clock: Clock = time.monotonic,
    deadline_at: float | None = None,
    on_retry: Callable[[str, str, float], None] | None = None,
) -> T:
    """``await fn()`` (one request), retried on transient errors; returns its result.

    ``deadline_at`` is an absolute time on ``clock``; without it, ``policy.deadline``
    counts from now. Each attempt first waits at ``gate`` (when given) and reports its
    throttling or success to it. The wait before retry ``n`` is random in
    ``[0, base_delay * 2**(n - 1)]`` (capped at ``max_delay``), or the gate's remaining
    time if that is longer. ``on_retry(operation, reason, delay)`` is called before each
    retry's sleep. After the last attempt, or when the next sleep would end past the
    deadline, the last error is raised as it was (a LakeCircle error, never RetryError).
    """
    if deadline_at is None and policy.deadline is not None:
        deadline_at = clock() + policy.deadline
    backoff = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def wait(retry_state: RetryCallState) -> float:
        delay = backoff(retry_state)
        if gate is not None:
            delay = max(delay, min(gate.remaining(), policy.max_delay))
        return delay

    def before_sleep(retry_state: RetryCallState) -> None:
        if on_retry is None or retry_state.outcome is None:
            return
        exc = retry_state.outcome.exception()
        if isinstance(exc, errors.TransientError):
            on_retry(operation, reason_of(exc), retry_state.upcoming_sleep)

    async def attempt() -> T:
        if gate is not None:
            await gate.wait(deadline_at=deadline_at)
        started = clock()
        try:
            result = await fn()
        except errors.Throttled:
            if gate is not None:
                gate.on_throttled(started)
            raise
        if gate is not None:
            gate.on_success(started)
        return result

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(policy.max_attempts) | _StopAtDeadline(deadline_at, clock),
        wait=wait,
        retry=retry_if_exception_type(errors.TransientError),
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T = await retrying(attempt)
    return result
