"""Why a bucket gets the rules it gets: what ``lakecircle explain BUCKET`` shows, as a value.

With selectors, a bucket's desired rules come from several files, some chosen by a
pattern and some by tags, with overrides between them; "where does this rule come
from?" and "why is this bucket authoritative?" then deserve one answer in one place.
:func:`explain` builds it from the definitions, the selectors whose names match the
bucket and its tags (None when they were not or could not be read); the text and JSON
forms are below. The live configuration is not part of it: that is ``plan``'s.

With many accounts (``LCC_ACCOUNTS``) the explanation is of the bucket in the account that
holds it: a definition whose ``Accounts`` or ``AccountTags`` do not admit that account does
not apply there, and is shown apart with its scope (:class:`OutOfScope`).

Pure: the command reads the definitions and the tags; this only puts them together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakecircle.core.accounts import Account, AccountScope
from lakecircle.core.combine import Combined, combine
from lakecircle.core.definitions import Definitions
from lakecircle.core.model import BucketDefinition
from lakecircle.core.problems import Problem, has_errors, printable
from lakecircle.core.render import config_json, config_toml, override_json, source_json, source_text
from lakecircle.core.selectors import Match, Ownership, Source, tags_match, with_tags


class Fate(StrEnum):
    """What became of a rule a selecting definition gives the bucket."""

    APPLIED = "applied"
    OVERRIDDEN = "overridden"
    """The bucket's own ``BucketName`` definition has a rule with its ID."""
    SAME = "same"
    """Another definition gives the same rule (same ID, same content): one rule."""
    CONFLICT = "conflict"
    """Another selector gives the ID different content: the bucket is invalid."""


class Unselected(StrEnum):
    """Why a selector whose ``BucketMatch`` matches the name does not select the bucket."""

    NEEDS_TAGS = "needs the bucket's tags"
    TAGS_DIFFER = "the bucket's tags do not match"


@dataclass(frozen=True, slots=True)
class Contribution:
    rule: str | None
    fate: Fate
    by: Source | None = None
    """The definition whose rule is applied instead (overridden, same)."""


@dataclass(frozen=True, slots=True)
class Selecting:
    """A definition that selects the bucket, why, and the rules it gives it."""

    source: Source
    """The file (exact definitions) or the selector and the pattern that matched."""
    tags: tuple[tuple[str, str], ...]
    """The ``BucketTags`` it asks for, which the bucket carries."""
    rules: tuple[Contribution, ...]


@dataclass(frozen=True, slots=True)
class Passed:
    """A selector whose pattern matches the name but that does not (or may not) select the bucket."""

    source: Source
    tags: tuple[tuple[str, str], ...]
    why: Unselected


@dataclass(frozen=True, slots=True)
class OutOfScope:
    """A definition that names the bucket, or a selector whose pattern matches it, that does
    not apply in the bucket's account: its ``Accounts`` or ``AccountTags`` leave the account out."""

    source: Source
    scope: AccountScope


@dataclass(frozen=True, slots=True)
class Explanation:
    bucket: str
    selecting: tuple[Selecting, ...]
    """The exact definition first, then the selectors, in definition order."""
    passed: tuple[Passed, ...]
    tags: Mapping[str, str] | None
    """The bucket's tags; None when not read."""
    tags_note: str | None
    """Why the tags were not read, when a selector needed them."""
    combined: Combined | None
    """The combination; None when nothing selects the bucket or its own definition is invalid."""
    ownership: Ownership | None
    ownership_why: str
    tdmos_source: Source | None
    problems: tuple[Problem, ...]
    """What makes the bucket invalid: its own definition's errors, or the combination's."""
    invalid_selectors: tuple[str, ...]
    """Selectors left out for their errors (which buckets they meant is unknown)."""
    account: str | None = None
    """The account that holds the bucket, with many accounts (None: one account)."""
    out_of_scope: tuple[OutOfScope, ...] = ()
    """The definitions that would select the bucket but do not apply in ``account``."""

    @property
    def managed(self) -> bool:
        return bool(self.selecting) or bool(self.problems)

    @property
    def valid(self) -> bool:
        return not has_errors(self.problems)


