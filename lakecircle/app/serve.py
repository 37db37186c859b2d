"""Wiring of the always-on service: settings in, a daemon with metrics and health out.

``lakecircle daemon`` (and the demo) call :func:`run_service`. It binds the metrics
server first (so a wrong address fails fast), checks the account, then runs the loop of
:mod:`lakecircle.service.daemon` until SIGTERM or SIGINT, with SIGHUP forcing a cycle.

Signals count from the first instant (:mod:`lakecircle.service.signals`): a SIGTERM or SIGINT
during start-up (the account check's retries, the bind) ends it at once and the service
returns without running, and a SIGHUP during start-up is answered by the first cycle,
which starts as soon as start-up ends. Every way out logs ``daemon_stopped`` with its
reason. Cycle reports and polls feed the failure metrics and :class:`~lakecircle.service.server.Health`,
which turns not ready when S3 stays out of reach for :data:`OUTAGE_POLLS` poll intervals.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple

import anyio
import structlog

from lakecircle import __version__
from lakecircle.adapters.retry import RequestObserver, RetryPolicy
from lakecircle.app.events import events_running
from lakecircle.app.leasing import account_keeper, keeping, open_lease_store
from lakecircle.app.probing import announce_server
from lakecircle.app.sinks import CycleSink, HubSink
from lakecircle.app.wiring import build_reconciler, open_account, open_hub
from lakecircle.core.report import CycleReport
from lakecircle.engine.hub import Hub
from lakecircle.engine.hub_verify import HubVerifier
from lakecircle.engine.leased import LeasedRunner
from lakecircle.engine.verify import Verifier
from lakecircle.errors import ConfigError, LakeCircleError
from lakecircle.service.daemon import Daemon, StopReason
from lakecircle.service.loop_parts import Continuous, MonotonicTimer, Runner, Timer
from lakecircle.service.metrics import Metrics
from lakecircle.service.server import Health, host_port, serve
from lakecircle.service.signals import SignalInbox
from lakecircle.settings import Settings

if TYPE_CHECKING:
    from lakecircle.adapters.s3.adapter import S3Adapter

log = structlog.get_logger("lakecircle.app.serve")

OUTAGE_POLLS: Final = 3
"""Readiness is lost when polls and cycles have failed for longer than this many poll intervals."""


def _leases(settings: Settings) -> bool:
    """Whether this daemon takes leases: ``LCC_LEASE_SECONDS`` above 0, and it writes (a drift
    monitor, ``LCC_ACTIONS=DRYRUN``, writes nothing and must never keep the writer waiting)."""
    return settings.lease_seconds > 0 and not settings.dry_run


class _Standby:
    """A standby replica is ready: it waits for a lease another replica holds."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def standby(self, waiting: bool) -> None:
        self.health.mark_standby(waiting)


class _SignalRouter:
    """Where each signal goes: to start-up until the daemon exists, then to the daemon."""

    def __init__(self) -> None:
        self.daemon: Daemon | None = None
        self.start_up = anyio.CancelScope()
        """Cancelled by SIGTERM or SIGINT during start-up."""
        self.stopped_by: str | None = None

    def __call__(self, sig: signal.Signals) -> None:
        phase = "start_up" if self.daemon is None else "running"
        stop = sig is not signal.SIGHUP
        log.info("signal_received", signal=sig.name, action="stop" if stop else "sync", phase=phase)
        if self.daemon is not None:
            if stop:
                self.daemon.request_stop(sig.name)
            else:
                self.daemon.request_sync()
        elif stop and self.stopped_by is None:
            self.stopped_by = sig.name
            self.start_up.cancel()
        # A SIGHUP during start-up needs nothing more: the first cycle, which starts as
        # soon as start-up ends, is the sync it asks for.


def _reason(exc: OSError) -> str:
    """Why a bind failed, in the system's words: asyncio's own message holds the address
    as a Python tuple, ``error while attempting to bind on address ('::1', 9739)``."""
    return os.strerror(exc.errno).lower() if exc.errno else (exc.strerror or str(exc))


