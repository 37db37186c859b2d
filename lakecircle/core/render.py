"""Render plans and configurations for people (text), machines (JSON) and files (TOML).

Pure functions from values to strings or JSON-ready dicts. Colour is a parameter: the
caller decides whether its output is a terminal.

A plan of definitions says where each added, changed or removed rule comes from (its
file, and for a selector its pattern: "why this rule?" is the first question in a
fleet), in text and in JSON. A plan built without sources (a rollback's, whose source is
the record it restores) renders without them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import tomli_w

from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.normalize import canonical_rule
from lakecircle.core.plan import Action, BucketPlan, RuleChange, flatten
from lakecircle.core.problems import printable
from lakecircle.core.selectors import Override, Source

PLAN_FORMAT_VERSION = 1

_COLOURS = {"+": "\x1b[32m", "-": "\x1b[31m", "~": "\x1b[33m", "!": "\x1b[35m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


def _paint(text: str, style: str, color: bool) -> str:
    return f"{_COLOURS[style]}{text}{_RESET}" if color else text


def _value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, str):
        return printable(json.dumps(value, ensure_ascii=False))
    if value is None:
        return "(none)"
    if value == {}:
        return "{}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _rule_lines(rule: Rule) -> list[str]:
    lines = []
    flat = flatten(canonical_rule(rule).to_wire())
    for path, value in flat.items():
        if path == "ID":
            continue
        lines.append(f"{path} = {_value(value)}")
    return lines


def _rule_name(rule_id: str | None) -> str:
    return "(no ID)" if rule_id is None else printable(rule_id)


_NOWHERE = "in no definition that selects this bucket"
_HELD = "a definition file or the bucket's tags could not be read; the rule stays)"


def source_text(source: Source) -> str:
    """``from logs.toml``, or ``from fleet.toml Bucket[1], pattern "*"`` for a selector."""
    if source.selector is None:
        return f"from {printable(source.file)}"
    return f"from {printable(source.selector)}, pattern {_value(source.matched or '')}"


def _overridden_text(override: Override) -> str:
    """``overrides logs-baseline.toml (pattern "*-logs")``."""
    named = override.overridden.selector or override.overridden.file
    return f"overrides {printable(named)} (pattern {_value(override.overridden.matched or '')})"


def _provenance(plan: BucketPlan, rule_id: str | None) -> str:
    """What follows a rule's header: two spaces and its source in brackets, or nothing."""
    if not plan.has_provenance:
        return ""
    source = None if rule_id is None else plan.sources.get(rule_id)
    return "" if source is None else f"  ({source_text(source)})"


def _override_lines(plan: BucketPlan, rule_id: str | None, color: bool, style: str) -> list[str]:
    return [
        _paint(f"      # {_overridden_text(o)}", style, color)
        for o in plan.overrides
        if rule_id is not None and o.rule == rule_id
    ]


def _heading(plan: BucketPlan) -> str:
    if plan.action is Action.DELETE:
        return "will be deleted (no rules defined)"
    if plan.action is Action.PUT:
        return "will be updated"
    if plan.held_changes:
        return (
            "is not written: its changes are held back"
            if not plan.held
            else ("is not written: its changes and removals are held back")
        )
    return "is not written: its removals are held back"


def render_plan_text(plans: Sequence[BucketPlan], *, color: bool = False, total: int | None = None) -> str:
    """A plan in the manner of ``terraform plan``: ``+`` added, ``-`` removed, ``~`` changed,
    ``!`` a removal held back by a guard (the rule stays)."""
    out: list[str] = []
    for plan in plans:
        if not plan.has_changes and not plan.held and not plan.held_changes:
            continue
        out.append(_paint(f"bucket {printable(plan.bucket)} {_heading(plan)}", "bold", color))
        for rule in plan.added:
            out.append(_paint(f"  + rule {_rule_name(rule.id)}{_provenance(plan, rule.id)}", "+", color))
            out.extend(_override_lines(plan, rule.id, color, "+"))
            out.extend(_paint(f"      + {line}", "+", color) for line in _rule_lines(rule))
        for change in plan.changed:
            out.append(_paint(f"  ~ rule {_rule_name(change.rule_id)}{_provenance(plan, change.rule_id)}", "~", color))
            out.extend(_override_lines(plan, change.rule_id, color, "~"))
            out.extend(
                _paint(f"      ~ {fc.field}: {_value(fc.before)} -> {_value(fc.after)}", "~", color)
                for fc in change.fields
            )
        for rule in plan.removed:
            nowhere = f"  ({_NOWHERE})" if plan.has_provenance else ""
            out.append(_paint(f"  - rule {_rule_name(rule.id)}{nowhere}", "-", color))
            out.extend(_paint(f"      - {line}", "-", color) for line in _rule_lines(rule))
        for rule in plan.held:
            out.append(_paint(f"  ! rule {_rule_name(rule.id)} (removal held back: the rule stays)", "!", color))
            out.extend(_paint(f"      ! {line}", "!", color) for line in _rule_lines(rule))
        for change in plan.held_changes:
            name = _rule_name(change.rule_id)
            out.append(
                _paint(f"  ! rule {name}{_provenance(plan, change.rule_id)} (change held back: {_HELD}", "!", color)
            )
            out.extend(
                _paint(f"      ! {fc.field}: {_value(fc.before)} -> {_value(fc.after)}", "!", color)
                for fc in change.fields
            )
        if plan.tdmos_change is not None:
            tc = plan.tdmos_change
            out.append(_paint(f"  ~ {tc.field}: {_value(tc.before)} -> {_value(tc.after)}", "~", color))
        out.append("")
    out.append(summary_line(plans, total=total))
    return "\n".join(out)


