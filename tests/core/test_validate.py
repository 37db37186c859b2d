"""Validation of definitions against S3's documented constraints (rules 1-12 of the issue).

Every constraint has a table row that breaks it and a row that sits on its boundary and
passes. Definitions go through the real path: TOML bytes -> parse -> merge -> validate
(:func:`lakecircle.core.definitions.load_definitions`), and the tests assert on the fields of
each problem (file, bucket, rule, field, severity), not on a count alone.
"""

from __future__ import annotations

import pytest

from lakecircle.core.definitions import Definitions, load_definitions
from lakecircle.core.model import AndOperator, Expiration, Filter, Rule
from lakecircle.core.problems import Problem, Severity
from lakecircle.core.validate.rule import NO_ACTION_FIELD, check_rule

FILE = "defs/b.toml"
BUCKET = "my-bucket"
ERROR = Severity.ERROR
WARNING = Severity.WARNING


def rule_table(body: str = "Expiration = { Days = 30 }", *, rule_id: str | None = "r", status: str = "Enabled") -> str:
    """One ``[[LifecycleConfiguration.Rules]]`` table; ``body`` holds its other keys."""
    lines = ["[[LifecycleConfiguration.Rules]]"]
    if rule_id is not None:
        lines.append(f'ID = "{rule_id}"')
    lines.append(f'Status = "{status}"')
    lines.append(body)
    return "\n".join(lines) + "\n"


def definition_text(*rules: str, header: str = "") -> bytes:
    """A definition file for bucket ``b`` holding ``rules`` (none: ``Rules = []``)."""
    text = f'BucketName = "{BUCKET}"\n{header}\n'
    text += "".join(rules) if rules else "[LifecycleConfiguration]\nRules = []\n"
    return text.encode()


def load(data: bytes) -> Definitions:
    return load_definitions({FILE: data})


def fields(problems: tuple[Problem, ...]) -> list[tuple[str, str | None, str | None, str | None, Severity]]:
    return sorted(
        ((p.file, p.bucket, p.rule, p.field, p.severity) for p in problems),
        key=lambda t: (str(t[2]), str(t[3])),
    )


def tag(key: str, value: str = "v") -> str:
    return f'{{ Key = "{key}", Value = "{value}" }}'


def tr(cls: str, days: int | None = None, date: str | None = None) -> str:
    when = f"Days = {days}" if days is not None else f"Date = {date}"
    return f'{{ {when}, StorageClass = "{cls}" }}'


def ntr(cls: str, days: int, newer: int | None = None) -> str:
    extra = f", NewerNoncurrentVersions = {newer}" if newer is not None else ""
    return f'{{ NoncurrentDays = {days}, StorageClass = "{cls}"{extra} }}'


ABORT = "AbortIncompleteMultipartUpload = { DaysAfterInitiation = 7 }"
EODM = "Expiration = { ExpiredObjectDeleteMarker = true }"

