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

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import anyio

from lakecircle.core.accounts import Account
from lakecircle.engine.hub_report import AccountRun, AccountState
from lakecircle.engine.loader import Loaded
from lakecircle.engine.results import ResultHook
from lakecircle.ports import ObjectRef


@dataclass(frozen=True, slots=True)
class Request:
    """What a hub cycle asks of every account: one cycle with these definitions."""

    generation: int
    """The hub cycle's number (a lane's run answers the cycles up to it)."""
    trigger: str
    on_result: ResultHook | None
    refs: list[ObjectRef]
    loaded: Loaded


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
        """Hand the lane ``request``; True when the lane was idle and must now be driven."""
        self._next = (account, request)
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
                if done is not None:
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
    accounts: Iterable[Account], lanes: Mapping[str, Lane], only: frozenset[str] | None, generation: int | None = None
) -> dict[str, AccountRun]:
    """Each listed account's part, by ID: its cycle that answered hub cycle ``generation``
    (None: its last cycle), or ``running`` (still in an earlier one, or in its first), or
    ``skipped`` (``--account``); an account that a stop left unrun has none."""
    runs = {}
    for account in accounts:
        lane = lanes.get(account.id)
        if only is not None and account.id not in only:
            runs[account.id] = AccountRun(account, AccountState.SKIPPED)
        elif lane is None:
            continue
        elif lane.last is not None and (generation is None or lane.answered >= generation):
            runs[account.id] = lane.last
        elif lane.busy:
            runs[account.id] = AccountRun(account, AccountState.RUNNING, previous=lane.last)
    return runs
