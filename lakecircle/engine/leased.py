"""The daemon's runner for one account with replicas: a cycle runs only while this replica holds the lease.

With several replicas (issue 17) each daemon runs a :class:`LeasedRunner` where it would run the
:class:`~lakecircle.engine.cycle.Reconciler` itself (it has the daemon's ``Runner`` surface). A
cycle first waits, in standby, until the :class:`~lakecircle.engine.leases.LeaseKeeper` lets writes
start (held, the new holder's wait over); a standby replica is healthy, just not writing, and says
so to its :class:`StandbyObserver` (readiness). The cycle then runs inside a cancel scope that the
keeper cancels when the lease is lost, or when writes may no longer start while it is still
believed held: the cycle is cut short as at a shutdown (a write under way is cut, its record says
so within the shielded timeout, the report is recorded and marked interrupted), and the writer's
fence has already stopped every write that had not begun (ARCHITECTURE.md, Safety). A stop
(:meth:`LeasedRunner.drain`) during standby ends the wait at once.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Protocol

import anyio
import structlog

from lakecircle.core.report import CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.cycle_scope import WHOLE, CycleScope
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.results import ResultHook
from lakecircle.ports import ObjectRef

__all__ = ["LeasedRunner", "StandbyObserver"]

log = structlog.get_logger("lakecircle.engine.leased")


class StandbyObserver(Protocol):
    """Told when the replica waits for the lease (standby) and when it stops waiting (readiness)."""

    def standby(self, waiting: bool) -> None: ...


class LeasedRunner:
    """One account's reconciler, run only while this replica's lease allows writes; see the module docstring."""

    def __init__(self, reconciler: Reconciler, keeper: LeaseKeeper, *, observer: StandbyObserver | None = None) -> None:
        self.reconciler = reconciler
        self.keeper = keeper
        self.observer = observer
        self.loader: DefinitionLoader = reconciler.loader
        """Polled and refetched through by the daemon."""
        self._cycle_scope: anyio.CancelScope | None = None
        self._standby_scope: anyio.CancelScope | None = None
        self._standby: bool | None = None
        self._cut_short: CycleReport | None = None
        keeper.on_lost(self._lost)

    @property
    def cut_short(self) -> CycleReport | None:
        """The report of the last cycle a shutdown's timeout cut part way (None when it was cut in standby)."""
        return self._cut_short

    @property
    def draining(self) -> bool:
        return self.reconciler.draining

    def drain(self) -> None:
        """Start no new bucket work (a shutdown); a wait for the lease ends at once, and a lease not
        held is no longer wanted (another replica that stays takes it, not this one on its way out)."""
        self.reconciler.drain()
        if self.keeper.epoch is None:
            self.keeper.want(False)
        if self._standby_scope is not None:
            self._standby_scope.cancel()

    async def run_cycle(
        self,
        trigger: str = Trigger.MANUAL,
        on_result: ResultHook | None = None,
        refs: list[ObjectRef] | None = None,
        *,
        scope: CycleScope = WHOLE,
    ) -> CycleReport:
        """One cycle once writes may start; an interrupted one when the lease is lost part way, or an
        empty interrupted one when a stop comes during standby."""
        self._cut_short = None
        if not self.keeper.may_start_write():
            if not await self._wait_for_lease():
                return self._stopped_in_standby(trigger)
            # The listing a poll made before the wait, and the definitions a slice was given, may be
            # old (another replica may have applied newer ones meanwhile): the cycle loads them again.
            refs, scope = None, replace(scope, loaded=None)
        self._tell_standby(False)
        with anyio.CancelScope() as cancel:
            self._cycle_scope = cancel
            try:
                return await self.reconciler.run_cycle(trigger, on_result, refs, scope=scope)
            except anyio.get_cancelled_exc_class():
                self._cut_short = self.reconciler.cut_short
                raise
            finally:
                self._cycle_scope = None
        report, self._cut_short = self.reconciler.cut_short, None  # returned, not cut by a shutdown
        log.warning(
            "lease_lost_in_cycle",
            account=self.keeper.account,
            replica=self.keeper.replica,
            cycle_id=report.cycle_id if report is not None else None,
        )
        return report if report is not None else self._empty(trigger)

    async def _wait_for_lease(self) -> bool:
        """Standby until writes may start: True then, False when a stop came first."""
        if self.reconciler.draining:
            return False
        self._tell_standby(True)
        log.info(
            "lease_standby", account=self.keeper.account, replica=self.keeper.replica, holder=self.keeper.holder_seen
        )
        with anyio.CancelScope() as scope:
            self._standby_scope = scope
            try:
                await self.keeper.wait_until_writable()
            finally:
                self._standby_scope = None
        return not scope.cancelled_caught

    def _lost(self) -> None:
        """The keeper's on_lost: cut the cycle under way, if any."""
        if self._cycle_scope is not None:
            self._cycle_scope.cancel()

    def _tell_standby(self, waiting: bool) -> None:
        if waiting != self._standby:
            self._standby = waiting
            if self.observer is not None:
                self.observer.standby(waiting)

    def _stopped_in_standby(self, trigger: str) -> CycleReport:
        log.info("lease_standby_stopped", account=self.keeper.account, replica=self.keeper.replica)
        return self._empty(trigger)

    def _empty(self, trigger: str) -> CycleReport:
        """A cycle that did nothing: it never held the lease long enough to start."""
        return CycleReport(
            cycle_id=uuid.uuid4().hex[:12],
            trigger=trigger,
            dry_run=self.reconciler.dry_run,
            started_at=self.reconciler.clock(),
            duration=0.0,
            results=(),
            definitions=None,
            interrupted=True,
        )
