"""The narrower grammar of a directory bucket's lifecycle rules (S3 Express One Zone).

A directory bucket's lifecycle expires objects by age and aborts incomplete multipart
uploads, and nothing else (S3 User Guide, "Working with S3 Lifecycle for directory
buckets"): it has one storage class, so no transitions; no versioning, so no noncurrent
actions and no delete markers; and its objects carry no tags. A rule filters by prefix and
by object size (``Filter.Prefix``, ``Filter.ObjectSize*`` and ``And`` of them). Everything
else passes the general checks and fails at S3 after every retry, or worse, a transition
on such a bucket used to pass validation: each is named here with what to write instead.

``TransitionDefaultMinimumObjectSize`` applies to transitions, which these buckets have
not, and the legacy rule-level ``Prefix`` is outside the documented grammar: both are
refused too, the second with the ``Filter`` form that says the same.
"""

from __future__ import annotations

from lakecircle.core.model import Rule
from lakecircle.core.validate.findings import ERROR, Finding

_WHY = "directory buckets (S3 Express One Zone)"


def directory_rule_findings(rule: Rule) -> list[Finding]:
    """What a directory bucket refuses in ``rule``, one finding per field (empty for a rule it takes)."""
    out: list[Finding] = []
    if rule.prefix is not None:
        out.append(
            (
                "Prefix",
                f"{_WHY} take the Filter form only; write Filter = {{ Prefix = {rule.prefix!r} }}"
                " instead of the legacy rule-level Prefix",
                ERROR,
            )
        )
    flt = rule.filter
    if flt is not None and flt.tag is not None:
        out.append(("Filter.Tag", f"{_WHY} filter by prefix and object size only; remove the tag filter", ERROR))
    if flt is not None and flt.and_ is not None and flt.and_.tags:
        out.append(("Filter.And.Tags", f"{_WHY} filter by prefix and object size only; remove Tags from And", ERROR))
    expiration = rule.expiration
    if expiration is not None and expiration.date is not None:
        out.append(
            (
                "Expiration.Date",
                f"{_WHY} expire objects by age only; write Expiration = {{ Days = N }} instead of a Date",
                ERROR,
            )
        )
    if expiration is not None and expiration.expired_object_delete_marker is not None:
        out.append(
            (
                "Expiration.ExpiredObjectDeleteMarker",
                f"{_WHY} have no versioning and so no delete markers; remove ExpiredObjectDeleteMarker",
                ERROR,
            )
        )
    if rule.transitions:
        out.append(
            (
                "Transitions",
                f"{_WHY} keep objects in one storage class and refuse transitions; remove Transitions"
                " (expire objects with Expiration = { Days = N } instead)",
                ERROR,
            )
        )
    if rule.noncurrent_version_expiration is not None:
        out.append(
            (
                "NoncurrentVersionExpiration",
                f"{_WHY} have no versioning, so no noncurrent versions; remove NoncurrentVersionExpiration",
                ERROR,
            )
        )
    if rule.noncurrent_version_transitions:
        out.append(
            (
                "NoncurrentVersionTransitions",
                f"{_WHY} have no versioning, so no noncurrent versions; remove NoncurrentVersionTransitions",
                ERROR,
            )
        )
    return out


TDMOS_REFUSED = (
    f"{_WHY} have no transitions, and S3 takes no TransitionDefaultMinimumObjectSize for them;"
    " remove it from this bucket's definition"
)
"""The problem of a directory bucket's definition that sets TransitionDefaultMinimumObjectSize."""