# (definition, [(rule, field), ...]): each listed problem is an error and the only one.
REJECTED = [
    # 1. At most 1,000 rules; IDs required, 1 to 255 characters, unique per bucket.
    pytest.param(definition_text(rule_table(rule_id="x" * 256)), [("x" * 256, "ID")], id="id-of-256-characters"),
    pytest.param(definition_text(rule_table(rule_id="")), [("rule #1", "ID")], id="empty-id"),
    pytest.param(definition_text(rule_table(rule_id=None)), [("rule #1", "ID")], id="missing-id"),
    pytest.param(definition_text(rule_table(), rule_table()), [("r", "ID")], id="duplicate-id-in-one-file"),
    pytest.param(
        definition_text(*(rule_table(rule_id=f"r{i}") for i in range(1001))),
        [(None, "LifecycleConfiguration.Rules")],
        id="1001-rules",
    ),
    # 2. Status exactly Enabled or Disabled.
    pytest.param(definition_text(rule_table(status="enabled")), [("r", "Status")], id="status-lowercase"),
    pytest.param(definition_text(rule_table(status="Active")), [("r", "Status")], id="status-other-word"),
    pytest.param(definition_text(rule_table(status="")), [("r", "Status")], id="status-empty"),
    # 3. A Filter or a legacy Prefix, not both; one bucket does not mix the forms.
    pytest.param(
        definition_text(rule_table('Prefix = "logs/"\nFilter = { Prefix = "logs/" }\nExpiration = { Days = 30 }')),
        [("r", "Prefix")],
        id="filter-and-prefix-in-one-rule",
    ),
    pytest.param(
        definition_text(
            rule_table('Filter = { Prefix = "new/" }\nExpiration = { Days = 30 }', rule_id="modern"),
            rule_table('Prefix = "old/"\nExpiration = { Days = 30 }', rule_id="legacy"),
        ),
        [("legacy", "Prefix")],
        id="legacy-prefix-and-filter-mixed-in-bucket",
    ),
    # 4. One predicate per Filter; And holds two or more; unique tag keys; tag lengths.
    pytest.param(
        definition_text(rule_table(f'Filter = {{ Prefix = "a/", Tag = {tag("k")} }}\nExpiration = {{ Days = 30 }}')),
        [("r", "Filter")],
        id="filter-prefix-and-tag-without-and",
    ),
    pytest.param(
        definition_text(
            rule_table("Filter = { ObjectSizeGreaterThan = 1, ObjectSizeLessThan = 10 }\nExpiration = { Days = 30 }")
        ),
        [("r", "Filter")],
        id="filter-two-sizes-without-and",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f'Filter = {{ Prefix = "a/", And = {{ Prefix = "b/", Tags = [{tag("k")}] }} }}\n'
                f"Expiration = {{ Days = 30 }}"
            )
        ),
        [("r", "Filter")],
        id="and-beside-a-sibling-predicate",
    ),
    pytest.param(
        definition_text(rule_table('Filter = { And = { Prefix = "a/" } }\nExpiration = { Days = 30 }')),
        [("r", "Filter.And")],
        id="and-with-only-a-prefix",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ And = {{ Tags = [{tag('k')}] }} }}\nExpiration = {{ Days = 30 }}")),
        [("r", "Filter.And")],
        id="and-with-only-one-tag",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f"Filter = {{ And = {{ Tags = [{tag('k', '1')}, {tag('k', '2')}] }} }}\nExpiration = {{ Days = 30 }}"
            )
        ),
        [("r", "Filter.And.Tags")],
        id="duplicate-tag-keys-in-and",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k' * 129)} }}\nExpiration = {{ Days = 30 }}")),
        [("r", "Filter.Tag.Key")],
        id="tag-key-of-129-characters",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('')} }}\nExpiration = {{ Days = 30 }}")),
        [("r", "Filter.Tag.Key")],
        id="empty-tag-key",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k', 'v' * 257)} }}\nExpiration = {{ Days = 30 }}")),
        [("r", "Filter.Tag.Value")],
        id="tag-value-of-257-characters",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f'Filter = {{ And = {{ Prefix = "a/", Tags = [{tag("k" * 129)}] }} }}\nExpiration = {{ Days = 30 }}'
            )
        ),
        [("r", "Filter.And.Tags[0].Key")],
        id="tag-key-of-129-characters-in-and",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f'Filter = {{ And = {{ Prefix = "a/", Tags = [{tag("k", "v" * 257)}] }} }}\n'
                f"Expiration = {{ Days = 30 }}"
            )
        ),
        [("r", "Filter.And.Tags[0].Value")],
        id="tag-value-of-257-characters-in-and",
    ),
    # 5. ObjectSizeGreaterThan >= 0, ObjectSizeLessThan >= 1, less-than above greater-than.
    pytest.param(
        definition_text(rule_table("Filter = { ObjectSizeGreaterThan = -1 }\nExpiration = { Days = 30 }")),
        [("r", "Filter.ObjectSizeGreaterThan")],
        id="size-greater-than-negative",
    ),
    pytest.param(
        definition_text(rule_table("Filter = { ObjectSizeLessThan = 0 }\nExpiration = { Days = 30 }")),
        [("r", "Filter.ObjectSizeLessThan")],
        id="size-less-than-zero",
    ),
    pytest.param(
        definition_text(
            rule_table(
                "Filter = { And = { ObjectSizeGreaterThan = 100, ObjectSizeLessThan = 100 } }\n"
                "Expiration = { Days = 30 }"
            )
        ),
        [("r", "Filter.And.ObjectSizeLessThan")],
        id="size-less-than-equal-to-greater-than",
    ),
    pytest.param(
        definition_text(
            rule_table(
                "Filter = { And = { ObjectSizeGreaterThan = 100, ObjectSizeLessThan = 50 } }\n"
                "Expiration = { Days = 30 }"
            )
        ),
        [("r", "Filter.And.ObjectSizeLessThan")],
        id="size-less-than-below-greater-than",
    ),
    # 6. At least one action.
    pytest.param(definition_text(rule_table('Filter = { Prefix = "a/" }')), [("r", NO_ACTION_FIELD)], id="no-action"),
    # 7. Expiration holds exactly one of Days (>= 1), Date, ExpiredObjectDeleteMarker.
    pytest.param(
        definition_text(rule_table("Expiration = { Days = 30, Date = 2030-01-01 }")),
        [("r", "Expiration")],
        id="expiration-days-and-date",
    ),
    pytest.param(
        definition_text(rule_table("Expiration = { Days = 30, ExpiredObjectDeleteMarker = true }")),
        [("r", "Expiration")],
        id="expiration-days-and-delete-marker",
    ),
    pytest.param(
        definition_text(rule_table("Expiration = { Date = 2030-01-01, ExpiredObjectDeleteMarker = true }")),
        [("r", "Expiration")],
        id="expiration-date-and-delete-marker",
    ),
    pytest.param(definition_text(rule_table("Expiration = {}")), [("r", "Expiration")], id="expiration-empty"),
    pytest.param(
        definition_text(rule_table("Expiration = { Days = 0 }")), [("r", "Expiration.Days")], id="expiration-days-0"
    ),
    # 8. Every Date at midnight UTC; no Date and Days mixed in one rule.
    pytest.param(
        definition_text(rule_table("Expiration = { Date = 2030-01-01T01:00:00Z }")),
        [("r", "Expiration.Date")],
        id="expiration-date-at-0100-utc",
    ),
    pytest.param(
        definition_text(rule_table("Expiration = { Date = 2030-01-01T00:00:00+01:00 }")),
        [("r", "Expiration.Date")],
        id="expiration-date-at-local-midnight-not-utc",
    ),
    pytest.param(
        definition_text(rule_table('Expiration = { Date = "2030-01-01T00:00:01Z" }')),
        [("r", "Expiration.Date")],
        id="expiration-date-string-one-second-past-midnight",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', date='2030-01-01T12:00:00Z')}]")),
        [("r", "Transitions[0].Date")],
        id="transition-date-at-noon",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 30)}]\nExpiration = {{ Date = 2031-01-01 }}")),
        [("r", "Transitions")],
        id="transition-days-with-expiration-date",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Transitions = [{tr('GLACIER', date='2030-01-01')}]\nExpiration = {{ Days = 400 }}")
        ),
        [("r", "Transitions")],
        id="transition-date-with-expiration-days",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 30)}, {tr('DEEP_ARCHIVE', date='2031-01-01')}]")),
        [("r", "Transitions")],
        id="transitions-mixing-days-and-date",
    ),
    # 9. Known classes, no class twice, Days >= 0 (>= 30 to the IA classes).
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER-IR', 30)}]")),
        [("r", "Transitions[0].StorageClass")],
        id="unknown-storage-class",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('STANDARD', 30)}]")),
        [("r", "Transitions[0].StorageClass")],
        id="transition-to-standard",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 30)}, {tr('GLACIER', 60)}]")),
        [("r", "Transitions[1].StorageClass")],
        id="storage-class-twice",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', -1)}]")),
        [("r", "Transitions[0].Days")],
        id="transition-days-negative",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('STANDARD_IA', 29)}]")),
        [("r", "Transitions[0].Days")],
        id="standard-ia-at-day-29",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('ONEZONE_IA', 29)}]")),
        [("r", "Transitions[0].Days")],
        id="onezone-ia-at-day-29",
    ),
    pytest.param(
        definition_text(rule_table('Transitions = [{ StorageClass = "GLACIER" }]')),
        [("r", "Transitions[0]")],
        id="transition-without-days-or-date",
    ),
    pytest.param(
        definition_text(rule_table('Transitions = [{ Days = 30, Date = 2030-01-01, StorageClass = "GLACIER" }]')),
        [("r", "Transitions[0]")],
        id="transition-with-days-and-date",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('STANDARD_IA', 29)}]")),
        [("r", "NoncurrentVersionTransitions[0].NoncurrentDays")],
        id="noncurrent-standard-ia-at-day-29",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('ONEZONE_IA', 29)}]")),
        [("r", "NoncurrentVersionTransitions[0].NoncurrentDays")],
        id="noncurrent-onezone-ia-at-day-29",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('GLACIER', -1)}]")),
        [("r", "NoncurrentVersionTransitions[0].NoncurrentDays")],
        id="noncurrent-days-negative",
    ),
    pytest.param(
        definition_text(rule_table('NoncurrentVersionTransitions = [{ StorageClass = "GLACIER" }]')),
        [("r", "NoncurrentVersionTransitions[0].NoncurrentDays")],
        id="noncurrent-transition-without-days",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('GLACIER_FLEXIBLE', 30)}]")),
        [("r", "NoncurrentVersionTransitions[0].StorageClass")],
        id="noncurrent-unknown-storage-class",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('GLACIER', 30)}, {ntr('GLACIER', 60)}]")),
        [("r", "NoncurrentVersionTransitions[1].StorageClass")],
        id="noncurrent-storage-class-twice",
    ),
    # 10. The waterfall with increasing days; expiration after every transition.
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 30)}, {tr('STANDARD_IA', 60)}]")),
        [("r", "Transitions")],
        id="standard-ia-after-glacier",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('DEEP_ARCHIVE', 90)}, {tr('GLACIER', 180)}]")),
        [("r", "Transitions")],
        id="glacier-after-deep-archive",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER_IR', 60)}, {tr('ONEZONE_IA', 90)}]")),
        [("r", "Transitions")],
        id="onezone-ia-after-glacier-ir",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Transitions = [{tr('GLACIER', date='2030-06-01')}, {tr('DEEP_ARCHIVE', date='2030-01-01')}]")
        ),
        [("r", "Transitions")],
        id="deep-archive-date-before-glacier-date",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 60)}]\nExpiration = {{ Days = 60 }}")),
        [("r", "Expiration")],
        id="expiration-on-the-day-of-a-transition",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Transitions = [{tr('STANDARD_IA', 30)}, {tr('GLACIER', 90)}]\nExpiration = {{ Days = 60 }}")
        ),
        [("r", "Expiration")],
        id="expiration-before-the-last-transition",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Transitions = [{tr('GLACIER', date='2030-01-01')}]\nExpiration = {{ Date = 2030-01-01 }}")
        ),
        [("r", "Expiration")],
        id="expiration-date-equal-to-transition-date",
    ),
    pytest.param(
        definition_text(
            rule_table(f"NoncurrentVersionTransitions = [{ntr('DEEP_ARCHIVE', 30)}, {ntr('GLACIER', 60)}]")
        ),
        [("r", "NoncurrentVersionTransitions")],
        id="noncurrent-glacier-after-deep-archive",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f"NoncurrentVersionTransitions = [{ntr('GLACIER', 60)}]\n"
                "NoncurrentVersionExpiration = { NoncurrentDays = 60 }"
            )
        ),
        [("r", "NoncurrentVersionExpiration.NoncurrentDays")],
        id="noncurrent-expiration-on-the-day-of-a-noncurrent-transition",
    ),
    # 11. NoncurrentDays >= 1; NewerNoncurrentVersions 1 to 100; DaysAfterInitiation >= 1.
    pytest.param(
        definition_text(rule_table("NoncurrentVersionExpiration = { NoncurrentDays = 0 }")),
        [("r", "NoncurrentVersionExpiration.NoncurrentDays")],
        id="noncurrent-expiration-days-0",
    ),
    pytest.param(
        definition_text(rule_table("NoncurrentVersionExpiration = { NewerNoncurrentVersions = 5 }")),
        [("r", "NoncurrentVersionExpiration.NoncurrentDays")],
        id="noncurrent-expiration-without-days",
    ),
    pytest.param(
        definition_text(
            rule_table("NoncurrentVersionExpiration = { NoncurrentDays = 30, NewerNoncurrentVersions = 0 }")
        ),
        [("r", "NoncurrentVersionExpiration.NewerNoncurrentVersions")],
        id="newer-noncurrent-versions-0",
    ),
    pytest.param(
        definition_text(
            rule_table("NoncurrentVersionExpiration = { NoncurrentDays = 30, NewerNoncurrentVersions = 101 }")
        ),
        [("r", "NoncurrentVersionExpiration.NewerNoncurrentVersions")],
        id="newer-noncurrent-versions-101",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('GLACIER', 30, newer=0)}]")),
        [("r", "NoncurrentVersionTransitions[0].NewerNoncurrentVersions")],
        id="noncurrent-transition-newer-versions-0",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('GLACIER', 30, newer=101)}]")),
        [("r", "NoncurrentVersionTransitions[0].NewerNoncurrentVersions")],
        id="noncurrent-transition-newer-versions-101",
    ),
    pytest.param(
        definition_text(rule_table("AbortIncompleteMultipartUpload = { DaysAfterInitiation = 0 }")),
        [("r", "AbortIncompleteMultipartUpload.DaysAfterInitiation")],
        id="abort-after-0-days",
    ),
    pytest.param(
        definition_text(rule_table("AbortIncompleteMultipartUpload = {}")),
        [("r", "AbortIncompleteMultipartUpload.DaysAfterInitiation")],
        id="abort-without-days",
    ),
    # 12. No AbortIncompleteMultipartUpload / ExpiredObjectDeleteMarker with tags or sizes.
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k')} }}\n{ABORT}")),
        [("r", "AbortIncompleteMultipartUpload")],
        id="abort-with-tag-filter",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ ObjectSizeGreaterThan = 1024 }}\n{ABORT}")),
        [("r", "AbortIncompleteMultipartUpload")],
        id="abort-with-size-greater-than-filter",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ ObjectSizeLessThan = 1024 }}\n{ABORT}")),
        [("r", "AbortIncompleteMultipartUpload")],
        id="abort-with-size-less-than-filter",
    ),
    pytest.param(
        definition_text(rule_table(f'Filter = {{ And = {{ Prefix = "a/", Tags = [{tag("k")}] }} }}\n{ABORT}')),
        [("r", "AbortIncompleteMultipartUpload")],
        id="abort-with-prefix-and-tags",
    ),
    pytest.param(
        definition_text(rule_table(f'Filter = {{ And = {{ Prefix = "a/", ObjectSizeGreaterThan = 0 }} }}\n{ABORT}')),
        [("r", "AbortIncompleteMultipartUpload")],
        id="abort-with-prefix-and-size",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k')} }}\n{EODM}")),
        [("r", "Expiration.ExpiredObjectDeleteMarker")],
        id="delete-marker-with-tag-filter",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ ObjectSizeLessThan = 1024 }}\n{EODM}")),
        [("r", "Expiration.ExpiredObjectDeleteMarker")],
        id="delete-marker-with-size-filter",
    ),
    pytest.param(
        definition_text(rule_table(f'Filter = {{ And = {{ Prefix = "a/", Tags = [{tag("k")}] }} }}\n{EODM}')),
        [("r", "Expiration.ExpiredObjectDeleteMarker")],
        id="delete-marker-with-prefix-and-tags",
    ),
    # TransitionDefaultMinimumObjectSize is one of its two values.
    pytest.param(
        definition_text(rule_table(), header='TransitionDefaultMinimumObjectSize = "all_storage_classes_128k"'),
        [(None, "TransitionDefaultMinimumObjectSize")],
        id="tdmos-wrong-case",
    ),
    pytest.param(
        definition_text(rule_table(), header='TransitionDefaultMinimumObjectSize = "128K"'),
        [(None, "TransitionDefaultMinimumObjectSize")],
        id="tdmos-unknown-value",
    ),
    # Numbers beyond the API's integer types.
    pytest.param(
        definition_text(rule_table("Expiration = { Days = 2147483648 }")),
        [("r", "Expiration.Days")],
        id="days-beyond-32-bits",
    ),
]


