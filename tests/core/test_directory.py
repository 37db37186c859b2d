"""Directory buckets (S3 Express One Zone): their names, zones and regions, and the narrower
grammar of their lifecycle rules, each refused field named with what to write instead."""

from __future__ import annotations

from typing import Any

import pytest

from lakecircle.core.definitions import load_definitions
from lakecircle.core.directory import directory_region, is_directory_bucket, region_of_zone, zone_of
from lakecircle.core.problems import Severity
from lakecircle.core.selectors import Matcher
from tests.builders import definition, fleet, rule

FILE = "defs/express.toml"
BUCKET = "logs--use1-az4--x-s3"


@pytest.mark.parametrize(
    ("name", "zone", "region"),
    [
        ("logs--use1-az4--x-s3", "use1-az4", "us-east-1"),
        ("my-logs--usw2-lax1-az1--x-s3", "usw2-lax1-az1", "us-west-2"),
        ("a--b--apne1-az4--x-s3", "apne1-az4", "ap-northeast-1"),
        ("data--euc1-az2--x-s3", "euc1-az2", "eu-central-1"),
        ("data--apse2-az1--x-s3", "apse2-az1", "ap-southeast-2"),
        ("data--eun1-az3--x-s3", "eun1-az3", "eu-north-1"),
    ],
)
def test_a_directory_bucket_names_its_zone_and_the_zone_its_region(name: str, zone: str, region: str) -> None:
    assert is_directory_bucket(name)
    assert zone_of(name) == zone
    assert region_of_zone(zone) == region
    assert directory_region(name) == region


@pytest.mark.parametrize("name", ["logs--x-s3", "logs--use1-zz4--x-s3", "logs--useast1-az4--x-s3", "logs"])
def test_a_name_without_a_zone_id_of_the_right_form_has_no_zone_nor_region(name: str) -> None:
    assert zone_of(name) is None
    assert directory_region(name) is None


def test_a_general_purpose_name_is_no_directory_bucket() -> None:
    assert not is_directory_bucket("logs-use1-az4-x-s3")


def load(data: bytes) -> Any:
    return load_definitions({FILE: data})


def test_a_directory_bucket_with_expiration_by_days_abort_and_prefix_and_size_filters_is_valid() -> None:
    rules = (
        rule("expire", 7, prefix="tmp/"),
        rule("abort", Expiration=None, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}),
        rule("big", 3, prefix=None, Filter={"ObjectSizeGreaterThan": 1_000_000}),
        rule("both", 5, prefix=None, Filter={"And": {"Prefix": "x/", "ObjectSizeLessThan": 4096}}),
    )
    definitions = load(definition(BUCKET, *rules))

    assert definitions.problems == ()
    assert set(definitions.buckets) == {BUCKET}


