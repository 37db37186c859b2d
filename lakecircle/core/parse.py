"""Parse TOML definition files into bucket definitions, with problems instead of exceptions.

A definition file holds one bucket (``BucketName`` at the top) or several (``[[Bucket]]``
tables with the same keys). Files naming the same bucket are merged by :func:`merge`.
Every shape problem (syntax, unknown key, wrong type, missing key) comes back as a
:class:`~lakecircle.core.problems.Problem` that names the file, the bucket, the rule and the
key path; nothing here raises on bad input.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from lakecircle.core.model import (
    OWNERSHIP_VALUES,
    TDMOS_VALUES,
    BucketDefinition,
    LifecycleConfig,
    Rule,
    _Wire,
    offset_datetime,
)
from lakecircle.core.problems import Problem, shown, shown_number, suggest
from lakecircle.core.toml_reader import TomlError, read_toml

MAX_FILE_BYTES = 1024 * 1024
"""Definition files over 1 MiB are refused unread."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


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
    problem of theirs names the bucket, which makes it invalid); :func:`merge` passes them
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
    rules: list[Rule] = []
    if isinstance(raw_rules, list):
        for index, raw in enumerate(raw_rules):
            if not isinstance(raw, dict):
                problems.append(
                    Problem(
                        file,
                        f"a rule must be a table, not {type(raw).__name__};"
                        " write it as [[LifecycleConfiguration.Rules]]",
                        bucket=label,
                        rule=_rule_label(raw, index),
                        field=f"{where}LifecycleConfiguration.Rules[{index}]",
                    )
                )
                continue
            try:
                rule = _validate_rule(raw)
            except ValidationError as exc:
                problems.extend(
                    _from_validation(exc, Rule, file=file, bucket=label, rule=_rule_label(raw, index), prefix="")
                )
                continue
            if _has_date_off_midnight(rule):
                rule, found = _offset_dates(rule, raw)
                problems.extend(
                    Problem(file, message, bucket=label, rule=_rule_label(raw, index), field=path)
                    for path, message in found
                )
            rules.append(rule)
    tdmos = table.get("TransitionDefaultMinimumObjectSize")
    if isinstance(tdmos, str) and tdmos not in TDMOS_VALUES:
        problems.append(
            Problem(
                file,
                f"TransitionDefaultMinimumObjectSize {shown(tdmos)} is not one of {', '.join(TDMOS_VALUES)}"
                f"{suggest(tdmos, TDMOS_VALUES)}",
                bucket=label,
                field=f"{where}TransitionDefaultMinimumObjectSize",
            )
        )
    ownership = table.get("Ownership")
    if isinstance(ownership, str) and ownership not in OWNERSHIP_VALUES:
        problems.append(
            Problem(
                file,
                f"Ownership {shown(ownership)} is not one of {', '.join(OWNERSHIP_VALUES)}"
                f"{suggest(ownership, OWNERSHIP_VALUES)}",
                bucket=label,
                field=f"{where}Ownership",
            )
        )
    if label is None:
        return None, problems
    config = LifecycleConfig(tuple(rules), tdmos if tdmos in TDMOS_VALUES else None)
    owner = ownership if ownership in OWNERSHIP_VALUES else None
    return BucketDefinition(label, config, (file,), (file,) * len(rules), owner), problems


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
        return _from_validation(exc, _BucketDoc, file=file, bucket=label, rule=None, prefix=where)
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


def _from_validation(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    file: str,
    bucket: str | None,
    rule: str | None,
    prefix: str,
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        path = prefix + _path(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = _keys_at(model, loc[:-1])
            key = str(loc[-1])
            message = f"unknown key {shown(key)}{suggest(key, allowed)}; allowed here: {', '.join(sorted(allowed))}"
            if key == "TransitionDefaultMinimumObjectSize":
                message += "; TransitionDefaultMinimumObjectSize belongs beside BucketName, not inside a table"
        elif kind == "missing":
            message = f"missing required key {str(loc[-1])!r}"
            if loc[-1] == "Rules":
                message += " (write Rules = [] to delete the bucket's lifecycle configuration)"
        elif kind == "value_error":  # a check of the model's own, which words its message
            message = str(error.get("ctx", {}).get("error", "is not a valid value"))
        elif kind in _BOUNDS:
            key, words = _BOUNDS[kind]
            message = f"must be {words} {error.get('ctx', {}).get(key)}, got {_describe(error.get('input'))}"
        else:
            expected = _EXPECTED.get(kind)
            said = f"must be {expected}" if expected else "is not a valid value here"
            message = f"{said}, got {_describe(error.get('input'))}"
        problems.append(Problem(file, message, bucket=bucket, rule=rule, field=path or None))
    return problems


_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
    "tuple_type": "an array",
    "datetime_type": "a date: a TOML date (2030-01-01), a TOML date-time or an ISO 8601 string",
    "datetime_parsing": "a date: a TOML date (2030-01-01), a TOML date-time or an ISO 8601 string",
    "string_too_short": "a non-empty string",
}
"""What a wrong-typed value should have been, in TOML's words (pydantic says Python's)."""

_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "greater_than": ("gt", "greater than"),
}
"""pydantic's range errors, by the key of their bound (the only ones: integers S3 can carry)."""

