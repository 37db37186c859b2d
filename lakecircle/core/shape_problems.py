"""Turn pydantic's validation errors into problems a person writing TOML can act on.

pydantic speaks Python (``dict_type``, a repr of the input, a location tuple); a
definition's author wrote TOML. Each error becomes a
:class:`~lakecircle.core.problems.Problem` with the key path as written
(``Transitions[0].Days``), the TOML type expected and a short TOML spelling of what was
given, never a Python repr (ARCHITECTURE.md, "Code map", core).
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lakecircle.core.problems import Problem, shown, shown_number, suggest

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def shape_problems(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    file: str,
    bucket: str | None,
    rule: str | None,
    prefix: str,
) -> list[Problem]:
    """Each of pydantic's errors about a table checked against ``model`` as a problem;
    ``prefix`` goes before each key path (``Bucket[1].``)."""
    return [
        Problem(file, _message(error, model), bucket=bucket, rule=rule, field=prefix + _path(error["loc"]) or None)
        for error in exc.errors(include_url=False)
    ]


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = error["loc"]
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _keys_at(model, loc[:-1])
        key = str(loc[-1])
        message = f"unknown key {shown(key)}{suggest(key, allowed)}; allowed here: {', '.join(sorted(allowed))}"
        if key == "TransitionDefaultMinimumObjectSize":
            message += "; TransitionDefaultMinimumObjectSize belongs beside BucketName, not inside a table"
        return message
    if kind == "missing":
        message = f"missing required key {str(loc[-1])!r}"
        if loc[-1] == "Rules":
            message += " (write Rules = [] to delete the bucket's lifecycle configuration)"
        elif tuple(loc) == ("BucketName",):
            message += '; or name buckets by pattern with BucketMatch (as in BucketMatch = ["*-logs"])'
        return message
    if kind == "value_error":  # a check of the model's own, which words its message
        return str(error.get("ctx", {}).get("error", "is not a valid value"))
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {error.get('ctx', {}).get(key)}, got {_describe(error.get('input'))}"
    expected = _EXPECTED.get(kind)
    said = f"must be {expected}" if expected else "is not a valid value here"
    return f"{said}, got {_describe(error.get('input'))}"


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
            else [f"{toml_key(k)} = {_spelled(v, depth - 1)}" for k, v in list(value.items())[:3]]
        )
        if len(value) > 3:
            items.append("...")
        return f"[{', '.join(items)}]" if isinstance(value, list) else f"{{ {', '.join(items)} }}"
    return type(value).__name__  # not a TOML value: a type is all there is to say


def toml_key(key: object) -> str:
    """A key as TOML writes it in a path: bare when it can be, else quoted."""
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
