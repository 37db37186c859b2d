"""Check a bucket's definition against the constraints S3 documents, before any write.

Every problem is returned at once, each naming file, bucket, rule and field and saying
what to change. Only what S3 is documented to reject is an error (a false rejection
blocks a valid rule); where the documentation is unclear the problem is a warning and
says so. The numbered comments follow the list of constraints in the project's issue.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator

from lakecircle.model import (
    TDMOS_VALUES,
    AndOperator,
    BucketDefinition,
    Expiration,
    Filter,
    Rule,
)
from lakecircle.problems import Problem, Severity, suggest

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
    first = bucket.files[0] if bucket.files else "-"

    tdmos = config.transition_default_minimum_object_size
    if tdmos is not None and tdmos not in TDMOS_VALUES:
        problems.append(
            Problem(
                first,
                f"TransitionDefaultMinimumObjectSize {tdmos!r} is not one of {', '.join(TDMOS_VALUES)}"
                f"{suggest(tdmos, TDMOS_VALUES)}",
                bucket=bucket.name,
                field="TransitionDefaultMinimumObjectSize",
            )
        )

    # 1. At most 1,000 rules; IDs required, 1-255 characters, unique.
    if len(config.rules) > MAX_RULES:
        problems.append(
            Problem(
                first,
                f"{len(config.rules)} rules, over S3's limit of {MAX_RULES} per bucket; merge or drop rules",
                bucket=bucket.name,
                field="LifecycleConfiguration.Rules",
            )
        )
    files_by_id: dict[str, list[str]] = {}
    for index, rule in enumerate(config.rules):
        if rule.id is not None:
            files_by_id.setdefault(rule.id, []).append(bucket.file_of(index))
    for rule_id, files in files_by_id.items():
        if len(files) > 1:
            where = " and ".join(sorted(set(files))) if len(set(files)) > 1 else f"{files[0]} ({len(files)} times)"
            problems.append(
                Problem(
                    files[-1],
                    f"rule ID {rule_id!r} is defined more than once for this bucket, in {where};"
                    " rule IDs must be unique per bucket",
                    bucket=bucket.name,
                    rule=rule_id,
                    field="ID",
                )
            )

    # 3. One bucket does not mix the legacy Prefix form with Filter. (A rule holding both
    # is reported by check_rule; it does not count for either form here.)
    legacy = [i for i, r in enumerate(config.rules) if r.prefix is not None and r.filter is None]
    modern = [i for i, r in enumerate(config.rules) if r.filter is not None and r.prefix is None]
    if legacy and modern:
        first_legacy, first_modern = legacy[0], modern[0]
        others = f" (as do {len(legacy) - 1} other rules)" if len(legacy) > 1 else ""
        problems.append(
            Problem(
                bucket.file_of(first_legacy),
                f"rule uses the legacy rule-level Prefix{others} while rule {_label(bucket, first_modern)!r}"
                f" in {bucket.file_of(first_modern)} uses Filter; S3 refuses the two forms in one bucket:"
                " write every rule with Filter = { Prefix = ... }",
                bucket=bucket.name,
                rule=_label(bucket, first_legacy),
                field="Prefix",
            )
        )

    for index, rule in enumerate(config.rules):
        label = _label(bucket, index)
        file = bucket.file_of(index)
        problems.extend(
            Problem(file, message, bucket=bucket.name, rule=label, field=path, severity=severity)
            for path, message, severity in check_rule(rule)
        )
    return problems


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


def check_rule(rule: Rule) -> Iterator[Finding]:
    """The problems of one rule, as (field, message, severity)."""
    if rule.id is None:
        yield "ID", "missing rule ID; every rule needs an ID (its identity in plans and history)", _E
    elif not 1 <= len(rule.id) <= MAX_ID_LENGTH:
        yield "ID", f"rule ID is {len(rule.id)} characters; S3 allows 1 to {MAX_ID_LENGTH}", _E

    yield from _check_ranges(rule)

    # 2. Status exactly Enabled or Disabled.
    if rule.status not in ("Enabled", "Disabled"):
        hint = suggest(rule.status, ("Enabled", "Disabled"))
        yield "Status", f"Status {rule.status!r} must be exactly 'Enabled' or 'Disabled'{hint}", _E

    # 3. A Filter or a legacy Prefix, not both.
    if rule.filter is not None and rule.prefix is not None:
        yield "Prefix", "a rule has either Filter or the legacy Prefix, not both; move Prefix into Filter", _E

    if rule.filter is not None:
        yield from _check_filter(rule.filter)

    # 6. At least one action.
    if not (
        rule.expiration
        or rule.transitions
        or rule.noncurrent_version_expiration
        or rule.noncurrent_version_transitions
        or rule.abort_incomplete_multipart_upload
    ):
        yield (
            NO_ACTION_FIELD,
            "rule has no action; add Expiration, Transitions, NoncurrentVersionExpiration,"
            " NoncurrentVersionTransitions or AbortIncompleteMultipartUpload",
            _E,
        )

    if rule.expiration is not None:
        yield from _check_expiration(rule.expiration)
    yield from _check_transitions(rule)
    yield from _check_noncurrent(rule)

    # 11. AbortIncompleteMultipartUpload.DaysAfterInitiation at least 1.
    abort = rule.abort_incomplete_multipart_upload
    if abort is not None:
        if abort.days_after_initiation is None:
            yield "AbortIncompleteMultipartUpload.DaysAfterInitiation", "missing DaysAfterInitiation", _E
        elif abort.days_after_initiation < 1:
            yield (
                "AbortIncompleteMultipartUpload.DaysAfterInitiation",
                f"DaysAfterInitiation is {abort.days_after_initiation}; it must be at least 1",
                _E,
            )

    # 12. No AbortIncompleteMultipartUpload / ExpiredObjectDeleteMarker with tag or size filters.
    if _filters_tags_or_size(rule.filter):
        if abort is not None:
            yield (
                "AbortIncompleteMultipartUpload",
                "AbortIncompleteMultipartUpload cannot be used with a tag or object-size filter;"
                " put it in a rule filtered by prefix only",
                _E,
            )
        if rule.expiration is not None and rule.expiration.expired_object_delete_marker:
            yield (
                "Expiration.ExpiredObjectDeleteMarker",
                "ExpiredObjectDeleteMarker cannot be used with a tag or object-size filter;"
                " put it in a rule filtered by prefix only",
                _E,
            )


def _check_ranges(rule: Rule) -> Iterator[Finding]:
    """Numbers too large for the API's integer types (a TOML integer can be any size)."""
    numbers: list[tuple[str, int | None, int]] = []
    if rule.expiration is not None:
        numbers.append(("Expiration.Days", rule.expiration.days, MAX_INTEGER))
    for index, tr in enumerate(rule.transitions):
        numbers.append((f"Transitions[{index}].Days", tr.days, MAX_INTEGER))
    nve = rule.noncurrent_version_expiration
    if nve is not None:
        numbers.append(("NoncurrentVersionExpiration.NoncurrentDays", nve.noncurrent_days, MAX_INTEGER))
        numbers.append(
            ("NoncurrentVersionExpiration.NewerNoncurrentVersions", nve.newer_noncurrent_versions, MAX_INTEGER)
        )
    for index, ntr in enumerate(rule.noncurrent_version_transitions):
        path = f"NoncurrentVersionTransitions[{index}]"
        numbers.append((f"{path}.NoncurrentDays", ntr.noncurrent_days, MAX_INTEGER))
        numbers.append((f"{path}.NewerNoncurrentVersions", ntr.newer_noncurrent_versions, MAX_INTEGER))
    if rule.abort_incomplete_multipart_upload is not None:
        days = rule.abort_incomplete_multipart_upload.days_after_initiation
        numbers.append(("AbortIncompleteMultipartUpload.DaysAfterInitiation", days, MAX_INTEGER))
    flt = rule.filter
    if flt is not None:
        numbers.append(("Filter.ObjectSizeGreaterThan", flt.object_size_greater_than, MAX_LONG))
        numbers.append(("Filter.ObjectSizeLessThan", flt.object_size_less_than, MAX_LONG))
        if flt.and_ is not None:
            numbers.append(("Filter.And.ObjectSizeGreaterThan", flt.and_.object_size_greater_than, MAX_LONG))
            numbers.append(("Filter.And.ObjectSizeLessThan", flt.and_.object_size_less_than, MAX_LONG))
    for path, value, limit in numbers:
        if value is not None and value > limit:
            yield path, f"{_number(value)} is larger than S3's API accepts here (at most {limit})", _E


