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

import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog

from lakecircle.core.report import BucketPicture, BucketResult, BucketState, CycleReport, Trigger
from lakecircle.core.schedule import Schedule
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import Loaded
from lakecircle.engine.results import ResultHook
from lakecircle.engine.targets import targets
from lakecircle.errors import LakeCircleError
from lakecircle.ports import BucketRef, ObjectRef

log = structlog.get_logger("lakecircle.engine.verify")

__all__ = ["CATCH_UP", "VERIFY", "SliceRunner", "Verifier"]

VERIFY = Trigger.VERIFY
"""The trigger of a slice's cycle."""

CATCH_UP = 2.0
"""A schedule behind takes at most this many times the steady rate a tick (it drains, never bursts)."""

JUDGED_BY_PASSES = (BucketState.MISSING, BucketState.INVALID, BucketState.UNMANAGED)
"""States only a pass over the whole account says; a slice carries the last pass's counts of them."""


class SliceRunner(Protocol):
    """What runs a slice: the account's reconciler, or the lease-holding runner around it."""

    async def run_cycle(
        self,
        trigger: str = ...,
        on_result: ResultHook | None = None,
        refs: list[ObjectRef] | None = None,
        loaded: Loaded | None = None,
        buckets: Sequence[BucketRef] | None = None,
        *,
        reads: bool = True,
    ) -> CycleReport: ...


