"""Overlapping prefixes in the legacy rule-level Prefix form: S3's refusal, said before a write.

S3 answers "Found overlapping prefixes 'logs' and '' for same action type 'Expiration'" to a
legacy-form configuration whose prefixes overlap for one action type; Filter-form rules may
overlap.
"""

from __future__ import annotations

import pytest

from lakecircle.core.definitions import load_definitions
from lakecircle.core.model import Rule
from lakecircle.core.validate.legacy import Overlap, overlapping_prefixes
from tests.core.test_validate import BUCKET, FILE, definition_text, load, rule_table


def legacy(rule_id: str, prefix: str, body: str = "Expiration = { Days = 30 }") -> str:
    return rule_table(f'Prefix = "{prefix}"\n{body}', rule_id=rule_id)


def modern(rule_id: str, prefix: str, body: str = "Expiration = { Days = 30 }") -> str:
    return rule_table(f'Filter = {{ Prefix = "{prefix}" }}\n{body}', rule_id=rule_id)


def test_a_legacy_prefix_overlapping_another_for_one_action_type_names_file_bucket_both_rules_and_the_type() -> None:
    definitions = load(definition_text(legacy("all", ""), legacy("logs", "logs")))

    (problem,) = definitions.problems
    assert (problem.file, problem.bucket, problem.rule, problem.field) == (FILE, BUCKET, "logs", "Prefix")
    assert problem.is_error
    assert "legacy rule-level Prefix 'logs' overlaps Prefix '' of rule 'all'" in problem.message
    assert f"in {FILE}, both with action type Expiration;" in problem.message
    assert "Filter = { Prefix = ... }" in problem.message
    assert BUCKET in definitions.invalid


def test_the_same_prefixes_in_filter_form_may_overlap() -> None:
    definitions = load(definition_text(modern("all", ""), modern("logs", "logs")))

    assert definitions.problems == ()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Expiration = { Days = 30 }", 'Transitions = [{ Days = 30, StorageClass = "GLACIER" }]'),
        ("Expiration = { Days = 30 }", "AbortIncompleteMultipartUpload = { DaysAfterInitiation = 3 }"),
        ("NoncurrentVersionExpiration = { NoncurrentDays = 3 }", "Expiration = { Days = 30 }"),
    ],
)
def test_overlapping_legacy_prefixes_with_different_action_types_are_accepted(first: str, second: str) -> None:
    definitions = load(definition_text(legacy("all", "", first), legacy("logs", "logs/", second)))

    assert definitions.problems == ()


def test_disjoint_legacy_prefixes_are_accepted() -> None:
    definitions = load(definition_text(legacy("a", "logs/"), legacy("b", "log-archive/"), legacy("c", "tmp")))

    assert definitions.problems == ()


def test_rules_in_two_files_are_named_with_their_files_and_each_shared_action_type() -> None:
    both = 'Expiration = { Days = 400 }\nTransitions = [{ Days = 30, StorageClass = "GLACIER" }]'
    definitions = load_definitions(
        {
            "defs/base.toml": definition_text(legacy("base", "data/", both)),
            "defs/team.toml": definition_text(legacy("team", "data/team/", both)),
        }
    )

    problems = sorted(definitions.problems, key=lambda p: p.message)
    assert [(p.file, p.rule) for p in problems] == [("defs/team.toml", "team")] * 2
    assert ["action type Expiration" in p.message for p in problems] == [True, False]
    assert all("of rule 'base' in defs/base.toml" in p.message for p in problems)


def rules(*pairs: tuple[str, str]) -> list[Rule]:
    return [
        Rule.model_validate({"ID": rule_id, "Status": "Enabled", "Prefix": prefix, "Expiration": {"Days": 30}})
        for rule_id, prefix in pairs
    ]


def test_each_overlapping_rule_is_named_once_against_the_longest_prefix_it_starts_with() -> None:
    found = overlapping_prefixes(
        rules(("a", ""), ("b", "logs/"), ("c", "logs/app/"), ("d", "metrics/"), ("e", "logs/"))
    )

    assert found == [
        Overlap(0, 1, "Expiration"),  # logs/ within ""
        Overlap(1, 4, "Expiration"),  # the second logs/ within the first
        Overlap(4, 2, "Expiration"),  # logs/app/ within logs/
        Overlap(0, 3, "Expiration"),  # metrics/ within ""
    ]


def test_a_disabled_rule_counts_and_an_expiration_that_says_nothing_does_not() -> None:
    disabled = rule_table('Prefix = "logs"\nExpiration = { Days = 30 }', rule_id="off", status="Disabled")
    silent = legacy(
        "quiet",
        "logs/x",
        "Expiration = { ExpiredObjectDeleteMarker = false }\nNoncurrentVersionExpiration = { NoncurrentDays = 3 }",
    )
    definitions = load(definition_text(legacy("all", ""), disabled, silent))

    assert [(p.rule, "action type Expiration" in p.message) for p in definitions.problems] == [("off", True)]
