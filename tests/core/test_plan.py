"""plan_bucket and the plan renderers, table by table."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.plan import Action, BucketPlan, hold_removals, plan_bucket
from lakecircle.core.render import plans_json, render_plan_text, summary_line
from tests.builders import rule

K128 = "all_storage_classes_128K"
VARIES = "varies_by_storage_class"


def config(*rules: Rule, tdmos: str | None = None) -> LifecycleConfig:
    return LifecycleConfig(tuple(rules), tdmos)


def _ids(rules: tuple[Rule, ...]) -> list[str | None]:
    return [r.id for r in rules]


# --- actions and rule sets ---------------------------------------------------------------

ActionCase = tuple[Action, list[str | None], list[str | None], list[str]]
"""The expected action, then the IDs of the rules added, removed and changed."""

ACTION_CASES = [
    pytest.param(config(), config(), (Action.NOOP, [], [], []), id="both-empty-is-noop"),
    pytest.param(
        config(),
        config(rule("a", prefix=None), rule("b", prefix=None)),
        (Action.DELETE, [], ["a", "b"], []),
        id="empty-desired-deletes",
    ),
    pytest.param(
        config(rule("a", prefix=None)), config(), (Action.PUT, ["a"], [], []), id="empty-live-puts-everything"
    ),
    pytest.param(
        config(rule("a", prefix=None)), config(rule("a", prefix=None)), (Action.NOOP, [], [], []), id="equal-is-noop"
    ),
    pytest.param(
        config(rule("a", prefix=None), rule("b", prefix=None)),
        config(rule("a", prefix=None)),
        (Action.PUT, ["b"], [], []),
        id="one-added",
    ),
    pytest.param(
        config(rule("a", prefix=None)),
        config(rule("a", prefix=None), rule("b", prefix=None)),
        (Action.PUT, [], ["b"], []),
        id="one-removed",
    ),
    pytest.param(
        config(rule("a", prefix=None, Expiration={"Days": 60})),
        config(rule("a", prefix=None)),
        (Action.PUT, [], [], ["a"]),
        id="one-changed",
    ),
    pytest.param(
        config(rule("a", prefix=None), rule("new", prefix=None)),
        config(rule("a", prefix=None, Status="Disabled"), rule("old", prefix=None)),
        (Action.PUT, ["new"], ["old"], ["a"]),
        id="added-removed-and-changed-together",
    ),
    pytest.param(
        config(rule("a", prefix=None)),
        config(rule("a", prefix=None), rule(None, prefix=None)),
        (Action.PUT, [], [None], []),
        id="live-rule-without-id",
    ),
    pytest.param(
        config(rule("b", prefix=None), rule("a", prefix=None)),
        config(rule("a", prefix=None), rule("b", prefix=None)),
        (Action.NOOP, [], [], []),
        id="rule-order-ignored",
    ),
]


@pytest.mark.parametrize(("desired", "live", "expected"), ACTION_CASES)
def test_plan_bucket_action_and_rule_sets(
    desired: LifecycleConfig, live: LifecycleConfig, expected: ActionCase
) -> None:
    action, added, removed, changed = expected
    plan = plan_bucket("bucket", desired, live)
    assert plan.action is action
    assert plan.has_changes is (action is not Action.NOOP)
    assert _ids(plan.added) == added
    assert _ids(plan.removed) == removed
    assert [c.rule_id for c in plan.changed] == changed
    assert plan.bucket == "bucket"
    assert plan.live == live


def test_put_carries_the_full_desired_rule_set_not_only_the_changes() -> None:
    desired = config(
        rule("keep", prefix=None), rule("change", prefix=None, Expiration={"Days": 90}), rule("add", prefix=None)
    )
    live = config(rule("keep", prefix=None), rule("change", prefix=None), rule("drop", prefix=None))
    plan = plan_bucket("bucket", desired, live)
    assert plan.action is Action.PUT
    assert plan.desired.rules == desired.rules


# --- field-level changes -----------------------------------------------------------------

FIELD_CASES = [
    pytest.param({"Expiration": {"Days": 30}}, {"Expiration": {"Days": 60}}, [("Expiration.Days", 30, 60)], id="days"),
    pytest.param({"Status": "Enabled"}, {"Status": "Disabled"}, [("Status", "Enabled", "Disabled")], id="status"),
    pytest.param(
        {"Filter": {"Prefix": "a/"}}, {"Filter": {"Prefix": "b/"}}, [("Filter.Prefix", "a/", "b/")], id="prefix"
    ),
    pytest.param(
        {"Prefix": "a/", "Filter": None},
        {"Filter": {"Prefix": "b/"}},
        [("Filter.Prefix", "a/", "b/")],
        id="legacy-prefix",
    ),
    pytest.param(
        {"Filter": {}}, {"Filter": {"Prefix": "logs/"}}, [("Filter.Prefix", None, "logs/")], id="filter-narrowed"
    ),
    pytest.param(
        {"Filter": {"Prefix": "logs/"}}, {"Filter": {}}, [("Filter.Prefix", "logs/", None)], id="filter-widened"
    ),
    pytest.param(
        {"Filter": {"Tag": {"Key": "k", "Value": "old"}}},
        {"Filter": {"Tag": {"Key": "k", "Value": "new"}}},
        [("Filter.Tag.Value", "old", "new")],
        id="tag-value",
    ),
    pytest.param(
        {"Expiration": {"Date": "2030-01-01"}},
        {"Expiration": {"Date": dt.date(2031, 1, 1)}},
        [
            (
                "Expiration.Date",
                dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                dt.datetime(2031, 1, 1, tzinfo=dt.UTC),
            )
        ],
        id="date",
    ),
    pytest.param(
        {"Transitions": [{"Days": 0, "StorageClass": "GLACIER"}]},
        {"Transitions": [{"Days": 0, "StorageClass": "DEEP_ARCHIVE"}]},
        [("Transitions[0].StorageClass", "GLACIER", "DEEP_ARCHIVE")],
        id="transition-class",
    ),
    pytest.param(
        {},
        {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        [("AbortIncompleteMultipartUpload.DaysAfterInitiation", None, 7)],
        id="action-added",
    ),
    pytest.param(
        {"NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 2}},
        {"NoncurrentVersionExpiration": {"NoncurrentDays": 30}},
        [("NoncurrentVersionExpiration.NewerNoncurrentVersions", 2, None)],
        id="noncurrent-field-dropped",
    ),
]


@pytest.mark.parametrize(("before", "after", "fields"), FIELD_CASES)
def test_changed_rule_lists_each_differing_field_with_before_and_after(
    before: dict[str, Any], after: dict[str, Any], fields: list[tuple[str, Any, Any]]
) -> None:
    plan = plan_bucket("bucket", config(rule("r", prefix=None, **after)), config(rule("r", prefix=None, **before)))
    assert plan.action is Action.PUT
    [change] = plan.changed
    assert change.rule_id == "r"
    assert change.before == rule("r", prefix=None, **before)
    assert change.after == rule("r", prefix=None, **after)
    assert [(f.field, f.before, f.after) for f in change.fields] == fields


# --- TransitionDefaultMinimumObjectSize ----------------------------------------------------

TdmosCase = tuple[str | None, Action, tuple[str, str] | None]
"""The planned value, the action, and the (before, after) of a reported change."""

TDMOS_CASES = [
    pytest.param(VARIES, K128, True, (VARIES, Action.PUT, (K128, VARIES)), id="defined-value-wins-alone-is-a-put"),
    pytest.param(K128, K128, True, (K128, Action.NOOP, None), id="defined-equal-to-live"),
    pytest.param(None, VARIES, True, (VARIES, Action.NOOP, None), id="silent-definition-keeps-live-noop"),
    pytest.param(None, VARIES, False, (VARIES, Action.PUT, None), id="silent-definition-keeps-live-on-put"),
    pytest.param(K128, VARIES, False, (K128, Action.PUT, (VARIES, K128)), id="defined-value-wins-on-put"),
    pytest.param(None, None, False, (None, Action.PUT, None), id="nobody-says"),
    pytest.param(VARIES, None, True, (VARIES, Action.NOOP, None), id="live-server-does-not-report-it"),
]


@pytest.mark.parametrize(("wanted", "live_value", "same_rules", "expected"), TDMOS_CASES)
def test_transition_default_minimum_object_size_is_planned_from_definition_else_live(
    wanted: str | None, live_value: str | None, same_rules: bool, expected: TdmosCase
) -> None:
    planned, action, change = expected
    desired = config(rule("a", prefix=None), tdmos=wanted)
    live = config(rule("a", prefix=None) if same_rules else rule("a", prefix=None, Status="Disabled"), tdmos=live_value)
    plan = plan_bucket("bucket", desired, live)
    assert plan.desired.transition_default_minimum_object_size == planned
    assert plan.action is action
    if change is None:
        assert plan.tdmos_change is None
    else:
        assert plan.tdmos_change is not None
        assert (plan.tdmos_change.field, plan.tdmos_change.before, plan.tdmos_change.after) == (
            "TransitionDefaultMinimumObjectSize",
            *change,
        )


def test_tdmos_difference_does_not_turn_a_delete_into_a_put() -> None:
    plan = plan_bucket("bucket", config(tdmos=VARIES), config(rule("a", prefix=None), tdmos=K128))
    assert plan.action is Action.DELETE
    assert plan.tdmos_change is None


# --- rendering -----------------------------------------------------------------------------


def _sample_plans() -> list[BucketPlan]:
    changed = plan_bucket(
        "acme-logs",
        config(
            rule("keep", prefix=None),
            rule("tune", prefix=None, Expiration={"Days": 60}),
            rule("fresh", prefix=None),
            tdmos=VARIES,
        ),
        config(rule("keep", prefix=None), rule("tune", prefix=None), rule("stale", prefix=None), tdmos=K128),
    )
    unchanged = plan_bucket("acme-quiet", config(rule("a", prefix=None)), config(rule("a", prefix=None)))
    deleted = plan_bucket("acme-old", config(), config(rule("gone", prefix=None, Expiration={"Date": "2030-01-01"})))
    return [changed, unchanged, deleted]


def test_text_plan_marks_added_removed_and_changed_rules_and_ends_with_a_summary() -> None:
    text = render_plan_text(_sample_plans())
    lines = text.splitlines()
    assert "bucket acme-logs will be updated" in lines
    assert "  + rule fresh" in lines
    assert "  - rule stale" in lines
    assert "  ~ rule tune" in lines
    assert "      ~ Expiration.Days: 30 -> 60" in lines
    assert '  ~ TransitionDefaultMinimumObjectSize: "all_storage_classes_128K" -> "varies_by_storage_class"' in lines
    assert "bucket acme-old will be deleted (no rules defined)" in lines
    assert "      - Expiration.Date = 2030-01-01" in lines
    assert not any("acme-quiet" in line for line in lines)
    assert lines[-1] == "Plan: 1 rule(s) to add, 1 to change, 2 to remove, in 2 of 3 bucket(s)."
    assert lines[-1] == summary_line(_sample_plans())


def test_text_plan_of_matching_buckets_says_no_changes() -> None:
    plans = [
        plan_bucket("a", config(rule("r", prefix=None)), config(rule("r", prefix=None))),
        plan_bucket("b", config(), config()),
    ]
    assert render_plan_text(plans) == "No changes. 2 bucket(s) match their definitions."


def test_text_plan_has_no_ansi_codes_unless_color_is_asked_for() -> None:
    plain = render_plan_text(_sample_plans())
    coloured = render_plan_text(_sample_plans(), color=True)
    assert "\x1b" not in plain
    assert "\x1b[32m  + rule fresh\x1b[0m" in coloured
    assert "\x1b[31m  - rule stale\x1b[0m" in coloured
    assert "\x1b[33m  ~ rule tune\x1b[0m" in coloured


def test_text_plan_escapes_control_characters_from_ids_and_values() -> None:
    hostile = rule("evil\x1b[31m", prefix=None, Filter={"Tag": {"Key": "k", "Value": 'v"\n\x1b[2J'}})
    text = render_plan_text([plan_bucket("bucket\r", config(), config(hostile))])
    assert "\x1b" not in text
    assert "\r" not in text
    assert "  - rule evil\\x1b[31m" in text.splitlines()
    assert '      - Filter.Tag.Value = "v\\"\\n\\u001b[2J"' in text.splitlines()


def test_json_plan_lists_action_rules_and_field_changes_per_bucket() -> None:
    document = plans_json(_sample_plans(), cycle_id="c-1")
    assert json.loads(json.dumps(document)) == document  # plain JSON all the way down
    assert document["format_version"] == 1
    assert document["changes"] is True
    assert document["cycle_id"] == "c-1"
    logs, quiet, old = document["buckets"]
    assert [b["bucket"] for b in (logs, quiet, old)] == ["acme-logs", "acme-quiet", "acme-old"]
    assert [b["action"] for b in (logs, quiet, old)] == ["put", "noop", "delete"]
    assert [r["ID"] for r in logs["added"]] == ["fresh"]
    assert logs["added"][0] == {"ID": "fresh", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}}
    assert [r["ID"] for r in logs["removed"]] == ["stale"]
    assert logs["changed"] == [{"id": "tune", "fields": [{"field": "Expiration.Days", "before": 30, "after": 60}]}]
    assert logs["transition_default_minimum_object_size"] == {"before": K128, "after": VARIES}
    assert quiet["added"] == quiet["removed"] == quiet["changed"] == []
    assert quiet["transition_default_minimum_object_size"] is None
    assert old["removed"][0]["Expiration"] == {"Date": "2030-01-01T00:00:00Z"}


def test_json_plan_without_changes_says_so() -> None:
    document = plans_json([plan_bucket("a", config(rule("r", prefix=None)), config(rule("r", prefix=None)))])
    assert document["changes"] is False
    assert document["buckets"][0]["action"] == "noop"


# --- removals held back by a guard ---------------------------------------------------------


def test_holding_removals_back_keeps_the_rules_and_still_adds_and_changes() -> None:
    live = config(
        rule("keep", prefix=None), rule("tune", prefix=None), rule("stale", prefix=None), rule("old", prefix=None)
    )
    plan = hold_removals(
        plan_bucket(
            "b",
            config(
                rule("keep", prefix=None), rule("tune", prefix=None, Expiration={"Days": 60}), rule("new", prefix=None)
            ),
            live,
        )
    )
    assert plan.action is Action.PUT
    assert plan.removed == ()
    assert _ids(plan.held) == ["stale", "old"]
    assert _ids(plan.added) == ["new"]
    assert [c.rule_id for c in plan.changed] == ["tune"]
    assert sorted(r.id or "" for r in plan.desired.rules) == ["keep", "new", "old", "stale", "tune"]
    assert plan_bucket("b", plan.desired, live).removed == ()  # what the PUT sends removes nothing


def test_a_delete_with_its_removals_held_back_writes_nothing() -> None:
    plan = hold_removals(plan_bucket("b", config(), config(rule("a", prefix=None), rule("b", prefix=None))))
    assert plan.action is Action.NOOP
    assert not plan.has_changes
    assert _ids(plan.held) == ["a", "b"]


def test_held_back_removals_are_shown_as_held_not_as_removed() -> None:
    held = hold_removals(
        plan_bucket("acme-logs", config(rule("fresh", prefix=None)), config(rule("stale", prefix=None)))
    )
    only_held = hold_removals(plan_bucket("acme-old", config(), config(rule("gone", prefix=None))))
    lines = render_plan_text([held, only_held]).splitlines()
    assert "  + rule fresh" in lines
    assert "  ! rule stale (removal held back: the rule stays)" in lines
    assert "      ! Expiration.Days = 30" in lines
    assert "bucket acme-old is not written: its removals are held back" in lines
    assert "  ! rule gone (removal held back: the rule stays)" in lines
    assert not any(line.lstrip().startswith("- ") for line in lines)
    assert (
        lines[-1]
        == "Plan: 1 rule(s) to add, 0 to change, 0 to remove, in 1 of 2 bucket(s); 2 rule removal(s) held back."
    )
    assert (
        summary_line([only_held], total=5) == "No changes to write. 1 rule removal(s) held back, in 1 of 5 bucket(s)."
    )
    coloured = render_plan_text([held], color=True)
    assert "\x1b[35m  ! rule stale (removal held back: the rule stays)\x1b[0m" in coloured


def test_json_plan_lists_held_back_removals_apart_from_removed() -> None:
    plan = hold_removals(plan_bucket("b", config(rule("fresh", prefix=None)), config(rule("stale", prefix=None))))
    [bucket] = plans_json([plan])["buckets"]
    assert bucket["removed"] == []
    assert [r["ID"] for r in bucket["held"]] == ["stale"]
    assert [r["ID"] for r in bucket["added"]] == ["fresh"]
    assert (
        plans_json([plan_bucket("b", config(rule("r", prefix=None)), config(rule("r", prefix=None)))])["buckets"][0][
            "held"
        ]
        == []
    )
