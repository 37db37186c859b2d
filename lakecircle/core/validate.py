"""Check a bucket's definition against the constraints S3 documents, before any write.

Every problem is returned at once, each naming file, bucket, rule and field and saying
what to change. Only what S3 is documented to reject is an error (a false rejection
blocks a valid rule); where the documentation is unclear the problem is a warning and
says so. The numbered comments follow the list of constraints in the project's issue.
"""

from __future__ import annotations

import datetime as dt
import itertools
import unicodedata
from collections import Counter
from collections.abc import Iterator

from lakecircle.core.bucket_names import name_problems
from lakecircle.core.model import (
    TDMOS_VALUES,
    AndOperator,
    BucketDefinition,
    Expiration,
    Filter,
    Rule,
)
from lakecircle.core.problems import Problem, Severity, printable, shown, shown_number, suggest

MAX_RULES = 1000
MAX_ID_LENGTH = 255
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
NEWER_NONCURRENT_RANGE = (1, 100)
MAX_INTEGER = 2**31 - 1
"""S3's API types day counts as Integer (32-bit signed): a larger number cannot be sent."""
MAX_LONG = 2**63 - 1
"""Object sizes are Long (64-bit signed)."""
NO_ACTION_FIELD = "(actions)"
"""The field named by the "rule has no action" problem: no single key is at fault."""

STORAGE_CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
"""Transition targets in S3's supported order (the "waterfall"): an object moves only down it.

One step down is not supported either: the User Guide lists ONEZONE_IA to GLACIER_IR as
unsupported, without saying whether S3 refuses it, so that step is a warning.
"""

_RANK = {name: rank for rank, name in enumerate(STORAGE_CLASSES)}
_MIN_DAYS_30 = frozenset({"STANDARD_IA", "ONEZONE_IA"})


def validate_bucket(bucket: BucketDefinition) -> list[Problem]:
    """Every problem with one bucket's merged definition."""
    problems: list[Problem] = []
    config = bucket.config
    rules = config.rules
    first = bucket.files[0] if bucket.files else "-"

    # 0. A name S3 can hold (its naming rules for general purpose buckets), said in every
    # file that names it: which bucket such a file means is unknown (see definitions.py).
    problems.extend(
        Problem(file, message, bucket=bucket.name, field="BucketName")
        for message in name_problems(bucket.name)
        for file in (bucket.files or ("-",))
    )

    tdmos = config.transition_default_minimum_object_size
    if tdmos is not None and tdmos not in TDMOS_VALUES:
        problems.append(
            Problem(
                first,
                f"TransitionDefaultMinimumObjectSize {shown(tdmos)} is not one of {', '.join(TDMOS_VALUES)}"
                f"{suggest(tdmos, TDMOS_VALUES)}",
                bucket=bucket.name,
                field="TransitionDefaultMinimumObjectSize",
            )
        )

    # 1. At most 1,000 rules; IDs required, 1-255 characters, unique.
    if len(rules) > MAX_RULES:
        problems.append(
            Problem(
                first,
                f"{len(rules)} rules, over S3's limit of {MAX_RULES} per bucket; merge or drop rules",
                bucket=bucket.name,
                field="LifecycleConfiguration.Rules",
            )
        )
    # One pass over the rules (each is read from memory once): their own findings, and
    # whether any ID repeats or any rule has the legacy Prefix. The problems of the whole
    # bucket come first, then the rules' in rule order.
    found_by_rule: list[Problem] = []
    ids: set[str] = set()
    repeated = legacy = False
    for index, rule in enumerate(rules):
        rule_id = rule.id
        if rule_id is not None:
            if rule_id in ids:
                repeated = True
            else:
                ids.add(rule_id)
        if rule.prefix is not None:
            legacy = True
        found = _rule_findings(rule)
        if found:
            label = _label(bucket, index)
            file = bucket.file_of(index)
            found_by_rule.extend(
                Problem(file, message, bucket=bucket.name, rule=label, field=path, severity=severity)
                for path, message, severity in found
            )
    if repeated:
        problems.extend(_duplicate_ids(bucket))
    # 3. One bucket does not mix the legacy Prefix form with Filter. (A rule holding both
    # is reported by check_rule; it does not count for either form here.)
    if legacy:
        problems.extend(_mixed_forms(bucket))
    problems.extend(found_by_rule)
    return problems


