"""Parsing definition files: shape problems with key paths, multi-bucket files, merging,
unreadable files, dates in every spelling, and S3's response shape read by the same model."""

from __future__ import annotations

import datetime as dt
import time
import tomllib
from collections.abc import Callable

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lakecircle.core.definitions import Definitions, load_definitions
from lakecircle.core.model import Rule, config_from_response
from lakecircle.core.parse import MAX_FILE_BYTES, _header_problems, _plain_header, parse_file
from lakecircle.core.problems import Severity
from lakecircle.core.toml_reader import MAX_KEY_PARTS, READER, TOMLI, TOMLLIB, TomlError, TomlReader, read_toml

FILE = "defs/b.toml"
NAMED = 'BucketName = "my-bucket"\n'
HEAD = 'BucketName = "my-bucket"\n\n[[LifecycleConfiguration.Rules]]\nID = "r"\nStatus = "Enabled"\n'
"""A one-rule definition, open for the rule's other keys."""

RULE = '[[LifecycleConfiguration.Rules]]\nID = "{id}"\nStatus = "Enabled"\nExpiration = {{ Days = 30 }}\n'


def load(text: str | bytes, name: str = FILE) -> Definitions:
    return load_definitions({name: text.encode() if isinstance(text, str) else text})


def only_problem(definitions: Definitions) -> tuple[str, str | None, str | None, str | None, str]:
    (problem,) = definitions.problems
    assert problem.severity is Severity.ERROR
    return problem.file, problem.bucket, problem.rule, problem.field, problem.message


@pytest.mark.parametrize(
    ("text", "rule", "field", "suggestion"),
    [
        pytest.param(HEAD + "Expiraton = { Days = 30 }\n", "r", "Expiraton", "Expiration", id="rule-key"),
        pytest.param(HEAD + "Expiration = { Dayz = 30 }\n", "r", "Expiration.Dayz", "Days", id="expiration-key"),
        pytest.param(
            HEAD + 'Transitions = [{ Days = 30, StorageClas = "GLACIER" }]\n',
            "r",
            "Transitions[0].StorageClas",
            "StorageClass",
            id="key-inside-an-array",
        ),
        pytest.param(
            HEAD + 'Filter = { And = { Pefix = "a/", Tags = [] } }\nExpiration = { Days = 30 }\n',
            "r",
            "Filter.And.Pefix",
            "Prefix",
            id="key-inside-and",
        ),
        pytest.param(
            HEAD + 'Filter = { Tag = { Key = "k", Value = "v", Valeu = "w" } }\nExpiration = { Days = 30 }\n',
            "r",
            "Filter.Tag.Valeu",
            "Value",
            id="key-inside-a-tag",
        ),
        pytest.param(
            HEAD + "NoncurrentVersionExpiration = { NoncurrentDays = 30, NewerNoncurrentVersion = 3 }\n",
            "r",
            "NoncurrentVersionExpiration.NewerNoncurrentVersion",
            "NewerNoncurrentVersions",
            id="singular-for-plural",
        ),
        pytest.param(
            'TransitionDefaultMinimumObjectSise = "varies_by_storage_class"\n' + HEAD + "Expiration = { Days = 30 }\n",
            None,
            "TransitionDefaultMinimumObjectSise",
            "TransitionDefaultMinimumObjectSize",
            id="bucket-key",
        ),
        pytest.param(
            'BucketName = "my-bucket"\n[LifecycleConfiguration]\nRules = []\nRulez = []\n',
            None,
            "LifecycleConfiguration.Rulez",
            "Rules",
            id="lifecycle-configuration-key",
        ),
        pytest.param(HEAD + "expiration = { Days = 30 }\n", "r", "expiration", "Expiration", id="wrong-case"),
    ],
)
def test_an_unknown_key_is_a_problem_with_its_path_and_a_suggestion(
    text: str, rule: str | None, field: str, suggestion: str
) -> None:
    definitions = load(text)

    problem = next(p for p in definitions.problems if p.field == field)
    assert (problem.file, problem.bucket, problem.rule) == (FILE, "my-bucket", rule)
    assert f"did you mean {suggestion!r}" in problem.message
    assert "my-bucket" in definitions.invalid


