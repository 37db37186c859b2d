"""The checks of a rule's actions: expiration, transitions and their noncurrent twins.

Constraints 7 to 11 of the numbered list: one way to say when, dates at midnight UTC,
known storage classes, enough days, and the order S3 moves objects in (the
"waterfall"), with the expiration after every transition.

A server's own storage classes (MinIO's remote tiers, Ceph's placement targets: the names
of ``LCC_STORAGE_CLASSES``, passed in as ``storage_classes``) are taken as names only: none
of S3's rules of days or order applies to them, and they may not appear twice in one rule.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection

from lakecircle.core.model import Expiration, NoncurrentVersionExpiration, Rule
from lakecircle.core.problems import shown, suggest
from lakecircle.core.validate.findings import ERROR, MAX_INTEGER, WARNING, Finding, at_most

NEWER_NONCURRENT_RANGE = (1, 100)

STORAGE_CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
"""Transition targets in S3's supported order (the "waterfall"): an object moves only down it.

One step down is not supported either: the User Guide lists ONEZONE_IA to GLACIER_IR as
unsupported, without saying whether S3 refuses it, so that step is a warning.
"""

_RANK = {name: rank for rank, name in enumerate(STORAGE_CLASSES)}
_MIN_DAYS_30 = frozenset({"STANDARD_IA", "ONEZONE_IA"})

Step = tuple[str, int | dt.datetime | None]
"""A transition as the order check sees it: its storage class and when (days or a date)."""


def check_day_limits(rule: Rule, out: list[Finding]) -> None:
    """Day and version counts too large for the API's Integer type."""
    expiration = rule.expiration
    if expiration is not None and expiration.days is not None and expiration.days > MAX_INTEGER:
        at_most(out, "Expiration.Days", expiration.days, MAX_INTEGER)
    for index, tr in enumerate(rule.transitions):
        days = tr.days
        if days is not None and days > MAX_INTEGER:
            at_most(out, f"Transitions[{index}].Days", days, MAX_INTEGER)
    nve = rule.noncurrent_version_expiration
    if nve is not None:
        _noncurrent_limits("NoncurrentVersionExpiration", nve.noncurrent_days, nve.newer_noncurrent_versions, out)
    for index, ntr in enumerate(rule.noncurrent_version_transitions):
        days, newer = ntr.noncurrent_days, ntr.newer_noncurrent_versions
        if (days or 0) > MAX_INTEGER or (newer or 0) > MAX_INTEGER:
            _noncurrent_limits(f"NoncurrentVersionTransitions[{index}]", days, newer, out)
    abort = rule.abort_incomplete_multipart_upload
    if abort is not None:
        at_most(out, "AbortIncompleteMultipartUpload.DaysAfterInitiation", abort.days_after_initiation, MAX_INTEGER)


def _noncurrent_limits(path: str, days: int | None, newer: int | None, out: list[Finding]) -> None:
    if days is not None and days > MAX_INTEGER:
        at_most(out, f"{path}.NoncurrentDays", days, MAX_INTEGER)
    if newer is not None and newer > MAX_INTEGER:
        at_most(out, f"{path}.NewerNoncurrentVersions", newer, MAX_INTEGER)


def check_expiration(exp: Expiration, out: list[Finding]) -> None:
    # 7. Exactly one of Days, Date, ExpiredObjectDeleteMarker.
    days, date, marker = exp.days, exp.date, exp.expired_object_delete_marker
    if (days is not None) + (date is not None) + (marker is not None) != 1:
        given = [
            name
            for name, value in (("Days", days), ("Date", date), ("ExpiredObjectDeleteMarker", marker))
            if value is not None
        ]
        what = ", ".join(given) if given else "none"
        out.append(
            (
                "Expiration",
                f"Expiration holds {what}; it holds exactly one of Days, Date, ExpiredObjectDeleteMarker",
                ERROR,
            )
        )
    if days is not None and days < 1:
        out.append(("Expiration.Days", f"Days is {days}; it must be a positive integer", ERROR))
    if date is not None:
        _check_midnight("Expiration.Date", date, out)


def _check_midnight(path: str, when: dt.datetime, out: list[Finding]) -> None:
    # 8. Every Date at midnight UTC.
    if when.hour or when.minute or when.second or when.microsecond:
        written = when.isoformat().replace("+00:00", "Z")
        out.append((path, f"Date {written} is not at midnight UTC; write the day alone: Date = {when.date()}", ERROR))


