"""Continuous verification in a hub (issue 18, ``LCC_ACCOUNTS``): each member account verified at
its own steady rate, in its own lane.

:class:`HubVerifier` stands where a single account's :class:`~lakecircle.engine.verify.Verifier`
stands for the daemon (the same methods: a pass, a change, a step every tick, an event), and gives
each member account a verifier of its own, made when the account's first request runs in its open
member and dropped when the member closes (its clients, credentials and schedule go together). A
hub cycle (:meth:`Hub.run_cycle <lakecircle.engine.hub.Hub.run_cycle>`) loads the definitions once
and offers every lane its work (:class:`~lakecircle.core.lane_work.Work`):

- a full pass (start-up, SIGHUP) or a listing pass (a resync: the account listed, no bucket read);
  an account whose verifier is new (its first request, its member opened afresh after a failure)
  gets a full pass whatever was asked, as a single account does at start-up;
- a change (the definitions changed): each account's verifier computes the buckets the change may
  affect against its own index and verifies those (:meth:`Verifier.changed`), or makes it a full pass.

Every tick :meth:`HubVerifier.step` offers each account a slice of its due buckets through its lane
(never two cycles of an account at once), when this replica holds the account's lease, the lane is
idle and a bucket is due; the lane takes the buckets when it runs the slice. A slice never replaces
a pass or a change waiting in a lane (:func:`~lakecircle.core.lane_work.merged`). Each account's
reports go to its own observer with its picture of the account (the bucket gauges); the daemon
gets no report of the slices (nothing to count twice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import structlog

from lakecircle.core.accounts import Account
from lakecircle.core.lane_work import Work
from lakecircle.core.report import CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.hub import Hub, whole_cycle
from lakecircle.engine.lanes import Request
from lakecircle.engine.verify import Verifier
from lakecircle.ports import ObjectRef

__all__ = ["HubVerifier"]

log = structlog.get_logger("lakecircle.engine.hub_verify")

VerifierMade = Callable[[str], None]
"""Told of each account given a verifier (its lag gauge follows :meth:`HubVerifier.lag_of`)."""


class HubVerifier:
    """Every member account's continuous verification; see the module docstring."""

    def __init__(
        self,
        hub: Hub,
        interval: float,
        *,
        clock: Callable[[], float],
        tick: float = 1.0,
        made: VerifierMade | None = None,
    ) -> None:
        self.hub = hub
        self.interval = interval
        self.clock = clock
        """The daemon's monotonic time (when a slice runs, when a pass ends)."""
        self.tick = tick
        self.made = made
        self.verifiers: dict[str, tuple[Account, Verifier]] = {}
        """Each open member's verifier, with the account as its member was opened, by ID."""
        hub.work = self._work
        hub.members.closed = self._closed

    # -- the daemon's surface ---------------------------------------------------------------

    async def run_pass(
        self, trigger: str, refs: list[ObjectRef] | None, *, read: bool, clock: Callable[[], float]
    ) -> CycleReport:
        """A hub cycle whose accounts each run a full pass (``read``) or a listing pass."""
        return await self.hub.run_cycle(trigger, refs=refs, work=Work.FULL if read else Work.LISTING)

    async def changed(self, trigger: str, refs: list[ObjectRef] | None, *, clock: Callable[[], float]) -> CycleReport:
        """A hub cycle with the changed definitions, loaded once; each account verifies what the change may affect."""
        return await self.hub.run_cycle(trigger, refs=refs, work=Work.CHANGED)

    async def step(self, now: float) -> None:
        """Offer every account whose turn it is a slice of its due buckets, through its lane; the
        slices run beside the daemon and report to each account's observer, not to the daemon."""
        schedule = self.hub.schedule
        for account_id, (account, verifier) in list(self.verifiers.items()):
            loaded = verifier.reconciler.loaded
            if loaded is None or not self._mine(account_id) or schedule.busy(account_id) or not verifier.ready(now):
                continue
            schedule.start(account, Request(-1, Trigger.VERIFY, None, [], loaded, Work.SLICE))

    def now(self, names: Iterable[str], now: float, *, account: str | None = None) -> None:
        """Verify an account's buckets at its next slice (an event named them); an event that names
        no account, or an account this replica does not verify, is none of this hub's."""
        held = self.verifiers.get(account) if account is not None else None
        if held is None or not self._mine(held[0].id):
            log.debug("event_not_ours", account=account, buckets=sorted(names))
            return
        held[1].now(names, now)

    def ready(self, now: float) -> bool:
        """False: each account's slices are offered once a tick, through its lane."""
        return False

    def picture(self) -> None:
        """None: each account's picture goes with its own reports (the hub's sum has none)."""
        return

    def lag(self, now: float) -> float:
        """The lag of the account furthest behind."""
        return max((self.lag_of(account_id, now) for account_id in self.verifiers), default=0.0)

    def lag_of(self, account_id: str, now: float) -> float:
        """One account's lag (0 while another replica holds its lease, or before its first pass)."""
        held = self.verifiers.get(account_id)
        if held is None or not self._mine(account_id):
            return 0.0
        return held[1].lag(now)

    # -- inside -----------------------------------------------------------------------------

    def _listed_elsewhere(self, account_id: str) -> list[dict[str, str | None]]:
        """The other member accounts' last listings (bucket names are global)."""
        return [verifier.regions for k, (_, verifier) in self.verifiers.items() if k != account_id]

    def _mine(self, account_id: str) -> bool:
        """Whether this replica verifies the account now: managed here, its lease held (not being given back)."""
        hub, sharing = self.hub, self.hub.sharing
        if hub.draining or (hub.only is not None and account_id not in hub.only):
            return False
        return sharing is None or (sharing.holds(account_id) and not sharing.leaving(account_id))

    def _closed(self, account_id: str) -> None:
        self.verifiers.pop(account_id, None)

    def _verifier(self, account: Account, member: Reconciler) -> tuple[Verifier, bool]:
        """The account's verifier over its open member; True when it was made now."""
        held = self.verifiers.get(account.id)
        if held is not None and held[1].reconciler is member:
            return held[1], False
        verifier = Verifier(member, self.interval, tick=self.tick)
        self.verifiers[account.id] = (account, verifier)
        if self.made is not None:
            self.made(account.id)
        return verifier, True

    async def _work(self, account: Account, member: Reconciler, request: Request) -> CycleReport:
        """The hub's :data:`~lakecircle.engine.hub.AccountWork`: the request's work in the account
        through its verifier, its report carrying the account's picture."""
        if request.work is Work.CYCLE:
            return await whole_cycle(account, member, request)
        verifier, new = self._verifier(account, member)
        work = Work.FULL if new and not request.slice else request.work
        trigger, refs, loaded, clock = request.trigger, request.refs, request.loaded, self.clock
        if work is Work.SLICE:
            now = clock()
            report = await verifier.run_slice(verifier.due(now), now)
        elif work in (Work.FULL, Work.LISTING):
            report = await verifier.run_pass(trigger, refs, read=work is Work.FULL, clock=clock, loaded=loaded)
        else:
            listing = work is Work.CHANGED_LISTING
            report = await verifier.changed(
                trigger, refs, clock=clock, loaded=loaded, listing=listing, elsewhere=self._listed_elsewhere(account.id)
            )
        return dataclasses.replace(report, picture=verifier.picture())