def test_an_unknown_key_far_from_any_known_one_lists_the_allowed_keys() -> None:
    _, _, _, field, message = only_problem(load(HEAD + "Expiration = { Days = 30 }\nColour = 'blue'\n"))

    assert field == "Colour"
    assert "did you mean" not in message
    assert "Expiration" in message
    assert "Transitions" in message


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        pytest.param('Expiration = { Days = "30" }', "Expiration.Days", "must be an integer", id="string-for-integer"),
        pytest.param("Expiration = { Days = 30.0 }", "Expiration.Days", "must be an integer", id="float-for-integer"),
        pytest.param("Expiration = { Days = true }", "Expiration.Days", "must be an integer", id="boolean-for-integer"),
        pytest.param(
            'Expiration = { ExpiredObjectDeleteMarker = "yes" }',
            "Expiration.ExpiredObjectDeleteMarker",
            "must be true or false",
            id="string-for-boolean",
        ),
        pytest.param(
            'Filter = "logs/"\nExpiration = { Days = 30 }', "Filter", "must be a table", id="string-for-table"
        ),
        pytest.param(
            'Transitions = { Days = 30, StorageClass = "GLACIER" }',
            "Transitions",
            "must be an array",
            id="table-for-array",
        ),
        pytest.param(
            'Filter = { And = { Prefix = "a/", Tags = { Key = "k", Value = "v" } } }\nExpiration = { Days = 30 }',
            "Filter.And.Tags",
            "must be an array",
            id="table-for-tag-array",
        ),
        pytest.param(
            'Filter = { Tag = { Key = 1, Value = "v" } }\nExpiration = { Days = 30 }',
            "Filter.Tag.Key",
            "must be a string",
            id="integer-for-string",
        ),
        pytest.param('Expiration = { Date = "soon" }', "Expiration.Date", "must be a date", id="word-for-date"),
        pytest.param("Expiration = { Date = 00:00:00 }", "Expiration.Date", "must be a date", id="time-for-date"),
        pytest.param(
            'Transitions = [{ Date = 2030, StorageClass = "GLACIER" }]',
            "Transitions[0].Date",
            "must be a date",
            id="integer-for-transition-date",
        ),
    ],
)
def test_a_wrong_type_is_a_problem_with_its_path(body: str, field: str, expected: str) -> None:
    file, bucket, rule, found_field, message = only_problem(load(HEAD + body + "\n"))

    assert (file, bucket, rule, found_field) == (FILE, "my-bucket", "r", field)
    assert message.startswith(expected)
    assert ", got " in message


def test_a_wrong_type_for_status_names_the_rule() -> None:
    text = NAMED + '[[LifecycleConfiguration.Rules]]\nID = "r"\nStatus = true\nExpiration = { Days = 1 }\n'

    assert only_problem(load(text))[:4] == (FILE, "my-bucket", "r", "Status")


def test_a_bucket_name_of_the_wrong_type_leaves_the_bucket_unknown() -> None:
    definitions = load("BucketName = 3\n" + RULE.format(id="r"))

    assert only_problem(definitions)[:4] == (FILE, None, None, "BucketName")
    assert definitions.partial


def test_a_rule_that_is_not_a_table_is_a_problem_with_its_path() -> None:
    definitions = load('BucketName = "my-bucket"\nLifecycleConfiguration = { Rules = [ "expire" ] }\n')

    assert only_problem(definitions)[:4] == (FILE, "my-bucket", "rule #1", "LifecycleConfiguration.Rules[0]")


@pytest.mark.parametrize(
    ("text", "bucket", "rule", "field"),
    [
        pytest.param(RULE.format(id="r"), None, None, "BucketName", id="BucketName"),
        pytest.param(
            'BucketName = "my-bucket"\n', "my-bucket", None, "LifecycleConfiguration", id="LifecycleConfiguration"
        ),
        pytest.param(
            'BucketName = "my-bucket"\n[LifecycleConfiguration]\n',
            "my-bucket",
            None,
            "LifecycleConfiguration.Rules",
            id="Rules",
        ),
        pytest.param(
            'BucketName = "my-bucket"\n[[LifecycleConfiguration.Rules]]\nID = "r"\nExpiration = { Days = 1 }\n',
            "my-bucket",
            "r",
            "Status",
            id="Status",
        ),
        pytest.param(
            HEAD + "Transitions = [{ Days = 30 }]\n", "my-bucket", "r", "Transitions[0].StorageClass", id="StorageClass"
        ),
        pytest.param(
            HEAD + "NoncurrentVersionTransitions = [{ NoncurrentDays = 30 }]\n",
            "my-bucket",
            "r",
            "NoncurrentVersionTransitions[0].StorageClass",
            id="noncurrent-StorageClass",
        ),
        pytest.param(
            HEAD + 'Filter = { Tag = { Key = "k" } }\nExpiration = { Days = 1 }\n',
            "my-bucket",
            "r",
            "Filter.Tag.Value",
            id="tag-Value",
        ),
    ],
)
def test_a_missing_required_key_is_a_problem_with_its_path(
    text: str, bucket: str | None, rule: str | None, field: str
) -> None:
    file, found_bucket, found_rule, found_field, message = only_problem(load(text))

    assert (file, found_bucket, found_rule, found_field) == (FILE, bucket, rule, field)
    assert message.startswith(f"missing required key {field.rsplit('.', 1)[-1]!r}")


