"""The JSON Schema of a definition file, made from the models and constants the parser reads it with.

Editors that read JSON Schemas for TOML (Taplo and the editor extensions built on it) give
completion and inline errors from it, and users' CI can check files with it. It is built
here, not written by hand, so that it cannot drift from what :mod:`lakecircle.core.parse`
accepts: the rule is :class:`~lakecircle.core.model.Rule`'s own schema, the tables beside
the rules are the parser's header models, and what the parser checks beyond the models
(a table names one bucket or selects several, an exact definition holds no selector key,
the settings' values, ``Accounts`` and ``AccountTags``, a rule's ID and Status) is added
from the same constants the parser and the validator use.

The schema is never stricter than LakeCircle: a document it refuses is one ``lakecircle
validate`` refuses too (tests hold it to that). It is looser where a check needs more
than a shape (S3's limits on days and sizes, which actions go together, bucket names), so
those problems still come from ``validate``, which says every one. TOML has no null: the
models' optional fields are written as plain types. TOML dates reach a schema validator as
text (Taplo gives them as their ISO 8601 spelling), so a ``Date`` is a string here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from pydantic.json_schema import models_json_schema

from lakecircle.core.accounts import _ACCOUNT_ID, MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS
from lakecircle.core.model import OWNERSHIP_VALUES, RULE_STATUSES, TDMOS_VALUES, Rule
from lakecircle.core.parse import _SELECTOR_KEYS, _BucketDoc, _LifecycleDoc, _SelectorDoc
from lakecircle.core.schema_words import DEFINITION_TITLE, DESCRIPTIONS, FILE_DESCRIPTION, MODEL_TITLES
from lakecircle.core.validate.actions import STORAGE_CLASSES
from lakecircle.core.validate.findings import MAX_ID_LENGTH

SCHEMA_ID: Final = "urn:lakecircle:definition:1"
"""The schema's ``$id``: a name, not a place (editors are pointed at the file itself)."""

SCHEMA_PATH: Final = "schema/lakecircle-definition.schema.json"
"""Where the repository keeps it, from its root."""

REGENERATE: Final = f"lakecircle schema > {SCHEMA_PATH}"
"""The command that writes the committed file again."""

_DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"

_DEF_NAMES: Final = {
    Rule.__name__: "Rule",
    _LifecycleDoc.__name__: "LifecycleConfiguration",
    _BucketDoc.__name__: "Bucket",
    _SelectorDoc.__name__: "Selector",
}
"""The parser's private model names, as the schema's definitions are named."""

_DATE: Final = {"type": "string", "pattern": r"^\s*[0-9]{4}"}
"""A TOML date or date-time (given to a validator as its text) or an ISO 8601 string: the
parser reads whatever ``fromisoformat`` reads, which always begins with the year."""


