"""The two clocks LakeCircle reads, named for what they measure.

A wall clock (:func:`time.time`, Unix seconds) dates what is recorded and compared across
processes: a write's time in its ``current/`` record, a cycle's start, the settle window
of a write another process made. A monotonic clock (:func:`time.monotonic`) measures
spans inside one process: poll intervals, retry deadlines, the throttle gate's windows;
it never jumps when the system time is set. Both are injected as plain callables, so a
test hands in a counter and runs ten minutes in a millisecond
(ARCHITECTURE.md, "Testing").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

WallClock: TypeAlias = Callable[[], float]
"""Unix seconds, as :func:`time.time`: for times that are recorded or compared across processes."""

MonotonicClock: TypeAlias = Callable[[], float]
"""Seconds from an arbitrary origin that never goes back, as :func:`time.monotonic`: for spans in one process."""
