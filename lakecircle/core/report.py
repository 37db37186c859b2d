"""What a cycle did, as values: the bucket states, the guards, and the cycle report.

A cycle returns one :class:`CycleReport`; the metrics, the log lines, the ``log/``
record and a command's exit code are all derived from it, so they cannot disagree
(ARCHITECTURE.md, "Observability"). The closed sets of names a report carries (states,
guards, triggers, stages) are StrEnums whose values are the metric labels, the JSON
fields and the log fields, and never change. The module is pure: the service and the
commands read reports without importing the engine that makes them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lakecircle.core.definitions import Definitions
from lakecircle.core.fleet_warnings import SelectorWarning
from lakecircle.core.plan import Action, BucketPlan


class BucketState(StrEnum):
    IN_SYNC = "in_sync"
    CHANGED = "changed"
    """Written this cycle."""
    DRIFTED = "drifted"
    """Differs from its definition and was not written (a dry run)."""
    MISSING = "missing"
    """Defined, but not in the account."""
    INVALID = "invalid"
    """Its definition has errors: skipped."""
    FAILED = "failed"
    PROPAGATING = "propagating"
    """Just written; S3 still answers with what it held before. Not written again."""
    DIVERGING = "diverging"
    """Still not what LakeCircle wrote after the settle window: rewritten only with backoff."""
    UNSUPPORTED = "unsupported"
    """Its live rules hold a field LakeCircle does not know (S3 adds fields over time): its
    error names the field and the rule; never written, as a write would drop the field."""
    UNMANAGED = "unmanaged"
    """In the account, and no definition selects it: never read, never written, counted
    (``CycleReport.counts``) without a result of its own."""


class Guard(StrEnum):
    """A guard that holds back a cycle's removals (ARCHITECTURE.md, "Safety")."""

    PARTIAL_DEFINITIONS = "partial_definitions"
    """A definition file could not be read: the picture is partial, nothing is removed."""
    BLAST_RADIUS = "blast_radius"
    """More removals planned than ``LCC_MAX_REMOVALS``: none is made until a person allows it."""
    UNKNOWN_TOTAL = "unknown_total"
    """The account's bucket listing failed part way, or a bucket could not be read for a
    reason that may pass (throttling, a server error, the network): the cycle's total of
    removals is unknown, so the removals that waited for it are not made. (A bucket whose
    read is refused for good, access denied or gone, cannot be written in any cycle and
    does not count.)"""


class Trigger(StrEnum):
    """What started a cycle: the ``trigger`` of its report, log line and metric series."""

    STARTUP = "startup"
    """The daemon's first cycle."""
    POLL = "poll"
    """A poll found the definitions changed (or a file that had failed now reads)."""
    RESYNC = "resync"
    """The daemon's resync interval passed."""
    SIGNAL = "signal"
    """SIGHUP (or a sync request) asked for a cycle."""
    VERIFY = "verify"
    """Continuous verification: the buckets due, or those an event or a definition change named."""
    MANUAL = "manual"
    """A cycle run without saying why (an embedding program)."""
    PLAN = "plan"
    """``lakecircle plan``."""
    SYNC = "sync"
    """``lakecircle sync``, or the image's one-shot entry point."""
    DEMO = "demo"
    """``lakecircle demo``."""


class Stage(StrEnum):
    """Where a failure happened: a failed bucket's ``stage`` (read, snapshot, write) and the
    ``stage`` label of ``lakecircle_failures_total``."""

    DEFINITIONS = "definitions"
    """A cycle could not list the definitions, or a definition file could not be read."""
    LIST = "list"
    """A cycle could not list the account's buckets."""
    READ = "read"
    """One bucket's lifecycle could not be read."""
    WRITE = "write"
    """One bucket's lifecycle could not be written."""
    SNAPSHOT = "snapshot"
    """A bucket's write-ahead history record could not be written (so the bucket was not)."""
    CYCLE = "cycle"
    """The cycle itself failed: an internal error."""
    POLL = "poll"
    """A poll of the definition prefix failed (S3 unreachable, access refused), retries spent."""


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """A plan in numbers: what reports and metrics need of it."""

    action: Action
    added: int
    removed: int
    changed: int
    held: int = 0
    """Removals a guard held back (the rules stay)."""

    @classmethod
    def of(cls, plan: BucketPlan) -> PlanCounts:
        return cls(plan.action, len(plan.added), len(plan.removed), len(plan.changed), len(plan.held))


