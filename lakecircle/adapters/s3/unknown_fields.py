"""The fields of a lifecycle configuration S3 returned that LakeCircle does not know.

S3 adds lifecycle fields over time (object-size filters, NewerNoncurrentVersions and the
minimum object size each came years after the first rules). A rule that holds a field
LakeCircle's model lacks cannot be planned: compared without the field it may look in sync
while it is not, and a write would drop the field from the bucket. Such a bucket is
reported as ``unsupported`` and never written (:class:`~lakecircle.errors.UnsupportedConfiguration`).

A new field can hide in two places, and each is looked for where it is visible:

- botocore reads an answer's XML into the operation's shape and leaves out every element
  the shape does not name: a field newer than the installed botocore vanishes without a
  trace. :func:`note_unknown_elements`, on ``before-parse``, walks the XML against the
  shape and hands the elements it does not know on in the parsed answer, under
  :data:`UNKNOWN_FIELDS` (botocore's ``customized_response_dict``, merged into the answer).
  The walk costs 35-230 µs an answer (1 to 10 rules); an answer in which every element
  sits under a parent the shape allows it under (``Days`` in ``Expiration``, never
  ``Days`` in ``Filter``) is passed without it, after one scan of its tags. A known name in
  a new place (``NewerNoncurrentVersions`` moved into ``Expiration``) therefore takes the
  walk, which names it.
- a field the installed botocore knows and the model does not arrives as a key of the
  parsed rule, which the model refuses (``extra="forbid"``): :func:`unknown_keys` tells
  such a refusal from a malformed answer.

Each field is named as ``rule "<ID>": <path>`` (``rule #<n>`` for a rule without an ID),
the path in S3's own spelling (``Filter.And.ObjectSizeEqualTo``).
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from lakecircle.core.model import Rule

UNKNOWN_FIELDS = "LakeCircleUnknownFields"
"""The key of a parsed GetBucketLifecycleConfiguration answer that lists the fields of its
XML botocore's model does not know; absent when there are none."""

_OPERATION = "GetBucketLifecycleConfiguration"


def note_unknown_elements(
    response_dict: Mapping[str, Any], customized_response_dict: dict[str, Any], operation_model: Any = None, **_: Any
) -> None:
    """On ``before-parse``: put the fields of a 200 answer that its shape does not name under
    :data:`UNKNOWN_FIELDS` of the parsed answer. An answer that is no XML is left to the parser."""
    if getattr(operation_model, "name", "") != _OPERATION or response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body")
    shape = getattr(operation_model, "output_shape", None)
    if not isinstance(body, bytes | bytearray) or not body or shape is None:
        return
    body = bytes(body)
    found = _remembered(body, shape) if len(body) <= _REMEMBERED_BYTES else _unknown_in(body, shape)
    if found:
        customized_response_dict[UNKNOWN_FIELDS] = list(found)


_REMEMBERED_BYTES = 16_384
"""The largest answer remembered: 1,024 of them are 16 MiB at most."""


def _unknown_in(body: bytes, shape: Any) -> tuple[str, ...]:
    """The fields of ``body`` that ``shape`` does not name."""
    if _in_known_places(body, _places(shape)):
        return ()  # every element where the shape allows it: the common case, no walk
    try:
        root = ET.fromstring(body)  # noqa: S314 -- the bytes botocore parses with the same parser next
    except (ET.ParseError, ValueError):
        return ()
    return tuple(_unknown(root, shape, (), None))


_remembered = functools.lru_cache(maxsize=1024)(_unknown_in)
""":func:`_unknown_in` for the last 1,024 answers: buckets that share a policy answer with the
same bytes, so a fleet's reads cost a lookup each (about 1 µs against 10-90 µs)."""


_TAG = re.compile(rb"<(/?)([A-Za-z_][\w.:-]*)[^>]*?(/?)>")
"""An element's tag: (``/`` when it closes, its name, ``/`` when it closes itself). A
namespace prefix, which S3 never puts on these, makes a name no place knows, and so the walk."""

_ROOT = b"LifecycleConfiguration"


