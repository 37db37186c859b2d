"""Continuous verification (issue 18): each managed bucket verified once per resync interval, at a
steady rate, between the passes over the whole account.

:class:`Verifier` holds what the daemon knows of one account between cycles:

- the index of the buckets the last listing held, with their regions (so a slice never asks
  where a bucket is, and a definition change can be matched against every name);
- the :class:`~lakecircle.core.schedule.Schedule` of the managed ones;
- each managed bucket's state as its last verification left it, for the bucket gauges
  (:meth:`Verifier.picture`): only the buckets not in sync are held by name.

A pass over the account (start-up, SIGHUP: a full cycle that reads every managed bucket; a
resync: a listing pass that reads none) tells the verifier every bucket it lists and which of
them it manages (:class:`~lakecircle.engine.candidates.PassWatch`), and each result
(:meth:`Verifier.track`). When the pass ends (:meth:`Verifier.pass_ended`), a full pass spreads
the next verifications evenly over the interval; a listing pass schedules the new buckets now and
drops those gone. Then every tick :meth:`Verifier.step` takes the buckets due (at most what the
steady rate allows since the last tick; a schedule behind catches up at twice the rate, never in
a burst) and runs one cycle over that slice with the definitions already loaded: read, plan,
write as any cycle, with no listing. :meth:`Verifier.now` makes buckets due at once (an event, a
definition change), ahead of the rate.

It reads no clock of its own: the caller passes its monotonic time, so tests run an hour of
verification in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import structlog

from lakecircle.core.bucket_index import BucketIndex
from lakecircle.core.picture import JUDGED_BY_PASSES, StatePicture
from lakecircle.core.report import BucketPicture, BucketResult, BucketState, CycleReport, Guard, Trigger
from lakecircle.core.schedule import CATCH_UP, Pacer, Schedule
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.cycle_scope import CycleScope
from lakecircle.engine.loader import Loaded
from lakecircle.engine.results import ResultHook
from lakecircle.engine.targets import targets
from lakecircle.errors import LakeCircleError
from lakecircle.ports import BucketRef, ObjectRef

log = structlog.get_logger("lakecircle.engine.verify")

__all__ = ["CATCH_UP", "VERIFY", "SliceRunner", "Verifier"]

VERIFY = Trigger.VERIFY
"""The trigger of a slice's cycle."""

SLICE = 256
"""Buckets a slice verifies at most: a large account's second of verifications goes in several
slices back to back, and a bucket an event names waits for one of them at most, not for a whole
catch-up second's worth."""


class SliceRunner(Protocol):
    """What runs a slice: the account's reconciler, or the lease-holding runner around it."""

    async def run_cycle(
        self,
        trigger: str = ...,
        on_result: ResultHook | None = None,
        refs: list[ObjectRef] | None = None,
        *,
        scope: CycleScope = ...,
    ) -> CycleReport: ...