def explain(
    bucket: str,
    definitions: Definitions,
    matches: Sequence[Match],
    tags: Mapping[str, str] | None,
    tags_note: str | None = None,
    *,
    account: Account | None = None,
) -> Explanation:
    """The explanation of ``bucket`` from the definitions, the selectors whose ``BucketMatch``
    matches its name (:meth:`~lakecircle.core.selectors.Matcher.match`) and its tags; in
    ``account`` when given (many accounts), where only the definitions its scope admits apply."""
    exact = definitions.buckets.get(bucket)
    outside: list[OutOfScope] = []
    if account is not None:
        if exact is not None and not exact.scope.admits(account):
            outside.append(OutOfScope(Source(", ".join(exact.files)), exact.scope))
            exact = None
        outside.extend(OutOfScope(m.source, m.selector.scope) for m in matches if not m.selector.scope.admits(account))
        matches = [m for m in matches if m.selector.scope.admits(account)]
    own_problems = definitions.invalid.get(bucket, ())
    selected = with_tags(matches, tags)
    passed = tuple(
        Passed(m.source, m.selector.tags, Unselected.NEEDS_TAGS if tags is None else Unselected.TAGS_DIFFER)
        for m in matches
        if m.selector.tags and (tags is None or not tags_match(m.selector, tags))
    )
    combined = None if own_problems else combine(bucket, exact, selected)
    selecting: list[Selecting] = []
    if exact is not None:
        source = Source(", ".join(exact.files))
        selecting.append(Selecting(source, (), tuple(Contribution(r.id, Fate.APPLIED) for r in exact.config.rules)))
    selecting.extend(
        Selecting(m.source, m.selector.tags, () if combined is None else _contributions(m, combined)) for m in selected
    )
    ownership, why = _ownership(exact, selected) if combined is not None else (None, "")
    return Explanation(
        bucket,
        tuple(selecting),
        passed,
        tags,
        tags_note if passed and tags is None else None,
        combined,
        ownership,
        why,
        _tdmos_source(exact, selected) if combined is not None else None,
        tuple(own_problems) + (combined.problems if combined is not None else ()),
        tuple(definitions.invalid_selectors),
        account.id if account is not None else None,
        tuple(outside),
    )


def _contributions(match: Match, combined: Combined) -> tuple[Contribution, ...]:
    kept = list(zip(combined.config.rules, combined.sources, strict=True))
    conflicting = {p.rule for p in combined.problems if p.is_error and p.rule is not None}
    found = []
    for rule in match.selector.config.rules:
        override = next((o for o in combined.overrides if o.rule == rule.id and o.overridden == match.source), None)
        if override is not None:
            found.append(Contribution(rule.id, Fate.OVERRIDDEN, override.by))
        elif any(s == match.source and r.id == rule.id for r, s in kept):
            found.append(Contribution(rule.id, Fate.APPLIED))
        elif rule.id in conflicting:
            found.append(Contribution(rule.id, Fate.CONFLICT))
        else:
            twin = next((s for r, s in kept if r.id == rule.id), None)
            found.append(Contribution(rule.id, Fate.SAME, twin))
    return tuple(found)


def _ownership(exact: BucketDefinition | None, selected: Sequence[Match]) -> tuple[Ownership, str]:
    """Rule 3 of :mod:`lakecircle.core.combine`, with the reason in words."""
    if exact is not None and not exact.shared:
        default = " (the default for a BucketName definition)" if exact.ownership is None else ""
        return (
            Ownership.AUTHORITATIVE,
            f"its BucketName definition in {', '.join(exact.files)} is authoritative{default}",
        )
    bold = next((m for m in selected if m.selector.ownership is Ownership.AUTHORITATIVE), None)
    if bold is not None:
        return Ownership.AUTHORITATIVE, f'{bold.selector.label} says Ownership = "authoritative"'
    if exact is not None:
        return Ownership.SHARED, (
            f'its BucketName definition in {", ".join(exact.files)} says Ownership = "shared",'
            ' and no selector says "authoritative"'
        )
    return Ownership.SHARED, 'only selectors select it (shared by default), and none says Ownership = "authoritative"'


def _tdmos_source(exact: BucketDefinition | None, selected: Sequence[Match]) -> Source | None:
    """Rule 4: the exact definition's value, else the first selector's that sets one."""
    if exact is not None and exact.config.transition_default_minimum_object_size is not None:
        return Source(", ".join(exact.files))
    return next((m.source for m in selected if m.selector.config.transition_default_minimum_object_size), None)


# -- text and JSON ------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return printable(json.dumps(text, ensure_ascii=False))


def _tags_text(tags: Sequence[tuple[str, str]] | Mapping[str, str]) -> str:
    pairs = tags.items() if isinstance(tags, Mapping) else tags
    return ", ".join(f"{_quoted(k)} = {_quoted(v)}" for k, v in pairs) or "(none)"


def _why_text(source: Source, tags: Sequence[tuple[str, str]]) -> str:
    if source.selector is None:
        return f"{printable(source.file)}  (BucketName)"
    with_tags = f", tags {_tags_text(tags)}" if tags else ""
    return f"{printable(source.selector)}  (pattern {_quoted(source.matched or '')}{with_tags})"