def check_transitions(rule: Rule, out: list[Finding], storage_classes: Collection[str] = ()) -> None:
    transitions = rule.transitions
    if not transitions:
        return  # an expiration alone mixes nothing and comes after nothing
    expiration = rule.expiration
    # 8. No Date and Days mixed across expiration and transitions. An action holding both
    # is reported on its own (7, 9) and counts for neither here. (Found in the loop below,
    # reported before the transitions' own findings.)
    mixed_at = len(out)
    uses_days = uses_date = False
    if expiration is not None:
        if expiration.date is None:
            uses_days = expiration.days is not None
        elif expiration.days is None:
            uses_date = True

    steps: list[Step] = []
    seen: set[str] = set()
    for index, tr in enumerate(transitions):
        days, date, storage_class = tr.days, tr.date, tr.storage_class
        if date is None:
            uses_days = uses_days or days is not None
            steps.append((storage_class, days))
        else:
            uses_date = uses_date or days is None
            steps.append((storage_class, days if days is not None else date))
        # 9. Known classes, no class twice, Days >= 0 (>= 30 to the IA classes).
        if storage_class not in _RANK or storage_class in seen:
            _check_class(f"Transitions[{index}]", storage_class, seen, out, storage_classes)
        seen.add(storage_class)
        if (days is None) == (date is None):
            out.append((f"Transitions[{index}]", "a transition holds exactly one of Days and Date", ERROR))
        if days is not None and (days < 0 or (days < 30 and storage_class in _MIN_DAYS_30)):
            _check_min_days(f"Transitions[{index}].Days", days, storage_class, out)
        if date is not None:
            _check_midnight(f"Transitions[{index}].Date", date, out)
    if uses_days and uses_date:
        out.insert(
            mixed_at,
            ("Transitions", "rule mixes Date and Days across Expiration and Transitions; use one of them", ERROR),
        )

    # 10. The waterfall, with increasing times, and expiration after every transition.
    if len(steps) > 1:
        _check_order("Transitions", steps, "Days/Date", out)
    if expiration is not None:
        _check_expiration_last(expiration, steps, out)


def _check_expiration_last(expiration: Expiration, steps: list[Step], out: list[Finding]) -> None:
    exp_at = expiration.days if expiration.days is not None else expiration.date
    if exp_at is None:
        return
    for index, (storage_class, tr_at) in enumerate(steps):
        if type(tr_at) is type(exp_at) and exp_at <= tr_at:  # type: ignore[operator]
            out.append(
                (
                    "Expiration",
                    f"Expiration ({_show(exp_at)}) must come after the transition to {storage_class}"
                    f" ({_show(tr_at)}) in Transitions[{index}]",
                    ERROR,
                )
            )


def _check_class(
    path: str, storage_class: str, seen: set[str], out: list[Finding], storage_classes: Collection[str]
) -> None:
    """A known transition target, not twice in one rule (``seen`` holds the rule's classes so far)."""
    if storage_class not in _RANK and storage_class not in storage_classes:
        known = (*STORAGE_CLASSES, *sorted(storage_classes))
        out.append(
            (
                f"{path}.StorageClass",
                f"StorageClass {shown(storage_class)} is not a transition target; use one of"
                f" {', '.join(known)}{suggest(storage_class, known)}; or, when the server has such a class"
                f" (a MinIO remote tier, a Ceph placement target), allow it with"
                f" LCC_STORAGE_CLASSES={_allowing(storage_class, storage_classes)}",
                ERROR,
            )
        )
    elif storage_class in seen:
        out.append((f"{path}.StorageClass", f"StorageClass {storage_class} appears twice in this rule", ERROR))


def _check_min_days(path: str, days: int, storage_class: str, out: list[Finding]) -> None:
    """At least 0 days, and at least 30 before the infrequent-access classes."""
    if days < 0:
        name = path.rsplit(".", 1)[-1]
        out.append((path, f"{name} is {days}; it must be at least 0", ERROR))
    elif days < 30 and storage_class in _MIN_DAYS_30:
        name = path.rsplit(".", 1)[-1]
        out.append((path, f"{name} is {days}; S3 requires at least 30 days before {storage_class}", ERROR))


def _check_newer(path: str, newer: int | None, out: list[Finding]) -> None:
    low, high = NEWER_NONCURRENT_RANGE
    if newer is not None and not low <= newer <= high:
        out.append((path, f"NewerNoncurrentVersions is {newer}; S3 allows {low} to {high}", ERROR))