class Verifier:
    """One account's continuous verification; see the module docstring."""

    def __init__(
        self, reconciler: Reconciler, interval: float, *, runner: SliceRunner | None = None, tick: float = 1.0
    ) -> None:
        self.reconciler = reconciler  # it tells of each pass's listing, and holds the definitions loaded
        reconciler.watch = self
        self.runner: SliceRunner = runner or reconciler  # or the lease-holding runner around it
        self.tick = tick  # seconds between steps, as the caller means to take them
        self.schedule = Schedule(interval)
        self.index = BucketIndex()
        self._pacer = Pacer(tick)
        self._urgent: dict[str, None] = {}  # verified at the next step whatever the rate (:meth:`now`)
        self._states = StatePicture()
        self._listing = False
        self._managed: list[str] = []
        self._seen: set[str] = set()  # buckets the cycle under way had a result for
        self.held_removals: set[str] = set()
        """Buckets whose removals a cycle held for ``LCC_MAX_REMOVALS``: held in later slices too, until
        a full pass judges the account's total again."""
        reconciler.held_removals = self.held_removals
        self._baseline: Loaded | None = None  # last verified whole: a change cut short is done again

    @property
    def regions(self) -> dict[str, str | None]:
        """Every bucket the last listing held (managed or not), with its region."""
        return self.index.regions

    @property
    def rate(self) -> float:
        """Verifications a second at the steady rate: buckets / interval."""
        return len(self.schedule) / self.schedule.interval

    def pass_begins(self) -> None:
        """A pass lists the account from now on (a full cycle, or a listing pass)."""
        self._listing, self._managed = True, []
        self.index.listing_begins()

    def listed(self, ref: BucketRef) -> None:
        """The pass's listing holds ``ref`` (each bucket once, in listing order)."""
        if self._listing:
            self.index.listed(ref.name, ref.region)

    def managed(self, ref: BucketRef) -> None:
        """The pass reads ``ref`` (or, a listing pass, would read it): a definition selects it."""
        if self._listing:
            self._managed.append(ref.name)

    def track(self, result: BucketResult) -> None:
        """A cycle's result for one bucket (the ``on_result`` of every cycle the daemon runs)."""
        name, state = result.bucket, result.state
        if result.guard == Guard.BLAST_RADIUS:
            self.held_removals.add(name)
        elif state is not BucketState.FAILED:
            self.held_removals.discard(name)
        in_slice = not self._listing
        if state is BucketState.MISSING and in_slice:  # a slice read it: deleted
            self.forget(name)
            return
        if state in JUDGED_BY_PASSES and not (state is BucketState.INVALID and in_slice):
            return
        self._seen.add(name)
        self._states.set(name, state, dropped=bool(result.dropped))

    async def run_pass(
        self,
        trigger: str,
        refs: list[ObjectRef] | None,
        *,
        read: bool,
        clock: Callable[[], float],
        loaded: Loaded | None = None,
    ) -> CycleReport:
        """A pass over the account (``read``: a full cycle; else a listing pass), this verifier told
        of it as it streams; ``clock`` says when it ended (the caller's monotonic time); ``loaded``:
        the definitions a hub loaded once for all its accounts (None: the pass loads them)."""
        self.pass_begins()
        if read:  # its removal guard judges the whole account's total again
            self.held_removals.clear()
        report: CycleReport | None = None
        try:
            report = await self.runner.run_cycle(trigger, self.track, refs, scope=CycleScope(loaded, reads=read))
        finally:
            self.pass_ended(report, clock(), read=read)
        if report.fatal is None and not report.interrupted:
            self._baseline = self.reconciler.loaded
        return report

    def pass_ended(self, report: CycleReport | None, now: float, *, read: bool) -> None:
        """The pass is over: the schedule follows what it listed. ``read``: it verified every bucket it
        manages (a full cycle) and their next verifications are spread over the interval; else (a
        listing pass) the new ones are due now. A pass cut short or failed (None: it raised) drops nothing."""
        managed = self._managed
        self._listing, self._managed, self._seen = False, [], set()
        whole = report is not None and report.fatal is None and not report.interrupted
        gone, during = self.index.listing_ended(whole=whole)
        for name in gone:
            self.reconciler.tags.discard(name)
        if report is not None and whole:
            self._states.judged(report.counts)
            keep = set(managed) | during  # an event's bucket may be newer than the listing's page
            for name in [n for n in self.schedule.names() if n not in keep]:
                self._forget(name)
        if read:
            self.schedule.spread(managed, now)
            self._pacer.reset(now)
        else:
            for name in managed:
                if self.schedule.add(name, now):
                    self._urgent.setdefault(name)

    def now(self, names: Iterable[str], now: float, *, account: str | None = None) -> None:
        """Verify these buckets at the next step, ahead of the others and beyond the steady rate (an
        event, a definition change): a bucket not scheduled yet (just created) joins the schedule
        (``account``: this one's, whatever it says: the caller keeps other accounts' events out)."""
        for name in names:
            self.schedule.add(name, now + self.schedule.interval)  # a new one: verified now, then in turn
            self.index.announced([name])  # created since the listing, says an event; a slice tells
            self._urgent.setdefault(name)

    def forget(self, name: str) -> None:
        """``name`` is gone from the account (an event said it was deleted)."""
        self._forget(name)
        self.index.drop(name)

    def lag(self, now: float) -> float:
        return self.schedule.lag(now)

    def due(self, now: float, limit: int | None = None) -> list[BucketRef]:
        """The buckets to verify at ``now``: those asked for now, then those due, within the rate
        since the last step, ``limit`` at most (what is left stays for the next step)."""
        allowed = self._pacer.take(now, self.rate, behind=self.schedule.lag(now) > 0)
        asked_for = [n for n in self._urgent if n in self.schedule]
        urgent = asked_for if limit is None else asked_for[:limit]
        self._urgent = dict.fromkeys(asked_for[len(urgent) :])
        if limit is not None:
            allowed = min(allowed, limit - len(urgent))
        taken = self.schedule.take_due(now, allowed)
        self._pacer.spent(len(taken))
        asked = set(urgent)
        names = urgent + [n for n in taken if n not in asked]
        return [BucketRef(name, self.regions.get(name)) for name in names]

    async def step(self, now: float) -> CycleReport | None:
        """Verify the due buckets in one cycle with the definitions last loaded (None: none was due);
        each is due again an interval later, whatever its result (a failure is reported and counted
        as in any cycle). A bucket the definitions no longer select leaves the schedule."""
        refs = self.due(now, SLICE)
        if not refs:
            return None
        return await self.run_slice(refs, now)

    def ready(self, now: float) -> bool:
        """Whether :meth:`due` at ``now`` would give a bucket, taking none (the next slice goes at once)."""
        if any(name in self.schedule for name in self._urgent):
            return True
        first = self.schedule.first_due()
        if first is None or first > now:
            return False
        return self._pacer.allowed(now, self.rate, behind=now > first) >= 1 - 1e-9

    async def run_slice(self, refs: list[BucketRef], now: float) -> CycleReport:  # refs: due(now)'s
        return await self._verify(VERIFY, refs, None, now)

    async def changed(
        self,
        trigger: str,
        refs: list[ObjectRef] | None,
        *,
        clock: Callable[[], float],
        loaded: Loaded | None = None,
        listing: bool = False,
        elsewhere: Sequence[Mapping[str, str | None]] = (),
    ) -> CycleReport:
        """The definitions changed (a poll saw it): load them (``loaded``: a hub did) and verify at
        once, in one cycle, the buckets the change may affect (targeted reconcile); the others keep
        their turns. A change not narrowed (or definitions that do not load) makes it a full pass.
        ``listing``: a listing pass is owed too (a hub's resync came while the change waited): the
        affected buckets are due at once and the pass lists the account with the new definitions.
        ``elsewhere``: the last listings of a hub's other accounts (bucket names are global: this
        account need not be listed for a bucket another holds)."""
        before = self._baseline or self.reconciler.loaded
        if before is None:
            return await self.run_pass(trigger, refs, read=True, clock=clock, loaded=loaded)
        if loaded is None:
            try:
                loaded = await self.reconciler.loader.load(refs)
            except LakeCircleError:  # the full pass loads them again, and reports why they do not load
                return await self.run_pass(trigger, refs, read=True, clock=clock)
        names, unlisted = targets(before.definitions, loaded.definitions, self.regions, self.reconciler.tags)
        if elsewhere:
            unlisted = frozenset(name for name in unlisted if not any(name in other for other in elsewhere))
        files = len(loaded.definitions.files)
        if names is None:
            log.info("definitions_changed", buckets="all", files=files)
            return await self.run_pass(trigger, refs, read=True, clock=clock, loaded=loaded)
        log.info("definitions_changed", buckets=len(names), unlisted=len(unlisted), files=files)
        if listing or unlisted:
            # A listing is owed (a hub's resync waited), or a bucket defined by name that the last
            # listing did not hold (created since, or missing: only a listing tells). The pass
            # schedules the new ones now, and the affected go with them.
            self.now(sorted(names), clock())
            return await self.run_pass(trigger, refs, read=False, clock=clock, loaded=loaded)
        due = [BucketRef(name, self.regions.get(name)) for name in sorted(names)]
        return await self._verify(trigger, due, loaded, clock())

    async def _verify(self, trigger: str, refs: list[BucketRef], loaded: Loaded | None, now: float) -> CycleReport:
        """One cycle over ``refs`` (``loaded``: new definitions; None: those last loaded), then each
        bucket verified is due again an interval later, a bucket not selected any more leaves the
        schedule, and one cut short stays due."""
        report: CycleReport | None = None
        self._seen = set()
        try:
            given = loaded if loaded is not None else self.reconciler.loaded
            report = await self.runner.run_cycle(trigger, self.track, scope=CycleScope(given, refs))
        finally:
            whole = report is not None and report.fatal is None and not report.interrupted
            if whole and loaded is not None:  # a change verified whole: the next is measured from it
                self._baseline = loaded
            many = len(refs) > max(CATCH_UP * self.tick * self.rate, 1.0)
            if many:  # verified together (a large change): their next turns spread, not bunched
                self.schedule.spread([ref.name for ref in refs if ref.name in self._seen], now)
            for ref in refs:
                if ref.name in self._seen:
                    if not many and not self.schedule.add(ref.name, now + self.schedule.interval):
                        self.schedule.verified(ref.name, now)  # else newly selected: joins in turn
                elif whole and self.index.unconfirmed(ref.name):  # an event's name, not ours to verify
                    self.forget(ref.name)
                elif whole:
                    self._forget(ref.name)  # no longer selected by any definition
                else:
                    self.schedule.released(ref.name)  # cut short (a shutdown, a bug): taken again next time
            self._seen = set()
        return report

    def picture(self) -> BucketPicture:
        """The account's buckets by state: the scheduled ones as last verified, and the last pass's
        missing, invalid and unmanaged ones."""
        return self._states.of(len(self.schedule))

    def _forget(self, name: str) -> None:
        self.reconciler.tags.discard(name)
        self.held_removals.discard(name)
        self.schedule.discard(name)
        self._states.forget(name)
        self._urgent.pop(name, None)

    def _due_names(self) -> list[str]:
        return self.schedule.names()
