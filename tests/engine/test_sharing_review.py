"""Sharing and an account that leaves the list, keepers that stop, and heartbeats of replicas long gone."""

from __future__ import annotations

import anyio
import pytest

from lakecircle.core.lease_body import decode
from lakecircle.engine.sharing import Sharing
from lakecircle.testing import MemoryS3

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
        with anyio.fail_after(4 * D):
            while not a.holds(X):
                await anyio.sleep(0.01)
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
        with anyio.fail_after(4 * D):
            while not a.holds(X):
                await anyio.sleep(0.01)
        for _ in range(8):  # the hub hands Sharing its list every hub cycle
            a.accounts([])
            await anyio.sleep(D / 2)
        given_back = await released(store)
        group.cancel_scope.cancel()
    assert X not in a.keepers, list(a.keepers)
    assert given_back


class Counting:
    """pod-a's way to the shared store, counting its lease requests by key."""

    def __init__(self, store: MemoryS3) -> None:
        self.store = store
        self.calls: dict[str, int] = {}

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
        return await self.store.list_etags(prefix)

    async def put_bytes(self, key, data, content_type="application/json"):  # type: ignore[no-untyped-def]
        await self.store.put_bytes(key, data, content_type)

    async def get_bytes(self, key):  # type: ignore[no-untyped-def]
        return await self.store.get_bytes(key)


async def test_a_dropped_keeper_stops() -> None:
    store = MemoryS3()
    way = Counting(store)
    accounts = [f"{n:012d}" for n in range(1, 4)]
    other = Sharing(store, store, "pod-b", D, write_timeout=D / 6)  # holds them all: pod-a only watches
    other.accounts(accounts)
    a = Sharing(way, way, "pod-a", D, write_timeout=D / 6)
    async with anyio.create_task_group() as group:
        group.start_soon(other.run)
        await anyio.sleep(2 * D)
        group.start_soon(a.run)
        for n in range(6):  # the listed accounts change: each round lists one
            a.accounts(accounts[n % 3 : n % 3 + 1])
            await anyio.sleep(D / 2)
        a.accounts([])
        await anyio.sleep(D)
        before = dict(way.calls)
        await anyio.sleep(2 * D)
        group.cancel_scope.cancel()
    still = {k: way.calls[k] - before.get(k, 0) for k in way.calls if k.startswith("lease/0")}
    assert not any(still.values()), (
        f"pod-a's keepers of accounts it no longer lists still run: {still}, keepers={list(a.keepers)}"
    )


async def test_heartbeats_of_replicas_long_gone_cost_nothing() -> None:
    """Every rollout leaves two heartbeats (pod names change); a crashed pod's is never released."""
    from lakecircle.core.lease_body import LeaseBody, encode

    store = MemoryS3()
    for n in range(40):  # forty pods of past rollouts: released, or crashed and expired long ago
        body = LeaseBody(f"lakecircle-old{n}", 1, 1.0, 2.0, D, released=n % 2 == 0)
        store.objects[f"lease/replicas/lakecircle-old{n}.json"] = encode(body)
    a = Sharing(store, store, "pod-a", D, write_timeout=D / 6)
    a.accounts([X])
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        await anyio.sleep(2 * D)  # every old heartbeat is free by now (released, or unchanged for D)
        before = store.calls["GetObject"]
        await anyio.sleep(3 * D)
        reads = store.calls["GetObject"] - before
        peers = len(a._peers)
        group.cancel_scope.cancel()
    assert peers == 0, f"{peers} dead peers still watched"
    assert reads < 10, f"{reads} GETs in 3 durations"