def _fate_text(contribution: Contribution) -> str:
    name = "(no ID)" if contribution.rule is None else printable(contribution.rule)
    if contribution.fate is Fate.OVERRIDDEN and contribution.by is not None:
        return f"rule {name}: overridden by {printable(contribution.by.file)}"
    if contribution.fate is Fate.SAME and contribution.by is not None:
        return f"rule {name}: the same rule as {source_text(contribution.by).removeprefix('from ')}'s, applied once"
    if contribution.fate is Fate.CONFLICT:
        return f"rule {name}: conflicts with another selector's rule of this ID (see problems)"
    return f"rule {name}: applied"


def explanation_text(explanation: Explanation) -> str:
    """What ``lakecircle explain BUCKET`` prints."""
    e = explanation
    out = [f"bucket {printable(e.bucket)}"]
    if e.account is not None:
        out.append(f"account: {e.account}")
    if not e.managed and e.account is not None and e.out_of_scope:
        out.append(
            f"no definition that applies in account {e.account} selects it: LakeCircle never reads or writes"
            " its lifecycle rules there"
        )
    elif not e.managed:
        out.append("no definition selects it: it is unmanaged (LakeCircle never reads or writes its lifecycle rules)")
    if e.selecting:
        out.append("selected by:")
        for selecting in e.selecting:
            out.append(f"  {_why_text(selecting.source, selecting.tags)}")
            out.extend(f"    {_fate_text(c)}" for c in selecting.rules)
    if e.passed:
        out.append("matched by name, not selected:")
        out.extend(f"  {_why_text(p.source, p.tags)}: {p.why.value}" for p in e.passed)
    if e.out_of_scope:
        out.append(f"not applied in account {e.account} (their Accounts or AccountTags leave it out):")
        out.extend(f"  {_why_text(o.source, ())}: {printable(o.scope.describe())}" for o in e.out_of_scope)
    if e.tags is not None:
        out.append(f"tags: {_tags_text(e.tags)}")
    elif e.tags_note is not None:
        out.append(f"tags: not read: {printable(e.tags_note)}")
    if e.ownership is not None:
        out.append(f"ownership: {e.ownership.value}: {e.ownership_why}")
    if e.combined is not None:
        tdmos = e.combined.config.transition_default_minimum_object_size
        if tdmos is None or e.tdmos_source is None:
            out.append("TransitionDefaultMinimumObjectSize: not set; a write keeps the bucket's current value")
        else:
            out.append(f"TransitionDefaultMinimumObjectSize: {_quoted(tdmos)} ({source_text(e.tdmos_source)})")
    if e.problems:
        out.append("invalid: it is never written until these are fixed:")
        out.extend(f"  {p}" for p in e.problems)
    if e.invalid_selectors:
        labels = ", ".join(printable(label) for label in e.invalid_selectors)
        out.append(f"left out for their errors (they may select this bucket): {labels}")
    if e.combined is not None and e.valid:
        out.append("desired configuration:")
        out.extend(f"  {line}" if line else "" for line in config_toml(e.bucket, e.combined.config).splitlines())
    return "\n".join(out)


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    """The same as :func:`explanation_text`, as fields."""
    e = explanation
    combined = e.combined
    return {
        "bucket": e.bucket,
        "managed": e.managed,
        "valid": e.valid,
        "selected_by": [
            {
                **(source_json(s.source) or {}),
                "tags": dict(s.tags),
                "rules": [{"id": c.rule, "fate": c.fate.value, "by": source_json(c.by)} for c in s.rules],
            }
            for s in e.selecting
        ],
        "not_selected": [
            {**(source_json(p.source) or {}), "tags": dict(p.tags), "reason": p.why.value} for p in e.passed
        ],
        "tags": None if e.tags is None else dict(e.tags),
        "tags_note": e.tags_note,
        "ownership": None if e.ownership is None else {"value": e.ownership.value, "reason": e.ownership_why},
        "transition_default_minimum_object_size": (
            None
            if combined is None
            else {
                "value": combined.config.transition_default_minimum_object_size,
                "source": source_json(e.tdmos_source),
            }
        ),
        "overrides": [] if combined is None else [override_json(o) for o in combined.overrides],
        "problems": [p.as_dict() for p in e.problems],
        "invalid_selectors": list(e.invalid_selectors),
        "desired": config_json(combined.config) if combined is not None and e.valid else None,
    } | (
        {}
        if e.account is None
        else {"account": e.account, "out_of_scope": [_out_of_scope_json(o) for o in e.out_of_scope]}
    )


def _out_of_scope_json(outside: OutOfScope) -> dict[str, Any]:
    scope = outside.scope
    return {
        **(source_json(outside.source) or {}),
        "accounts": None if scope.accounts is None else sorted(scope.accounts),
        "account_tags": dict(scope.tags),
        "scope": scope.describe(),
    }
