"""The hub: every member account's cycle from one set of definitions, each account in
isolation, missing buckets judged across accounts (ARCHITECTURE.md, "Many accounts")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from lakecircle.core.accounts import Account, AccountList
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.problems import Problem
from lakecircle.core.report import BucketState, CycleReport, Trigger
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.hub import AccountState, Hub
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.errors import AccessDenied, LakeCircleError, Throttled
from lakecircle.service.daemon import Daemon
from lakecircle.service.loop_parts import Runner
from lakecircle.testing import MemoryS3
from tests.builders import definition, fleet, rule

pytestmark = pytest.mark.anyio

A, B, C = "111111111111", "222222222222", "333333333333"


def member(account_id: str, **tags: str) -> Account:
    return Account(account_id, f"arn:aws:iam::{account_id}:role/lakecircle", tags=tuple(sorted(tags.items())))


class Accounts:
    """An account source whose list a test changes, counting its reads."""

    location = "accounts.toml"

    def __init__(self, *accounts: Account) -> None:
        self.list = AccountList(accounts)
        self.reads = 0
        self.fail: LakeCircleError | None = None
        self.tags_fail: LakeCircleError | None = None
        self.asked_tags: list[bool] = []

    async def accounts(self, *, with_tags: bool = False) -> AccountList:
        self.reads += 1
        self.asked_tags.append(with_tags)
        if self.fail is not None or (with_tags and self.tags_fail is not None):
            raise self.fail or self.tags_fail  # type: ignore[misc]
        if with_tags:
            return self.list
        untagged = tuple(Account(a.id, a.role_arn) for a in self.list.accounts)  # as Organizations: no tags
        return AccountList(untagged, self.list.problems, self.list.readable)


class Organization:
    """Definitions in the hub's store, one MemoryS3 per member account, and the hub."""

    def __init__(self, *accounts: Account, **files: bytes) -> None:
        self.hub_store = MemoryS3()
        for name, data in files.items():
            self.hub_store.objects[f"definition/{name}.toml"] = data
        self.stores = {a.id: MemoryS3() for a in accounts}
        self.source = Accounts(*accounts)
        self.refused: dict[str, LakeCircleError] = {}
        self.crash: set[str] = set()
        self.opened: list[str] = []
        self.finished: dict[str, CycleReport] = {}
        self.states: Mapping[str, AccountState] = {}
        self.none: str | None = None
        loader = DefinitionLoader(self.hub_store)
        self.hub = Hub(loader, self.source, self.open_member, accounts_at_once=2, observer=self)

    @asynccontextmanager
    async def open_member(self, account: Account) -> AsyncIterator[Reconciler]:
        if account.id in self.refused:
            raise self.refused[account.id]
        self.opened.append(account.id)
        store = self.stores[account.id]
        if account.id in self.crash:
            store.iter_buckets = None  # type: ignore[assignment,method-assign]  # a bug: calling it raises TypeError
        yield Reconciler(store, self.hub.loader, concurrency=4, tags=store, account=account)

    def account_finished(self, account: Account, report: CycleReport) -> None:
        self.finished[account.id] = report

    def accounts_seen(self, states: Mapping[str, AccountState]) -> None:
        self.states = dict(states)
        self.none = None

    def managing_none(self, why: str) -> None:
        self.none = why

    def rules(self, account_id: str, bucket: str) -> list[str]:
        return sorted(r.id or "" for r in self.stores[account_id].lifecycles[bucket].rules)


async def test_one_set_of_definitions_reaches_every_accounts_buckets_each_in_its_own_account() -> None:
    org = Organization(
        member(A), member(B), member(C), base=fleet(["*"], rule("abort", 7)), own=definition("b-data", rule("r1"))
    )
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-data")
    org.stores[C].add_bucket("c-media", LifecycleConfig((rule("theirs", 3),)))
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert report.ok
    assert report.writes == 3
    assert org.rules(A, "a-logs") == ["abort"]
    assert org.rules(B, "b-data") == ["abort", "r1"]
    assert org.rules(C, "c-media") == ["abort", "theirs"]
    assert org.states == {A: AccountState.MANAGED, B: AccountState.MANAGED, C: AccountState.MANAGED}
    assert sorted(org.finished) == [A, B, C]
    assert org.hub_store.calls["GetObject"] == 2  # the definitions are read once, not once per account
    assert report.counts[BucketState.MISSING] == 0