def _number(value: int) -> str:
    """A number for a message; one too long to print is described by its size."""
    try:
        text = str(value)
    except ValueError:  # past Python's digit limit for int-to-str conversion
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    return text if len(text) <= 40 else f"{text[:12]}... ({len(text)} digits)"


def _check_filter(flt: Filter) -> Iterator[Finding]:
    # 4. At most one predicate; And holds at least two; unique tag keys; tag lengths.
    present = [
        name
        for name, value in (
            ("Prefix", flt.prefix),
            ("Tag", flt.tag),
            ("ObjectSizeGreaterThan", flt.object_size_greater_than),
            ("ObjectSizeLessThan", flt.object_size_less_than),
            ("And", flt.and_),
        )
        if value is not None
    ]
    if len(present) > 1:
        yield (
            "Filter",
            f"Filter holds {', '.join(present)}; a Filter holds one predicate, combine several inside And",
            _E,
        )
    if flt.tag is not None:
        yield from _check_tag("Filter.Tag", flt.tag.key, flt.tag.value)
    yield from _check_sizes("Filter", flt.object_size_greater_than, flt.object_size_less_than)
    if flt.and_ is not None:
        yield from _check_and(flt.and_)


def _check_and(op: AndOperator) -> Iterator[Finding]:
    count = (
        (op.prefix is not None)
        + len(op.tags)
        + (op.object_size_greater_than is not None)
        + (op.object_size_less_than is not None)
    )
    if count < 2:
        yield "Filter.And", "And holds fewer than two predicates; S3 wants a single predicate outside And", _E
    for index, tag in enumerate(op.tags):
        yield from _check_tag(f"Filter.And.Tags[{index}]", tag.key, tag.value)
    for key, n in Counter(t.key for t in op.tags).items():
        if n > 1:
            yield "Filter.And.Tags", f"tag key {key!r} appears {n} times; tag keys in And must be unique", _E
    yield from _check_sizes("Filter.And", op.object_size_greater_than, op.object_size_less_than)