@dataclass(frozen=True, slots=True)
class BucketResult:
    bucket: str
    state: BucketState
    plan: BucketPlan | None = None
    """The plan, where the reconciler keeps plans (commands do; the daemon keeps counts)."""
    error: str | None = None
    stage: str | None = None
    """Where a failure happened (a :class:`Stage` value: read, snapshot, write)."""
    dropped: tuple[str, ...] = ()
    """Fields the server did not store although LakeCircle wrote them."""
    external: bool = False
    """The bucket held what LakeCircle wrote and another writer changed it since."""
    guard: str | None = None
    """The guard (a :class:`Guard` value) that held back this bucket's removals."""
    history: str | None = None
    """The key of the change record written before this bucket's write."""
    counts: PlanCounts | None = None
    """The plan's counts (set whenever there was a plan, kept or not)."""

    def __post_init__(self) -> None:
        if self.counts is None and self.plan is not None:
            object.__setattr__(self, "counts", PlanCounts.of(self.plan))

    def without_plan(self) -> BucketResult:
        """The same result holding the plan's counts only."""
        return self if self.plan is None else dataclasses.replace(self, plan=None)


@dataclass(frozen=True, slots=True)
class TagsUnread:
    """A bucket whose tags could not be read for its ``BucketTags`` selectors: planned with
    the definitions that need no tags and none of its rules removed, or failed at the read
    stage when only tag selectors could select it (ARCHITECTURE.md, "Safety", rule 6)."""

    bucket: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"bucket": self.bucket, "error": self.error}


@dataclass(frozen=True, slots=True)
class BucketPicture:
    """The account's managed buckets by state as continuous verification last saw each of them
    (``lakecircle_buckets``), where a cycle verifies a part of the account only."""

    counts: Counter[BucketState]
    dropped: int = 0
    """Buckets whose last write the server did not store whole (``lakecircle_server_dropped_fields``)."""


