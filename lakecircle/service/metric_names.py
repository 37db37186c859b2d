"""The names of LakeCircle's metrics, their labels' values and HELP texts: a contract.

Dashboards (``grafana/``), alerts (``deploy/prometheus/``) and users' queries rely on what
this module names, and the README's metrics table says the same in short
(ARCHITECTURE.md, "Observability"). It also holds how a cycle report or an S3 error is
named by a label (:func:`cycle_result`, :func:`outcome_of`, ...), so no other module
speaks in label values. :mod:`lakecircle.service.metrics` makes the collectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from lakecircle import errors
from lakecircle.core.events import EventKind, EventResult
from lakecircle.core.lease import Transition
from lakecircle.core.report import BucketState, Guard, Stage, Trigger

if TYPE_CHECKING:
    from lakecircle.core.report import CycleReport

SUCCESS: Final = "success"
PARTIAL: Final = "partial"
FAILURE: Final = "failure"
RESULTS: Final = (SUCCESS, PARTIAL, FAILURE)

TRIGGERS: Final = tuple(
    trigger.value
    for trigger in (Trigger.STARTUP, Trigger.POLL, Trigger.RESYNC, Trigger.SIGNAL, Trigger.VERIFY, Trigger.MANUAL)
)
"""Cycle triggers whose series exist from the start (the daemon's, and an embedding
program's ``manual``); another trigger gets its own series."""

STAGES: Final = tuple(s.value for s in Stage)

BUCKET_STATES: Final = tuple(state.value for state in BucketState)

GUARDS: Final = tuple(guard.value for guard in Guard)

OUTCOMES: Final = ("success", "throttled", "server_error", "connection", "denied", "not_found", "invalid", "error")
"""The values of the ``outcome`` label of ``lakecircle_s3_requests_total``."""

RETRY_REASONS: Final = ("throttled", "server_error", "connection")
"""The values of the ``reason`` label of ``lakecircle_s3_retries_total``."""

LEASE_REASONS: Final = tuple(transition.value for transition in Transition)
"""The values of the ``reason`` label of ``lakecircle_lease_transitions_total``, all counted from 0."""

EVENT_KINDS: Final = tuple(kind.value for kind in EventKind)
"""The values of the ``kind`` label of ``lakecircle_events_total``."""

EVENT_RESULTS: Final = tuple(result.value for result in EventResult)
"""The values of the ``result`` label of ``lakecircle_events_total``."""

ACCOUNT: Final = "account"
"""The label a hub adds to the series of :data:`ACCOUNT_LABELLED`: the member account's ID ("" for the hub's own)."""

ACCOUNT_STATES: Final = ("managed", "failed", "skipped")
"""The values of the ``state`` label of ``lakecircle_accounts``: the last cycle worked in the
account; it could not (the account's role, its identity check or its bucket listing
failed); the account was listed but left out (``LCC_ACCOUNT_FILTER``)."""


def outcome_of(exc: BaseException | None) -> str:
    """The ``outcome`` label of a request that raised ``exc`` (None: it succeeded)."""
    if exc is None:
        return "success"
    if isinstance(exc, errors.TransientError):
        return reason_of(exc)
    if isinstance(exc, errors.AccessDenied):
        return "denied"
    if isinstance(exc, errors.NoSuchBucket | errors.NotFound) or (
        isinstance(exc, errors.S3Error) and exc.status == 404
    ):
        return "not_found"
    if isinstance(exc, errors.InvalidRequest):
        return "invalid"
    return "error"


def reason_of(exc: errors.TransientError) -> str:
    """The ``reason`` label of a retry after ``exc``."""
    if isinstance(exc, errors.Throttled):
        return "throttled"
    if isinstance(exc, errors.ConnectionFailed):
        return "connection"
    return "server_error"


CYCLE_BUCKETS: Final = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
"""Cycle durations: half a second (a few buckets) to an hour (a large account under a rate limit)."""

S3_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""S3 request durations: 5 ms to a minute, as controller-runtime's reconcile histogram."""


def cycle_result(report: CycleReport) -> str:
    """``failure`` when the cycle could not run, ``partial`` when some of it failed, else ``success``.

    A cycle is partial when a bucket failed or when a definition file could not be read
    (then the cycle removes no rules anywhere). Invalid definitions and missing buckets
    are not failures of the cycle: they have gauges of their own.
    """
    if report.fatal is not None:
        return FAILURE
    if (report.definitions is not None and report.definitions.partial) or report.failed:
        return PARTIAL
    return SUCCESS


def fatal_stage(report: CycleReport) -> Stage:
    """The stage a fatal cycle failed at: without definitions the loader failed, else the bucket listing."""
    return Stage.DEFINITIONS if report.definitions is None else Stage.LIST


def tripped_guards(report: CycleReport) -> list[str]:
    """The guards that held something back in this cycle, as the report records them
    (blast_radius: the cycle planned more removals than ``LCC_MAX_REMOVALS`` and made none)."""
    return [str(guard) for guard in report.guards]


HELP: Final[Mapping[str, str]] = {
    "lakecircle_rules_added_total": "Lifecycle rules added to buckets by writes that succeeded.",
    "lakecircle_rules_removed_total": (
        "Lifecycle rules removed from buckets by writes that succeeded (a DELETE counts each rule)."
    ),
    "lakecircle_rules_changed_total": "Lifecycle rules changed in place (same ID) by writes that succeeded.",
    "lakecircle_failures_total": (
        "Failures by stage: definitions (a file unreadable or not listable), list (the account's buckets), "
        "read or write (one bucket's lifecycle), snapshot (its history record), cycle (an internal error), "
        "poll (a poll of the definition prefix)."
    ),
    "lakecircle_cycles_total": "Reconcile cycles by what triggered them and their result (success, partial, failure).",
    "lakecircle_cycle_duration_seconds": "Duration of reconcile cycles, whatever their result.",
    "lakecircle_last_success_timestamp_seconds": (
        "Unix time at which the last cycle with result success finished; 0 before the first."
    ),
    "lakecircle_buckets": (
        "Managed buckets by state in the last cycle that ran (in_sync, changed, drifted, missing, invalid, "
        "failed, propagating, diverging, unsupported)."
    ),
    "lakecircle_definition_files": "Definition files read in the last cycle that loaded them.",
    "lakecircle_definition_errors": (
        "Errors found in the definitions in the last cycle that loaded them (warnings not counted)."
    ),
    "lakecircle_partial_definitions": (
        "1 when a definition file could not be read or parsed in the last cycle, so it removed no rules; else 0."
    ),
    "lakecircle_definition_files_unreadable": (
        "Definition files that could not be read or parsed in the last cycle that loaded them"
        " (the cycle's definitions_partial log line names each with its reason)."
    ),
    "lakecircle_guard_trips_total": (
        "Cycles in which a safety guard held back changes: partial_definitions (no removals while a "
        "definition file is unreadable), blast_radius (more removals planned than LCC_MAX_REMOVALS: none made)."
    ),
    "lakecircle_external_drift_total": "Buckets found changed by another writer after they held what LakeCircle wrote.",
    "lakecircle_server_dropped_fields": (
        "Buckets whose S3 server did not store some fields LakeCircle wrote, in the last cycle that ran."
    ),
    "lakecircle_s3_requests_total": "S3 (and STS) requests by API operation and outcome, each attempt counted.",
    "lakecircle_s3_request_duration_seconds": (
        "Duration of S3 (and STS) requests by API operation, each attempt observed."
    ),
    "lakecircle_s3_retries_total": "S3 (and STS) requests retried, by API operation and the reason for the retry.",
    "lakecircle_s3_request_rate_limit": (
        "Requests per second the throttle gate allows now: lowered when S3 throttles, raised 5%"
        " per second without throttling, never above LCC_MAX_REQUESTS_PER_SECOND; 0 means no limit."
    ),
    "lakecircle_verification_lag_seconds": (
        "How far behind its schedule continuous verification is: seconds since the oldest bucket not yet"
        " verified again was due (0: every bucket verified within LCC_RESYNC_INTERVAL)."
    ),
    "lakecircle_info": (
        "LakeCircle's version, its actions mode (SYNC or DRYRUN) and the account it manages; always 1."
    ),
}
"""Each metric's HELP text (the README's metrics table says the same in short)."""

LEASE_HELP: Final[Mapping[str, str]] = {
    "lakecircle_leases_held": (
        "1 while this replica holds the account's lease and may write its buckets; 0 while another replica"
        " holds it or none does (a standby replica). Only with leases on (LCC_LEASE_SECONDS above 0)."
    ),
    "lakecircle_lease_transitions_total": (
        "Changes in this replica's hold on the account's lease: acquired (a free lease), renewed, lost (it"
        " expired or another replica took it), released (given up, as at shutdown), taken_over (over another"
        " replica's expired lease). Only with leases on (LCC_LEASE_SECONDS above 0)."
    ),
}
"""The HELP texts of the lease metrics, exposed when leases are on (after those of :data:`HELP`, but
before a hub's own and ``lakecircle_info``)."""

EVENTS_HELP: Final[Mapping[str, str]] = {
    "lakecircle_events_total": (
        "Messages of the events queue (LCC_EVENTS_QUEUE) by kind (bucket: a CloudTrail call on a bucket;"
        " definitions: an S3 notification of the definitions; unknown; malformed) and result (handled: its"
        " work handed over and the message deleted; ignored: nothing to do, deleted; failed: its work could"
        " not be handed over, left in the queue to come again). Only with events on."
    ),
    "lakecircle_events_queue_readable": (
        "1 while the events queue can be read; 0 while it cannot, and LakeCircle relies on its poll and"
        " schedule alone. Only with events on (LCC_EVENTS_QUEUE set)."
    ),
}
"""The HELP texts of the events' metrics, exposed once ``Metrics.add_events()`` made them (``LCC_EVENTS_QUEUE`` set)."""

HUB_HELP: Final[Mapping[str, str]] = {
    "lakecircle_accounts": (
        "Accounts a hub listed, by state: managed (its last cycle worked in the account), failed (the account's"
        " role could not be assumed, its identity did not match or its buckets could not be listed), skipped"
        " (listed but left out of the run: a command's --account, or another replica holds its lease). A hub's"
        " (LCC_ACCOUNTS set) only."
    ),
    "lakecircle_account_consecutive_failed_cycles": (
        "Cycles in a row that failed outright in the account (its role, identity check or bucket listing);"
        " 0 once a cycle works in it. A hub's (LCC_ACCOUNTS set) only."
    ),
}
"""The HELP texts of the metrics a hub alone exposes (after those of :data:`HELP`, but before ``lakecircle_info``)."""

ACCOUNT_LABELLED: Final = frozenset(
    {
        # the cycles
        "lakecircle_rules_added_total",
        "lakecircle_rules_removed_total",
        "lakecircle_rules_changed_total",
        "lakecircle_failures_total",
        "lakecircle_cycles_total",
        "lakecircle_cycle_duration_seconds",
        "lakecircle_last_success_timestamp_seconds",
        "lakecircle_buckets",
        # the guards and what S3 did with LakeCircle's writes
        "lakecircle_guard_trips_total",
        "lakecircle_external_drift_total",
        "lakecircle_server_dropped_fields",
        # S3 requests
        "lakecircle_s3_requests_total",
        "lakecircle_s3_request_duration_seconds",
        "lakecircle_s3_retries_total",
        "lakecircle_s3_request_rate_limit",
        "lakecircle_verification_lag_seconds",
        # the leases: one per account
        "lakecircle_leases_held",
        "lakecircle_lease_transitions_total",
        # a hub's alone
        "lakecircle_account_consecutive_failed_cycles",
    }
)
"""The metrics whose series carry :data:`ACCOUNT` in a hub: all but the definitions' (one
set for every account), ``lakecircle_info`` (the service's own account) and ``lakecircle_accounts``."""
