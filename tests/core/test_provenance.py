"""Provenance in plans: where each added, changed or removed rule comes from, and what the
bucket's own definition overrides, in text and JSON; plans built without it stay as they were."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from lakecircle.core.combine import combine, exact_sources
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.plan import Action, BucketPlan, hold_removals, hold_selector_changes, plan_bucket
from lakecircle.core.render import plans_json, render_plan_text
from lakecircle.core.selectors import Matcher, Override, Selector, Source
from tests.builders import rule, selector

BUCKET = "web-logs"
EXACT = Source("web-logs.toml")
FLEET = Source("fleet.toml", "fleet.toml Bucket[1]", "*")
LOGS = Source("logs-baseline.toml", "logs-baseline.toml", "*-logs")


def config(*rules: Rule) -> LifecycleConfig:
    return LifecycleConfig(rules)


def exact(*rules: Rule) -> BucketDefinition:
    return BucketDefinition(BUCKET, config(*rules), ("web-logs.toml",), ("web-logs.toml",) * len(rules), None)


def sourced(desired: Sequence[tuple[Rule, Source]], live: LifecycleConfig, *overrides: Override) -> BucketPlan:
    rules = tuple(r for r, _ in desired)
    return plan_bucket(BUCKET, config(*rules), live, sources=[s for _, s in desired], overrides=overrides)


def lines_of(plan: BucketPlan) -> list[str]:
    return render_plan_text([plan]).splitlines()


TEXT_CASES = [
    pytest.param(
        sourced([(rule("abort", prefix=None), FLEET)], config()),
        ['  + rule abort  (from fleet.toml Bucket[1], pattern "*")'],
        id="an added selector rule names the selector's file, table and pattern",
    ),
    pytest.param(
        sourced([(rule("own", prefix=None), EXACT)], config()),
        ["  + rule own  (from web-logs.toml)"],
        id="an added rule of an exact definition names its file",
    ),
    pytest.param(
        sourced([(rule("expire", 60, prefix=None), EXACT)], config(rule("expire", 90, prefix=None))),
        ["  ~ rule expire  (from web-logs.toml)", "      ~ Expiration.Days: 90 -> 60"],
        id="a changed rule names its source on its header line",
    ),
    pytest.param(
        sourced(
            [(rule("expire", 30, prefix=None), EXACT)],
            config(),
            Override("expire", LOGS, EXACT),
        ),
        ["  + rule expire  (from web-logs.toml)", '      # overrides logs-baseline.toml (pattern "*-logs")'],
        id="a rule that overrides a selector's rule says which, on the line after its header",
    ),
    pytest.param(
        sourced([(rule("abort", prefix=None), FLEET)], config(rule("stale", prefix=None))),
        ["  - rule stale  (in no definition that selects this bucket)"],
        id="a removed rule is in no definition that selects the bucket",
    ),
]


@pytest.mark.parametrize(("plan", "expected"), TEXT_CASES)
def test_text_plans_say_where_each_rule_comes_from(plan: BucketPlan, expected: list[str]) -> None:
    lines = lines_of(plan)
    start = lines.index(expected[0])
    assert lines[start : start + len(expected)] == expected


def test_a_plan_built_without_sources_renders_as_before() -> None:
    desired = config(rule("fresh", prefix=None), rule("tune", 60, prefix=None))
    live = config(rule("tune", 30, prefix=None), rule("stale", prefix=None))
    plain = plan_bucket(BUCKET, desired, live)
    assert plain.sources == {}
    assert plain.overrides == ()
    assert plain == plan_bucket(BUCKET, desired, live, sources=None)
    lines = lines_of(plain)
    assert {"  + rule fresh", "  ~ rule tune", "  - rule stale"} <= set(lines)
    assert not any("(from" in line or "no definition" in line for line in lines)
    [bucket] = plans_json([plain])["buckets"]
    assert "overrides" not in bucket
    assert all("source" not in entry for key in ("added", "removed", "changed") for entry in bucket[key])


def test_a_plan_told_its_sources_says_so_even_when_the_definition_has_no_rules() -> None:
    plan = plan_bucket(BUCKET, config(), config(rule("stale", prefix=None)), sources=[])
    assert plan.has_provenance
    assert "  - rule stale  (in no definition that selects this bucket)" in lines_of(plan)
    assert hold_removals(plan).has_provenance
    [bucket] = plans_json([plan])["buckets"]
    assert bucket["removed"][0]["source"] is None
    assert bucket["overrides"] == []


EXACT_SOURCE_CASES = [
    pytest.param(exact(), (), id="a definition without rules has no sources"),
    pytest.param(exact(rule("a"), rule("b")), (EXACT, EXACT), id="each rule of a one-file definition comes from it"),
    pytest.param(
        BucketDefinition(BUCKET, config(rule("a"), rule("b")), ("one.toml", "two.toml"), ("one.toml", "two.toml")),
        (Source("one.toml"), Source("two.toml")),
        id="each rule of a definition merged from two files comes from its own file",
    ),
    pytest.param(
        BucketDefinition(BUCKET, config(rule("a")), ("one.toml", "two.toml")),
        (Source("one.toml, two.toml"),),
        id="a rule whose file is not recorded comes from every file of the definition",
    ),
]


@pytest.mark.parametrize(("definition", "expected"), EXACT_SOURCE_CASES)
def test_an_exact_definitions_rules_come_from_their_files(
    definition: BucketDefinition, expected: tuple[Source, ...]
) -> None:
    assert exact_sources(definition) == expected


def test_sources_change_nothing_that_is_planned() -> None:
    desired = (rule("abort", prefix=None), rule("own", 5, prefix=None))
    live = config(rule("own", 9, prefix=None), rule("stale", prefix=None))
    plain = plan_bucket(BUCKET, config(*desired), live)
    with_sources = plan_bucket(BUCKET, config(*desired), live, sources=[FLEET, EXACT])
    assert (with_sources.action, with_sources.added, with_sources.removed, with_sources.changed) == (
        plain.action,
        plain.added,
        plain.removed,
        plain.changed,
    )
    assert with_sources.desired == plain.desired
    assert with_sources.sources == {"abort": FLEET, "own": EXACT}


def test_sources_must_be_parallel_to_the_desired_rules() -> None:
    with pytest.raises(ValueError, match="1 sources for 2 desired rules"):
        plan_bucket(BUCKET, config(rule("a"), rule("b")), config(), sources=[EXACT])


def test_holding_removals_back_keeps_the_provenance() -> None:
    plan = sourced(
        [(rule("abort", prefix=None), FLEET)], config(rule("stale", prefix=None)), Override("x", LOGS, EXACT)
    )
    held = hold_removals(plan)
    assert held.sources == {"abort": FLEET}
    assert held.overrides == plan.overrides
    assert '  + rule abort  (from fleet.toml Bucket[1], pattern "*")' in lines_of(held)


def test_json_plans_carry_each_rules_source_and_the_overrides() -> None:
    plan = sourced(
        [(rule("abort", prefix=None), FLEET), (rule("expire", 60, prefix=None), EXACT)],
        config(rule("expire", 90, prefix=None), rule("stale", prefix=None)),
        Override("expire", LOGS, EXACT),
    )
    document = plans_json([plan])
    assert json.loads(json.dumps(document)) == document
    [bucket] = document["buckets"]
    assert bucket["added"][0]["source"] == {"file": "fleet.toml", "selector": "fleet.toml Bucket[1]", "pattern": "*"}
    assert bucket["changed"][0]["source"] == {"file": "web-logs.toml", "selector": None, "pattern": None}
    assert bucket["removed"][0]["source"] is None
    assert bucket["overrides"] == [
        {
            "rule": "expire",
            "overridden": {"file": "logs-baseline.toml", "selector": "logs-baseline.toml", "pattern": "*-logs"},
            "by": {"file": "web-logs.toml", "selector": None, "pattern": None},
        }
    ]


def test_a_combined_bucket_plans_with_the_sources_combine_gives() -> None:
    selectors: list[Selector] = [
        selector("*", rules=(rule("abort", prefix=None),), file="fleet.toml", where="Bucket[1]."),
        selector("*-logs", rules=(rule("expire", 90, prefix=None),), file="logs-baseline.toml"),
    ]
    found = combine(BUCKET, exact(rule("expire", 30, prefix=None)), Matcher(selectors).match(BUCKET))
    assert found is not None
    plan = plan_bucket(BUCKET, found.config, config(), sources=found.sources, overrides=found.overrides)
    lines = lines_of(plan)
    assert "  + rule expire  (from web-logs.toml)" in lines
    assert '      # overrides logs-baseline.toml (pattern "*-logs")' in lines
    assert '  + rule abort  (from fleet.toml Bucket[1], pattern "*")' in lines


HELD_CASES = [
    pytest.param(
        [(rule("expire", 7), FLEET)],
        config(rule("expire", 3650)),
        [],
        ["expire"],
        id="a selector's change to a live rule is held back and the live rule is sent again",
    ),
    pytest.param(
        [(rule("expire", 7), EXACT)],
        config(rule("expire", 3650)),
        ["expire"],
        [],
        id="a change the bucket's own definition asks for still goes",
    ),
    pytest.param(
        [(rule("expire", 3650), EXACT), (rule("abort", 7), FLEET)],
        config(rule("expire", 3650)),
        [],
        [],
        id="a rule a selector adds still goes: it is new to the bucket",
    ),
    pytest.param(
        [(rule("expire", 7), LOGS), (rule("tmp", 1, prefix="tmp/"), EXACT)],
        config(rule("expire", 3650), rule("tmp", 2, prefix="tmp/")),
        ["tmp"],
        ["expire"],
        id="of two changes only the selector's is held back",
    ),
]


@pytest.mark.parametrize(("desired", "live", "changed", "held"), HELD_CASES)
def test_holding_selector_changes_back_keeps_the_live_rule_of_each_and_lets_everything_else_go(
    desired: list[tuple[Rule, Source]], live: LifecycleConfig, changed: list[str], held: list[str]
) -> None:
    plan = hold_selector_changes(sourced(desired, live))
    assert [c.rule_id for c in plan.changed] == changed
    assert [c.rule_id for c in plan.held_changes] == held
    live_by_id = {r.id: r for r in live.rules}
    sent = {r.id: r for r in plan.desired.rules}
    assert all(sent[rule_id] == live_by_id[rule_id] for rule_id in held)
    assert plan.action is (Action.PUT if plan.added or plan.changed else Action.NOOP)


def test_a_held_change_is_shown_with_its_source_in_text_and_json() -> None:
    plan = hold_selector_changes(sourced([(rule("expire", 7), FLEET)], config(rule("expire", 3650))))
    lines = lines_of(plan)
    assert lines[0] == "bucket web-logs is not written: its changes are held back"
    assert lines[1].startswith('  ! rule expire  (from fleet.toml Bucket[1], pattern "*") (change held back:')
    assert "      ! Expiration.Days: 3650 -> 7" in lines
    assert lines[-1] == "No changes to write. 1 rule change(s) held back, in 1 of 1 bucket(s)."
    (document,) = plans_json([plan])["buckets"]
    assert document["changed"] == []
    (held,) = document["held_changes"]
    assert held["id"] == "expire"
    assert held["fields"] == [{"field": "Expiration.Days", "before": 3650, "after": 7}]
    assert held["source"]["file"] == "fleet.toml"


def test_a_held_legacy_prefix_rule_is_sent_again_in_the_filter_form_of_the_others() -> None:
    legacy = rule("old", 3, Filter=None, Prefix="tmp/")
    plan = hold_removals(sourced([(rule("abort", 7), FLEET)], config(legacy)))
    assert [r.id for r in plan.desired.rules] == ["abort", "old"]
    assert all(r.filter is not None and r.prefix is None for r in plan.desired.rules)
