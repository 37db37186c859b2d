"""Overlapping prefixes in the legacy rule-level ``Prefix`` form, which S3 refuses.

In the legacy form (a rule's own ``Prefix``, no ``Filter``), S3 refuses two rules whose
prefixes overlap (one starts with the other; ``""`` overlaps every prefix) when both take
an action of the same type: "Found overlapping prefixes 'logs' and '' for same action
type 'Expiration'". Rules written with ``Filter`` may overlap freely (the S3 user guide's
lifecycle examples, "Overlapping prefixes (no conflict)"): S3 then applies the cheaper
action. The action types are the rule's actions: Expiration (by days, by date or of
expired delete markers), Transition, NoncurrentVersionExpiration,
NoncurrentVersionTransition and AbortIncompleteMultipartUpload. Disabled rules count:
S3 checks the document it is sent, whatever a rule's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakecircle.core.model import Rule


@dataclass(frozen=True, slots=True)
class Overlap:
    """Rule ``later``'s prefix starts with rule ``earlier``'s (indexes into the rules), and
    both take an action of type ``action``."""

    earlier: int
    later: int
    action: str


def _action_types(rule: Rule) -> list[str]:
    expiration = rule.expiration
    types = []
    if expiration is not None and (
        expiration.days is not None or expiration.date is not None or expiration.expired_object_delete_marker
    ):
        types.append("Expiration")
    if rule.transitions:
        types.append("Transition")
    if rule.noncurrent_version_expiration is not None:
        types.append("NoncurrentVersionExpiration")
    if rule.noncurrent_version_transitions:
        types.append("NoncurrentVersionTransition")
    if rule.abort_incomplete_multipart_upload is not None:
        types.append("AbortIncompleteMultipartUpload")
    return types


def overlapping_prefixes(rules: Sequence[Rule]) -> list[Overlap]:
    """Each legacy-form rule S3 would refuse, once per action type, against the longest
    prefix of another rule it starts with (of those before it, for equal prefixes).

    Sorted by prefix, every prefix comes after the prefixes it starts with: a stack of the
    ones the current prefix starts with is all the walk keeps, so a thousand rules cost a
    sort, never a million comparisons.
    """
    by_type: dict[str, list[tuple[str, int]]] = {}
    for index, rule in enumerate(rules):
        if rule.filter is None and rule.prefix is not None:
            for action in _action_types(rule):
                by_type.setdefault(action, []).append((rule.prefix, index))
    found = []
    for action, prefixes in by_type.items():
        prefixes.sort()
        enclosing: list[tuple[str, int]] = []
        for prefix, index in prefixes:
            while enclosing and not prefix.startswith(enclosing[-1][0]):
                enclosing.pop()
            if enclosing:
                found.append(Overlap(enclosing[-1][1], index, action))
            enclosing.append((prefix, index))
    return found