def test_missing_rules_says_how_to_delete_a_configuration() -> None:
    message = only_problem(load('BucketName = "my-bucket"\n[LifecycleConfiguration]\n'))[4]

    assert "Rules = []" in message


def test_an_empty_bucket_name_is_a_problem() -> None:
    definitions = load('BucketName = ""\nLifecycleConfiguration = { Rules = [] }\n')

    assert only_problem(definitions)[3] == "BucketName"
    assert definitions.buckets == {}


def _multi(*names: str | None, broken: str | None = None) -> str:
    text = ""
    for name in names:
        text += "[[Bucket]]\n"
        if name is not None:
            text += f'BucketName = "{name}"\n'
        days = "Dayz" if broken is not None and name == broken else "Days"
        text += (
            f'[[Bucket.LifecycleConfiguration.Rules]]\nID = "r"\nStatus = "Enabled"\nExpiration = {{ {days} = 30 }}\n'
        )
    return text


def test_a_file_may_define_several_buckets() -> None:
    definitions = load(_multi("one", "two", "three"))

    assert set(definitions.buckets) == {"one", "two", "three"}
    assert definitions.problems == ()
    assert all(b.files == (FILE,) for b in definitions.buckets.values())


def test_a_bad_bucket_among_good_ones_leaves_the_good_ones_valid() -> None:
    definitions = load(_multi("one", "two", "three", broken="two"))

    assert set(definitions.buckets) == {"one", "three"}
    assert only_problem(definitions)[:4] == (FILE, "two", "r", "Expiration.Dayz")
    assert not definitions.partial


def test_a_bucket_table_without_a_name_makes_the_picture_partial_but_keeps_the_others() -> None:
    definitions = load(_multi("one", None, "three"))

    assert set(definitions.buckets) == {"one", "three"}
    assert only_problem(definitions)[:4] == (FILE, None, None, "Bucket[1].BucketName")
    assert definitions.partial


def test_top_level_keys_beside_bucket_tables_are_a_problem() -> None:
    definitions = load('BucketName = "stray"\n' + _multi("one"))

    assert only_problem(definitions)[:4] == (FILE, None, None, "BucketName")
    assert "stray" not in definitions.buckets


@pytest.mark.parametrize("text", ["Bucket = 3\n", "Bucket = [1, 2]\n", "Bucket = { BucketName = 'b' }\n"])
def test_a_bucket_key_that_is_not_an_array_of_tables_is_a_problem(text: str) -> None:
    definitions = load(text)

    assert only_problem(definitions)[:4] == (FILE, None, None, "Bucket")
    assert definitions.partial


def test_files_naming_one_bucket_are_merged_into_the_union_of_their_rules() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="one") + RULE.format(id="two")).encode(),
            "defs/z.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="three")).encode(),
        }
    )

    merged = definitions.buckets["my-bucket"]
    assert [r.id for r in merged.config.rules] == ["one", "two", "three"]
    assert merged.files == ("defs/a.toml", "defs/z.toml")
    assert [merged.file_of(i) for i in range(3)] == ["defs/a.toml", "defs/a.toml", "defs/z.toml"]


def test_a_bucket_in_a_multi_bucket_file_merges_with_a_single_bucket_file() -> None:
    definitions = load_definitions(
        {
            "defs/many.toml": _multi("my-bucket", "other").encode(),
            "defs/one.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="extra")).encode(),
        }
    )

    assert [r.id for r in definitions.buckets["my-bucket"].config.rules] == ["r", "extra"]
    assert [r.id for r in definitions.buckets["other"].config.rules] == ["r"]


def test_the_same_rule_id_in_two_files_is_a_problem_naming_both_files() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="dup")).encode(),
            "defs/z.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="dup")).encode(),
        }
    )

    file, bucket, rule, field, message = only_problem(definitions)
    assert (bucket, rule, field) == ("my-bucket", "dup", "ID")
    assert file in {"defs/a.toml", "defs/z.toml"}
    assert "defs/a.toml" in message
    assert "defs/z.toml" in message
    assert definitions.buckets == {}


def _tdmos(value: str, rule_id: str) -> bytes:
    return (
        f'BucketName = "my-bucket"\nTransitionDefaultMinimumObjectSize = "{value}"\n' + RULE.format(id=rule_id)
    ).encode()


