"""A server's own transition storage classes (``LCC_STORAGE_CLASSES``, passed in as
``storage_classes``): taken as names only, S3's classes keeping their rules, and an unknown
class's error saying how to allow it."""

from __future__ import annotations

from typing import Any

from lakecircle.core.definitions import load_definitions
from lakecircle.core.problems import Severity
from tests.builders import definition, fleet, rule

FILE = "defs/tiers.toml"


def moving(*transitions: dict[str, Any], key: str = "Transitions") -> bytes:
    days = "NoncurrentDays" if key.startswith("Noncurrent") else "Days"
    steps = [{days: t["Days"], "StorageClass": t["StorageClass"]} for t in transitions]
    wire: dict[str, Any] = {key: steps, "Expiration": {"Days": 400}}
    if key.startswith("Noncurrent"):
        wire |= {"Expiration": None, "NoncurrentVersionExpiration": {"NoncurrentDays": 400}}
    return definition("tiered", rule("r1", **wire))


def test_an_unknown_class_is_an_error_that_says_how_to_allow_it() -> None:
    (problem,) = load_definitions({FILE: moving({"Days": 5, "StorageClass": "WARM"})}).problems

    assert (problem.bucket, problem.rule, problem.field) == ("tiered", "r1", "Transitions[0].StorageClass")
    assert problem.severity is Severity.ERROR
    assert "StorageClass 'WARM' is not a transition target" in problem.message
    assert "allow it with LCC_STORAGE_CLASSES=WARM" in problem.message


def test_a_listed_class_is_taken_as_a_name_with_no_minimum_days_nor_order() -> None:
    data = moving({"Days": 90, "StorageClass": "GLACIER"}, {"Days": 1, "StorageClass": "WARM"})

    definitions = load_definitions({FILE: data}, storage_classes={"WARM", "COLD"})

    assert definitions.problems == ()
    assert set(definitions.buckets) == {"tiered"}


def test_a_listed_class_is_taken_in_noncurrent_transitions_too() -> None:
    data = moving({"Days": 3, "StorageClass": "COLD"}, key="NoncurrentVersionTransitions")

    assert load_definitions({FILE: data}).problems != ()
    assert load_definitions({FILE: data}, storage_classes=("COLD",)).problems == ()


def test_s3s_own_classes_keep_their_rules_beside_listed_ones() -> None:
    data = moving({"Days": 10, "StorageClass": "STANDARD_IA"}, {"Days": 20, "StorageClass": "WARM"})

    (problem,) = load_definitions({FILE: data}, storage_classes=("WARM",)).problems

    assert problem.field == "Transitions[0].Days"
    assert "at least 30 days before STANDARD_IA" in problem.message


def test_a_listed_class_twice_in_one_rule_and_negative_days_are_errors() -> None:
    data = moving({"Days": -1, "StorageClass": "WARM"}, {"Days": 5, "StorageClass": "WARM"})

    problems = load_definitions({FILE: data}, storage_classes=("WARM",)).problems

    assert sorted((p.field, p.message) for p in problems) == [
        ("Transitions[0].Days", "Days is -1; it must be at least 0"),
        ("Transitions[1].StorageClass", "StorageClass WARM appears twice in this rule"),
    ]


def test_the_error_lists_the_classes_already_allowed_and_suggests_a_near_one() -> None:
    data = moving({"Days": 5, "StorageClass": "COLDD"})

    (problem,) = load_definitions({FILE: data}, storage_classes=("COLD",)).problems

    assert "(did you mean 'COLD'?)" in problem.message
    assert "LCC_STORAGE_CLASSES=COLD,COLDD" in problem.message


def test_a_selectors_rules_take_the_listed_classes_too() -> None:
    data = fleet(["logs-*"], rule("r1", 400, Transitions=[{"Days": 5, "StorageClass": "WARM"}]))

    assert load_definitions({"fleet.toml": data}).invalid_selectors
    assert not load_definitions({"fleet.toml": data}, storage_classes=("WARM",)).invalid_selectors
