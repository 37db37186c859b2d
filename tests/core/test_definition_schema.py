"""The definition schema: committed as generated, a valid draft 2020-12 schema, described,
met by every example and test definition LakeCircle accepts, and never stricter than LakeCircle."""

from __future__ import annotations

import copy
import datetime as dt
import json
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from lakecircle.core.definition_schema import REGENERATE, SCHEMA_ID, SCHEMA_PATH, definition_schema, schema_text
from lakecircle.core.schema_words import DESCRIPTIONS
from lakecircle.core.validate.actions import STORAGE_CLASSES
from tests.definition_docs import (
    ROOT,
    corpus_documents,
    example_documents,
    reading_errors,
    schema_errors,
    shown,
)
from tests.strategies import definition_rules, fleet_file


def test_the_committed_schema_is_the_generated_one() -> None:
    committed = (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == schema_text(), f"{SCHEMA_PATH} is out of date; write it again with: {REGENERATE}"


def test_the_schema_is_a_draft_2020_12_schema_with_an_id_and_a_title() -> None:
    schema = definition_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (schema["$id"], schema["title"]) == (SCHEMA_ID, "LakeCircle definition file")
    assert json.loads(schema_text()) == schema


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        yield from (node[k] for k in node if k == "$ref")
        yield from (r for v in node.values() for r in _refs(v))
    elif isinstance(node, list):
        yield from (r for v in node for r in _refs(v))


def test_every_reference_names_a_definition() -> None:
    schema = definition_schema()
    assert {ref.removeprefix("#/$defs/") for ref in _refs(schema)} <= set(schema["$defs"])


def test_the_forms_are_told_apart_as_the_parser_does_and_only_suggested_by_any_of() -> None:
    """``if``/``then``/``else`` checks; the ``anyOf`` beside it (for editors that complete from
    ``anyOf`` only) holds an empty schema, so it can never refuse anything."""
    schema = definition_schema()
    for node in (schema, schema["$defs"]["Table"]):
        assert {"if", "then", "else"} <= node.keys()
        assert node["anyOf"][-1] == {}


def test_storage_classes_are_suggested_in_every_transition_and_refused_in_none() -> None:
    schema = definition_schema()
    classes = [field for path, field in _properties(schema) if path.endswith(".StorageClass")]
    assert len(classes) == 2
    assert all(field["examples"] == list(STORAGE_CLASSES) and "enum" not in field for field in classes)


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties":
                yield from ((f"{path}.{name}", field) for name, field in value.items())
            yield from _properties(value, f"{path}.{key}")


def test_every_key_and_table_is_described_for_editors() -> None:
    schema = definition_schema()
    undescribed = [path for path, field in _properties(schema) if not field.get("description")]
    assert undescribed == [], f"give these keys a description in lakecircle/core/schema_words.py: {undescribed}"
    assert all(body.get("title") for body in schema["$defs"].values())
    assert {path.rsplit(".", 1)[1] for path, _ in _properties(schema)} == set(DESCRIPTIONS)


@pytest.mark.parametrize(("where", "document"), example_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_example_meets_the_schema(where: str, document: dict[str, Any]) -> None:
    assert reading_errors(document) == []
    assert schema_errors(document) == [], where


CORPUS = corpus_documents()


def test_the_corpus_of_test_definitions_holds_right_and_wrong_files() -> None:
    accepted = [where for where, doc in CORPUS if not reading_errors(doc)]
    refused = [where for where, doc in CORPUS if reading_errors(doc) and schema_errors(doc)]
    assert len(accepted) >= 10
    assert len(refused) >= 10


@pytest.mark.parametrize(("where", "document"), CORPUS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_test_definition_the_schema_refuses_is_one_lakecircle_refuses(where: str, document: dict[str, Any]) -> None:
    """Each definition the tests write by hand: accepted by LakeCircle, it meets the schema."""
    refused = schema_errors(document)
    assert not refused or reading_errors(document), f"{where}: the schema alone refuses {shown(document)}: {refused}"


HEAD = 'BucketName = "b"\n[[LifecycleConfiguration.Rules]]\n'
NO_RULES = "LifecycleConfiguration = { Rules = [] }\n"
EXPIRE = "Expiration = { Days = 1 }\n"


def _rule(body: str) -> str:
    """A file of one bucket whose one rule is ``body``."""
    return HEAD + body


def _bucket(lines: str) -> str:
    """A file of bucket ``b`` with ``lines`` beside its (empty) rules."""
    return f'BucketName = "b"\n{lines}{NO_RULES}'


def _selector(lines: str) -> str:
    return lines + NO_RULES


WRONG = {
    "an unknown top-level key": _bucket("Extra = 1\n"),
    "an unknown rule key": _rule('ID = "r"\nStatus = "Enabled"\nExpiraton = { Days = 30 }\n'),
    "no Rules": 'BucketName = "b"\nLifecycleConfiguration = {}\n',
    "no LifecycleConfiguration": 'BucketName = "b"\n',
    "an empty file": "",
    "a Status that is neither Enabled nor Disabled": _rule('ID = "r"\nStatus = "enabled"\n' + EXPIRE),
    "a Status that is no string": _rule('ID = "r"\nStatus = true\n' + EXPIRE),
    "a rule without an ID": _rule('Status = "Enabled"\n' + EXPIRE),
    "an empty rule ID": _rule('ID = ""\nStatus = "Enabled"\n' + EXPIRE),
    "a rule ID over 255 characters": _rule(f'ID = "{"r" * 256}"\nStatus = "Enabled"\n' + EXPIRE),
    "Days as a string": _rule('ID = "r"\nStatus = "Enabled"\nExpiration = { Days = "30" }\n'),
    "Days as a fraction": _rule('ID = "r"\nStatus = "Enabled"\nExpiration = { Days = 1.5 }\n'),
    "Days beyond 64 bits": _rule('ID = "r"\nStatus = "Enabled"\nExpiration = { Days = 99999999999999999999 }\n'),
    "a Date that is no date": _rule('ID = "r"\nStatus = "Enabled"\nExpiration = { Date = "tomorrow" }\n'),
    "a Date that is a time of day": _rule('ID = "r"\nStatus = "Enabled"\nExpiration = { Date = 10:00:00 }\n'),
    "a tag without its Value": _rule('ID = "r"\nStatus = "Enabled"\nFilter = { Tag = { Key = "k" } }\n' + EXPIRE),
    "ExpiredObjectDeleteMarker as a string": _rule(
        'ID = "r"\nStatus = "Enabled"\nExpiration = { ExpiredObjectDeleteMarker = "yes" }\n'
    ),
    "a transition without a storage class": _rule('ID = "r"\nStatus = "Enabled"\nTransitions = [{ Days = 30 }]\n'),
    "a rule that is not a table": 'BucketName = "b"\nLifecycleConfiguration = { Rules = ["expire"] }\n',
    "an unknown TransitionDefaultMinimumObjectSize": _bucket('TransitionDefaultMinimumObjectSize = "128K"\n'),
    "an unknown Ownership": _bucket('Ownership = "mine"\n'),
    "an empty BucketName": 'BucketName = ""\n' + NO_RULES,
    "BucketName beside BucketMatch": _bucket('BucketMatch = ["*"]\n'),
    "BucketTags beside BucketName": _bucket('BucketTags = { a = "b" }\n'),
    "BucketExclude without BucketMatch": _selector('BucketExclude = ["x"]\n'),
    "an empty BucketMatch": _selector("BucketMatch = []\n"),
    "BucketMatch as a string": _selector('BucketMatch = "*"\n'),
    "a BucketTags value that is no string": _selector('BucketMatch = ["*"]\nBucketTags = { a = 1 }\n'),
    "an account ID written as a number": _bucket("Accounts = [111111111111]\n"),
    "an account ID of 11 digits": _bucket('Accounts = ["11111111111"]\n'),
    "an empty Accounts": _bucket("Accounts = []\n"),
    "an empty AccountTags": _bucket("AccountTags = {}\n"),
    "a key beside [[Bucket]]": 'Extra = 1\n[[Bucket]]\nBucketName = "b"\n' + NO_RULES,
    "Bucket that is not an array of tables": "Bucket = 5\n",
    "a [[Bucket]] table with a wrong key": '[[Bucket]]\nBucketName = "b"\nRules = []\n',
}
"""Documents the schema refuses, each for one reason; LakeCircle refuses every one."""


@pytest.mark.parametrize("text", WRONG.values(), ids=WRONG.keys())
def test_what_the_schema_refuses_lakecircle_refuses(text: str) -> None:
    document = tomllib.loads(text)
    assert schema_errors(document), "the schema accepts it"
    assert reading_errors(document), "LakeCircle accepts it"


def test_the_schema_points_at_the_key_at_fault() -> None:
    document = tomllib.loads(HEAD + 'ID = "r"\nStatus = "Enabled"\nExpiraton = { Days = 30 }\n')
    assert schema_errors(document) == [
        "LifecycleConfiguration.Rules.0: Additional properties are not allowed ('Expiraton' was unexpected)"
    ]


# -- never stricter than LakeCircle, on generated documents ---------------------------------

BASES = [doc for _, doc in example_documents()] + [doc for _, doc in CORPUS if not reading_errors(doc)]
"""Documents LakeCircle accepts, to break in one place."""

VALUES = st.sampled_from(
    [
        0, 1, -1, 2**63, 30.0, 1.5, True, "", "x", "Enabled", "shared", "varies_by_storage_class",
        "111111111111", "2030-01-01", "*", [], ["*"], [1], ["x", 2], {}, {"Days": 1}, {"Key": "k", "Value": "v"},
        {"Prefix": "p"}, dt.date(2030, 1, 1), dt.datetime(2030, 1, 1, 3, tzinfo=dt.UTC), dt.time(10),
    ]
) | st.text(max_size=4) | st.integers()  # fmt: skip
KEYS = st.sampled_from(sorted(DESCRIPTIONS)) | st.sampled_from(["Extra", "days", "id", "bucketname", ""])


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _places(value, (*path, key))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@st.composite
def broken_documents(draw: st.DrawFn) -> dict[str, Any]:
    """An accepted document changed in one place: a key or item dropped, a value replaced by
    one of another shape, or a key (known elsewhere, or unknown) added to a table."""
    document: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    path = draw(st.sampled_from(list(_places(document))))
    change = draw(st.sampled_from(("drop", "replace", "add")))
    node = _at(document, path)
    if change == "add" and isinstance(node, dict):
        node[draw(KEYS)] = draw(VALUES)
    elif change == "add" and isinstance(node, list):
        node.append(draw(VALUES))
    elif path and change == "drop":
        del _at(document, path[:-1])[path[-1]]
    elif path:
        _at(document, path[:-1])[path[-1]] = draw(VALUES)
    return document


def _never_stricter(document: dict[str, Any]) -> None:
    refused = schema_errors(document)
    note(f"document: {shown(document)}\nschema: {refused}")
    assert not refused or reading_errors(document), "the schema refuses what LakeCircle accepts"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine draws slowly
@given(broken_documents())
def test_a_document_the_schema_refuses_is_one_lakecircle_refuses(document: dict[str, Any]) -> None:
    _never_stricter(document)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine draws slowly
@given(definition_rules())
def test_every_generated_valid_definition_meets_the_schema(rules: list[dict[str, Any]]) -> None:
    document = {"BucketName": "generated", "LifecycleConfiguration": {"Rules": rules}}
    assert reading_errors(document) == []
    assert schema_errors(document) == []


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine draws slowly
@given(fleet_file())
def test_generated_fleet_files_meet_the_schema_when_lakecircle_accepts_them(data: bytes) -> None:
    try:
        document = tomllib.loads(data.decode())
    except tomllib.TOMLDecodeError:
        return
    _never_stricter(document)
