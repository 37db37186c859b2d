"""Parse TOML definition files into bucket definitions, with problems instead of exceptions.

A definition file holds one bucket (``BucketName`` at the top) or several (``[[Bucket]]``
tables with the same keys). Files naming the same bucket are merged by
:func:`lakecircle.core.merge.merge`. Every shape problem (syntax, unknown key, wrong type,
missing key) comes back as a :class:`~lakecircle.core.problems.Problem` that names the
file, the bucket, the rule and the key path (worded by :mod:`lakecircle.core.shape_problems`);
nothing here raises on bad input.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from lakecircle.core.model import (
    OWNERSHIP_VALUES,
    TDMOS_VALUES,
    BucketDefinition,
    LifecycleConfig,
    Rule,
    _Wire,
    offset_datetime,
)
from lakecircle.core.problems import Problem, shown, suggest
from lakecircle.core.shape_problems import shape_problems
from lakecircle.core.toml_reader import TomlError, read_toml

MAX_FILE_BYTES = 1024 * 1024
"""Definition files over 1 MiB are refused unread."""


class _LifecycleDoc(_Wire):
    rules: list[dict[str, Any]] = Field(alias="Rules")


class _BucketDoc(_Wire):
    bucket_name: str = Field(alias="BucketName", min_length=1)
    transition_default_minimum_object_size: str | None = Field(default=None, alias="TransitionDefaultMinimumObjectSize")
    lifecycle_configuration: _LifecycleDoc = Field(alias="LifecycleConfiguration")
    ownership: str | None = Field(default=None, alias="Ownership")


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One file's buckets, in file order, and the problems found while reading it.

    ``readable`` is False when the file as a whole could not be read (too large, not
    UTF-8, not TOML): then the buckets it meant to define are unknown.

    ``incomplete`` holds the buckets whose name is known but whose definition has a
    problem, with only the rules that could be read. They are never to be applied (every
    problem of theirs names the bucket, which makes it invalid); merging passes them
    on so validation can report the problems of their other rules in the same run.
    """

    name: str
    buckets: tuple[BucketDefinition, ...]
    problems: tuple[Problem, ...]
    readable: bool = True
    incomplete: tuple[BucketDefinition, ...] = ()


