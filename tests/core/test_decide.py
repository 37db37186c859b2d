"""decide(): what a cycle does with a bucket read and planned, one row per policy branch."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lakecircle.core.decide import (
    Decision,
    Do,
    decide,
    needs_record,
    others_rules,
    owned_after,
    unwritten,
    without_removals,
)
from lakecircle.core.drift import Applied, Verdict
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.plan import Action, BucketPlan, plan_bucket
from lakecircle.core.report import BucketState, Guard
from tests.builders import rule

NOW = 10_000.0
SETTLE = 300.0


A, B = rule("a", days=1), rule("b", days=1)
SIZED = rule("s", days=1, Filter={"And": {"Prefix": "p/", "ObjectSizeGreaterThan": 10}})
UNSIZED = rule("s", days=1, prefix="p/")


def plan(desired: tuple[Rule, ...], live: tuple[Rule, ...]) -> BucketPlan:
    return plan_bucket("b", LifecycleConfig(desired), LifecycleConfig(live))


def written(
    desired: tuple[Rule, ...], before: tuple[Rule, ...], *, ago: float, confirmed: bool = False, rewrites: int = 0
) -> Applied:
    return Applied.of(
        LifecycleConfig(desired), LifecycleConfig(before), NOW - ago, confirmed=confirmed, rewrites=rewrites
    )


@dataclass(frozen=True)
class Row:
    plan: BucketPlan
    record: Applied | None
    partial: bool
    do: Do
    state: BucketState
    """What the bucket reports when it is not written (a write: in a dry run)."""
    guard: Guard | None = None
    verdict: Verdict | None = None
    confirm: bool = False


ROWS = {
    "an_empty_plan_is_in_sync": Row(plan((A,), (A,)), None, False, Do.NOTHING, BucketState.IN_SYNC),
    "a_bucket_never_written_is_written": Row(
        plan((A, B), (A,)), None, False, Do.WRITE, BucketState.DRIFTED, verdict=Verdict.WRITE
    ),
    "removals_with_the_definitions_read_whole_are_written": Row(
        plan((A,), (A, B)), None, False, Do.WRITE, BucketState.DRIFTED, verdict=Verdict.WRITE
    ),
    "partial_definitions_hold_back_removals_and_write_the_rest": Row(
        plan((B,), (A,)), None, True, Do.WRITE, BucketState.DRIFTED, Guard.PARTIAL_DEFINITIONS, Verdict.WRITE
    ),
    "partial_definitions_with_only_removals_hold_the_bucket": Row(
        plan((A,), (A, B)), None, True, Do.HOLD, BucketState.DRIFTED, Guard.PARTIAL_DEFINITIONS
    ),
    "a_write_still_read_as_the_old_rules_within_the_settle_window_waits": Row(
        plan((A, B), (A,)),
        written((A, B), (A,), ago=10),
        False,
        Do.WAIT,
        BucketState.PROPAGATING,
        verdict=Verdict.PROPAGATING,
    ),
    "a_confirmed_write_changed_since_is_another_writers_and_corrected": Row(
        plan((A, B), (A,)),
        written((A, B), (), ago=1000, confirmed=True),
        False,
        Do.WRITE,
        BucketState.DRIFTED,
        verdict=Verdict.EXTERNAL_DRIFT,
    ),
    "a_bucket_diverging_within_its_backoff_is_backed_off": Row(
        plan((A, B), (A,)),
        written((A, B), (), ago=400, rewrites=1),
        False,
        Do.BACK_OFF,
        BucketState.DIVERGING,
        verdict=Verdict.DIVERGING_WAIT,
    ),
    "a_bucket_diverging_past_its_backoff_is_rewritten": Row(
        plan((A, B), (A,)),
        written((A, B), (), ago=700, rewrites=1),
        False,
        Do.WRITE,
        BucketState.DIVERGING,
        verdict=Verdict.DIVERGING_WRITE,
    ),
    "a_server_that_dropped_fields_of_the_write_confirms_it": Row(
        plan((SIZED,), (UNSIZED,)),
        written((SIZED,), (), ago=400),
        False,
        Do.WRITE,
        BucketState.DIVERGING,
        verdict=Verdict.DIVERGING_WRITE,
        confirm=True,
    ),
    "a_server_that_dropped_fields_of_a_confirmed_write_confirms_nothing_more": Row(
        plan((SIZED,), (UNSIZED,)),
        written((SIZED,), (), ago=400, confirmed=True, rewrites=1),
        False,
        Do.BACK_OFF,
        BucketState.DIVERGING,
        verdict=Verdict.DIVERGING_WAIT,
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_decide(row: Row) -> None:
    decision = decide(row.plan, row.record, now=NOW, settle=SETTLE, partial=row.partial)
    assert (decision.do, decision.guard, decision.verdict, decision.confirm) == (
        row.do,
        row.guard,
        row.verdict,
        row.confirm,
    )
    assert unwritten("b", decision).state is row.state
    if decision.guard is not None:
        assert not decision.plan.removed
        assert unwritten("b", decision).guard == decision.guard


def test_a_propagating_bucket_reports_no_dropped_fields_but_a_diverging_one_does() -> None:
    waiting = decide(
        plan((SIZED,), (UNSIZED,)), written((SIZED,), (UNSIZED,), ago=10), now=NOW, settle=SETTLE, partial=False
    )
    assert waiting.do is Do.WAIT
    assert unwritten("b", waiting).dropped == ()
    diverging = decide(
        plan((SIZED,), (UNSIZED,)), written((SIZED,), (), ago=400), now=NOW, settle=SETTLE, partial=False
    )
    assert unwritten("b", diverging).dropped == ("s: Filter.ObjectSizeGreaterThan",)


def test_another_writers_change_reports_external_drift() -> None:
    record = written((A, B), (), ago=1000, confirmed=True)
    decision = decide(plan((A, B), (A,)), record, now=NOW, settle=SETTLE, partial=False)
    assert decision.external
    assert unwritten("b", decision).external


@pytest.mark.parametrize(
    ("desired", "live", "removals"),
    [((A,), (A, B), 1), ((), (A, B), 2), ((A, B), (A,), 0)],
    ids=["a_put_counts_its_removed_rules", "a_delete_counts_every_live_rule", "an_addition_removes_nothing"],
)
def test_removals_count_what_the_write_removes(
    desired: tuple[Rule, ...], live: tuple[Rule, ...], removals: int
) -> None:
    assert decide(plan(desired, live), None, now=NOW, settle=SETTLE, partial=False).removals == removals


def test_a_write_held_back_keeps_what_else_changed_and_names_the_guard() -> None:
    decision = without_removals(Decision(Do.WRITE, plan((B,), (A,)), Verdict.WRITE), Guard.BLAST_RADIUS)
    assert (decision.do, decision.guard, decision.removals) == (Do.WRITE, Guard.BLAST_RADIUS, 0)
    assert decision.plan.action is Action.PUT
    assert [r.id for r in decision.plan.held] == ["a"]


def test_a_write_of_removals_only_held_back_holds_the_bucket() -> None:
    decision = without_removals(Decision(Do.WRITE, plan((), (A,)), Verdict.WRITE), Guard.UNKNOWN_TOTAL)
    assert (decision.do, decision.guard) == (Do.HOLD, Guard.UNKNOWN_TOTAL)
    result = unwritten("b", decision)
    assert (result.state, result.guard, result.counts and result.counts.held) == (
        BucketState.DRIFTED,
        Guard.UNKNOWN_TOTAL,
        1,
    )


@pytest.mark.parametrize(
    ("owned", "kept"),
    [(None, ["a", "b"]), (("a",), ["b"]), (("a", "b"), [])],
    ids=["never_written_keeps_every_rule", "keeps_what_it_did_not_write", "keeps_nothing_it_wrote"],
)
def test_a_shared_bucket_keeps_other_writers_rules(owned: tuple[str, ...] | None, kept: list[str]) -> None:
    keep = others_rules(owned)
    assert [r.id for r in (A, B) if keep(r)] == kept


@pytest.mark.parametrize(
    ("desired", "live", "partial", "needed"),
    [
        ((A,), (A,), False, False),
        ((A, B), (A,), False, True),
        ((A,), (A, B), True, False),
        ((B,), (A,), True, True),
    ],
    ids=["in_sync_needs_none", "a_write_needs_it", "held_removals_only_need_none", "a_write_after_holding_needs_it"],
)
def test_the_last_write_is_looked_up_only_for_a_bucket_to_write(
    desired: tuple[Rule, ...], live: tuple[Rule, ...], partial: bool, needed: bool
) -> None:
    assert needs_record(plan(desired, live), partial=partial) is needed


OWNED_AFTER = {
    "a write without held removals owns what it took from the definitions": ((), ("a", "b"), ("a",)),
    "a held removal of a rule it owned stays its own": (("b",), ("a", "b"), ("a", "b")),
    "a held removal of another writer's rule stays theirs": (("c",), ("a",), ("a",)),
    "a held removal in a bucket never written owns nothing more": (("b",), None, ("a",)),
}


@pytest.mark.parametrize(("held", "owned", "after"), OWNED_AFTER.values(), ids=OWNED_AFTER.keys())
def test_a_write_owns_its_rules_and_the_held_back_rules_it_owned(
    held: tuple[str, ...], owned: tuple[str, ...] | None, after: tuple[str, ...]
) -> None:
    assert owned_after(("a",), [rule(i, days=1) for i in held], owned) == after
