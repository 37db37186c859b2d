"""Warnings about fleet definitions that do nothing: a selector that selects no bucket of the
account, and an exact definition every one of whose rules the selectors already give.

Neither is an error: the definitions are valid and mean what they say. Both are almost
always a mistake nobody sees, since nothing in a plan shows what a definition does not do.
A selector whose patterns match no bucket (``*-logz``) gives its rules to nobody; an exact
``BucketName`` definition left behind after a baseline took its rules over (every rule it
defines overrides a selector's rule with the same content) changes nothing but, perhaps,
the bucket's ownership.

The first needs the account's bucket listing, so the cycle finds it (``plan``, ``sync``, the
daemon; :class:`~lakecircle.engine.fleet.CycleMatcher` counts while it matches) and reports
it as a :class:`SelectorWarning`. The second needs only the definitions, so ``validate``
finds it (:func:`shadowed_definitions`). Pure: values in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakecircle.core.definitions import Definitions, bucket_models
from lakecircle.core.model import BucketDefinition
from lakecircle.core.normalize import canonical_key
from lakecircle.core.problems import Problem, Severity, printable, shown
from lakecircle.core.selectors import Match, Matcher, Ownership, Selector
from lakecircle.core.shape_problems import toml_key


class WarningKind(StrEnum):
    """What a cycle warns about (the ``kind`` of a report's warning, and its log event)."""

    SELECTOR_MATCHES_NO_BUCKET = "selector_matches_no_bucket"


@dataclass(frozen=True, slots=True)
class SelectorWarning:
    """A valid selector that selected no bucket of the account in a cycle that saw it whole."""

    file: str
    selector: str
    """Its label, as plans name it (``fleet.toml`` or ``fleet.toml Bucket[1]``)."""
    patterns: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    kind: WarningKind = WarningKind.SELECTOR_MATCHES_NO_BUCKET

    @classmethod
    def unmatched(cls, selector: Selector) -> SelectorWarning:
        return cls(selector.file, selector.label, selector.match, selector.exclude, selector.tags)

    @property
    def message(self) -> str:
        """``fleet.toml Bucket[1]: no bucket in the account matches BucketMatch ["*-logz"]; ...``"""
        what = f"matches BucketMatch {_list(self.patterns)}"
        if self.exclude:
            what += f" outside BucketExclude {_list(self.exclude)}"
        check = "the patterns"
        if self.tags:
            tags = ", ".join(f"{toml_key(k)} = {json.dumps(v, ensure_ascii=False)}" for k, v in self.tags)
            what = f"both {what} and carries BucketTags {{ {tags} }}"
            check = "the patterns and the tags"
        return printable(f"{self.selector}: no bucket in the account {what}; check {check} or remove the selector")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "file": self.file,
            "selector": self.selector,
            "patterns": list(self.patterns),
            "exclude": list(self.exclude),
            "tags": dict(self.tags),
            "message": self.message,
        }


def _list(patterns: Iterable[str]) -> str:
    return json.dumps(list(patterns), ensure_ascii=False)


def shadowed_definitions(definitions: Definitions) -> list[Problem]:
    """A warning for each valid exact definition that the selectors shadow entirely (:func:`shadowed`).

    Only buckets some selector's patterns match without tags are looked at; their models
    are built again file by file (:func:`~lakecircle.core.definitions.bucket_models`), so a
    file of many buckets is parsed once, not once per bucket."""
    matcher = Matcher(definitions.selectors)
    if not matcher.selectors:
        return []
    candidates: dict[str, tuple[Match, ...]] = {}
    for name in definitions.buckets:
        matches = matcher.match(name)
        if any(not m.selector.tags for m in matches):
            candidates[name] = matches
    found = (shadowed(bucket, candidates[bucket.name]) for bucket in bucket_models(definitions.buckets, candidates))
    return [problem for problem in found if problem is not None]


def shadowed(bucket: BucketDefinition, matches: Sequence[Match]) -> Problem | None:
    """A warning when the exact definition ``bucket`` changes none of the rules the selectors
    in ``matches`` (those whose patterns match its name) give it, else None.

    That is: it has rules, and every one of them has an ID that a selector without
    ``BucketTags`` gives with the same content in canonical form, and no other matching
    selector gives with other content (which would make the exact rule a real override:
    a tag selector's rule may be, when its tags match, so it counts against); and its
    TransitionDefaultMinimumObjectSize, if it sets one, is the one the selectors set. A
    definition only some of whose rules are such is not warned about, nor are those rules:
    the definition does something, and a repeated rule in it is harmless.
    """
    rules = bucket.config.rules
    untagged = [m for m in matches if not m.selector.tags]
    if not rules or not untagged:
        return None
    givers: list[tuple[str, Match]] = []
    for rule in rules:
        if rule.id is None:
            return None  # a rule without an ID overrides nothing
        key = canonical_key(rule)
        given = [m for m in untagged if _gives(m.selector, rule.id, key)]
        if not given or _differs(matches, rule.id, key):
            return None
        givers.append((rule.id, given[0]))
    tdmos = bucket.config.transition_default_minimum_object_size
    theirs = {m.selector.config.transition_default_minimum_object_size for m in matches} - {None}
    if tdmos is not None and (theirs != {tdmos} or not _sets_tdmos(untagged)):
        return None
    return Problem(
        bucket.files[0], _shadow_message(bucket, givers, matches), bucket=bucket.name, severity=Severity.WARNING
    )


def _gives(selector: Selector, rule_id: str, key: tuple[object, ...]) -> bool:
    return any(r.id == rule_id and canonical_key(r) == key for r in selector.config.rules)


def _differs(matches: Sequence[Match], rule_id: str, key: tuple[object, ...]) -> bool:
    """Some matching selector, with tags or without, gives the ID other content: the exact rule overrides it."""
    return any(r.id == rule_id and canonical_key(r) != key for m in matches for r in m.selector.config.rules)


def _sets_tdmos(matches: Sequence[Match]) -> bool:
    return any(m.selector.config.transition_default_minimum_object_size is not None for m in matches)


def _shadow_message(bucket: BucketDefinition, givers: list[tuple[str, Match]], matches: Sequence[Match]) -> str:
    where = "" if len(bucket.files) == 1 else f" (in {', '.join(bucket.files)})"
    each = ", ".join(f"{shown(rule_id)} by {m.selector.label} (pattern {shown(m.pattern)})" for rule_id, m in givers)
    message = (
        f"every rule of this BucketName definition{where} is given to the bucket with the same content by a"
        f" selector matching its name: {each}; the definition changes none of their rules, so it is redundant:"
        " remove the definition, or change the rules it means to override"
    )
    authoritative = [m for m in matches if m.selector.ownership is Ownership.AUTHORITATIVE]
    if not bucket.shared and all(m.selector.tags for m in authoritative):
        unless = ' unless a tag selector with Ownership = "authoritative" selects it' if authoritative else ""
        message += (
            f". Removing it also makes the bucket shared{unless} (rules other writers put in it are then kept):"
            " a BucketName definition makes its bucket authoritative by default, and the selectors matching"
            f" its name{' without BucketTags' if authoritative else ''} do not"
        )
    return message