def test_two_different_default_minimum_object_sizes_are_a_problem_naming_both_files() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": _tdmos("varies_by_storage_class", "one"),
            "defs/z.toml": _tdmos("all_storage_classes_128K", "two"),
        }
    )

    file, bucket, rule, field, message = only_problem(definitions)
    assert (file, bucket, rule, field) == ("defs/z.toml", "my-bucket", None, "TransitionDefaultMinimumObjectSize")
    assert "defs/a.toml" in message
    assert definitions.buckets == {}


def test_a_conflicting_default_minimum_object_size_names_the_file_that_set_the_other_value() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="one")).encode(),
            "defs/m.toml": _tdmos("varies_by_storage_class", "two"),
            "defs/z.toml": _tdmos("all_storage_classes_128K", "three"),
        }
    )

    file, _, _, _, message = only_problem(definitions)
    assert file == "defs/z.toml"
    assert "in defs/m.toml" in message
    assert "defs/a.toml" not in message


def test_an_invalid_default_minimum_object_size_is_reported_in_the_file_that_holds_it() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="one")).encode(),
            "defs/z.toml": _tdmos("all_storage_classes_128k", "two"),
        }
    )

    problem = next(p for p in definitions.problems if p.field == "TransitionDefaultMinimumObjectSize")
    assert (problem.file, problem.bucket) == ("defs/z.toml", "my-bucket")
    assert "my-bucket" in definitions.invalid


def test_one_default_minimum_object_size_in_one_of_several_files_applies_to_the_bucket() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="one")).encode(),
            "defs/m.toml": _tdmos("varies_by_storage_class", "two"),
            "defs/z.toml": _tdmos("varies_by_storage_class", "three"),
        }
    )

    assert definitions.problems == ()
    assert definitions.buckets["my-bucket"].config.transition_default_minimum_object_size == "varies_by_storage_class"


def test_a_file_over_1_mib_is_refused_and_makes_the_picture_partial() -> None:
    valid = ('BucketName = "my-bucket"\n' + RULE.format(id="r")).encode()
    data = valid + b"#" * (MAX_FILE_BYTES + 1 - len(valid))

    definitions = load(data)

    file, bucket, rule, field, message = only_problem(definitions)
    assert (file, bucket, rule, field) == (FILE, None, None, None)
    assert "1 MiB" in message
    assert definitions.partial
    assert definitions.unreadable == (FILE,)


def test_a_file_of_exactly_1_mib_is_read() -> None:
    valid = ('BucketName = "my-bucket"\n' + RULE.format(id="r")).encode()
    data = valid + b"#" * (MAX_FILE_BYTES - len(valid))

    definitions = load(data)

    assert len(data) == MAX_FILE_BYTES
    assert definitions.problems == ()
    assert "my-bucket" in definitions.buckets


def test_a_file_that_is_not_utf8_is_a_problem_and_makes_the_picture_partial() -> None:
    definitions = load(b'# caf\xc3\xa9 is fine\nBucketName = "caf\xe9"\n')

    file, bucket, _, _, message = only_problem(definitions)
    assert (file, bucket) == (FILE, None)
    assert "UTF-8" in message
    assert "line 2, offset 33" in message
    assert definitions.partial


def test_a_toml_syntax_error_is_a_problem_with_its_line() -> None:
    definitions = load('BucketName = "my-bucket"\n\n[[LifecycleConfiguration.Rules]\nID = "r"\n')

    file, bucket, _, _, message = only_problem(definitions)
    assert (file, bucket) == (FILE, None)
    assert "line 3" in message
    assert definitions.partial


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x = " + "[" * 5000 + "]" * 5000, id="deep-arrays"),
        pytest.param("x = " + "{ a = " * 2000 + "1" + " }" * 2000, id="deep-inline-tables"),
        pytest.param(HEAD + "Filter = { And = { Tags = " + "[" * 200 + "]" * 200 + " } }\n", id="deep-inside-a-rule"),
        pytest.param(HEAD + "Expiraton = " + "[" * 200 + "]" * 200 + "\n", id="deep-under-an-unknown-key"),
    ],
)
def test_deep_nesting_is_a_problem_not_an_exception(text: str) -> None:
    definitions = load(text)

    assert definitions.error_count >= 1
    assert all(p.file == FILE for p in definitions.problems)
    assert definitions.buckets == {}


def test_a_readable_file_with_a_bad_rule_does_not_make_the_picture_partial() -> None:
    definitions = load(HEAD + "Expiraton = { Days = 30 }\n")

    assert not definitions.partial
    assert definitions.unreadable == ()


