"""The always-on loop: poll the definitions by ETag, resync on a timer, wake on SIGHUP.

The loop is a small state machine around :class:`~lakecircle.engine.cycle.Reconciler`:

- every poll interval (with jitter) it lists the definition prefix; when the (key, ETag)
  set is unchanged and no resync is due, that listing is all the poll costs, unless a
  file's download failed in the last cycle: the poll fetches those files again, and a
  cycle runs as soon as one of them reads (a file unreadable by its content is not
  fetched again until its ETag changes);
- a changed listing, a due resync, or SIGHUP runs a full cycle; SIGHUPs that arrive
  during a cycle coalesce into exactly one more cycle after it;
- SIGTERM or SIGINT stops it: no new bucket work starts, in-flight writes finish within
  the shutdown timeout, the last report is recorded, and :meth:`Daemon.run` returns
  (:mod:`lakecircle.app.serve` routes the signals here, :mod:`lakecircle.service.signals` catches them).

Cycles never overlap, and an exception inside one is logged and counted while the loop
goes on. A poll that fails is told to the
:class:`~lakecircle.service.loop_parts.PollObserver` (a failure metric, and readiness), as
each cycle's report is told to the :class:`~lakecircle.service.loop_parts.CycleObserver`.
Time comes from an injected :class:`~lakecircle.service.loop_parts.Timer`, so tests run a
ten-minute resync in milliseconds. What the loop drives and tells is in
:mod:`lakecircle.service.loop_parts`.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import anyio
import structlog

from lakecircle.core.report import CycleReport, Trigger
from lakecircle.engine.loader import listing_fingerprint
from lakecircle.engine.verify import VERIFY
from lakecircle.errors import LakeCircleError
from lakecircle.ports import ObjectRef
from lakecircle.service.loop_parts import Continuous, CycleObserver, MonotonicTimer, PollObserver, Runner, Timer

log = structlog.get_logger("lakecircle.service.daemon")


class StopReason(StrEnum):
    """Why the daemon stopped: the ``reason`` of its ``daemon_stopped`` line."""

    SIGNAL = "signal"
    """SIGTERM or SIGINT (the line's ``signal`` says which)."""
    REQUESTED = "requested"
    """:meth:`Daemon.request_stop` without a signal (an embedding program, a test)."""
    CYCLES_DONE = "cycles_done"
    """``--cycles N``: the N cycles ran."""
    START_UP_FAILED = "start_up_failed"
    """The service could not start (its ``error`` says why); the daemon never ran."""


@dataclass
class DaemonStats:
    cycles: int = 0
    """Passes over the account (with continuous verification) or whole cycles; not slices."""
    slices: int = 0
    """Cycles of continuous verification over the buckets due."""
    polls: int = 0
    idle_polls: int = 0
    crashes: int = 0
    refetched: int = 0
    """Files whose download had failed and that read at a poll."""


class Daemon:
    def __init__(
        self,
        reconciler: Runner,
        *,
        poll_interval: float = 30.0,
        resync_interval: float = 600.0,
        shutdown_timeout: float = 30.0,
        clock: Timer | None = None,
        jitter: Callable[[], float] | None = None,
        observer: CycleObserver | None = None,
        poll_observer: PollObserver | None = None,
        max_cycles: int | None = None,
        verifier: Continuous | None = None,
    ) -> None:
        self.reconciler = reconciler
        self.verifier = verifier
        """Continuous verification of the account, or of a hub's accounts (None: whole cycles)."""
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        self.shutdown_timeout = shutdown_timeout
        self.clock: Timer = clock or MonotonicTimer()
        self.jitter = jitter or (lambda: random.uniform(0.9, 1.1))  # noqa: S311 -- spreading, not security
        self.observer = observer
        self.poll_observer = poll_observer
        self.max_cycles = max_cycles
        self.stats = DaemonStats()
        self.last_report: CycleReport | None = None
        self._wake = anyio.Event()
        self._sync_requested = False
        self._poll_requested = False
        self._stopping = False
        self._stop_signal: str | None = None
        self._cycle_scope: anyio.CancelScope | None = None
        self._idle_scope: anyio.CancelScope | None = None
        """Cancelled by a stop outside a cycle: a poll (which only reads) or a wait ends at once."""

    # -- requests from outside (signal handlers, tests) -----------------------------------

    def request_sync(self) -> None:
        """Run a full cycle now, or exactly one more after the running one."""
        self._sync_requested = True
        self._wake.set()

    def request_poll(self) -> None:
        """Poll the definitions now (an event said a file changed), not at the next poll interval."""
        self._poll_requested = True
        self._wake.set()

    def request_verify(self, buckets: Iterable[str], account: str | None = None) -> None:
        """Verify these buckets now (an event named them; ``account``: whose, in a hub); else a cycle now."""
        if self.verifier is None:
            self.request_sync()
            return
        self.verifier.now(buckets, self.clock.now(), account=account)
        self._wake.set()

    def request_stop(self, signal: str | None = None) -> None:
        """Start no new work; let in-flight writes finish within the shutdown timeout.

        ``signal`` names the signal that asked for it (``SIGTERM``), for the log line.
        """
        if self._stopping:
            return
        self._stopping = True
        self._stop_signal = signal
        self.reconciler.drain()
        if self._cycle_scope is not None:
            self._cycle_scope.deadline = anyio.current_time() + self.shutdown_timeout
        elif self._idle_scope is not None:
            self._idle_scope.cancel()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll, resync and run cycles until a stop is requested (or ``max_cycles`` cycles ran)."""
        with anyio.CancelScope() as self._idle_scope:
            await self._loop()
        self._idle_scope = None
        if not self._stopping:
            reason = StopReason.CYCLES_DONE
        else:
            reason = StopReason.SIGNAL if self._stop_signal else StopReason.REQUESTED
        log.info(
            "daemon_stopped",
            reason=reason.value,
            **({"signal": self._stop_signal} if self._stop_signal else {}),
            cycles=self.stats.cycles,
            polls=self.stats.polls,
        )

    async def _loop(self) -> None:
        fingerprint: bytes | None = None
        next_resync = self.clock.now()
        trigger: Trigger | None = Trigger.STARTUP
        while not self._stopping and trigger is not None:
            refs: list[ObjectRef] | None = None
            resync = trigger is Trigger.POLL and self.clock.now() >= next_resync
            if resync and self.verifier is None:
                trigger = Trigger.RESYNC
            elif trigger is Trigger.POLL:
                # With continuous verification a resync lists the account and reads no bucket: the
                # definitions are polled first, and a change there makes it a full pass.
                self._poll_requested = False
                self.stats.polls += 1
                try:
                    refs = await self.reconciler.loader.list_refs()
                except LakeCircleError as exc:
                    log.warning("poll_failed", error=str(exc))
                    if self.poll_observer is not None:
                        self.poll_observer.poll_failed(exc)
                    trigger = await self._wait(self.poll_interval * self.jitter())
                    continue
                if self.poll_observer is not None:
                    self.poll_observer.poll_succeeded()
                changed = listing_fingerprint(refs) != fingerprint or await self._refetched(refs)
                if not (changed or resync):
                    self.stats.idle_polls += 1
                    log.debug("poll_unchanged", files=len(refs))
                    trigger = await self._wait(self.poll_interval * self.jitter())
                    continue
                # A poll that found changed definitions, or a file that now reads; else a resync.
                trigger = Trigger.POLL if changed else Trigger.RESYNC
            self._sync_requested = False
            report = await self._pass(trigger, refs)
            # A cycle that ended early (its lease's fence closed) left buckets undone: the next poll runs again.
            whole = report is not None and report.fatal is None and not report.interrupted
            fingerprint = report.fingerprint if report is not None and whole else None
            if self.verifier is None:
                next_resync = self.clock.now() + self.resync_interval
            elif report is not None and report.fatal is not None and report.fingerprint is not None:
                # The definitions loaded and the account's listing failed: slices go on with them, and
                # the listing is tried again at the next poll.
                fingerprint, next_resync = report.fingerprint, self.clock.now()
            elif trigger is not Trigger.POLL:  # a change's cycle lists no account: the resync stays due
                next_resync = self.clock.now() + self.resync_interval
            if self.max_cycles is not None and self.stats.cycles >= self.max_cycles:
                break
            trigger = Trigger.SIGNAL if self._sync_requested else await self._wait(self.poll_interval * self.jitter())

    async def _pass(self, trigger: Trigger, refs: list[ObjectRef] | None) -> CycleReport | None:
        """A whole cycle; with continuous verification a pass over the account: a full one that
        reads every managed bucket (start-up, SIGHUP), or, at a resync, a listing pass that reads
        none (the buckets are verified as their turns come); changed definitions verify the
        buckets the change may affect (:meth:`Verifier.changed`)."""
        verifier = self.verifier
        if verifier is None:
            return await self._cycle(trigger, lambda: self.reconciler.run_cycle(trigger, refs=refs))
        if trigger is Trigger.POLL:  # only the buckets the change may affect, at once
            return await self._cycle(trigger, lambda: verifier.changed(trigger, refs, clock=self.clock.now))
        read = trigger is not Trigger.RESYNC
        return await self._cycle(trigger, lambda: verifier.run_pass(trigger, refs, read=read, clock=self.clock.now))

    async def _refetched(self, refs: list[ObjectRef]) -> bool:
        """Fetch again the files whose download failed; True when one of them now reads."""
        loader = self.reconciler.loader
        if not loader.failed:
            return False
        now_read = await loader.refetch_failed(refs)
        self.stats.refetched += now_read
        if now_read:
            log.info("definitions_refetched", files=now_read, still_failing=len(loader.failed))
        return now_read > 0

    async def _cycle(
        self, trigger: str, run: Callable[[], Awaitable[CycleReport | None]], *, part: bool = False
    ) -> CycleReport | None:
        """One cycle (``part``: a slice) as the loop's only work: a stop gives it the shutdown timeout."""
        if part:
            self.stats.slices += 1
        else:
            self.stats.cycles += 1
        report: CycleReport | None = None
        with anyio.CancelScope() as scope:
            self._cycle_scope = scope
            if self._stopping:
                scope.deadline = anyio.current_time() + self.shutdown_timeout
            try:
                report = await run()
            except Exception:  # a bug in one cycle must not end the service
                self.stats.crashes += 1
                log.exception("cycle_crashed", trigger=trigger)
                if self.observer is not None:
                    self.observer.cycle_crashed(trigger)
        self._cycle_scope = None
        if scope.cancelled_caught:
            log.warning("cycle_cut_short", trigger=trigger, reason="shutdown timeout")
            report = self.reconciler.cut_short  # what it did still counts
        if report is not None:
            picture = self.verifier.picture() if self.verifier is not None else None
            if picture is not None:
                report = dataclasses.replace(report, picture=picture)
            self.last_report = report
            if report.definitions is not None and report.definitions.partial and not part:
                # One line per pass naming every unreadable file, for whoever reads the log.
                unreadable = [f.as_dict() for f in report.definitions.unreadable_files]
                log.warning("definitions_partial", count=len(unreadable), files=unreadable)
            if self.observer is not None:
                self.observer.cycle_finished(report)
        return report

    async def _wait(self, seconds: float) -> Trigger | None:
        """Until the next poll, or a sync, poll or stop request, say which (None: stop); meanwhile
        the buckets due are verified every tick (slices back to back while behind), at once for an event."""
        deadline = self.clock.now() + seconds
        while not self._asked():
            now = self.clock.now()
            if now >= deadline:
                break
            pause = deadline - now
            verifier = self.verifier
            if verifier is not None:
                ran = await self._cycle(VERIFY, functools.partial(verifier.step, now), part=True)
                if self._asked():
                    break
                if ran is not None and verifier.ready(self.clock.now()):
                    continue  # a slice could not take all the rate allows: the next one at once
                pause = min(verifier.tick, deadline - self.clock.now())
            await self._sleep(pause)
        if self._stopping:
            return None
        if self._sync_requested:
            return Trigger.SIGNAL
        return Trigger.POLL

    def _asked(self) -> bool:
        return self._sync_requested or self._stopping or self._poll_requested

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less when woken (a request)."""
        if seconds > 0 and not self._wake.is_set():
            async with anyio.create_task_group() as tg:

                async def sleeper() -> None:
                    await self.clock.sleep(seconds)
                    tg.cancel_scope.cancel()

                async def waker() -> None:
                    await self._wake.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(sleeper)
                tg.start_soon(waker)
        if self._wake.is_set():
            self._wake = anyio.Event()
