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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Final, Protocol

import anyio
import anyio.abc
import structlog

from lakecircle.clocks import WallClock
from lakecircle.core.accounts import Account
from lakecircle.core.report import CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.fleet import needs_account_tags
from lakecircle.engine.hub_report import AccountRun, AccountState, HubCycle, failed_report, summed_report
from lakecircle.engine.lanes import Lane, Request, Slot, busy, parts
from lakecircle.engine.loader import DefinitionLoader, Loaded
from lakecircle.engine.results import ResultHook
from lakecircle.errors import LakeCircleError
from lakecircle.ports import AccountSource, ObjectRef

__all__ = ["AccountRun", "AccountState", "Hub", "HubObserver", "MemberOpener"]
"""``AccountRun`` and ``AccountState`` are here too: the commands and the service take them from the hub."""

log = structlog.get_logger("lakecircle.engine.hub")

READ_BACKOFF_FIRST: Final = 60.0
READ_BACKOFF_MAX: Final = 900.0
"""Seconds before a poll's cycle reads an account list that failed again: doubling, at most this."""

MemberOpener = Callable[[Account], AbstractAsyncContextManager[Reconciler]]
"""Builds a member account's reconciler (its store through its role, its records under
``accounts/<id>/``); raises LakeCircleError when the account cannot be reached."""


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
        self.open_member = open_member
        self.accounts_at_once = max(1, accounts_at_once)
        self._limiter: anyio.CapacityLimiter | None = None
        """``accounts_at_once``, over every hub cycle's accounts (made in the event loop)."""
        self.only = only
        """``--account``: the accounts this run may manage (None: every listed account)."""
        self.dry_run = dry_run
        self.clock = clock
        self.observer = observer
        self.accounts: tuple[Account, ...] = ()
        """The accounts listed last (kept when a later read fails)."""
        self.runs: dict[str, AccountRun] = {}
        """Each listed account's part of the last cycle, by ID."""
        self.unread: str | None = None
        """Why the account list could not be read last time (None: it was read)."""
        self._members: dict[str, tuple[Account, Reconciler, AsyncExitStack]] = {}
        self._lanes: dict[str, Lane] = {}
        self._generation = 0
        self._group: anyio.abc.TaskGroup | None = None
        """Where the accounts' cycles run in the background (:meth:`background`); None: each
        hub cycle waits for every account."""
        self._wait = 0.0
        self._settling: anyio.CancelScope | None = None
        self._shutdown_timeout = 0.0
        self._why_none: str | None = None
        self._draining = False
        self._drained_at: float | None = None
        self._cut_short: CycleReport | None = None
        self.problems: tuple[str, ...] = ()
        """The errors of the last account list read (an accounts file's bad entries, left out)."""
        self._with_tags = False
        """The accounts were listed with their tags (``AccountTags`` can be decided)."""
        self._failed_reads = 0
        self._retry_at = 0.0
        """After a failed read of the account list, a poll's cycle does not read it again before
        this (Unix time): a poll every 30 s would otherwise repeat ListAccounts and a tag read per
        account while the cause (a permission, throttling) stands. Resyncs and SIGHUP always read."""

    # -- the daemon's surface ------------------------------------------------------------

    def drain(self) -> None:
        """Start no new work in any account; in-flight writes finish."""
        if not self._draining:
            self._draining, self._drained_at = True, time.monotonic()
            if self._settling is not None:  # a stop while waiting for the accounts (--cycles)
                self._settling.deadline = anyio.current_time() + self._shutdown_timeout
        for _, member, _ in self._members.values():
            member.drain()

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def cut_short(self) -> CycleReport | None:
        return self._cut_short

    async def aclose(self) -> None:
        """Close every member (their clients and credentials)."""
        for account_id in list(self._members):
            await self._close(account_id)

    async def run_cycle(
        self, trigger: str = Trigger.MANUAL, on_result: ResultHook | None = None, refs: list[ObjectRef] | None = None
    ) -> CycleReport:
        """One cycle of every managed account; ``refs``: the definition listing a poll made."""
        cycle_id, started = uuid.uuid4().hex[:12], self.clock()
        self._cut_short = None
        with structlog.contextvars.bound_contextvars(cycle_id=cycle_id):
            try:
                refs = refs if refs is not None else await self.loader.list_refs()
                loaded = await self.loader.load(refs)
            except LakeCircleError as exc:
                return self._report(cycle_id, trigger, started, None, fatal=str(exc))
            needs_tags = needs_account_tags(loaded.definitions)
            wanted = trigger != Trigger.POLL or not self.accounts or (needs_tags and not self._with_tags)
            if wanted and (trigger != Trigger.POLL or self.clock() >= self._retry_at):
                await self._read_accounts(needs_tags)
            why = None
            if not self.accounts:
                why = f"no account to manage: {self.source.location}" + (f" ({self.unread})" if self.unread else "")
            elif needs_tags and not self._with_tags:
                # AccountTags decide where definitions apply: without the tags, nothing is known.
                why = f"definitions use AccountTags, and the accounts' tags could not be read ({self.unread})"
            self._why_none = why
            if why is not None:
                if self.observer is not None:
                    self.observer.managing_none(why)
                return self._report(cycle_id, trigger, started, loaded, fatal=why)
            request = Request(self._generation, trigger, on_result, refs, loaded)
            self._generation += 1
            try:
                await self._offer(request)
            except anyio.get_cancelled_exc_class():
                self.runs = self._runs(request)
                self._cut_short = self._report(cycle_id, trigger, started, loaded, interrupted=True)
                raise
            self.runs = self._runs(request)
            self._seen()
            return self._report(cycle_id, trigger, started, loaded)

    @asynccontextmanager
    async def background(self, *, wait: float, shutdown_timeout: float) -> AsyncIterator[Hub]:
        """The accounts on their own schedules (the daemon; :mod:`~lakecircle.engine.lanes`): a
        hub cycle waits at most ``wait`` seconds for them. On the way out, accounts in flight
        finish (after :meth:`drain`, within ``shutdown_timeout``), then are cut short."""
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            self._group, self._wait, self._shutdown_timeout = group, wait, shutdown_timeout
            try:
                yield self
            except BaseException as exc:
                self.drain()
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
            for lane in list(self._lanes.values()):
                await lane.idle()
        self._settling = None
        busy = sorted(k for k, lane in self._lanes.items() if lane.busy)
        if busy:
            log.warning("accounts_cut_short", accounts=busy, reason="shutdown timeout")
        group.cancel_scope.cancel()

    # -- the lanes --------------------------------------------------------------------------

    async def _offer(self, request: Request) -> None:
        """Offer every managed account the request; wait for them (at most ``wait`` in the
        background), each account's cycle run by its lane."""
        offered = []
        for account in self.accounts:
            if self.only is not None and account.id not in self.only:
                continue
            lane = self._lanes.setdefault(account.id, Lane(account))
            offered.append(lane)
            if lane.offer(account, request) and self._group is not None:
                self._group.start_soon(lane.drive, self._run_account)
        if self._group is None:
            async with anyio.create_task_group() as group:
                for lane in offered:
                    if lane.busy:
                        group.start_soon(lane.drive, self._run_account)
            return
        with anyio.move_on_after(self._wait):
            for lane in offered:
                await lane.idle()

    def _runs(self, request: Request) -> dict[str, AccountRun]:
        return parts(self.accounts, self._lanes, self.only, request.generation)

    def _seen(self) -> None:
        """Tell the observer every listed account's state, as its last cycle left it."""
        if self.observer is None:
            return
        states = {k: run.state for k, run in parts(self.accounts, self._lanes, self.only).items()}
        try:
            self.observer.accounts_seen(states)
        except Exception:  # metrics must not cost the accounts their cycles
            log.exception("accounts_not_observed")

    # -- the accounts -----------------------------------------------------------------------

    async def _read_accounts(self, with_tags: bool) -> None:
        """The account list again (with the accounts' tags when definitions need them); kept as
        it was when it cannot be read."""
        try:
            found = await self.source.accounts(with_tags=with_tags)
        except LakeCircleError as exc:
            log.warning("accounts_unreadable", source=self.source.location, error=str(exc), kept=len(self.accounts))
            self._failed_reads += 1
            self._retry_at = self.clock() + min(READ_BACKOFF_MAX, READ_BACKOFF_FIRST * 2 ** (self._failed_reads - 1))
            self.unread = str(exc)
            return
        self._failed_reads, self._retry_at = 0, 0.0
        for problem in found.problems:
            log.warning("accounts_problem", source=self.source.location, problem=str(problem))
        self.problems = tuple(str(p) for p in found.problems if p.is_error)
        if not found.readable:
            log.warning("accounts_unreadable", source=self.source.location, kept=len(self.accounts))
            self.unread = "; ".join(str(p) for p in found.problems) or "unreadable"
            return
        self.unread = None
        self._with_tags = with_tags
        accounts = found.accounts
        if self.problems:
            # An entry with an error is left out; if it was an account managed until now, the error
            # (a typo) must not quietly stop managing it: it stays as it was until the list is fixed.
            now = {a.id for a in accounts}
            kept = tuple(a for a in self.accounts if a.id not in now)
            for account in kept:
                log.warning(
                    "account_kept", account=account.id, reason="the account list has errors; fix them to drop it"
                )
            accounts += kept
        self.accounts = accounts
        listed = {a.id: a for a in accounts}
        for account_id in [k for k in self._members if k not in listed or listed[k] != self._members[k][0]]:
            if not busy(self._lanes, account_id):  # a running cycle closes it when it ends (_run_account, _member)
                await self._close(account_id)  # gone, or its role or tags changed: opened again when needed
        for account_id in [k for k in self._lanes if k not in listed and not busy(self._lanes, k)]:
            del self._lanes[account_id]
        log.info("accounts_listed", source=self.source.location, accounts=len(self.accounts))

    async def _member(self, account: Account) -> Reconciler:
        held = self._members.get(account.id)
        if held is not None and held[0] == account:
            return held[1]
        await self._close(account.id)  # its role or tags changed while its last cycle ran
        stack = AsyncExitStack()
        try:
            member = await stack.enter_async_context(self.open_member(account))
        except BaseException:
            await stack.aclose()
            raise
        if self._draining:
            member.drain()
        self._members[account.id] = (account, member, stack)
        return member

    async def _close(self, account_id: str) -> None:
        held = self._members.pop(account_id, None)
        if held is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await held[2].aclose()
                except Exception:  # a failed clean-up must not end the daemon
                    log.exception("member_not_closed", account=account_id)

    async def _run_account(self, account: Account, request: Request) -> AccountRun | None:
        """One account's cycle; whatever goes wrong in it stays in it. An account that cannot
        be reached, or whose cycle raises, gets a fatal report of its own (its metrics count a
        failed cycle) naming the cause."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.accounts_at_once)
        async with Slot(self._limiter) as slot:
            if self._draining or account.id not in {a.id for a in self.accounts}:
                return None  # no new cycle in an account that left the list
            if self._group is not None:
                self._group.start_soon(slot.give_back_after, self._wait)
            started, loaded, trigger = self.clock(), request.loaded, request.trigger
            with structlog.contextvars.bound_contextvars(account=account.id):
                try:
                    member = await self._member(account)
                    report = await member.run_cycle(trigger, request.on_result, refs=request.refs, loaded=loaded)
                except anyio.get_cancelled_exc_class():
                    held = self._members.get(account.id)
                    if held is not None and held[1].cut_short is not None:
                        self._observe(account, held[1].cut_short)  # what it did still counts
                    raise
                except LakeCircleError as exc:
                    report = self._failed(trigger, started, loaded, str(exc))  # a RoleError names the role
                except Exception:  # a bug in one account must not stop the others
                    log.exception("account_crashed")
                    report = self._failed(trigger, started, loaded, "internal error (logged as account_crashed)")
                if report.fatal is not None:
                    log.error("account_failed", role=account.role_arn, error=report.fatal)
                    await self._close(account.id)  # opened afresh next time: new credentials, new clients
                elif account.id not in {a.id for a in self.accounts}:
                    await self._close(account.id)  # it left the list during its cycle
        state = AccountState.FAILED if report.fatal is not None else AccountState.MANAGED
        held = self._members.get(account.id)
        unlisted = held[1].unlisted if held is not None and report.fatal is None else frozenset()
        run = AccountRun(account, state, report, report.fatal, unlisted)
        listed = account.id in {a.id for a in self.accounts}
        if listed:  # a forgotten account's series stay forgotten
            self._observe(account, report)
        lane = self._lanes.get(account.id)
        if self._group is not None and lane is not None and self._why_none is None:
            lane.last = run  # seen at once, not at the next hub cycle
            self._seen()
        return run

    def _observe(self, account: Account, report: CycleReport) -> None:
        if self.observer is not None:
            try:
                self.observer.account_finished(account, report)
            except Exception:  # metrics must not cost the other accounts their cycle
                log.exception("account_not_observed", account=account.id)

    def _failed(self, trigger: str, started: float, loaded: Loaded, why: str) -> CycleReport:
        """The report of an account whose cycle could not run."""
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
        return summed_report(cycle, self.runs, loaded, fatal=fatal, interrupted=interrupted or self._draining)
