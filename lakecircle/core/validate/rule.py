"""The checks of one rule: its ID and status, its form, and that it does something.

The filter's and the actions' own checks are in :mod:`~lakecircle.core.validate.filters`
and :mod:`~lakecircle.core.validate.actions`; this module calls them in the order of the
numbered constraints, so a rule's findings always come in the same order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from lakecircle.core.model import RULE_STATUSES, Rule
from lakecircle.core.problems import shown, suggest
from lakecircle.core.validate.actions import check_day_limits, check_expiration, check_noncurrent, check_transitions
from lakecircle.core.validate.filters import check_filter, check_size_limits, filters_tags_or_size
from lakecircle.core.validate.findings import ERROR, MAX_ID_LENGTH, Finding, check_text

NO_ACTION_FIELD = "(actions)"
"""The field named by the "rule has no action" problem: no single key is at fault."""

_PREFIX_ONLY = "cannot be used with a tag or object-size filter; put it in a rule filtered by prefix only"


def check_rule(rule: Rule, storage_classes: Collection[str] = ()) -> Iterator[Finding]:
    """The problems of one rule, as (field, message, severity); ``storage_classes`` are
    transition targets the server has beside S3's own (names only, no rules of S3's)."""
    yield from rule_findings(rule, storage_classes)


def rule_findings(rule: Rule, storage_classes: Collection[str] = ()) -> list[Finding]:
    """:func:`check_rule`'s findings as a list (empty for a valid rule)."""
    out: list[Finding] = []
    _check_id(rule, out)
    if rule.prefix is not None and not rule.prefix.isprintable():
        check_text("Prefix", "Prefix", rule.prefix, out)

    check_day_limits(rule, out)
    flt = rule.filter
    if flt is not None:
        check_size_limits(flt, out)

    # 2. Status exactly Enabled or Disabled.
    if rule.status not in RULE_STATUSES:
        hint = suggest(rule.status, RULE_STATUSES)
        out.append(("Status", f"Status {shown(rule.status)} must be exactly 'Enabled' or 'Disabled'{hint}", ERROR))

    # 3. A Filter or a legacy Prefix, not both.
    if flt is not None:
        if rule.prefix is not None:
            out.append(
                ("Prefix", "a rule has either Filter or the legacy Prefix, not both; move Prefix into Filter", ERROR)
            )
        check_filter(flt, out)

    # 6. At least one action.
    _check_some_action(rule, out)
    if rule.expiration is not None:
        check_expiration(rule.expiration, out)
    check_transitions(rule, out, storage_classes)
    if rule.noncurrent_version_expiration is not None or rule.noncurrent_version_transitions:
        check_noncurrent(rule, out, storage_classes)
    _check_abort(rule, out)
    return out


def _check_id(rule: Rule, out: list[Finding]) -> None:
    rule_id = rule.id
    if rule_id is None:
        out.append(("ID", "missing rule ID; every rule needs an ID (its identity in plans and history)", ERROR))
        return
    if not 1 <= len(rule_id) <= MAX_ID_LENGTH:
        out.append(("ID", f"rule ID is {len(rule_id)} characters; S3 allows 1 to {MAX_ID_LENGTH}", ERROR))
    if not rule_id.isprintable():
        check_text("ID", "rule ID", rule_id, out)


def _check_some_action(rule: Rule, out: list[Finding]) -> None:
    if not (
        rule.expiration
        or rule.transitions
        or rule.noncurrent_version_expiration
        or rule.noncurrent_version_transitions
        or rule.abort_incomplete_multipart_upload
    ):
        out.append(
            (
                NO_ACTION_FIELD,
                "rule has no action; add Expiration, Transitions, NoncurrentVersionExpiration,"
                " NoncurrentVersionTransitions or AbortIncompleteMultipartUpload",
                ERROR,
            )
        )


def _check_abort(rule: Rule, out: list[Finding]) -> None:
    abort, expiration = rule.abort_incomplete_multipart_upload, rule.expiration
    # 11. AbortIncompleteMultipartUpload.DaysAfterInitiation at least 1.
    if abort is not None:
        path = "AbortIncompleteMultipartUpload.DaysAfterInitiation"
        if abort.days_after_initiation is None:
            out.append((path, "missing DaysAfterInitiation", ERROR))
        elif abort.days_after_initiation < 1:
            message = f"DaysAfterInitiation is {abort.days_after_initiation}; it must be at least 1"
            out.append((path, message, ERROR))

    # 12. No AbortIncompleteMultipartUpload / ExpiredObjectDeleteMarker with tag or size filters.
    if (abort is not None or expiration is not None) and filters_tags_or_size(rule.filter):
        if abort is not None:
            out.append(("AbortIncompleteMultipartUpload", f"AbortIncompleteMultipartUpload {_PREFIX_ONLY}", ERROR))
        if expiration is not None and expiration.expired_object_delete_marker:
            out.append(("Expiration.ExpiredObjectDeleteMarker", f"ExpiredObjectDeleteMarker {_PREFIX_ONLY}", ERROR))
