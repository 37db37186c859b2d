"""The canonical form of a rule: one spelling for every way of saying the same thing.

S3 hands back what it was sent in other shapes (``Filter {}`` for no filter, a legacy
``Prefix ""``, reordered tags and transitions, dates as datetimes), and other servers
normalise further. Comparing rules in this form is what keeps LakeCircle from
rewriting a bucket that is already right (DESIGN.md, rule 3).

Canonical choices: the filter is always a :class:`Filter` (the legacy prefix moves into
it, an empty prefix is dropped, a lone predicate stands bare, two or more go into
``And``); tags, transitions and noncurrent transitions are sorted; a false
``ExpiredObjectDeleteMarker`` is dropped. The result is valid wire data for the V2 form.
"""

from __future__ import annotations

from lakecircle.model import AndOperator, Expiration, Filter, LifecycleConfig, Rule, Tag


def canonical_filter(rule: Rule) -> Filter:
    prefix: str | None = rule.prefix
    tags: list[Tag] = []
    greater: int | None = None
    less: int | None = None
    flt = rule.filter
    if flt is not None:
        op = flt.and_ or AndOperator()
        prefix = next((p for p in (flt.prefix, op.prefix, prefix) if p), None)
        tags = ([flt.tag] if flt.tag is not None else []) + list(op.tags)
        greater = (
            flt.object_size_greater_than if flt.object_size_greater_than is not None else op.object_size_greater_than
        )
        less = flt.object_size_less_than if flt.object_size_less_than is not None else op.object_size_less_than
    prefix = prefix or None
    tags.sort(key=lambda t: (t.key, t.value))
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
            prefix=prefix, tags=tuple(tags), object_size_greater_than=greater, object_size_less_than=less
        )
    )


def canonical_rule(rule: Rule) -> Rule:
    """``rule`` in canonical form; ``canonical_rule(canonical_rule(r)) == canonical_rule(r)``."""
    expiration = rule.expiration
    if expiration is not None and expiration.expired_object_delete_marker is False:
        expiration = expiration.model_copy(update={"expired_object_delete_marker": None})
        if expiration == Expiration():
            expiration = None
    return rule.model_copy(
        update={
            "filter": canonical_filter(rule),
            "prefix": None,
            "expiration": expiration,
            "transitions": tuple(
                sorted(
                    rule.transitions,
                    key=lambda t: (
                        t.days if t.days is not None else -1,
                        t.date.isoformat() if t.date else "",
                        t.storage_class,
                    ),
                )
            ),
            "noncurrent_version_transitions": tuple(
                sorted(
                    rule.noncurrent_version_transitions,
                    key=lambda t: (
                        t.noncurrent_days if t.noncurrent_days is not None else -1,
                        t.storage_class,
                        t.newer_noncurrent_versions or 0,
                    ),
                )
            ),
        }
    )


def canonical_config(config: LifecycleConfig) -> LifecycleConfig:
    """The configuration with every rule canonical and the rules sorted by ID."""
    rules = sorted((canonical_rule(r) for r in config.rules), key=lambda r: (r.id is None, r.id or ""))
    return LifecycleConfig(tuple(rules), config.transition_default_minimum_object_size)
