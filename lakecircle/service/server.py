"""The daemon's HTTP side: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz`` for probes.

Three GET endpoints and nothing else (404 for other paths, 405 for other methods), served
by aiohttp on the event loop the daemon runs on, so an answer from ``/healthz`` is itself
the proof that the loop is not blocked. ``/readyz`` asks a :class:`Health` whether the
definitions were loaded once, the last cycle finished recently, and S3 has not been out
of reach for too long; a replica standing by while another holds the lease is ready too.
The server binds exactly the host it is given: loopback unless ``LCC_METRICS_ADDR`` says
otherwise.

Clients may be hostile, and aiohttp has no timeout on reading a request's head (its
keep-alive timer is an hour by default), so every connection is wrapped in
:class:`_HeadDeadline`: a request head must be complete within :data:`HEAD_TIMEOUT`
seconds of the connection opening or of the previous head, or the connection is closed.
aiohttp logs a malformed request with a traceback that quotes the sender's bytes; its
records go to :class:`_OneLine` instead, which logs one structlog line with the peer and
the kind of error, and nothing the peer sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import anyio
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from lakecircle.clocks import WallClock
from lakecircle.service.metrics import Metrics

log = structlog.get_logger("lakecircle.service.server")

STANDBY: Final = "standby: another replica holds the lease"
"""``/readyz``'s answer while this replica waits for a lease another replica holds."""

HEAD_TIMEOUT: Final = 10.0
"""Seconds a connection has to deliver a complete request head (from its opening, or the previous head)."""


