"""Prometheus metrics: one object owning its collectors, fed by cycle reports and S3 calls.

Everything about a cycle is derived from its :class:`~lakecircle.core.report.CycleReport`
by :meth:`Metrics.observe_cycle`, so the numbers a dashboard shows are the numbers the
summary log line prints. S3 request counts and latencies come from the S3 adapter, which
takes a :class:`Metrics` as its observer (``observe_request``, ``observe_retry``); this module
imports nothing of the adapter, so the dependency runs one way only.

The collectors live on the registry given to :class:`Metrics` (a fresh one by default),
never on prometheus_client's global registry, so tests and embedded uses can build as
many as they like. The metric names, their :data:`HELP` texts and labels are a contract
(the README's metrics table; ARCHITECTURE.md, "Observability"): dashboards and alerts
rely on them, and the exposition lists them in the order :class:`Metrics` creates them.
No metric has a per-bucket label: an account may hold a million buckets.
"""

from __future__ import annotations

import itertools
from collections import Counter as Tally
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.registry import Collector

from lakecircle import __version__, errors
from lakecircle.core.report import BucketState, CycleReport, Guard, Stage, Trigger

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from lakecircle.adapters.throttle import ThrottleGate

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :meth:`Metrics.render`: Prometheus's text exposition format."""

SUCCESS: Final = "success"
PARTIAL: Final = "partial"
FAILURE: Final = "failure"
RESULTS: Final = (SUCCESS, PARTIAL, FAILURE)

TRIGGERS: Final = tuple(
    trigger.value for trigger in (Trigger.STARTUP, Trigger.POLL, Trigger.RESYNC, Trigger.SIGNAL, Trigger.MANUAL)
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
        "failed, propagating, diverging)."
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
    "lakecircle_info": (
        "LakeCircle's version, its actions mode (SYNC or DRYRUN) and the account it manages; always 1."
    ),
}
"""Each metric's HELP text (the README's metrics table says the same in short)."""


