"""Read a definition's rules one by one: the rules that could be read, and problems for the others.

Shared by the exact definitions and the selectors of :mod:`lakecircle.core.parse`. Each
rule is validated on its own, so one broken rule costs only itself and every problem
names the file, the bucket (or the selector's table), the rule and the key path. A Date
written with a UTC offset that puts it off midnight UTC is said here, where its spelling
is known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from lakecircle.core.model import Rule, offset_datetime
from lakecircle.core.problems import Problem
from lakecircle.core.shape_problems import shape_problems


def parse_rules(
    file: str,
    raw_rules: Sequence[object],
    label: str | None,
    where: str,
    problems: list[Problem],
    *,
    paths: bool = False,
) -> list[Rule]:
    """The rules that could be read; the problems of the others go to ``problems``.

    ``paths``: each field begins with the rule's place in the file
    (``Bucket[1].LifecycleConfiguration.Rules[0].``), for a selector, which has no bucket
    name; a bucket's rule fields are the rule's own key paths.
    """
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules):
        at = f"{where}LifecycleConfiguration.Rules[{index}]." if paths else ""
        if not isinstance(raw, dict):
            problems.append(
                Problem(
                    file,
                    f"a rule must be a table, not {type(raw).__name__}; write it as [[LifecycleConfiguration.Rules]]",
                    bucket=label,
                    rule=_rule_label(raw, index),
                    field=f"{where}LifecycleConfiguration.Rules[{index}]",
                )
            )
            continue
        try:
            rule = _validate_rule(raw)
        except ValidationError as exc:
            problems.extend(shape_problems(exc, Rule, file=file, bucket=label, rule=_rule_label(raw, index), prefix=at))
            continue
        if _has_date_off_midnight(rule):
            rule, found = _offset_dates(rule, raw)
            problems.extend(
                Problem(file, message, bucket=label, rule=_rule_label(raw, index), field=at + path)
                for path, message in found
            )
        rules.append(rule)
    return rules


def _has_date_off_midnight(rule: Rule) -> bool:
    """True when a Date of the rule is not at midnight UTC (rare: most rules count days)."""
    expiration = rule.expiration
    if expiration is not None and expiration.date is not None and _off_midnight(expiration.date):
        return True
    return any(t.date is not None and _off_midnight(t.date) for t in rule.transitions)


def _off_midnight(when: dt.datetime) -> bool:
    return bool(when.hour or when.minute or when.second or when.microsecond)


def _offset_dates(rule: Rule, raw: Mapping[str, Any]) -> tuple[Rule, list[tuple[str, str]]]:
    """Dates written with a UTC offset that puts them off midnight UTC, as (field, message).

    ``2030-01-01T00:00:00+02:00`` is 22:00 UTC on 2029-12-31, and S3 takes only midnight
    UTC. Validation would see only the UTC value and point at the wrong day, so the problem
    is said here, where the spelling is known; the rule goes on to validation with the day
    as written, at midnight UTC, so that its other problems come in the same run.
    """
    found: list[tuple[str, str]] = []
    expiration = rule.expiration
    raw_expiration = raw.get("Expiration")
    if expiration is not None and expiration.date is not None and isinstance(raw_expiration, dict):
        written = offset_datetime(raw_expiration.get("Date"))
        if written is not None and _off_midnight(expiration.date):
            found.append(("Expiration.Date", _offset_message(written, expiration.date)))
            expiration = expiration.model_copy(update={"date": _midnight(written)})
    transitions = list(rule.transitions)
    raw_transitions = raw.get("Transitions")
    for index, transition in enumerate(transitions):
        raw_transition = raw_transitions[index] if isinstance(raw_transitions, list) else None
        if transition.date is None or not isinstance(raw_transition, dict):
            continue
        written = offset_datetime(raw_transition.get("Date"))
        if written is not None and _off_midnight(transition.date):
            found.append((f"Transitions[{index}].Date", _offset_message(written, transition.date)))
            transitions[index] = transition.model_copy(update={"date": _midnight(written)})
    if not found:
        return rule, found
    return rule.model_copy(update={"expiration": expiration, "transitions": tuple(transitions)}), found


def _offset_message(written: dt.datetime, utc: dt.datetime) -> str:
    return (
        f"Date {written.isoformat()} is {utc.isoformat().replace('+00:00', 'Z')} in UTC, and S3 takes a Date"
        f" only at midnight UTC; write the day alone: Date = {written.date().isoformat()}"
    )


def _midnight(written: dt.datetime) -> dt.datetime:
    return dt.datetime(written.year, written.month, written.day, tzinfo=dt.UTC)


_validate_rule = Rule.__pydantic_validator__.validate_python
"""``Rule.model_validate`` without its wrapper (which passes only defaults): every rule
of every file goes through it."""


def _rule_label(raw: object, index: int) -> str:
    if isinstance(raw, dict):
        rule_id = raw.get("ID")
        if isinstance(rule_id, str) and rule_id:
            return rule_id
    return f"rule #{index + 1}"