@pytest.mark.parametrize(("data", "expected"), REJECTED)
def test_rejects_a_definition_that_breaks_an_s3_constraint(data: bytes, expected: list[tuple[str | None, str]]) -> None:
    definitions = load(data)

    assert fields(definitions.problems) == sorted(
        ((FILE, BUCKET, rule_id, field, ERROR) for rule_id, field in expected),
        key=lambda t: (str(t[2]), str(t[3])),
    )
    assert BUCKET not in definitions.buckets
    assert set(definitions.invalid) == {BUCKET}
    assert all(p.message for p in definitions.problems)


# Definitions on the boundary of a constraint: valid, without even a warning.
ACCEPTED = [
    # 1.
    pytest.param(definition_text(rule_table(rule_id="x" * 255)), id="id-of-255-characters"),
    pytest.param(definition_text(rule_table(rule_id="x")), id="id-of-1-character"),
    pytest.param(definition_text(*(rule_table(rule_id=f"r{i}") for i in range(1000))), id="1000-rules"),
    pytest.param(definition_text(), id="no-rules-means-delete"),
    pytest.param(definition_text(rule_table(rule_id="a"), rule_table(rule_id="A")), id="ids-differing-only-in-case"),
    # 2.
    pytest.param(definition_text(rule_table(status="Enabled")), id="status-enabled"),
    pytest.param(definition_text(rule_table(status="Disabled")), id="status-disabled"),
    # 3.
    pytest.param(
        definition_text(
            rule_table('Prefix = "logs/"\nExpiration = { Days = 30 }', rule_id="a"),
            rule_table('Prefix = ""\nAbortIncompleteMultipartUpload = { DaysAfterInitiation = 3 }', rule_id="b"),
        ),
        id="every-rule-in-legacy-prefix-form",
    ),
    pytest.param(
        definition_text(
            rule_table('Prefix = "logs/"\nExpiration = { Days = 30 }', rule_id="a"),
            rule_table("Expiration = { Days = 400 }", rule_id="b"),
        ),
        id="legacy-prefix-beside-a-rule-without-filter",
    ),
    pytest.param(
        definition_text(
            rule_table('Filter = { Prefix = "logs/" }\nExpiration = { Days = 30 }', rule_id="a"),
            rule_table("Filter = {}\nExpiration = { Days = 400 }", rule_id="b"),
            rule_table('Filter = { Prefix = "" }\nExpiration = { Days = 500 }', rule_id="c"),
            rule_table("Expiration = { Days = 600 }", rule_id="d"),
        ),
        id="every-rule-in-filter-form-or-none",
    ),
    # 4.
    pytest.param(
        definition_text(
            rule_table(f'Filter = {{ And = {{ Prefix = "a/", Tags = [{tag("k")}] }} }}\nExpiration = {{ Days = 30 }}')
        ),
        id="and-with-prefix-and-one-tag",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Filter = {{ And = {{ Tags = [{tag('k')}, {tag('l')}] }} }}\nExpiration = {{ Days = 30 }}")
        ),
        id="and-with-two-tags",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f"Filter = {{ And = {{ Tags = [{tag('k', 'same')}, {tag('l', 'same')}] }} }}\n"
                f"Expiration = {{ Days = 30 }}"
            )
        ),
        id="and-with-two-tags-of-one-value",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k' * 128, 'v' * 256)} }}\nExpiration = {{ Days = 30 }}")),
        id="tag-key-128-value-256",
    ),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k', '')} }}\nExpiration = {{ Days = 30 }}")),
        id="empty-tag-value",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f'Filter = {{ And = {{ Prefix = "a/", Tags = [{tag("k" * 128, "v" * 256)}] }} }}\n'
                "Expiration = { Days = 30 }"
            )
        ),
        id="tag-key-128-value-256-in-and",
    ),
    # 5.
    pytest.param(
        definition_text(rule_table("Filter = { ObjectSizeGreaterThan = 0 }\nExpiration = { Days = 30 }")),
        id="size-greater-than-0",
    ),
    pytest.param(
        definition_text(rule_table("Filter = { ObjectSizeLessThan = 1 }\nExpiration = { Days = 30 }")),
        id="size-less-than-1",
    ),
    pytest.param(
        definition_text(
            rule_table(
                "Filter = { And = { ObjectSizeGreaterThan = 100, ObjectSizeLessThan = 101 } }\n"
                "Expiration = { Days = 30 }"
            )
        ),
        id="size-less-than-one-above-greater-than",
    ),
    # 6.
    pytest.param(definition_text(rule_table(f"Filter = {{}}\n{ABORT}")), id="abort-as-the-only-action"),
    pytest.param(
        definition_text(rule_table("NoncurrentVersionExpiration = { NoncurrentDays = 1 }")),
        id="noncurrent-expiration-as-only-action",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('GLACIER', 0)}]")),
        id="noncurrent-transition-as-only-action",
    ),
    # 7.
    pytest.param(definition_text(rule_table("Expiration = { Days = 1 }")), id="expiration-days-1"),
    pytest.param(definition_text(rule_table(EODM)), id="expiration-delete-marker-alone"),
    pytest.param(
        definition_text(rule_table("Expiration = { Days = 2147483647 }")), id="expiration-days-at-32-bit-limit"
    ),
    # 8.
    pytest.param(definition_text(rule_table("Expiration = { Date = 2030-01-01 }")), id="date-as-toml-date"),
    pytest.param(
        definition_text(rule_table("Expiration = { Date = 2030-01-01T00:00:00Z }")), id="date-at-midnight-utc"
    ),
    pytest.param(
        definition_text(rule_table("Expiration = { Date = 2030-01-01T01:00:00+01:00 }")),
        id="date-at-midnight-utc-in-cet",
    ),
    pytest.param(definition_text(rule_table('Expiration = { Date = "2030-01-01" }')), id="date-as-iso-string"),
    pytest.param(
        definition_text(
            rule_table(
                f"Transitions = [{tr('GLACIER', date='2030-01-01')}, {tr('DEEP_ARCHIVE', date='2030-07-01')}]\n"
                "Expiration = { Date = 2031-01-01 }"
            )
        ),
        id="dates-throughout-a-rule",
    ),
    # 9.
    *(
        pytest.param(definition_text(rule_table(f"Transitions = [{tr(cls, 0)}]")), id=f"{cls.lower()}-at-day-0")
        for cls in ("GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "INTELLIGENT_TIERING")
    ),
    pytest.param(definition_text(rule_table(f"Transitions = [{tr('STANDARD_IA', 30)}]")), id="standard-ia-at-day-30"),
    pytest.param(definition_text(rule_table(f"Transitions = [{tr('ONEZONE_IA', 30)}]")), id="onezone-ia-at-day-30"),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('STANDARD_IA', 30)}]")),
        id="noncurrent-standard-ia-at-day-30",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('ONEZONE_IA', 30)}]")),
        id="noncurrent-onezone-ia-at-day-30",
    ),
    # 10.
    pytest.param(
        definition_text(
            rule_table(
                f"Transitions = [{tr('STANDARD_IA', 30)}, {tr('INTELLIGENT_TIERING', 60)}, {tr('GLACIER_IR', 90)},"
                f" {tr('GLACIER', 180)}, {tr('DEEP_ARCHIVE', 365)}]\nExpiration = {{ Days = 730 }}"
            )
        ),
        id="the-whole-waterfall",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Transitions = [{tr('DEEP_ARCHIVE', 180)}, {tr('STANDARD_IA', 30)}, {tr('GLACIER', 90)}]")
        ),
        id="waterfall-listed-out-of-order",
    ),
    pytest.param(
        definition_text(
            rule_table(f"Transitions = [{tr('ONEZONE_IA', 30)}, {tr('GLACIER', 60)}, {tr('DEEP_ARCHIVE', 150)}]")
        ),
        id="onezone-ia-to-glacier",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 60)}]\nExpiration = {{ Days = 61 }}")),
        id="expiration-a-day-after-the-last-transition",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f"NoncurrentVersionTransitions = [{ntr('STANDARD_IA', 30)}, {ntr('GLACIER', 60)}]\n"
                "NoncurrentVersionExpiration = { NoncurrentDays = 61 }"
            )
        ),
        id="noncurrent-expiration-a-day-after-the-last-noncurrent-transition",
    ),
    # 11.
    pytest.param(
        definition_text(
            rule_table("NoncurrentVersionExpiration = { NoncurrentDays = 1, NewerNoncurrentVersions = 1 }")
        ),
        id="newer-noncurrent-versions-1",
    ),
    pytest.param(
        definition_text(
            rule_table("NoncurrentVersionExpiration = { NoncurrentDays = 1, NewerNoncurrentVersions = 100 }")
        ),
        id="newer-noncurrent-versions-100",
    ),
    pytest.param(
        definition_text(
            rule_table(
                f"NoncurrentVersionTransitions = [{ntr('GLACIER', 30, newer=1)}, {ntr('DEEP_ARCHIVE', 200, newer=100)}]"
            )
        ),
        id="noncurrent-transition-newer-versions-1-and-100",
    ),
    pytest.param(
        definition_text(rule_table("AbortIncompleteMultipartUpload = { DaysAfterInitiation = 1 }")),
        id="abort-after-1-day",
    ),
    # 12.
    pytest.param(
        definition_text(rule_table(f'Filter = {{ Prefix = "uploads/" }}\n{ABORT}')), id="abort-with-prefix-filter"
    ),
    pytest.param(definition_text(rule_table(f'Prefix = "uploads/"\n{ABORT}')), id="abort-with-legacy-prefix"),
    pytest.param(
        definition_text(rule_table(f'Filter = {{ Prefix = "" }}\n{EODM}')), id="delete-marker-with-prefix-filter"
    ),
    pytest.param(definition_text(rule_table(f'Prefix = "logs/"\n{EODM}')), id="delete-marker-with-legacy-prefix"),
    pytest.param(
        definition_text(rule_table(f"Filter = {{ Tag = {tag('k')} }}\nExpiration = {{ Days = 30 }}")),
        id="expiration-days-with-tag-filter",
    ),
    # TransitionDefaultMinimumObjectSize.
    pytest.param(
        definition_text(rule_table(), header='TransitionDefaultMinimumObjectSize = "all_storage_classes_128K"'),
        id="tdmos-128k",
    ),
    pytest.param(
        definition_text(rule_table(), header='TransitionDefaultMinimumObjectSize = "varies_by_storage_class"'),
        id="tdmos-varies",
    ),
]


