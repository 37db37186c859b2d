"""Continuous verification (issue 18): each managed bucket verified once per resync interval, at a
steady rate, between the full passes.

:class:`Verifier` holds the account's :class:`~lakecircle.core.schedule.Schedule` and the region
of every bucket the last full pass listed. A full pass (:meth:`Verifier.passed`) verified every
bucket: the schedule spreads their next verifications evenly over the interval. Then every tick
:meth:`Verifier.step` takes the buckets due (at most what the steady rate allows since the last
tick; a schedule behind catches up at twice the rate, never in a burst) and runs one cycle over that slice
(:meth:`~lakecircle.engine.cycle.Reconciler.run_cycle` with ``buckets``): read, plan, write as
any cycle, with no listing. :meth:`Verifier.now` makes buckets due at once (an event, a
definition change).

It reads no clock of its own: the caller passes its monotonic time, so tests run an hour of
verification in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import structlog

from lakecircle.core.report import CycleReport
from lakecircle.core.schedule import Schedule
from lakecircle.engine.cycle import Reconciler
from lakecircle.ports import BucketRef

log = structlog.get_logger("lakecircle.engine.verify")

__all__ = ["VERIFY", "Verifier"]

VERIFY = "verify"
"""The trigger of a slice's cycle."""

CATCH_UP = 2.0
"""A schedule behind takes at most this many times the steady rate a tick (it drains, never bursts)."""


class Verifier:
    """One account's continuous verification; see the module docstring."""

    def __init__(self, reconciler: Reconciler, interval: float, *, tick: float = 1.0) -> None:
        self.reconciler = reconciler
        self.tick = tick
        """Seconds between steps, as the caller means to take them: a step after a longer pause takes
        no more than :data:`CATCH_UP` ticks' worth."""
        self.schedule = Schedule(interval)
        self.regions: dict[str, str | None] = {}
        """The region of each scheduled bucket, as the last listing said."""
        self._last: float | None = None
        self._credit = 0.0
        self._urgent: list[str] = []
        """Buckets to verify at the next step whatever the rate (:meth:`now`), oldest first."""

    @property
    def rate(self) -> float:
        """Verifications a second at the steady rate: buckets / interval."""
        return len(self.schedule) / self.schedule.interval

    def passed(self, refs: Iterable[BucketRef], now: float) -> None:
        """A full pass verified every bucket in ``refs`` (listing order) at ``now``: the schedule is
        these buckets, spread over the coming interval; buckets it no longer lists are dropped."""
        listed = list(refs)
        names = {ref.name for ref in listed}
        for gone in [name for name in self.regions if name not in names]:
            self.schedule.discard(gone)
            del self.regions[gone]
        self.regions.update((ref.name, ref.region) for ref in listed)
        self.schedule.spread((ref.name for ref in listed), now)
        self._last, self._credit = now, 0.0

    def now(self, names: Iterable[str], now: float) -> None:
        """Verify these buckets at the next step, ahead of the others and beyond the steady rate (an
        event, a definition change): a bucket not listed yet (just created) joins the schedule."""
        for name in names:
            self.schedule.add(name, now + self.schedule.interval)  # a new one: verified now, then in turn
            self.regions.setdefault(name, None)
            if name not in self._urgent:
                self._urgent.append(name)

    def lag(self, now: float) -> float:
        return self.schedule.lag(now)

    def due(self, now: float) -> list[BucketRef]:
        """The buckets to verify at ``now``: those asked for now, then those due, within the rate
        since the last step."""
        elapsed = now - self._last if self._last is not None else 0.0
        self._last = now
        speed = CATCH_UP if self.schedule.lag(now) > 0 else 1.0  # behind: catch up, at twice the rate
        self._credit = min(self._credit + elapsed * self.rate * speed, max(CATCH_UP * self.tick * self.rate, 1.0))
        urgent, self._urgent = self._urgent, []
        names = urgent + [n for n in self.schedule.take_due(now, math.floor(self._credit + 1e-9)) if n not in urgent]
        self._credit = max(self._credit - (len(names) - len(urgent)), 0.0)
        return [BucketRef(name, self.regions.get(name)) for name in names]

    async def step(self, now: float) -> CycleReport | None:
        """Verify the due buckets in one cycle (None: none was due); each is due again an interval
        later, whatever its result (a failure is reported and counted as in any cycle)."""
        refs = self.due(now)
        if not refs:
            return None
        report: CycleReport | None = None
        try:
            report = await self.reconciler.run_cycle(VERIFY, buckets=refs)
        finally:
            for ref in refs:  # cut short (a shutdown, a bug): still due, taken again next time
                self.schedule.verified(ref.name, now) if report is not None else self.schedule.released(ref.name)
        return report
