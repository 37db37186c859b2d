"""Sharing and an account that leaves the list, keepers that stop, and heartbeats of replicas long gone."""

from __future__ import annotations

import functools

import anyio
import pytest

from lakecircle.core.lease_body import LeaseBody, decode, encode
from lakecircle.engine.sharing import Sharing
from lakecircle.testing import MemoryS3
from tests.engine.leasing import until

pytestmark = pytest.mark.anyio

D = 0.6
X = "000000000001"


async def holding(store: MemoryS3, busy: bool) -> Sharing:
    a = Sharing(store, store, "pod-a", D, write_timeout=D / 6)
    a.quiet = lambda _: not busy
    a.accounts([X])
    return a


async def released(store: MemoryS3) -> bool:
    found = await store.read(f"lease/{X}.json")
    assert found is not None
    body = decode(found.data)
    assert body is not None
    return body.released


async def test_an_account_leaving_the_list_is_not_released_under_a_running_cycle() -> None:
    store = MemoryS3()
    a = await holding(store, busy=True)  # pod-a's cycle of X runs: a write may be under way
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        await until(lambda: a.holds(X), within=4 * D)
        a.accounts([])  # X left the list (a resync) while its cycle runs
        await anyio.sleep(0.05)
        body = await released(store)
        group.cancel_scope.cancel()
    assert not body, "released at once, under a running cycle (quiet was False)"


async def test_an_account_that_left_the_list_is_given_back_for_good() -> None:
    store = MemoryS3()
    a = await holding(store, busy=False)
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        await until(lambda: a.holds(X), within=4 * D)
        with anyio.fail_after(2 * D):
            while X in a.keepers:  # the hub hands Sharing its list every hub cycle
                a.accounts([])
                await anyio.sleep(D / 20)
        given_back = await released(store)
        group.cancel_scope.cancel()
    assert given_back


class Counting:
    """pod-a's way to the shared store, counting its lease requests by key."""

    def __init__(self, store: MemoryS3) -> None:
        self.store = store
        self.calls: dict[str, int] = {}
        self.listings = 0

    def _count(self, key: str) -> None:
        self.calls[key] = self.calls.get(key, 0) + 1

    async def read(self, key):  # type: ignore[no-untyped-def]
        self._count(key)
        return await self.store.read(key)

    async def create(self, key, data):  # type: ignore[no-untyped-def]
        self._count(key)
        return await self.store.create(key, data)

    async def replace(self, key, data, etag):  # type: ignore[no-untyped-def]
        self._count(key)
        return await self.store.replace(key, data, etag)

    async def list_keys(self, prefix):  # type: ignore[no-untyped-def]
        return await self.store.list_keys(prefix)

    async def list_etags(self, prefix):  # type: ignore[no-untyped-def]
        self.listings += 1
        return await self.store.list_etags(prefix)

    async def put_bytes(self, key, data, content_type="application/json"):  # type: ignore[no-untyped-def]
        await self.store.put_bytes(key, data, content_type)

    async def get_bytes(self, key):  # type: ignore[no-untyped-def]
        return await self.store.get_bytes(key)


def seen_held_by_b(a: Sharing, account: str) -> bool:
    return a.keepers[account].holder_seen == "pod-b"


async def test_a_dropped_keeper_stops() -> None:
    store = MemoryS3()
    way = Counting(store)
    accounts = [f"{n:012d}" for n in range(1, 4)]
    other = Sharing(store, store, "pod-b", D, write_timeout=D / 6)  # holds them all: pod-a only watches
    other.accounts(accounts)
    a = Sharing(way, way, "pod-a", D, write_timeout=D / 6)
    async with anyio.create_task_group() as group:
        group.start_soon(other.run)
        await until(lambda: all(k.held() for k in other.keepers.values()), within=2 * D)
        group.start_soon(a.run)
        for n in range(6):  # the listed accounts change: each round lists one, until its keeper has read it
            listed = accounts[n % 3]
            a.accounts([listed])
            await until(functools.partial(seen_held_by_b, a, listed), within=D)
        a.accounts([])
        before, listings = dict(way.calls), way.listings
        await until(lambda: way.listings >= listings + 4, within=3 * D)  # a duration and more
        group.cancel_scope.cancel()
    still = {k: way.calls[k] - before.get(k, 0) for k in way.calls if k.startswith("lease/0")}
    assert not any(still.values()), (
        f"pod-a's keepers of accounts it no longer lists still run: {still}, keepers={list(a.keepers)}"
    )


async def test_heartbeats_of_replicas_long_gone_cost_nothing() -> None:
    """Every rollout leaves two heartbeats (pod names change); a crashed pod's is never released."""
    store = MemoryS3()
    way = Counting(store)
    for n in range(40):  # forty pods of past rollouts: released, or crashed and expired long ago
        body = LeaseBody(f"lakecircle-old{n}", 1, 1.0, 2.0, D, released=n % 2 == 0)
        store.objects[f"lease/replicas/lakecircle-old{n}.json"] = encode(body)
    a = Sharing(way, way, "pod-a", D, write_timeout=D / 6)
    a.accounts([X])
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        await until(lambda: not a.peers.watched and way.listings >= 2, within=3 * D)  # every one found free
        before, listed = dict(way.calls), way.listings
        await until(lambda: way.listings >= listed + 6, within=4 * D)  # two durations and more
        group.cancel_scope.cancel()
    old = {k: n for k, n in way.calls.items() if "lakecircle-old" in k}
    assert len(old) == 40
    assert set(old.values()) == {1}, "each old heartbeat read once"
    assert old == {k: n for k, n in before.items() if "lakecircle-old" in k}
