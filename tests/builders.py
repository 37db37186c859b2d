"""The builders every kind of test needs: a lifecycle rule, a definition file, and an
observer that records an S3 adapter's requests by their metric labels.

A test says only what matters to it: ``rule("old", 5)`` is an enabled rule ``old`` that
expires every object after 5 days; ``definition("bkt", rule("a"), rule("b"))`` is the TOML
a user would write for bucket ``bkt`` with those two rules. Anything else is given in the
spelling of the S3 API and the definition files (``Status="Disabled"``, ``Filter={...}``,
``Ownership="shared"``), so a test reads like the document it stands for.

The file is written the way the README shows definitions: one
``[[LifecycleConfiguration.Rules]]`` table per rule, its parts as inline tables. The
tests of the parser itself write their TOML by hand, since a builder cannot spell a
mistake (ARCHITECTURE.md, Testing).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from lakecircle import errors
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.selectors import Ownership, Selector
from lakecircle.service.metrics import outcome_of, reason_of


def rule(rule_id: str | None = "r", days: int = 30, prefix: str | None = "", **wire: Any) -> Rule:
    """An enabled rule that expires the objects under ``prefix`` after ``days`` days.

    ``rule_id=None``: a rule without an ID. ``prefix=None``: an empty ``Filter {}``
    (every object, S3's newer spelling). ``wire`` keys, in the S3 API's spelling, replace
    or add parts: ``Expiration=None`` leaves the expiration out, ``Filter={...}`` replaces
    the filter, ``Status="Disabled"`` disables the rule.
    """
    body: dict[str, Any] = {
        "ID": rule_id,
        "Status": "Enabled",
        "Filter": {} if prefix is None else {"Prefix": prefix},
        "Expiration": {"Days": days},
    }
    return Rule.model_validate(body | wire)


def definition(bucket: str, *rules: Rule, **keys: Any) -> bytes:
    """A definition file giving ``bucket`` exactly ``rules`` (none: ``Rules = []``, delete its configuration).

    ``keys`` are top-level keys of the file, in its spelling: ``Ownership="shared"``,
    ``TransitionDefaultMinimumObjectSize="varies_by_storage_class"``, or a key LakeCircle
    does not know. A key given None is left out; ``LifecycleConfiguration=None`` writes a
    file that has no rules key at all.
    """
    head = {"BucketName": bucket} | keys
    text = "".join(f"{key} = {_inline(value)}\n" for key, value in head.items() if value is not None)
    if "LifecycleConfiguration" in keys:
        return text.encode()
    if not rules:
        return (text + "[LifecycleConfiguration]\nRules = []\n").encode()
    for one in rules:
        text += "[[LifecycleConfiguration.Rules]]\n"
        text += "".join(f"{key} = {_inline(value)}\n" for key, value in one.to_wire().items())
    return text.encode()


def fleet(match: list[str], *rules: Rule, **keys: Any) -> bytes:
    """A selector definition file: ``BucketMatch = match`` giving ``rules`` to every bucket it
    selects; ``keys`` as in :func:`definition` (``BucketTags={"class": "x"}``, ``Ownership=...``)."""
    return definition("", *rules, BucketName=None, BucketMatch=match, **keys)


def _inline(value: Any) -> str:
    """``value`` as a TOML value on one line: tables and arrays inline, strings escaped."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    return str(value)


def selector(
    *match: str,
    exclude: tuple[str, ...] = (),
    tags: dict[str, str] | None = None,
    rules: tuple[Rule, ...] = (),
    ownership: Ownership = Ownership.SHARED,
    tdmos: str | None = None,
    file: str = "fleet.toml",
    where: str = "",
) -> Selector:
    """A selector as the parser gives it: ``selector("*-logs", exclude=("legal-*",))`` selects
    every ``-logs`` bucket but the legal ones, with ``rules`` (none by default)."""
    return Selector(
        file=file,
        where=where,
        match=match,
        exclude=exclude,
        tags=tuple(sorted((tags or {}).items())),
        ownership=ownership,
        config=LifecycleConfig(rules, tdmos),
    )


def exact_definition(
    *rules: Rule, bucket: str = "web-logs", tdmos: str | None = None, ownership: str | None = None
) -> BucketDefinition:
    """A parsed ``BucketName`` definition of ``bucket`` with ``rules``, all from ``<bucket>.toml``."""
    file = f"{bucket}.toml"
    return BucketDefinition(bucket, LifecycleConfig(rules, tdmos), (file,), (file,) * len(rules), ownership)


class RecordingObserver:
    """An S3 adapter's request observer that keeps each attempt and retry as the metrics
    would label it: ``(operation, outcome, seconds)`` and ``(operation, reason, delay)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, float]] = []
        self.retries: list[tuple[str, str, float]] = []

    def observe_request(self, operation: str, error: Exception | None, seconds: float) -> None:
        self.requests.append((operation, outcome_of(error), seconds))

    def observe_retry(self, operation: str, error: errors.TransientError, delay: float) -> None:
        self.retries.append((operation, reason_of(error), delay))
