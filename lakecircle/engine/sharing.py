"""This replica's part of the accounts: a lease keeper per listed account, a heartbeat, and
the decision of which leases to want (:mod:`lakecircle.core.sharing`).

Replicas find each other through S3 alone: each holds a lease of its own on
``lease/replicas/<replica>.json`` (its heartbeat, renewed as any lease). Every third of a
duration a replica lists ``lease/replicas/`` (keys and ETags: one request) and reads only the
heartbeats whose ETag it has not read yet; :class:`~lakecircle.core.sharing.Peers` says who is
live from that. A crashed pod's heartbeat, never renewed, never counts; one that shut down
released its heartbeat and drops out at once; one that stopped renewing drops out after a
duration, and counts again as soon as a listing shows its heartbeat written anew. Every replica
keeps a keeper per listed account (wanting the lease or only watching it) and decides every
third of a duration which leases to want.

A lease this replica holds beyond its share is given back only once the account's cycle has
ended (``quiet``): a release under a running cycle would let another replica write while this
one still may. Until then the account is *leaving* (:meth:`Sharing.leaving`): the hub starts no
new cycle in it, so an account whose cycles follow one another is given back too. A replica
that drains (SIGTERM) stops acquiring (:meth:`Sharing.stop_acquiring`): the leases other
replicas give back in a rollout go to replicas that stay. On the way out every lease held is
given back at once, concurrently, and the heartbeat last.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import anyio
import anyio.abc
import structlog

from lakecircle.clocks import lease_clock
from lakecircle.core.sharing import Peers, Standing, wanted
from lakecircle.engine.leases import LeaseKeeper, LeaseObserver
from lakecircle.errors import LakeCircleError
from lakecircle.ports import EndpointStore, LeaseStore

log = structlog.get_logger("lakecircle.engine.sharing")

REPLICAS = "lease/replicas/"
"""Where the replicas' heartbeats live, under ``LCC_ENDPOINT``."""


