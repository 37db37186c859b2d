"""The two clocks LakeCircle reads, named for what they measure.

A wall clock (:func:`time.time`, Unix seconds) dates what is recorded and compared across
processes: a write's time in its ``current/`` record, a cycle's start, the settle window
of a write another process made. A monotonic clock (:func:`time.monotonic`) measures
spans inside one process: poll intervals, retry deadlines, the throttle gate's windows;
it never jumps when the system time is set. Leases need a third: :func:`lease_clock`, a
monotonic clock that keeps counting while the machine is suspended. Both are injected as plain callables, so a
test hands in a counter and runs ten minutes in a millisecond
(ARCHITECTURE.md, "Testing").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TypeAlias

WallClock: TypeAlias = Callable[[], float]
"""Unix seconds, as :func:`time.time`: for times that are recorded or compared across processes."""

MonotonicClock: TypeAlias = Callable[[], float]
"""Seconds from an arbitrary origin that never goes back, as :func:`time.monotonic`: for spans in one process."""


def _suspend_counting() -> MonotonicClock:
    """``CLOCK_BOOTTIME`` on Linux; else ``CLOCK_MONOTONIC``, which counts suspend on macOS (where
    :func:`time.monotonic` does not); else :func:`time.monotonic`."""
    for name in ("CLOCK_BOOTTIME", "CLOCK_MONOTONIC"):
        clock_id = getattr(time, name, None)
        if clock_id is not None:
            return functools.partial(time.clock_gettime, clock_id)
    return time.monotonic


lease_clock: MonotonicClock = _suspend_counting()
"""Seconds that go on while the machine is suspended (a laptop's lid closed, a VM paused): a lease
holder's deadline counts them, so a process that wakes after its lease ran out knows it did.
Linux's ``CLOCK_MONOTONIC`` (:func:`time.monotonic`) stops during suspend, so a holder reading it
would wake believing it still held a lease another replica had taken."""
