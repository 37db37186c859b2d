"""A replica on its way out (engine/sharing.py): once draining it takes no lease the others give
back (a rollout), and at its end it gives back every lease at once, its heartbeat last."""

from __future__ import annotations

import anyio
import pytest

from lakecircle.core.lease_body import decode
from lakecircle.engine.sharing import Sharing
from lakecircle.testing import MemoryS3
from tests.engine.leasing import until
from tests.engine.test_sharing import D, held

pytestmark = pytest.mark.anyio

FOUR = [f"{n:012d}" for n in range(1, 5)]
HEARTBEAT = "lease/replicas/pod-a.json"


def sharing(store: MemoryS3, name: str) -> Sharing:
    replica = Sharing(store, store, name, D, write_timeout=D / 6)
    replica.accounts(FOUR)
    return replica


def holders(store: MemoryS3) -> dict[str, str | None]:
    """Each account's holder as its lease object says (None: released, or no object)."""
    out: dict[str, str | None] = {}
    for account in FOUR:
        body = decode(store.objects.get(f"lease/{account}.json", b""))
        out[account] = body.holder if body is not None and not body.released else None
    return out


@pytest.mark.parametrize("draining", [False, True])
async def test_a_replica_takes_the_leases_another_gives_back_unless_it_drains(draining: bool) -> None:
    store = MemoryS3()
    a, b = sharing(store, "pod-a"), sharing(store, "pod-b")
    async with anyio.create_task_group() as group:
        scope_a = anyio.CancelScope()

        async def run_a() -> None:
            with scope_a:
                await a.run()

        group.start_soon(run_a)
        group.start_soon(b.run)
        await until(lambda: len(held(a)) + len(held(b)) == 4 and bool(held(a)) and bool(held(b)), within=4 * D)
        mine = held(b)
        if draining:
            b.stop_acquiring()  # SIGTERM: pod-b drains
        scope_a.cancel()  # pod-a shuts down: it gives its leases back
        await until(lambda: set(holders(store).values()) <= {None, "pod-b"}, within=D)
        listed = store.calls["ListObjectsV2"]
        await until(lambda: all(b.keepers[x].free() or b.keepers[x].held() for x in FOUR), within=D)
        # pod-b has seen them free: it takes them at once, or never (three decisions later)
        await until(lambda: len(held(b)) == 4 or store.calls["ListObjectsV2"] >= listed + 3, within=2 * D)
        taken = held(b)
        group.cancel_scope.cancel()
    if draining:
        assert taken == mine, "a draining replica took leases another gave back"
    else:
        assert taken == set(FOUR)


class SlowReleases(MemoryS3):
    """Every write of an account's lease, once ``slow``, takes a quarter of the duration; the
    released bodies' keys in order."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = False
        self.released: list[str] = []

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        if self.slow and not key.startswith("lease/replicas/"):
            await anyio.sleep(D / 4)
        answer = await super().replace(key, data, etag)
        body = decode(data)
        if answer is not None and body is not None and body.released:
            self.released.append(key)
        return answer


async def test_every_lease_is_given_back_at_the_end_though_each_release_is_slow_the_heartbeat_last() -> None:
    store = SlowReleases()
    a = sharing(store, "pod-a")
    async with anyio.create_task_group() as group:
        group.start_soon(a.run)
        await until(lambda: len(held(a)) == 4, within=D)
        store.slow = True  # one after another, four releases would take a whole duration: a third is allowed
        group.cancel_scope.cancel()
    assert sorted(store.released[:-1]) == [f"lease/{x}.json" for x in FOUR]
    assert store.released[-1:] == [HEARTBEAT]