def _check_tag(path: str, key: str, value: str) -> Iterator[Finding]:
    if not 1 <= len(key) <= MAX_TAG_KEY:
        yield f"{path}.Key", f"tag key is {len(key)} characters; S3 allows 1 to {MAX_TAG_KEY}", _E
    if len(value) > MAX_TAG_VALUE:
        yield f"{path}.Value", f"tag value is {len(value)} characters; S3 allows at most {MAX_TAG_VALUE}", _E


def _check_sizes(path: str, greater: int | None, less: int | None) -> Iterator[Finding]:
    # 5. ObjectSizeGreaterThan >= 0, ObjectSizeLessThan >= 1, less-than above greater-than.
    if greater is not None and greater < 0:
        yield f"{path}.ObjectSizeGreaterThan", f"ObjectSizeGreaterThan is {greater}; it must be at least 0", _E
    if less is not None and less < 1:
        yield f"{path}.ObjectSizeLessThan", f"ObjectSizeLessThan is {less}; it must be at least 1", _E
    if greater is not None and less is not None and less <= greater:
        yield (
            f"{path}.ObjectSizeLessThan",
            f"ObjectSizeLessThan ({less}) must be greater than ObjectSizeGreaterThan ({greater})",
            _E,
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


def _check_expiration(exp: Expiration) -> Iterator[Finding]:
    # 7. Exactly one of Days, Date, ExpiredObjectDeleteMarker.
    given = [
        name
        for name, value in (
            ("Days", exp.days),
            ("Date", exp.date),
            ("ExpiredObjectDeleteMarker", exp.expired_object_delete_marker),
        )
        if value is not None
    ]
    if len(given) != 1:
        what = ", ".join(given) if given else "none"
        yield (
            "Expiration",
            f"Expiration holds {what}; it holds exactly one of Days, Date, ExpiredObjectDeleteMarker",
            _E,
        )
    if exp.days is not None and exp.days < 1:
        yield "Expiration.Days", f"Days is {exp.days}; it must be a positive integer", _E
    if exp.date is not None:
        yield from _check_midnight("Expiration.Date", exp.date)


def _check_midnight(path: str, when: dt.datetime) -> Iterator[Finding]:
    # 8. Every Date at midnight UTC.
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        yield path, f"Date {when.isoformat()} is not at midnight UTC; write a date such as {when.date()}", _E


def _check_transitions(rule: Rule) -> Iterator[Finding]:
    # 8. No Date and Days mixed across expiration and transitions. An action holding both
    # is reported on its own (7, 9) and counts for neither here.
    timings = [(t.days, t.date) for t in rule.transitions]
    if rule.expiration is not None:
        timings.append((rule.expiration.days, rule.expiration.date))
    uses_days = any(days is not None and date is None for days, date in timings)
    uses_date = any(date is not None and days is None for days, date in timings)
    if uses_days and uses_date:
        yield "Transitions", "rule mixes Date and Days across Expiration and Transitions; use one of them", _E

    seen: set[str] = set()
    for index, tr in enumerate(rule.transitions):
        path = f"Transitions[{index}]"
        # 9. Known classes, no class twice, Days >= 0 (>= 30 to the IA classes).
        yield from _check_class(path, tr.storage_class, seen)
        if (tr.days is None) == (tr.date is None):
            yield path, "a transition holds exactly one of Days and Date", _E
        if tr.days is not None:
            yield from _check_min_days(f"{path}.Days", tr.days, tr.storage_class)
        if tr.date is not None:
            yield from _check_midnight(f"{path}.Date", tr.date)

    # 10. The waterfall, with increasing times, and expiration after every transition.
    yield from _check_order(
        "Transitions",
        [(t.storage_class, t.days if t.days is not None else t.date) for t in rule.transitions],
        "Days/Date",
    )
    if rule.expiration is not None:
        exp_at: int | dt.datetime | None = (
            rule.expiration.days if rule.expiration.days is not None else rule.expiration.date
        )
        for index, tr in enumerate(rule.transitions):
            tr_at = tr.days if tr.days is not None else tr.date
            if _comparable(exp_at, tr_at) and exp_at <= tr_at:  # type: ignore[operator]
                yield (
                    "Expiration",
                    f"Expiration ({_show(exp_at)}) must come after the transition to {tr.storage_class}"
                    f" ({_show(tr_at)}) in Transitions[{index}]",
                    _E,
                )


def _check_class(path: str, storage_class: str, seen: set[str]) -> Iterator[Finding]:
    """A known transition target, not twice in one rule (``seen`` collects the rule's)."""
    if storage_class not in _RANK:
        yield (
            f"{path}.StorageClass",
            f"StorageClass {storage_class!r} is not a transition target; use one of"
            f" {', '.join(STORAGE_CLASSES)}{suggest(storage_class, STORAGE_CLASSES)}",
            _E,
        )
    elif storage_class in seen:
        yield f"{path}.StorageClass", f"StorageClass {storage_class} appears twice in this rule", _E
    seen.add(storage_class)


def _check_min_days(path: str, days: int, storage_class: str) -> Iterator[Finding]:
    """At least 0 days, and at least 30 before the infrequent-access classes."""
    name = path.rsplit(".", 1)[-1]
    if days < 0:
        yield path, f"{name} is {days}; it must be at least 0", _E
    elif storage_class in _MIN_DAYS_30 and days < 30:
        yield path, f"{name} is {days}; S3 requires at least 30 days before {storage_class}", _E


def _check_noncurrent(rule: Rule) -> Iterator[Finding]:
    nve = rule.noncurrent_version_expiration
    low, high = NEWER_NONCURRENT_RANGE
    if nve is not None:
        # 11. NoncurrentDays at least 1; NewerNoncurrentVersions 1 to 100.
        path = "NoncurrentVersionExpiration"
        if nve.noncurrent_days is None:
            yield f"{path}.NoncurrentDays", "missing NoncurrentDays; NoncurrentVersionExpiration needs it", _E
        elif nve.noncurrent_days < 1:
            yield f"{path}.NoncurrentDays", f"NoncurrentDays is {nve.noncurrent_days}; it must be at least 1", _E
        n = nve.newer_noncurrent_versions
        if n is not None and not low <= n <= high:
            yield f"{path}.NewerNoncurrentVersions", f"NewerNoncurrentVersions is {n}; S3 allows {low} to {high}", _E
    seen: set[str] = set()
    for index, tr in enumerate(rule.noncurrent_version_transitions):
        path = f"NoncurrentVersionTransitions[{index}]"
        yield from _check_class(path, tr.storage_class, seen)
        if tr.noncurrent_days is None:
            yield f"{path}.NoncurrentDays", "missing NoncurrentDays; a noncurrent transition needs it", _E
        else:
            yield from _check_min_days(f"{path}.NoncurrentDays", tr.noncurrent_days, tr.storage_class)
        n = tr.newer_noncurrent_versions
        if n is not None and not low <= n <= high:
            yield f"{path}.NewerNoncurrentVersions", f"NewerNoncurrentVersions is {n}; S3 allows {low} to {high}", _E
    yield from _check_order(
        "NoncurrentVersionTransitions",
        [(t.storage_class, t.noncurrent_days) for t in rule.noncurrent_version_transitions],
        "NoncurrentDays",
    )
    if nve is not None and nve.noncurrent_days is not None:
        for index, tr in enumerate(rule.noncurrent_version_transitions):
            if tr.noncurrent_days is not None and nve.noncurrent_days <= tr.noncurrent_days:
                yield (
                    "NoncurrentVersionExpiration.NoncurrentDays",
                    f"NoncurrentDays ({nve.noncurrent_days}) must be greater than the NoncurrentDays"
                    f" of the transition to {tr.storage_class} ({tr.noncurrent_days})"
                    f" in NoncurrentVersionTransitions[{index}]",
                    _E,
                )


def _check_order(path: str, steps: list[tuple[str, int | dt.datetime | None]], unit: str) -> Iterator[Finding]:
    """Transitions sorted by time must go down the waterfall, each strictly later."""
    known: dict[str, int | dt.datetime] = {}
    for cls, at in steps:
        if cls in _RANK and at is not None:
            known.setdefault(cls, at)  # a class given twice is reported on its own
    one_zone, instant = known.get("ONEZONE_IA"), known.get("GLACIER_IR")
    if _comparable(one_zone, instant) and one_zone < instant:  # type: ignore[operator]
        yield (
            path,
            "transition from ONEZONE_IA to GLACIER_IR: S3's User Guide lists it as unsupported"
            " (warning: the documentation does not say whether S3 refuses the configuration)",
            _W,
        )
    timed = sorted(known.items(), key=lambda s: _RANK[s[0]])
    for (cls_a, at_a), (cls_b, at_b) in itertools.pairwise(timed):
        if not _comparable(at_a, at_b):
            continue
        if at_b < at_a:  # type: ignore[operator]
            yield (
                path,
                f"transition to {cls_b} ({_show(at_b)}) comes before the transition to {cls_a} ({_show(at_a)});"
                f" S3 moves objects only down the order {' > '.join(STORAGE_CLASSES)}",
                _E,
            )
        elif at_b == at_a:
            yield (
                path,
                f"transitions to {cls_a} and {cls_b} share the same {unit} ({_show(at_a)}); give the"
                f" later class a later time (warning: S3's documentation is unclear whether it accepts this)",
                _W,
            )
        elif isinstance(at_a, int) and isinstance(at_b, int) and cls_a in _MIN_DAYS_30 and at_b - at_a < 30:
            yield (
                path,
                f"transition to {cls_b} comes {at_b - at_a} days after the transition to {cls_a}; S3 bills"
                f" {cls_a} for at least 30 days and may refuse a shorter stay (warning)",
                _W,
            )


def _comparable(a: object, b: object) -> bool:
    return a is not None and b is not None and type(a) is type(b)


def _show(at: object) -> str:
    if isinstance(at, dt.datetime):
        return at.date().isoformat()
    return f"day {at}"