class Sharing:
    """This replica's leases among its peers; see the module docstring."""

    def __init__(
        self,
        store: LeaseStore,
        listing: EndpointStore,
        replica: str,
        duration: float,
        *,
        write_timeout: float,
        observer: LeaseObserver | None = None,
        quiet: Callable[[str], bool] = lambda _: True,
        clock: Callable[[], float] = lease_clock,
    ) -> None:
        self.store = store
        self.listing = listing
        self.replica = replica
        self.duration = duration
        self.write_timeout = write_timeout
        self.observer = observer
        self.quiet = quiet
        """Whether an account's cycle has ended (its lease may be given back)."""
        self.lost: Callable[[str], None] = lambda _: None
        """Told of an account whose lease this replica lost (its cycle is cut at once)."""
        self.gained: Callable[[str], None] = lambda _: None
        """Told of an account whose buckets this replica may now write (its cycle runs at once)."""
        self.clock = clock
        self.keepers: dict[str, LeaseKeeper] = {}
        """A keeper per listed account, by ID."""
        self.peers = Peers(replica, duration)
        """The other replicas, as their heartbeats show them."""
        self._free_since: dict[str, float] = {}
        self._listed: set[str] = set()
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._leaving: set[str] = set()
        self._acquiring = True
        self._unread: set[str] = set()
        """Peers whose heartbeat could not be read, lately (one warning a streak)."""
        self._told: set[str] = set()
        """Accounts :attr:`gained` was told of since their lease was last lost or given back."""
        self._group: anyio.abc.TaskGroup | None = None
        self._heartbeat = self._keeper(f"replicas/{replica}", wanted=True, observed=False)

    def _keeper(self, name: str, *, wanted: bool, observed: bool = True) -> LeaseKeeper:
        """A keeper of ``lease/<name>.json``: an account's lease, or a replica's heartbeat."""
        return LeaseKeeper(
            self.store,
            name,
            self.replica,
            self.duration,
            write_timeout=self.write_timeout,
            wanted=wanted,
            observer=self.observer if observed else None,
            clock=self.clock,
        )

    def holds(self, account_id: str) -> bool:
        """Whether this replica may write the account's buckets now, once :attr:`gained` was told:
        time alone opens a lease (a new holder's wait ends), and the keeper tells at its next look;
        held in between, the account would be neither another replica's nor running for the hub."""
        keeper = self.keepers.get(account_id)
        return account_id in self._told and keeper is not None and keeper.may_start_write()

    def leaving(self, account_id: str) -> bool:
        """Whether this replica is giving the account's lease back once its cycle ends: start no
        new cycle in it (the hub treats it as another replica's)."""
        return account_id in self._leaving

    def live(self) -> set[str]:
        """The replicas seen alive (this one always)."""
        return {*self.peers.live(self.clock()), self.replica}

    def stop_acquiring(self) -> None:
        """Take no lease from now on (this replica drains): the leases held stay held until
        :meth:`run` ends, those being acquired are let go."""
        self._acquiring = False
        self.decide()

    async def run(self) -> None:
        """Keep the heartbeat, watch the peers and the accounts, until cancelled; then give back
        every lease held (SIGTERM: another replica takes over at once)."""
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                self._start("", self._heartbeat)
                for account_id, keeper in self.keepers.items():
                    self._start(account_id, keeper)
                while True:
                    await self._discover()
                    self.decide()
                    await anyio.sleep(self.duration / 3)
        finally:
            self._group = None
            with anyio.CancelScope(shield=True):
                await self._give_back()

    async def _give_back(self) -> None:
        """Every lease released at once (one slow answer holds up no other), then the heartbeat, so
        the others count this replica until its accounts are free to take; all within a third of
        the duration, as each release is (what is left then runs out by itself)."""
        with anyio.move_on_after(self.duration / 3):
            async with anyio.create_task_group() as group:
                for keeper in self.keepers.values():
                    group.start_soon(keeper.release)
            await self._heartbeat.release()

    def _start(self, name: str, keeper: LeaseKeeper) -> None:
        """Run ``keeper`` in its own cancel scope (stopped by :meth:`_stop`)."""
        if self._group is None:
            return
        scope = self._scopes[name] = anyio.CancelScope()

        async def run() -> None:
            with scope:
                await keeper.run()

        self._group.start_soon(run)

    def _stop(self, name: str) -> None:
        scope = self._scopes.pop(name, None)
        if scope is not None:
            scope.cancel()

    def accounts(self, ids: Iterable[str]) -> None:
        """The listed accounts: a keeper for each new one (watching at first); an account gone
        is no longer wanted, and its lease given back once its cycle has ended (:meth:`decide`)."""
        self._listed = set(ids)
        added = sorted(self._listed - set(self.keepers))
        for account_id in added:
            keeper = self._keeper(account_id, wanted=False)
            keeper.on_lost(functools.partial(self._lost, account_id))
            keeper.on_writable(functools.partial(self._gained, account_id))
            self.keepers[account_id] = keeper
            if self.observer is not None:
                self.observer.lease_held(account_id, False)  # a series per account, held by no one yet
            self._start(account_id, keeper)
        self.decide()  # new accounts wanted at once, gone ones given back

    def _lost(self, account_id: str) -> None:
        self._told.discard(account_id)
        self.lost(account_id)

    def _gained(self, account_id: str) -> None:
        self._told.add(account_id)
        self.gained(account_id)

    def decide(self) -> None:
        """Want the leases :func:`lakecircle.core.sharing.wanted` says among the listed accounts
        (only those held once draining); give back the others once their cycles have ended, and
        stop watching accounts gone."""
        now = self.clock()
        standings = {}
        for account_id in sorted(self._listed & set(self.keepers)):
            keeper = self.keepers[account_id]
            is_free = keeper.free()
            since = self._free_since.setdefault(account_id, now) if is_free else None
            if not is_free:
                self._free_since.pop(account_id, None)
            standings[account_id] = Standing(keeper.held(), is_free, now - since if since is not None else 0.0)
        chosen = wanted(self.replica, self.live(), standings, self.duration)
        for account_id, keeper in list(self.keepers.items()):
            held = keeper.held()
            if account_id in chosen and (held or self._acquiring):
                keeper.want(True)
                self._leaving.discard(account_id)
            elif not held or self.quiet(account_id):
                keeper.want(False)  # given back at its keeper's next step: its cycle has ended
                self._leaving.discard(account_id)
                self._told.discard(account_id)
            else:
                self._leaving.add(account_id)  # given back once its cycle ends; no new one meanwhile
            if account_id not in self._listed and not held and self.quiet(account_id):
                self._stop(account_id)  # never under a running cycle, whose fence it is
                del self.keepers[account_id]
                self._free_since.pop(account_id, None)
                self._told.discard(account_id)

    async def _discover(self) -> None:
        """List the heartbeats and read the ones written since last read (:class:`Peers`)."""
        try:
            etags = await self.listing.list_etags(REPLICAS)
        except LakeCircleError as exc:
            log.warning("replicas_unlisted", error=str(exc))
            return
        heartbeats = {
            key.removeprefix(REPLICAS).removesuffix(".json"): etag
            for key, etag in etags.items()
            if key.endswith(".json") and "/" not in key.removeprefix(REPLICAS)
        }
        unread = self.peers.listed(heartbeats, self.clock())
        async with anyio.create_task_group() as group:
            for name in unread:
                group.start_soon(self._read_peer, name)

    async def _read_peer(self, name: str) -> None:
        key = f"{REPLICAS}{name}.json"
        try:
            with anyio.fail_after(self.duration / 3):
                found = await self.store.read(key)
        except (LakeCircleError, TimeoutError) as exc:
            level = "debug" if name in self._unread else "warning"  # one warning a streak
            getattr(log, level)("replica_unread", replica=name, key=key, error=str(exc) or "no answer in time")
            self._unread.add(name)
            return
        self._unread.discard(name)
        self.peers.read(name, found, self.clock())
