"""Continuous verification in a hub, in fake time (engine/hub_verify.py): each member account verified
at its own steady rate through its lane, a resync that lists every account and reads none, a change
read only where it matters, no slice for an account whose lease another replica holds, a pass
waiting in a lane never replaced by a slice, an event that verifies one account's bucket at once."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from typing import Any

import anyio
import pytest

from lakecircle.core.accounts import Account
from lakecircle.core.lane_work import Work
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketState, CycleReport, Trigger
from lakecircle.engine.hub_verify import HubVerifier
from lakecircle.engine.lanes import Lane, Request
from tests.builders import definition, fleet, rule
from tests.engine.test_hub import A, B, C, Organization, member

pytestmark = pytest.mark.anyio

INTERVAL = 100.0
READ = "GetBucketLifecycleConfiguration"


class Recorded(Organization):
    """An organization whose observer keeps every account's reports, in order."""

    def __init__(self, *accounts: Account, **files: bytes) -> None:
        super().__init__(*accounts, **files)
        self.reports: dict[str, list[CycleReport]] = defaultdict(list)

    def account_finished(self, account: Account, report: CycleReport) -> None:
        super().account_finished(account, report)
        self.reports[account.id].append(report)

    def slices(self, account_id: str) -> list[CycleReport]:
        return [r for r in self.reports[account_id] if r.trigger == Trigger.VERIFY]


def three_accounts(a: int = 200, b: int = 100, c: int = 50) -> Recorded:
    org = Recorded(member(A), member(B), member(C), logs=fleet(["logs-*"], rule("expire")))
    for account_id, count in ((A, a), (B, b), (C, c)):
        for i in range(count):
            org.stores[account_id].add_bucket(f"logs-{account_id[0]}-{i:03d}")
    return org


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def verifier_of(org: Organization, clock: Clock) -> HubVerifier:
    return HubVerifier(org.hub, INTERVAL, clock=clock)


async def settled(org: Organization) -> None:
    with anyio.fail_after(5):
        for lane in list(org.hub.schedule.lanes.values()):
            await lane.idle()


async def step(org: Organization, verifier: HubVerifier, clock: Clock, t: float) -> None:
    """The daemon's tick at ``t``: offer the slices, then let the lanes run them."""
    clock.t = t
    await verifier.step(t)
    await settled(org)


def reads(org: Organization) -> dict[str, int]:
    return {k: store.calls[READ] for k, store in org.stores.items()}