def summary_line(plans: Sequence[BucketPlan], *, total: int | None = None) -> str:
    """The last line of a plan; ``total`` counts the buckets compared (default: the plans)."""
    total = len(plans) if total is None else total
    changed = [p for p in plans if p.has_changes]
    held = sum(len(p.held) for p in plans)
    held_changes = sum(len(p.held_changes) for p in plans)
    holding = sum(1 for p in plans if p.held or p.held_changes)
    kept = ", ".join(f"{n} rule {what}(s) held back" for n, what in ((held_changes, "change"), (held, "removal")) if n)
    if not changed:
        if kept:
            return f"No changes to write. {kept}, in {holding} of {total} bucket(s)."
        return f"No changes. {total} bucket(s) match their definitions."
    added = sum(len(p.added) for p in plans)
    changed_rules = sum(len(p.changed) for p in plans)
    removed = sum(len(p.removed) for p in plans)
    held_note = f"; {kept}" if kept else ""
    return (
        f"Plan: {added} rule(s) to add, {changed_rules} to change, {removed} to remove,"
        f" in {len(changed)} of {total} bucket(s){held_note}."
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def config_json(config: LifecycleConfig) -> dict[str, Any]:
    """A configuration as JSON-ready wire data (dates as ISO 8601 strings)."""
    return {
        "Rules": [_jsonable(r.to_wire()) for r in config.rules],
        "TransitionDefaultMinimumObjectSize": config.transition_default_minimum_object_size,
    }


def source_json(source: Source | None) -> dict[str, str | None] | None:
    """A rule's source as JSON: ``{"file", "selector", "pattern"}``, None when it has none."""
    if source is None:
        return None
    return {"file": source.file, "selector": source.selector, "pattern": source.matched}


def override_json(override: Override) -> dict[str, Any]:
    return {"rule": override.rule, "overridden": source_json(override.overridden), "by": source_json(override.by)}


def plan_json(plan: BucketPlan) -> dict[str, Any]:
    """One bucket's plan in the JSON schema documented in the README.

    A plan built with its rules' sources (every plan of definitions) adds ``"source"`` to
    each added, removed and changed rule (null for a removed one: no definition that
    selects the bucket has it) and ``"overrides"`` to the plan; one built without them (a
    rollback's) has neither key.
    """
    provenance = plan.has_provenance

    def sourced(entry: dict[str, Any], rule_id: str | None) -> dict[str, Any]:
        if provenance:
            entry["source"] = source_json(None if rule_id is None else plan.sources.get(rule_id))
        return entry

    document = {
        "bucket": plan.bucket,
        "action": plan.action.value,
        "added": [sourced(_jsonable(r.to_wire()), r.id) for r in plan.added],
        "removed": [sourced(_jsonable(r.to_wire()), None) for r in plan.removed],
        "held": [_jsonable(r.to_wire()) for r in plan.held],
        "changed": [sourced(_change_json(c), c.rule_id) for c in plan.changed],
        "held_changes": [sourced(_change_json(c), c.rule_id) for c in plan.held_changes],
        "transition_default_minimum_object_size": (
            None
            if plan.tdmos_change is None
            else {"before": plan.tdmos_change.before, "after": plan.tdmos_change.after}
        ),
    }
    if provenance:
        document["overrides"] = [override_json(o) for o in plan.overrides]
    return document


def _change_json(change: RuleChange) -> dict[str, Any]:
    return {
        "id": change.rule_id,
        "fields": [
            {"field": f.field, "before": _jsonable(f.before), "after": _jsonable(f.after)} for f in change.fields
        ],
    }


def plans_json(plans: Iterable[BucketPlan], **extra: Any) -> dict[str, Any]:
    plans = list(plans)
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "changes": any(p.has_changes for p in plans),
        "buckets": [plan_json(p) for p in plans],
        **extra,
    }


def _toml_value(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    if isinstance(value, dict):
        return {k: _toml_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_toml_value(v) for v in value]
    return value


def config_toml(bucket: str, config: LifecycleConfig, *, accounts: Sequence[str] = ()) -> str:
    """A definition file for ``bucket`` that parses back to ``config``; with ``accounts``, one
    that applies in those accounts only (``Accounts``: an export of many accounts)."""
    document: dict[str, Any] = {"BucketName": bucket}
    if accounts:
        document["Accounts"] = list(accounts)
    if config.transition_default_minimum_object_size is not None:
        document["TransitionDefaultMinimumObjectSize"] = config.transition_default_minimum_object_size
    document["LifecycleConfiguration"] = {"Rules": [_toml_value(r.to_wire()) for r in config.rules]}
    return tomli_w.dumps(document)
