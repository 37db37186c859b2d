"""Definition documents for the schema's tests: read, shown to the JSON Schema, read by LakeCircle.

The schema's promise is that it is never stricter than LakeCircle: a document it refuses
is one ``lakecircle validate`` refuses too. These helpers put a decoded TOML document
before both judges, and gather the definition texts the tests already use as a corpus.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from lakecircle.core.definition_schema import definition_schema
from lakecircle.core.definitions import build_definitions
from lakecircle.core.parse import parse_document

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "definitions"


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(definition_schema())


def as_json(value: Any) -> Any:
    """A decoded TOML value as a JSON Schema validator sees it: dates and times as their
    ISO 8601 text, as Taplo gives them."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def schema_errors(document: dict[str, Any]) -> list[str]:
    """What the schema finds wrong with ``document`` (a decoded TOML file), as path: message."""
    found = validator().iter_errors(as_json(document))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def reading_errors(document: dict[str, Any]) -> list[str]:
    """What LakeCircle finds wrong with ``document`` when it reads and validates it as a
    file: its errors (warnings do not count), or the file being unreadable."""
    definitions = build_definitions([parse_document("doc.toml", document)])
    found = [f"{p.field}: {p.message}" for p in definitions.problems if p.is_error]
    return found or (["unreadable"] if definitions.partial else [])


def corpus_texts() -> Iterator[tuple[str, str]]:
    """Every text in the tests that holds a definition (it names LifecycleConfiguration), as
    (where, text): the files the tests write by hand, right and wrong. A text joined with
    ``+`` from literals and module-level constants (``HEAD + 'Extra = 1\\n'``) is joined here too."""
    seen: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: dict[str, str] = {}
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], _text(statement.value, names)
                if isinstance(target, ast.Name) and value is not None:
                    names[target.id] = value
        for node in ast.walk(tree):
            text = _text(node, names)
            if text is not None and "LifecycleConfiguration" in text and text not in seen:
                seen.add(text)
                yield f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}", text


def _text(node: ast.AST, names: dict[str, str]) -> str | None:
    """The text ``node`` spells when it is a literal, a known constant or a sum of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return node.value.decode(errors="replace") if isinstance(node.value, bytes) else node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, names), _text(node.right, names)
        return None if left is None or right is None else left + right
    return None


def corpus_documents() -> list[tuple[str, dict[str, Any]]]:
    """The corpus texts that are TOML, decoded (fragments and broken files are left out)."""
    documents = []
    for where, text in corpus_texts():
        try:
            documents.append((where, tomllib.loads(text)))
        except tomllib.TOMLDecodeError:
            continue
    return documents


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(str(p.relative_to(ROOT)), tomllib.loads(p.read_text())) for p in sorted(EXAMPLES.rglob("*.toml"))]


def shown(document: dict[str, Any]) -> str:
    return json.dumps(as_json(document), sort_keys=True)
