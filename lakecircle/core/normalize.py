"""The canonical form of a rule: one spelling for every way of saying the same thing.

S3 hands back what it was sent in other shapes (``Filter {}`` for no filter, a legacy
``Prefix ""``, reordered tags and transitions, dates as datetimes), and other servers
normalise further. Comparing rules in this form is what keeps LakeCircle from
rewriting a bucket that is already right (ARCHITECTURE.md, "Safety", rule 3).

Canonical choices: the filter is always a :class:`Filter` (the legacy prefix moves into
it, an empty prefix is dropped, a lone predicate stands bare, two or more go into
``And``); tags, transitions and noncurrent transitions are sorted; a false
``ExpiredObjectDeleteMarker`` is dropped. The result is valid wire data for the V2 form.

:func:`canonical_key` says the same as :func:`canonical_rule` as a tuple of plain values:
two rules have equal keys exactly when their canonical forms are equal. Planning compares
keys, which costs a fraction of building canonical models for every rule of every bucket.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lakecircle.core.model import (
    AndOperator,
    Expiration,
    Filter,
    LifecycleConfig,
    NoncurrentVersionTransition,
    Rule,
    Tag,
    Transition,
)

_NO_EXPIRATION = Expiration()
_NO_DATE = dt.datetime.min.replace(tzinfo=dt.UTC)

_FilterParts = tuple[str | None, tuple[Tag, ...], int | None, int | None]


Step = TypeVar("Step", Transition, NoncurrentVersionTransition)


def _filter_parts(rule: Rule) -> _FilterParts:
    """What a rule's filter selects: (prefix or None, sorted tags, greater-than, less-than)."""
    flt = rule.filter
    if flt is None:
        return (rule.prefix or None, (), None, None)
    op = flt.and_
    if op is None:
        prefix = flt.prefix or rule.prefix or None
        tags: tuple[Tag, ...] = (flt.tag,) if flt.tag is not None else ()
        return (prefix, tags, flt.object_size_greater_than, flt.object_size_less_than)
    prefix = flt.prefix or op.prefix or rule.prefix or None
    tags = ((flt.tag,) if flt.tag is not None else ()) + op.tags
    if len(tags) > 1:
        tags = tuple(sorted(tags, key=_tag_order))
    greater = flt.object_size_greater_than if flt.object_size_greater_than is not None else op.object_size_greater_than
    less = flt.object_size_less_than if flt.object_size_less_than is not None else op.object_size_less_than
    return (prefix, tags, greater, less)


def _tag_order(tag: Tag) -> tuple[str, str]:
    return (tag.key, tag.value)


def _transition_order(t: Transition) -> tuple[Any, ...]:
    # Total over every field (dates by instant), so one multiset has one canonical order.
    return (t.days is None, t.days or 0, t.date is None, t.date or _NO_DATE, t.storage_class)


def _noncurrent_order(t: NoncurrentVersionTransition) -> tuple[Any, ...]:
    return (
        t.noncurrent_days is None,
        t.noncurrent_days or 0,
        t.storage_class,
        t.newer_noncurrent_versions is None,
        t.newer_noncurrent_versions or 0,
    )


def canonical_filter(rule: Rule) -> Filter:
    prefix, tags, greater, less = _filter_parts(rule)
    count = (prefix is not None) + len(tags) + (greater is not None) + (less is not None)
    if count == 0:
        return Filter.model_construct()
    if count == 1:
        return Filter.model_construct(
            prefix=prefix,
            tag=tags[0] if tags else None,
            object_size_greater_than=greater,
            object_size_less_than=less,
        )
    return Filter.model_construct(
        and_=AndOperator.model_construct(
            prefix=prefix, tags=tags, object_size_greater_than=greater, object_size_less_than=less
        )
    )


def _canonical_expiration(expiration: Expiration | None) -> Expiration | None:
    """A false ExpiredObjectDeleteMarker says nothing; an Expiration that says nothing is none."""
    if expiration is None:
        return None
    if expiration.expired_object_delete_marker is False:
        expiration = expiration.model_copy(update={"expired_object_delete_marker": None})
    return None if expiration == _NO_EXPIRATION else expiration


