"""What LakeCircle last wrote to each bucket: in memory, else its ``current/`` record.

The drift verdict and shared ownership need a bucket's last applied write
(:class:`~lakecircle.core.drift.Applied`; ARCHITECTURE.md, "Records"). A daemon keeps
them in memory (:class:`AppliedCache`, long-lived); a bucket not in memory is looked up
in its ``current/`` record under ``LCC_ENDPOINT``. So that an account of buckets never
written costs one listing and not a GET per bucket, each cycle lists ``current/`` once,
when first needed (:class:`CurrentListing`, one per cycle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum, auto

import anyio
import structlog

from lakecircle.clocks import WallClock
from lakecircle.core.decide import others_rules
from lakecircle.core.drift import Applied
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.engine.history import History
from lakecircle.errors import LakeCircleError

log = structlog.get_logger("lakecircle.engine.cycle")


class _Listed(Enum):
    NOT_YET = auto()
    """Not listed yet this cycle."""
    DONE = auto()
    UNLISTABLE = auto()
    """The listing failed: each bucket's record is read on its own."""


class CurrentListing:
    """The buckets with a ``current/`` record, listed once in a cycle when first asked."""

    def __init__(self, history: History | None) -> None:
        self._history = history
        self._lock = anyio.Lock()
        self._state = _Listed.NOT_YET
        self._names: set[str] = set()

    async def names(self) -> set[str] | None:
        """The listed buckets; None when the listing failed (or there is no endpoint)."""
        async with self._lock:
            if self._state is _Listed.NOT_YET and self._history is not None:
                try:
                    self._names = await self._history.applied_buckets()
                    self._state = _Listed.DONE
                except LakeCircleError as exc:
                    log.warning("current_records_not_listed", error=str(exc))
                    self._state = _Listed.UNLISTABLE
            return self._names if self._state is _Listed.DONE else None


class AppliedCache:
    """The last applied write of each bucket, kept between cycles."""

    def __init__(
        self,
        history: History | None,
        *,
        clock: WallClock,
        settle_seconds: float,
    ) -> None:
        self.history = history
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.known: dict[str, Applied] = {}
        self._never_written: set[str] = set()
        """Buckets whose current/ record was looked up and does not exist."""

    def forget(self) -> None:
        """Read every bucket's record again from current/ (a lease taken anew: others may have written)."""
        self.known.clear()
        self._never_written.clear()

    async def get(self, name: str, listing: CurrentListing) -> Applied | None:
        """The bucket's last applied write: from memory, else its current/ record."""
        known = self.known.get(name)
        if known is not None or name in self._never_written or self.history is None:
            return known
        listed = await listing.names()
        if listed is not None and name not in listed:
            self._never_written.add(name)
            return None
        try:
            loaded = await self.history.load_applied(name)
        except LakeCircleError as exc:
            log.warning("current_record_unreadable", bucket=name, error=str(exc))
            loaded = None
        if loaded is None:
            self._never_written.add(name)
            return None
        if loaded.confirmed and self.clock() - loaded.at < self.settle_seconds:
            # Written by another process moments ago: no read of this one has confirmed it.
            loaded = dataclasses.replace(loaded, confirmed=False)
        self.known[name] = loaded
        return loaded

    async def others_rules(
        self, name: str, listing: CurrentListing, config: LifecycleConfig, *, shared: bool, live: LifecycleConfig
    ) -> Callable[[Rule], bool] | None:
        """In a shared bucket with live rules its definitions do not name: those to leave
        alone, the rules LakeCircle's last write did not own (None: leave none)."""
        named = {r.id for r in config.rules}
        if not shared or all(r.id in named for r in live.rules):
            return None
        last = await self.get(name, listing)
        return others_rules(last.owned if last is not None else None)

    def confirm(self, name: str) -> None:
        """The bucket was read holding what LakeCircle last wrote to it."""
        known = self.known.get(name)
        if known is not None and not known.confirmed:
            self.known[name] = dataclasses.replace(known, confirmed=True)

    def confirmed(self, name: str, applied: Applied) -> Applied:
        """``applied``, now confirmed (the server holds all it can of it), remembered."""
        self.known[name] = applied = dataclasses.replace(applied, confirmed=True)
        return applied

    def remember(self, name: str, applied: Applied) -> None:
        """LakeCircle just wrote ``applied`` to the bucket."""
        self.known[name] = applied
        self._never_written.discard(name)