def test_one_unreadable_file_among_good_ones_makes_the_picture_partial_and_keeps_the_others() -> None:
    definitions = load_definitions(
        {
            "defs/good.toml": ('BucketName = "good"\n' + RULE.format(id="r")).encode(),
            "defs/broken.toml": b"BucketName = ",
        }
    )

    assert definitions.partial
    assert definitions.unreadable == ("defs/broken.toml",)
    assert set(definitions.buckets) == {"good"}


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("2030-01-01", id="toml-date"),
        pytest.param("2030-01-01T00:00:00Z", id="toml-datetime-utc"),
        pytest.param("2030-01-01T00:00:00", id="toml-local-datetime"),
        pytest.param("2030-01-01T02:00:00+02:00", id="toml-datetime-with-offset"),
        pytest.param('"2030-01-01"', id="iso-date-string"),
        pytest.param('"2030-01-01T00:00:00Z"', id="iso-datetime-string"),
        pytest.param('"2030-01-01T00:00:00+00:00"', id="iso-datetime-string-with-offset"),
    ],
)
def test_every_spelling_of_a_date_reads_as_the_same_utc_datetime(spelling: str) -> None:
    text = HEAD + f'Transitions = [{{ Date = {spelling}, StorageClass = "GLACIER" }}]\n'

    definitions = load(text)

    (rule,) = definitions.buckets["my-bucket"].config.rules
    assert rule.transitions[0].date == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert rule.transitions[0].date.utcoffset() == dt.timedelta(0)


def test_parse_file_returns_the_buckets_of_a_file_in_file_order() -> None:
    parsed = parse_file(FILE, _multi("zeta", "alpha", "mu").encode())

    assert [b.name for b in parsed.buckets] == ["zeta", "alpha", "mu"]
    assert parsed.problems == ()
    assert parsed.readable


# -- S3's GetBucketLifecycleConfiguration response, as boto3 returns it ---------------------


def test_a_response_with_an_empty_filter_and_no_id_parses() -> None:
    config = config_from_response(
        {
            "Rules": [{"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}}],
            "TransitionDefaultMinimumObjectSize": "all_storage_classes_128K",
        }
    )

    (rule,) = config.rules
    assert rule.id is None
    assert rule.filter is not None
    assert (rule.filter.prefix, rule.filter.tag, rule.filter.and_) == (None, None, None)
    assert config.transition_default_minimum_object_size == "all_storage_classes_128K"


def test_a_response_with_a_legacy_prefix_parses() -> None:
    config = config_from_response(
        {"Rules": [{"ID": "old", "Prefix": "logs/", "Status": "Disabled", "Expiration": {"Days": 7}}]}
    )

    (rule,) = config.rules
    assert (rule.id, rule.prefix, rule.filter, rule.status) == ("old", "logs/", None, "Disabled")
    assert config.transition_default_minimum_object_size is None


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), id="utc"),
        pytest.param(dt.datetime(2030, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), id="utc-plus-1"),
        pytest.param(dt.datetime(2029, 12, 31, 19, tzinfo=dt.timezone(dt.timedelta(hours=-5))), id="utc-minus-5"),
    ],
)
def test_a_response_with_tz_aware_datetimes_reads_them_as_utc(when: dt.datetime) -> None:
    config = config_from_response(
        {
            "Rules": [
                {
                    "ID": "dated",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [{"Date": when, "StorageClass": "GLACIER"}],
                    "Expiration": {"Date": when + dt.timedelta(days=365)},
                }
            ]
        }
    )

    (rule,) = config.rules
    assert rule.transitions[0].date == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert rule.transitions[0].date.tzinfo == dt.UTC
    assert rule.expiration is not None
    assert rule.expiration.date == dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def test_a_response_with_every_rule_field_parses_into_the_same_model_as_toml() -> None:
    response_rule = {
        "ID": "full",
        "Status": "Enabled",
        "Filter": {
            "And": {
                "Prefix": "p/",
                "Tags": [{"Key": "k", "Value": "v"}],
                "ObjectSizeGreaterThan": 10,
                "ObjectSizeLessThan": 100,
            }
        },
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
        "Expiration": {"Days": 365},
        "NoncurrentVersionTransitions": [
            {"NoncurrentDays": 30, "StorageClass": "GLACIER", "NewerNoncurrentVersions": 2}
        ],
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90, "NewerNoncurrentVersions": 3},
    }
    toml = (
        'BucketName = "my-bucket"\n[[LifecycleConfiguration.Rules]]\nID = "full"\nStatus = "Enabled"\n'
        'Filter = { And = { Prefix = "p/", Tags = [{ Key = "k", Value = "v" }],'
        " ObjectSizeGreaterThan = 10, ObjectSizeLessThan = 100 } }\n"
        'Transitions = [{ Days = 30, StorageClass = "STANDARD_IA" }]\n'
        "Expiration = { Days = 365 }\n"
        'NoncurrentVersionTransitions = [{ NoncurrentDays = 30, StorageClass = "GLACIER",'
        " NewerNoncurrentVersions = 2 }]\n"
        "NoncurrentVersionExpiration = { NoncurrentDays = 90, NewerNoncurrentVersions = 3 }\n"
    )

    (from_response,) = config_from_response({"Rules": [response_rule]}).rules
    (from_toml,) = load(toml).buckets["my-bucket"].config.rules

    assert from_response == from_toml
    assert isinstance(from_response, Rule)


