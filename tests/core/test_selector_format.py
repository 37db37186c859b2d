"""The selector format: ``BucketMatch``, ``BucketExclude`` and ``BucketTags`` read into
:class:`~lakecircle.core.selectors.Selector` values, every problem of theirs named by file,
table and field, and the selectors carried by :class:`~lakecircle.core.definitions.Definitions`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lakecircle.core.definitions import Definitions, FileBrief, build_definitions, definitions_from_briefs
from lakecircle.core.parse import parse_file
from lakecircle.core.problems import Problem, Severity
from lakecircle.core.selector_checks import pattern_problems
from lakecircle.core.selectors import Ownership

FILE = "defs/fleet.toml"
RULE = '[[LifecycleConfiguration.Rules]]\nID = "{id}"\nStatus = "Enabled"\nFilter = {{}}\n{action}\n'
ABORT = "AbortIncompleteMultipartUpload = { DaysAfterInitiation = 7 }"


def rule(rule_id: str = "abort", action: str = ABORT) -> str:
    return RULE.format(id=rule_id, action=action)


def selector(head: str, *rules: str) -> str:
    """A whole-file selector: ``head`` (its keys) and its rules (one abort rule by default)."""
    return head + "\n" + "".join(rules or (rule(),))


def load(*texts: str) -> Definitions:
    files = [FILE] if len(texts) == 1 else [f"defs/{n}.toml" for n in range(len(texts))]
    return build_definitions(parse_file(name, text.encode()) for name, text in zip(files, texts, strict=True))


# -- what is read ----------------------------------------------------------------------------


def test_a_selector_file_becomes_a_selector_with_sorted_tags_and_shared_ownership() -> None:
    text = selector(
        'BucketMatch = ["*-logs", "logs-*"]\nBucketExclude = ["legal-hold-*"]\n'
        'BucketTags = { team = "data", retention = "1y" }\n'
        'TransitionDefaultMinimumObjectSize = "varies_by_storage_class"'
    )

    definitions = load(text)

    (found,) = definitions.selectors
    assert (found.file, found.where, found.label) == (FILE, "", FILE)
    assert found.match == ("*-logs", "logs-*")
    assert found.exclude == ("legal-hold-*",)
    assert found.tags == (("retention", "1y"), ("team", "data"))
    assert found.ownership is Ownership.SHARED
    assert found.config.transition_default_minimum_object_size == "varies_by_storage_class"
    assert [r.id for r in found.config.rules] == ["abort"]
    assert definitions.problems == ()
    assert not definitions.partial
    assert definitions.buckets == {}


def test_selectors_and_exact_buckets_share_a_file_and_keep_their_table_order() -> None:
    text = (
        '[[Bucket]]\nBucketName = "exact-one"\n'
        + rule("e").replace("[[Life", "[[Bucket.Life")
        + '[[Bucket]]\nBucketMatch = ["a-*"]\nOwnership = "authoritative"\n'
        + rule().replace("[[Life", "[[Bucket.Life")
        + '[[Bucket]]\nBucketMatch = ["b-*"]\n'
        + rule().replace("[[Life", "[[Bucket.Life")
    )

    definitions = load(text)

    assert [(s.label, s.match, s.ownership) for s in definitions.selectors] == [
        (f"{FILE} Bucket[1]", ("a-*",), Ownership.AUTHORITATIVE),
        (f"{FILE} Bucket[2]", ("b-*",), Ownership.SHARED),
    ]
    assert set(definitions.buckets) == {"exact-one"}
    assert definitions.buckets["exact-one"].ownership is None  # exact: authoritative, as today
    assert definitions.problems == ()


def test_selectors_come_in_file_order_across_files() -> None:
    definitions = load(selector('BucketMatch = ["z-*"]'), selector('BucketMatch = ["a-*"]'))

    assert [s.match for s in definitions.selectors] == [("z-*",), ("a-*",)]


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("*", id="a star alone selects every bucket"),
        pytest.param("*-logs", id="a suffix family is a fine pattern"),
        pytest.param("[a-z]*", id="a set of lowercase letters can begin a name"),
        pytest.param("[!.]*[0-9]", id="a negated set and a digit set are fine"),
        pytest.param("a?c", id="three characters without a star are enough"),
        pytest.param("my.bucket.*", id="single periods between literals are fine"),
        pytest.param("a" * 63, id="a name of 63 characters is a pattern too"),
        pytest.param("[]a]*", id="a closing bracket first in a set belongs to the set, as fnmatch reads it"),
    ],
)
def test_a_pattern_that_can_match_a_bucket_name_passes(pattern: str) -> None:
    assert pattern_problems(pattern) == []


# -- errors: one row each ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    text: str
    field: str
    fragment: str
    bucket: str | None = None
    rule: str | None = None


def case(
    head: str, field: str, fragment: str, *rules: str, bucket: str | None = None, rule_id: str | None = None
) -> Case:
    return Case(selector(head, *rules), field, fragment, bucket, rule_id)


ERRORS = {
    "BucketName and BucketMatch together make that bucket invalid": case(
        'BucketName = "exact"\nBucketMatch = ["*"]', "BucketMatch", "cannot stand together", bucket="exact"
    ),
    "BucketTags beside BucketName is an error of that bucket": case(
        'BucketName = "exact"\nBucketTags = { a = "b" }', "BucketTags", "cannot stand beside BucketName", bucket="exact"
    ),
    "BucketExclude without BucketMatch says to write BucketMatch = ['*']": case(
        'BucketExclude = ["x-*"]', "BucketExclude", 'write BucketMatch = ["*"]'
    ),
    "BucketTags without BucketMatch says to write BucketMatch = ['*']": case(
        'BucketTags = { retention = "1y" }', "BucketTags", 'write BucketMatch = ["*"]'
    ),
    "an empty BucketMatch selects nothing": case("BucketMatch = []", "BucketMatch", "BucketMatch is empty"),
    "BucketMatch that is not an array": case('BucketMatch = "*-logs"', "BucketMatch", "must be an array"),
    "a pattern that is not a string": case('BucketMatch = ["a-*", 3]', "BucketMatch[1]", "must be a string"),
    "an upper-case pattern can never match": case('BucketMatch = ["Logs-*"]', "BucketMatch[0]", "write 'logs-*'"),
    "an underscore can never match": case('BucketMatch = ["a_b*"]', "BucketMatch[0]", "holds '_'"),
    "an unclosed set is an invalid glob": case('BucketMatch = ["logs-[0-9*"]', "BucketMatch[0]", "no ']' closes"),
    "a set admitting no bucket-name character can never match": case(
        'BucketMatch = ["[A-Z_]*"]', "BucketMatch[0]", "admits no character"
    ),
    "a pattern beginning with a hyphen can never match": case(
        'BucketMatch = ["-logs*"]', "BucketMatch[0]", "begin with a lowercase letter or a digit"
    ),
    "a pattern ending with a period can never match": case(
        'BucketMatch = ["*logs."]', "BucketMatch[0]", "end with a lowercase letter or a digit"
    ),
    "a reserved prefix can never match": case('BucketMatch = ["xn--*"]', "BucketMatch[0]", "prefix S3 reserves"),
    "a directory bucket suffix can never match": case(
        'BucketMatch = ["*--x-s3"]', "BucketMatch[0]", "suffix S3 reserves for directory buckets"
    ),
    "two adjacent periods can never match": case('BucketMatch = ["a..*"]', "BucketMatch[0]", "two adjacent periods"),
    "a pattern too short without a star can never match": case('BucketMatch = ["a?"]', "BucketMatch[0]", "at least 3"),
    "a pattern needing more than 63 characters can never match": case(
        f'BucketMatch = ["{"?" * 64}*"]', "BucketMatch[0]", "at least 64 characters"
    ),
    "a pattern without wildcards is checked as a bucket name": case(
        'BucketMatch = ["ab"]', "BucketMatch[0]", "it is a name, and bucket name is 2 characters"
    ),
    "an exclusion that can never match is an error too": case(
        'BucketMatch = ["*"]\nBucketExclude = ["Legal-hold-*"]', "BucketExclude[0]", "write 'legal-hold-*'"
    ),
    "an empty tag key": case('BucketMatch = ["*"]\nBucketTags = { "" = "x" }', "BucketTags.''", "cannot be empty"),
    "a tag key over 128 characters": case(
        f'BucketMatch = ["*"]\nBucketTags = {{ {"k" * 129} = "x" }}', f"BucketTags.{'k' * 129}", "at most 128"
    ),
    "a tag value over 256 characters": case(
        f'BucketMatch = ["*"]\nBucketTags = {{ k = "{"v" * 257}" }}', "BucketTags.k", "at most 256"
    ),
    "a tag key beginning with AWS: in upper case is on no bucket (AWS writes aws: in lower case)": case(
        'BucketMatch = ["*"]\nBucketTags = { "AWS:cloudformation:stack-name" = "x" }',
        "BucketTags.'AWS:cloudformation:stack-name'",
        "write 'aws:cloudformation:stack-name'",
    ),
    "a tag key holding a control character": case(
        'BucketMatch = ["*"]\nBucketTags = { "team\\u0007" = "x" }', "BucketTags.'team\\x07'", "control character"
    ),
    "a tag value holding a control character": case(
        'BucketMatch = ["*"]\nBucketTags = { team = "da\\tta" }', "BucketTags.team", "the tag value holds the control"
    ),
    "more than 50 tags": case(
        'BucketMatch = ["*"]\nBucketTags = { ' + ", ".join(f'k{n} = "v"' for n in range(51)) + " }",
        "BucketTags",
        "at most 50",
    ),
    "a tag value that is not a string": case(
        'BucketMatch = ["*"]\nBucketTags = { retention = 365 }', "BucketTags.retention", "must be a string"
    ),
    "an unknown key in a selector": case(
        'BucketMatch = ["*"]\nBucketMatchs = ["x"]', "BucketMatchs", "did you mean 'BucketMatch'"
    ),
    "an Ownership that is not one of its values": case(
        'BucketMatch = ["*"]\nOwnership = "exclusive"', "Ownership", "not one of authoritative, shared"
    ),
    "a TransitionDefaultMinimumObjectSize that is not one of its values": case(
        'BucketMatch = ["*"]\nTransitionDefaultMinimumObjectSize = "128K"',
        "TransitionDefaultMinimumObjectSize",
        "is not one of",
    ),
    "a rule of the wrong shape names the rule's place in the file": case(
        'BucketMatch = ["*"]',
        "LifecycleConfiguration.Rules[0].Expiration.Dayz",
        "did you mean 'Days'",
        rule("r", "Expiration = { Dayz = 3 }"),
        rule_id="r",
    ),
    "a rule S3 would refuse is validated as a bucket's rule is": case(
        'BucketMatch = ["*"]',
        "LifecycleConfiguration.Rules[0].Expiration.Days",
        "positive integer",
        rule("r", "Expiration = { Days = 0 }"),
        rule_id="r",
    ),
    "a rule ID twice in one selector": case(
        'BucketMatch = ["*"]',
        "LifecycleConfiguration.Rules[1].ID",
        "defined more than once for this selector",
        rule("same"),
        rule("same"),
        rule_id="same",
    ),
    "more than 1,000 rules in one selector": case(
        'BucketMatch = ["*"]',
        "LifecycleConfiguration.Rules",
        "over S3's limit of 1000",
        *(rule(f"r{n}") for n in range(1001)),
    ),
}


@pytest.mark.parametrize("row", ERRORS.values(), ids=ERRORS.keys())
def test_a_selector_error_names_file_table_and_field(row: Case) -> None:
    definitions = load(row.text)

    found = [p for p in definitions.problems if p.field == row.field]
    assert found, definitions.problems
    problem = found[0]
    assert (problem.file, problem.bucket, problem.rule, problem.severity) == (
        FILE,
        row.bucket,
        row.rule,
        Severity.ERROR,
    )
    assert row.fragment in problem.message, problem.message
    assert definitions.selectors == ()
    _assert_no_python_in(problem)


@pytest.mark.parametrize(
    ("row", "where"),
    [(row, "Bucket[1].") for row in ERRORS.values()],
    ids=[f"in a [[Bucket]] table: {name}" for name in ERRORS],
)
def test_in_a_bucket_table_the_field_begins_with_the_table(row: Case, where: str) -> None:
    good = '[[Bucket]]\nBucketName = "exact-one"\n' + rule("e").replace("[[Life", "[[Bucket.Life")
    text = good + "[[Bucket]]\n" + row.text.replace("[[LifecycleConfiguration", "[[Bucket.LifecycleConfiguration")

    definitions = load(text)

    assert any(p.field == where + row.field and row.fragment in p.message for p in definitions.problems), [
        str(p) for p in definitions.problems
    ]
    assert "exact-one" in definitions.buckets  # the good table beside it stays valid
    assert definitions.selectors == ()


def test_a_table_with_neither_name_nor_match_keeps_todays_message_and_names_the_alternative() -> None:
    (problem,) = load(rule()).problems

    assert (problem.bucket, problem.field) == (None, "BucketName")
    assert problem.message.startswith("missing required key 'BucketName'")
    assert "BucketMatch" in problem.message


def test_each_pattern_of_a_selector_is_reported_in_one_run() -> None:
    definitions = load(selector('BucketMatch = ["Logs-*", "ok-*", "a_b*"]\nBucketExclude = ["[x"]'))

    assert sorted({p.field or "" for p in definitions.problems}) == [
        "BucketExclude[0]",
        "BucketMatch[0]",
        "BucketMatch[2]",
    ]


def _assert_no_python_in(problem: Problem) -> None:
    text = str(problem)
    assert "Traceback" not in text
    assert "dict" not in text
    assert "list[" not in text
    assert "None" not in text


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param('{ "aws:cloudformation:stack-name" = "billing-prod" }', id="a CloudFormation stack's own tag"),
        pytest.param('{ "aws:servicecatalog:productArn" = "arn:aws:catalog:us-east-1:1:product/p-1" }', id="an ARN"),
        pytest.param('{ "cost center" = "R+D 1" }', id="spaces and plus signs"),
        pytest.param('{ "équipe" = "données", "k" = "" }', id="letters of any script and an empty value"),
        pytest.param('{ "a_b.c:d/e=f+g-h@i" = "1" }', id="every punctuation S3 allows"),
    ],
)
def test_tag_keys_of_awss_own_and_every_character_s3_allows_select_without_a_problem(tags: str) -> None:
    definitions = load(selector(f'BucketMatch = ["*"]\nBucketTags = {tags}'))

    assert definitions.problems == ()
    (found,) = definitions.selectors
    assert found.tags


def test_a_tag_character_s3_does_not_document_is_a_warning_and_the_selector_stays_valid() -> None:
    definitions = load(selector('BucketMatch = ["*"]\nBucketTags = { "team!" = "data#1" }'))

    assert [(p.field, p.severity) for p in definitions.problems] == [
        ("BucketTags.'team!'", Severity.WARNING),
        ("BucketTags.'team!'", Severity.WARNING),
    ]
    key, value = (p.message for p in definitions.problems)
    assert key.startswith("the tag key holds '!'; S3 documents tag keys and values as letters, digits, spaces")
    assert value.startswith("the tag value holds '#'")
    assert len(definitions.selectors) == 1
    assert not definitions.partial


# -- warnings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "warned"),
    [
        pytest.param(
            'BucketMatch = ["*"]\nOwnership = "authoritative"', True, id="every bucket made authoritative warns"
        ),
        pytest.param(
            'BucketMatch = ["*"]\nBucketExclude = ["x-*"]\nOwnership = "authoritative"',
            True,
            id="every bucket but a few made authoritative warns",
        ),
        pytest.param('BucketMatch = ["*"]', False, id="every bucket shared by default does not warn"),
        pytest.param(
            'BucketMatch = ["*"]\nBucketTags = { a = "b" }\nOwnership = "authoritative"',
            False,
            id="every bucket carrying a tag made authoritative does not warn",
        ),
        pytest.param(
            'BucketMatch = ["*-logs"]\nOwnership = "authoritative"',
            False,
            id="a family made authoritative does not warn",
        ),
        pytest.param(
            'BucketMatch = ["?*"]\nOwnership = "authoritative"',
            True,
            id="a star with a question mark is every bucket too",
        ),
        pytest.param(
            'BucketMatch = ["*???"]\nOwnership = "authoritative"',
            True,
            id="three question marks still match every name",
        ),
        pytest.param(
            'BucketMatch = ["????*"]\nOwnership = "authoritative"',
            False,
            id="four question marks leave out three-character names and do not warn",
        ),
    ],
)
def test_every_bucket_made_authoritative_is_a_warning_and_the_selector_stays_valid(head: str, warned: bool) -> None:
    definitions = load(selector(head))

    warnings = [p for p in definitions.problems if p.severity is Severity.WARNING]
    assert [(p.field, "every bucket in the account" in p.message) for p in warnings] == (
        [("Ownership", True)] if warned else []
    )
    assert definitions.error_count == 0
    assert len(definitions.selectors) == 1
    assert not definitions.partial


@pytest.mark.parametrize(
    ("head", "warned"),
    [
        pytest.param('BucketMatch = ["*"]\nBucketExclude = ["*"]', True, id="excluding every name warns"),
        pytest.param(
            'BucketMatch = ["logs-*"]\nBucketExclude = ["?*"]', True, id="excluding every name another way warns"
        ),
        pytest.param(
            'BucketMatch = ["logs-*", "*-logs"]\nBucketExclude = ["*-logs", "logs-*", "xyz"]',
            True,
            id="excluding each pattern it matches warns",
        ),
        pytest.param(
            'BucketMatch = ["logs-*"]\nBucketExclude = ["logs-old-*"]', False, id="excluding a part does not warn"
        ),
        pytest.param(
            'BucketMatch = ["logs-*", "*-logs"]\nBucketExclude = ["logs-*"]',
            False,
            id="excluding one of two patterns does not warn",
        ),
    ],
)
def test_an_exclusion_that_leaves_out_everything_the_selector_matches_is_a_warning(head: str, warned: bool) -> None:
    definitions = load(selector(head))
    warnings = [p.field for p in definitions.problems if p.severity is Severity.WARNING]
    assert warnings == (["BucketExclude"] if warned else [])
    assert definitions.error_count == 0


# -- definitions --------------------------------------------------------------------------------


def test_a_selector_with_an_error_is_left_out_listed_by_label_and_makes_its_file_partial() -> None:
    text = (
        '[[Bucket]]\nBucketMatch = ["ok-*"]\n'
        + rule().replace("[[Life", "[[Bucket.Life")
        + '[[Bucket]]\nBucketMatch = ["Bad-*"]\n'
        + rule().replace("[[Life", "[[Bucket.Life")
        + '[[Bucket]]\nBucketMatch = ["late-*"]\n'
        + rule("r", "Expiration = { Days = 0 }").replace("[[Life", "[[Bucket.Life")
    )

    definitions = load(text)

    assert [s.label for s in definitions.selectors] == [f"{FILE} Bucket[0]"]
    assert sorted(definitions.invalid_selectors) == [f"{FILE} Bucket[1]", f"{FILE} Bucket[2]"]
    assert all(p.is_error for found in definitions.invalid_selectors.values() for p in found)
    assert definitions.unreadable == (FILE,)
    assert definitions.invalid == {}
    (unreadable,) = definitions.unreadable_files
    assert "Bad-*" in unreadable.reason


def test_a_file_of_valid_selectors_only_is_readable_and_defines_no_bucket() -> None:
    definitions = load(selector('BucketMatch = ["*"]'))

    assert definitions.unreadable == ()
    assert not definitions.partial
    assert (dict(definitions.buckets), dict(definitions.invalid)) == ({}, {})


def test_the_loaders_brief_form_carries_the_same_selectors_and_problems() -> None:
    texts = {
        "a.toml": selector('BucketMatch = ["*"]\nOwnership = "authoritative"'),
        "b.toml": '[[Bucket]]\nBucketName = "exact-one"\n'
        + rule("e").replace("[[Life", "[[Bucket.Life")
        + '[[Bucket]]\nBucketMatch = ["x-*"]\n'
        + rule("same").replace("[[Life", "[[Bucket.Life") * 2,
        "c.toml": selector('BucketMatch = ["Up-*"]'),
    }
    parsed = [parse_file(name, text.encode()) for name, text in texts.items()]

    eager = build_definitions(parsed)
    compact = definitions_from_briefs(FileBrief.of(p, texts[p.name].encode()) for p in parsed)

    assert compact.selectors == eager.selectors
    assert [s.file for s in eager.selectors] == ["a.toml"]
    assert dict(compact.invalid_selectors) == dict(eager.invalid_selectors)
    assert sorted(eager.invalid_selectors) == ["b.toml Bucket[1]", "c.toml"]
    assert compact.problems == eager.problems
    assert compact.unreadable == eager.unreadable == ("b.toml", "c.toml")
    assert set(compact.buckets) == set(eager.buckets) == {"exact-one"}
