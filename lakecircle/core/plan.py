"""Plan one bucket: desired and live → the rules added, removed and changed, and one action.

S3 replaces a bucket's whole lifecycle configuration on every PUT, so a changed bucket
gets exactly one write: PUT with the full desired rule set, or DELETE when the desired
set is empty (ARCHITECTURE.md, "Safety", rule 2). Rules are matched by ID and compared in canonical form
(:mod:`lakecircle.core.normalize`), so a bucket that only reads back differently is a NOOP.

A plan may also say where each desired rule comes from (a file's ``BucketName``
definition, or a selector and the pattern that picked the bucket) and which selector
rules the bucket's own definition overrides: provenance, for people reading a plan of a
fleet. It also lets a guard hold back what selectors alone ask for (:func:`hold_selector_changes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.normalize import canonical_key, canonical_rule, one_form
from lakecircle.core.selectors import Override, Source


class Action(StrEnum):
    PUT = "put"
    DELETE = "delete"
    NOOP = "noop"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a changed rule, as a dotted wire path (``Transitions[0].Days``)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A rule whose ID is both defined and live, with different canonical forms."""

    rule_id: str
    before: Rule
    after: Rule
    fields: tuple[FieldChange, ...]
    """The fields that differ."""


@dataclass(frozen=True, slots=True)
class BucketPlan:
    """What one bucket's write would change: rules by ID, and the one request that makes it."""

    bucket: str
    action: Action
    added: tuple[Rule, ...]
    """Defined rules the bucket does not hold."""
    removed: tuple[Rule, ...]
    """Live rules the write removes."""
    changed: tuple[RuleChange, ...]
    desired: LifecycleConfig
    """What a PUT sends: the full desired rule set and the planned minimum object size."""
    live: LifecycleConfig
    tdmos_change: FieldChange | None = None
    held: tuple[Rule, ...] = ()
    """Live rules the definitions no longer name, kept because a guard holds their
    removal back (see :func:`hold_removals`): they would be removed, and are not."""
    held_changes: tuple[RuleChange, ...] = ()
    """Changes a guard held back: the live rule stays, and is sent again with a PUT (see
    :func:`hold_selector_changes`)."""
    sources: Mapping[str, Source] = field(default_factory=dict, hash=False)
    """Where each desired rule with an ID comes from, by ID; empty when the planner was
    not told (a rollback's plan: its source is the record it restores)."""
    overrides: tuple[Override, ...] = ()
    """The selectors' rules the bucket's own definition replaces."""
    provenance: bool = False
    """The planner was told the sources (even none: a definition without rules)."""

    @property
    def has_provenance(self) -> bool:
        """Whether the plan was built with its rules' sources (render shows them then)."""
        return self.provenance or bool(self.sources or self.overrides)

    @property
    def has_changes(self) -> bool:
        return self.action is not Action.NOOP


def hold_removals(plan: BucketPlan) -> BucketPlan:
    """The plan with its removals held back: the rules stay, sent again with the PUT,
    and are listed as ``held``; additions and changes still go.

    A DELETE (no rules defined) holds back every live rule and becomes a NOOP.
    """
    if not plan.removed:
        return plan
    desired = plan.desired
    kept = LifecycleConfig(one_form(desired.rules + plan.removed), desired.transition_default_minimum_object_size)
    action = Action.PUT if plan.added or plan.changed or plan.tdmos_change is not None else Action.NOOP
    return BucketPlan(
        plan.bucket,
        action,
        plan.added,
        (),
        plan.changed,
        kept,
        plan.live,
        plan.tdmos_change,
        held=plan.held + plan.removed,
        held_changes=plan.held_changes,
        sources=plan.sources,
        overrides=plan.overrides,
        provenance=plan.provenance,
    )


def selector_changes(plan: BucketPlan) -> tuple[RuleChange, ...]:
    """The plan's changes to live rules that a selector's rule asks for (its source says so)."""
    return tuple(c for c in plan.changed if (s := plan.sources.get(c.rule_id)) is not None and s.selector is not None)


def hold_selector_changes(plan: BucketPlan) -> BucketPlan:
    """The plan with the changes that selectors ask for held back: those live rules stay,
    sent again with the PUT, and are listed as ``held_changes``; everything else still goes.

    For a picture that is not whole (a definition file, or the bucket's tags, could not be
    read): what cannot be read may be the bucket's own ``BucketName`` definition overriding
    that rule, or a selector that would conflict with it, so the selector's version is not
    known to be the one wanted (ARCHITECTURE.md, "Safety", rule 6). A rule a selector adds
    is new to the bucket and goes, as any addition does.
    """
    held = selector_changes(plan)
    if not held:
        return plan
    back = {c.rule_id: c.before for c in held}
    rules = tuple(back.get(r.id, r) if r.id is not None else r for r in plan.desired.rules)
    changed = tuple(c for c in plan.changed if c.rule_id not in back)
    still = bool(plan.added or plan.removed or changed or plan.tdmos_change is not None)
    return dataclasses.replace(
        plan,
        action=plan.action if still else Action.NOOP,
        changed=changed,
        desired=LifecycleConfig(one_form(rules), plan.desired.transition_default_minimum_object_size),
        held_changes=plan.held_changes + held,
    )