def _duplicate_ids(bucket: BucketDefinition) -> list[Problem]:
    problems = []
    files_by_id: dict[str, list[str]] = {}
    for index, rule in enumerate(bucket.config.rules):
        if rule.id is not None:
            files_by_id.setdefault(rule.id, []).append(bucket.file_of(index))
    for rule_id, files in files_by_id.items():
        if len(files) > 1:
            where = " and ".join(sorted(set(files))) if len(set(files)) > 1 else f"{files[0]} ({len(files)} times)"
            problems.append(
                Problem(
                    files[-1],
                    f"rule ID {shown(rule_id)} is defined more than once for this bucket, in {where};"
                    " rule IDs must be unique per bucket",
                    bucket=bucket.name,
                    rule=rule_id,
                    field="ID",
                )
            )
    return problems


def _mixed_forms(bucket: BucketDefinition) -> list[Problem]:
    rules = bucket.config.rules
    legacy = [i for i, r in enumerate(rules) if r.prefix is not None and r.filter is None]
    modern = [i for i, r in enumerate(rules) if r.filter is not None and r.prefix is None]
    if not (legacy and modern):
        return []
    first_legacy, first_modern = legacy[0], modern[0]
    others = f" (as do {len(legacy) - 1} other rules)" if len(legacy) > 1 else ""
    return [
        Problem(
            bucket.file_of(first_legacy),
            f"rule uses the legacy rule-level Prefix{others} while rule {shown(_label(bucket, first_modern))}"
            f" in {bucket.file_of(first_modern)} uses Filter; S3 refuses the two forms in one bucket:"
            " write every rule with Filter = { Prefix = ... }",
            bucket=bucket.name,
            rule=_label(bucket, first_legacy),
            field="Prefix",
        )
    ]


def _label(bucket: BucketDefinition, index: int) -> str:
    """A rule's ID, or for a rule without one its place in its own file ("rule #2")."""
    rule_id = bucket.config.rules[index].id
    if rule_id:
        return rule_id
    file = bucket.file_of(index)
    place = sum(1 for before in range(index) if bucket.file_of(before) == file)
    return f"rule #{place + 1}"


_E = Severity.ERROR
_W = Severity.WARNING
Finding = tuple[str, str, Severity]

# The checks below append their findings to one list instead of yielding them: a valid
# rule (the usual case) then costs a few attribute reads, not a chain of generators.
# The findings and their order are those of the numbered constraints.


def check_rule(rule: Rule) -> Iterator[Finding]:
    """The problems of one rule, as (field, message, severity)."""
    yield from _rule_findings(rule)


