"""The service loop with an injected clock: hours of polling run in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import anyio
import anyio.lowlevel
import pytest
import structlog

from lakecircle.app.sinks import CycleSink
from lakecircle.core.model import LifecycleConfig
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.leases import Flights
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import ConnectionFailed
from lakecircle.ports import BucketRef, ObjectRef
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from lakecircle.service.server import Health
from lakecircle.testing import MemoryS3
from tests import builders

pytestmark = pytest.mark.anyio


class FakeClock:
    """Monotonic time that moves only when the daemon sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await anyio.lowlevel.checkpoint()


def world(n: int = 3, s3: MemoryS3 | None = None) -> MemoryS3:
    """``n`` buckets ``bkt0``… each defined by a file of its own, in ``s3`` or a new MemoryS3."""
    s3 = MemoryS3() if s3 is None else s3
    for i in range(n):
        s3.objects[f"definition/b{i}.toml"] = builders.definition(f"bkt{i}", builders.rule())
        s3.add_bucket(f"bkt{i}")
    return s3


def daemon_for(s3: MemoryS3, clock: FakeClock, **kwargs: object) -> Daemon:
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=2)
    return Daemon(reconciler, clock=clock, jitter=lambda: 1.0, **kwargs)  # type: ignore[arg-type]


async def run_until(daemon: Daemon, clock: FakeClock, until: float) -> None:
    """Run the daemon until fake time passes ``until``, then stop it."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(daemon.run)
        while clock.now() < until:
            await anyio.lowlevel.checkpoint()
        daemon.request_stop()


async def test_ten_minute_resync_and_idle_polls_run_in_fake_time() -> None:
    s3, clock = world(), FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=600)
    with anyio.fail_after(5):
        await run_until(daemon, clock, clock.now() + 1250)
    # startup, then a resync every 600 s: at 600 and 1200.
    assert daemon.stats.cycles == 3
    assert daemon.stats.idle_polls == daemon.stats.polls > 30
    # One listing per idle poll, plus one per cycle; nothing else while idle.
    assert s3.calls["ListObjectsV2"] == daemon.stats.polls + daemon.stats.cycles
    assert s3.calls["GetBucketLifecycleConfiguration"] == 3 * 3
    assert s3.calls["GetObject"] == 3  # every file fetched once, then cached by ETag


async def test_an_unchanged_poll_costs_exactly_one_list_request() -> None:
    s3, clock = world(), FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=10_000)
    with anyio.fail_after(5):
        await run_until(daemon, clock, clock.now() + 30 * 10 + 1)
    assert daemon.stats.cycles == 1
    before = dict(s3.calls)
    idle = daemon.stats.idle_polls
    assert idle == 10
    assert before["ListObjectsV2"] == 1 + idle
    assert before["ListBuckets"] == 1


class ShutFence:
    """A lease whose fence is shut until a test opens it (the deadline drew near while a renewal was
    late, then the renewal came: the lease was kept)."""

    account, holder, epoch, write_timeout = "123456789012", "pod-a", 1, 5.0

    def __init__(self) -> None:
        self.open = False
        self.flights = Flights(time.monotonic, 15.0)

    def may_start_write(self) -> bool:
        return self.open

    def writing(self) -> AbstractContextManager[Callable[[], None]]:
        return self.flights.writing()


async def test_a_cycle_stopped_by_its_lease_fence_is_run_again_at_the_next_poll_not_at_the_resync() -> None:
    s3, clock, fence = world(), FakeClock(), ShutFence()
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=2, fence=fence)
    daemon = Daemon(reconciler, clock=clock, jitter=lambda: 1.0, poll_interval=30, resync_interval=10_000)

    async def open_later() -> None:
        while daemon.stats.polls < 1:  # the first cycle has ended, fenced out
            await anyio.lowlevel.checkpoint()
        fence.open = True

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(open_later)
            await run_until(daemon, clock, clock.now() + 30 * 3 + 1)
    assert daemon.stats.cycles == 2, "the poll after the fenced-out cycle found the listing unchanged and ran none"
    assert s3.calls["PutBucketLifecycleConfiguration"] == 3


async def test_a_changed_etag_fetches_that_file_only_and_syncs() -> None:
    s3, clock = world(5), FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=10_000)

    async def edit_later() -> None:
        while clock.now() < 1000 + 100:
            await anyio.lowlevel.checkpoint()
        s3.objects["definition/b3.toml"] = builders.definition("bkt3", builders.rule(days=45))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(edit_later)
            await run_until(daemon, clock, 1000 + 200)
    assert daemon.stats.cycles == 2
    assert s3.calls["GetObject"] == 5 + 1
    rule = s3.lifecycles["bkt3"].rules[0]
    assert rule.expiration is not None
    assert rule.expiration.days == 45


class GatedS3(MemoryS3):
    """Lifecycle reads (or writes) wait on a gate, to hold a cycle open."""

    def __init__(self, *, gate_reads: bool = False, gate_writes: bool = False) -> None:
        super().__init__()
        self.gate = anyio.Event()
        self.gate_reads = gate_reads
        self.gate_writes = gate_writes
        self.in_flight = 0
        self.started = 0

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        if self.gate_reads:
            await self.gate.wait()
        return await super().get_lifecycle(bucket)

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self.started += 1
        self.in_flight += 1
        if self.gate_writes:
            await self.gate.wait()
        await super().put_lifecycle(bucket, config)
        self.in_flight -= 1


async def test_sighups_during_a_cycle_coalesce_into_exactly_one_more_cycle() -> None:
    s3 = GatedS3(gate_reads=True)
    world(3, s3)
    clock = FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=10_000, resync_interval=100_000)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            while s3.calls["ListBuckets"] == 0:
                await anyio.lowlevel.checkpoint()
            for _ in range(5):
                daemon.request_sync()
            s3.gate.set()
            while daemon.stats.cycles < 2:
                await anyio.lowlevel.checkpoint()
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            daemon.request_stop()
    assert daemon.stats.cycles == 2
    assert s3.calls["ListBuckets"] == 2


async def test_sigterm_mid_cycle_finishes_in_flight_writes_and_starts_none() -> None:
    s3 = GatedS3(gate_writes=True)
    world(10, s3)
    clock = FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=10_000, resync_interval=100_000)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            while s3.in_flight < 2:
                await anyio.lowlevel.checkpoint()
            daemon.request_stop()
            s3.gate.set()
    assert s3.started == 2
    assert s3.calls["PutBucketLifecycleConfiguration"] == 2
    assert s3.in_flight == 0
    assert daemon.last_report is not None
    assert daemon.last_report.interrupted
    assert daemon.last_report.writes == 2


async def test_shutdown_timeout_bounds_a_stuck_write() -> None:
    s3 = GatedS3(gate_writes=True)  # the gate never opens
    s3.objects["definition/b0.toml"] = builders.definition("bkt0", builders.rule())
    s3.add_bucket("bkt0")
    clock = FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=10_000, resync_interval=100_000, shutdown_timeout=0.05)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            while s3.in_flight < 1:
                await anyio.lowlevel.checkpoint()
            daemon.request_stop()
    assert s3.calls["PutBucketLifecycleConfiguration"] == 0


async def test_an_exception_in_a_cycle_is_counted_and_the_loop_goes_on() -> None:
    s3, clock = world(1), FakeClock()
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=60)
    calls = 0
    original = daemon.reconciler.run_cycle

    async def flaky(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    daemon.reconciler.run_cycle = flaky  # type: ignore[method-assign,assignment]
    with anyio.fail_after(5):
        await run_until(daemon, clock, clock.now() + 200)
    assert daemon.stats.crashes == 1
    assert daemon.stats.cycles >= 3
    assert daemon.last_report is not None
    assert daemon.last_report.ok


async def test_dry_run_daemon_only_monitors() -> None:
    s3, clock = world(2), FakeClock()
    reconciler = Reconciler(s3, DefinitionLoader(s3), dry_run=True)
    daemon = Daemon(reconciler, clock=clock, jitter=lambda: 1.0, poll_interval=30, resync_interval=60)
    with anyio.fail_after(5):
        await run_until(daemon, clock, clock.now() + 200)
    assert daemon.stats.cycles >= 3
    assert s3.calls["PutBucketLifecycleConfiguration"] == 0
    assert daemon.last_report is not None
    assert daemon.last_report.pending == 2


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await anyio.lowlevel.checkpoint()


async def test_failed_polls_are_counted_and_readiness_follows_s3_out_of_reach_and_back() -> None:
    s3, clock = world(), FakeClock()
    metrics = Metrics()
    health = Health(max_age=100_000, clock=clock.now, outage_limit=90)
    sink = CycleSink(metrics, health, None, clock=clock.now)
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=100_000, observer=sink, poll_observer=sink)
    seen: dict[str, object] = {}

    async def outage() -> None:
        await until(lambda: health.last_cycle is not None)
        seen["before"] = health.ready()
        s3.list_fails = ConnectionFailed("could not connect to the endpoint", operation="ListObjectsV2")
        await until(lambda: clock.now() >= 1000 + 150)  # polls at 1030, 1060, 1090 and 1120 failed
        seen["during"] = health.ready()
        seen["failed polls"] = metrics.registry.get_sample_value("lakecircle_failures_total", {"stage": "poll"})
        s3.list_fails = None
        await until(lambda: health.failing_since is None)
        seen["after"] = health.ready()
        daemon.request_stop()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            tg.start_soon(outage)
    assert seen["before"] == (True, "ok")
    assert seen["during"] == (
        False,
        "S3 out of reach: polls and cycles have failed for 120s, over the 90s limit (last failure at stage poll)",
    )
    assert seen["failed polls"] == 4
    assert seen["after"] == (True, "ok")


async def test_a_cycle_that_cannot_list_counts_at_its_stage_and_a_good_one_ends_the_outage() -> None:
    s3, clock = world(), FakeClock()
    metrics = Metrics()
    health = Health(max_age=100_000, clock=clock.now, outage_limit=90)
    sink = CycleSink(metrics, health, None, clock=clock.now)
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=60, observer=sink, poll_observer=sink)
    s3.list_fails = ConnectionFailed("could not connect to the endpoint", operation="ListObjectsV2")

    async def recover() -> None:
        await until(lambda: health.last_cycle is not None)
        seen = health.failing_since, health.failed_stage
        s3.list_fails = None
        await until(lambda: health.failing_since is None)
        daemon.request_stop()
        assert seen == (1000, "definitions")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            tg.start_soon(recover)
    assert metrics.registry.get_sample_value("lakecircle_failures_total", {"stage": "definitions"}) == 1


async def test_the_stop_line_says_why_the_daemon_stopped() -> None:
    s3, clock = world(1), FakeClock()
    with structlog.testing.capture_logs() as logs:
        await daemon_for(s3, clock, max_cycles=1).run()
        asked = daemon_for(s3, clock)
        asked.request_stop("SIGTERM")
        await asked.run()
    stops = [e for e in logs if e["event"] == "daemon_stopped"]
    assert [(e["reason"], e.get("signal")) for e in stops] == [("cycles_done", None), ("signal", "SIGTERM")]


class HangingListS3(MemoryS3):
    """After the first listing, listings never answer (a stalled endpoint, retries under way)."""

    async def list_definitions(self) -> list[ObjectRef]:
        if self.calls["ListObjectsV2"] >= 1:
            self.calls["ListObjectsV2"] += 1
            await anyio.sleep_forever()
        return await super().list_definitions()


async def test_a_stop_during_a_stalled_poll_ends_the_daemon_at_once() -> None:
    s3, clock = HangingListS3(), FakeClock()
    s3.objects["definition/b0.toml"] = builders.definition("b0", builders.rule())
    s3.add_bucket("b0")
    daemon = daemon_for(s3, clock, poll_interval=30, resync_interval=100_000)
    with structlog.testing.capture_logs() as logs, anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon.run)
            await until(lambda: s3.calls["ListObjectsV2"] == 2)  # the cycle's listing, then the stalled poll's
            daemon.request_stop("SIGTERM")
    assert daemon.stats.cycles == 1
    assert [(e["reason"], e["signal"]) for e in logs if e["event"] == "daemon_stopped"] == [("signal", "SIGTERM")]
