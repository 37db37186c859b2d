"""The account's buckets by state as continuous verification last saw each of them.

A whole-account cycle's report counts every bucket at once; continuous verification verifies a
few buckets a second, so the bucket gauges (``lakecircle_buckets``) come from a picture that each
cycle's results update. At a million buckets nearly all are in sync: only the buckets that are
not are held by name (with their state), and the buckets in sync are counted as the scheduled
ones less those. Missing, invalid and unmanaged buckets are judged by passes over the whole
account: the picture keeps the last pass's counts of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from lakecircle.core.report import BucketPicture, BucketState

__all__ = ["JUDGED_BY_PASSES", "StatePicture"]

JUDGED_BY_PASSES = (BucketState.MISSING, BucketState.INVALID, BucketState.UNMANAGED)
"""States only a pass over the whole account says; a slice carries the last pass's counts of them."""


class StatePicture:
    """Each managed bucket's last state (those not in sync by name), and the last pass's judgements."""

    def __init__(self) -> None:
        self._unusual: dict[str, BucketState] = {}
        self._tally: Counter[BucketState] = Counter()
        """:attr:`_unusual` counted by state."""
        self._dropped: set[str] = set()
        """Buckets whose last write the server did not store whole."""
        self._judged: Counter[BucketState] = Counter()

    def set(self, name: str, state: BucketState, *, dropped: bool = False) -> None:
        """``name``'s last verification found it ``state`` (``dropped``: fields its write lost; a failed
        verification says nothing of them)."""
        before = self._unusual.pop(name, None)
        if before is not None:
            self._tally[before] -= 1
        if state is not BucketState.IN_SYNC:
            self._unusual[name] = state
            self._tally[state] += 1
        if dropped:
            self._dropped.add(name)
        elif state is not BucketState.FAILED:
            self._dropped.discard(name)

    def forget(self, name: str) -> None:
        """``name`` is managed no more (gone, or no longer selected)."""
        self.set(name, BucketState.IN_SYNC)

    def judged(self, counts: Mapping[BucketState, int]) -> None:
        """A pass over the whole account counted these (its missing, invalid and unmanaged buckets)."""
        self._judged = Counter({s: counts[s] for s in JUDGED_BY_PASSES if counts.get(s)})

    def of(self, scheduled: int) -> BucketPicture:
        """The picture, ``scheduled`` buckets being managed."""
        counts = Counter(self._tally)
        counts[BucketState.IN_SYNC] = scheduled - len(self._unusual)
        counts.update(self._judged)
        return BucketPicture(+counts, len(self._dropped))