def parse_file(name: str, data: bytes) -> ParsedFile:
    """Parse one definition file's bytes."""
    if len(data) > MAX_FILE_BYTES:
        return _unreadable(
            name,
            f"file is {len(data):,} bytes, over the 1 MiB limit for a definition file; split it into several files",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return _unreadable(name, f"file is not UTF-8 (bad byte at line {line}, offset {exc.start}); save it as UTF-8")
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors write
    try:
        document = read_toml(text)
    except TomlError as exc:
        return _unreadable(name, str(exc))
    return parse_document(name, document)


def parse_document(name: str, document: Mapping[str, Any]) -> ParsedFile:
    """Read an already decoded TOML document."""
    if "Bucket" in document:
        others = sorted(k for k in document if k != "Bucket")
        problems: list[Problem] = []
        if others:
            problems.append(
                Problem(
                    name,
                    f"top-level keys {', '.join(others)} cannot stand beside [[Bucket]];"
                    " move them into a [[Bucket]] table",
                    field=others[0],
                )
            )
        tables = document["Bucket"]
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            problems.append(Problem(name, "Bucket must be an array of tables, written [[Bucket]]", field="Bucket"))
            return ParsedFile(name, (), tuple(problems))
        buckets: list[BucketDefinition] = []
        incomplete: list[BucketDefinition] = []
        for index, table in enumerate(tables):
            bucket, found = _parse_bucket(name, table, f"Bucket[{index}].")
            problems.extend(found)
            if bucket is not None:
                (incomplete if found else buckets).append(bucket)
        return ParsedFile(name, tuple(buckets), tuple(problems), incomplete=tuple(incomplete))
    bucket, found = _parse_bucket(name, document, "")
    if bucket is None:
        return ParsedFile(name, (), tuple(found))
    if found:
        return ParsedFile(name, (), tuple(found), incomplete=(bucket,))
    return ParsedFile(name, (bucket,), ())


def _unreadable(name: str, message: str) -> ParsedFile:
    return ParsedFile(name, (), (Problem(name, message),), readable=False)


def _parse_bucket(file: str, table: Mapping[str, Any], where: str) -> tuple[BucketDefinition | None, list[Problem]]:
    """The bucket of one table and its problems.

    With problems, the bucket (if its name is known) holds only the rules that could be
    read, and every problem names it: it is incomplete, for validation only.
    """
    raw_name = table.get("BucketName")
    bucket = raw_name if isinstance(raw_name, str) and raw_name else None
    label = bucket  # None when the name is unknown; the field path then says where
    problems: list[Problem] = []
    lifecycle = table.get("LifecycleConfiguration")
    if not _plain_header(table, lifecycle):
        problems.extend(_header_problems(file, table, lifecycle, label, where))
    raw_rules = lifecycle.get("Rules") if isinstance(lifecycle, dict) else None
    rules = _parse_rules(file, raw_rules, label, where, problems) if isinstance(raw_rules, list) else []
    tdmos = table.get("TransitionDefaultMinimumObjectSize")
    ownership = table.get("Ownership")
    for key, value, allowed in (
        ("TransitionDefaultMinimumObjectSize", tdmos, TDMOS_VALUES),
        ("Ownership", ownership, OWNERSHIP_VALUES),
    ):
        if isinstance(value, str) and value not in allowed:
            problems.append(
                Problem(
                    file,
                    f"{key} {shown(value)} is not one of {', '.join(allowed)}{suggest(value, allowed)}",
                    bucket=label,
                    field=f"{where}{key}",
                )
            )
    if label is None:
        return None, problems
    config = LifecycleConfig(tuple(rules), tdmos if tdmos in TDMOS_VALUES else None)
    owner = ownership if ownership in OWNERSHIP_VALUES else None
    return BucketDefinition(label, config, (file,), (file,) * len(rules), owner), problems


def _parse_rules(
    file: str, raw_rules: Sequence[object], label: str | None, where: str, problems: list[Problem]
) -> list[Rule]:
    """The rules that could be read; the problems of the others go to ``problems``."""
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            problems.append(
                Problem(
                    file,
                    f"a rule must be a table, not {type(raw).__name__}; write it as [[LifecycleConfiguration.Rules]]",
                    bucket=label,
                    rule=_rule_label(raw, index),
                    field=f"{where}LifecycleConfiguration.Rules[{index}]",
                )
            )
            continue
        try:
            rule = _validate_rule(raw)
        except ValidationError as exc:
            problems.extend(shape_problems(exc, Rule, file=file, bucket=label, rule=_rule_label(raw, index), prefix=""))
            continue
        if _has_date_off_midnight(rule):
            rule, found = _offset_dates(rule, raw)
            problems.extend(
                Problem(file, message, bucket=label, rule=_rule_label(raw, index), field=path)
                for path, message in found
            )
        rules.append(rule)
    return rules


def _has_date_off_midnight(rule: Rule) -> bool:
    """True when a Date of the rule is not at midnight UTC (rare: most rules count days)."""
    expiration = rule.expiration
    if expiration is not None and expiration.date is not None and _off_midnight(expiration.date):
        return True
    return any(t.date is not None and _off_midnight(t.date) for t in rule.transitions)


def _off_midnight(when: dt.datetime) -> bool:
    return bool(when.hour or when.minute or when.second or when.microsecond)


def _offset_dates(rule: Rule, raw: Mapping[str, Any]) -> tuple[Rule, list[tuple[str, str]]]:
    """Dates written with a UTC offset that puts them off midnight UTC, as (field, message).

    ``2030-01-01T00:00:00+02:00`` is 22:00 UTC on 2029-12-31, and S3 takes only midnight
    UTC. Validation would see only the UTC value and point at the wrong day, so the problem
    is said here, where the spelling is known; the rule goes on to validation with the day
    as written, at midnight UTC, so that its other problems come in the same run.
    """
    found: list[tuple[str, str]] = []
    expiration = rule.expiration
    raw_expiration = raw.get("Expiration")
    if expiration is not None and expiration.date is not None and isinstance(raw_expiration, dict):
        written = offset_datetime(raw_expiration.get("Date"))
        if written is not None and _off_midnight(expiration.date):
            found.append(("Expiration.Date", _offset_message(written, expiration.date)))
            expiration = expiration.model_copy(update={"date": _midnight(written)})
    transitions = list(rule.transitions)
    raw_transitions = raw.get("Transitions")
    for index, transition in enumerate(transitions):
        raw_transition = raw_transitions[index] if isinstance(raw_transitions, list) else None
        if transition.date is None or not isinstance(raw_transition, dict):
            continue
        written = offset_datetime(raw_transition.get("Date"))
        if written is not None and _off_midnight(transition.date):
            found.append((f"Transitions[{index}].Date", _offset_message(written, transition.date)))
            transitions[index] = transition.model_copy(update={"date": _midnight(written)})
    if not found:
        return rule, found
    return rule.model_copy(update={"expiration": expiration, "transitions": tuple(transitions)}), found


def _offset_message(written: dt.datetime, utc: dt.datetime) -> str:
    return (
        f"Date {written.isoformat()} is {utc.isoformat().replace('+00:00', 'Z')} in UTC, and S3 takes a Date"
        f" only at midnight UTC; write the day alone: Date = {written.date().isoformat()}"
    )


def _midnight(written: dt.datetime) -> dt.datetime:
    return dt.datetime(written.year, written.month, written.day, tzinfo=dt.UTC)


_HEADER_KEYS = frozenset({"BucketName", "TransitionDefaultMinimumObjectSize", "LifecycleConfiguration", "Ownership"})


def _plain_header(table: Mapping[str, Any], lifecycle: object) -> bool:
    """True when the keys beside the rules are certainly the right ones of the right types.

    Then :class:`_BucketDoc` would find nothing, and checking it is skipped: it is the
    shape of nearly every file, and the check costs more than this look. Anything else
    (a key missing or unknown, a type to report) is left to :func:`_header_problems`.
    """
    name = table.get("BucketName")
    tdmos = table.get("TransitionDefaultMinimumObjectSize")
    ownership = table.get("Ownership")
    return (
        type(name) is str
        and name != ""
        and (tdmos is None or type(tdmos) is str)
        and (ownership is None or type(ownership) is str)
        and type(lifecycle) is dict
        and len(lifecycle) == 1
        and type(lifecycle.get("Rules")) is list
        and _HEADER_KEYS.issuperset(table)
    )


def _header_problems(
    file: str, table: Mapping[str, Any], lifecycle: object, label: str | None, where: str
) -> list[Problem]:
    """The problems of a bucket's keys other than its rules (which are checked one by one)."""
    header = {k: v for k, v in table.items() if k != "LifecycleConfiguration"}
    if isinstance(lifecycle, dict):
        header["LifecycleConfiguration"] = {
            k: ([] if k == "Rules" and isinstance(v, list) else v) for k, v in lifecycle.items()
        }
    elif lifecycle is not None:
        header["LifecycleConfiguration"] = lifecycle
    try:
        _BucketDoc.model_validate(header)
    except ValidationError as exc:
        return shape_problems(exc, _BucketDoc, file=file, bucket=label, rule=None, prefix=where)
    return []


_validate_rule = Rule.__pydantic_validator__.validate_python
"""``Rule.model_validate`` without its wrapper (which passes only defaults): every rule
of every file goes through it."""


def _rule_label(raw: object, index: int) -> str:
    if isinstance(raw, dict):
        rule_id = raw.get("ID")
        if isinstance(rule_id, str) and rule_id:
            return rule_id
    return f"rule #{index + 1}"