def plan_bucket(
    bucket: str,
    desired: LifecycleConfig,
    live: LifecycleConfig,
    *,
    keep: Callable[[Rule], bool] | None = None,
    sources: Sequence[Source] | None = None,
    overrides: Sequence[Override] = (),
) -> BucketPlan:
    """The plan that makes ``live`` equal to ``desired``.

    ``TransitionDefaultMinimumObjectSize`` is planned as the defined value or, when the
    definition is silent, the live one, so a PUT never changes it by accident; a
    difference in it alone is a change.

    ``keep`` protects live rules the definitions do not name: those it returns True for
    stay, and are sent again with the PUT (shared ownership, and the guards that forbid
    removals). A rule ID the definitions name always follows the definitions.

    ``sources`` (parallel to ``desired.rules``) and ``overrides`` are carried into the plan
    for people to read (:func:`~lakecircle.core.combine.combine`); they change nothing planned.
    """
    by_id = _sources_by_id(bucket, desired, sources)
    if keep is not None:
        named = {r.id for r in desired.rules}
        kept = tuple(r for r in live.rules if r.id not in named and keep(r))
        if kept:
            desired = LifecycleConfig(desired.rules + kept, desired.transition_default_minimum_object_size)
    tdmos_live = live.transition_default_minimum_object_size
    tdmos_wanted = desired.transition_default_minimum_object_size
    tdmos = tdmos_wanted if tdmos_wanted is not None else tdmos_live
    planned = LifecycleConfig(one_form(desired.rules), tdmos)  # kept rules may be in the legacy form

    added, removed, changed = _compare(desired.rules, live.rules)

    tdmos_change = None
    # A DELETE sends no value; a live side that does not say (a server without the
    # setting) is not a difference, or every cycle would rewrite the bucket.
    if tdmos_wanted is not None and tdmos_live is not None and tdmos_wanted != tdmos_live and desired.rules:
        tdmos_change = FieldChange("TransitionDefaultMinimumObjectSize", tdmos_live, tdmos_wanted)

    if not desired.rules:
        action = Action.DELETE if live.rules else Action.NOOP
    elif added or removed or changed or tdmos_change:
        action = Action.PUT
    else:
        action = Action.NOOP
    return BucketPlan(
        bucket,
        action,
        added,
        removed,
        changed,
        planned,
        live,
        tdmos_change,
        sources=by_id,
        overrides=tuple(overrides),
        provenance=sources is not None,
    )


def _sources_by_id(bucket: str, desired: LifecycleConfig, sources: Sequence[Source] | None) -> dict[str, Source]:
    """Each desired rule's source by its ID (``sources`` is parallel to ``desired.rules``)."""
    by_id: dict[str, Source] = {}
    if sources is None:
        return by_id
    if len(sources) != len(desired.rules):
        msg = f"{len(sources)} sources for {len(desired.rules)} desired rules of {bucket}"
        raise ValueError(msg)
    for rule, source in zip(desired.rules, sources, strict=True):
        if rule.id is not None:
            by_id.setdefault(rule.id, source)
    return by_id


def _compare(
    desired: tuple[Rule, ...], live: tuple[Rule, ...]
) -> tuple[tuple[Rule, ...], tuple[Rule, ...], tuple[RuleChange, ...]]:
    """The rules added, removed and changed, matched by ID."""
    # Keyed as _key says, inline: this runs for every rule of every bucket.
    live_by_key = {(r.id if r.id is not None else f"\x00unnamed-{i}"): r for i, r in enumerate(live)}
    desired_by_key = {(r.id if r.id is not None else f"\x00unnamed-{i}"): r for i, r in enumerate(desired)}
    added: tuple[Rule, ...] = ()
    removed: tuple[Rule, ...] = ()
    if desired_by_key.keys() != live_by_key.keys():
        added = tuple([r for k, r in desired_by_key.items() if k not in live_by_key])
        removed = tuple([r for k, r in live_by_key.items() if k not in desired_by_key])
    changed = []
    for key, want in desired_by_key.items():
        have = live_by_key.get(key)
        if have is None or canonical_key(have) == canonical_key(want):
            continue  # the usual case, decided without diff_rules (which compares the keys first too)
        fields = diff_rules(have, want)
        if fields:
            changed.append(RuleChange(want.id or key, have, want, fields))
    return added, removed, tuple(changed)


def _key(rule: Rule, index: int) -> str:
    # A live rule without an ID (some servers allow it) can match nothing but itself.
    return rule.id if rule.id is not None else f"\x00unnamed-{index}"


def diff_rules(before: Rule, after: Rule) -> tuple[FieldChange, ...]:
    """The fields in which two rules differ, compared in canonical form."""
    if canonical_key(before) == canonical_key(after):
        return ()
    a = canonical_rule(before)
    b = canonical_rule(after)
    flat_a = flatten(a.to_wire())
    flat_b = flatten(b.to_wire())
    # An empty table on one side that the other side fills (Filter {} -> Filter.Prefix)
    # is not a field of its own: the filled-in leaves say the whole change.
    flat_a = _without_refined(flat_a, flat_b)
    flat_b = _without_refined(flat_b, flat_a)
    return tuple(
        FieldChange(path, flat_a.get(path), flat_b.get(path))
        for path in sorted(flat_a.keys() | flat_b.keys())
        if flat_a.get(path) != flat_b.get(path)
    )


def _without_refined(flat: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    empty = [path for path, value in flat.items() if value == {}]
    if not empty:
        return flat
    refined = {p for p in empty if any(k.startswith((f"{p}.", f"{p}[")) for k in other)}
    return {path: value for path, value in flat.items() if path not in refined}


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Wire data as {dotted path: leaf value}; an empty table is a leaf ``{}``."""
    if isinstance(value, dict):
        if not value:
            return {path: {}} if path else {}
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{path}.{key}" if path else key))
        return out
    if isinstance(value, list):
        out = {}
        for index, inner in enumerate(value):
            out.update(flatten(inner, f"{path}[{index}]"))
        return out
    return {path: value}