_TOML_TYPES = {
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "dict": "table",
    "list": "array",
    "datetime": "date-time",
    "date": "date",
    "time": "time",
    "float": "float",
}


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"datetime", "function-before[_to_utc_datetime(), datetime]"}:
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def _describe(value: object) -> str:
    """A TOML value for a message: its TOML type and a short TOML spelling, never a Python repr."""
    kind = _TOML_TYPES.get(type(value).__name__, "value")
    return f"{kind} {_spelled(value, 2)}"


def _spelled(value: object, depth: int) -> str:
    """``value`` as TOML writes it, cut short: three items of an array or table, two levels."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return shown_number(value).removeprefix("a number ")  # "integer of about 4,400 digits"
    if isinstance(value, float):
        return repr(value)  # inf, -inf, nan and 1.5 are spelled alike in TOML
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list | dict):
        if depth == 0:
            return "[...]" if isinstance(value, list) else "{...}"
        items = (
            [_spelled(v, depth - 1) for v in value[:3]]
            if isinstance(value, list)
            else [f"{_key(k)} = {_spelled(v, depth - 1)}" for k, v in list(value.items())[:3]]
        )
        if len(value) > 3:
            items.append("...")
        return f"[{', '.join(items)}]" if isinstance(value, list) else f"{{ {', '.join(items)} }}"
    return type(value).__name__  # not a TOML value: a type is all there is to say


def _key(key: object) -> str:
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else shown(text)


def _keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys a table at ``loc`` (a path below ``model``) may hold."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        by_alias = {f.alias or n: f for n, f in current.model_fields.items()}
        field = by_alias.get(part)
        current = _model_in(field.annotation) if field is not None else None
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def merge(files: Iterable[ParsedFile]) -> tuple[dict[str, BucketDefinition], list[Problem]]:
    """Merge the buckets of several files: a bucket's rules are the union of its files'.

    The same rule ID twice for one bucket, or two different
    TransitionDefaultMinimumObjectSize values, is a problem naming both files. (Duplicate
    rule IDs are reported by :func:`lakecircle.core.validate.bucket.validate_bucket`, which sees the
    merged bucket and the file of each rule.)

    Incomplete buckets (see :class:`ParsedFile`) are merged too, so that validation sees
    every rule that could be read; their parse problems keep them from being applied.
    """
    merged: dict[str, BucketDefinition] = {}
    tdmos_file: dict[str, str] = {}
    problems: list[Problem] = []
    for parsed in files:
        for bucket in (*parsed.buckets, *parsed.incomplete):
            value = bucket.config.transition_default_minimum_object_size
            seen = merged.get(bucket.name)
            if seen is None:
                merged[bucket.name] = bucket
                if value is not None:
                    tdmos_file[bucket.name] = bucket.files[0]
                continue
            kept = seen.config.transition_default_minimum_object_size
            if value is not None and kept is None:
                tdmos_file[bucket.name] = bucket.files[0]
            elif value is not None and kept is not None and value != kept:
                problems.append(
                    Problem(
                        bucket.files[0],
                        f"TransitionDefaultMinimumObjectSize is {value!r} here but {kept!r} in"
                        f" {tdmos_file[bucket.name]}; give the bucket one value",
                        bucket=bucket.name,
                        field="TransitionDefaultMinimumObjectSize",
                    )
                )
            if bucket.ownership is not None and seen.ownership is not None and bucket.ownership != seen.ownership:
                problems.append(
                    Problem(
                        bucket.files[0],
                        f"Ownership is {bucket.ownership!r} here but {seen.ownership!r} in"
                        f" {', '.join(seen.files)}; give the bucket one value",
                        bucket=bucket.name,
                        field="Ownership",
                    )
                )
            merged[bucket.name] = _merge_two(seen, bucket)
    return merged, problems


def _merge_two(a: BucketDefinition, b: BucketDefinition) -> BucketDefinition:
    tdmos_a = a.config.transition_default_minimum_object_size
    tdmos_b = b.config.transition_default_minimum_object_size
    return BucketDefinition(
        a.name,
        LifecycleConfig(a.config.rules + b.config.rules, tdmos_a if tdmos_a is not None else tdmos_b),
        tuple(dict.fromkeys(a.files + b.files)),
        a.rule_files + b.rule_files,
        a.ownership if a.ownership is not None else b.ownership,
    )
