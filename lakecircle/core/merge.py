"""Merge the buckets of several definition files: a bucket's rules are the union of its files'.

Several files may name the same bucket (ARCHITECTURE.md, "Code map", core). Their rules are
added up in file order, and the settings a bucket has once (its
TransitionDefaultMinimumObjectSize, its Ownership, its Accounts and AccountTags) must agree
across the files.
"""

from __future__ import annotations

from collections.abc import Iterable

from lakecircle.core.model import BucketDefinition, LifecycleConfig
from lakecircle.core.parse import ParsedFile
from lakecircle.core.problems import Problem


def merge(files: Iterable[ParsedFile]) -> tuple[dict[str, BucketDefinition], list[Problem]]:
    """Merge the buckets of several files: a bucket's rules are the union of its files'.

    Two different TransitionDefaultMinimumObjectSize or Ownership values are a problem
    naming both files. (Duplicate rule IDs are reported by
    :func:`lakecircle.core.validate.bucket.validate_bucket`, which sees the merged bucket
    and the file of each rule.)

    Incomplete buckets (see :class:`~lakecircle.core.parse.ParsedFile`) are merged too, so
    that validation sees every rule that could be read; their parse problems keep them
    from being applied.
    """
    merged: dict[str, BucketDefinition] = {}
    tdmos_file: dict[str, str] = {}
    problems: list[Problem] = []
    for parsed in files:
        for bucket in (*parsed.buckets, *parsed.incomplete):
            value = bucket.config.transition_default_minimum_object_size
            seen = merged.get(bucket.name)
            if seen is None:
                merged[bucket.name] = bucket
                if value is not None:
                    tdmos_file[bucket.name] = bucket.files[0]
                continue
            kept = seen.config.transition_default_minimum_object_size
            if value is not None and kept is None:
                tdmos_file[bucket.name] = bucket.files[0]
            elif value is not None and kept is not None and value != kept:
                problems.append(
                    _disagree(bucket, "TransitionDefaultMinimumObjectSize", value, kept, tdmos_file[bucket.name])
                )
            if bucket.ownership is not None and seen.ownership is not None and bucket.ownership != seen.ownership:
                problems.append(_disagree(bucket, "Ownership", bucket.ownership, seen.ownership, ", ".join(seen.files)))
            if bucket.scope != seen.scope:
                problems.append(_other_accounts(bucket, seen))
            merged[bucket.name] = _merge_two(seen, bucket)
    return merged, problems


def _disagree(bucket: BucketDefinition, key: str, value: str, kept: str, where: str) -> Problem:
    """A setting the bucket has once, given one value in this file and another ``where``."""
    return Problem(
        bucket.files[0],
        f"{key} is {value!r} here but {kept!r} in {where}; give the bucket one value",
        bucket=bucket.name,
        field=key,
    )


def _other_accounts(bucket: BucketDefinition, seen: BucketDefinition) -> Problem:
    """Two files that define one bucket for different accounts.

    A bucket lives in one account, and an exact definition's ``Accounts`` and ``AccountTags``
    say where it may be written; two files that disagree leave that unknown, so the bucket
    is invalid (never written) until they agree, absent counting as "every account".
    """
    key = "Accounts" if bucket.scope.accounts != seen.scope.accounts else "AccountTags"
    return Problem(
        bucket.files[0],
        f"this file gives the bucket {bucket.scope.describe()}, but {', '.join(seen.files)} gives it"
        f" {seen.scope.describe()}; a bucket is in one account: give it the same Accounts and AccountTags"
        " in every file that defines it (or none in all of them)",
        bucket=bucket.name,
        field=key,
    )


def _merge_two(a: BucketDefinition, b: BucketDefinition) -> BucketDefinition:
    tdmos_a = a.config.transition_default_minimum_object_size
    tdmos_b = b.config.transition_default_minimum_object_size
    return BucketDefinition(
        a.name,
        LifecycleConfig(a.config.rules + b.config.rules, tdmos_a if tdmos_a is not None else tdmos_b),
        tuple(dict.fromkeys(a.files + b.files)),
        a.rule_files + b.rule_files,
        a.ownership if a.ownership is not None else b.ownership,
        a.scope,
    )