@pytest.mark.parametrize("data", ACCEPTED)
def test_accepts_a_definition_on_the_boundary_of_a_constraint(data: bytes) -> None:
    definitions = load(data)

    assert definitions.problems == ()
    assert BUCKET in definitions.buckets
    assert definitions.invalid == {}


# Constraints the documentation leaves unclear: a warning, and the bucket stays valid.
WARNED = [
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('STANDARD_IA', 30)}, {tr('GLACIER', 45)}]")),
        "Transitions",
        id="glacier-15-days-after-standard-ia",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 90)}, {tr('DEEP_ARCHIVE', 90)}]")),
        "Transitions",
        id="two-classes-on-one-day",
    ),
    pytest.param(
        definition_text(rule_table(f"Transitions = [{tr('ONEZONE_IA', 30)}, {tr('GLACIER_IR', 90)}]")),
        "Transitions",
        id="onezone-ia-to-glacier-ir",
    ),
    pytest.param(
        definition_text(rule_table(f"NoncurrentVersionTransitions = [{ntr('STANDARD_IA', 30)}, {ntr('GLACIER', 40)}]")),
        "NoncurrentVersionTransitions",
        id="noncurrent-glacier-10-days-after-standard-ia",
    ),
]


@pytest.mark.parametrize(("data", "field"), WARNED)
def test_warns_but_keeps_the_bucket_when_the_documentation_is_unclear(data: bytes, field: str) -> None:
    definitions = load(data)

    assert fields(definitions.problems) == [(FILE, BUCKET, "r", field, WARNING)]
    assert "warning" in definitions.problems[0].message
    assert BUCKET in definitions.buckets
    assert definitions.error_count == 0


