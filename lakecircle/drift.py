"""Tell real drift from a server that stores less than it was sent.

Some S3-compatible servers (and test doubles) silently drop fields they do not support:
object-size filters, ``NewerNoncurrentVersions``, ``TransitionDefaultMinimumObjectSize``.
Rewriting such a bucket every cycle would change nothing and cost a write each time. A
difference is only a server's dropping when every field the live rule has, the desired
rule has with the same value, and nothing but fields are missing: no rule added or
removed. The reconcile code treats it so only after it has written exactly this desired
configuration before; the first time, it writes as usual.
"""

from __future__ import annotations

from typing import Any

from lakecircle.model import LifecycleConfig, Rule
from lakecircle.normalize import canonical_config, canonical_rule
from lakecircle.plan import Action, BucketPlan, flatten


def rule_facts(rule: Rule) -> dict[str, Any]:
    """A rule as {path: value}, with its filter as a set of predicates, whatever its shape."""
    canonical = canonical_rule(rule)
    wire = canonical.to_wire()
    wire.pop("Filter", None)
    facts = flatten(wire)
    flt = canonical.filter
    if flt is not None:
        op = flt.and_
        prefix = op.prefix if op is not None else flt.prefix
        tags = op.tags if op is not None else ((flt.tag,) if flt.tag is not None else ())
        greater = op.object_size_greater_than if op is not None else flt.object_size_greater_than
        less = op.object_size_less_than if op is not None else flt.object_size_less_than
        if prefix:
            facts["Filter.Prefix"] = prefix
        for tag in tags:
            facts[f"Filter.Tag.{tag.key}"] = tag.value
        if greater is not None:
            facts["Filter.ObjectSizeGreaterThan"] = greater
        if less is not None:
            facts["Filter.ObjectSizeLessThan"] = less
    return facts


def dropped_fields(desired: Rule, live: Rule) -> list[str] | None:
    """The fields of ``desired`` that ``live`` lacks, or None when ``live`` differs otherwise."""
    want = rule_facts(desired)
    have = rule_facts(live)
    if any(want.get(path, _ABSENT) != value for path, value in have.items()):
        return None
    return sorted(path for path in want if path not in have)


_ABSENT = object()


def server_dropped(plan: BucketPlan) -> list[str] | None:
    """The fields a server dropped, when that is the plan's only difference; else None."""
    if plan.action is not Action.PUT or plan.added or plan.removed:
        return None
    dropped: list[str] = []
    for change in plan.changed:
        missing = dropped_fields(change.after, change.before)
        if missing is None:
            return None
        dropped.extend(f"{change.rule_id}: {path}" for path in missing)
    if plan.tdmos_change is not None:
        dropped.append("TransitionDefaultMinimumObjectSize")
    return dropped or None


def same_config(a: LifecycleConfig, b: LifecycleConfig) -> bool:
    """Equal in canonical form (rules, order-free; and the minimum object size)."""
    return canonical_config(a) == canonical_config(b)
