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
   throttle gate, removal guard and records, ``accounts_at_once`` accounts at a time. An
   account that cannot be reached (its role refused, its session expired) or whose cycle
   raises fails alone, named with its cause; the others go on;
4. a ``BucketName`` definition no account's listing holds is missing (bucket names are
   global: it is found in whichever account holds it); with an account that could not list
   its buckets, none is said missing;
5. one report sums the accounts' (what the daemon and the summary line read); each
   account's own report goes to its observer and its records.

Members are opened once (their clients and credentials stay between cycles) and closed
when they leave the list or the hub closes. The hub knows nothing of S3 or roles: the
app hands it ``open_member``, which builds a member's reconciler.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Final, Protocol

import anyio
import structlog

from lakecircle.clocks import WallClock
from lakecircle.core.accounts import Account
from lakecircle.core.definitions import Definitions
from lakecircle.core.report import CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.hub_report import AccountRun, AccountState, HubCycle, summed_report
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
        self._draining = False
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
        self._draining = True
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
            needs_tags = _needs_tags(loaded.definitions)
            wanted = trigger != Trigger.POLL or not self.accounts or (needs_tags and not self._with_tags)
            if wanted and (trigger != Trigger.POLL or self.clock() >= self._retry_at):
                await self._read_accounts(needs_tags)
            if not self.accounts:
                why = f" ({self.unread})" if self.unread else ""
                return self._report(
                    cycle_id, trigger, started, loaded, fatal=f"no account to manage: {self.source.location}{why}"
                )
            if needs_tags and not self._with_tags:
                # AccountTags decide where definitions apply: without the tags, nothing is known.
                why = f"definitions use AccountTags, and the accounts' tags could not be read ({self.unread})"
                return self._report(cycle_id, trigger, started, loaded, fatal=why)
            runs: dict[str, AccountRun] = {}
            limiter = anyio.CapacityLimiter(self.accounts_at_once)
            try:
                async with anyio.create_task_group() as group:
                    for account in self.accounts:
                        if self.only is not None and account.id not in self.only:
                            runs[account.id] = AccountRun(account, AccountState.SKIPPED)
                            continue
                        group.start_soon(self._run_account, account, trigger, on_result, refs, loaded, runs, limiter)
            except anyio.get_cancelled_exc_class():
                self.runs = runs
                self._cut_short = self._report(cycle_id, trigger, started, loaded, interrupted=True)
                raise
            self.runs = {a.id: runs[a.id] for a in self.accounts if a.id in runs}  # a stop leaves some unrun
            if self.observer is not None:
                self.observer.accounts_seen({k: r.state for k, r in self.runs.items()})
            return self._report(cycle_id, trigger, started, loaded)

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
            await self._close(account_id)  # gone, or its role or tags changed: opened again when needed
        log.info("accounts_listed", source=self.source.location, accounts=len(self.accounts))

    async def _member(self, account: Account) -> Reconciler:
        held = self._members.get(account.id)
        if held is not None:
            return held[1]
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
                await held[2].aclose()

    async def _run_account(  # noqa: PLR0917 -- a task's arguments, given once by run_cycle
        self,
        account: Account,
        trigger: str,
        on_result: ResultHook | None,
        refs: list[ObjectRef],
        loaded: Loaded,
        runs: dict[str, AccountRun],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        """One account's cycle; whatever goes wrong in it stays in it. An account that cannot
        be reached, or whose cycle raises, gets a fatal report of its own (its metrics count a
        failed cycle) naming the cause."""
        async with limiter:
            if self._draining:
                return
            started = self.clock()
            with structlog.contextvars.bound_contextvars(account=account.id):
                try:
                    member = await self._member(account)
                    report = await member.run_cycle(trigger, on_result, refs=refs, loaded=loaded)
                except LakeCircleError as exc:
                    report = self._failed(trigger, started, loaded, str(exc))  # a RoleError names account and role
                    await self._close(account.id)  # its credentials are opened afresh next time
                except Exception:  # a bug in one account must not stop the others
                    log.exception("account_crashed")
                    report = self._failed(trigger, started, loaded, "internal error (logged as account_crashed)")
                if report.fatal is not None:
                    log.error("account_failed", role=account.role_arn, error=report.fatal)
                    await self._close(account.id)  # opened afresh next time: new credentials, new clients
        state = AccountState.FAILED if report.fatal is not None else AccountState.MANAGED
        runs[account.id] = AccountRun(account, state, report, report.fatal)
        if self.observer is not None:
            try:
                self.observer.account_finished(account, report)
            except Exception:  # metrics must not cost the other accounts their cycle
                log.exception("account_not_observed", account=account.id)

    def _failed(self, trigger: str, started: float, loaded: Loaded, why: str) -> CycleReport:
        """The report of an account whose cycle could not run."""
        now = self.clock()
        return CycleReport(
            uuid.uuid4().hex[:12],
            trigger,
            self.dry_run,
            started,
            max(now - started, 0.0),
            (),
            loaded.definitions,
            fatal=why,
        )

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
        unlisted = {k: m[1].unlisted for k, m in self._members.items()}
        cycle = HubCycle(cycle_id, trigger, self.dry_run, started, self.clock())
        return summed_report(cycle, self.runs, unlisted, loaded, fatal=fatal, interrupted=interrupted or self._draining)


def _needs_tags(definitions: Definitions) -> bool:
    """Whether a definition's ``AccountTags`` decides where it applies."""
    briefs = definitions.desired
    return (
        any(s.scope.tags for s in definitions.selectors)
        or any(d.scope.tags for d in briefs.values())
        or any(definitions.buckets[n].scope.tags for n in definitions.buckets if n not in briefs)
    )