def _rule_findings(rule: Rule) -> list[Finding]:
    """:func:`check_rule`'s findings as a list (empty for a valid rule)."""
    out: list[Finding] = []
    rule_id = rule.id
    if rule_id is None:
        out.append(("ID", "missing rule ID; every rule needs an ID (its identity in plans and history)", _E))
    else:
        if not 1 <= len(rule_id) <= MAX_ID_LENGTH:
            out.append(("ID", f"rule ID is {len(rule_id)} characters; S3 allows 1 to {MAX_ID_LENGTH}", _E))
        if not rule_id.isprintable():
            _check_text("ID", "rule ID", rule_id, out)
    if rule.prefix is not None and not rule.prefix.isprintable():
        _check_text("Prefix", "Prefix", rule.prefix, out)

    _check_ranges(rule, out)

    # 2. Status exactly Enabled or Disabled.
    if rule.status not in ("Enabled", "Disabled"):
        hint = suggest(rule.status, ("Enabled", "Disabled"))
        out.append(("Status", f"Status {shown(rule.status)} must be exactly 'Enabled' or 'Disabled'{hint}", _E))

    # 3. A Filter or a legacy Prefix, not both.
    flt = rule.filter
    if flt is not None:
        if rule.prefix is not None:
            out.append(
                ("Prefix", "a rule has either Filter or the legacy Prefix, not both; move Prefix into Filter", _E)
            )
        _check_filter(flt, out)

    # 6. At least one action.
    expiration = rule.expiration
    abort = rule.abort_incomplete_multipart_upload
    if not (
        expiration
        or rule.transitions
        or rule.noncurrent_version_expiration
        or rule.noncurrent_version_transitions
        or abort
    ):
        out.append(
            (
                NO_ACTION_FIELD,
                "rule has no action; add Expiration, Transitions, NoncurrentVersionExpiration,"
                " NoncurrentVersionTransitions or AbortIncompleteMultipartUpload",
                _E,
            )
        )

    if expiration is not None:
        _check_expiration(expiration, out)
    _check_transitions(rule, out)
    if rule.noncurrent_version_expiration is not None or rule.noncurrent_version_transitions:
        _check_noncurrent(rule, out)

    # 11. AbortIncompleteMultipartUpload.DaysAfterInitiation at least 1.
    if abort is not None:
        if abort.days_after_initiation is None:
            out.append(("AbortIncompleteMultipartUpload.DaysAfterInitiation", "missing DaysAfterInitiation", _E))
        elif abort.days_after_initiation < 1:
            out.append(
                (
                    "AbortIncompleteMultipartUpload.DaysAfterInitiation",
                    f"DaysAfterInitiation is {abort.days_after_initiation}; it must be at least 1",
                    _E,
                )
            )

    # 12. No AbortIncompleteMultipartUpload / ExpiredObjectDeleteMarker with tag or size filters.
    if (abort is not None or expiration is not None) and _filters_tags_or_size(flt):
        if abort is not None:
            out.append(
                (
                    "AbortIncompleteMultipartUpload",
                    "AbortIncompleteMultipartUpload cannot be used with a tag or object-size filter;"
                    " put it in a rule filtered by prefix only",
                    _E,
                )
            )
        if expiration is not None and expiration.expired_object_delete_marker:
            out.append(
                (
                    "Expiration.ExpiredObjectDeleteMarker",
                    "ExpiredObjectDeleteMarker cannot be used with a tag or object-size filter;"
                    " put it in a rule filtered by prefix only",
                    _E,
                )
            )
    return out


def _check_ranges(rule: Rule, out: list[Finding]) -> None:
    """Numbers too large for the API's integer types (a TOML integer can be any size)."""
    expiration = rule.expiration
    if expiration is not None:
        days = expiration.days
        if days is not None and days > MAX_INTEGER:
            out.append(_too_large("Expiration.Days", days, MAX_INTEGER))
    for index, tr in enumerate(rule.transitions):
        days = tr.days
        if days is not None and days > MAX_INTEGER:
            out.append(_too_large(f"Transitions[{index}].Days", days, MAX_INTEGER))
    nve = rule.noncurrent_version_expiration
    if nve is not None:
        days, newer = nve.noncurrent_days, nve.newer_noncurrent_versions
        if days is not None and days > MAX_INTEGER:
            out.append(_too_large("NoncurrentVersionExpiration.NoncurrentDays", days, MAX_INTEGER))
        if newer is not None and newer > MAX_INTEGER:
            out.append(_too_large("NoncurrentVersionExpiration.NewerNoncurrentVersions", newer, MAX_INTEGER))
    for index, ntr in enumerate(rule.noncurrent_version_transitions):
        days, newer = ntr.noncurrent_days, ntr.newer_noncurrent_versions
        if days is not None and days > MAX_INTEGER:
            out.append(_too_large(f"NoncurrentVersionTransitions[{index}].NoncurrentDays", days, MAX_INTEGER))
        if newer is not None and newer > MAX_INTEGER:
            out.append(_too_large(f"NoncurrentVersionTransitions[{index}].NewerNoncurrentVersions", newer, MAX_INTEGER))
    abort = rule.abort_incomplete_multipart_upload
    if abort is not None:
        days = abort.days_after_initiation
        if days is not None and days > MAX_INTEGER:
            out.append(_too_large("AbortIncompleteMultipartUpload.DaysAfterInitiation", days, MAX_INTEGER))
    flt = rule.filter
    if flt is not None:
        # The models already hold object sizes to 64 bits; a value built without them may not.
        greater, less = flt.object_size_greater_than, flt.object_size_less_than
        if greater is not None and greater > MAX_LONG:
            out.append(_too_large("Filter.ObjectSizeGreaterThan", greater, MAX_LONG))
        if less is not None and less > MAX_LONG:
            out.append(_too_large("Filter.ObjectSizeLessThan", less, MAX_LONG))
        op = flt.and_
        if op is not None:
            greater, less = op.object_size_greater_than, op.object_size_less_than
            if greater is not None and greater > MAX_LONG:
                out.append(_too_large("Filter.And.ObjectSizeGreaterThan", greater, MAX_LONG))
            if less is not None and less > MAX_LONG:
                out.append(_too_large("Filter.And.ObjectSizeLessThan", less, MAX_LONG))


