"""The daemon's HTTP side: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for probes.

Three GET endpoints and nothing else (404 for other paths, 405 for other methods), served
by aiohttp on the event loop the daemon runs on, so an answer from ``/healthz`` is itself
the proof that the loop is not blocked. ``/readyz`` asks a :class:`Health` whether the
definitions were loaded once and the last cycle finished recently. The server binds
exactly the host it is given: loopback unless ``LCC_METRICS_ADDR`` says otherwise.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from lakecircle.metrics import Metrics


class Health:
    """Readiness: definitions loaded at least once, and a cycle finished within ``max_age`` seconds.

    Times are read from ``clock`` unless given; the daemon passes its own clock (and a
    ``max_age`` of about three resync intervals), tests a fake one. The default is Unix
    time, the clock of :meth:`Metrics.observe_cycle`'s ``now``, so one reading can feed both.
    """

    def __init__(self, max_age: float, clock: Callable[[], float] = time.time) -> None:
        self.max_age = max_age
        self.clock = clock
        self.definitions_loaded = False
        self.last_cycle: float | None = None

    def mark_definitions_loaded(self) -> None:
        self.definitions_loaded = True

    def mark_cycle_finished(self, now: float | None = None) -> None:
        self.last_cycle = self.clock() if now is None else now

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        """Whether the daemon is ready, and a short reason a probe's log can show."""
        if not self.definitions_loaded:
            return False, "definitions not loaded yet"
        if self.last_cycle is None:
            return False, "no cycle finished yet"
        age = (self.clock() if now is None else now) - self.last_cycle
        if age > self.max_age:
            return False, f"last cycle finished {age:.0f}s ago, over the {self.max_age:.0f}s limit"
        return True, "ok"


_METRICS = web.AppKey("metrics", Metrics)
_HEALTH = web.AppKey("health", Health)


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[_METRICS]
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    ready, reason = request.app[_HEALTH].ready()
    return web.Response(status=200 if ready else 503, text=f"{reason}\n")


def make_app(metrics: Metrics, health: Health) -> web.Application:
    """The aiohttp application: GET (and so HEAD) /metrics, /healthz and /readyz."""
    app = web.Application()
    app[_METRICS] = metrics
    app[_HEALTH] = health
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


@asynccontextmanager
async def serve(metrics: Metrics, health: Health, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    """Serve on ``host``:``port`` until the block exits; yields the bound (host, port).

    Port 0 picks a free port, which the yielded address tells. A name that resolves to
    several addresses (``localhost``) binds each; the first is yielded. No access log: a
    scrape every few seconds would drown the daemon's own lines.
    """
    runner = web.AppRunner(make_app(metrics, health), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        yield str(bound[0]), int(bound[1])
    finally:
        await runner.cleanup()
