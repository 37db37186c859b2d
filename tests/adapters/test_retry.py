"""The retry layer with an injected clock and sleep: a minute of backoff runs in milliseconds.

Nothing here waits for real. ``FakeTime.sleep`` records each delay and moves the fake
clock on; jitter comes from the ``random`` module, seeded (or pinned to its upper
bound) where a test needs the numbers to be reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from statistics import mean
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lakecircle import errors
from lakecircle.adapters.retry import RetryPolicy, call_with_retries
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.throttle import RateLimiter, ThrottleGate
from lakecircle.core.model import LifecycleConfig
from lakecircle.ports import BucketRef
from lakecircle.service.metrics import outcome_of, reason_of
from tests.builders import RecordingObserver

pytestmark = pytest.mark.anyio

OPERATION = "GetBucketLifecycleConfiguration"


class FakeTime:
    """A monotonic clock that only moves when someone sleeps; the sleeps are recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self.now = start
        self.sleeps: list[float] = []
        self._wakes: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Concurrent sleepers wake in order: the earliest one moves the clock to its end."""
        self.sleeps.append(seconds)
        wake = self.now + seconds
        self._wakes.append(wake)
        try:
            while self.now < wake:
                for _ in range(5):  # let every runnable task reach its own sleep first
                    await asyncio.sleep(0)
                if wake <= min(self._wakes):
                    self.now = max(self.now, wake)
        finally:
            self._wakes.remove(wake)

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class Script:
    """One request per call: raises the scripted errors in turn, then returns ``result``."""

    def __init__(self, time: FakeTime, failures: list[Exception] | Callable[[], Exception], result: str = "ok") -> None:
        self.time = time
        self.failures = failures
        self.result = result
        self.started: list[float] = []
        self.raised: list[Exception] = []

    async def __call__(self) -> str:
        self.started.append(self.time.now)
        if callable(self.failures):
            failure: Exception | None = self.failures()
        else:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            self.raised.append(failure)
            raise failure
        return self.result


def throttled() -> errors.Throttled:
    return errors.Throttled("Please reduce your request rate.", operation=OPERATION, code="SlowDown", status=503)


def server_error() -> errors.ServerError:
    return errors.ServerError(
        "We encountered an internal error.", operation=OPERATION, code="InternalError", status=500
    )


def connection_failed() -> errors.ConnectionFailed:
    return errors.ConnectionFailed("Connection reset by peer", operation=OPERATION)


async def run(
    fn: Callable[[], Awaitable[str]],
    time: FakeTime,
    policy: RetryPolicy,
    *,
    gate: ThrottleGate | None = None,
    retries: list[tuple[str, str, float]] | None = None,
    deadline_at: float | None = None,
) -> str:
    return await call_with_retries(
        fn,
        operation=OPERATION,
        policy=policy,
        gate=gate,
        sleep=time.sleep,
        clock=time.clock,
        deadline_at=deadline_at,
        on_retry=(lambda op, error, delay: retries.append((op, reason_of(error), delay)))
        if retries is not None
        else None,
    )


def caps(policy: RetryPolicy, n: int) -> list[float]:
    """The upper bound of the wait before retry 1..n."""
    return [min(policy.max_delay, policy.base_delay * 2**k) for k in range(n)]


async def delays_of_failing_calls(
    make_error: Callable[[], Exception], policy: RetryPolicy, seeds: range, *, with_gate: bool = False
) -> list[list[float]]:
    """The sleeps of a call that never succeeds, once per seed."""
    runs = []
    for seed in seeds:
        random.seed(seed)
        time = FakeTime()
        gate = ThrottleGate(max_delay=policy.max_delay, clock=time.clock, sleep=time.sleep)
        script = Script(time, make_error)
        with pytest.raises(errors.TransientError):
            await run(script, time, policy, gate=gate if with_gate else None)
        assert len(script.started) == policy.max_attempts
        runs.append(time.sleeps)
    return runs


@pytest.fixture
def upper_bound_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every jittered delay takes the top of its range: the numbers become exact."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)


# -- backoff ------------------------------------------------------------------------------


@pytest.mark.parametrize("make_error", [server_error, connection_failed, throttled])
async def test_retry_delays_grow_exponentially_stay_jittered_and_under_their_caps(
    make_error: Callable[[], Exception],
) -> None:
    policy = RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=20.0)

    runs = await delays_of_failing_calls(make_error, policy, range(300), with_gate=make_error is throttled)

    bounds = caps(policy, 7)  # 0.2, 0.4, ... 12.8
    assert all(len(delays) == 7 for delays in runs)
    assert all(0 <= d <= cap for delays in runs for d, cap in zip(delays, bounds, strict=True))
    means = [mean(column) for column in zip(*runs, strict=True)]
    assert means == sorted(means)
    for average, cap in zip(means, bounds, strict=True):
        # Full jitter: uniform on [0, cap] averages cap/2. The gate's hold, when a burst
        # calls for one, is waited in the gate, not added to the retry's delay.
        assert 0.4 * cap < average < 0.6 * cap
    # Jittered: the same retry waits differently from run to run.
    assert all(len(set(column)) > 250 for column in zip(*runs, strict=True))


async def test_delays_never_exceed_max_delay_however_many_attempts() -> None:
    policy = RetryPolicy(max_attempts=12, base_delay=1.0, max_delay=3.0)

    runs = await delays_of_failing_calls(throttled, policy, range(100), with_gate=True)

    delays = [d for run_delays in runs for d in run_delays]
    assert len(delays) == 100 * 11
    assert max(delays) <= 3.0
    late = [d for run_delays in runs for d in run_delays[4:]]  # caps 1, 2, then 3 from retry 3 on
    assert max(late) > 2.9  # the cap is reached, not just respected


async def test_jitter_differs_between_seeds_and_repeats_with_the_same_seed() -> None:
    policy = RetryPolicy(max_attempts=6)

    first, second, first_again = [
        (await delays_of_failing_calls(server_error, policy, range(seed, seed + 1)))[0] for seed in (1, 2, 1)
    ]

    assert first != second
    assert first == first_again


async def test_with_the_top_of_each_range_the_delays_double_up_to_the_cap(upper_bound_jitter: None) -> None:
    time = FakeTime()
    policy = RetryPolicy(max_attempts=10, base_delay=0.2, max_delay=20.0)

    with pytest.raises(errors.ServerError):
        await run(Script(time, server_error), time, policy)

    assert time.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 20.0, 20.0])


# -- when to stop -------------------------------------------------------------------------


async def test_attempts_stop_at_max_attempts_and_the_last_error_is_raised_as_is() -> None:
    time = FakeTime()
    script = Script(time, server_error)

    with pytest.raises(errors.ServerError) as caught:
        await run(script, time, RetryPolicy(max_attempts=4))

    assert len(script.started) == 4
    assert len(time.sleeps) == 3
    assert caught.value is script.raised[-1]


async def test_a_call_that_recovers_returns_its_result() -> None:
    time = FakeTime()
    script = Script(time, [throttled(), server_error(), connection_failed()], result="rules")

    assert await run(script, time, RetryPolicy()) == "rules"
    assert len(script.started) == 4


async def test_a_transient_error_outside_retry_on_is_raised_after_one_attempt() -> None:
    time = FakeTime()
    script = Script(time, [throttled(), connection_failed()], result="written")

    with pytest.raises(errors.ConnectionFailed) as caught:
        await call_with_retries(
            script,
            operation=OPERATION,
            policy=RetryPolicy(),
            sleep=time.sleep,
            clock=time.clock,
            retry_on=(errors.Throttled,),
        )

    assert len(script.started) == 2  # the throttled attempt was retried, the lost one was not
    assert len(time.sleeps) == 1
    assert caught.value is script.raised[-1]


async def test_the_deadline_stops_retries_before_a_sleep_would_end_past_it(upper_bound_jitter: None) -> None:
    time = FakeTime()
    script = Script(time, server_error)

    with pytest.raises(errors.ServerError):
        await run(script, time, RetryPolicy(max_attempts=8, base_delay=0.2, deadline=1.0))

    # Sleeps of 0.2 and 0.4 end at 0.6 s; the next one (0.8 s) would end at 1.4 s.
    assert time.sleeps == pytest.approx([0.2, 0.4])
    assert len(script.started) == 3
    assert time.elapsed <= 1.0


async def test_an_absolute_deadline_counts_from_the_cycle_start_not_the_call() -> None:
    time = FakeTime()
    cycle_deadline = time.now + 5.0
    time.now += 5.0  # the cycle's time is up before this call starts
    script = Script(time, server_error)

    with pytest.raises(errors.ServerError):
        await run(script, time, RetryPolicy(), deadline_at=cycle_deadline)

    assert len(script.started) == 1
    assert time.sleeps == []


async def test_a_first_attempt_that_succeeds_or_fails_for_good_is_made_once_without_sleeping() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    denied = errors.AccessDenied("Access Denied", operation=OPERATION, code="AccessDenied", status=403)

    assert await run(Script(time, []), time, RetryPolicy(), gate=gate) == "ok"
    assert await run(Script(time, []), time, RetryPolicy()) == "ok"
    with pytest.raises(errors.AccessDenied):
        await run(Script(time, [denied]), time, RetryPolicy(), gate=gate)
    assert gate.success_rate() > 0  # the first attempt reports its successes to the gate
    assert time.sleeps == []


async def test_the_first_attempt_counts_against_max_attempts() -> None:
    time = FakeTime()
    retries: list[tuple[str, str, float]] = []
    once = Script(time, server_error)

    with pytest.raises(errors.ServerError) as caught:
        await run(once, time, RetryPolicy(max_attempts=1), retries=retries)

    assert len(once.started) == 1
    assert caught.value is once.raised[0]
    assert time.sleeps == []
    assert retries == []

    twice = Script(time, [throttled()])
    assert await run(twice, time, RetryPolicy(max_attempts=2), retries=retries) == "ok"
    assert len(twice.started) == 2
    assert [(op, reason) for op, reason, _ in retries] == [(OPERATION, "throttled")]
    assert time.sleeps == [retries[0][2]]
    assert 0 <= time.sleeps[0] <= 0.2


@pytest.mark.parametrize(
    "error",
    [
        errors.AccessDenied("Access Denied", operation=OPERATION, code="AccessDenied", status=403),
        errors.InvalidRequest("The XML was malformed", operation=OPERATION, code="MalformedXML", status=400),
        errors.NoSuchBucket("The bucket does not exist", operation=OPERATION, code="NoSuchBucket", status=404),
        errors.MalformedResponse("unreadable", operation=OPERATION),
        # A 501 from a server that lacks a feature (SeaweedFS's transitions): the same answer every time.
        errors.NotImplementedByServer("no transitions", operation=OPERATION, code="NotImplemented", status=501),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_permanent_errors_fail_at_once_without_sleeping(error: errors.PermanentError) -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    retries: list[tuple[str, str, float]] = []
    script = Script(time, [error])

    with pytest.raises(type(error)) as caught:
        await run(script, time, RetryPolicy(), gate=gate, retries=retries)

    assert caught.value is error
    assert len(script.started) == 1
    assert time.sleeps == []
    assert retries == []
    assert gate.remaining() == 0


async def test_on_retry_names_the_operation_the_reason_and_the_delay() -> None:
    time = FakeTime()
    retries: list[tuple[str, str, float]] = []
    script = Script(time, [throttled(), server_error(), connection_failed()])

    await run(script, time, RetryPolicy(), retries=retries)

    assert [(op, reason) for op, reason, _ in retries] == [
        (OPERATION, "throttled"),
        (OPERATION, "server_error"),
        (OPERATION, "connection"),
    ]
    assert [delay for _, _, delay in retries] == time.sleeps


# -- the shared gate: an adaptive rate (AIMD) ---------------------------------------------


def serve(gate: ThrottleGate, time: FakeTime, rate: float, seconds: float) -> None:
    """``rate`` successful requests a second for ``seconds``, on the fake clock.

    Each request is answered as it starts, half an interval off the second marks, so the
    last second holds exactly ``rate`` successes; the clock ends ``seconds`` later.
    """
    base = time.now
    count = round(rate * seconds)
    for i in range(count):
        time.now = base + (i + 0.5) / rate
        gate.on_success(time.now)
    time.now = base + seconds


def slow_down(gate: ThrottleGate, time: FakeTime, answers: int, *, started: float | None = None) -> None:
    """``answers`` throttled answers now, to requests started at ``started`` (default: now)."""
    for _ in range(answers):
        gate.on_throttled(time.now if started is None else started)


def throttled_gate(time: FakeTime, **options: Any) -> ThrottleGate:
    """A gate that served 100 requests/s for 3 s, then met a burst of 25 SlowDowns (20% of the answers)."""
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep, **options)
    serve(gate, time, 100, 3.0)
    slow_down(gate, time, 25)
    return gate


async def test_a_significant_burst_sets_the_rate_to_four_fifths_of_the_success_rate() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    serve(gate, time, 100, 3.0)
    assert gate.success_rate() == pytest.approx(100)

    slow_down(gate, time, 24)
    assert gate.rate is None  # 24 of 124 answers: not yet a fifth
    slow_down(gate, time, 1)

    assert gate.rate == pytest.approx(80)
    assert gate.limiter is not None
    assert gate.limiter.rate == pytest.approx(80)
    assert gate.level == 1
    assert gate.capacity == pytest.approx(100)
    assert gate.remaining() == pytest.approx(1 / 80)  # a hold of one interval, not an exponential pause


async def test_one_burst_of_throttling_counts_once_not_once_per_worker() -> None:
    time = FakeTime()
    gate = throttled_gate(time)
    decreased_at = time.now
    time.now += 0.1

    slow_down(gate, time, 16, started=decreased_at)  # sixteen workers' requests, sent before the decrease

    assert gate.level == 1
    assert gate.rate == pytest.approx(80 * 1.05**0.1)
    assert gate.remaining() == 0


async def test_the_rate_recovers_five_percent_per_throttle_free_second() -> None:
    time = FakeTime()
    gate = throttled_gate(time, max_requests_per_second=1000)
    decreased_at = time.now

    for seconds in (0.5, 1, 2, 4, 10):
        time.now = decreased_at + seconds
        await gate.wait()
        assert gate.rate == pytest.approx(80 * 1.05**seconds)
        assert gate.limiter is not None
        assert gate.limiter.rate == pytest.approx(80 * 1.05**seconds)
    assert gate.level == 1


async def test_the_rate_never_exceeds_the_configured_maximum() -> None:
    time = FakeTime()
    gate = throttled_gate(time, max_requests_per_second=90)
    assert gate.rate == pytest.approx(80)
    decreased_at = time.now

    rates = []
    for step in range(1, 61):
        time.now = decreased_at + step / 2
        await gate.wait()
        assert gate.limiter is not None
        rates.append(gate.limiter.rate)

    assert max(rates) == pytest.approx(90)
    assert rates[0] < 90  # climbing: 80 * 1.05**0.5
    assert rates[-1] == pytest.approx(90)  # back at the maximum, and kept there
    assert gate.level == 0
    assert gate.capacity is None


async def test_a_decrease_never_goes_above_the_configured_maximum() -> None:
    time = FakeTime()
    gate = ThrottleGate(max_requests_per_second=50, clock=time.clock, sleep=time.sleep)
    serve(gate, time, 200, 3.0)  # more than the limiter allows: answers of earlier requests, say

    slow_down(gate, time, 60)

    assert gate.level == 1
    assert gate.rate == pytest.approx(50)


async def test_when_everything_is_throttled_the_rate_drops_to_the_floor() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)

    slow_down(gate, time, 50)

    assert gate.rate == pytest.approx(1.0)
    assert gate.remaining() == pytest.approx(1.0)


async def test_stray_slowdowns_are_retried_without_slowing_everyone() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    serve(gate, time, 100, 2.0)

    for _ in range(20):  # S3's odd SlowDown: a tenth of the answers, second after second
        serve(gate, time, 95, 0.5)
        slow_down(gate, time, 5)

    assert gate.level == 0
    assert gate.rate is None
    assert gate.remaining() == 0


async def test_a_burst_among_few_answers_does_not_set_a_rate() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    serve(gate, time, 10, 2.0)

    slow_down(gate, time, 20)  # two thirds of the answers, but only 30 answers in the second

    assert gate.rate is None


async def test_back_at_the_capacity_shown_any_new_burst_decreases_the_rate() -> None:
    time = FakeTime()
    gate = throttled_gate(time)  # 80/s; the endpoint served 100/s
    decreased_at = time.now

    serve(gate, time, 84, 2.0)  # the rate climbs: 88/s, still under 100
    slow_down(gate, time, 1)
    assert gate.level == 1  # one SlowDown under the capacity shown: retried, nothing more

    serve(gate, time, 100, 3.0)  # 5 s after the decrease: 102/s
    assert gate.rate == pytest.approx(80 * 1.05**5)
    slow_down(gate, time, 1)

    assert gate.level == 2
    assert time.now - decreased_at == pytest.approx(5)
    assert gate.rate == pytest.approx(80)  # 0.8 x 100/s
    assert gate.remaining() == pytest.approx(1 / 80)


async def test_without_a_maximum_the_limiter_goes_once_far_above_what_is_used() -> None:
    time = FakeTime()
    gate = throttled_gate(time)
    decreased_at = time.now

    serve(gate, time, 80, 3.0)  # the limiter is what is used: kept
    await gate.wait()
    assert gate.limiter is not None

    time.now = decreased_at + 5.0  # then the cycle ends: nothing more is sent
    await gate.wait()

    assert gate.limiter is None
    assert gate.rate is None
    assert gate.level == 0
    assert gate.capacity is None


async def test_a_throttled_worker_makes_the_next_worker_wait() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    serve(gate, time, 100, 3.0)
    slow_down(gate, time, 24)
    first = Script(time, [throttled()])
    second = Script(time, [])

    with pytest.raises(errors.Throttled):
        await run(first, time, RetryPolicy(max_attempts=1), gate=gate)  # the 25th: the burst is significant
    await run(second, time, RetryPolicy(), gate=gate)

    assert time.sleeps == pytest.approx([1 / 80])  # the second worker was never throttled itself
    assert second.started[0] == pytest.approx(first.started[0] + 1 / 80)


async def test_after_a_decrease_workers_wait_the_hold_then_start_at_the_new_rate() -> None:
    time = FakeTime()
    gate = throttled_gate(time)
    decreased_at = time.now
    scripts = [Script(time, []) for _ in range(5)]

    await asyncio.gather(*(run(script, time, RetryPolicy(), gate=gate) for script in scripts))

    starts = sorted(script.started[0] - decreased_at for script in scripts)
    assert starts == pytest.approx([k / 80 for k in range(1, 6)], abs=1e-3)


async def test_the_gate_does_not_hold_a_request_past_the_deadline() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    slow_down(gate, time, 50)  # the floor, 1/s: a hold of a second

    await gate.wait(deadline_at=time.now + 0.25)

    assert time.sleeps == pytest.approx([0.25])


def test_a_gate_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="decrease"):
        ThrottleGate(decrease=1.2)
    with pytest.raises(ValueError, match="min_rate"):
        ThrottleGate(min_rate=0)
    with pytest.raises(ValueError, match="max_requests_per_second"):
        ThrottleGate(max_requests_per_second=-1)


# -- the rate limit -----------------------------------------------------------------------


async def test_the_rate_limiter_spaces_requests_over_n_divided_by_rate_seconds() -> None:
    time = FakeTime()
    gate = ThrottleGate(max_requests_per_second=5.0, clock=time.clock, sleep=time.sleep)
    scripts = [Script(time, []) for _ in range(10)]

    await asyncio.gather(*(run(script, time, RetryPolicy(), gate=gate) for script in scripts))

    starts = sorted(script.started[0] - time.start for script in scripts)
    assert starts == pytest.approx([i / 5.0 for i in range(10)])


async def test_retries_take_rate_limit_slots_too() -> None:
    time = FakeTime()
    limiter = RateLimiter(2.0, clock=time.clock, sleep=time.sleep)

    waits = [await limiter.acquire() for _ in range(3)]

    assert waits == pytest.approx([0.0, 0.5, 0.5])
    assert time.elapsed == pytest.approx(1.0)


async def test_no_rate_limit_by_default() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    scripts = [Script(time, []) for _ in range(50)]

    await asyncio.gather(*(run(script, time, RetryPolicy(), gate=gate) for script in scripts))

    assert gate.limiter is None
    assert time.sleeps == []


# -- the policy and its labels --------------------------------------------------------------


def test_the_default_policy() -> None:
    assert RetryPolicy() == RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=20.0, deadline=None)


@pytest.mark.parametrize(
    "options", [{"max_attempts": 0}, {"base_delay": 0}, {"base_delay": 30.0, "max_delay": 20.0}, {"deadline": 0}]
)
def test_a_policy_that_cannot_work_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|expected"):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "success"),
        (throttled(), "throttled"),
        (server_error(), "server_error"),
        (connection_failed(), "connection"),
        (errors.AccessDenied("x", operation=OPERATION), "denied"),
        (errors.NoSuchBucket("x", operation=OPERATION), "not_found"),
        (errors.InvalidRequest("x", operation=OPERATION, code="NoSuchLifecycleConfiguration", status=404), "not_found"),
        (errors.InvalidRequest("x", operation=OPERATION, code="MalformedXML", status=400), "invalid"),
        (errors.MalformedResponse("x", operation=OPERATION), "error"),
        (RuntimeError("x"), "error"),
    ],
)
def test_each_request_outcome_has_its_label(error: Exception | None, outcome: str) -> None:
    assert outcome_of(error) == outcome


# -- the adapter: every attempt is observed -----------------------------------------------


class ScriptedClient:
    """An S3 client whose every request takes 50 ms of fake time and gives the next answer."""

    def __init__(self, time: FakeTime, answers: list[dict[str, Any] | Exception]) -> None:
        self.time = time
        self.answers = answers

    async def get_bucket_lifecycle_configuration(self, **_: Any) -> dict[str, Any]:
        self.time.now += 0.05
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "R"}},
        OPERATION,
    )


def scripted_adapter(
    time: FakeTime, answers: list[dict[str, Any] | Exception], observer: RecordingObserver, **options: Any
) -> S3Adapter:
    client = ScriptedClient(time, answers)
    return S3Adapter(
        account="123456789012",
        region="us-east-1",
        client_factory=lambda service, region: contextlib.nullcontext(client),
        observer=observer,
        clock=time.clock,
        sleep=time.sleep,
        **options,
    )


async def test_the_observer_sees_every_attempt_and_every_retry() -> None:
    time = FakeTime()
    observer = RecordingObserver()
    answers: list[dict[str, Any] | Exception] = [
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        {"Rules": []},
    ]

    async with scripted_adapter(time, answers, observer) as adapter:
        assert await adapter.get_lifecycle(BucketRef("b", "us-east-1")) == LifecycleConfig()

    assert [(op, outcome) for op, outcome, _ in observer.requests] == [
        (OPERATION, "throttled"),
        (OPERATION, "server_error"),
        (OPERATION, "success"),
    ]
    assert [seconds for _, _, seconds in observer.requests] == pytest.approx([0.05] * 3)
    assert [(op, reason) for op, reason, _ in observer.retries] == [
        (OPERATION, "throttled"),
        (OPERATION, "server_error"),
    ]
    assert adapter.calls[OPERATION] == 3


async def test_a_missing_configuration_is_one_not_found_request_and_no_retry() -> None:
    time = FakeTime()
    observer = RecordingObserver()

    async with scripted_adapter(time, [client_error("NoSuchLifecycleConfiguration", 404)], observer) as adapter:
        assert await adapter.get_lifecycle(BucketRef("b", "us-east-1")) == LifecycleConfig()

    assert [outcome for _, outcome, _ in observer.requests] == ["not_found"]
    assert observer.retries == []
    assert time.sleeps == []


async def test_the_adapters_cycle_deadline_bounds_its_retries(upper_bound_jitter: None) -> None:
    time = FakeTime()
    observer = RecordingObserver()
    answers: list[dict[str, Any] | Exception] = [client_error("InternalError", 500) for _ in range(8)]

    async with scripted_adapter(time, answers, observer, retry=RetryPolicy(deadline=1.0)) as adapter:
        with adapter.cycle_deadline() as deadline_at:
            assert deadline_at == pytest.approx(time.now + 1.0)
            with pytest.raises(errors.ServerError):
                await adapter.get_lifecycle(BucketRef("b", "us-east-1"))
        assert adapter.deadline_at is None

    # 50 ms per request: sleeps of 0.2 and 0.4 s, then 0.8 s would end past 1.0 s.
    assert time.sleeps == pytest.approx([0.2, 0.4])
    assert len(observer.requests) == 3
    assert time.elapsed <= 1.0


async def test_a_decrease_in_the_first_second_of_a_busy_spell_recovers_fast() -> None:
    time = FakeTime()
    gate = ThrottleGate(clock=time.clock, sleep=time.sleep)
    serve(gate, time, 100, 0.5)  # half a second of work: connections still opening
    slow_down(gate, time, 40)

    assert gate.level == 1
    assert gate.capacity is None  # measured over half a second: not the endpoint's capacity
    cut = gate.rate
    assert cut is not None
    decreased_at = time.now
    time.now = decreased_at + 0.9
    await gate.wait()
    assert gate.rate == pytest.approx(cut * 2**0.9)  # doubling per second, not 5%


class EarlyTime:
    """A clock and a sleep whose first wake comes ``early`` seconds before the clock reaches
    its end (asyncio may fire a timer up to its clock's resolution early)."""

    def __init__(self, early: float) -> None:
        self.now = 100.0
        self.early = early
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) > 20:
            raise RuntimeError(f"still waiting after {len(self.sleeps)} sleeps: {self.sleeps[:4]}")
        self.now += seconds - (self.early if len(self.sleeps) == 1 else 0.0)


@pytest.mark.parametrize("early", [1e-6, 1.0], ids=["a timer that fires a microsecond early", "a clock that stays"])
async def test_a_hold_is_slept_once_unless_another_worker_extends_it(early: float) -> None:
    time = EarlyTime(early)
    gate = ThrottleGate(min_answers=0, min_share=0.0, clock=time.clock, sleep=time.sleep)
    gate.on_throttled(time.clock())
    assert gate.remaining() == pytest.approx(1.0)

    await gate.wait()

    assert time.sleeps == [pytest.approx(1.0)]