def test_every_problem_of_a_rule_is_reported_at_once() -> None:
    data = definition_text(
        rule_table(
            f"Filter = {{ Tag = {tag('k' * 129)} }}\n"
            f"Transitions = [{tr('STANDARD_IA', 10)}]\n"
            "AbortIncompleteMultipartUpload = { DaysAfterInitiation = 0 }",
            status="On",
        )
    )

    found = {p.field for p in load(data).problems}

    assert found == {
        "Status",
        "Filter.Tag.Key",
        "Transitions[0].Days",
        "AbortIncompleteMultipartUpload",
        "AbortIncompleteMultipartUpload.DaysAfterInitiation",
    }


def test_a_duplicate_rule_id_across_two_files_names_both_files() -> None:
    definitions = load_definitions(
        {"defs/a.toml": definition_text(rule_table()), "defs/z.toml": definition_text(rule_table())}
    )

    (problem,) = definitions.problems
    assert (problem.bucket, problem.rule, problem.field, problem.severity) == (BUCKET, "r", "ID", ERROR)
    assert problem.file in {"defs/a.toml", "defs/z.toml"}
    assert "defs/a.toml" in problem.message
    assert "defs/z.toml" in problem.message
    assert BUCKET in definitions.invalid


def test_a_problem_names_the_file_of_its_rule_when_a_bucket_spans_files() -> None:
    definitions = load_definitions(
        {
            "defs/good.toml": definition_text(rule_table(rule_id="fine")),
            "defs/bad.toml": definition_text(rule_table("Expiration = { Days = 0 }", rule_id="broken")),
        }
    )

    assert fields(definitions.problems) == [("defs/bad.toml", BUCKET, "broken", "Expiration.Days", ERROR)]