def test_a_shape_problem_in_one_rule_does_not_hide_the_problems_of_the_others() -> None:
    text = HEAD + "Expiraton = { Days = 30 }\n" + RULE.format(id="zero").replace("Days = 30", "Days = 0")

    definitions = load(text)

    assert sorted((p.rule, p.field) for p in definitions.problems) == [("r", "Expiraton"), ("zero", "Expiration.Days")]
    assert definitions.buckets == {}
    assert set(definitions.invalid) == {"my-bucket"}


def test_a_bucket_with_a_shape_problem_is_incomplete_not_a_parsed_bucket() -> None:
    parsed = parse_file(FILE, (HEAD + "Expiraton = { Days = 30 }\n" + RULE.format(id="fine")).encode())

    assert parsed.buckets == ()
    (incomplete,) = parsed.incomplete
    assert [r.id for r in incomplete.config.rules] == ["fine"]
    assert all(p.bucket == "my-bucket" for p in parsed.problems)


def test_an_incomplete_bucket_in_one_file_invalidates_the_bucket_everywhere() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": ('BucketName = "my-bucket"\n' + RULE.format(id="one")).encode(),
            "defs/z.toml": (HEAD + "Expiraton = { Days = 30 }\n").encode(),
        }
    )

    assert definitions.buckets == {}
    assert [(p.file, p.field) for p in definitions.invalid["my-bucket"]] == [("defs/z.toml", "Expiraton")]


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    definitions = load(b"\xef\xbb\xbf" + ('BucketName = "my-bucket"\n' + RULE.format(id="r")).encode())

    assert definitions.problems == ()
    assert "my-bucket" in definitions.buckets


def test_a_default_minimum_object_size_inside_the_configuration_says_where_it_belongs() -> None:
    text = (
        NAMED
        + '[LifecycleConfiguration]\nTransitionDefaultMinimumObjectSize = "varies_by_storage_class"\n'
        + RULE.format(id="r")
    )

    _, bucket, _, field, message = only_problem(load(text))

    assert (bucket, field) == ("my-bucket", "LifecycleConfiguration.TransitionDefaultMinimumObjectSize")
    assert "beside BucketName" in message


_ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.integers(-1, 1),
    st.booleans(),
    st.lists(st.integers(), max_size=1),
    st.dictionaries(
        st.sampled_from(["Rules", "Rulez", "TransitionDefaultMinimumObjectSize"]),
        st.one_of(st.lists(st.integers(), max_size=1), st.text(max_size=1)),
        max_size=2,
    ),
)


def _mostly(right: object) -> st.SearchStrategy[object]:
    """``right`` three times in four, else anything."""
    return st.integers(0, 3).flatmap(lambda n: st.just(right) if n else _ANY_VALUE)


@settings(max_examples=400, deadline=None)
@given(
    name=_mostly("my-bucket"),
    lifecycle=_mostly({"Rules": [{}]}),
    tdmos=_mostly("bogus"),
    ownership=_mostly("shared"),
    stray=st.sampled_from([None, None, None, "Extra", "bucket_name", "BucketName", "LifecycleConfiguration"]),
)
def test_a_header_taken_as_plain_is_one_the_header_model_accepts(
    name: object, lifecycle: object, tdmos: object, ownership: object, stray: str | None
) -> None:
    table: dict[str, object] = {
        "BucketName": name,
        "LifecycleConfiguration": lifecycle,
        "TransitionDefaultMinimumObjectSize": tdmos,
        "Ownership": ownership,
    }
    if stray in table:
        del table[stray]  # a required key missing
    elif stray is not None:
        table[stray] = "x"  # a key the header does not have
    # parse skips the header model for plainly right headers: that must never hide a problem.
    lifecycle = table.get("LifecycleConfiguration")
    plain = _plain_header(table, lifecycle)
    problems = _header_problems(FILE, table, lifecycle, "my-bucket", "")

    assert not (plain and problems), problems
    event(f"plain: {plain}")


# -- every file TOML accepts reads as tomllib reads it --------------------------------------