def check_noncurrent(rule: Rule, out: list[Finding], storage_classes: Collection[str] = ()) -> None:
    nve = rule.noncurrent_version_expiration
    transitions = rule.noncurrent_version_transitions
    if nve is not None:
        _check_noncurrent_expiration(nve, out)
    steps: list[Step] = []
    seen: set[str] = set()
    for index, tr in enumerate(transitions):
        days, storage_class = tr.noncurrent_days, tr.storage_class
        path = f"NoncurrentVersionTransitions[{index}]"
        steps.append((storage_class, days))
        if storage_class not in _RANK or storage_class in seen:
            _check_class(path, storage_class, seen, out, storage_classes)
        seen.add(storage_class)
        if days is None:
            out.append((f"{path}.NoncurrentDays", "missing NoncurrentDays; a noncurrent transition needs it", ERROR))
        elif days < 0 or (days < 30 and storage_class in _MIN_DAYS_30):
            _check_min_days(f"{path}.NoncurrentDays", days, storage_class, out)
        _check_newer(f"{path}.NewerNoncurrentVersions", tr.newer_noncurrent_versions, out)
    if len(steps) > 1:
        _check_order("NoncurrentVersionTransitions", steps, "NoncurrentDays", out)
    if nve is None or nve.noncurrent_days is None:
        return
    for index, tr in enumerate(transitions):
        if tr.noncurrent_days is not None and nve.noncurrent_days <= tr.noncurrent_days:
            out.append(
                (
                    "NoncurrentVersionExpiration.NoncurrentDays",
                    f"NoncurrentDays ({nve.noncurrent_days}) must be greater than the NoncurrentDays"
                    f" of the transition to {tr.storage_class} ({tr.noncurrent_days})"
                    f" in NoncurrentVersionTransitions[{index}]",
                    ERROR,
                )
            )


def _check_noncurrent_expiration(nve: NoncurrentVersionExpiration, out: list[Finding]) -> None:
    # 11. NoncurrentDays at least 1; NewerNoncurrentVersions 1 to 100.
    path = "NoncurrentVersionExpiration"
    if nve.noncurrent_days is None:
        out.append((f"{path}.NoncurrentDays", "missing NoncurrentDays; NoncurrentVersionExpiration needs it", ERROR))
    elif nve.noncurrent_days < 1:
        out.append((f"{path}.NoncurrentDays", f"NoncurrentDays is {nve.noncurrent_days}; it must be at least 1", ERROR))
    _check_newer(f"{path}.NewerNoncurrentVersions", nve.newer_noncurrent_versions, out)


def _check_order(path: str, steps: list[Step], unit: str, out: list[Finding]) -> None:
    """Transitions sorted by time must go down the waterfall, each strictly later.

    Only steps of the same kind compare (days with days, dates with dates).
    """
    known: dict[str, int | dt.datetime] = {}
    for cls, at in steps:
        if cls in _RANK and at is not None:
            known.setdefault(cls, at)  # a class given twice is reported on its own
    if len(known) < 2:
        return
    if "ONEZONE_IA" in known and "GLACIER_IR" in known:
        one_zone, instant = known["ONEZONE_IA"], known["GLACIER_IR"]
        if type(one_zone) is type(instant) and one_zone < instant:  # type: ignore[operator]
            out.append(
                (
                    path,
                    "transition from ONEZONE_IA to GLACIER_IR: S3's User Guide lists it as unsupported"
                    " (warning: the documentation does not say whether S3 refuses the configuration)",
                    WARNING,
                )
            )
    for cls_a, cls_b in itertools.pairwise(sorted(known, key=_RANK.__getitem__)):
        at_a, at_b = known[cls_a], known[cls_b]
        if type(at_a) is type(at_b):
            _check_pair(path, (cls_a, at_a), (cls_b, at_b), unit, out)


def _check_pair(
    path: str, a: tuple[str, int | dt.datetime], b: tuple[str, int | dt.datetime], unit: str, out: list[Finding]
) -> None:
    """Two transitions next to each other in the waterfall, ``a`` above ``b``, timed alike."""
    (cls_a, at_a), (cls_b, at_b) = a, b
    if at_b < at_a:  # type: ignore[operator]
        out.append(
            (
                path,
                f"transition to {cls_b} ({_show(at_b)}) comes before the transition to {cls_a} ({_show(at_a)});"
                f" S3 moves objects only down the order {' > '.join(STORAGE_CLASSES)}",
                ERROR,
            )
        )
    elif at_b == at_a:
        out.append(
            (
                path,
                f"transitions to {cls_a} and {cls_b} share the same {unit} ({_show(at_a)}); give the"
                f" later class a later time (warning: S3's documentation is unclear whether it accepts this)",
                WARNING,
            )
        )
    elif isinstance(at_a, int) and isinstance(at_b, int) and cls_a in _MIN_DAYS_30 and at_b - at_a < 30:
        out.append(
            (
                path,
                f"transition to {cls_b} comes {at_b - at_a} days after the transition to {cls_a}; S3 bills"
                f" {cls_a} for at least 30 days and may refuse a shorter stay (warning)",
                WARNING,
            )
        )


def _allowing(storage_class: str, storage_classes: Collection[str]) -> str:
    """``LCC_STORAGE_CLASSES``'s value that would allow ``storage_class`` too (the name shown
    as it prints: a value with a control character in it is refused there as well)."""
    return ",".join((*sorted(storage_classes), shown(storage_class).strip("'\"")))


def _show(at: object) -> str:
    if isinstance(at, dt.datetime):
        return at.date().isoformat()
    return f"day {at}"
