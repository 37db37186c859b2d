"""Many accounts from one service: every member account's reconciler, run as one cycle.

In multi-account mode (``LCC_ACCOUNTS``) a :class:`Hub` stands where a single
:class:`~lakecircle.engine.cycle.Reconciler` stands otherwise, with the same surface for the
daemon (``loader``, :meth:`Hub.run_cycle`, :meth:`Hub.drain`, ``cut_short``). One cycle of
the hub (ARCHITECTURE.md, "Many accounts"):

1. the account list is read again at start and at every resync (a poll reuses it); a list
   that cannot be read keeps the last one, since dropping every account is no answer to a
   read that failed;
2. the definitions are loaded once, for every account;
3. each account runs its own cycle, with its own store (reached through its role), retries,
   throttle gate, removal guard and records, ``accounts_at_once`` accounts at a time, each
   on its own schedule in the daemon (:mod:`~lakecircle.engine.lanes`). An account that
   cannot be reached or whose cycle raises fails alone, named with its cause;
4. a ``BucketName`` definition no account's listing holds is missing (bucket names are
   global); with an account whose buckets were not all seen, none is;
5. one report sums the accounts' (what the daemon and the summary line read); each
   account's own report goes to its observer and its records.

Members are opened once and closed when they leave the list or the hub closes. The hub
knows nothing of S3 or roles: the app hands it ``open_member``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc
import structlog

from lakecircle.clocks import WallClock
from lakecircle.core.accounts import Account
from lakecircle.core.lane_work import Work
from lakecircle.core.report import CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.cycle_scope import CycleScope
from lakecircle.engine.fleet import needs_account_tags
from lakecircle.engine.hub_report import AccountRun, AccountState, HubCycle, failed_report, summed_report
from lakecircle.engine.lanes import Request, Schedule, busy, parts
from lakecircle.engine.loader import DefinitionLoader, Loaded
from lakecircle.engine.members import MemberOpener, Members
from lakecircle.engine.results import ResultHook
from lakecircle.engine.roster import Roster
from lakecircle.errors import LakeCircleError
from lakecircle.ports import AccountSource, ObjectRef

__all__ = ["AccountRun", "AccountState", "AccountWork", "Hub", "HubObserver", "MemberOpener", "whole_cycle"]
"""``AccountRun`` and ``AccountState`` are here too: the commands and the service take them from the hub."""

if TYPE_CHECKING:
    from lakecircle.engine.leases import Fence
    from lakecircle.engine.sharing import Sharing

log = structlog.get_logger("lakecircle.engine.hub")


AccountWork = Callable[[Account, Reconciler, Request], Awaitable[CycleReport]]
"""Runs a request in an open member account (a whole cycle; with continuous verification, the
account's pass, change or slice: :mod:`~lakecircle.engine.hub_verify`)."""


async def whole_cycle(_account: Account, member: Reconciler, request: Request) -> CycleReport:
    """The request as one whole cycle of the member account."""
    return await member.run_cycle(request.trigger, request.on_result, request.refs, scope=CycleScope(request.loaded))


class HubObserver(Protocol):
    """Told of each account's cycle (metrics per account)."""

    def account_finished(self, account: Account, report: CycleReport) -> None: ...

    def accounts_seen(self, states: Mapping[str, AccountState]) -> None: ...

    def managing_none(self, why: str) -> None:
        """A hub cycle ran no account: its account list could not be read or is empty, or the
        accounts' tags that definitions need could not be read."""


class Hub:
    """Every managed account's reconciler, run as one cycle; see the module docstring."""

    def __init__(
        self,
        loader: DefinitionLoader,
        accounts: AccountSource,
        open_member: MemberOpener,
        *,
        accounts_at_once: int = 4,
        only: frozenset[str] | None = None,
        dry_run: bool = False,
        clock: WallClock = time.time,
        observer: HubObserver | None = None,
    ) -> None:
        self.loader = loader
        """The definition loader (public: the daemon polls and refetches through it)."""
        self.source = accounts
        self.only = only
        """``--account``: the accounts this run may manage (None: every listed account)."""
        self.dry_run = dry_run
        self.clock = clock
        self.observer = observer
        self.roster = Roster(accounts, clock)
        self.runs: dict[str, AccountRun] = {}
        """Each listed account's part of the last cycle, by ID."""
        self.members = Members(open_member)
        self.schedule = Schedule(self._run_account, accounts_at_once)
        self._lanes = self.schedule.lanes
        self._generation = 0
        self._why_none: str | None = None
        self._draining = False
        self._cut_short: CycleReport | None = None
        self.sharing: Sharing | None = None
        """This replica's leases among the others' (:meth:`share`; None: leases off)."""
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._last: Request | None = None
        """The last hub cycle's request: an account this replica comes to hold runs it at once."""
        self.hold: Callable[[Account], AbstractAsyncContextManager[Fence]] | None = None
        """A one-shot sync's hold of each account's lease around its cycle (LeaseHeld: it fails)."""
        self.work: AccountWork = whole_cycle  # how a request runs in a member (continuous verification's own)

    def share(self, sharing: Sharing | None) -> None:
        """Run only the accounts whose lease this replica holds (fenced; cut when lost; given back between cycles)."""
        self.sharing = sharing
        if sharing is not None:
            sharing.quiet = lambda account_id: not busy(self._lanes, account_id)
            sharing.lost = lambda account_id: self._scopes[account_id].cancel() if account_id in self._scopes else None
            sharing.gained = self._gained

    @property
    def accounts(self) -> tuple[Account, ...]:
        """The accounts listed last (kept when a later read fails)."""
        return self.roster.accounts

    # -- the daemon's surface ------------------------------------------------------------

    def drain(self) -> None:
        """Start no new work in any account; in-flight writes finish."""
        if not self._draining:
            self._draining = True
            self.schedule.drained()
            if self.sharing is not None:
                self.sharing.stop_acquiring()  # the leases others give back in a rollout go to replicas that stay
        for member in self.members.reconcilers():
            member.drain()

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def cut_short(self) -> CycleReport | None:
        return self._cut_short

    async def aclose(self) -> None:
        """Close every member (their clients and credentials)."""
        await self.members.close_all()

    async def run_cycle(
        self,
        trigger: str = Trigger.MANUAL,
        on_result: ResultHook | None = None,
        refs: list[ObjectRef] | None = None,
        *,
        work: Work = Work.CYCLE,
    ) -> CycleReport:
        """One cycle of every managed account; ``refs``: the listing a poll made; ``work``: each account's."""
        cycle_id, started = uuid.uuid4().hex[:12], self.clock()
        self._cut_short = None
        with structlog.contextvars.bound_contextvars(cycle_id=cycle_id):
            try:
                refs = refs if refs is not None else await self.loader.list_refs()
                loaded = await self.loader.load(refs)
            except LakeCircleError as exc:
                return self._report(cycle_id, trigger, started, None, fatal=str(exc))
            needs_tags = needs_account_tags(loaded.definitions)
            if self.roster.due(trigger, needs_tags):
                await self._read_accounts(needs_tags)
            why, unread = None, self.roster.unread
            if not self.accounts:
                why = f"no account to manage: {self.source.location}" + (f" ({unread})" if unread else "")
            elif needs_tags and not self.roster.with_tags:
                # AccountTags decide where definitions apply: without the tags, nothing is known.
                why = f"definitions use AccountTags, and the accounts' tags could not be read ({unread})"
            self._why_none = why
            if why is not None:
                if self.observer is not None:
                    self.observer.managing_none(why)
                return self._report(cycle_id, trigger, started, loaded, fatal=why)
            if self.sharing is not None:
                self.sharing.accounts(a.id for a in self.accounts)  # a keeper for each; shared at once
            request = self._last = Request(self._generation, trigger, on_result, refs, loaded, work)
            self._generation += 1
            theirs = self._theirs()
            mine = [a for a in self.accounts if (self.only is None or a.id in self.only) and a.id not in theirs]
            try:
                await self.schedule.offer(mine, request)
            except anyio.get_cancelled_exc_class():
                self.runs = parts(self.accounts, self._lanes, self.only, request.generation, self._theirs())
                self._cut_short = self._report(cycle_id, trigger, started, loaded, interrupted=True)
                raise
            self.runs = parts(self.accounts, self._lanes, self.only, request.generation, self._theirs())
            self._seen()
            return self._report(cycle_id, trigger, started, loaded)

    @asynccontextmanager
    async def background(self, *, wait: float, shutdown_timeout: float) -> AsyncIterator[Hub]:
        """The accounts on their own schedules (the daemon; :class:`~lakecircle.engine.lanes.Schedule`),
        with this replica's leases beside them."""
        also = self.sharing.run if self.sharing is not None else None
        async with self.schedule.background(wait, shutdown_timeout, drain=self.drain, also=also):
            yield self

    def _seen(self) -> None:
        """Tell the observer every listed account's state, as its last cycle left it."""
        if self.observer is None:
            return
        states = {
            k: run.state for k, run in parts(self.accounts, self._lanes, self.only, theirs=self._theirs()).items()
        }
        _tell_seen(self.observer, states)

    # -- the accounts -----------------------------------------------------------------------

    async def _read_accounts(self, with_tags: bool) -> None:
        """The account list again (:class:`~lakecircle.engine.roster.Roster`); members and lanes
        of accounts gone, or whose role or tags changed, closed (a running one when it ends)."""
        if not await self.roster.read(with_tags):
            return
        listed = {a.id: a for a in self.accounts}
        for account_id in self.members.stale(listed):
            if not busy(self._lanes, account_id):  # a running cycle closes it when it ends (_run_account, _member)
                await self.members.close(account_id)  # opened again when needed
        for account_id in [k for k in self._lanes if k not in listed and not busy(self._lanes, k)]:
            del self._lanes[account_id]

    async def _run_account(self, account: Account, request: Request) -> AccountRun | None:
        """One account's cycle; whatever goes wrong in it stays in it. An account that cannot
        be reached, or whose cycle raises, gets a fatal report of its own (its metrics count a
        failed cycle) naming the cause."""
        async with AsyncExitStack() as stack:
            fence, refused = await _held(self.hold, account, stack)  # before the slot: accounts wait side by side
            await stack.enter_async_context(self.schedule.slot())
            if self._draining or account.id not in {a.id for a in self.accounts}:
                return None  # no new cycle in an account that left the list
            if account.id in self._theirs():
                return None  # its lease was lost, or is being given back, while this cycle waited its turn
            started, loaded, trigger = self.clock(), request.loaded, request.trigger
            with structlog.contextvars.bound_contextvars(account=account.id):
                if refused is not None:
                    report = self._failed(trigger, started, loaded, str(refused))
                else:
                    report = await self._cycle(account, request, fence, started)
                if report.fatal is not None:
                    log.error("account_failed", role=account.role_arn, error=report.fatal)
                    await self.members.close(account.id)  # opened afresh next time: new credentials, new clients
                elif account.id not in {a.id for a in self.accounts}:
                    await self.members.close(account.id)  # it left the list during its cycle
        state = AccountState.FAILED if report.fatal is not None else AccountState.MANAGED
        opened = self.members.get(account.id)
        unlisted = opened.unlisted if opened is not None and report.fatal is None else frozenset()
        run = AccountRun(account, state, report, report.fatal, unlisted)
        listed = account.id in {a.id for a in self.accounts}
        if listed:  # a forgotten account's series stay forgotten
            _observe(self.observer, account, report)
        lane = self._lanes.get(account.id)
        if self.schedule.in_background and lane is not None and self._why_none is None and not request.slice:
            lane.last = run  # seen at once, not at the next hub cycle
            self._seen()
        return run

    async def _cycle(self, account: Account, request: Request, fence: Fence | None, started: float) -> CycleReport:
        """The request's cycle in the account, fenced by its lease (a report naming why it could not run)."""
        loaded, trigger = request.loaded, request.trigger
        scope = self._scopes[account.id] = anyio.CancelScope()  # cancelled when its lease is lost
        try:
            with scope:  # the member's opening included
                member = await self.members.open(account, draining=self._draining)
                fence = fence or _keeper(self.sharing, account.id)
                if self.sharing is not None and fence is None:
                    scope.cancel()  # the lease went while the member opened: no cycle without a fence
                member.fence = fence or member.fence
                report = await self.work(account, member, request)
            if scope.cancelled_caught:
                report = self.members.cut_short(account.id) or self._failed(trigger, started, loaded, "lease lost")
        except anyio.get_cancelled_exc_class():
            cut = self.members.cut_short(account.id)
            if cut is not None:
                _observe(self.observer, account, cut)  # what it did still counts
            raise
        except LakeCircleError as exc:
            report = self._failed(trigger, started, loaded, str(exc))  # a RoleError names the role
        except Exception:  # a bug in one account must not stop the others
            log.exception("account_crashed")
            report = self._failed(trigger, started, loaded, "internal error (logged as account_crashed)")
        finally:
            self._scopes.pop(account.id, None)
        return report

    def _failed(self, trigger: str, started: float, loaded: Loaded, why: str) -> CycleReport:
        return failed_report(HubCycle(uuid.uuid4().hex[:12], trigger, self.dry_run, started, self.clock()), loaded, why)

    # -- the report -------------------------------------------------------------------------

    def _report(
        self,
        cycle_id: str,
        trigger: str,
        started: float,
        loaded: Loaded | None,
        *,
        fatal: str | None = None,
        interrupted: bool = False,
    ) -> CycleReport:
        cycle = HubCycle(cycle_id, trigger, self.dry_run, started, self.clock())
        partial = bool(self._theirs())  # missing and the warnings need every account's buckets
        return summed_report(
            cycle, self.runs, loaded, fatal=fatal, interrupted=interrupted or self._draining, partial=partial
        )

    def _gained(self, account_id: str) -> None:
        """An account whose lease this replica took runs the last request at once, not at the next hub cycle."""
        account = next((a for a in self.accounts if a.id == account_id), None)
        if account is not None and self._last is not None and (self.only is None or account_id in self.only):
            self.schedule.start(account, self._last)

    def _theirs(self) -> frozenset[str]:
        return _theirs(self.sharing, self.accounts)


def _theirs(sharing: Sharing | None, accounts: tuple[Account, ...]) -> frozenset[str]:
    """The listed accounts another replica holds (or no one), or this one gives back (no new cycle)."""
    if sharing is None:
        return frozenset()
    return frozenset(a.id for a in accounts if not sharing.holds(a.id) or sharing.leaving(a.id))


def _tell_seen(observer: HubObserver, states: Mapping[str, AccountState]) -> None:
    try:
        observer.accounts_seen(states)
    except Exception:  # metrics must not cost the accounts their cycles
        log.exception("accounts_not_observed")


def _observe(observer: HubObserver | None, account: Account, report: CycleReport) -> None:
    """Tell the observer of an account's cycle; its failure costs no account its cycle."""
    if observer is not None:
        try:
            observer.account_finished(account, report)
        except Exception:
            log.exception("account_not_observed", account=account.id)


async def _held(
    hold: Callable[[Account], AbstractAsyncContextManager[Fence]] | None, account: Account, stack: AsyncExitStack
) -> tuple[Fence | None, LakeCircleError | None]:
    """A one-shot sync's hold of the account's lease (``Hub.hold``), kept until ``stack`` closes;
    why it could not be taken (another replica holds it), to be said as the account's failure."""
    if hold is None:
        return None, None
    try:
        return await stack.enter_async_context(hold(account)), None
    except LakeCircleError as exc:
        return None, exc


def _keeper(sharing: Sharing | None, account_id: str) -> Fence | None:
    """The account's lease keeper while this replica holds it (None: leases off, or not held)."""
    if sharing is None or not sharing.holds(account_id):
        return None
    return sharing.keepers.get(account_id)
