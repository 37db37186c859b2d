"""What a cycle covers besides its trigger: the whole account, a slice of continuous
verification, a listing pass, or a hub's cycle with definitions loaded once for all accounts.

One value, so that a runner around the reconciler (the lease-holding
:class:`~lakecircle.engine.leased.LeasedRunner`) passes it on whole, and a new way to scope a
cycle is added here alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakecircle.engine.loader import Loaded
from lakecircle.ports import BucketRef

__all__ = ["WHOLE", "CycleScope"]


@dataclass(frozen=True, slots=True)
class CycleScope:
    """What a cycle covers, besides its trigger: one value, which a runner around the reconciler
    (:class:`~lakecircle.engine.leased.LeasedRunner`) passes on whole."""

    loaded: Loaded | None = None
    """The definitions a hub loaded once for all its accounts, or a slice was given (None: the
    cycle loads them)."""
    buckets: Sequence[BucketRef] | None = None
    """Verify only these (a slice of continuous verification, an event, a definition change), not
    every bucket the account lists; then no bucket is judged missing or unmanaged."""
    reads: bool = True
    """False: a listing pass (the account listed and judged, no bucket read)."""


WHOLE = CycleScope()
"""A whole cycle: the account listed, every bucket read."""