class Verifier:
    """One account's continuous verification; see the module docstring."""

    def __init__(
        self, reconciler: Reconciler, interval: float, *, runner: SliceRunner | None = None, tick: float = 1.0
    ) -> None:
        self.reconciler = reconciler
        """The account's: it tells this verifier of each pass's listing (its ``watch``), and holds the
        definitions the slices verify with (its ``loaded``)."""
        reconciler.watch = self
        self.runner: SliceRunner = runner or reconciler
        """What runs the slices: the reconciler, or the lease-holding runner around it."""
        self.tick = tick
        """Seconds between steps, as the caller means to take them: a step after a longer pause takes
        no more than :data:`CATCH_UP` ticks' worth."""
        self.schedule = Schedule(interval)
        self.regions: dict[str, str | None] = {}
        """Every bucket the last listing held (managed or not), with its region."""
        self._last: float | None = None
        self._credit = 0.0
        self._urgent: dict[str, None] = {}
        """Buckets to verify at the next step whatever the rate (:meth:`now`), oldest first."""
        self._unusual: dict[str, BucketState] = {}
        """Managed buckets whose last verification did not find them in sync, and what it found."""
        self._tally: Counter[BucketState] = Counter()
        """:attr:`_unusual` counted by state."""
        self._dropped: set[str] = set()
        self._judged: Counter[BucketState] = Counter()
        """The last pass's counts of the :data:`JUDGED_BY_PASSES` states."""
        self._listing: dict[str, str | None] | None = None
        self._managed: list[str] = []
        self._seen: set[str] = set()
        """Buckets the slice under way had a result for."""
        self._regions_seen: dict[str, str] = {}

    @property
    def rate(self) -> float:
        """Verifications a second at the steady rate: buckets / interval."""
        return len(self.schedule) / self.schedule.interval

    # -- a pass over the account ----------------------------------------------------------

    def pass_begins(self) -> None:
        """A pass lists the account from now on (a full cycle, or a listing pass)."""
        self._listing, self._managed = {}, []

    def listed(self, ref: BucketRef) -> None:
        """The pass's listing holds ``ref`` (each bucket once, in listing order)."""
        if self._listing is not None:
            self._listing[ref.name] = self._region(ref.region)

    def managed(self, ref: BucketRef) -> None:
        """The pass reads ``ref`` (or, a listing pass, would read it): a definition selects it."""
        if self._listing is not None:
            self._managed.append(ref.name)

    def track(self, result: BucketResult) -> None:
        """A cycle's result for one bucket (the ``on_result`` of every cycle the daemon runs)."""
        name, state = result.bucket, result.state
        if state in JUDGED_BY_PASSES:
            if state is BucketState.MISSING and self._listing is None:  # a slice read it: deleted
                self.forget(name)
            return
        self._seen.add(name)
        self._set_state(name, state)
        if result.dropped:
            self._dropped.add(name)
        elif state is not BucketState.FAILED:
            self._dropped.discard(name)

    async def run_pass(
        self, trigger: str, refs: list[ObjectRef] | None, *, read: bool, clock: Callable[[], float]
    ) -> CycleReport:
        """A pass over the account (``read``: a full cycle; else a listing pass), this verifier told
        of it as it streams; ``clock`` says when it ended (the caller's monotonic time)."""
        self.pass_begins()
        report: CycleReport | None = None
        try:
            report = await self.runner.run_cycle(trigger, self.track, refs, reads=read)
        finally:
            self.pass_ended(report, clock(), read=read)
        return report

    def pass_ended(self, report: CycleReport | None, now: float, *, read: bool) -> None:
        """The pass is over: the schedule follows what it listed. ``read``: it verified every bucket it
        manages (a full cycle) and their next verifications are spread over the interval; else (a
        listing pass) the new ones are due now. A pass cut short or failed (None: it raised) drops nothing."""
        listing, managed = self._listing or {}, self._managed
        self._listing, self._managed, self._seen = None, [], set()
        whole = report is not None and report.fatal is None and not report.interrupted
        if report is not None and whole:
            self._judged = Counter({s: report.counts[s] for s in JUDGED_BY_PASSES if report.counts[s]})
            keep = set(managed)
            for name in [n for n in self.regions if n not in listing]:
                del self.regions[name]
            for name in [n for n in self._due_names() if n not in keep]:
                self._forget(name)
        self.regions.update(listing)
        if read:
            self.schedule.spread(managed, now)
            self._last, self._credit = now, 0.0
        else:
            for name in managed:
                if self.schedule.add(name, now):
                    self._urgent.setdefault(name)

    # -- between passes -------------------------------------------------------------------

    def now(self, names: Iterable[str], now: float) -> None:
        """Verify these buckets at the next step, ahead of the others and beyond the steady rate (an
        event, a definition change): a bucket not scheduled yet (just created) joins the schedule."""
        for name in names:
            self.schedule.add(name, now + self.schedule.interval)  # a new one: verified now, then in turn
            self.regions.setdefault(name, None)  # created since the listing (an event said so)
            self._urgent.setdefault(name)

    def forget(self, name: str) -> None:
        """``name`` is gone from the account (an event said it was deleted)."""
        self._forget(name)
        self.regions.pop(name, None)

    def lag(self, now: float) -> float:
        return self.schedule.lag(now)

    def due(self, now: float) -> list[BucketRef]:
        """The buckets to verify at ``now``: those asked for now, then those due, within the rate
        since the last step."""
        elapsed = now - self._last if self._last is not None else 0.0
        self._last = now
        speed = CATCH_UP if self.schedule.lag(now) > 0 else 1.0  # behind: catch up, at twice the rate
        self._credit = min(self._credit + elapsed * self.rate * speed, max(CATCH_UP * self.tick * self.rate, 1.0))
        urgent = [n for n in self._urgent if n in self.schedule]
        self._urgent = {}
        taken = self.schedule.take_due(now, math.floor(self._credit + 1e-9))
        self._credit = max(self._credit - len(taken), 0.0)
        asked = set(urgent)
        names = urgent + [n for n in taken if n not in asked]
        return [BucketRef(name, self.regions.get(name)) for name in names]

    async def step(self, now: float) -> CycleReport | None:
        """Verify the due buckets in one cycle with the definitions last loaded (None: none was due);
        each is due again an interval later, whatever its result (a failure is reported and counted
        as in any cycle). A bucket the definitions no longer select leaves the schedule."""
        refs = self.due(now)
        if not refs:
            return None
        return await self._verify(VERIFY, refs, None, now)

    async def changed(self, trigger: str, refs: list[ObjectRef] | None, *, clock: Callable[[], float]) -> CycleReport:
        """The definitions changed (a poll saw it): load them and verify at once, in one cycle, the
        buckets whose desired state the change may affect (targeted reconcile); the others keep
        their turns. A change that cannot be narrowed (or definitions that do not load) makes it a
        full pass."""
        before = self.reconciler.loaded
        if before is None:
            return await self.run_pass(trigger, refs, read=True, clock=clock)
        try:
            loaded = await self.reconciler.loader.load(refs)
        except LakeCircleError:  # the full pass loads them again, and reports why they do not load
            return await self.run_pass(trigger, refs, read=True, clock=clock)
        names, unlisted = targets(before.definitions, loaded.definitions, self.regions, self.reconciler.tags)
        files = len(loaded.definitions.files)
        if names is None:
            log.info("definitions_changed", buckets="all", files=files)
            return await self.run_pass(trigger, refs, read=True, clock=clock)
        log.info("definitions_changed", buckets=len(names), unlisted=len(unlisted), files=files)
        if unlisted:
            # A bucket defined by name that the last listing did not hold: created since, or missing.
            # Only a listing tells; it schedules the new ones now, and the affected go with them.
            self.now(names, clock())
            return await self.run_pass(trigger, refs, read=False, clock=clock)
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
            report = await self.runner.run_cycle(trigger, self.track, None, given, refs)
        finally:
            whole = report is not None and report.fatal is None and not report.interrupted
            for ref in refs:
                if ref.name in self._seen:
                    if not self.schedule.add(ref.name, now + self.schedule.interval):  # newly selected: joins
                        self.schedule.verified(ref.name, now)
                elif whole:
                    self._forget(ref.name)  # no longer selected by any definition
                else:
                    self.schedule.released(ref.name)  # cut short (a shutdown, a bug): taken again next time
            self._seen = set()
        return report

    def picture(self) -> BucketPicture:
        """The account's buckets by state: the scheduled ones as last verified, and the last pass's
        missing, invalid and unmanaged ones."""
        counts = Counter(self._tally)
        counts[BucketState.IN_SYNC] = len(self.schedule) - len(self._unusual)
        counts.update(self._judged)
        return BucketPicture(+counts, len(self._dropped))

    # -- inside ---------------------------------------------------------------------------

    def _set_state(self, name: str, state: BucketState) -> None:
        before = self._unusual.pop(name, None)
        if before is not None:
            self._tally[before] -= 1
        if state is not BucketState.IN_SYNC:
            self._unusual[name] = state
            self._tally[state] += 1

    def _forget(self, name: str) -> None:
        self.schedule.discard(name)
        self._set_state(name, BucketState.IN_SYNC)
        self._dropped.discard(name)
        self._urgent.pop(name, None)

    def _due_names(self) -> list[str]:
        return self.schedule.names()

    def _region(self, region: str | None) -> str | None:
        """One string per region for a million buckets, not one each."""
        if region is None:
            return None
        return self._regions_seen.setdefault(region, sys.intern(region))
