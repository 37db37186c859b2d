"""A hub replica and its leases (engine/hub.py with engine/sharing.py): an account it is giving back
gets no new cycle, so it is given back even when its cycles follow one another; a draining hub
takes no lease; an account whose lease turns writable is held for the hub only once the hub was told."""

from __future__ import annotations

import time

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


async def test_an_account_turns_held_for_the_hub_only_once_the_hub_is_told_never_by_time_alone() -> None:
    """A created lease may be written a duration after it was found missing: time alone opens it,
    and the keeper tells the hub at its next look. Held for the hub in between, the account would
    be neither another replica's nor running: left out of the hub's account states, its series
    forgotten (``lakecircle_leases_held`` gone: LakeCircleLeaseUnheld fires)."""
    org, leases = organization(), MemoryS3()
    offset = 0.0

    def clock() -> float:
        return time.monotonic() + offset

    pod_a = Sharing(leases, leases, "pod-a", D, write_timeout=D / 6, clock=clock)
    org.hub.share(pod_a)
    async with org.hub.background(wait=0.02, shutdown_timeout=0.5):
        await org.hub.run_cycle(Trigger.STARTUP)  # a keeper per account: their leases are created
        keeper, key = pod_a.keepers[A], f"lease/{A}.json"
        await until(keeper.held, within=D)
        created = leases.objects[key]
        await until(lambda: leases.objects[key] != created, within=D)  # renewed: time enough left after the jump
        hold = keeper._lease._hold  # when time alone opens it (a created lease: a duration after it was missing)
        assert hold is not None
        assert not org.hub._lanes, "written already: the keeper opened it before the jump"
        offset = hold.writable_from + 0.001 - time.monotonic()  # time alone opens the lease; no await from here
        writable = keeper.may_start_write()
        org.hub._seen()  # what any account's end, or a hub cycle, tells the observer
        states = dict(org.states)
        await until(lambda: A in org.finished, within=D)  # told at the keeper's next look: it runs
    assert writable
    assert sorted(states) == [A, B], "an account held but not yet running was left out of the hub's states"
