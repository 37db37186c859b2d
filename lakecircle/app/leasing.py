"""Wiring of the replicas' leases (``LCC_LEASE_SECONDS`` above 0; README "Replicas").

The leases live under ``LCC_ENDPOINT``, reached through an adapter of their own beside the
service's (:meth:`~lakecircle.adapters.s3.adapter.S3Adapter.beside`: the same credentials
and endpoint, no rate limit, no slots, a small pool), so that a renewal never waits behind
the account's bucket work (a cycle under ``LCC_MAX_REQUESTS_PER_SECOND``, a throttled
gate, a hub's members' records) and comes back too late for its lease. A probe at start
checks that the server honours conditional writes (a server that ignores them would let
two replicas both win), then the daemon keeps one lease (one account) or shares the
accounts' leases among the replicas (a hub). On the way out, once the daemon's writes in
flight have finished, every lease this replica holds is released, so another replica
takes over at once; the leases' adapter is closed after that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Literal, Protocol

import anyio
import structlog

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.leases import S3LeaseStore, conditional_writes_supported
from lakecircle.adapters.s3.stores import S3EndpointStore
from lakecircle.core.accounts import Account
from lakecircle.engine.leases import Fence, LeaseKeeper, LeaseObserver
from lakecircle.engine.sharing import Sharing
from lakecircle.errors import ConfigError, LakeCircleError
from lakecircle.ports import LeaseStore
from lakecircle.settings import Settings

log = structlog.get_logger("lakecircle.app.leasing")


class LocatedLeaseStore(LeaseStore, Protocol):
    """A lease store that says where its objects are (for messages)."""

    @property
    def location(self) -> str: ...


Hold = Callable[[Account], AbstractAsyncContextManager[Fence]]
"""Holds an account's lease around its cycle (a hub's one-shot sync)."""

LEASE_CONNECTIONS: Final = 4
"""The leases' connections for one account's lease (a keeper sends one request at a time)."""

SHARING_CONNECTIONS: Final = 16
"""The leases' connections for a hub: a keeper per listed account, all started together (and a
listing of the peers' heartbeats with reads of those that changed), so their renewals come in
bursts that must all be answered within a third of the lease (1,000 accounts at 30 ms a request:
2 s through 16 connections, 8 s through 4)."""


@asynccontextmanager
async def open_lease_store(
    settings: Settings, adapter: S3Adapter, *, connections: int = LEASE_CONNECTIONS
) -> AsyncIterator[S3LeaseStore]:
    """The leases' store under ``LCC_ENDPOINT``, through an adapter of its own beside
    ``adapter`` (``connections``: its pool), once its server is known to honour conditional
    writes; a ConfigError naming the server and the way out otherwise. That adapter is closed
    on the way out."""
    settings.require("endpoint")
    assert settings.endpoint is not None  # noqa: S101 -- required just above
    async with adapter.beside(connections=connections) as own:
        store = S3LeaseStore(own, settings.endpoint)
        found = await conditional_writes_supported(
            store, replica=settings.replica_id, server=store.server, location=store.location
        )
        if not found.supported:
            raise ConfigError([f"LCC_LEASE_SECONDS: {found.reason}"])
        log.info(
            "leases_on", location=store.location, replica=settings.replica_id, lease_seconds=settings.lease_seconds
        )
        yield store


def account_keeper(
    settings: Settings, store: S3LeaseStore, adapter: S3Adapter, observer: LeaseObserver | None
) -> LeaseKeeper:
    """The lease of the one account (``LCC_AWS_ACCOUNT``); a bucket write may take the adapter's
    attempt timeout, at most a third of the lease (the keeper caps it)."""
    settings.require("aws_account")
    assert settings.aws_account is not None  # noqa: S101 -- required just above
    return LeaseKeeper(
        store,
        settings.aws_account,
        settings.replica_id,
        settings.lease_seconds,
        write_timeout=adapter.attempt_timeout,
        observer=observer,
    )


def sharing(settings: Settings, store: S3LeaseStore, adapter: S3Adapter, observer: LeaseObserver | None) -> Sharing:
    """This replica's part of a hub's accounts: a keeper per account, its heartbeat, its share
    (the heartbeats listed through the leases' own adapter too)."""
    assert settings.endpoint is not None  # noqa: S101 -- the lease store needed it
    return Sharing(
        store,
        S3EndpointStore(store.adapter, settings.endpoint),
        settings.replica_id,
        settings.lease_seconds,
        write_timeout=min(adapter.attempt_timeout, settings.lease_seconds / 3),
        observer=observer,
    )


@asynccontextmanager
async def keeping(keeper: LeaseKeeper) -> AsyncIterator[LeaseKeeper]:
    """The keeper runs beside the body (the daemon); on the way out, once the body's writes
    have finished, its lease is released (bounded: a third of the lease)."""
    error: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(keeper.run)
        try:
            yield keeper
        except Exception as exc:  # noqa: BLE001 -- raised below as it came, not in the task group's ExceptionGroup
            error = exc
        finally:
            with anyio.CancelScope(shield=True):
                await keeper.release()
            group.cancel_scope.cancel()
    if error is not None:
        raise error


@asynccontextmanager
async def open_sharing(
    settings: Settings, adapter: S3Adapter, observer: LeaseObserver
) -> AsyncIterator[Sharing | None]:
    """A hub's leases among the other replicas' (None with ``LCC_LEASE_SECONDS=0``)."""
    if settings.lease_seconds <= 0:
        yield None
        return
    async with open_lease_store(settings, adapter, connections=SHARING_CONNECTIONS) as store:
        yield sharing(settings, store, adapter, observer)


@asynccontextmanager
async def hub_leases(
    settings: Settings, adapter: S3Adapter, observer: LeaseObserver | None, wait: float | None, *, dry_run: bool
) -> AsyncIterator[tuple[Sharing | None, Hold | None]]:
    """A hub's leases, through their own adapter beside the hub's ``adapter`` (which carries
    every member's records too): with an ``observer`` (the daemon), the accounts shared among
    the replicas; else (a command) each account's lease held around its cycle. (None, None)
    when leases are off or nothing is written."""
    if observer is not None:
        async with open_sharing(settings, adapter, observer) as shared:
            if shared is not None:
                yield shared, None
                return
    async with one_shot_holds(settings, adapter, wait, dry_run=dry_run) as hold:
        yield None, hold


def default_wait(settings: Settings, wait: float | None) -> float:
    """``--lease-wait``, by default two lease durations: long enough to take over from a service
    that died holding the lease."""
    return 2 * settings.lease_seconds if wait is None else wait


Writer = Literal["sync", "rollback"]
"""A one-shot command that writes under the lease."""

_WAY_OUT: dict[Writer, str] = {
    "sync": "Let the service do the sync, stop it first, or wait longer",
    "rollback": (
        "Stop the service first (scale it to 0 replicas; it would undo a rollback its definitions"
        " do not match), or wait longer"
    ),
}
"""What to do when the service holds the lease, by command."""


class LeaseHeld(LakeCircleError):
    """``sync`` could not take the account's lease: another replica holds it."""


@asynccontextmanager
async def hold_lease(settings: Settings, adapter: S3Adapter, wait: float | None) -> AsyncIterator[LeaseKeeper]:
    """The account's lease for a one-shot command that writes (``sync``); see :func:`holding`."""
    settings.require("aws_account")
    assert settings.aws_account is not None  # noqa: S101 -- required just above
    async with held_for_write(settings, adapter, settings.aws_account, dry_run=False, wait=wait) as keeper:
        assert keeper is not None  # noqa: S101 -- not a dry run
        yield keeper


@asynccontextmanager
async def held_for_write(
    settings: Settings,
    adapter: S3Adapter,
    account_id: str,
    *,
    dry_run: bool,
    wait: float | None = None,
    command: Writer = "sync",
) -> AsyncIterator[LeaseKeeper | None]:
    """An account's lease held while a command writes (``sync``, ``rollback``): None for a dry
    run or with leases off; ``adapter`` reaches ``LCC_ENDPOINT``, where the leases are."""
    if dry_run or settings.lease_seconds <= 0:
        yield None
        return
    wait = default_wait(settings, wait)
    async with (
        open_lease_store(settings, adapter) as store,
        holding(settings, store, account_id, adapter.attempt_timeout, wait, command=command) as keeper,
    ):
        yield keeper


@asynccontextmanager
async def holding(
    settings: Settings,
    store: LocatedLeaseStore,
    account_id: str,
    write_timeout: float,
    wait: float,
    *,
    command: Writer = "sync",
) -> AsyncIterator[LeaseKeeper]:
    """An account's lease, taken within ``wait`` seconds (``--lease-wait``) or a LeaseHeld naming
    its holder, so that a person's sync never races the service; released when done."""
    keeper = LeaseKeeper(store, account_id, settings.replica_id, settings.lease_seconds, write_timeout=write_timeout)
    async with keeping(keeper):
        with anyio.move_on_after(wait):
            await keeper.wait_until_writable()
        if not keeper.may_start_write() and keeper.held():
            raise LeaseHeld(
                f"account {account_id}: took its lease ({store.location}{keeper.key}), but a new holder's"
                f" first write waits (a holder before it may still be writing), longer than {wait:g} s"
                " (--lease-wait); wait longer"
            )
        if not keeper.may_start_write():
            holder = keeper.holder_seen or "another replica"
            raise LeaseHeld(
                f"account {account_id}: its lease ({store.location}{keeper.key}) is held by {holder},"
                f" which is running LakeCircle; waited {wait:g} s (--lease-wait). {_WAY_OUT[command]}"
            )
        yield keeper


@asynccontextmanager
async def one_shot_holds(
    settings: Settings, adapter: S3Adapter, wait: float | None, *, dry_run: bool
) -> AsyncIterator[Hold | None]:
    """For a hub's one-shot ``sync``: each account's lease held around its cycle (None: a dry
    run, or leases off), through one leases' adapter for them all, closed on the way out."""
    if dry_run or settings.lease_seconds <= 0:
        yield None
        return
    wait = default_wait(settings, wait)
    timeout = adapter.attempt_timeout
    async with open_lease_store(settings, adapter, connections=SHARING_CONNECTIONS) as store:

        def hold(account: Account) -> AbstractAsyncContextManager[LeaseKeeper]:
            return holding(settings, store, account.id, timeout, wait)

        yield hold