def canonical_rule(rule: Rule) -> Rule:
    """``rule`` in canonical form; ``canonical_rule(canonical_rule(r)) == canonical_rule(r)``."""
    return rule.model_copy(
        update={
            "filter": canonical_filter(rule),
            "prefix": None,
            "expiration": _canonical_expiration(rule.expiration),
            "transitions": tuple(sorted(rule.transitions, key=_transition_order)),
            "noncurrent_version_transitions": tuple(sorted(rule.noncurrent_version_transitions, key=_noncurrent_order)),
        }
    )


def canonical_key(rule: Rule) -> tuple[Any, ...]:
    """A hashable value equal for two rules exactly when their canonical forms are equal.

    Planning calls this for every rule of every bucket, so it builds plain tuples only,
    reading each part of the rule once (the filter as :func:`_filter_parts` reads it).
    """
    flt = rule.filter
    if flt is None:
        prefix = rule.prefix or None
        tags: tuple[tuple[str, str], ...] = ()
        greater = less = None
    elif flt.and_ is None:
        prefix = flt.prefix or rule.prefix or None
        tag = flt.tag
        tags = () if tag is None else ((tag.key, tag.value),)
        greater, less = flt.object_size_greater_than, flt.object_size_less_than
    else:
        prefix, found, greater, less = _filter_parts(rule)
        tags = tuple([(t.key, t.value) for t in found])
    exp = rule.expiration
    exp_key: tuple[Any, ...] | None = None
    if exp is not None:
        marker = exp.expired_object_delete_marker
        if marker is False:
            marker = None
        if exp.days is not None or exp.date is not None or marker is not None:
            exp_key = (exp.days, exp.date, marker)
    transitions = _steps_key(rule.transitions, _transition_order, _transition_key)
    noncurrent = _steps_key(rule.noncurrent_version_transitions, _noncurrent_order, _noncurrent_key)
    nve = rule.noncurrent_version_expiration
    abort = rule.abort_incomplete_multipart_upload
    return (
        rule.id,
        rule.status,
        prefix,
        tags,
        greater,
        less,
        exp_key,
        transitions,
        None if nve is None else (nve.noncurrent_days, nve.newer_noncurrent_versions),
        noncurrent,
        None if abort is None else abort.days_after_initiation,
    )


def _steps_key(
    steps: tuple[Step, ...], order: Callable[[Step], tuple[Any, ...]], key: Callable[[Step], tuple[Any, ...]]
) -> tuple[tuple[Any, ...], ...]:
    """The keys of transitions in canonical order (a list of one or none needs no sort)."""
    if not steps:
        return ()
    if len(steps) == 1:
        return (key(steps[0]),)
    return tuple([key(step) for step in sorted(steps, key=order)])


def _transition_key(t: Transition) -> tuple[Any, ...]:
    return (t.days, t.date, t.storage_class)


def _noncurrent_key(n: NoncurrentVersionTransition) -> tuple[Any, ...]:
    return (n.noncurrent_days, n.storage_class, n.newer_noncurrent_versions)


def canonical_config(config: LifecycleConfig) -> LifecycleConfig:
    """The configuration with every rule canonical and the rules sorted by ID."""
    rules = sorted((canonical_rule(r) for r in config.rules), key=lambda r: (r.id is None, r.id or ""))
    return LifecycleConfig(tuple(rules), config.transition_default_minimum_object_size)


def one_form(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """The rules, with the legacy rule-level ``Prefix`` rules in Filter form when others use
    Filter: S3 refuses the two forms in one configuration (S3-NOTES), and they meet when
    definitions are combined or another writer's rules are kept beside LakeCircle's. The
    canonical form means the same, so plans and digests see no change.
    """
    legacy = modern = False
    for rule in rules:
        if rule.filter is None:
            legacy = legacy or rule.prefix is not None
        else:
            modern = True
    if not (legacy and modern):
        return tuple(rules)
    return tuple(canonical_rule(r) if r.filter is None and r.prefix is not None else r for r in rules)
