"""The removal guard: a cycle's planned removals against ``LCC_MAX_REMOVALS``, across buckets.

The guard is a stop, not an allowance: a cycle whose planned removals exceed the limit
removes none of them (ARCHITECTURE.md, "Safety"). Writes go on while other buckets are
still being read, so a write that removes rules waits here until the cycle knows its
total (every bucket read), unless the total is already over the limit, when it goes at
once without its removals. At most ``limit`` writes ever wait (each removes a rule), each in
brief: its plan's models pickled and compressed, a few hundred bytes instead of some ten
kilobytes (a person may raise the limit to the account's size: at 100,000 buckets, 10% of them
drifted, the models of the waiting writes were a quarter of the daemon's memory).

It stays a small stateful object of the engine, one per cycle, rather than a pure
function: what it holds is the queue of writes that wait, in the order the readers
handed them over, and what it releases is fed back to the writers as they come.
"""

from __future__ import annotations

import itertools
import pickle
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace

from lakecircle.core.decide import Do, unwritten, without_removals
from lakecircle.core.report import BucketResult, Guard
from lakecircle.engine.write import PendingWrite


def held_back(pending: PendingWrite, guard: Guard) -> BucketResult | PendingWrite:
    """The write without its removals: the write of what else changed, or the bucket's
    result when nothing else did."""
    decision = without_removals(pending.decision, guard)
    if decision.do is Do.HOLD:
        return unwritten(pending.ref.name, decision)
    return replace(pending, decision=decision)


@dataclass(slots=True)
class RemovalGuard:
    limit: int | None
    """None: no limit (a person allowed a mass removal)."""
    planned: int = 0
    tripped: bool = False
    waiting: list[bytes] = field(default_factory=list)
    """At most ``limit`` writes (each removes a rule at least) until the guard trips, in brief
    (:func:`_brief`)."""
    held: Collection[str] = ()
    """Buckets whose removals an earlier cycle held for the limit (continuous verification: a
    slice verifies a few buckets, and their removals stay held until a pass judges the whole
    account's total again, or a person allows them)."""

    def admit(self, pending: PendingWrite) -> Iterator[BucketResult | PendingWrite]:
        """What may go now of a write that removes rules (the others wait), each made whole as it goes."""
        self.planned += pending.decision.removals
        if self.limit is None:
            return iter((pending,))
        if self.tripped or pending.ref.name in self.held:
            return iter((held_back(pending, Guard.BLAST_RADIUS),))
        if self.planned > self.limit:
            self.tripped = True
            waited, self.waiting = self.waiting, []
            return (held_back(w, Guard.BLAST_RADIUS) for w in itertools.chain(_whole(waited), (pending,)))
        self.waiting.append(_brief(pending))
        return iter(())

    def release(self, *, complete: bool = True) -> Iterator[BucketResult | PendingWrite]:
        """The writes that waited: as planned when every bucket was read (``complete``) and
        the total is within the limit; without their removals when the account's listing
        failed or a read failed for a passing reason, since the total is then unknown. Each is
        made whole as it goes, not all at once."""
        waited, self.waiting = _whole(self.waiting), []
        if complete:
            return waited
        return (held_back(w, Guard.UNKNOWN_TOTAL) for w in waited)


def _brief(pending: PendingWrite) -> bytes:
    """A waiting write in brief: pickled, then compressed."""
    return zlib.compress(pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _whole(briefs: list[bytes]) -> Iterator[PendingWrite]:
    """The waiting writes again, one at a time, in the order they came."""
    # Only bytes :func:`_brief` made in this process, never anything read from outside.
    return (pickle.loads(zlib.decompress(brief)) for brief in briefs)  # noqa: S301
