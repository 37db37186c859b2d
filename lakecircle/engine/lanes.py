"""Each account on its own schedule: one cycle at a time, the newest request after it.

A :class:`Lane` runs one account's cycles, one after another, never two at once. A hub
cycle *offers* every lane its request (the definitions it loaded, its trigger): an idle lane
starts it at once; a lane still in a cycle from an earlier hub cycle keeps the request and
runs it as soon as that cycle ends, the newest request replacing an older one that was never
started (the definitions it carries are the newest). So an account whose requests crawl is
never started twice, never cancelled for being slow, and never holds up the others: the
daemon's hub cycle waits for it only so long (:class:`~lakecircle.engine.hub.Hub`'s
``wait``), reports it ``running``, and its cycle reports to its observer and its records
when it ends (ARCHITECTURE.md, "Many accounts").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import structlog

from lakecircle.core.accounts import Account
from lakecircle.core.lane_work import Work, merged
from lakecircle.engine.hub_report import AccountRun, AccountState
from lakecircle.engine.loader import Loaded
from lakecircle.engine.results import ResultHook
from lakecircle.ports import ObjectRef

log = structlog.get_logger("lakecircle.engine.hub")


@dataclass(frozen=True, slots=True)
class Request:
    """What a hub cycle asks of every account: one cycle with these definitions."""

    generation: int
    """The hub cycle's number (a lane's run answers the cycles up to it)."""
    trigger: str
    on_result: ResultHook | None
    refs: list[ObjectRef]
    loaded: Loaded
    work: Work = Work.CYCLE
    """What the account is asked to do (continuous verification: a pass, a change, a slice)."""

    @property
    def slice(self) -> bool:
        """A slice of continuous verification: no hub cycle's answer (:class:`Lane` keeps no ``last`` of it)."""
        return self.work is Work.SLICE


RunAlso = Callable[[], Coroutine[Any, Any, None]]
"""What runs beside the lanes in the background (this replica's leases)."""

RunOne = Callable[[Account, Request], Awaitable[AccountRun | None]]
"""Runs one account's cycle for a request; None when it did not run (a stop)."""


class Lane:
    """One account's cycles, one at a time; see the module docstring."""

    def __init__(self, account: Account) -> None:
        self.account = account
        """The account as listed when its last cycle started."""
        self.last: AccountRun | None = None
        """Its last finished cycle."""
        self.answered = -1
        """The generation of the request its last finished cycle ran."""
        self._next: tuple[Account, Request] | None = None
        self._busy = False
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        return self._busy

    def offer(self, account: Account, request: Request) -> bool:
        """Hand the lane ``request``; True when the lane was idle and must now be driven. A request
        waiting its turn merges with it (:func:`~lakecircle.core.lane_work.merged`): a slice never
        replaces another request, which runs with the newest definitions and covers both."""
        pending = self._next[1].work if self._next is not None else None
        work = merged(pending, request.work)
        if work is None:
            return False
        self._next = (account, request if work is request.work else dataclasses.replace(request, work=work))
        if self._busy:
            return False
        self._busy = True
        self._idle = anyio.Event()
        return True

    async def drive(self, run: RunOne) -> None:
        """Run the requests handed to the lane until none is left."""
        try:
            while self._next is not None:
                (self.account, request), self._next = self._next, None
                done = await run(self.account, request)
                if done is not None and not request.slice:
                    self.last, self.answered = done, request.generation
        finally:
            self._next = None
            self._busy = False
            self._idle.set()

    async def idle(self) -> None:
        """Wait until the lane has no cycle running and none to run."""
        await self._idle.wait()


def busy(lanes: Mapping[str, Lane], account_id: str) -> bool:
    """Whether the account's lane has a cycle running."""
    lane = lanes.get(account_id)
    return lane is not None and lane.busy


