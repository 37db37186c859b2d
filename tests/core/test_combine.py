"""combine: one bucket's desired state from its exact definition and its selectors (issue 15's
rules 1-5), table by table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecircle.core.combine import Combined, Override, combine
from lakecircle.core.digest import rules_digest
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.selectors import Matcher, Ownership, Selector, Source
from tests.builders import exact_definition, rule, selector
from tests.strategies import lifecycle_configs

BUCKET = "web-logs"
K128 = "all_storage_classes_128K"
VARIES = "varies_by_storage_class"


def exact(*rules: Rule, tdmos: str | None = None, ownership: str | None = None) -> BucketDefinition:
    return exact_definition(*rules, bucket=BUCKET, tdmos=tdmos, ownership=ownership)


def combined(definition: BucketDefinition | None, *selectors: Selector) -> Combined:
    found = combine(BUCKET, definition, Matcher(selectors).match(BUCKET))
    assert found is not None
    return found


def base(*rules: Rule, **keys: object) -> Selector:
    return selector("*", rules=rules, file="base.toml", **keys)  # type: ignore[arg-type]


def logs(*rules: Rule, **keys: object) -> Selector:
    return selector("*-logs", rules=rules, file="logs.toml", **keys)  # type: ignore[arg-type]


def test_a_bucket_nothing_selects_is_unmanaged() -> None:
    assert combine(BUCKET, None, Matcher([selector("data-*")]).match(BUCKET)) is None


# --- rule 1 and 2: the union, overrides, duplicates -----------------------------------------

RuleCase = tuple[BucketDefinition | None, list[Selector], list[tuple[str | None, int, str]]]
"""The exact definition, the selectors, and each desired rule as (ID, days, file it comes from)."""

RULE_CASES = [
    pytest.param(exact(rule("a", 5)), [], [("a", 5, "web-logs.toml")], id="an exact definition alone is its rules"),
    pytest.param(
        None,
        [base(rule("abort", 7)), logs(rule("expire", 90))],
        [("abort", 7, "base.toml"), ("expire", 90, "logs.toml")],
        id="the rules of every selector are unioned",
    ),
    pytest.param(
        exact(rule("own", 3)),
        [base(rule("abort", 7))],
        [("own", 3, "web-logs.toml"), ("abort", 7, "base.toml")],
        id="an exact definition's rules and a selector's are unioned",
    ),
    pytest.param(
        exact(rule("expire", 30)),
        [logs(rule("expire", 90))],
        [("expire", 30, "web-logs.toml")],
        id="an exact definition's rule replaces a selector's rule with its ID",
    ),
    pytest.param(
        None,
        [base(rule("abort", 7)), logs(rule("abort", 7))],
        [("abort", 7, "base.toml")],
        id="the same rule from two selectors is one rule from the first",
    ),
    pytest.param(
        None,
        [base(rule("abort", 7, prefix=None)), logs(rule("abort", 7, Filter={"Prefix": ""}))],
        [("abort", 7, "base.toml")],
        id="two spellings of the same rule are one rule",
    ),
    pytest.param(
        None,
        [base(rule(None, 7)), logs(rule(None, 7))],
        [(None, 7, "base.toml")],
        id="the same rule without an ID from two selectors is one rule",
    ),
    pytest.param(
        exact(rule(None, 7)),
        [base(rule(None, 7))],
        [(None, 7, "web-logs.toml")],
        id="a selector's rule without an ID equal to an exact one is that one",
    ),
]


@pytest.mark.parametrize(("definition", "selectors", "expected"), RULE_CASES)
def test_rules_are_the_union_with_exact_overrides(
    definition: BucketDefinition | None, selectors: list[Selector], expected: list[tuple[str | None, int, str]]
) -> None:
    result = combined(definition, *selectors)
    assert result.valid, [str(p) for p in result.problems]
    got = [
        (r.id, r.expiration.days if r.expiration else 0, s.file)
        for r, s in zip(result.config.rules, result.sources, strict=True)
    ]
    assert got == expected


def test_an_override_is_recorded_with_both_sources() -> None:
    result = combined(exact(rule("expire", 30)), logs(rule("expire", 90)))
    assert result.overrides == (
        Override("expire", Source("logs.toml", "logs.toml", "*-logs"), Source("web-logs.toml")),
    )


def test_a_selector_s_sources_name_the_selector_and_its_pattern() -> None:
    result = combined(None, selector("nope-*", "*-logs", rules=(rule("a"),), file="f.toml", where="Bucket[3]."))
    assert result.sources == (Source("f.toml", "f.toml Bucket[3]", "*-logs"),)


def test_two_selectors_giving_one_id_different_content_make_the_bucket_invalid_naming_both() -> None:
    result = combined(None, base(rule("expire", 30)), logs(rule("expire", 90)))
    assert not result.valid
    (problem,) = result.problems
    assert (problem.file, problem.bucket, problem.rule) == ("logs.toml", BUCKET, "expire")
    assert problem.message == (
        "rule ID 'expire' is given to this bucket by base.toml (pattern '*') and by logs.toml"
        " (pattern '*-logs') with different content; give the rule one content in both, rename one"
        " of them, or define the rule in the bucket's own BucketName definition, which overrides both"
    )


def test_an_exact_rule_settles_a_conflict_between_selectors() -> None:
    result = combined(exact(rule("expire", 10)), base(rule("expire", 30)), logs(rule("expire", 90)))
    assert result.valid
    assert [s.file for s in result.sources] == ["web-logs.toml"]
    assert [o.overridden.file for o in result.overrides] == ["base.toml", "logs.toml"]


def test_over_a_thousand_rules_together_make_the_bucket_invalid() -> None:
    many = tuple(rule(f"r{i}") for i in range(600))
    more = tuple(rule(f"s{i}") for i in range(401))
    result = combined(None, base(*many), logs(*more))
    assert not result.valid
    assert "1001 rules" in result.problems[0].message


# --- rule 3: ownership ------------------------------------------------------------------------

OWNERSHIP_CASES = [
    pytest.param(exact(rule("a")), [], False, id="an exact definition is authoritative by default"),
    pytest.param(exact(rule("a")), [base()], False, id="an exact definition keeps the bucket authoritative"),
    pytest.param(None, [base(rule("a"))], True, id="a selector alone is shared by default"),
    pytest.param(
        None, [base(rule("a")), logs(ownership=Ownership.AUTHORITATIVE)], False, id="one authoritative selector wins"
    ),
    pytest.param(
        exact(rule("a"), ownership="shared"), [base()], True, id="a shared exact definition and selectors share"
    ),
    pytest.param(
        exact(rule("a"), ownership="shared"),
        [base(ownership=Ownership.AUTHORITATIVE)],
        False,
        id="an authoritative selector makes a shared exact bucket authoritative",
    ),
]


@pytest.mark.parametrize(("definition", "selectors", "shared"), OWNERSHIP_CASES)
def test_ownership_is_authoritative_when_any_definition_is(
    definition: BucketDefinition | None, selectors: list[Selector], shared: bool
) -> None:
    assert combined(definition, *selectors).shared is shared


# --- rule 4: TransitionDefaultMinimumObjectSize ------------------------------------------------

TDMOS_CASES = [
    pytest.param(None, [base(), logs()], None, id="nobody says it: it stays unsaid"),
    pytest.param(None, [base(tdmos=K128), logs()], K128, id="one selector says it"),
    pytest.param(None, [base(tdmos=K128), logs(tdmos=K128)], K128, id="two selectors agree"),
    pytest.param(exact(tdmos=VARIES), [base(tdmos=K128)], VARIES, id="the exact definition's value wins"),
    pytest.param(
        exact(tdmos=VARIES), [base(tdmos=K128), logs(tdmos=VARIES)], VARIES, id="the exact value settles selectors"
    ),
    pytest.param(exact(), [base(tdmos=K128)], K128, id="a silent exact definition takes the selector's value"),
]


@pytest.mark.parametrize(("definition", "selectors", "expected"), TDMOS_CASES)
def test_the_minimum_object_size_comes_from_the_exact_definition_first(
    definition: BucketDefinition | None, selectors: list[Selector], expected: str | None
) -> None:
    result = combined(definition, *selectors)
    assert result.valid
    assert result.config.transition_default_minimum_object_size == expected


def test_two_selectors_with_different_minimum_object_sizes_make_the_bucket_invalid() -> None:
    result = combined(None, base(tdmos=K128), logs(tdmos=VARIES))
    (problem,) = result.problems
    assert not result.valid
    assert (problem.file, problem.field) == ("logs.toml", "TransitionDefaultMinimumObjectSize")
    assert problem.message == (
        f"TransitionDefaultMinimumObjectSize is '{VARIES}' in logs.toml (pattern '*-logs') but '{K128}'"
        " in base.toml (pattern '*'), and both select this bucket; give them one value, or set"
        " TransitionDefaultMinimumObjectSize in the bucket's own BucketName definition, which wins"
    )


# --- what the engine relies on -------------------------------------------------------------------


def test_the_digest_equals_an_exact_definition_s_with_the_same_rules() -> None:
    rules = (rule("own", 3), rule("abort", 7, prefix=None), rule("expire", 90, prefix="logs/"))
    result = combined(exact(rules[0]), base(rules[1]), logs(rules[2]))
    assert result.digest == rules_digest(exact(*rules).config.rules)


def test_legacy_prefix_rules_take_the_filter_form_beside_filter_rules_with_the_same_digest() -> None:
    legacy = rule("old", 5, prefix=None, Filter=None, Prefix="tmp/")
    result = combined(exact(legacy), base(rule("abort", 7, prefix=None)))
    kept = result.config.rules[0]
    assert (kept.prefix, kept.filter is not None) == (None, True)
    assert result.digest == rules_digest((legacy, rule("abort", 7, prefix=None)))


def test_legacy_prefix_rules_stay_as_written_without_filter_rules() -> None:
    legacy = rule("old", 5, prefix=None, Filter=None, Prefix="tmp/")
    assert combined(exact(legacy), base()).config.rules[0] is legacy


def test_a_selector_s_rules_are_shared_not_copied() -> None:
    shared_rule = rule("abort", 7)
    first = combined(None, base(shared_rule))
    assert first.config.rules[0] is shared_rule


@given(lifecycle_configs(max_rules=8), st.lists(st.integers(0, 2), min_size=8, max_size=8))
def test_rules_spread_over_an_exact_definition_and_selectors_digest_as_one_definition(
    config: LifecycleConfig, owners: list[int]
) -> None:
    rules = config.rules
    parts: list[list[Rule]] = [[], [], []]
    for one, owner in zip(rules, owners, strict=False):
        parts[owner].append(one)
    result = combined(exact(*parts[0]), base(*parts[1]), logs(*parts[2]))
    assert result.valid
    assert result.digest == rules_digest(rules)
    assert sorted(map(id, result.config.rules)) == sorted(map(id, rules))  # the models themselves, no copies
