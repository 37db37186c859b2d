"""What a difference between a bucket and its definition means, once LakeCircle wrote it.

After a write S3 may go on answering with the old configuration (or none) for a while:
the bucket is *propagating*, and writing again would only fight S3's own consistency.
A bucket that still differs after the settle window is *diverging* (a server that drops
fields it does not support, or another writer reverting it at once): it is rewritten
only with a doubling backoff, never every cycle. A bucket that did hold what LakeCircle
wrote and changed later was changed by *another writer*: that is corrected at once.

A server's dropping is recognised when every field the live rule has, the desired rule
has with the same value, and nothing but fields are missing (no rule added or removed).
All of it is pure: the record of the last write and the clock's reading come in as values.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakecircle.core.digest import Digest, config_digest
from lakecircle.core.model import LifecycleConfig, Rule, config_from_response
from lakecircle.core.normalize import canonical_rule
from lakecircle.core.plan import Action, BucketPlan, flatten
from lakecircle.core.render import config_json


def config_from_json(document: dict[str, Any]) -> LifecycleConfig:
    """A configuration from its JSON wire data (as :func:`~lakecircle.core.render.config_json` writes it)."""
    return config_from_response({k: v for k, v in document.items() if v is not None})


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


# -- after a write: propagating, diverging, or drift by another writer ----------------------

MAX_BACKOFF = 24 * 3600.0
"""The longest wait between two rewrites of a bucket that does not keep what it was sent."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What LakeCircle last wrote to a bucket: its ``current/`` record.

    A daemon keeps one per bucket it ever wrote, so the configurations are kept as
    digests (16 bytes, :mod:`lakecircle.core.digest`) and the one before the write as
    compressed JSON (for the next ``current/`` record), not as models.
    """

    config: Digest
    """The digest of the configuration written (:func:`~lakecircle.core.digest.config_digest`)."""
    previous: Digest
    """The digest of the configuration the bucket held before."""
    at: float
    """Unix time of the write."""
    rewrites: int = 0
    """Rewrites of this same configuration because the bucket diverged from it."""
    confirmed: bool = False
    """A read has shown the bucket holding it since the write."""
    owned: tuple[str, ...] = ()
    """IDs of the rules LakeCircle wrote from the definitions (not the foreign rules it
    kept): the rules a shared bucket's LakeCircle may remove later."""
    previous_document: bytes = b""
    """The configuration before, as zlib-compressed JSON wire data (empty: none)."""
    history: str | None = None
    """The key of the change record of the write (None: not known, an older record).
    The next change record names it, so that it still reads as applied once
    ``current/`` has moved on (:mod:`lakecircle.engine.history`)."""

    @classmethod
    def of(
        cls,
        config: LifecycleConfig,
        previous: LifecycleConfig | dict[str, Any],
        at: float,
        *,
        rewrites: int = 0,
        confirmed: bool = False,
        owned: tuple[str, ...] = (),
        history: str | None = None,
    ) -> Applied:
        """The record of writing ``config`` over ``previous`` (a configuration, or its JSON)."""
        if isinstance(previous, LifecycleConfig):
            document = config_json(previous)
            digest = config_digest(previous)
        else:
            document = previous
            digest = config_digest(config_from_json(previous))
        packed = zlib.compress(json.dumps(document, sort_keys=True, default=str).encode())
        return cls(config_digest(config), digest, at, rewrites, confirmed, owned, packed, history)

    def previous_json(self) -> dict[str, Any]:
        """The configuration before the write, as JSON wire data."""
        if not self.previous_document:
            return config_json(LifecycleConfig())
        document: dict[str, Any] = json.loads(zlib.decompress(self.previous_document))
        return document


class Verdict(StrEnum):
    WRITE = "write"
    """Nothing LakeCircle wrote explains the difference: the definitions changed, or
    LakeCircle never wrote this bucket."""
    EXTERNAL_DRIFT = "external_drift"
    """The bucket held what LakeCircle wrote, and someone changed it since: correct it."""
    PROPAGATING = "propagating"
    """Just written, still reading back what it held before: wait, do not write."""
    DIVERGING_WAIT = "diverging_wait"
    """Still not what LakeCircle wrote, past the settle window: wait for the backoff."""
    DIVERGING_WRITE = "diverging_write"
    """Still not what LakeCircle wrote, and the backoff has passed: write once more."""


def judge(plan: BucketPlan, record: Applied | None, *, now: float, settle: float) -> Verdict:
    """What a differing bucket means, given what LakeCircle last wrote to it (pure).

    - Not what LakeCircle last wrote for these definitions (or never written): WRITE.
    - Within the settle window, answering with its old rules or none, and never yet
      read holding the write: PROPAGATING.
    - Someone else's rules (the old ones or none included, once a read has confirmed
      the write), the first time since LakeCircle's write or after the bucket had held
      that write: EXTERNAL_DRIFT, corrected at once.
    - Otherwise (a server that keeps dropping fields, or a writer that reverts every
      correction): DIVERGING, rewritten only once the doubling backoff has passed.
    """
    if record is None or record.config != config_digest(plan.desired):
        return Verdict.WRITE
    elapsed = now - record.at
    live = plan.live
    if not record.confirmed and elapsed < settle and (not live.rules or config_digest(live) == record.previous):
        return Verdict.PROPAGATING
    if server_dropped(plan) is None and (record.confirmed or record.rewrites == 0):
        return Verdict.EXTERNAL_DRIFT
    if elapsed >= backoff(record.rewrites, settle):
        return Verdict.DIVERGING_WRITE
    return Verdict.DIVERGING_WAIT


def backoff(rewrites: int, settle: float) -> float:
    """Seconds after a write before a diverging bucket is written again: doubling, capped."""
    return min(settle * float(2 ** min(rewrites, 32)), MAX_BACKOFF)