def _too_large(path: str, value: int, limit: int) -> Finding:
    return path, f"{shown_number(value)} is larger than S3's API accepts here (at most {limit})", _E


def _check_text(path: str, what: str, text: str, out: list[Finding]) -> None:
    """A control character (or a character XML cannot carry) in an ID, a prefix or a tag.

    S3's API is XML, which cannot carry most control characters at all (nor U+FFFE and
    U+FFFF). Tab and line feed it can carry, and a carriage return comes back from it as a
    line feed; none of them is meant in an ID, a prefix or a tag, so all are refused.
    Only called for text that is not printable: most text never comes here.
    """
    for index, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cs") or char in "\ufffe\uffff":
            out.append(
                (
                    path,
                    f"{what} holds the control character '{printable(char)}' (character {index + 1});"
                    " S3's XML cannot carry control characters reliably: remove it",
                    _E,
                )
            )
            return


def _check_filter(flt: Filter, out: list[Finding]) -> None:
    # 4. At most one predicate; And holds at least two; unique tag keys; tag lengths;
    # no control characters in prefixes and tags.
    tag, greater, less = flt.tag, flt.object_size_greater_than, flt.object_size_less_than
    if flt.prefix is not None and not flt.prefix.isprintable():
        _check_text("Filter.Prefix", "Prefix", flt.prefix, out)
    if (flt.prefix is not None) + (tag is not None) + (greater is not None) + (less is not None) + (
        flt.and_ is not None
    ) > 1:
        present = [
            name
            for name, value in (
                ("Prefix", flt.prefix),
                ("Tag", tag),
                ("ObjectSizeGreaterThan", greater),
                ("ObjectSizeLessThan", less),
                ("And", flt.and_),
            )
            if value is not None
        ]
        out.append(
            (
                "Filter",
                f"Filter holds {', '.join(present)}; a Filter holds one predicate, combine several inside And",
                _E,
            )
        )
    if tag is not None:
        _check_tag("Filter.Tag", tag.key, tag.value, out)
    if greater is not None or less is not None:
        _check_sizes("Filter", greater, less, out)
    if flt.and_ is not None:
        _check_and(flt.and_, out)


def _check_and(op: AndOperator, out: list[Finding]) -> None:
    tags = op.tags
    count = (
        (op.prefix is not None)
        + len(tags)
        + (op.object_size_greater_than is not None)
        + (op.object_size_less_than is not None)
    )
    if count < 2:
        out.append(("Filter.And", "And holds fewer than two predicates; S3 wants a single predicate outside And", _E))
    if op.prefix is not None and not op.prefix.isprintable():
        _check_text("Filter.And.Prefix", "Prefix", op.prefix, out)
    for index, tag in enumerate(tags):
        key, value = tag.key, tag.value
        if not 1 <= len(key) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE or not (key + value).isprintable():
            _check_tag(f"Filter.And.Tags[{index}]", key, value, out)
    if len(tags) > 1:
        keys = [t.key for t in tags]
        if len(set(keys)) != len(keys):
            for key, n in Counter(keys).items():
                if n > 1:
                    out.append(
                        (
                            "Filter.And.Tags",
                            f"tag key {shown(key)} appears {n} times; tag keys in And must be unique",
                            _E,
                        )
                    )
    if op.object_size_greater_than is not None or op.object_size_less_than is not None:
        _check_sizes("Filter.And", op.object_size_greater_than, op.object_size_less_than, out)


