"""The bucket writes under way under one lease (:mod:`lakecircle.engine.leases`): a release is
*settled*, and its next holder writes at once, only when none of them may still apply."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Flights"]


class Flights:
    """The bucket writes under way under one lease, and until when one left unanswered may still
    apply: a release is *settled* (the next holder writes at once) only when none may.

    One left unanswered is counted as in flight until ``linger`` after it started: two write
    timeouts and the margin, what a takeover gives it (it started with at least one timeout and the
    margin left, and the new holder waits one more)."""

    def __init__(self, clock: Callable[[], float], linger: float) -> None:
        self._clock = clock
        self._linger = linger
        self._under_way = 0
        self._until = -math.inf

    @contextmanager
    def writing(self) -> Iterator[Callable[[], None]]:
        started, answered = self._clock(), False

        def answer() -> None:
            nonlocal answered
            answered = True

        self._under_way += 1
        try:
            yield answer
        finally:
            self._under_way -= 1
            if not answered:
                self._until = max(self._until, started + self._linger)

    def settled(self) -> bool:
        return self._under_way == 0 and self._clock() >= self._until
