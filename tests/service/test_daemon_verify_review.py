"""Adversarial review of the daemon's continuous verification (issue 18), in fake time: what a
whole-cycle daemon guaranteed and a daemon with a verifier must still guarantee."""

from __future__ import annotations

import anyio
import pytest

from lakecircle.app.sinks import CycleSink
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.verify import Verifier
from lakecircle.errors import AccessDenied
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from lakecircle.service.server import Health
from tests import builders
from tests.service.test_daemon import FakeClock
from tests.service.test_daemon_verify import at, continuous, fleet, run_for

pytestmark = pytest.mark.anyio


async def test_definitions_changed_at_every_poll_still_let_the_resync_list_the_account() -> None:
    s3, clock = fleet(10), FakeClock()
    s3.objects["definition/one.toml"] = builders.definition("logs-000", builders.rule("own"))
    daemon, _ = continuous(s3, clock, resync=100.0, poll=30.0)

    async def edit_often() -> None:  # a tool that rewrites one bucket's definition every minute
        for n in range(1, 16):
            await at(clock, 1000 + 60 * n - 5)
            s3.objects["definition/one.toml"] = builders.definition("logs-000", builders.rule("own", n + 1))

    async def create_later() -> None:
        await at(clock, 1000 + 50)
        s3.add_bucket("logs-new")  # no events queue: only a listing finds it

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(edit_often)
            tg.start_soon(create_later)
            await run_for(daemon, clock, 1_000)
    # LCC_RESYNC_INTERVAL is 100 s: the account is listed about every 100 s whatever the definitions do.
    assert s3.calls["ListBuckets"] >= 5
    assert s3.lifecycles["logs-new"].rules, "the new bucket was found by a resync and written"


async def test_the_last_success_is_not_renewed_by_slices_while_every_listing_fails() -> None:
    s3, clock = fleet(10), FakeClock()
    metrics = Metrics()
    health = Health(max_age=100_000, clock=clock.now, outage_limit=90)
    sink = CycleSink(metrics, health, None, clock=clock.now)
    reconciler = Reconciler(s3, DefinitionLoader(s3), concurrency=4, keep_plans=False)
    daemon = Daemon(
        reconciler,
        clock=clock,
        jitter=lambda: 1.0,
        poll_interval=30.0,
        resync_interval=100.0,
        observer=sink,
        poll_observer=sink,
        verifier=Verifier(reconciler, 100.0),
    )

    async def deny_listing_later() -> None:
        await at(clock, 1000 + 10)
        s3.fail("ListBuckets", "*", lambda op, b: AccessDenied("Access Denied", operation=op))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(deny_listing_later)
            await run_for(daemon, clock, 1_000)
    failed = metrics.registry.get_sample_value("lakecircle_cycles_total", {"trigger": "resync", "result": "failure"})
    assert failed is not None
    assert failed >= 5  # every resync since 1010 s could not list the account
    # A listing that fails for ever means new buckets are never managed: the last success must not
    # move on with each slice of 1 bucket, or lakecircle_last_success and readiness never say so.
    last = metrics.registry.get_sample_value("lakecircle_last_success_timestamp_seconds")
    assert last is not None
    assert last < 1000 + 110