class Slot:
    """One of ``accounts_at_once``'s places, held by an account's cycle and given back when it
    ends, or earlier by :meth:`give_back_after`: an account still in its cycle after the hub's
    wait gives its place to the next account, so a few hung accounts never stop the others (the
    process-wide bound on requests under way still holds them all)."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self._limiter = limiter
        self._held = False

    async def __aenter__(self) -> Slot:
        await self._limiter.acquire_on_behalf_of(self)
        self._held = True
        return self

    async def __aexit__(self, *_: object) -> None:
        self.give_back()

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._limiter.release_on_behalf_of(self)

    async def give_back_after(self, seconds: float) -> None:
        await anyio.sleep(seconds)
        self.give_back()


def parts(
    accounts: Iterable[Account],
    lanes: Mapping[str, Lane],
    only: frozenset[str] | None,
    generation: int | None = None,
    theirs: frozenset[str] = frozenset(),
) -> dict[str, AccountRun]:
    """Each listed account's part, by ID: its cycle that answered hub cycle ``generation``
    (None: its last cycle), or ``running`` (still in an earlier one, or in its first), or
    ``skipped`` (``--account``, or another replica holds it: ``theirs``); an account that a
    stop left unrun has none."""
    runs = {}
    for account in accounts:
        lane = lanes.get(account.id)
        if (only is not None and account.id not in only) or account.id in theirs:
            runs[account.id] = AccountRun(account, AccountState.SKIPPED)
        elif lane is None:
            continue
        elif lane.last is not None and (generation is None or lane.answered >= generation):
            runs[account.id] = lane.last
        elif lane.busy:
            runs[account.id] = AccountRun(account, AccountState.RUNNING, previous=lane.last)
    return runs


class Schedule:
    """Every account's lane, and where the lanes run: in each hub cycle's own task group, which
    waits for them all (the commands), or in :meth:`background` (the daemon), where a hub cycle
    waits at most ``wait`` seconds and a slow account goes on alone."""

    def __init__(self, run_one: RunOne, accounts_at_once: int) -> None:
        self.lanes: dict[str, Lane] = {}
        self.run_one = run_one
        self.accounts_at_once = max(1, accounts_at_once)
        self._limiter: anyio.CapacityLimiter | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._wait = 0.0
        self._shutdown_timeout = 0.0
        self._settling: anyio.CancelScope | None = None
        self._drained_at: float | None = None

    @property
    def in_background(self) -> bool:
        return self._group is not None

    def busy(self, account_id: str) -> bool:
        return busy(self.lanes, account_id)

    async def offer(self, accounts: Iterable[Account], request: Request) -> None:
        """Offer each account the request; wait for them (at most ``wait`` in the background)."""
        offered = []
        for account in accounts:
            lane = self.lanes.setdefault(account.id, Lane(account))
            offered.append(lane)
            if lane.offer(account, request) and self._group is not None:
                self._group.start_soon(lane.drive, self.run_one)
        if self._group is None:
            async with anyio.create_task_group() as group:
                for lane in offered:
                    if lane.busy:
                        group.start_soon(lane.drive, self.run_one)
            return
        with anyio.move_on_after(self._wait):
            for lane in offered:
                await lane.idle()

    def start(self, account: Account, request: Request) -> None:
        """Run one account's cycle for ``request`` in the background now (its lane runs it after
        the one under way, if any); nothing outside the background."""
        if self._group is None:
            return
        lane = self.lanes.setdefault(account.id, Lane(account))
        if lane.offer(account, request):
            self._group.start_soon(lane.drive, self.run_one)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """One of ``accounts_at_once``'s places for an account's cycle (given back after the
        wait in the background)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.accounts_at_once)
        async with Slot(self._limiter) as slot:
            if self._group is not None:
                self._group.start_soon(slot.give_back_after, self._wait)
            yield slot

    def drained(self) -> None:
        """A stop: lanes in flight have ``shutdown_timeout`` from now (the background's end too)."""
        if self._drained_at is None:
            self._drained_at = time.monotonic()
            if self._settling is not None:  # a stop while waiting for the accounts (--cycles)
                self._settling.deadline = anyio.current_time() + self._shutdown_timeout

    @asynccontextmanager
    async def background(
        self, wait: float, shutdown_timeout: float, *, drain: Callable[[], None], also: RunAlso | None = None
    ) -> AsyncIterator[None]:
        """The lanes in a task group of their own for as long as the body runs (``also`` beside
        them: this replica's leases). On the way out, lanes in flight finish (after ``drain``,
        within ``shutdown_timeout`` of it), then are cut short; a body's error comes out as raised."""
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            self._group, self._wait, self._shutdown_timeout = group, wait, shutdown_timeout
            if also is not None:
                group.start_soon(also)
            try:
                yield
            except BaseException as exc:
                drain()
                if not isinstance(exc, Exception):
                    raise
                error = exc  # raised below as it came, not in the task group's ExceptionGroup
            finally:
                self._group = None
                await self._settle(group, shutdown_timeout)
        if error is not None:
            raise error

    async def _settle(self, group: anyio.abc.TaskGroup, shutdown_timeout: float) -> None:
        deadline = None if self._drained_at is None else self._drained_at + shutdown_timeout - time.monotonic()
        with anyio.move_on_after(None if deadline is None else max(deadline, 0.0)) as self._settling:
            for lane in list(self.lanes.values()):
                await lane.idle()
        self._settling = None
        cut = sorted(k for k, lane in self.lanes.items() if lane.busy)
        if cut:
            log.warning("accounts_cut_short", accounts=cut, reason="shutdown timeout")
        group.cancel_scope.cancel()