_PARTS_70 = ".".join(str(n) for n in range(70))
"""A version-like string of 70 dotted parts: a value, not a key."""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(HEAD.replace('ID = "r"', f'ID = "v{_PARTS_70}"') + "Expiration = { Days = 30 }\n", id="dotted-id"),
        pytest.param(
            HEAD + f'Filter = {{ Prefix = "{_PARTS_70}/" }}\nExpiration = {{ Days = 30 }}\n', id="dotted-prefix"
        ),
        pytest.param(f"# release {_PARTS_70}\n" + HEAD + "Expiration = { Days = 30 }\n", id="comment-of-dots"),
        pytest.param(HEAD + f"Expiration = {{ Days = 30 }} # {_PARTS_70}\n", id="trailing-comment-of-dots"),
        pytest.param(
            f"# \"{_PARTS_70}\" '{_PARTS_70}'\n" + HEAD + "Expiration = { Days = 30 }\n", id="quotes-in-a-comment"
        ),
        pytest.param(
            HEAD.replace('ID = "r"', f"ID = '''r'''\n# '''{_PARTS_70}'''") + "Expiration = { Days = 30 }\n",
            id="multi-line-literal-string-then-a-comment",
        ),
        pytest.param(
            f'notes = """\n{_PARTS_70}\n{_PARTS_70}\n"""\n' + HEAD + "Expiration = { Days = 30 }\n",
            id="dots-in-a-multi-line-string",
        ),
    ],
)
def test_a_valid_definition_with_many_dots_outside_keys_is_read(text: str) -> None:
    parsed = parse_file(FILE, text.encode())

    assert parsed.readable
    assert not any(p.bucket is None for p in parsed.problems), parsed.problems


@pytest.mark.parametrize(
    "parts",
    [pytest.param(65, id="65-parts"), pytest.param(300, id="300-parts"), pytest.param(1000, id="1000-parts")],
)
def test_a_key_of_many_parts_up_to_the_readers_limit_is_read_and_reported_as_an_unknown_key(parts: int) -> None:
    key = ".".join(f"k{n}" for n in range(parts))

    definitions = load(HEAD + "Expiration = { Days = 30 }\n" + f"{key} = 1\n")

    assert not definitions.partial
    _, bucket, rule, field, message = only_problem(definitions)
    assert (bucket, rule, field) == ("my-bucket", "r", "k0")
    assert message.startswith("unknown key 'k0'")