def _in_known_places(body: bytes | bytearray, places: frozenset[tuple[bytes, bytes]]) -> bool:
    """Whether each element of ``body`` sits under a parent ``places`` allows it under; False
    too for tags that do not nest (the walk, or botocore's parser, then says what is wrong)."""
    open_names: list[bytes] = []
    for closing, name, closes_itself in _TAG.findall(body):
        if closing:
            if not open_names or open_names.pop() != name:
                return False
            continue
        if (open_names[-1] if open_names else b"", name) not in places:
            return False
        if not closes_itself:
            open_names.append(name)
    return not open_names


@functools.lru_cache(maxsize=64)
def _places(shape: Any) -> frozenset[tuple[bytes, bytes]]:
    """Every (parent element, element) pair the answer's structure ``shape`` allows, from its
    root (``LifecycleConfiguration``, under nothing) down."""
    found = {(b"", _ROOT)}
    pending = [(_ROOT, shape)]
    seen: set[tuple[bytes, int]] = set()
    while pending:
        parent, current = pending.pop()
        if (parent, id(current)) in seen:
            continue
        seen.add((parent, id(current)))
        for xml_name, (_, member) in _members(current).items():
            name = xml_name.encode()
            found.add((parent, name))
            inner = member
            if member.type_name == "list":
                inner = member.member
                if not member.serialization.get("flattened"):  # <Name><Item>...</Item></Name>
                    item = inner.serialization.get("name", "member").encode()
                    found.add((name, item))
                    name = item
            if inner.type_name == "structure":
                pending.append((name, inner))
    return frozenset(found)


@functools.lru_cache(maxsize=64)
def _members(shape: Any) -> Mapping[str, tuple[str, Any]]:
    """A structure's members by the name of their XML element: (member name, member shape)."""
    return {m.serialization.get("name", name): (name, m) for name, m in shape.members.items()}


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _unknown(element: ET.Element, shape: Any, path: tuple[str, ...], rule: str | None) -> Iterator[str]:
    """The fields under ``element`` (of structure ``shape``) that the shape does not name."""
    members = _members(shape)
    rules = 0
    for child in element:
        tag = _local(child.tag)
        known = members.get(tag)
        if known is None:
            yield _field(rule, (*path, tag))
            continue
        name, member = known
        if path == () and name == "Rules":  # a rule: named by its ID, else by its place
            rules += 1
            rule_id = next((c.text for c in child if _local(c.tag) == "ID"), None)
            yield from _structure(child, member.member, (), _rule_name(rule_id, rules - 1))
        elif member.type_name == "list":
            items = [child] if member.serialization.get("flattened") else list(child)
            for item in items:
                yield from _structure(item, member.member, (*path, name), rule)
        else:
            yield from _structure(child, member, (*path, name), rule)


def _structure(element: ET.Element, shape: Any, path: tuple[str, ...], rule: str | None) -> Iterator[str]:
    if shape.type_name == "structure":
        yield from _unknown(element, shape, path, rule)


def _rule_name(rule_id: object, index: int) -> str:
    return f'rule "{rule_id}"' if isinstance(rule_id, str) and rule_id else f"rule #{index + 1}"


def _field(rule: str | None, path: tuple[str, ...]) -> str:
    dotted = ".".join(path)
    return f"{rule}: {dotted}" if rule is not None else dotted


def unknown_keys(response: Mapping[str, Any], exc: ValidationError) -> list[str] | None:
    """The fields the model refused as unknown, when that is all it refused; else None (the
    answer is malformed: a value of the wrong type, a missing field)."""
    if not exc.errors() or any(e["type"] != "extra_forbidden" for e in exc.errors()):
        return None
    found: list[str] = []
    rules = response.get("Rules")
    for index, raw in enumerate(rules if isinstance(rules, list) else ()):
        try:
            Rule.model_validate(raw)
        except ValidationError as rule_exc:
            if any(e["type"] != "extra_forbidden" for e in rule_exc.errors()):
                return None
            rule = _rule_name(raw.get("ID") if isinstance(raw, Mapping) else None, index)
            found.extend(
                _field(rule, tuple(str(p) for p in e["loc"] if not isinstance(p, int))) for e in rule_exc.errors()
            )
    return found or None