def _check_tag(path: str, key: str, value: str, out: list[Finding]) -> None:
    if not 1 <= len(key) <= MAX_TAG_KEY:
        out.append((f"{path}.Key", f"tag key is {len(key)} characters; S3 allows 1 to {MAX_TAG_KEY}", _E))
    if len(value) > MAX_TAG_VALUE:
        out.append((f"{path}.Value", f"tag value is {len(value)} characters; S3 allows at most {MAX_TAG_VALUE}", _E))
    if not key.isprintable():
        _check_text(f"{path}.Key", "tag key", key, out)
    if not value.isprintable():
        _check_text(f"{path}.Value", "tag value", value, out)


def _check_sizes(path: str, greater: int | None, less: int | None, out: list[Finding]) -> None:
    # 5. ObjectSizeGreaterThan >= 0, ObjectSizeLessThan >= 1, less-than above greater-than.
    if greater is not None and greater < 0:
        out.append((f"{path}.ObjectSizeGreaterThan", f"ObjectSizeGreaterThan is {greater}; it must be at least 0", _E))
    if less is not None and less < 1:
        out.append((f"{path}.ObjectSizeLessThan", f"ObjectSizeLessThan is {less}; it must be at least 1", _E))
    if greater is not None and less is not None and less <= greater:
        out.append(
            (
                f"{path}.ObjectSizeLessThan",
                f"ObjectSizeLessThan ({less}) must be greater than ObjectSizeGreaterThan ({greater})",
                _E,
            )
        )


def _filters_tags_or_size(flt: Filter | None) -> bool:
    if flt is None:
        return False
    if flt.tag is not None or flt.object_size_greater_than is not None or flt.object_size_less_than is not None:
        return True
    op = flt.and_
    return op is not None and bool(
        op.tags or op.object_size_greater_than is not None or op.object_size_less_than is not None
    )


def _check_expiration(exp: Expiration, out: list[Finding]) -> None:
    # 7. Exactly one of Days, Date, ExpiredObjectDeleteMarker.
    days, date, marker = exp.days, exp.date, exp.expired_object_delete_marker
    if (days is not None) + (date is not None) + (marker is not None) != 1:
        given = [
            name
            for name, value in (("Days", days), ("Date", date), ("ExpiredObjectDeleteMarker", marker))
            if value is not None
        ]
        what = ", ".join(given) if given else "none"
        out.append(
            (
                "Expiration",
                f"Expiration holds {what}; it holds exactly one of Days, Date, ExpiredObjectDeleteMarker",
                _E,
            )
        )
    if days is not None and days < 1:
        out.append(("Expiration.Days", f"Days is {days}; it must be a positive integer", _E))
    if date is not None:
        _check_midnight("Expiration.Date", date, out)


def _check_midnight(path: str, when: dt.datetime, out: list[Finding]) -> None:
    # 8. Every Date at midnight UTC.
    if when.hour or when.minute or when.second or when.microsecond:
        written = when.isoformat().replace("+00:00", "Z")
        out.append((path, f"Date {written} is not at midnight UTC; write the day alone: Date = {when.date()}", _E))