def test_mixing_legacy_prefix_and_filter_across_files_names_both_rules() -> None:
    definitions = load_definitions(
        {
            "defs/new.toml": definition_text(
                rule_table('Filter = { Prefix = "new/" }\nExpiration = { Days = 30 }', rule_id="modern")
            ),
            "defs/old.toml": definition_text(
                rule_table('Prefix = "old/"\nExpiration = { Days = 30 }', rule_id="legacy")
            ),
        }
    )

    (problem,) = definitions.problems
    assert (problem.file, problem.rule, problem.field) == ("defs/old.toml", "legacy", "Prefix")
    assert "'modern'" in problem.message
    assert "defs/new.toml" in problem.message


def test_a_bucket_with_an_error_is_skipped_and_the_other_buckets_are_kept() -> None:
    other = b'BucketName = "other"\n' + rule_table().encode()
    definitions = load_definitions({FILE: definition_text(rule_table(status="on")), "defs/other.toml": other})

    assert set(definitions.buckets) == {"other"}
    assert set(definitions.invalid) == {BUCKET}
    assert not definitions.partial


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        pytest.param(definition_text(rule_table(status="enabled")), "did you mean 'Enabled'", id="status"),
        pytest.param(
            definition_text(rule_table(f"Transitions = [{tr('GLACIER-IR', 30)}]")),
            "did you mean 'GLACIER_IR'",
            id="storage-class",
        ),
        pytest.param(
            definition_text(rule_table(), header='TransitionDefaultMinimumObjectSize = "all_storage_classes_128k"'),
            "did you mean 'all_storage_classes_128K'",
            id="tdmos",
        ),
    ],
)
def test_a_near_miss_value_gets_a_suggestion(data: bytes, hint: str) -> None:
    (problem,) = load(data).problems

    assert hint in problem.message


def test_a_problem_prints_as_file_bucket_rule_field_message() -> None:
    (problem,) = load(definition_text(rule_table("Expiration = { Days = 0 }"))).problems

    assert str(problem) == f"{FILE}: {BUCKET}: r: Expiration.Days: {problem.message}"
    assert problem.as_dict() == {
        "file": FILE,
        "bucket": BUCKET,
        "rule": "r",
        "field": "Expiration.Days",
        "severity": "error",
        "message": problem.message,
    }


def test_a_warning_prints_with_its_severity() -> None:
    (problem,) = load(
        definition_text(rule_table(f"Transitions = [{tr('GLACIER', 90)}, {tr('DEEP_ARCHIVE', 90)}]"))
    ).problems

    assert str(problem).startswith(f"{FILE}: {BUCKET}: r: Transitions: warning: ")


