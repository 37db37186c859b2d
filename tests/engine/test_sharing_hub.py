"""A hub replica and its leases (engine/hub.py with engine/sharing.py): an account it is giving back
gets no new cycle, so it is given back even when its cycles follow one another; a draining hub
takes no lease."""

from __future__ import annotations

import anyio
import pytest

from lakecircle.core.report import Trigger
from lakecircle.engine.sharing import Sharing
from lakecircle.testing import MemoryS3
from tests.builders import fleet, rule
from tests.engine.leasing import until
from tests.engine.test_hub import A, B, Organization, member
from tests.engine.test_hub_lanes import Held
from tests.engine.test_sharing import D

pytestmark = pytest.mark.anyio


def organization() -> Organization:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")
    return org


def sharing(store: MemoryS3, name: str) -> Sharing:
    return Sharing(store, store, name, D, write_timeout=D / 6)


async def test_an_account_given_back_gets_no_new_cycle_and_goes_once_its_cycle_ends_though_hub_cycles_go_on() -> None:
    org, leases = organization(), MemoryS3()
    held = {A: Held(org, A), B: Held(org, B)}  # every cycle's reads hang: the lanes stay busy
    pod_a, pod_b = sharing(leases, "pod-a"), sharing(leases, "pod-b")
    org.hub.share(pod_a)
    async with org.hub.background(wait=0.02, shutdown_timeout=0.5), anyio.create_task_group() as group:

        async def hub_cycles() -> None:  # the daemon's polls: a request for every account it runs
            while True:
                await org.hub.run_cycle(Trigger.POLL)
                await anyio.sleep(0.02)

        group.start_soon(hub_cycles)
        await until(lambda: held[A].reads == 1 and held[B].reads == 1, within=4 * D)  # both running
        pod_b.accounts([A, B])
        group.start_soon(pod_b.run)  # a second replica: pod-a's share is now one account
        await until(lambda: pod_a.leaving(A) or pod_a.leaving(B), within=3 * D)
        going, staying = (A, B) if pod_a.leaving(A) else (B, A)
        assert pod_a.keepers[going].held(), "given back under a running cycle"
        held[going].release.set()  # its cycle ends (the requests offered since must not run)
        await until(lambda: pod_b.holds(going), within=3 * D)
        gone_reads, still = held[going].reads, pod_a.keepers[staying].held()
        group.cancel_scope.cancel()
        held[staying].release.set()
    assert gone_reads == 1, "a new cycle started in the account being given back"
    assert still


async def test_a_draining_hub_takes_no_lease() -> None:
    org, leases = organization(), MemoryS3()
    pod_a = sharing(leases, "pod-a")
    org.hub.share(pod_a)
    pod_a.accounts([A, B])
    org.hub.drain()  # SIGTERM before any lease was taken
    async with anyio.create_task_group() as group:
        group.start_soon(pod_a.run)
        await until(lambda: leases.calls["ListObjectsV2"] >= 3, within=2 * D)
        group.cancel_scope.cancel()
    assert not any(keeper.held() for keeper in pod_a.keepers.values())
    assert sorted(leases.objects) == ["lease/replicas/pod-a.json"]