@dataclass(frozen=True, slots=True)
class CycleReport:
    cycle_id: str
    trigger: str
    """What started the cycle (a :class:`Trigger` value, or a caller's own name)."""
    dry_run: bool
    started_at: float
    duration: float
    results: tuple[BucketResult, ...]
    definitions: Definitions | None
    buckets_listed: int = 0
    fatal: str | None = None
    """Set when the cycle could not run at all (definitions not listable, account unreadable)."""
    counts: Counter[BucketState] = field(default_factory=Counter)
    fingerprint: bytes | None = None
    """The fingerprint of the definition listing this cycle used
    (``listing_fingerprint`` of the engine's loader)."""
    interrupted: bool = False
    """Stopped early by a shutdown: buckets not reached are in no list."""
    guards: tuple[str, ...] = ()
    """Guards (:class:`Guard` values) that held back removals this cycle."""
    removals_planned: int = 0
    """Rule removals the cycle's writes would make without the removal guard (a DELETE
    counts the bucket's rules); held-back removals included."""
    removals_held: int = 0
    """Rule removals held back by a guard (the rules stay)."""
    max_removals: int | None = None
    """The removal limit the cycle ran with (None: a person allowed any number)."""
    in_sync_omitted: int = 0
    """Buckets in sync that are counted but have no entry in ``results`` (a daemon's
    report: an account may hold a million buckets in sync)."""
    unmanaged: tuple[str, ...] = ()
    """The unmanaged buckets' names, sorted, when the reconciler was asked to keep them
    (``plan --show-unmanaged``); otherwise empty, and ``counts`` alone says how many."""
    warnings: tuple[SelectorWarning, ...] = ()
    """Selectors that selected no bucket of the account (only from a cycle that saw the
    whole listing, unlimited by ``LCC_BUCKETS``)."""
    tags_unread: tuple[TagsUnread, ...] = ()
    """The buckets whose tags could not be read, by name."""
    picture: BucketPicture | None = None
    """The whole account's buckets by state, set by the daemon on each cycle when it verifies
    continuously (a cycle may verify a few buckets only); None: ``counts`` is the whole account."""

    @property
    def ok(self) -> bool:
        return self.fatal is None and self.counts[BucketState.FAILED] == 0

    @property
    def failed(self) -> list[BucketResult]:
        return [r for r in self.results if r.state is BucketState.FAILED]

    def _sum(self, attr: str, states: tuple[BucketState, ...]) -> int:
        return sum(getattr(r.counts, attr) for r in self.results if r.counts is not None and r.state in states)

    @property
    def rules_added(self) -> int:
        return self._sum("added", (BucketState.CHANGED,))

    @property
    def rules_removed(self) -> int:
        return self._sum("removed", (BucketState.CHANGED,))

    @property
    def rules_changed(self) -> int:
        return self._sum("changed", (BucketState.CHANGED,))

    @property
    def plans(self) -> list[BucketPlan]:
        """Every bucket's plan; a bucket that is not to be written now shows as NOOP."""
        quiet = (BucketState.IN_SYNC, BucketState.PROPAGATING, BucketState.DIVERGING)
        return [
            r.plan
            if r.state not in quiet or not r.plan.has_changes
            else dataclasses.replace(
                r.plan, action=Action.NOOP, added=(), removed=(), changed=(), tdmos_change=None, held=()
            )
            for r in self.results
            if r.plan is not None
        ]

    @property
    def compared(self) -> int:
        """Managed buckets whose live configuration was read and planned."""
        compared = sum(1 for r in self.results if r.counts is not None or r.state is BucketState.IN_SYNC)
        return compared + self.in_sync_omitted

    @property
    def external_drift(self) -> int:
        return sum(1 for r in self.results if r.external)

    @property
    def writes(self) -> int:
        return self.counts[BucketState.CHANGED]

    @property
    def pending(self) -> int:
        return self.counts[BucketState.DRIFTED]


_WHEN_SOME = (BucketState.UNMANAGED, BucketState.UNSUPPORTED)


def counts_document(counts: Counter[BucketState]) -> dict[str, int]:
    """Each state's count; ``unmanaged`` and ``unsupported`` only when there are some, so that
    a report of buckets all defined and readable reads as it did before those states."""
    return {state.value: counts[state] for state in BucketState if state not in _WHEN_SOME or counts[state]}


def report_document(report: CycleReport) -> dict[str, Any]:
    """The cycle report as JSON-ready data (``log/`` records, ``plan --output json``)."""
    return {
        "cycle_id": report.cycle_id,
        "trigger": report.trigger,
        "dry_run": report.dry_run,
        "started_at": report.started_at,
        "duration_s": round(report.duration, 3),
        "ok": report.ok,
        "fatal": report.fatal,
        "interrupted": report.interrupted,
        "guards": [str(guard) for guard in report.guards],
        "partial_definitions": bool(report.definitions and report.definitions.partial),
        "removals": {
            "planned": report.removals_planned,
            "held": report.removals_held,
            "limit": report.max_removals,
        },
        "unreadable_files": [f.as_dict() for f in report.definitions.unreadable_files] if report.definitions else [],
        "warnings": [warning.as_dict() for warning in report.warnings],
        "tags_unread": [t.as_dict() for t in report.tags_unread],
        "counts": counts_document(report.counts),
        "rules": {"added": report.rules_added, "changed": report.rules_changed, "removed": report.rules_removed},
        "problems": [
            {"bucket": r.bucket, "state": r.state.value, "error": r.error, "stage": r.stage}
            for r in report.results
            if r.error is not None
        ],
        "changes": [
            {
                "bucket": r.bucket,
                "state": r.state.value,
                "history": r.history,
                "external": r.external,
                "held": r.counts.held if r.counts is not None else 0,
            }
            for r in report.results
            if r.state in (BucketState.CHANGED, BucketState.DIVERGING, BucketState.DRIFTED)
        ],
    }