def _check_transitions(rule: Rule, out: list[Finding]) -> None:
    transitions = rule.transitions
    if not transitions:
        return  # an expiration alone mixes nothing and comes after nothing
    expiration = rule.expiration
    # 8. No Date and Days mixed across expiration and transitions. An action holding both
    # is reported on its own (7, 9) and counts for neither here. (Found in the loop below,
    # reported before the transitions' own findings.)
    mixed_at = len(out)
    uses_days = uses_date = False
    if expiration is not None:
        if expiration.date is None:
            uses_days = expiration.days is not None
        elif expiration.days is None:
            uses_date = True

    steps: list[tuple[str, int | dt.datetime | None]] = []
    seen: set[str] = set()
    for index, tr in enumerate(transitions):
        days, date, storage_class = tr.days, tr.date, tr.storage_class
        if date is None:
            uses_days = uses_days or days is not None
            steps.append((storage_class, days))
        else:
            uses_date = uses_date or days is None
            steps.append((storage_class, days if days is not None else date))
        # 9. Known classes, no class twice, Days >= 0 (>= 30 to the IA classes).
        if storage_class not in _RANK or storage_class in seen:
            _check_class(f"Transitions[{index}]", storage_class, seen, out)
        seen.add(storage_class)
        if (days is None) == (date is None):
            out.append((f"Transitions[{index}]", "a transition holds exactly one of Days and Date", _E))
        if days is not None and (days < 0 or (days < 30 and storage_class in _MIN_DAYS_30)):
            _check_min_days(f"Transitions[{index}].Days", days, storage_class, out)
        if date is not None:
            _check_midnight(f"Transitions[{index}].Date", date, out)
    if uses_days and uses_date:
        out.insert(
            mixed_at,
            ("Transitions", "rule mixes Date and Days across Expiration and Transitions; use one of them", _E),
        )

    # 10. The waterfall, with increasing times, and expiration after every transition.
    if len(steps) > 1:
        _check_order("Transitions", steps, "Days/Date", out)
    if expiration is not None:
        exp_at = expiration.days if expiration.days is not None else expiration.date
        if exp_at is None:
            return
        for index, (storage_class, tr_at) in enumerate(steps):
            if type(tr_at) is type(exp_at) and exp_at <= tr_at:  # type: ignore[operator]
                out.append(
                    (
                        "Expiration",
                        f"Expiration ({_show(exp_at)}) must come after the transition to {storage_class}"
                        f" ({_show(tr_at)}) in Transitions[{index}]",
                        _E,
                    )
                )


def _check_class(path: str, storage_class: str, seen: set[str], out: list[Finding]) -> None:
    """A known transition target, not twice in one rule (``seen`` holds the rule's classes so far)."""
    if storage_class not in _RANK:
        out.append(
            (
                f"{path}.StorageClass",
                f"StorageClass {shown(storage_class)} is not a transition target; use one of"
                f" {', '.join(STORAGE_CLASSES)}{suggest(storage_class, STORAGE_CLASSES)}",
                _E,
            )
        )
    elif storage_class in seen:
        out.append((f"{path}.StorageClass", f"StorageClass {storage_class} appears twice in this rule", _E))


def _check_min_days(path: str, days: int, storage_class: str, out: list[Finding]) -> None:
    """At least 0 days, and at least 30 before the infrequent-access classes."""
    if days < 0:
        name = path.rsplit(".", 1)[-1]
        out.append((path, f"{name} is {days}; it must be at least 0", _E))
    elif days < 30 and storage_class in _MIN_DAYS_30:
        name = path.rsplit(".", 1)[-1]
        out.append((path, f"{name} is {days}; S3 requires at least 30 days before {storage_class}", _E))


