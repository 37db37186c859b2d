"""Wiring of the always-on service: settings in, a daemon with metrics and health out.

``lakecircle daemon`` (and the demo) call :func:`run_service`. It binds the metrics
server first (so a wrong address fails fast), checks the account, then runs the loop of
:mod:`lakecircle.daemon` until SIGTERM or SIGINT, with SIGHUP forcing a cycle.

Cycle reports and polls feed the failure metrics and :class:`~lakecircle.server.Health`,
which turns not ready when S3 stays out of reach for :data:`OUTAGE_POLLS` poll intervals.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import anyio
import structlog

from lakecircle import __version__
from lakecircle.daemon import Clock, Daemon, handle_signals
from lakecircle.errors import ConfigError, LakeCircleError
from lakecircle.metrics import Metrics, Stage, fatal_stage
from lakecircle.reconcile import CycleReport
from lakecircle.retry import RetryPolicy
from lakecircle.runtime import build_reconciler, open_account
from lakecircle.server import Health, host_port, serve
from lakecircle.settings import Settings

log = structlog.get_logger("lakecircle.service")

OUTAGE_POLLS: Final = 3
"""Readiness is lost when polls and cycles have failed for longer than this many poll intervals."""


class CycleSink:
    """Feeds each cycle's report, and each poll's outcome, to the metrics and the readiness check."""

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        on_report: Callable[[CycleReport], None] | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.on_report = on_report
        self.clock = clock
        """Unix time: when a cycle finished (the last-success gauge), when contacts began to fail."""

    def cycle_finished(self, report: CycleReport) -> None:
        now = self.clock()
        if report.definitions is not None:
            self.health.mark_definitions_loaded()
        if report.fatal is None:
            self.health.mark_contact()
        else:
            self.health.mark_contact_failed(fatal_stage(report), now)
        self.health.mark_cycle_finished(now)
        self.metrics.observe_cycle(report, now=now)
        if self.on_report is not None:
            self.on_report(report)

    def cycle_crashed(self, trigger: str) -> None:
        self.metrics.observe_cycle_error(trigger)

    def poll_succeeded(self) -> None:
        self.health.mark_contact()

    def poll_failed(self, error: LakeCircleError) -> None:
        self.metrics.observe_poll_failure()
        self.health.mark_contact_failed(Stage.POLL, self.clock())


@asynccontextmanager
async def _listening(metrics: Metrics, health: Health, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    try:
        server = serve(metrics, health, host, port)
        bound = await server.__aenter__()
    except OSError as exc:
        raise ConfigError(
            [f"LCC_METRICS_ADDR: cannot listen on {host_port(host, port)}: {exc.strerror or exc}"]
        ) from exc
    try:
        yield bound
    finally:
        await server.__aexit__(None, None, None)


async def run_service(
    settings: Settings,
    definitions_dir: Path | None = None,
    *,
    max_cycles: int | None = None,
    clock: Clock | None = None,
    on_started: Callable[[Daemon, tuple[str, int]], None] | None = None,
    on_report: Callable[[CycleReport], None] | None = None,
) -> Daemon:
    """Run the daemon until a signal stops it (or ``max_cycles`` cycles ran)."""
    metrics = Metrics()
    metrics.set_info(__version__, settings.actions.value, settings.aws_account)
    health = Health(max_age=3 * settings.resync_interval, outage_limit=OUTAGE_POLLS * settings.poll_interval)
    host, port = settings.metrics_host_port
    async with _listening(metrics, health, host, port) as bound:
        log.info("metrics_listening", address=f"http://{host_port(*bound)}/metrics")
        async with open_account(
            settings,
            need_endpoint=definitions_dir is None,
            retry=RetryPolicy.from_settings(settings),
            observer=metrics,
        ) as account:
            metrics.watch_gate(account.adapter.gate)
            # The daemon's reports feed metrics and logs: counts, not every plan's models
            # (plans only for an ``on_report`` that narrates them: the demo).
            reconciler = build_reconciler(
                settings, account, definitions_dir, dry_run=settings.dry_run, keep_plans=on_report is not None
            )
            sink = CycleSink(metrics, health, on_report)
            daemon = Daemon(
                reconciler,
                poll_interval=settings.poll_interval,
                resync_interval=settings.resync_interval,
                shutdown_timeout=settings.shutdown_timeout,
                clock=clock,
                observer=sink,
                poll_observer=sink,
                max_cycles=max_cycles,
            )
            log.info(
                "daemon_started",
                mode=settings.actions.value,
                poll_interval_s=settings.poll_interval,
                resync_interval_s=settings.resync_interval,
                concurrency=settings.concurrency,
                definitions=str(definitions_dir) if definitions_dir else settings.definition_uri,
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(handle_signals, daemon)
                if on_started is not None:
                    on_started(daemon, bound)
                await daemon.run()
                tg.cancel_scope.cancel()
    return daemon
