"""When each managed bucket is verified next: continuous verification instead of bursts (issue 18).

A whole-account cycle reads every managed bucket at once; at a million buckets that is an hour of
requests in one burst, every resync. Instead each bucket is verified once per resync interval, the
verifications spread evenly over it, so the account sees a steady rate of about buckets / interval.
:class:`Schedule` holds one due time per bucket (a heap, oldest first) and answers three questions:
which buckets are due now (:meth:`Schedule.take_due`), how far behind the oldest due one is
(:meth:`Schedule.lag`, ``lakecircle_verification_lag_seconds``), and which are due at all.

- A full pass over the account (the start-up cycle, a SIGHUP, a listing of its buckets) verified
  every bucket: :meth:`Schedule.spread` sets their next due times evenly over the coming interval,
  in the order given, so the first ones listed are the first verified again.
- A bucket verified alone (its due time came, an event named it, a definition change affected it)
  is due again one interval later (:meth:`Schedule.verified`). One taken and under way is not
  taken again until it is said verified or released.
- A bucket that appears (created since the last listing) is due at once; one that disappears is
  dropped (:meth:`Schedule.add`, :meth:`Schedule.discard`).

Times are the caller's monotonic seconds; nothing here reads a clock. Memory: one entry per bucket,
its current heap slot; a bucket verified again leaves its old slot behind until it is popped (lazy
deletion), so the heap holds at most twice the buckets. Each bucket's name is the string the schedule
first saw, kept however often a later listing gives it again (a million names are held once).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

__all__ = ["CATCH_UP", "Pacer", "Schedule"]

CATCH_UP = 2.0
"""A schedule behind takes at most this many times the steady rate a tick (it drains, never bursts)."""


class Schedule:
    """Each bucket's next due time; see the module docstring."""

    def __init__(self, interval: float) -> None:
        if not math.isfinite(interval) or interval <= 0:
            raise ValueError(f"the verification interval must be a positive number of seconds, not {interval}")
        self.interval = interval
        self._due: dict[str, tuple[float, str]] = {}
        """Each bucket's current heap slot: its due time and the name first seen (the same tuple as in the heap)."""
        self._heap: list[tuple[float, str]] = []
        self._taken: set[str] = set()
        """Taken and not yet said verified or released: not taken again meanwhile."""

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, name: object) -> bool:
        return name in self._due

    def names(self) -> list[str]:
        """Every scheduled bucket."""
        return list(self._due)

    def due_at(self, name: str) -> float | None:
        """When ``name`` is due (None: not scheduled)."""
        slot = self._due.get(name)
        return None if slot is None else slot[0]

    def spread(self, names: Iterable[str], now: float) -> None:
        """``names`` were all verified at ``now`` (a full pass): due again evenly over the next
        interval, in this order; buckets not among them are left as they are."""
        listed = list(names)
        step = self.interval / max(len(listed), 1)
        for index, name in enumerate(listed, start=1):
            self._taken.discard(name)
            self._set(name, now + index * step)

    def verified(self, name: str, now: float) -> None:
        """``name`` was verified at ``now``: due again one interval later (if still scheduled)."""
        self._taken.discard(name)
        if name in self._due:
            self._set(name, now + self.interval)

    def released(self, name: str) -> None:
        """``name`` was taken but not verified (its verification could not start or failed): it may be
        taken again, still due when it was."""
        self._taken.discard(name)

    def add(self, name: str, now: float) -> bool:
        """A bucket seen for the first time is due at once; True when it was new."""
        if name in self._due:
            return False
        self._set(name, now)
        return True

    def discard(self, name: str) -> None:
        """A bucket gone (deleted, no longer managed): never due again."""
        self._due.pop(name, None)
        self._taken.discard(name)

    def take_due(self, now: float, limit: int) -> list[str]:
        """At most ``limit`` buckets due by ``now`` and not taken already, the longest overdue first.
        Each stays due until :meth:`verified` (or :meth:`released`) says what became of it."""
        taken: list[str] = []
        kept: list[tuple[float, str]] = []
        while self._heap and len(taken) < limit and self._heap[0][0] <= now:
            slot = heapq.heappop(self._heap)
            name = slot[1]
            if self._due.get(name) is not slot or name in self._taken:
                if self._due.get(name) is slot:
                    kept.append(slot)  # under way: its slot stays for when it is released
                continue  # else a stale slot: the bucket was rescheduled or dropped
            self._taken.add(name)
            taken.append(name)
            kept.append(slot)
        for slot in kept:
            heapq.heappush(self._heap, slot)
        return taken

    def first_due(self) -> float | None:
        """When the bucket due first is due (None: none is scheduled); taken ones count too."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def lag(self, now: float) -> float:
        """Seconds the oldest due bucket is behind (0 when none is overdue)."""
        self._drop_stale()
        return max(0.0, now - self._heap[0][0]) if self._heap else 0.0

    def _set(self, name: str, due: float) -> None:
        held = self._due.get(name)
        slot = (due, name if held is None else held[1])
        self._due[name] = slot
        heapq.heappush(self._heap, slot)
        if len(self._heap) > 2 * len(self._due) + 64:
            self._compact()

    def _drop_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0][1]) is not self._heap[0]:
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        self._heap = list(self._due.values())
        heapq.heapify(self._heap)


class Pacer:
    """How many verifications the steady rate allows at each step: ``rate`` a second since the last
    step (:data:`CATCH_UP` times that while the schedule is behind), and never more than
    :data:`CATCH_UP` ticks' worth however long the pause since."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self._last: float | None = None
        self._credit = 0.0

    def reset(self, now: float) -> None:
        """Every bucket was verified at ``now`` (a full pass): nothing is owed."""
        self._last, self._credit = now, 0.0

    def allowed(self, now: float, rate: float, *, behind: bool) -> float:
        """The verifications the rate allows at ``now``, taking none."""
        elapsed = now - self._last if self._last is not None else 0.0
        gained = elapsed * rate * (CATCH_UP if behind else 1.0)
        return min(self._credit + gained, max(CATCH_UP * self.tick * rate, 1.0))

    def take(self, now: float, rate: float, *, behind: bool) -> int:
        """A step at ``now``: how many buckets it may verify (say how many it did with :meth:`spent`)."""
        self._credit, self._last = self.allowed(now, rate, behind=behind), now
        return math.floor(self._credit + 1e-9)

    def spent(self, verified: int) -> None:
        self._credit = max(self._credit - verified, 0.0)