class Metrics:
    """LakeCircle's collectors on one registry, and the ways to feed them.

    Also the S3 adapter's observer: :meth:`observe_request` and :meth:`observe_retry` match
    the observer Protocol of :mod:`lakecircle.adapters.retry`; they name each error by its
    label and count it with :meth:`on_request` and :meth:`on_retry`.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        new = _Collectors(self.registry)
        # the cycles
        self.rules_added = new.counter("lakecircle_rules_added_total")
        self.rules_removed = new.counter("lakecircle_rules_removed_total")
        self.rules_changed = new.counter("lakecircle_rules_changed_total")
        self.failures = new.counter("lakecircle_failures_total", stage=STAGES)
        self.cycles = new.counter("lakecircle_cycles_total", trigger=TRIGGERS, result=RESULTS)
        self.cycle_duration = new.histogram("lakecircle_cycle_duration_seconds", CYCLE_BUCKETS)
        self.last_success = new.gauge("lakecircle_last_success_timestamp_seconds")
        self.buckets = new.gauge("lakecircle_buckets", state=BUCKET_STATES)
        # the definitions
        self.definition_files = new.gauge("lakecircle_definition_files")
        self.definition_errors = new.gauge("lakecircle_definition_errors")
        self.partial_definitions = new.gauge("lakecircle_partial_definitions")
        self.definition_files_unreadable = new.gauge("lakecircle_definition_files_unreadable")
        # the safety guards and what S3 did with LakeCircle's writes
        self.guard_trips = new.counter("lakecircle_guard_trips_total", guard=GUARDS)
        self.external_drift = new.counter("lakecircle_external_drift_total")
        self.server_dropped_fields = new.gauge("lakecircle_server_dropped_fields")
        # S3 requests
        self.s3_requests = new.counter("lakecircle_s3_requests_total", operation=(), outcome=OUTCOMES)
        self.s3_request_duration = new.histogram("lakecircle_s3_request_duration_seconds", S3_BUCKETS, operation=())
        self.s3_retries = new.counter("lakecircle_s3_retries_total", operation=(), reason=RETRY_REASONS)
        self.s3_rate_limit = new.gauge("lakecircle_s3_request_rate_limit")
        self.info = Info("lakecircle", HELP["lakecircle_info"], registry=self.registry)
        self.set_info(__version__, "", "")

    # -- feeding ----------------------------------------------------------------------

    def observe_cycle(self, report: CycleReport, *, now: float) -> str:
        """Count one finished cycle; ``now`` is the Unix time it finished. Returns its result.

        A cycle that could not run (``report.fatal``) leaves the bucket and definition
        gauges at their last values: it knows nothing newer about them.
        """
        result = cycle_result(report)
        self.cycles.labels(trigger=report.trigger, result=result).inc()
        self.cycle_duration.observe(report.duration)
        if result == SUCCESS:
            self.last_success.set(now)

        self.rules_added.inc(report.rules_added)
        self.rules_removed.inc(report.rules_removed)
        self.rules_changed.inc(report.rules_changed)

        failures: Tally[str] = Tally(r.stage or Stage.CYCLE for r in report.failed)
        if report.fatal is not None:
            failures[fatal_stage(report)] += 1
        if report.definitions is not None:
            failures[Stage.DEFINITIONS] += len(report.definitions.unreadable)
        for stage, count in failures.items():
            if count:
                self.failures.labels(stage=stage).inc(count)

        for guard in tripped_guards(report):
            self.guard_trips.labels(guard=guard).inc()

        if report.definitions is not None:
            self.definition_files.set(len(report.definitions.files))
            self.definition_errors.set(report.definitions.error_count)
            self.partial_definitions.set(1 if report.definitions.partial else 0)
            self.definition_files_unreadable.set(len(report.definitions.unreadable))

        if report.fatal is None:
            states = Tally({state.value: n for state, n in report.counts.items()})
            for state in sorted(set(BUCKET_STATES) | set(states)):
                self.buckets.labels(state=state).set(states[state])
            self.server_dropped_fields.set(sum(1 for r in report.results if r.dropped))
            self.external_drift.inc(report.external_drift)
        return result

    def observe_cycle_error(self, trigger: str, *, duration: float | None = None) -> None:
        """Count a cycle that raised instead of returning a report (a bug, logged by the caller)."""
        self.cycles.labels(trigger=trigger, result=FAILURE).inc()
        self.failures.labels(stage=Stage.CYCLE).inc()
        if duration is not None:
            self.cycle_duration.observe(duration)

    def observe_poll_failure(self) -> None:
        """Count a poll of the definitions that failed (the daemon logs it as ``poll_failed``)."""
        self.failures.labels(stage=Stage.POLL).inc()

    def observe_request(self, operation: str, error: Exception | None, seconds: float) -> None:
        """One S3 request attempt finished, with ``error`` (None: it succeeded); counted by its :func:`outcome_of`."""
        self.on_request(operation, outcome_of(error), seconds)

    def observe_retry(self, operation: str, error: errors.TransientError, delay: float) -> None:
        """An S3 request raised ``error`` and will be retried; counted by its :func:`reason_of`."""
        self.on_retry(operation, reason_of(error), delay)

    def on_request(self, operation: str, outcome: str, seconds: float) -> None:
        """One S3 request attempt finished: ``outcome`` is one of :data:`OUTCOMES`."""
        self.s3_requests.labels(operation=operation, outcome=outcome).inc()
        self.s3_request_duration.labels(operation=operation).observe(seconds)

    def on_retry(self, operation: str, reason: str, delay: float) -> None:
        """An S3 request will be retried after ``delay`` seconds for ``reason`` (one of :data:`RETRY_REASONS`)."""
        self.s3_retries.labels(operation=operation, reason=reason).inc()

    def watch_gate(self, gate: ThrottleGate) -> None:
        """Export ``gate``'s current rate limit as ``lakecircle_s3_request_rate_limit`` (read at scrape time)."""
        self.s3_rate_limit.set_function(lambda: gate.rate or 0.0)

    def set_info(self, version: str, mode: str, account: str | None) -> None:
        """Set ``lakecircle_info``'s labels (one series: the last values set)."""
        self.info.info({"version": version, "mode": mode, "account": account or ""})

    # -- exposition -------------------------------------------------------------------

    content_type: ClassVar[str] = CONTENT_TYPE

    def render(self) -> bytes:
        """The registry in Prometheus's text format, without the ``_created`` series.

        prometheus_client adds a ``*_created`` gauge per counter and histogram series;
        Prometheus has no use for it in the text format and it doubles the series count.
        """
        return generate_latest(_WithoutCreated(self.registry))


_C = TypeVar("_C", Counter, Gauge, Histogram)


class _Collectors:
    """Makes collectors on one registry, each with its :data:`HELP` text and a series for
    each combination of its labels' known values.

    ``labels`` maps each label's name to the values known from the start (none: its series
    appear as they are counted), so a dashboard sees a series at 0 before its first event.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def counter(self, name: str, **labels: Sequence[str]) -> Counter:
        return self._known(Counter(name, HELP[name], tuple(labels), registry=self.registry), labels)

    def gauge(self, name: str, **labels: Sequence[str]) -> Gauge:
        return self._known(Gauge(name, HELP[name], tuple(labels), registry=self.registry), labels)

    def histogram(self, name: str, buckets: Sequence[float], **labels: Sequence[str]) -> Histogram:
        return self._known(Histogram(name, HELP[name], tuple(labels), registry=self.registry, buckets=buckets), labels)

    @staticmethod
    def _known(collector: _C, labels: Mapping[str, Sequence[str]]) -> _C:
        if labels:
            for values in itertools.product(*labels.values()):
                collector.labels(*values)
        return collector


class _WithoutCreated(Collector):
    """A registry's metrics without the ``*_created`` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self.registry.collect():
            created = f"{metric.name}_created"
            metric.samples = [s for s in metric.samples if s.name != created]
            yield metric
