"""core.explain: what became of each rule a selecting definition gives, why the bucket is
authoritative or shared, and where its minimum object size comes from, table by table."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from lakecircle.core.accounts import Account, AccountScope
from lakecircle.core.definitions import Definitions
from lakecircle.core.explain import Explanation, Fate, Unselected, explain, explanation_json, explanation_text
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.selectors import Matcher, Ownership, Selector, Source
from tests.builders import rule, selector

BUCKET = "web-logs"
VARIES = "varies_by_storage_class"


def exact(*rules: Rule, ownership: str | None = None, tdmos: str | None = None) -> BucketDefinition:
    return BucketDefinition(
        BUCKET, LifecycleConfig(rules, tdmos), ("web-logs.toml",), ("web-logs.toml",) * len(rules), ownership
    )


def explained(own: BucketDefinition | None, *selectors: Selector, tags: Mapping[str, str] | None = None) -> Explanation:
    definitions = Definitions(
        buckets={} if own is None else {BUCKET: own},
        invalid={},
        problems=(),
        files=(),
        unreadable=(),
        selectors=selectors,
    )
    return explain(BUCKET, definitions, Matcher(selectors).match(BUCKET), tags, "not read")


BASE = selector("*", rules=(rule("abort", prefix=None),), file="base.toml")
LOGS = selector("*-logs", rules=(rule("expire", 90, prefix=None),), file="logs.toml")
TWIN = selector("web-*", rules=(rule("expire", 90, prefix=None),), file="twin.toml")
RIVAL = selector("web-*", rules=(rule("expire", 10, prefix=None),), file="rival.toml")
LOGS_SOURCE = Source("logs.toml", "logs.toml", "*-logs")

FATE_CASES = [
    pytest.param(
        explained(None, BASE), "base.toml", [("abort", Fate.APPLIED, None)], id="a selector's rule is applied"
    ),
    pytest.param(
        explained(exact(rule("expire", 30, prefix=None)), LOGS),
        "logs.toml",
        [("expire", Fate.OVERRIDDEN, Source("web-logs.toml"))],
        id="a rule the bucket's own definition defines is overridden by it",
    ),
    pytest.param(
        explained(None, LOGS, TWIN),
        "twin.toml",
        [("expire", Fate.SAME, LOGS_SOURCE)],
        id="the same rule from a second selector is applied once, as the first one's",
    ),
    pytest.param(
        explained(None, LOGS, RIVAL),
        "rival.toml",
        [("expire", Fate.CONFLICT, None)],
        id="a rule ID two selectors give different content conflicts",
    ),
]


@pytest.mark.parametrize(("explanation", "file", "expected"), FATE_CASES)
def test_each_selecting_definition_says_what_became_of_its_rules(
    explanation: Explanation, file: str, expected: list[tuple[str, Fate, Source | None]]
) -> None:
    [selecting] = [s for s in explanation.selecting if s.source.file == file]
    assert [(c.rule, c.fate, c.by) for c in selecting.rules] == expected


OWNERSHIP_CASES = [
    pytest.param(
        explained(exact(rule("a")), BASE),
        Ownership.AUTHORITATIVE,
        "its BucketName definition in web-logs.toml is authoritative (the default for a BucketName definition)",
        id="an exact definition is authoritative by default",
    ),
    pytest.param(
        explained(exact(rule("a"), ownership="shared"), BASE),
        Ownership.SHARED,
        'its BucketName definition in web-logs.toml says Ownership = "shared", and no selector says "authoritative"',
        id="an exact definition that says shared, with shared selectors, is shared",
    ),
    pytest.param(
        explained(None, BASE),
        Ownership.SHARED,
        'only selectors select it (shared by default), and none says Ownership = "authoritative"',
        id="selectors alone are shared by default",
    ),
    pytest.param(
        explained(None, BASE, selector("*-logs", rules=(rule("b"),), ownership=Ownership.AUTHORITATIVE)),
        Ownership.AUTHORITATIVE,
        'fleet.toml says Ownership = "authoritative"',
        id="one authoritative selector makes the bucket authoritative",
    ),
]


@pytest.mark.parametrize(("explanation", "ownership", "why"), OWNERSHIP_CASES)
def test_the_ownership_comes_with_its_reason(explanation: Explanation, ownership: Ownership, why: str) -> None:
    assert (explanation.ownership, explanation.ownership_why) == (ownership, why)


TDMOS_CASES = [
    pytest.param(explained(None, BASE), None, id="nobody sets it: no source"),
    pytest.param(
        explained(exact(rule("a"), tdmos=VARIES), selector("*", rules=(rule("b"),), tdmos="all_storage_classes_128K")),
        Source("web-logs.toml"),
        id="the exact definition's value wins",
    ),
    pytest.param(
        explained(None, BASE, selector("*-logs", rules=(rule("b"),), tdmos=VARIES, file="logs.toml")),
        LOGS_SOURCE,
        id="else the selector that sets it",
    ),
]


@pytest.mark.parametrize(("explanation", "source"), TDMOS_CASES)
def test_the_minimum_object_size_names_its_source(explanation: Explanation, source: Source | None) -> None:
    assert explanation.tdmos_source == source


TAG_CASES = [
    pytest.param(None, [], [Unselected.NEEDS_TAGS], id="tags not read: the tag selector needs them"),
    pytest.param({"retention": "1d"}, [], [Unselected.TAGS_DIFFER], id="other tags: the tag selector does not select"),
    pytest.param({"retention": "1y", "team": "web"}, ["tags.toml"], [], id="the tags carried: the selector selects"),
]


@pytest.mark.parametrize(("tags", "selecting", "passed"), TAG_CASES)
def test_a_tag_selector_is_selecting_or_passed_with_why(
    tags: Mapping[str, str] | None, selecting: list[str], passed: list[Unselected]
) -> None:
    tagged = selector("*", tags={"retention": "1y"}, rules=(rule("year", 365),), file="tags.toml")
    explanation = explained(None, BASE, tagged, tags=tags)
    assert [s.source.file for s in explanation.selecting if s.source.file != "base.toml"] == selecting
    assert [p.why for p in explanation.passed] == passed
    assert explanation.tags_note == ("not read" if tags is None else None)


def test_a_bucket_nothing_selects_is_unmanaged() -> None:
    explanation = explained(None, selector("data-*", rules=(rule("a"),)))
    assert not explanation.managed
    assert explanation.combined is None
    assert explanation.valid


# -- in the account that holds the bucket (many accounts) ------------------------------------------

PROD, DEV = "111111111111", "222222222222"
IN_PROD = Account(PROD, f"arn:aws:iam::{PROD}:role/lakecircle", tags=(("env", "prod"),))
PROD_ONLY = AccountScope(tags=(("env", "prod"),))
DEV_ONLY = AccountScope(accounts=frozenset({DEV}))


def scoped(scope: AccountScope, *match: str, file: str) -> Selector:
    return dataclasses.replace(
        selector(*match, rules=(rule(file.removesuffix(".toml"), prefix=None),), file=file), scope=scope
    )


def in_account(own: BucketDefinition | None, *selectors: Selector, account: Account | None = IN_PROD) -> Explanation:
    definitions = Definitions(
        buckets={} if own is None else {BUCKET: own},
        invalid={},
        problems=(),
        files=(),
        unreadable=(),
        selectors=selectors,
    )
    return explain(BUCKET, definitions, Matcher(selectors).match(BUCKET), {}, account=account)


SCOPE_CASES = [
    pytest.param(
        in_account(None, scoped(PROD_ONLY, "*", file="prod.toml"), scoped(DEV_ONLY, "*", file="dev.toml")),
        ["prod.toml"],
        ["dev.toml"],
        id="a selector whose scope leaves the account out does not apply there, and is shown apart",
    ),
    pytest.param(
        in_account(dataclasses.replace(exact(rule("own")), scope=DEV_ONLY), scoped(PROD_ONLY, "*", file="prod.toml")),
        ["prod.toml"],
        ["web-logs.toml"],
        id="a BucketName definition for other accounts does not apply in the account that holds the bucket",
    ),
    pytest.param(
        in_account(None, scoped(DEV_ONLY, "*", file="dev.toml"), account=None),
        ["dev.toml"],
        [],
        id="with one account every definition applies, whatever its scope",
    ),
]


@pytest.mark.parametrize(("explanation", "selecting", "outside"), SCOPE_CASES)
def test_in_the_holding_account_only_the_definitions_its_scope_admits_apply(
    explanation: Explanation, selecting: list[str], outside: list[str]
) -> None:
    assert [s.source.file for s in explanation.selecting] == selecting
    assert [o.source.file for o in explanation.out_of_scope] == outside


def test_the_account_and_the_definitions_left_out_are_said_in_text_and_json() -> None:
    explanation = in_account(None, scoped(DEV_ONLY, "*", file="dev.toml"))
    text = explanation_text(explanation).splitlines()
    document = explanation_json(explanation)

    assert text[:3] == [
        f"bucket {BUCKET}",
        f"account: {PROD}",
        f"no definition that applies in account {PROD} selects it: LakeCircle never reads or writes its"
        " lifecycle rules there",
    ]
    assert f'  dev.toml  (pattern "*"): Accounts = ["{DEV}"]' in text
    assert document["account"] == PROD
    assert document["out_of_scope"] == [
        {
            "file": "dev.toml",
            "selector": "dev.toml",
            "pattern": "*",
            "accounts": [DEV],
            "account_tags": {},
            "scope": f'Accounts = ["{DEV}"]',
        }
    ]


def test_with_one_account_the_json_has_no_account_keys() -> None:
    document = explanation_json(in_account(None, BASE, account=None))
    assert "account" not in document
    assert "out_of_scope" not in document