def test_the_bundled_examples_are_valid() -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples" / "definitions"
    files = {str(p): p.read_bytes() for p in sorted(examples.rglob("*.toml"))}

    definitions = load_definitions(files)

    assert len(files) >= 8
    assert definitions.problems == ()
    assert definitions.invalid == {}
    assert len(definitions.selectors) == 3, "the fleet folder's baseline, pattern family and tag class"


def test_a_rule_without_an_id_is_named_by_its_place_in_its_own_file() -> None:
    definitions = load_definitions(
        {
            "defs/a.toml": definition_text(rule_table(rule_id="one"), rule_table(rule_id="two")),
            "defs/z.toml": definition_text(rule_table(rule_id="three"), rule_table(rule_id=None)),
        }
    )

    assert fields(definitions.problems) == [("defs/z.toml", BUCKET, "rule #2", "ID", ERROR)]


def test_findings_of_one_rule_keep_the_order_of_the_constraints() -> None:
    # The mix of Days and Date is found while reading the transitions, and still comes
    # before their own findings; the waterfall needs two known classes to say anything.
    body = f"Expiration = {{ Date = 2030-01-01 }}\nTransitions = [{tr('STANDARD_IA', 10)}, {tr('FOO', 5)}]"

    problems = load(definition_text(rule_table(body))).problems

    assert [p.field for p in problems] == ["Transitions", "Transitions[0].Days", "Transitions[1].StorageClass"]


def test_numbers_past_the_api_integer_types_are_reported_in_field_order() -> None:
    big = 2**31
    body = (
        f"Expiration = {{ Days = {big + 1} }}\n"
        f"Transitions = [{tr('GLACIER', 40)}, {tr('DEEP_ARCHIVE', big)}]\n"
        f"NoncurrentVersionExpiration = {{ NoncurrentDays = {big}, NewerNoncurrentVersions = 3 }}\n"
        f"NoncurrentVersionTransitions = [{ntr('GLACIER', 30, big)}]\n"
        f"AbortIncompleteMultipartUpload = {{ DaysAfterInitiation = {big} }}"
    )

    problems = load(definition_text(rule_table(body))).problems

    too_large = [(p.field, p.message) for p in problems if "larger than" in p.message]
    assert [field for field, _ in too_large] == [
        "Expiration.Days",
        "Transitions[1].Days",
        "NoncurrentVersionExpiration.NoncurrentDays",
        "NoncurrentVersionTransitions[0].NewerNoncurrentVersions",
        "AbortIncompleteMultipartUpload.DaysAfterInitiation",
    ]
    assert too_large[0][1] == f"{big + 1} is larger than S3's API accepts here (at most {big - 1})"


def test_object_sizes_past_64_bits_are_reported_on_a_rule_built_without_the_model_checks() -> None:
    huge = 2**64
    flt = Filter.model_construct(
        and_=AndOperator.model_construct(prefix="p/", object_size_greater_than=1, object_size_less_than=huge)
    )
    built = Rule.model_construct(id="r", status="Enabled", filter=flt, expiration=Expiration.model_construct(days=1))

    findings = list(check_rule(built))

    assert findings == [
        ("Filter.And.ObjectSizeLessThan", f"{huge} is larger than S3's API accepts here (at most {2**63 - 1})", ERROR)
    ]


# -- one problem, one line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "escaped"),
    [
        pytest.param(FILE, 'BucketName = "my\\nbucket"\n' + rule_table("Expiration = {}"), "my\\nbucket", id="bucket"),
        pytest.param(
            FILE,
            definition_text(rule_table("Expiration = {}", rule_id="r\\u001b[31m")).decode(),
            "r\\x1b[31m",
            id="rule",
        ),
        pytest.param(
            FILE, definition_text(rule_table('"Expi\\rration" = { Days = 1 }')).decode(), "Expi\\rration", id="field"
        ),
        pytest.param(
            FILE, definition_text(rule_table(status="Enabled\\n")).decode(), "Enabled\\n", id="value-in-a-message"
        ),
        pytest.param(
            "defs/a\nb.toml", definition_text(rule_table("Expiration = {}")).decode(), "defs/a\\nb.toml", id="file"
        ),
        pytest.param(FILE, 'BucketName = "ab\\u202ec"\n' + rule_table("Expiration = {}"), "ab\\u202ec", id="bidi-mark"),
    ],
)
def test_a_problem_prints_on_one_line_with_control_characters_escaped(name: str, text: str, escaped: str) -> None:
    definitions = load_definitions({name: text.encode()})

    assert definitions.problems
    for problem in definitions.problems:
        line = str(problem)
        assert line.isprintable(), line
        assert escaped in line


# -- names S3 can hold, text S3's XML can carry ----------------------------------------------


C1_KEY = tag("b\\u0085")
NONCHARACTER_VALUE = tag("a", "\\uffff")


def named(name: str) -> bytes:
    return f'BucketName = "{name}"\n'.encode() + rule_table().encode()