async def test_each_member_account_is_verified_once_per_interval_at_its_own_steady_rate() -> None:
    org, clock = three_accounts(), Clock()
    verifier = verifier_of(org, clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        assert reads(org) == {A: 200, B: 100, C: 50}
        for second in range(1, int(INTERVAL) + 1):
            await step(org, verifier, clock, float(second))
    assert reads(org) == {A: 400, B: 200, C: 100}  # each bucket once more, over the interval
    assert {len(r.results) for r in org.slices(A)} == {2}  # 200 / 100 s, never a burst
    assert {len(r.results) for r in org.slices(B)} == {1}
    assert len(org.slices(C)) == 50  # one every other second
    assert all(org.stores[k].calls["ListBuckets"] == 1 for k in (A, B, C))
    picture = org.slices(A)[-1].picture
    assert picture is not None
    assert picture.counts[BucketState.IN_SYNC] == 200  # the whole account's, on each slice's report


async def test_drift_in_one_account_is_repaired_at_its_turn_without_a_full_cycle() -> None:
    org, clock = three_accounts(20, 20, 20), Clock()
    verifier = verifier_of(org, clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        wanted = org.stores[B].lifecycles["logs-2-010"]
        org.stores[B].lifecycles["logs-2-010"] = LifecycleConfig((rule("expire", 3),))
        for second in range(1, int(INTERVAL) + 1):
            await step(org, verifier, clock, float(second))
    assert org.stores[B].lifecycles["logs-2-010"] == wanted
    assert sum(r.writes for r in org.slices(B)) == 1


async def test_a_resync_lists_each_account_reads_none_and_verifies_a_new_bucket_at_once() -> None:
    org, clock = three_accounts(10, 10, 10), Clock()
    verifier = verifier_of(org, clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        before = reads(org)
        org.stores[C].add_bucket("logs-new")
        report = await verifier.run_pass(Trigger.RESYNC, None, read=False, clock=clock)
        await settled(org)
        assert reads(org) == before  # listed, not read
        assert all(org.stores[k].calls["ListBuckets"] == 2 for k in (A, B, C))
        assert report.counts[BucketState.IN_SYNC] == 0
        await step(org, verifier, clock, 0.5)
    assert org.stores[C].lifecycles["logs-new"].rules, "the bucket the resync found was verified at the next tick"
    assert reads(org)[C] == before[C] + 1


async def test_a_change_reads_only_the_affected_bucket_in_the_account_that_holds_it() -> None:
    org, clock = three_accounts(30, 30, 30), Clock()
    org.hub_store.objects["definition/one.toml"] = definition("one", rule("own"))
    org.stores[B].add_bucket("one")
    verifier = verifier_of(org, clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        before = {k: dict(store.calls) for k, store in org.stores.items()}
        org.hub_store.objects["definition/one.toml"] = definition("one", rule("own", 9))
        await verifier.changed(Trigger.POLL, None, clock=clock)
        await settled(org)
    made = {
        k: {op: n - before[k].get(op, 0) for op, n in store.calls.items() if n != before[k].get(op, 0)}
        for k, store in org.stores.items()
    }
    assert made[B] == {READ: 1, "PutBucketLifecycleConfiguration": 1}
    assert made[A] == {}
    assert made[C] == {}
    assert org.stores[B].lifecycles["one"] == LifecycleConfig((rule("own", 9),))


class Held:
    """A fence that always lets writes start (the lease held)."""

    account, holder, epoch, write_timeout = A, "pod", 1, 30.0

    def may_start_write(self) -> bool:
        return True

    def writing(self) -> Any:
        return nullcontext(lambda: None)


class Leases:
    """This replica's leases as the hub asks of them: ``mine`` held, the others another replica's."""

    def __init__(self, *mine: str) -> None:
        self.mine = set(mine)
        self.keepers = {k: Held() for k in mine}

    def holds(self, account_id: str) -> bool:
        return account_id in self.mine

    def leaving(self, _account_id: str) -> bool:
        return False


async def test_an_account_whose_lease_this_replica_does_not_hold_gets_no_slice() -> None:
    org, clock = three_accounts(10, 10, 10), Clock()
    verifier = verifier_of(org, clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        org.hub.sharing = Leases(A, C)  # type: ignore[assignment]  # B's lease went to another replica
        before = reads(org)
        for second in range(1, 51):
            await step(org, verifier, clock, float(second))
        assert verifier.lag_of(B, clock.t) == 0.0  # the holder's gauge says how late B is
    after = reads(org)
    assert after[B] == before[B]
    assert after[A] - before[A] == after[C] - before[C] == 5


async def test_a_pass_waiting_in_a_lane_is_never_replaced_by_a_slice() -> None:
    loaded: Any = object()
    lane = Lane(member(A))
    ran: list[Work] = []
    gate = anyio.Event()

    async def run(_account: Account, request: Request) -> None:
        ran.append(request.work)
        await gate.wait()

    def request(work: Work) -> Request:
        return Request(0, Trigger.RESYNC, None, [], loaded, work)

    async with anyio.create_task_group() as group:
        assert lane.offer(member(A), request(Work.SLICE))
        group.start_soon(lane.drive, run)
        await anyio.sleep(0.01)
        assert not lane.offer(member(A), request(Work.FULL))  # waits its turn
        assert not lane.offer(member(A), request(Work.SLICE))  # refused: the pass stays
        gate.set()
        await lane.idle()
    assert ran == [Work.SLICE, Work.FULL]


async def test_a_busy_lane_gets_no_slice_and_its_buckets_are_taken_only_when_a_slice_runs() -> None:
    org, clock = three_accounts(10, 10, 10), Clock()
    verifier = verifier_of(org, clock)
    hold = anyio.Event()
    inner = org.stores[A].get_lifecycle

    async def held(bucket: Any) -> LifecycleConfig:
        await hold.wait()
        return await inner(bucket)

    async with org.hub.background(wait=0.05, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        org.stores[A].get_lifecycle = held  # type: ignore[method-assign]
        await verifier.run_pass(Trigger.SIGNAL, None, read=True, clock=clock)  # A's pass hangs
        assert org.hub.schedule.busy(A)
        for second in range(1, 21):
            clock.t = float(second)
            await verifier.step(clock.t)
            assert org.hub.schedule.busy(A)
        assert len(org.slices(A)) == 0
        hold.set()
        await settled(org)
        await step(org, verifier, clock, 31.0)  # the pass ended at 20: its first bucket is due at 30
    assert len(org.slices(A)) == 1  # its turn, after its pass


async def test_an_event_verifies_that_accounts_bucket_at_the_next_tick_and_others_are_ignored() -> None:
    org, clock = three_accounts(1000, 10, 10), Clock()
    verifier = HubVerifier(org.hub, 10_000.0, clock=clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        org.stores[A].lifecycles["logs-1-999"] = LifecycleConfig((rule("expire", 3),))  # due last
        org.stores[B].lifecycles["logs-2-009"] = LifecycleConfig((rule("expire", 3),))
        verifier.now(["logs-1-999"], 0.5, account=A)
        verifier.now(["logs-2-009"], 0.5)  # no account: ignored
        verifier.now(["logs-2-009"], 0.5, account="999999999999")  # not managed here: ignored
        await step(org, verifier, clock, 0.5)
    assert org.stores[A].lifecycles["logs-1-999"] == LifecycleConfig((rule("expire"),))
    assert org.stores[B].lifecycles["logs-2-009"] == LifecycleConfig((rule("expire", 3),))
    assert [len(r.results) for r in org.slices(A)] == [1]


async def test_an_account_whose_member_closed_after_a_failure_gets_a_full_pass_at_the_next_resync() -> None:
    org, clock = three_accounts(5, 5, 5), Clock()
    verifier = verifier_of(org, clock)
    async with org.hub.background(wait=5, shutdown_timeout=5):
        await verifier.run_pass(Trigger.STARTUP, None, read=True, clock=clock)
        await org.hub.members.close(B)  # as after a failed cycle
        assert B not in verifier.verifiers
        before = reads(org)
        await verifier.run_pass(Trigger.RESYNC, None, read=False, clock=clock)
        await settled(org)
    after = reads(org)
    assert after[B] - before[B] == 5  # a new verifier: a full pass, as at start-up
    assert after[A] == before[A]