def definition_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one definition file."""
    _, top = models_json_schema(
        [(model, "validation") for model in (Rule, _BucketDoc, _SelectorDoc)],
        ref_template="#/$defs/{model}",
    )
    defs = {_DEF_NAMES.get(name, name): _renamed(body) for name, body in top["$defs"].items()}
    defs = {name: _for_toml(body) for name, body in defs.items()}
    defs["LifecycleConfiguration"]["properties"]["Rules"]["items"] = {"$ref": "#/$defs/Rule"}
    _rule_checks(defs["Rule"])
    _bucket_checks(defs["Bucket"])
    _selector_checks(defs["Selector"])
    # AWS's classes as suggestions, not an enum: a server may accept others (LCC_STORAGE_CLASSES).
    _walk(defs, "StorageClass", lambda field: field.update(examples=list(STORAGE_CLASSES)))
    defs["Buckets"] = _bucket_tables()
    defs["Table"] = _table()
    for name, body in defs.items():
        body["title"] = MODEL_TITLES.get(name, name)
    _describe(defs)
    return {
        "$schema": _DRAFT,
        "$id": SCHEMA_ID,
        "title": DEFINITION_TITLE,
        "description": FILE_DESCRIPTION,
        "if": {"required": ["Bucket"]},
        "then": {"$ref": "#/$defs/Buckets"},
        "else": {"$ref": "#/$defs/Table"},
        **_suggesting("Bucket", "Selector", "Buckets"),
        "$defs": dict(sorted(defs.items())),
    }


def _suggesting(*names: str) -> dict[str, Any]:
    """An ``anyOf`` of the forms a table may take and an empty schema: it constrains nothing
    (the empty schema accepts every value), and is there for editors that complete keys from
    ``anyOf`` but do not follow ``if``/``then``/``else`` (Taplo's completion among them)."""
    return {
        "$comment": "Completion only: the empty branch accepts everything; if/then/else does the checking.",
        "anyOf": [*({"$ref": f"#/$defs/{name}"} for name in names), {}],
    }


def schema_text() -> str:
    """The schema as the committed file holds it: sorted keys, two-space indents, a final newline."""
    return json.dumps(definition_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _renamed(node: Any) -> Any:
    """``node`` with its references to the parser's private model names renamed."""
    if isinstance(node, dict):
        return {key: _ref_renamed(value) if key == "$ref" else _renamed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_renamed(item) for item in node]
    return node


def _ref_renamed(ref: str) -> str:
    name = ref.removeprefix("#/$defs/")
    return f"#/$defs/{_DEF_NAMES.get(name, name)}"


def _for_toml(node: Any) -> Any:
    """``node`` as TOML can write it: no null branch, no null default, and no generated
    per-field title (the descriptions say more)."""
    if isinstance(node, list):
        return [_for_toml(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _for_toml(value) for key, value in node.items() if key != "title" or "properties" in node}
    if out.get("default", ...) is None:
        del out["default"]
    branches = [b for b in out.get("anyOf", ()) if b != {"type": "null"}]
    if "anyOf" in out and len(branches) == 1:
        del out["anyOf"]
        out.update(branches[0])
    elif "anyOf" in out:
        out["anyOf"] = branches
    if out.get("format") == "date-time":
        del out["format"]
        out.update(_DATE)
    return out


def _rule_checks(rule: dict[str, Any]) -> None:
    """What the validator asks of every rule's shape: an ID of 1 to 255 characters and a Status."""
    props = rule["properties"]
    props["ID"].update(minLength=1, maxLength=MAX_ID_LENGTH)
    props["Status"]["enum"] = list(RULE_STATUSES)
    rule["required"] = ["ID", *rule.get("required", ())]


def _walk(node: Any, key: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to every property named ``key`` under ``node``."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "properties" and isinstance(value, dict) and key in value:
                change(value[key])
            _walk(value, key, change)
    elif isinstance(node, list):
        for item in node:
            _walk(item, key, change)


def _settings(table: dict[str, Any]) -> None:
    """The keys an exact definition and a selector share, as the parser checks them."""
    props = table["properties"]
    props["TransitionDefaultMinimumObjectSize"]["enum"] = list(TDMOS_VALUES)
    props["Ownership"]["enum"] = list(OWNERSHIP_VALUES)
    props["Accounts"] = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "pattern": f"^{_ACCOUNT_ID.pattern}$"},
    }
    props["AccountTags"] = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_TAGS,
        "propertyNames": {"minLength": 1, "maxLength": MAX_TAG_KEY},
        "additionalProperties": {"type": "string", "maxLength": MAX_TAG_VALUE},
    }


def _bucket_checks(bucket: dict[str, Any]) -> None:
    """An exact definition: its selector keys are refused by the parser in words of its own."""
    _settings(bucket)
    for key in _SELECTOR_KEYS:
        del bucket["properties"][key]


def _selector_checks(selector: dict[str, Any]) -> None:
    """A selector: BucketMatch is what makes a table one (required, at least one pattern)."""
    _settings(selector)
    selector["properties"]["BucketMatch"]["minItems"] = 1
    selector["required"] = ["BucketMatch", *selector["required"]]
    for key in ("BucketExclude", "BucketTags"):
        selector["properties"][key].pop("default", None)


def _table() -> dict[str, Any]:
    """One table, read as the parser reads it: a selector when it has a selector key and no
    BucketName, else an exact definition (so a mistake is reported against the form meant,
    not as "matches neither", which is all an ``anyOf`` of the forms could say)."""
    return {
        "type": "object",
        "if": {
            "not": {"required": ["BucketName"]},
            "anyOf": [{"required": [key]} for key in _SELECTOR_KEYS],
        },
        "then": {"$ref": "#/$defs/Selector"},
        "else": {"$ref": "#/$defs/Bucket"},
        **_suggesting("Bucket", "Selector"),
    }


def _bucket_tables() -> dict[str, Any]:
    """Several buckets or selectors in one file, as ``[[Bucket]]`` tables and nothing beside them."""
    return {
        "type": "object",
        "properties": {"Bucket": {"type": "array", "items": {"$ref": "#/$defs/Table"}}},
        "required": ["Bucket"],
        "additionalProperties": False,
    }


def _describe(defs: dict[str, Any]) -> None:
    """Every property gets its description; a key without one is a test failure, not a silent gap."""
    for body in defs.values():
        for key, field in body.get("properties", {}).items():
            if key in DESCRIPTIONS:
                field["description"] = DESCRIPTIONS[key]