def _same(a: object, b: object) -> bool:
    """``a == b`` for documents nested deeper than Python's recursion limit allows ``==``."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _long_key_file(parts: int) -> str:
    return 'BucketName = "my-bucket"\n' + ".".join(["a"] * parts) + " = 1\n"


def _dots(part: str, parts: int) -> str:
    return ".".join([part] * parts)


@pytest.mark.parametrize("reader", [TOMLI, TOMLLIB], ids=lambda r: r.name)
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_long_key_file, id="key"),
        pytest.param(lambda n: f"[{_dots('a', n)}]\n", id="table-header"),
        pytest.param(lambda n: f"x = 1\n[[ {_dots('a', n)} ]]\n", id="array-header"),
        pytest.param(lambda n: f"x = {{ {_dots(chr(34) + 'a.b' + chr(34), n)} = 1 }}\n", id="quoted-parts-inline"),
        pytest.param(lambda n: f"x = {{ {_dots('a', n).replace('.', ' . ')} = 1 }}\n", id="spaced-dots"),
    ],
)
def test_both_readers_read_a_key_of_the_limits_parts_and_refuse_one_more(
    reader: TomlReader, make: Callable[[int], str]
) -> None:
    text = make(MAX_KEY_PARTS)
    assert _same(read_toml(text, reader), tomllib.loads(text))

    with pytest.raises(TomlError, match=r"more than 1,000 dotted parts \(at line (1|2)\)"):
        read_toml(make(MAX_KEY_PARTS + 1), reader)


def test_tomli_is_the_reader_when_installed() -> None:
    assert TOMLI is not None
    assert READER is TOMLI


def test_a_key_of_too_many_parts_is_refused_by_the_tomllib_reader_before_it_burns_the_cpu() -> None:
    # 40,000 parts keep tomllib busy for half a minute (quadratic); the guard answers first.
    text = _long_key_file(40_000)
    began = time.perf_counter()

    with pytest.raises(TomlError, match="line 2"):
        read_toml(text, TOMLLIB)

    assert time.perf_counter() - began < 2


def test_a_key_of_too_many_parts_makes_the_file_unreadable_with_its_line() -> None:
    definitions = load(_long_key_file(MAX_KEY_PARTS + 1))

    file, bucket, _, _, message = only_problem(definitions)
    assert (file, bucket) == (FILE, None)
    assert "more than 1,000 dotted parts (at line 2)" in message
    assert definitions.partial


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("[a]\n[a]\n", "Cannot declare a twice (at line 2, column 3)", id="table-twice"),
        pytest.param(
            '[a."b c".d]\n[a."b c".d]\n', 'Cannot declare a."b c".d twice (at line 2, column 11)', id="quoted-part"
        ),
        pytest.param("a = { b = 1 }\n[a]\n", "Cannot declare a twice", id="inline-table-then-header"),
        pytest.param("a.b = 1\n[a]\n", "Cannot declare a twice", id="dotted-key-then-header"),
    ],
)
def test_a_key_in_a_syntax_error_is_written_as_toml_not_as_a_python_tuple(text: str, shown: str) -> None:
    message = only_problem(load(text))[4]

    assert message.startswith("TOML syntax error: ")
    assert shown in message
    assert "('" not in message


def test_an_integer_past_the_digit_limit_says_its_digits_and_line_not_pythons_limit() -> None:
    definitions = load(HEAD + "Expiration = { Days = " + "9" * 5000 + " }\n")

    message = only_problem(definitions)[4]
    assert message == "an integer with 5,000 digits (at line 6); S3's numbers have at most 19 digits"
    assert definitions.partial


# -- messages in TOML's words, never Python's ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(
            "Expiration = { Date = 00:00:00 }",
            "Expiration.Date",
            "must be a date: a TOML date (2030-01-01), a TOML date-time or an ISO 8601 string, got time 00:00:00",
            id="local-time-for-a-date",
        ),
        pytest.param(
            "Expiration = { Days = 2030-01-01T10:00:00 }",
            "Expiration.Days",
            "must be an integer, got date-time 2030-01-01T10:00:00",
            id="local-date-time-for-days",
        ),
        pytest.param(
            "Expiration = { Days = [2030-01-01, 1.5, 'x', 00:01:00] }",
            "Expiration.Days",
            "must be an integer, got array [2030-01-01, 1.5, 'x', ...]",
            id="array-of-dates-and-times",
        ),
        pytest.param(
            'Expiration = { Days = { a = 2030-01-01, "b c" = [true] } }',
            "Expiration.Days",
            "must be an integer, got table { a = 2030-01-01, 'b c' = [true] }",
            id="table-of-values",
        ),
        pytest.param(
            "Expiration = { Days = 99999999999999999999 }",
            "Expiration.Days",
            "must be at most 9223372036854775807, got integer 99999999999999999999",
            id="integer-past-64-bits",
        ),
        pytest.param(
            "Expiration = { Days = -99999999999999999999 }",
            "Expiration.Days",
            "must be at least -9223372036854775808, got integer -99999999999999999999",
            id="integer-below-64-bits",
        ),
        pytest.param(
            "Expiration = { Date = 0001-01-01T00:00:00+01:00 }",
            "Expiration.Date",
            "0001-01-01T00:00:00+01:00 is outside the years 1 to 9999 in UTC",
            id="date-before-year-1-in-utc",
        ),
        pytest.param(
            "Expiration = { Date = 2030-01-01T00:00:00+02:00 }",
            "Expiration.Date",
            "Date 2030-01-01T00:00:00+02:00 is 2029-12-31T22:00:00Z in UTC, and S3 takes a Date only at midnight UTC;"
            " write the day alone: Date = 2030-01-01",
            id="date-time-with-an-offset",
        ),
        pytest.param(
            'Expiration = { Date = "2030-01-01T00:00:00-05:00" }',
            "Expiration.Date",
            "Date 2030-01-01T00:00:00-05:00 is 2030-01-01T05:00:00Z in UTC, and S3 takes a Date only at midnight UTC;"
            " write the day alone: Date = 2030-01-01",
            id="iso-string-with-an-offset",
        ),
        pytest.param(
            "Expiration = { Date = 2030-01-01T10:00:00 }",
            "Expiration.Date",
            "Date 2030-01-01T10:00:00Z is not at midnight UTC; write the day alone: Date = 2030-01-01",
            id="local-date-time-off-midnight",
        ),
    ],
)
def test_a_value_in_a_message_is_written_as_toml_writes_it(body: str, field: str, message: str) -> None:
    definitions = load(HEAD + body + "\n")

    _, bucket, rule, found_field, found = only_problem(definitions)
    assert (bucket, rule, found_field) == ("my-bucket", "r", field)
    assert found == message


def test_a_date_with_an_offset_does_not_hide_the_other_problems_of_its_rule() -> None:
    body = 'Transitions = [{ Date = 2030-01-01T00:00:00+02:00, StorageClass = "GLACIER" }]\n'
    body += "Expiration = { Date = 2029-06-01 }\n"

    definitions = load(HEAD + body)

    assert [(p.rule, p.field) for p in definitions.problems] == [("r", "Transitions[0].Date"), ("r", "Expiration")]
    assert "(2030-01-01)" in definitions.problems[1].message
