"""Parse TOML definition files into bucket definitions, with problems instead of exceptions.

A definition file holds one bucket (``BucketName`` at the top) or several (``[[Bucket]]``
tables with the same keys). A table may instead name its buckets by pattern and tag, with
``BucketMatch`` (and ``BucketExclude``, ``BucketTags``): a selector
(:class:`~lakecircle.core.selectors.Selector`), read beside the exact definitions and
checked by :mod:`lakecircle.core.selector_checks`. Files naming the same bucket are merged by
:func:`lakecircle.core.merge.merge`. Every shape problem (syntax, unknown key, wrong type,
missing key) comes back as a :class:`~lakecircle.core.problems.Problem` that names the
file, the bucket, the rule and the key path (worded by :mod:`lakecircle.core.shape_problems`);
nothing here raises on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import Field, ValidationError

from lakecircle.core.accounts import EVERY_ACCOUNT, read_scope
from lakecircle.core.model import (
    OWNERSHIP_VALUES,
    TDMOS_VALUES,
    BucketDefinition,
    LifecycleConfig,
    _Wire,
)
from lakecircle.core.problems import Problem, has_errors, shown, suggest
from lakecircle.core.rules_reader import parse_rules
from lakecircle.core.selector_checks import selector_key_problems
from lakecircle.core.selectors import Ownership, Selector
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
    # A selector's keys beside BucketName are reported by _exact_or_selector, in words of their own.
    bucket_match: Any = Field(default=None, alias="BucketMatch")
    bucket_exclude: Any = Field(default=None, alias="BucketExclude")
    bucket_tags: Any = Field(default=None, alias="BucketTags")
    # Checked by read_scope, in words of its own (an account ID written as a number: "quote it").
    accounts: Any = Field(default=None, alias="Accounts")
    account_tags: Any = Field(default=None, alias="AccountTags")


class _SelectorDoc(_Wire):
    bucket_match: list[str] | None = Field(default=None, alias="BucketMatch")
    """Required, but said in words of its own when missing (see _parse_selector)."""
    bucket_exclude: list[str] = Field(default=[], alias="BucketExclude")
    bucket_tags: dict[str, str] = Field(default={}, alias="BucketTags")
    transition_default_minimum_object_size: str | None = Field(default=None, alias="TransitionDefaultMinimumObjectSize")
    lifecycle_configuration: _LifecycleDoc = Field(alias="LifecycleConfiguration")
    ownership: str | None = Field(default=None, alias="Ownership")
    accounts: Any = Field(default=None, alias="Accounts")
    account_tags: Any = Field(default=None, alias="AccountTags")


_SELECTOR_KEYS = ("BucketMatch", "BucketExclude", "BucketTags")


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
    selectors: tuple[Selector, ...] = ()
    """Its selectors read without an error, in file order (warnings are in ``problems``)."""
    broken_selectors: tuple[tuple[str, tuple[Problem, ...]], ...] = ()
    """The selectors that could not be read, as (label, their errors); the errors are in
    ``problems`` too. Which buckets such a selector meant is unknown."""
    incomplete_selectors: tuple[Selector, ...] = ()
    """The broken selectors with what could be read of them (as ``incomplete`` for
    buckets): never to be used, but validated, so that all their problems come in one run."""


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
        read: list[tuple[Selector, list[Problem]]] = []
        for index, table in enumerate(tables):
            where = f"Bucket[{index}]."
            if _is_selector(table):
                selector, found = _parse_selector(name, table, where)
                read.append((selector, found))
                problems.extend(found)
                continue
            bucket, found = _parse_bucket(name, table, where)
            problems.extend(found)
            if bucket is not None:
                (incomplete if found else buckets).append(bucket)
        return ParsedFile(
            name, tuple(buckets), tuple(problems), incomplete=tuple(incomplete), **_sorted_selectors(read)
        )
    if _is_selector(document):
        selector, found = _parse_selector(name, document, "")
        return ParsedFile(name, (), tuple(found), **_sorted_selectors([(selector, found)]))
    bucket, found = _parse_bucket(name, document, "")
    if bucket is None:
        return ParsedFile(name, (), tuple(found))
    if found:
        return ParsedFile(name, (), tuple(found), incomplete=(bucket,))
    return ParsedFile(name, (bucket,), ())


def _is_selector(table: Mapping[str, Any]) -> bool:
    """A table names its buckets by pattern when it has a selector's key and no BucketName
    (with BucketName too, it is an exact definition, and the selector's keys an error)."""
    return "BucketName" not in table and any(key in table for key in _SELECTOR_KEYS)


class _SelectorFields(TypedDict):
    selectors: tuple[Selector, ...]
    broken_selectors: tuple[tuple[str, tuple[Problem, ...]], ...]
    incomplete_selectors: tuple[Selector, ...]


def _sorted_selectors(read: list[tuple[Selector, list[Problem]]]) -> _SelectorFields:
    """:class:`ParsedFile`'s selector fields for the selectors read with their problems."""
    broken = [(s, tuple(p for p in found if p.is_error)) for s, found in read if has_errors(found)]
    return {
        "selectors": tuple(s for s, found in read if not has_errors(found)),
        "broken_selectors": tuple((s.label, errors) for s, errors in broken),
        "incomplete_selectors": tuple(s for s, _ in broken),
    }


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
    rules = parse_rules(file, raw_rules, label, where, problems) if isinstance(raw_rules, list) else []
    problems.extend(_exact_or_selector(file, table, label, where))
    problems.extend(_setting_problems(file, table, label, where))
    scope = EVERY_ACCOUNT
    if "Accounts" in table or "AccountTags" in table:
        scope, found = read_scope(file, table, bucket=label, where=where)
        problems.extend(found)
    tdmos = table.get("TransitionDefaultMinimumObjectSize")
    ownership = table.get("Ownership")
    if label is None:
        return None, problems
    config = LifecycleConfig(tuple(rules), tdmos if tdmos in TDMOS_VALUES else None)
    owner = ownership if ownership in OWNERSHIP_VALUES else None
    return BucketDefinition(label, config, (file,), (file,) * len(rules), owner, scope), problems


def _setting_problems(file: str, table: Mapping[str, Any], label: str | None, where: str) -> list[Problem]:
    """A TransitionDefaultMinimumObjectSize or an Ownership that is not one of its values."""
    problems = []
    for key, allowed in (
        ("TransitionDefaultMinimumObjectSize", TDMOS_VALUES),
        ("Ownership", OWNERSHIP_VALUES),
    ):
        value = table.get(key)
        if isinstance(value, str) and value not in allowed:
            problems.append(
                Problem(
                    file,
                    f"{key} {shown(value)} is not one of {', '.join(allowed)}{suggest(value, allowed)}",
                    bucket=label,
                    field=f"{where}{key}",
                )
            )
    return problems


def _exact_or_selector(file: str, table: Mapping[str, Any], label: str | None, where: str) -> list[Problem]:
    """A selector's keys beside BucketName: a table names one bucket or selects several."""
    if "BucketMatch" in table:
        message = (
            "BucketName and BucketMatch cannot stand together: BucketName names one bucket, BucketMatch"
            " selects buckets by pattern; keep one of them"
        )
        return [Problem(file, message, bucket=label, field=f"{where}BucketMatch")]
    return [
        Problem(
            file,
            f"{key} narrows the buckets a BucketMatch selects and cannot stand beside BucketName;"
            ' remove it, or select buckets with BucketMatch = ["*"] in place of BucketName',
            bucket=label,
            field=f"{where}{key}",
        )
        for key in _SELECTOR_KEYS[1:]
        if key in table
    ]


def _parse_selector(file: str, table: Mapping[str, Any], where: str) -> tuple[Selector, list[Problem]]:
    """The selector of one table and its problems, which name no bucket (their fields begin
    with ``where``). With an error, the selector holds only what could be read: it is
    incomplete, for validation only."""
    lifecycle = table.get("LifecycleConfiguration")
    problems = _header_problems(file, table, lifecycle, None, where, model=_SelectorDoc)
    if "BucketMatch" not in table:
        problems.extend(
            Problem(file, _WITHOUT_MATCH[key], field=f"{where}{key}") for key in _SELECTOR_KEYS[1:] if key in table
        )
    raw_rules = lifecycle.get("Rules") if isinstance(lifecycle, dict) else None
    rules = parse_rules(file, raw_rules, None, where, problems, paths=True) if isinstance(raw_rules, list) else []
    problems.extend(_setting_problems(file, table, None, where))
    match = _string_list(table["BucketMatch"]) if "BucketMatch" in table else None
    exclude, tags = _string_list(table.get("BucketExclude")), _string_table(table.get("BucketTags"))
    raw_ownership = table.get("Ownership")
    ownership = Ownership(raw_ownership) if raw_ownership in OWNERSHIP_VALUES else Ownership.SHARED
    problems.extend(selector_key_problems(file, where, match=match, exclude=exclude, tags=tags, ownership=ownership))
    scope = EVERY_ACCOUNT
    if "Accounts" in table or "AccountTags" in table:
        scope, found = read_scope(file, table, bucket=None, where=where)
        problems.extend(found)
    tdmos = table.get("TransitionDefaultMinimumObjectSize")
    config = LifecycleConfig(tuple(rules), tdmos if tdmos in TDMOS_VALUES else None)
    pairs = tuple(sorted((tags or {}).items()))
    return Selector(file, where, match or (), exclude or (), pairs, ownership, config, scope), problems


_WITHOUT_MATCH = {
    "BucketExclude": (
        "BucketExclude leaves names out of those a BucketMatch selects, and there is no BucketMatch;"
        ' write BucketMatch = ["*"] to select every bucket but these'
    ),
    "BucketTags": (
        "BucketTags narrows the buckets a BucketMatch selects, and there is no BucketMatch;"
        ' write BucketMatch = ["*"] to select every bucket that carries these tags'
    ),
}


def _string_list(value: object) -> tuple[str, ...] | None:
    """An array of strings (absent: empty); None for any other shape (the header check says why)."""
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _string_table(value: object) -> dict[str, str] | None:
    """A table of strings (absent: empty); None for any other shape (the header check says why)."""
    if value is None:
        return {}
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    return None


_HEADER_KEYS = frozenset({"BucketName", "TransitionDefaultMinimumObjectSize", "LifecycleConfiguration", "Ownership"})
"""The keys of an exact definition whose types :func:`_plain_header` checks itself; a table with
any other key (``Accounts`` and ``AccountTags`` among them) takes the long way."""


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
    file: str,
    table: Mapping[str, Any],
    lifecycle: object,
    label: str | None,
    where: str,
    *,
    model: type[_Wire] = _BucketDoc,
) -> list[Problem]:
    """The problems of a bucket's (or with ``_SelectorDoc``, a selector's) keys other than
    its rules (which are checked one by one)."""
    header = {k: v for k, v in table.items() if k != "LifecycleConfiguration"}
    if isinstance(lifecycle, dict):
        header["LifecycleConfiguration"] = {
            k: ([] if k == "Rules" and isinstance(v, list) else v) for k, v in lifecycle.items()
        }
    elif lifecycle is not None:
        header["LifecycleConfiguration"] = lifecycle
    try:
        model.model_validate(header)
    except ValidationError as exc:
        return shape_problems(exc, model, file=file, bucket=label, rule=None, prefix=where)
    return []