def host_port(host: str, port: int) -> str:
    """``127.0.0.1:9739``, ``[::1]:9739``: an address as a URL and a person write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Health:
    """Readiness: definitions loaded, a recent cycle, and S3 not out of reach for too long.

    Ready once the definitions were loaded at least once and a cycle finished within
    ``max_age`` seconds. Not ready while a hub manages no account (its account list could
    not be read, or is empty, or the tags its definitions need could not be). Not ready while
    every contact with S3 (a poll, a cycle that listed the definitions and the buckets) has
    failed for longer than ``outage_limit`` seconds, counted from the first failure after the
    last success; ready again after the next successful contact.

    Replicas: a replica standing by while another holds the lease (:meth:`mark_standby`) is
    ready, healthy but not the one writing, unless S3 is out of reach: the definitions and
    cycle rules are for the replica that works. Once it takes the lease its first cycle has
    ``max_age`` from then to finish, whatever its cycles before (or none) said.

    Times are read from ``clock`` unless given; the daemon passes Unix time (the clock of
    :meth:`Metrics.observe_cycle`'s ``now``, so one reading can feed both), tests a fake one.
    """

    def __init__(self, max_age: float, clock: WallClock = time.time, *, outage_limit: float | None = None) -> None:
        self.max_age = max_age
        self.outage_limit = outage_limit
        self.clock = clock
        self.definitions_loaded = False
        self.last_cycle: float | None = None
        self.failing_since: float | None = None
        """When contacts with S3 began to fail (None: the last one succeeded)."""
        self.failed_stage: str | None = None
        """The stage of the last failed contact."""
        self.unmanaged: str | None = None
        """Why a hub manages no account (None: it manages some, or this is no hub)."""
        self.standby = False
        """This replica waits for a lease another replica holds."""
        self.standby_ended: float | None = None
        """When this replica last stopped standing by (it took the lease)."""

    def mark_definitions_loaded(self) -> None:
        self.definitions_loaded = True

    def mark_cycle_finished(self, now: float | None = None) -> None:
        self.last_cycle = self.clock() if now is None else now

    def mark_contact(self) -> None:
        """S3 answered a poll or a cycle: whatever failed before is over."""
        self.failing_since = None
        self.failed_stage = None

    def mark_contact_failed(self, stage: str, now: float | None = None) -> None:
        """A poll or a cycle could not reach S3 (or was refused), at ``stage``."""
        if self.failing_since is None:
            self.failing_since = self.clock() if now is None else now
        self.failed_stage = stage

    def mark_managing(self, why_none: str | None) -> None:
        """A hub's cycle ran its accounts (None), or ran none, for the reason given: not ready
        until it runs some, since it then reconciles nothing."""
        self.unmanaged = why_none

    def mark_standby(self, waiting: bool, now: float | None = None) -> None:
        """This replica waits for a lease another replica holds (True), or holds it and works (False)."""
        if self.standby and not waiting:
            self.standby_ended = self.clock() if now is None else now
        self.standby = waiting

    def ready(self, now: float | None = None) -> tuple[bool, str]:
        """Whether the daemon is ready, and a short reason a probe's log can show."""
        now = self.clock() if now is None else now
        if self.failing_since is not None and self.outage_limit is not None:
            down = now - self.failing_since
            if down > self.outage_limit:
                return False, (
                    f"S3 out of reach: polls and cycles have failed for {down:.0f}s, over the"
                    f" {self.outage_limit:.0f}s limit (last failure at stage {self.failed_stage})"
                )
        if self.standby:
            return True, STANDBY
        taken = self.standby_ended
        if taken is not None and (self.last_cycle is None or self.last_cycle < taken):
            if now - taken <= self.max_age:
                return True, "took the lease: its first cycle is under way"
            return False, (
                f"no cycle finished in the {now - taken:.0f}s since this replica took the lease,"
                f" over the {self.max_age:.0f}s limit"
            )
        if not self.definitions_loaded:
            return False, "definitions not loaded yet"
        if self.unmanaged is not None:
            return False, self.unmanaged
        if self.last_cycle is None:
            return False, "no cycle finished yet"
        age = now - self.last_cycle
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


# -- hostile clients ------------------------------------------------------------------------

_PEER: contextvars.ContextVar[str] = contextvars.ContextVar("peer", default="unknown")
"""The peer of the connection being served: set for aiohttp's handler tasks by :class:`_HeadDeadline`."""

_HEAD_END = b"\r\n\r\n"


class _HeadDeadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed when a request head takes too long.

    The deadline starts when the connection opens and starts again at the end of every
    request head; when it passes, the connection is closed (aborted if the peer does not
    read what was written to it). A request that was half sent is logged, an idle
    keep-alive connection is closed silently.
    """

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        """The last bytes received, to find a head's end split over two reads."""
        self._started = False
        """Bytes of a head arrived since the last head ended."""
        self._peer = "unknown"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 -- a TCP server's transport
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = host_port(str(peer[0]), int(peer[1]))
        self._restart()
        # aiohttp starts its handler task in connection_made: the task copies this
        # context, so the peer is known to everything that serves the connection.
        context = contextvars.copy_context()
        context.run(_PEER.set, self._peer)
        context.run(self._inner.connection_made, transport)

    def data_received(self, data: bytes) -> None:
        window = self._tail + data
        end = window.rfind(_HEAD_END)
        if end >= 0:
            self._restart()
            self._started = end + len(_HEAD_END) < len(window)
        elif data:
            self._started = True
        self._tail = window[-(len(_HEAD_END) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _restart(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._started:
            log.info(
                "http_request_incomplete",
                peer=self._peer,
                reason=f"request head not complete within {self._timeout:g}s; connection closed",
            )
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()


class _OneLine(logging.Handler):
    """aiohttp's server log records as one structlog line each: no traceback, none of the peer's bytes."""

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            log.info("http_request_malformed", peer=_PEER.get(), reason=type(error).__name__, status=error.code)
        elif error is not None:
            log.error("http_handler_failed", peer=_PEER.get(), error=type(error).__name__)
        elif record.levelno >= logging.WARNING:
            # the message template only: its arguments may hold what the peer sent
            log.warning("http_server_problem", peer=_PEER.get(), reason=str(record.msg))


def _server_logger() -> logging.Logger:
    # Not from getLogger: a logger of this server's own, outside the logging tree, so that
    # neither handlers nor levels set elsewhere in the process reach aiohttp's records.
    logger = logging.Logger("lakecircle.service.server.aiohttp", logging.DEBUG)  # noqa: LOG001
    logger.addHandler(_OneLine())
    logger.propagate = False
    return logger


@asynccontextmanager
async def serve(
    metrics: Metrics, health: Health, host: str, port: int, *, head_timeout: float = HEAD_TIMEOUT
) -> AsyncIterator[tuple[str, int]]:
    """Serve on ``host``:``port`` until the block exits; yields the bound (host, port).

    Port 0 picks a free port, which the yielded address tells. A name that resolves to
    several addresses (``localhost``) binds each; the first is yielded. No access log: a
    scrape every few seconds would drown the daemon's own lines. ``head_timeout`` bounds
    the wait for each request head (see :class:`_HeadDeadline`).
    """
    runner = web.AppRunner(make_app(metrics, health), access_log=None, handle_signals=False, logger=_server_logger())
    await runner.setup()
    listener: asyncio.Server | None = None
    try:
        handler = runner.server
        assert handler is not None  # noqa: S101 -- set by setup()

        def connection() -> asyncio.Protocol:
            return _HeadDeadline(handler(), head_timeout)

        listener = await asyncio.get_running_loop().create_server(connection, host, port)
        bound = listener.sockets[0].getsockname()
        yield str(bound[0]), int(bound[1])
    finally:
        with anyio.CancelScope(shield=True):
            if listener is not None:
                listener.close()
            await runner.cleanup()
            if listener is not None:
                await listener.wait_closed()
