"""LakeCircle's stored records as values: their documents, their readers, their outcomes.

Every record under ``LCC_ENDPOINT`` (ARCHITECTURE.md, "Records") is read through one of the
documents here, which turn anything that cannot be read (not JSON, not an object,
another format, a configuration the model refuses) into a :class:`RecordError` naming
the key and what is wrong, in one line. What a change record's outcome is, when the
record does not say, is decided by :func:`resolve` from the records that name it.
:mod:`lakecircle.engine.history` writes and lists them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lakecircle.core.drift import config_from_json
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.problems import printable
from lakecircle.errors import LakeCircleError

FORMAT_VERSION = 1


class RecordError(LakeCircleError):
    """A stored record cannot be read: ``key`` names it, ``reason`` says what is wrong."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{printable(key)}: {reason}")


class Outcome(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    NOT_STARTED = "not_started"
    UNKNOWN = "unknown"
    """No outcome recorded: a write still under way, or a process that stopped before it
    could record one."""


def dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, default=str).encode()


def describe(exc: Exception) -> str:
    """What is wrong with a stored record, in one line: no traceback, no repr, no input."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return "not JSON (not UTF-8 text)"
    if isinstance(exc, ValidationError):
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        shown = [f"{'.'.join(str(p) for p in e['loc']) or 'the record'}: {e['msg']}" for e in problems[:3]]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return "; ".join(shown) + more
    return str(exc) or type(exc).__name__


def json_object(key: str, data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(key, describe(exc)) from None
    if not isinstance(document, dict):
        raise RecordError(key, "not a JSON object")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        shown = json.dumps(version)[:40] if version is not None else "none"
        raise RecordError(
            key, f"format_version is {shown}, not {FORMAT_VERSION}: written by another version of LakeCircle"
        )
    return document


def config_of(key: str, side: str, data: dict[str, Any]) -> LifecycleConfig:
    """A configuration stored in the record ``key`` (its ``side``: before, after, config,
    previous); RecordError when the model refuses it."""
    try:
        return config_from_json(data)
    except (ValidationError, ValueError, TypeError, AttributeError) as exc:
        raise RecordError(key, f"{side}: {describe(exc)}") from None


# -- the documents ---------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class OutcomeDocument(_Loose):
    """The outcome a change record states, when it was written again to say one."""

    state: Outcome
    error: str | None = None
    """Why the write failed or never started."""
    time: str | None = None
    """When the outcome was recorded (ISO 8601, UTC)."""


class ChangeDocument(_Loose):
    """A ``history/`` record as stored (fields other versions add are kept, not checked)."""

    format_version: Literal[1]
    kind: str
    """``sync`` for a cycle's write, ``rollback`` for a restore."""
    bucket: str
    time: str
    """When the record was made, before its write (ISO 8601, UTC)."""
    cycle_id: str
    action: Literal["put", "delete"]
    before: dict[str, Any]
    """The bucket's configuration as read before the write (JSON of the model)."""
    after: dict[str, Any]
    """The configuration the write sends (empty for a delete)."""
    plan: dict[str, Any] = Field(default_factory=dict)
    last_applied: str | None = None
    """The key of the bucket's change record applied before this one, as the writer knew it."""
    outcome: OutcomeDocument | None = None
    """Written only for a write that failed or never started (or a rollback, applied)."""


class CurrentDocument(_Loose):
    """A ``current/`` record as stored: what LakeCircle last applied to the bucket."""

    format_version: Literal[1]
    bucket: str
    applied_at: float
    """When the write was made, in seconds since the epoch."""
    history: str | None = None
    """The key of the change record of that write."""
    rewrites: int = 0
    """Writes of the same configuration in a row: a diverging bucket's count."""
    owned_rules: list[str] = Field(default_factory=list)
    """The rule IDs LakeCircle applied, which a shared bucket's LakeCircle may remove."""
    config: dict[str, Any]
    previous: dict[str, Any] | None = None
    """The configuration before that write, which ``rollback`` restores."""


@dataclass(frozen=True, slots=True)
class LeaseStamp:
    """Which lease holder made a write: the ``lease`` of its change and ``current/`` records, so an
    audit can tell the replicas' writes apart (issue 17). Records of a LakeCircle without leases
    have none."""

    holder: str
    """The replica (``LCC_REPLICA_ID``)."""
    epoch: int
    """The lease's epoch the write was started in: every write of epoch N ended before epoch N+1's first."""

    def as_json(self) -> dict[str, Any]:
        return {"holder": self.holder, "epoch": self.epoch}


@dataclass(frozen=True, slots=True)
class Change:
    """A change record: its key and its document (as written before the write)."""

    key: str
    document: dict[str, Any]

    @property
    def bucket(self) -> str:
        return str(self.document["bucket"])


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A change record read back, with the outcome it resolves to."""

    key: str
    document: ChangeDocument
    outcome: Outcome = Outcome.UNKNOWN
    error: str | None = None
    """Why the write failed or never started."""

    def config(self, side: Literal["before", "after"]) -> LifecycleConfig:
        """The configuration before or after the change; RecordError when the model refuses it."""
        return config_of(self.key, side, getattr(self.document, side))

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON data, with its outcome (``history --output json``)."""
        return {
            "key": self.key,
            **self.document.model_dump(mode="json", exclude={"outcome"}),
            "outcome": {"state": self.outcome.value, "error": self.error},
        }


def resolve(records: Sequence[ChangeRecord], current_history: str | None) -> list[ChangeRecord]:
    """Each record with its outcome (pure): explicit where the record says, applied where
    the ``current/`` record or a later change record names it, else unknown."""
    applied = {current_history} | {r.document.last_applied for r in records}
    applied.discard(None)
    out: list[ChangeRecord] = []
    for record in records:
        stated = record.document.outcome
        if stated is not None:
            out.append(ChangeRecord(record.key, record.document, stated.state, stated.error))
        elif record.key in applied:
            out.append(ChangeRecord(record.key, record.document, Outcome.APPLIED))
        else:
            out.append(ChangeRecord(record.key, record.document, Outcome.UNKNOWN))
    return out


@dataclass(frozen=True, slots=True)
class BucketHistory:
    """A bucket's change records, newest first, and the stored records that could not be read."""

    records: list[ChangeRecord]
    current: CurrentDocument | None
    unreadable: list[RecordError] = field(default_factory=list)

    def newest_applied(self) -> ChangeRecord | None:
        return next((r for r in self.records if r.outcome is Outcome.APPLIED), None)