def _check_noncurrent(rule: Rule, out: list[Finding]) -> None:
    nve = rule.noncurrent_version_expiration
    transitions = rule.noncurrent_version_transitions
    low, high = NEWER_NONCURRENT_RANGE
    if nve is not None:
        # 11. NoncurrentDays at least 1; NewerNoncurrentVersions 1 to 100.
        path = "NoncurrentVersionExpiration"
        if nve.noncurrent_days is None:
            out.append((f"{path}.NoncurrentDays", "missing NoncurrentDays; NoncurrentVersionExpiration needs it", _E))
        elif nve.noncurrent_days < 1:
            out.append(
                (f"{path}.NoncurrentDays", f"NoncurrentDays is {nve.noncurrent_days}; it must be at least 1", _E)
            )
        n = nve.newer_noncurrent_versions
        if n is not None and not low <= n <= high:
            out.append(
                (f"{path}.NewerNoncurrentVersions", f"NewerNoncurrentVersions is {n}; S3 allows {low} to {high}", _E)
            )
    steps: list[tuple[str, int | dt.datetime | None]] = []
    seen: set[str] = set()
    for index, tr in enumerate(transitions):
        days, storage_class = tr.noncurrent_days, tr.storage_class
        steps.append((storage_class, days))
        if storage_class not in _RANK or storage_class in seen:
            _check_class(f"NoncurrentVersionTransitions[{index}]", storage_class, seen, out)
        seen.add(storage_class)
        if days is None:
            out.append(
                (
                    f"NoncurrentVersionTransitions[{index}].NoncurrentDays",
                    "missing NoncurrentDays; a noncurrent transition needs it",
                    _E,
                )
            )
        elif days < 0 or (days < 30 and storage_class in _MIN_DAYS_30):
            _check_min_days(f"NoncurrentVersionTransitions[{index}].NoncurrentDays", days, storage_class, out)
        n = tr.newer_noncurrent_versions
        if n is not None and not low <= n <= high:
            out.append(
                (
                    f"NoncurrentVersionTransitions[{index}].NewerNoncurrentVersions",
                    f"NewerNoncurrentVersions is {n}; S3 allows {low} to {high}",
                    _E,
                )
            )
    if len(steps) > 1:
        _check_order("NoncurrentVersionTransitions", steps, "NoncurrentDays", out)
    if nve is not None and nve.noncurrent_days is not None:
        for index, tr in enumerate(transitions):
            if tr.noncurrent_days is not None and nve.noncurrent_days <= tr.noncurrent_days:
                out.append(
                    (
                        "NoncurrentVersionExpiration.NoncurrentDays",
                        f"NoncurrentDays ({nve.noncurrent_days}) must be greater than the NoncurrentDays"
                        f" of the transition to {tr.storage_class} ({tr.noncurrent_days})"
                        f" in NoncurrentVersionTransitions[{index}]",
                        _E,
                    )
                )


def _check_order(path: str, steps: list[tuple[str, int | dt.datetime | None]], unit: str, out: list[Finding]) -> None:
    """Transitions sorted by time must go down the waterfall, each strictly later.

    Only steps of the same kind compare (days with days, dates with dates).
    """
    known: dict[str, int | dt.datetime] = {}
    for cls, at in steps:
        if cls in _RANK and at is not None:
            known.setdefault(cls, at)  # a class given twice is reported on its own
    if len(known) < 2:
        return
    if "ONEZONE_IA" in known and "GLACIER_IR" in known:
        one_zone, instant = known["ONEZONE_IA"], known["GLACIER_IR"]
        if type(one_zone) is type(instant) and one_zone < instant:  # type: ignore[operator]
            out.append(
                (
                    path,
                    "transition from ONEZONE_IA to GLACIER_IR: S3's User Guide lists it as unsupported"
                    " (warning: the documentation does not say whether S3 refuses the configuration)",
                    _W,
                )
            )
    for cls_a, cls_b in itertools.pairwise(sorted(known, key=_RANK.__getitem__)):
        at_a, at_b = known[cls_a], known[cls_b]
        if type(at_a) is not type(at_b):
            continue
        if at_b < at_a:  # type: ignore[operator]
            out.append(
                (
                    path,
                    f"transition to {cls_b} ({_show(at_b)}) comes before the transition to {cls_a} ({_show(at_a)});"
                    f" S3 moves objects only down the order {' > '.join(STORAGE_CLASSES)}",
                    _E,
                )
            )
        elif at_b == at_a:
            out.append(
                (
                    path,
                    f"transitions to {cls_a} and {cls_b} share the same {unit} ({_show(at_a)}); give the"
                    f" later class a later time (warning: S3's documentation is unclear whether it accepts this)",
                    _W,
                )
            )
        elif isinstance(at_a, int) and isinstance(at_b, int) and cls_a in _MIN_DAYS_30 and at_b - at_a < 30:
            out.append(
                (
                    path,
                    f"transition to {cls_b} comes {at_b - at_a} days after the transition to {cls_a}; S3 bills"
                    f" {cls_a} for at least 30 days and may refuse a shorter stay (warning)",
                    _W,
                )
            )


def _show(at: object) -> str:
    if isinstance(at, dt.datetime):
        return at.date().isoformat()
    return f"day {at}"