async def test_an_account_that_cannot_be_reached_fails_alone_and_names_its_cause() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)), ghost=definition("ghost", rule("r1")))
    org.stores[A].add_bucket("a-logs")
    org.refused[B] = AccessDenied("not authorized to perform sts:AssumeRole", operation="AssumeRole")
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert org.rules(A, "a-logs") == ["abort"]
    assert org.states == {A: AccountState.MANAGED, B: AccountState.FAILED}
    assert "sts:AssumeRole" in (org.hub.runs[B].error or "")
    assert report.fatal is None
    assert report.counts[BucketState.MISSING] == 0  # "ghost" may be in the account that failed
    del org.refused[B]
    report = await org.hub.run_cycle(Trigger.RESYNC)
    assert org.states[B] is AccountState.MANAGED
    assert [r.bucket for r in report.results if r.state is BucketState.MISSING] == ["ghost"]


async def test_a_one_shot_syncs_accounts_wait_for_their_leases_side_by_side_not_one_slot_after_another() -> None:
    """The service holds every lease: each account fails after one --lease-wait, all in the same
    one, not in turns of ``accounts_at_once`` (2 here) that would add up to two waits."""
    D, E = "444444444444", "555555555555"
    org = Organization(member(A), member(B), member(C), member(D), member(E), base=fleet(["*"], rule("abort", 7)))
    waits: list[str] = []
    waiting = [0, 0]  # now, most at once

    @asynccontextmanager
    async def held_by_the_service(account: Account) -> AsyncIterator[Any]:
        waits.append(account.id)
        waiting[0] += 1
        waiting[1] = max(waiting)
        await anyio.sleep(0.2)  # --lease-wait
        waiting[0] -= 1
        raise LakeCircleError(f"account {account.id}: its lease is held by pod-a")
        yield  # pragma: no cover

    org.hub.hold = held_by_the_service
    report = await org.hub.run_cycle(Trigger.SYNC)
    assert waiting[1] == 5, "the accounts waited for their leases in turns of the accounts run at once"
    assert sorted(waits) == [A, B, C, D, E]
    assert set(org.states.values()) == {AccountState.FAILED}
    assert "is held by pod-a" in (org.hub.runs[C].error or "")
    assert report.writes == 0
    assert org.opened == []


async def test_a_bug_in_one_accounts_cycle_leaves_the_others_to_finish() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.crash.add(B)
    await org.hub.run_cycle(Trigger.STARTUP)
    assert org.rules(A, "a-logs") == ["abort"]
    assert org.states[B] is AccountState.FAILED


async def test_definitions_apply_in_the_accounts_their_scope_admits() -> None:
    org = Organization(
        member(A, env="prod"),
        member(B, env="dev"),
        prod=fleet(["*"], rule("keep-1y", 365), AccountTags={"env": "prod"}),
        only_a=fleet(["*"], rule("abort", 7), Accounts=[A]),
        pinned=definition("shared-name", rule("r1"), Accounts=[A]),
    )
    org.stores[A].add_bucket("a-data")
    org.stores[B].add_bucket("b-data")
    org.stores[B].add_bucket("shared-name", LifecycleConfig((rule("theirs"),)))
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert org.rules(A, "a-data") == ["abort", "keep-1y"]
    assert org.stores[B].lifecycles["b-data"].rules == ()  # no definition applies in B: unmanaged there
    assert org.rules(B, "shared-name") == ["theirs"]  # its definition is for A: never written in B
    (elsewhere,) = [r for r in report.results if r.bucket == "shared-name"]
    assert elsewhere.state is BucketState.MISSING
    assert B in (elsewhere.error or "")
    assert report.counts[BucketState.MISSING] == 1


async def test_a_bucket_name_defined_once_is_found_in_whichever_account_holds_it() -> None:
    org = Organization(member(A), member(B), member(C), own=definition("c-data", rule("r1")))
    org.stores[C].add_bucket("c-data")
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert org.rules(C, "c-data") == ["r1"]
    assert report.counts[BucketState.MISSING] == 0


async def test_the_account_list_is_read_at_start_and_each_resync_and_kept_when_a_read_fails() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    hub = org.hub
    await hub.run_cycle(Trigger.STARTUP)
    await hub.run_cycle(Trigger.POLL)
    assert org.source.reads == 1
    org.source.fail = LakeCircleError("the accounts file could not be read")
    await hub.run_cycle(Trigger.RESYNC)
    assert org.source.reads == 2
    assert sorted(org.states) == [A, B]  # the last list stands
    org.source.fail = None
    org.source.list = AccountList((member(A),))
    await hub.run_cycle(Trigger.RESYNC)
    assert sorted(org.states) == [A]
    assert sorted(org.opened) == [A, B]  # each opened once: members stay open between cycles


async def test_only_the_accounts_asked_for_run_and_nothing_is_said_missing() -> None:
    org = Organization(member(A), member(B), own=definition("b-data", rule("r1")))
    org.stores[B].add_bucket("b-data")
    org.hub.only = frozenset({A})
    report = await org.hub.run_cycle(Trigger.MANUAL)
    assert org.states == {A: AccountState.MANAGED, B: AccountState.SKIPPED}
    assert org.stores[B].lifecycles["b-data"].rules == ()
    assert report.counts[BucketState.MISSING] == 0