@pytest.mark.parametrize(
    ("name", "said"),
    [
        pytest.param("a/b", "holds characters S3 bucket names cannot: '/'", id="slash"),
        pytest.param("ab", "is 2 characters; S3 bucket names are 3 to 63 characters", id="two-characters"),
        pytest.param("x" * 64, "is 64 characters", id="64-characters"),
        pytest.param(
            "My-Bucket", "has upper-case letters; S3 bucket names are lower case: 'my-bucket'", id="upper-case"
        ),
        pytest.param("my_bucket", "holds characters S3 bucket names cannot: '_'", id="underscore"),
        pytest.param("my\\nbucket", "'\\n' (control characters among them)", id="newline"),
        pytest.param("my\\u0000bucket", "'\\x00' (control characters among them)", id="nul"),
        pytest.param("café-bucket", "holds characters S3 bucket names cannot: 'é'", id="non-ascii"),
        pytest.param("-bucket", "must begin and end with a lowercase letter or a digit", id="leading-hyphen"),
        pytest.param("bucket.", "must begin and end with a lowercase letter or a digit", id="trailing-period"),
        pytest.param("my..bucket", "two adjacent periods", id="adjacent-periods"),
        pytest.param("192.168.5.4", "formatted as an IP address", id="ip-address"),
        pytest.param("xn--bucket", "begins with 'xn--', a prefix S3 reserves", id="xn--"),
        pytest.param("sthree-bucket", "begins with 'sthree-', a prefix S3 reserves", id="sthree-"),
        pytest.param("sthree-configurator", "begins with 'sthree-', a prefix S3 reserves", id="sthree-configurator"),
        pytest.param("amzn-s3-demo-bucket", "begins with 'amzn-s3-demo-', a prefix S3 reserves", id="amzn-s3-demo-"),
        pytest.param(
            "bucket-s3alias", "ends in '-s3alias', a suffix S3 reserves for access point aliases", id="s3alias"
        ),
        pytest.param("bucket--ol-s3", "ends in '--ol-s3', a suffix S3 reserves", id="ol-s3"),
        pytest.param("bucket.mrap", "ends in '.mrap', a suffix S3 reserves for Multi-Region Access Points", id="mrap"),
        pytest.param("bucket--table-s3", "ends in '--table-s3', a suffix S3 reserves", id="table-s3"),
        pytest.param("bucket--usw2-zz1--x-s3", "holds the zone ID 'usw2-zz1', which is not one", id="directory-zone"),
        pytest.param("bucket--x-s3", "holds no zone ID: write <base>--<zone id>--x-s3", id="directory-no-zone"),
        pytest.param("Bucket--use1-az4--x-s3", "base name 'Bucket' of a directory bucket", id="directory-upper"),
    ],
)
def test_rejects_a_bucket_name_s3_cannot_hold_with_the_rule_it_breaks(name: str, said: str) -> None:
    definitions = load(named(name))

    problem = next(p for p in definitions.problems if p.field == "BucketName")
    assert (problem.file, problem.rule, problem.severity) == (FILE, None, ERROR)
    assert problem.bucket == definitions.problems[0].bucket != BUCKET
    assert said in str(problem)
    assert definitions.buckets == {}
    assert set(definitions.invalid) == {problem.bucket}


@pytest.mark.parametrize("name", ["bucket--usw2-az1--x-s3", "my-logs--usw2-lax1-az1--x-s3", "a--b--apne1-az4--x-s3"])
def test_a_directory_bucket_name_of_an_availability_or_local_zone_is_valid(name: str) -> None:
    definitions = load(named(name))

    assert definitions.problems == ()
    assert set(definitions.buckets) == {name}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("abc", id="3-characters"),
        pytest.param("x" * 63, id="63-characters"),
        pytest.param("123", id="digits"),
        pytest.param("my.bucket-1.example", id="periods-and-hyphens"),
        pytest.param("a-s3alias-b", id="reserved-suffix-inside"),
        pytest.param("xn-bucket", id="near-a-reserved-prefix"),
        pytest.param("1.2.3.4.5", id="five-numbers-is-no-ip-address"),
        pytest.param("bucket-123456789012-us-west-2-an", id="account-regional-namespace"),
    ],
)
def test_accepts_a_bucket_name_s3_can_hold(name: str) -> None:
    definitions = load(named(name))

    assert definitions.problems == ()
    assert name in definitions.buckets


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(rule_table(rule_id="r\\u0007"), "ID", id="id"),
        pytest.param(rule_table('Prefix = "logs\\n"\nExpiration = { Days = 1 }'), "Prefix", id="legacy-prefix"),
        pytest.param(
            rule_table('Filter = { Prefix = "logs\\t/" }\nExpiration = { Days = 1 }'), "Filter.Prefix", id="prefix"
        ),
        pytest.param(
            rule_table("Filter = { Tag = " + tag("k\\r") + " }\nExpiration = { Days = 1 }"),
            "Filter.Tag.Key",
            id="tag-key",
        ),
        pytest.param(
            rule_table("Filter = { Tag = " + tag("k", "v\\u001b[0m") + " }\nExpiration = { Days = 1 }"),
            "Filter.Tag.Value",
            id="tag-value",
        ),
        pytest.param(
            rule_table(
                'Filter = { And = { Prefix = "a\\u007f", ObjectSizeGreaterThan = 1 } }\nExpiration = { Days = 1 }'
            ),
            "Filter.And.Prefix",
            id="and-prefix",
        ),
        pytest.param(
            rule_table(
                "Filter = { And = { Tags = [" + tag("a") + ", " + tag("b\\u0085") + "] } }\nExpiration = { Days = 1 }"
            ),
            "Filter.And.Tags[1].Key",
            id="and-tag-key-with-a-c1-control",
        ),
        pytest.param(
            rule_table(
                "Filter = { And = { Tags = ["
                + tag("a", "\\uffff")
                + ", "
                + tag("b")
                + "] } }\nExpiration = { Days = 1 }"
            ),
            "Filter.And.Tags[0].Value",
            id="and-tag-value-with-a-noncharacter",
        ),
    ],
)
def test_rejects_a_control_character_in_an_id_prefix_or_tag_naming_the_field(body: str, field: str) -> None:
    definitions = load(definition_text(body))

    (problem,) = definitions.problems
    assert (problem.file, problem.bucket, problem.field, problem.severity) == (FILE, BUCKET, field, ERROR)
    assert "remove it" in problem.message
    assert str(problem).isprintable()
    assert definitions.invalid.keys() == {BUCKET}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("logs/\u00a0nbsp/", id="no-break-space"),
        pytest.param("日本語/", id="cjk"),
        pytest.param("emoji-😀/", id="emoji"),
        pytest.param("zero\u200dwidth-joiner/", id="format-character"),
    ],
)
def test_accepts_printable_and_format_characters_in_a_prefix(text: str) -> None:
    definitions = load(definition_text(rule_table(f'Filter = {{ Prefix = "{text}" }}\nExpiration = {{ Days = 1 }}')))

    assert definitions.problems == ()


def test_a_bad_bucket_name_and_the_problems_of_its_rules_come_in_one_run() -> None:
    data = b'BucketName = "My_Bucket"\n' + rule_table("Expiration = { Days = 0 }", rule_id="r\\n").encode()

    problems = load(data).problems

    assert [p.field for p in problems] == ["BucketName", "BucketName", "ID", "Expiration.Days"]
