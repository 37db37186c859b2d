"""The one retry layer: a small loop around each S3 request, with jittered exponential backoff.

Every S3 and STS request goes through :func:`call_with_retries` (the S3 adapter's
``call()`` wraps each request in it). botocore is told to make one attempt only, so this
is the only place that retries, and it sees, counts and times every attempt
(ARCHITECTURE.md, "Errors and retries").

- Only :class:`~lakecircle.errors.TransientError` is retried (throttling, 5xx,
  connection failures); a :class:`~lakecircle.errors.PermanentError` fails at once.
- Each retry waits a random time between 0 and ``base_delay * 2**(attempt - 1)``,
  capped at ``max_delay`` ("full jitter"), for at most ``max_attempts`` attempts, and
  never starts a sleep that would end past the cycle's deadline: it gives up instead,
  re-raising the last error.
- Every attempt, the first and the retries, goes through the process's
  :class:`~lakecircle.adapters.throttle.ThrottleGate` when there is one, which adapts the
  request rate under throttling on top of each request's own backoff.

A plain loop rather than tenacity: most requests succeed at once, and building tenacity's
retry state for each of them was a measurable share of the client's CPU and garbage.
Clock and sleep are injected, so tests run a minute of backoff in milliseconds. This
module imports no AWS SDK: it knows LakeCircle's errors only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio

from lakecircle import errors
from lakecircle.adapters.throttle import Sleep, ThrottleGate
from lakecircle.clocks import MonotonicClock

if TYPE_CHECKING:
    from lakecircle.settings import Settings

T = TypeVar("T")

OnRetry = Callable[[str, errors.TransientError, float], None]
"""Told ``(operation, error, delay)`` before each retry's sleep."""

RetryOn = tuple[type[errors.TransientError], ...]
"""The transient errors a call retries (all of them unless it says fewer)."""


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

    def delay_cap(self, attempt: int) -> float:
        """The longest wait after attempt ``attempt`` (1: the first): ``base_delay * 2**(attempt - 1)``, capped."""
        try:
            return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        except OverflowError:
            return self.max_delay


class RequestObserver(Protocol):
    """Told about every request attempt and every retry; the metrics implement it.

    It hears LakeCircle's errors, not labels: what each one is called on a dashboard is
    the metrics' business (ARCHITECTURE.md, "Observability").
    """

    def observe_request(self, operation: str, error: Exception | None, seconds: float) -> None:
        """One HTTP request of ``operation`` took ``seconds`` and raised ``error`` (None: it succeeded)."""

    def observe_retry(self, operation: str, error: errors.TransientError, delay: float) -> None:
        """``operation`` raised ``error`` and will be retried after ``delay`` seconds."""


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    operation: str,
    policy: RetryPolicy,
    gate: ThrottleGate | None = None,
    sleep: Sleep = anyio.sleep,
    clock: MonotonicClock = time.monotonic,
    deadline_at: float | None = None,
    on_retry: OnRetry | None = None,
    retry_on: RetryOn = (errors.TransientError,),
) -> T:
    """``await fn()`` (one request), retried on transient errors; returns its result.

    ``deadline_at`` is an absolute time on ``clock``; without it, ``policy.deadline``
    counts from now. Each attempt goes :meth:`~lakecircle.adapters.throttle.ThrottleGate.through`
    ``gate`` (when given), which holds it and counts its answer. The wait before retry
    ``n`` is random in ``[0, base_delay * 2**(n - 1)]`` (capped at ``max_delay``); the
    gate's hold and rate limit, if any, come on top of it, in the gate's own wait.
    ``on_retry(operation, error, delay)`` is called before each retry's sleep. After the
    last attempt, or when the next sleep would end past the deadline, the last error is
    raised as it was. ``retry_on`` narrows which transient errors are retried: another is
    raised at once (a conditional write retries only what says it was not applied).
    """
    if deadline_at is None and policy.deadline is not None:
        deadline_at = clock() + policy.deadline
    attempt = 1
    while True:
        try:
            return await (fn() if gate is None else gate.through(fn, deadline_at=deadline_at))
        except errors.TransientError as exc:
            if not isinstance(exc, retry_on):
                raise
            delay = random.uniform(0, policy.delay_cap(attempt))  # noqa: S311 (jitter, not a secret)
            if attempt >= policy.max_attempts or (deadline_at is not None and clock() + delay > deadline_at):
                raise
            if on_retry is not None:
                on_retry(operation, exc, delay)
        await sleep(delay)
        attempt += 1