async def test_a_selector_is_warned_about_only_when_no_account_it_applies_in_has_a_bucket_it_selects() -> None:
    org = Organization(
        member(A), member(B), logs=fleet(["*-logs"], rule("expire", 90)), typo=fleet(["*-logz"], rule("x", 1))
    )
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-data")
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert [w.file for w in report.warnings] == ["definition/typo.toml"]


async def test_a_definition_listing_that_fails_is_the_hubs_fatal_error_and_no_account_runs(
    monkeypatch: Any,
) -> None:
    org = Organization(member(A), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")

    async def broken() -> Any:
        raise LakeCircleError("could not list the definitions")

    monkeypatch.setattr(org.hub_store, "list_definitions", broken)
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert report.fatal == "could not list the definitions"
    assert org.stores[A].lifecycles["a-logs"].rules == ()


async def test_nothing_is_said_missing_while_an_account_could_not_list_its_buckets() -> None:
    org = Organization(member(A), member(B), new=definition("new-one", rule("r1")))
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert [r.bucket for r in report.results if r.state is BucketState.MISSING] == ["new-one"]
    org.stores[B].add_bucket("new-one")  # created in B, whose listing now fails

    async def unlistable() -> AsyncIterator[list[Any]]:
        raise Throttled("Slow Down", operation="ListBuckets")
        yield []  # pragma: no cover - an async generator that fails at once

    org.stores[B].iter_buckets = unlistable  # type: ignore[method-assign]
    report = await org.hub.run_cycle(Trigger.RESYNC)
    assert org.states[B] is AccountState.FAILED
    assert "could not list" in (org.hub.runs[B].error or "")
    assert report.counts[BucketState.MISSING] == 0


async def test_the_daemon_runs_a_hub_as_it_runs_one_reconciler_and_a_stop_drains_every_account() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")
    runner: Runner = org.hub
    daemon = Daemon(runner, max_cycles=1)
    await daemon.run()
    assert daemon.last_report is not None
    assert daemon.last_report.writes == 2
    daemon.request_stop()
    assert org.hub.draining
    assert all(m.draining for m in org.hub.members.reconcilers())


async def test_a_first_account_list_that_cannot_be_read_is_the_cycles_fatal_error_with_its_cause() -> None:
    org = Organization(member(A), base=fleet(["*"], rule("abort", 7)))
    org.source.fail = LakeCircleError("no accounts file at accounts.toml; create it or fix LCC_ACCOUNTS")

    report = await org.hub.run_cycle(Trigger.STARTUP)

    assert report.fatal == (
        "no account to manage: accounts.toml (no accounts file at accounts.toml; create it or fix LCC_ACCOUNTS)"
    )


async def test_definitions_that_come_to_use_account_tags_on_a_poll_read_the_accounts_again_with_their_tags() -> None:
    org = Organization(member(A, env="prod"), one=fleet(["*"], rule("r1")), two=fleet(["*"], rule("r2")))
    org.stores[A].add_bucket("app-logs")
    await org.hub.run_cycle(Trigger.STARTUP)
    assert org.rules(A, "app-logs") == ["r1", "r2"]
    org.hub_store.objects["definition/two.toml"] = fleet(["*"], rule("r2"), AccountTags={"env": "prod"})
    report = await org.hub.run_cycle(Trigger.POLL)
    assert org.source.asked_tags == [False, True]
    assert org.rules(A, "app-logs") == ["r1", "r2"]  # the account carries env = prod: r2 stays
    assert report.rules_removed == 0


async def test_account_tags_that_cannot_be_read_stop_the_cycle_before_any_account_is_touched() -> None:
    org = Organization(member(A, env="prod"), two=fleet(["*"], rule("r2"), AccountTags={"env": "prod"}))
    org.stores[A].add_bucket("app-logs", LifecycleConfig((rule("r2"), rule("theirs"))))
    org.source.tags_fail = AccessDenied("not authorized to perform organizations:ListTagsForResource", operation="X")
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert "ListTagsForResource" in (report.fatal or "")
    assert org.opened == []
    org.source.tags_fail = None
    org.hub_store.objects["definition/two.toml"] = fleet(["*"], rule("r2"))
    await org.hub.run_cycle(Trigger.RESYNC)  # listed without tags: none needed
    org.source.tags_fail = AccessDenied("not authorized to perform organizations:ListTagsForResource", operation="X")
    org.hub_store.objects["definition/two.toml"] = fleet(["*"], rule("r2"), AccountTags={"env": "prod"})
    report = await org.hub.run_cycle(Trigger.POLL)
    assert "definitions use AccountTags" in (report.fatal or "")
    assert "ListTagsForResource" in (report.fatal or "")
    assert org.rules(A, "app-logs") == ["r2", "theirs"]  # nothing removed on a guess


async def test_a_stop_during_a_cycle_leaves_the_accounts_not_yet_begun_unrun_and_the_report_whole() -> None:
    org = Organization(member(A), member(B), member(C), base=fleet(["*"], rule("abort", 7)))
    for account_id in (A, B, C):
        org.stores[account_id].add_bucket(f"b-{account_id}")
    org.hub.schedule.accounts_at_once = 1
    report = await org.hub.run_cycle(Trigger.STARTUP, on_result=lambda _: org.hub.drain())
    assert len(org.hub.runs) == 1  # the first account finished; the two waiting never began
    assert report.interrupted


async def test_an_account_whose_cycle_failed_is_opened_afresh_next_cycle() -> None:
    org = Organization(member(A), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[A].fail("GetBucketLifecycleConfiguration", "*", lambda op, b: Throttled("Slow Down", operation=op))
    unlistable = org.stores[A].iter_buckets

    async def expired() -> AsyncIterator[list[Any]]:
        raise AccessDenied("The provided token has expired", operation="ListBuckets")
        yield []  # pragma: no cover - an async generator that fails at once

    org.stores[A].iter_buckets = expired  # type: ignore[method-assign]
    await org.hub.run_cycle(Trigger.STARTUP)
    assert org.states[A] is AccountState.FAILED
    org.stores[A].iter_buckets = unlistable  # type: ignore[method-assign]
    org.stores[A].failures.clear()
    await org.hub.run_cycle(Trigger.RESYNC)
    assert org.opened == [A, A]
    assert org.rules(A, "a-logs") == ["abort"]


async def test_an_invalid_definition_is_reported_once_not_once_per_account() -> None:
    bad = definition("b-data", rule("r1", 0))
    org = Organization(member(A), member(B), member(C), bad=bad)
    report = await org.hub.run_cycle(Trigger.STARTUP)
    assert [r.bucket for r in report.results if r.state is BucketState.INVALID] == ["b-data"]
    assert report.counts[BucketState.INVALID] == 1


async def test_an_observer_that_raises_for_one_account_leaves_the_others_their_cycle() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.stores[B].add_bucket("b-logs")

    def broken(account: Account, report: CycleReport) -> None:
        if account.id == A:
            raise ValueError("not an account ID")
        org.finished[account.id] = report

    org.account_finished = broken  # type: ignore[method-assign]
    await org.hub.run_cycle(Trigger.STARTUP)
    assert org.rules(B, "b-logs") == ["abort"]
    assert list(org.finished) == [B]


async def test_an_account_whose_entry_turns_bad_stays_managed_until_the_list_is_fixed() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    await org.hub.run_cycle(Trigger.STARTUP)
    typo = Problem("accounts.toml", "Id is the number 222222222222; quote it", field="Account[1].Id")
    org.source.list = AccountList((member(A),), (typo,))
    await org.hub.run_cycle(Trigger.RESYNC)
    assert sorted(org.states) == [A, B]
    assert org.hub.roster.problems == (str(typo),)
    org.source.list = AccountList((member(A),))  # fixed: B is gone on purpose
    await org.hub.run_cycle(Trigger.RESYNC)
    assert sorted(org.states) == [A]


async def test_after_a_failed_read_of_the_account_list_polls_back_off_and_a_resync_reads_it_at_once() -> None:
    now = [1000.0]
    org = Organization(member(A, env="prod"), two=fleet(["*"], rule("r2"), AccountTags={"env": "prod"}))
    org.hub.clock = org.hub.roster.clock = lambda: now[0]
    org.source.tags_fail = AccessDenied("not authorized to perform organizations:ListTagsForResource", operation="X")
    await org.hub.run_cycle(Trigger.STARTUP)
    assert org.source.reads == 1
    for _ in range(3):  # polls within the first minute: no read, the same answer
        now[0] += 15
        report = await org.hub.run_cycle(Trigger.POLL)
        assert "ListTagsForResource" in (report.fatal or "")
    assert org.source.reads == 1
    now[0] += 20  # past 60 s: read again, failed again, next try 120 s later
    await org.hub.run_cycle(Trigger.POLL)
    assert org.source.reads == 2
    now[0] += 60
    await org.hub.run_cycle(Trigger.POLL)
    assert org.source.reads == 2
    org.source.tags_fail = None
    await org.hub.run_cycle(Trigger.SIGNAL)  # a person asked: read now
    assert org.source.reads == 3
    assert org.states == {A: AccountState.MANAGED}
