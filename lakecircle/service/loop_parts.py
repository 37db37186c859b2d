"""What the daemon's loop (:mod:`lakecircle.service.daemon`) drives and tells: the runner of its
cycles, continuous verification, its observers, and the clock it waits with."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

import anyio

from lakecircle.core.report import BucketPicture, CycleReport
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.results import ResultHook
from lakecircle.errors import LakeCircleError
from lakecircle.ports import ObjectRef

__all__ = ["Continuous", "CycleObserver", "MonotonicTimer", "PollObserver", "Runner", "Timer"]


class Timer(Protocol):
    """What the loop waits with: monotonic seconds, and a sleep of so many of them."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicTimer:
    """The real :class:`Timer`: :func:`time.monotonic` and :func:`anyio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class Runner(Protocol):
    """What the daemon runs: one account's :class:`~lakecircle.engine.cycle.Reconciler`, or
    the :class:`~lakecircle.engine.hub.Hub` of many (``LCC_ACCOUNTS``)."""

    loader: DefinitionLoader
    """Polled and refetched through by the daemon."""

    @property
    def cut_short(self) -> CycleReport | None: ...

    def drain(self) -> None: ...

    async def run_cycle(
        self, trigger: str = ..., on_result: ResultHook | None = None, refs: list[ObjectRef] | None = None
    ) -> CycleReport: ...


class Continuous(Protocol):
    """Continuous verification, as the daemon drives it: one account's
    :class:`~lakecircle.engine.verify.Verifier`, or a hub's
    :class:`~lakecircle.engine.hub_verify.HubVerifier` (each member account's, in its lane)."""

    tick: float
    """Seconds between steps."""

    async def run_pass(
        self, trigger: str, refs: list[ObjectRef] | None, *, read: bool, clock: Callable[[], float]
    ) -> CycleReport: ...

    async def changed(
        self, trigger: str, refs: list[ObjectRef] | None, *, clock: Callable[[], float]
    ) -> CycleReport: ...

    async def step(self, now: float) -> CycleReport | None:
        """Verify the buckets due (None: no report for the daemon: none was due, or a hub's
        slices report to their accounts)."""
        ...

    def now(self, names: Iterable[str], now: float, *, account: str | None = None) -> None: ...

    def picture(self) -> BucketPicture | None:
        """The account's buckets by state for the reports (None: a hub's accounts carry their own)."""
        ...

    def lag(self, now: float) -> float: ...

    def ready(self, now: float) -> bool:
        """Whether a step at ``now`` would verify a bucket (the next slice goes at once)."""
        ...


class CycleObserver(Protocol):
    def cycle_finished(self, report: CycleReport) -> None: ...

    def cycle_crashed(self, trigger: str) -> None: ...


class PollObserver(Protocol):
    """Told how each poll of the definitions went: S3 answered it, or it failed (after its retries)."""

    def poll_succeeded(self) -> None: ...

    def poll_failed(self, error: LakeCircleError) -> None: ...