REFUSED = [
    pytest.param(
        {"Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]},
        "Transitions",
        "refuse transitions; remove Transitions",
        id="transitions",
    ),
    pytest.param(
        {"Expiration": None, "NoncurrentVersionExpiration": {"NoncurrentDays": 3}},
        "NoncurrentVersionExpiration",
        "no noncurrent versions; remove NoncurrentVersionExpiration",
        id="noncurrent-expiration",
    ),
    pytest.param(
        {"NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER"}]},
        "NoncurrentVersionTransitions",
        "no noncurrent versions; remove NoncurrentVersionTransitions",
        id="noncurrent-transitions",
    ),
    pytest.param(
        {"Filter": {"Tag": {"Key": "k", "Value": "v"}}},
        "Filter.Tag",
        "filter by prefix and object size only; remove the tag filter",
        id="tag",
    ),
    pytest.param(
        {"Filter": {"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}]}}},
        "Filter.And.Tags",
        "filter by prefix and object size only; remove Tags from And",
        id="and-tags",
    ),
    pytest.param(
        {"Expiration": {"Date": "2030-01-01T00:00:00Z"}},
        "Expiration.Date",
        "expire objects by age only; write Expiration = { Days = N } instead of a Date",
        id="date",
    ),
    pytest.param(
        {"Filter": {"Prefix": ""}, "Expiration": {"ExpiredObjectDeleteMarker": True}},
        "Expiration.ExpiredObjectDeleteMarker",
        "no delete markers; remove ExpiredObjectDeleteMarker",
        id="delete-marker",
    ),
    pytest.param(
        {"Filter": None, "Prefix": "logs/"},
        "Prefix",
        "take the Filter form only; write Filter = { Prefix = 'logs/' }",
        id="legacy-prefix",
    ),
]


@pytest.mark.parametrize(("wire", "field", "said"), REFUSED)
def test_each_field_a_directory_bucket_refuses_is_named_with_what_to_change(
    wire: dict[str, Any], field: str, said: str
) -> None:
    definitions = load(definition(BUCKET, rule("r1", **wire)))

    found = [p for p in definitions.problems if p.field == field]
    assert len(found) == 1, definitions.problems
    (problem,) = found
    assert (problem.file, problem.bucket, problem.rule, problem.severity) == (FILE, BUCKET, "r1", Severity.ERROR)
    assert "directory buckets (S3 Express One Zone)" in problem.message
    assert said in problem.message
    assert BUCKET in definitions.invalid
    assert BUCKET not in definitions.buckets


@pytest.mark.parametrize(("wire", "field", "said"), REFUSED)
def test_the_same_rule_on_a_general_purpose_bucket_raises_nothing_of_the_directory_grammar(
    wire: dict[str, Any], field: str, said: str
) -> None:
    definitions = load(definition("logs", rule("r1", **wire)))

    assert not [p for p in definitions.problems if "directory buckets" in p.message]


def test_a_directory_bucket_definition_refuses_transition_default_minimum_object_size() -> None:
    data = definition(BUCKET, rule("r1"), TransitionDefaultMinimumObjectSize="all_storage_classes_128K")

    (problem,) = load(data).problems

    assert (problem.bucket, problem.field) == (BUCKET, "TransitionDefaultMinimumObjectSize")
    assert "remove it from this bucket's definition" in problem.message


def test_every_refused_field_of_one_rule_is_named_at_once() -> None:
    wire: dict[str, Any] = {
        "Filter": {"Tag": {"Key": "k", "Value": "v"}},
        "Expiration": {"Days": 40},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
        "NoncurrentVersionExpiration": {"NoncurrentDays": 3},
    }

    problems = load(definition(BUCKET, rule("r1", **wire))).problems

    assert {p.field for p in problems if "directory buckets" in p.message} == {
        "Filter.Tag",
        "Transitions",
        "NoncurrentVersionExpiration",
    }


def test_a_malformed_zone_id_is_said_beside_the_suffix() -> None:
    (problem,) = load(definition("logs--use1-zz4--x-s3", rule("r1"))).problems

    assert problem.field == "BucketName"
    assert "zone ID 'use1-zz4', which is not one" in problem.message
    assert "use1-az4" in problem.message


@pytest.mark.parametrize(
    ("name", "said"),
    [
        (
            "logs--USE1-AZ4--x-s3",
            "but it holds upper-case letters; directory bucket names are lower case: write 'logs--use1-az4--x-s3'",
        ),
        (
            "--use1-az4--x-s3",
            "but its base name before the zone ID is empty: write <base>--use1-az4--x-s3, such as logs--use1-az4--x-s3",
        ),
        ("--USE1-AZ4--x-s3", "but its base name before the zone ID is empty: write <base>--use1-az4--x-s3"),
        ("logs--x-s3", "but it holds no zone ID: write <base>--<zone id>--x-s3, such as logs--use1-az4--x-s3"),
        ("L" * 70 + "--USE1-AZ4--x-s3", "but it is 86 characters; write <base>--<zone id>--x-s3 in 3 to 63"),
    ],
)
def test_a_name_that_is_no_base_zone_and_suffix_says_what_is_wrong(name: str, said: str) -> None:
    (problem,) = load(definition(name, rule("r1"))).problems

    assert problem.field == "BucketName"
    assert problem.message.startswith("bucket name ends in '--x-s3', so it names a directory bucket")
    assert said in problem.message


def test_selectors_never_select_a_directory_bucket() -> None:
    definitions = load_definitions({"fleet.toml": fleet(["*"], rule("r1"))})
    matcher = Matcher(definitions.selectors)

    assert matcher.match("logs")
    assert matcher.match(BUCKET) == ()
