"""Short fingerprints of lifecycle configurations in canonical form.

Most buckets of an account are in sync most of the time. Keeping every bucket's desired
configuration as models costs about 3 KB per rule, so LakeCircle keeps a 16-byte digest
instead, and compares it with the digest of what S3 answers: equal digests mean equal
canonical forms (:func:`lakecircle.core.normalize.canonical_key`), so the bucket needs no
plan. Any difference, even one the plan would call no change, only sends the bucket
down the full path: a digest never decides that a bucket differs.

Pure: values in, bytes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.normalize import canonical_key

Digest = bytes
"""16 bytes of BLAKE2b over the canonical form."""


def _digest(rules: Iterable[Rule], *extra: str) -> Digest:
    keys = sorted(repr(canonical_key(rule)) for rule in rules)
    return hashlib.blake2b("\n".join((*keys, *extra)).encode(), digest_size=16).digest()


def rules_digest(rules: Iterable[Rule]) -> Digest:
    """The rules as a set of canonical rules (order does not matter; IDs do)."""
    return _digest(rules)


def config_digest(config: LifecycleConfig) -> Digest:
    """The rules and the minimum object size: equal exactly when the canonical forms are."""
    return _digest(config.rules, repr(config.transition_default_minimum_object_size))


def in_sync(desired_rules: Digest, desired_tdmos: str | None, live: LifecycleConfig) -> bool:
    """True when a bucket whose definitions have this digest needs no write: the rules
    are the same canonical set, and the minimum object size is not defined differently.

    Equivalent to :func:`lakecircle.core.plan.plan_bucket` answering NOOP, except that it may
    answer False where the plan would find nothing to do (a bucket without any rules
    defined or live); it never answers True where the plan would write.
    """
    if not live.rules:
        return False
    tdmos = live.transition_default_minimum_object_size
    if desired_tdmos is not None and tdmos is not None and desired_tdmos != tdmos:
        return False
    return rules_digest(live.rules) == desired_rules