@asynccontextmanager
async def _listening(metrics: Metrics, health: Health, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    try:
        server = serve(metrics, health, host, port)
        bound = await server.__aenter__()
    except OSError as exc:
        raise ConfigError([f"LCC_METRICS_ADDR: cannot listen on {host_port(host, port)}: {_reason(exc)}"]) from exc
    try:
        yield bound
    finally:
        await server.__aexit__(None, None, None)


async def run_service(
    settings: Settings,
    definitions_dir: Path | None = None,
    *,
    max_cycles: int | None = None,
    clock: Timer | None = None,
    on_started: Callable[[Daemon, tuple[str, int]], None] | None = None,
    on_report: Callable[[CycleReport], None] | None = None,
    signals: SignalInbox | None = None,
) -> Daemon | None:
    """Run the daemon until a signal stops it (or ``max_cycles`` cycles ran).

    Returns the daemon, or None when a signal stopped the service during start-up.
    ``signals`` is the inbox the command installed at its start; without one, an inbox
    is installed for the run and removed after it (the caller's handlers come back).
    """
    inbox = signals if signals is not None else SignalInbox().install()
    router = _SignalRouter()
    failure: LakeCircleError | None = None
    daemon: Daemon | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(inbox.deliver, router)
            try:
                daemon = await _start_and_run(
                    settings,
                    definitions_dir,
                    router,
                    max_cycles=max_cycles,
                    clock=clock,
                    on_started=on_started,
                    on_report=on_report,
                )
            except LakeCircleError as exc:  # raised below, outside the task group (no exception group)
                failure = exc
            finally:
                tg.cancel_scope.cancel()
    finally:
        if signals is None:
            inbox.uninstall()
    if failure is not None:
        raise failure
    return daemon


async def _start_and_run(
    settings: Settings,
    definitions_dir: Path | None,
    router: _SignalRouter,
    *,
    max_cycles: int | None,
    clock: Timer | None,
    on_started: Callable[[Daemon, tuple[str, int]], None] | None,
    on_report: Callable[[CycleReport], None] | None,
) -> Daemon | None:
    many = settings.accounts_from is not None
    metrics = Metrics(multi_account=many, leases=_leases(settings))
    metrics.set_info(__version__, settings.actions.value, settings.aws_account)
    health = Health(max_age=3 * settings.resync_interval, outage_limit=OUTAGE_POLLS * settings.poll_interval)
    host, port = settings.metrics_host_port
    log.info("daemon_starting", version=__version__, mode=settings.actions.value)
    async with AsyncExitStack() as stack:
        daemon: Daemon | None = None
        try:
            with router.start_up:
                bound = await stack.enter_async_context(_listening(metrics, health, host, port))
                log.info("metrics_listening", address=f"http://{host_port(*bound)}/metrics")
                sink = CycleSink(metrics, health, on_report, count_cycles=not many)
                timer = clock or MonotonicTimer()
                wired = await _runner(stack, settings, definitions_dir, metrics, sink, timer=timer)
                verifier = wired.verifier
                if isinstance(verifier, Verifier):  # a hub's accounts each have their own lag (hub_verifier)
                    metrics.watch_verification(lambda: verifier.lag(timer.now()))
                daemon = Daemon(
                    wired.runner,
                    poll_interval=settings.poll_interval,
                    resync_interval=settings.resync_interval,
                    shutdown_timeout=settings.shutdown_timeout,
                    clock=timer,
                    observer=sink,
                    poll_observer=sink,
                    max_cycles=max_cycles,
                    verifier=verifier,
                )
                router.daemon = daemon
        except LakeCircleError as exc:
            # one line: the error says what to fix; a traceback would only hide it
            log.error("daemon_stopped", reason=StopReason.START_UP_FAILED.value, error=str(exc))  # noqa: TRY400
            raise
        if daemon is None:
            log.info(
                "daemon_stopped", reason=StopReason.SIGNAL.value, signal=router.stopped_by, phase="start_up", cycles=0
            )
            return None
        if wired.adapter is not None:
            await stack.enter_async_context(events_running(settings, wired.adapter, daemon, metrics, definitions_dir))
        await _started(stack, daemon, settings, definitions_dir)
        if on_started is not None:
            on_started(daemon, bound)
        await daemon.run()
    return daemon


async def _started(stack: AsyncExitStack, daemon: Daemon, settings: Settings, definitions_dir: Path | None) -> None:
    """A hub's accounts on their own schedules, then ``daemon_started``."""
    # Outside start-up's cancel scope: these task groups live as long as the daemon.
    if isinstance(daemon.reconciler, Hub):
        # A hub cycle waits a poll interval at most for its accounts; a slow one goes on alone.
        await stack.enter_async_context(
            daemon.reconciler.background(wait=settings.poll_interval, shutdown_timeout=settings.shutdown_timeout)
        )
    elif isinstance(daemon.reconciler, LeasedRunner):
        await stack.enter_async_context(keeping(daemon.reconciler.keeper))  # released once the daemon is done
    log.info(
        "daemon_started",
        mode=settings.actions.value,
        poll_interval_s=settings.poll_interval,
        resync_interval_s=settings.resync_interval,
        concurrency=settings.concurrency,
        definitions=str(definitions_dir) if definitions_dir else settings.definition_uri,
    )


class _Wired(NamedTuple):
    runner: Runner
    verifier: Continuous | None = None
    """The continuous verification of the account, or of each of a hub's accounts."""
    adapter: S3Adapter | None = None
    """The account's S3 adapter, a hub's own (the events queue is reached beside it)."""


async def _runner(
    stack: AsyncExitStack,
    settings: Settings,
    definitions_dir: Path | None,
    metrics: Metrics,
    sink: CycleSink,
    *,
    timer: Timer,
) -> _Wired:
    """What the daemon runs: the hub of many accounts (``LCC_ACCOUNTS``), else the one
    account's reconciler; either verified continuously. The adapters it opens are closed with ``stack``."""
    if settings.accounts_from is not None:
        own: list[S3Adapter] = []
        hub = await stack.enter_async_context(_hub(settings, definitions_dir, metrics, sink, own.append))
        if own:
            await announce_server(settings, own[0])
        return _Wired(hub, hub_verifier(hub, metrics, settings.resync_interval, timer), own[0] if own else None)
    account = await stack.enter_async_context(
        open_account(
            settings,
            need_endpoint=definitions_dir is None,
            retry=RetryPolicy.from_settings(settings),
            observer=metrics,
        )
    )
    metrics.watch_gate(account.adapter.gate)
    await announce_server(settings, account.adapter)
    keeper = None
    if _leases(settings):
        # Closed with the rest, after the keeper's release (entered later, on the same stack).
        store = await stack.enter_async_context(open_lease_store(settings, account.adapter))
        keeper = account_keeper(settings, store, account.adapter, metrics)
    # The daemon's reports feed metrics and logs: counts, not every plan's models
    # (plans only for an ``on_report`` that narrates them: the demo).
    reconciler = build_reconciler(
        settings,
        account,
        definitions_dir,
        dry_run=settings.dry_run,
        keep_plans=sink.on_report is not None,
        fence=keeper,
    )
    if keeper is None:
        return _Wired(reconciler, Verifier(reconciler, settings.resync_interval), account.adapter)
    keeper.contact = sink.lease_contact  # a standby polls nothing: its lease reads are its contact with S3
    leased = LeasedRunner(reconciler, keeper, observer=_Standby(sink.health))
    return _Wired(leased, Verifier(reconciler, settings.resync_interval, runner=leased), account.adapter)


def hub_verifier(hub: Hub, metrics: Metrics, interval: float, timer: Timer) -> HubVerifier:
    """Each of the hub's accounts verified continuously, its lag as its own
    ``lakecircle_verification_lag_seconds{account}`` (gone with the account's other series)."""

    def made(account_id: str) -> None:
        metrics.account(account_id).watch_verification(lambda: verifier.lag_of(account_id, timer.now()))

    verifier = HubVerifier(hub, interval, clock=timer.now, made=made)
    return verifier


def _hub(
    settings: Settings,
    definitions_dir: Path | None,
    metrics: Metrics,
    sink: CycleSink,
    own: Callable[[S3Adapter], None],
) -> AbstractAsyncContextManager[Hub]:
    """The hub of many accounts, each account's requests and cycles counted under its label
    (the hub's own, definitions and records, under none); ``own`` is told of the hub's own adapter."""

    def requests(account_id: str | None) -> RequestObserver:
        return metrics if account_id is None else metrics.account(account_id)

    def opened(account_id: str | None, adapter: S3Adapter) -> None:
        (metrics if account_id is None else metrics.account(account_id)).watch_gate(adapter.gate)
        if account_id is None:
            own(adapter)

    return open_hub(
        settings,
        definitions_dir,
        dry_run=settings.dry_run,
        keep_plans=sink.on_report is not None,
        observer=HubSink(metrics, sink.health),
        leases=metrics if _leases(settings) else None,
        requests=requests,
        opened=opened,
    )
