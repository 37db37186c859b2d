"""Parse TOML definition files into bucket definitions, with problems instead of exceptions.

A definition file holds one bucket (``BucketName`` at the top) or several (``[[Bucket]]``
tables with the same keys). Files naming the same bucket are merged by :func:`merge`.
Every shape problem (syntax, unknown key, wrong type, missing key) comes back as a
:class:`~lakecircle.problems.Problem` that names the file, the bucket, the rule and the
key path; nothing here raises on bad input.
"""

from __future__ import annotations

import reprlib
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from lakecircle.model import BucketDefinition, LifecycleConfig, Rule, _Wire
from lakecircle.problems import Problem, suggest

MAX_FILE_BYTES = 1024 * 1024
"""Definition files over 1 MiB are refused unread."""

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlevel = 2


class _LifecycleDoc(_Wire):
    rules: list[dict[str, Any]] = Field(alias="Rules")


class _BucketDoc(_Wire):
    bucket_name: str = Field(alias="BucketName", min_length=1)
    transition_default_minimum_object_size: str | None = Field(default=None, alias="TransitionDefaultMinimumObjectSize")
    lifecycle_configuration: _LifecycleDoc = Field(alias="LifecycleConfiguration")


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One file's buckets, in file order, and the problems found while reading it.

    ``readable`` is False when the file as a whole could not be read (too large, not
    UTF-8, not TOML): then the buckets it meant to define are unknown.
    """

    name: str
    buckets: tuple[BucketDefinition, ...]
    problems: tuple[Problem, ...]
    readable: bool = True


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
        return _unreadable(name, f"file is not UTF-8 (bad byte at offset {exc.start}); save it as UTF-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return _unreadable(name, f"TOML syntax error: {exc}")
    except RecursionError:
        return _unreadable(name, "TOML is nested too deeply to be a definition")
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
                )
            )
        tables = document["Bucket"]
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            problems.append(Problem(name, "Bucket must be an array of tables, written [[Bucket]]", field="Bucket"))
            return ParsedFile(name, (), tuple(problems))
        buckets: list[BucketDefinition] = []
        for index, table in enumerate(tables):
            bucket, found = _parse_bucket(name, table, f"Bucket[{index}].")
            problems.extend(found)
            if bucket is not None:
                buckets.append(bucket)
        return ParsedFile(name, tuple(buckets), tuple(problems))
    bucket, found = _parse_bucket(name, document, "")
    return ParsedFile(name, (bucket,) if bucket is not None else (), tuple(found))


def _unreadable(name: str, message: str) -> ParsedFile:
    return ParsedFile(name, (), (Problem(name, message),), readable=False)


def _parse_bucket(file: str, table: Mapping[str, Any], where: str) -> tuple[BucketDefinition | None, list[Problem]]:
    raw_name = table.get("BucketName")
    bucket = raw_name if isinstance(raw_name, str) and raw_name else None
    label = bucket  # None when the name is unknown; the field path then says where
    problems: list[Problem] = []
    header = {k: v for k, v in table.items() if k != "LifecycleConfiguration"}
    lifecycle = table.get("LifecycleConfiguration")
    if isinstance(lifecycle, dict):
        header["LifecycleConfiguration"] = {
            k: ([] if k == "Rules" and isinstance(v, list) else v) for k, v in lifecycle.items()
        }
    else:
        header["LifecycleConfiguration"] = lifecycle
    if lifecycle is None:
        del header["LifecycleConfiguration"]
    try:
        doc = _BucketDoc.model_validate(header)
    except ValidationError as exc:
        problems.extend(_from_validation(exc, _BucketDoc, file=file, bucket=label, rule=None, prefix=where))
        doc = None
    raw_rules = lifecycle.get("Rules") if isinstance(lifecycle, dict) else None
    rules: list[Rule] = []
    if isinstance(raw_rules, list):
        for index, raw in enumerate(raw_rules):
            rule_label = _rule_label(raw, index)
            if not isinstance(raw, dict):
                problems.append(
                    Problem(
                        file,
                        f"a rule must be a table, not {type(raw).__name__};"
                        " write it as [[LifecycleConfiguration.Rules]]",
                        bucket=label,
                        rule=rule_label,
                    )
                )
                continue
            try:
                rules.append(Rule.model_validate(raw))
            except ValidationError as exc:
                problems.extend(_from_validation(exc, Rule, file=file, bucket=label, rule=rule_label, prefix=""))
    if doc is None or problems:
        return None, problems
    config = LifecycleConfig(tuple(rules), doc.transition_default_minimum_object_size)
    return BucketDefinition(doc.bucket_name, config, (file,), (file,) * len(rules)), problems


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
            message = f"unknown key {key!r}{suggest(key, allowed)}; allowed here: {', '.join(sorted(allowed))}"
        elif kind == "missing":
            message = f"missing required key {str(loc[-1])!r}"
            if loc[-1] == "Rules":
                message += " (write Rules = [] to delete the bucket's lifecycle configuration)"
        else:
            message = f"{_lower_first(error['msg'])}, got {_describe(error.get('input'))}"
        problems.append(Problem(file, message, bucket=bucket, rule=rule, field=path or None))
    return problems


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


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _describe(value: object) -> str:
    try:
        return f"{type(value).__name__} {_short.repr(value)}"
    except RecursionError:
        return type(value).__name__


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
    TransitionDefaultMinimumObjectSize values, is a problem naming both files.
    """
    merged: dict[str, BucketDefinition] = {}
    problems: list[Problem] = []
    for parsed in files:
        for bucket in parsed.buckets:
            seen = merged.get(bucket.name)
            if seen is None:
                merged[bucket.name] = bucket
                continue
            merged[bucket.name], found = _merge_two(seen, bucket)
            problems.extend(found)
    return merged, problems


def _merge_two(a: BucketDefinition, b: BucketDefinition) -> tuple[BucketDefinition, list[Problem]]:
    problems = []
    tdmos_a = a.config.transition_default_minimum_object_size
    tdmos_b = b.config.transition_default_minimum_object_size
    if tdmos_a is not None and tdmos_b is not None and tdmos_a != tdmos_b:
        problems.append(
            Problem(
                b.files[0],
                f"TransitionDefaultMinimumObjectSize is {tdmos_b!r} here but {tdmos_a!r} in"
                f" {', '.join(a.files)}; give the bucket one value",
                bucket=a.name,
                field="TransitionDefaultMinimumObjectSize",
            )
        )
    return (
        BucketDefinition(
            a.name,
            LifecycleConfig(a.config.rules + b.config.rules, tdmos_a if tdmos_a is not None else tdmos_b),
            tuple(dict.fromkeys(a.files + b.files)),
            a.rule_files + b.rule_files,
        ),
        problems,
    )
