"""One account's series, and the ways to feed them: a cycle report, S3 requests, a throttle gate.

:class:`~lakecircle.service.metrics.Metrics` makes one of these for each member account
of a hub (``metrics.account(id)``, whose series carry ``account=<id>``), one for the hub's
own work (``account=""``), and, in single-account mode, the one behind its own feeding
methods (no ``account`` label). The feeding code is the same for all three, so a hub's
account counts exactly what a single-account LakeCircle counts.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from lakecircle import errors
from lakecircle.core.report import Stage, Trigger
from lakecircle.service.metric_names import (
    BUCKET_STATES,
    FAILURE,
    SUCCESS,
    cycle_result,
    fatal_stage,
    outcome_of,
    reason_of,
    tripped_guards,
)

_C = TypeVar("_C", Counter, Gauge, Histogram)

if TYPE_CHECKING:
    from lakecircle.adapters.throttle import ThrottleGate
    from lakecircle.core.lease import Transition
    from lakecircle.core.report import CycleReport
    from lakecircle.service.metrics import Metrics


class AccountMetrics:
    """The series of one account, and the ways to feed them: a hub's member account (its
    ID), a hub's own work (``""``), or a single-account LakeCircle's (None: no label).

    Also that account's S3 adapter's observer (:meth:`observe_request`, :meth:`observe_retry`)
    and its lease keeper's (:meth:`lease_held`, :meth:`lease_transition`).
    Made by :class:`Metrics`, never directly. Once :meth:`Metrics.forget` forgot the
    account, ``forgotten`` is true and the view counts nothing: a late request of an account
    that left does not bring its series back.
    """

    def __init__(self, metrics: Metrics, account: str | None) -> None:
        self.account = account
        self.forgotten = False
        self.holding: bool | None = None
        """Whether this replica holds the account's lease, as last told (None: leases off, or not told yet)."""
        self._metrics = metrics
        self._at: tuple[str, ...] = () if account is None else (account,)
        in_a_row = metrics.account_failed_cycles
        self._failed_in_a_row = in_a_row.labels(account) if in_a_row is not None and account else None

    def observe_cycle(self, report: CycleReport, *, now: float) -> str:
        """Count one finished cycle; ``now`` is the Unix time it finished. Returns its result.

        A cycle that could not run (``report.fatal``) leaves the bucket and definition
        gauges at their last values: it knows nothing newer about them. In a member
        account of a hub it adds one to the account's failed cycles in a row; any other
        result sets them to 0.
        """
        result = cycle_result(report)
        if self.forgotten:
            return result
        m, at = self._metrics, self._at
        m.cycles.labels(*at, report.trigger, result).inc()
        slice_ = report.trigger == Trigger.VERIFY  # a few buckets: it says nothing of the account's listing
        if not slice_:  # a slice a second would drown the passes' durations
            self._one(m.cycle_duration).observe(report.duration)
        if result == SUCCESS and not slice_:
            self._one(m.last_success).set(now)

        self._one(m.rules_added).inc(report.rules_added)
        self._one(m.rules_removed).inc(report.rules_removed)
        self._one(m.rules_changed).inc(report.rules_changed)

        failures: Tally[str] = Tally(r.stage or Stage.CYCLE for r in report.failed)
        if report.fatal is not None:
            failures[fatal_stage(report)] += 1
        if report.definitions is not None:
            failures[Stage.DEFINITIONS] += len(report.definitions.unreadable)
        for stage, count in failures.items():
            if count:
                m.failures.labels(*at, stage).inc(count)

        for guard in tripped_guards(report):
            m.guard_trips.labels(*at, guard).inc()

        if report.definitions is not None:
            # one set of definitions for every account: no account label
            m.definition_files.set(len(report.definitions.files))
            m.definition_errors.set(report.definitions.error_count)
            m.partial_definitions.set(1 if report.definitions.partial else 0)
            m.definition_files_unreadable.set(len(report.definitions.unreadable))

        if report.fatal is None:
            if self.holding is not False:  # a cycle cut short by a lost lease: the holder's gauges say it
                self._picture(report)
            self._one(m.external_drift).inc(report.external_drift)
        if not slice_:
            self._count_in_a_row(failed=result == FAILURE)
        return result

    def observe_cycle_error(self, trigger: str, *, duration: float | None = None) -> None:
        """Count a cycle that raised instead of returning a report (a bug, logged by the caller)."""
        if self.forgotten:
            return
        m, at = self._metrics, self._at
        m.cycles.labels(*at, trigger, FAILURE).inc()
        m.failures.labels(*at, Stage.CYCLE).inc()
        if duration is not None:
            self._one(m.cycle_duration).observe(duration)
        self._count_in_a_row(failed=True)

    def observe_poll_failure(self) -> None:
        """Count a poll of the definitions that failed (the daemon logs it as ``poll_failed``)."""
        if not self.forgotten:
            self._metrics.failures.labels(*self._at, Stage.POLL).inc()

    def observe_request(self, operation: str, error: Exception | None, seconds: float) -> None:
        """One S3 request attempt finished, with ``error`` (None: it succeeded); counted by its :func:`outcome_of`."""
        self.on_request(operation, outcome_of(error), seconds)

    def observe_retry(self, operation: str, error: errors.TransientError, delay: float) -> None:
        """An S3 request raised ``error`` and will be retried; counted by its :func:`reason_of`."""
        self.on_retry(operation, reason_of(error), delay)

    def on_request(self, operation: str, outcome: str, seconds: float) -> None:
        """One S3 request attempt finished: ``outcome`` is one of :data:`OUTCOMES`."""
        if not self.forgotten:
            self._metrics.s3_requests.labels(*self._at, operation, outcome).inc()
            self._metrics.s3_request_duration.labels(*self._at, operation).observe(seconds)

    def on_retry(self, operation: str, reason: str, delay: float) -> None:
        """An S3 request will be retried after ``delay`` seconds for ``reason`` (one of :data:`RETRY_REASONS`)."""
        if not self.forgotten:
            self._metrics.s3_retries.labels(*self._at, operation, reason).inc()

    def watch_gate(self, gate: ThrottleGate) -> None:
        """Export ``gate``'s current rate limit as ``lakecircle_s3_request_rate_limit`` (read at scrape time)."""
        if not self.forgotten:
            self._one(self._metrics.s3_rate_limit).set_function(lambda: gate.rate or 0.0)

    def watch_verification(self, lag: Callable[[], float]) -> None:
        """Export ``lag()`` as ``lakecircle_verification_lag_seconds`` (read at scrape time)."""
        if not self.forgotten:
            self._one(self._metrics.verification_lag).set_function(lag)

    def lease_held(self, account: str, held: bool) -> None:
        """This replica holds the account's lease now, or not (``lakecircle_leases_held``: 1 or 0);
        ``account`` is the keeper's name for this view's account, not read.

        Once it does not hold it, the replica describes the account's buckets no more: their state gauges and
        ``lakecircle_server_dropped_fields`` (a hub's failed cycles in a row too) go to 0 and stay there
        until it holds the lease again
        and a cycle sets them, so that summing the replicas counts each bucket once and a bucket
        drifted in a former holder's last cycle keeps no alert firing there. Nothing with leases off.
        """
        gauge = self._metrics.leases_held
        if self.forgotten or gauge is None:
            return
        self._one(gauge).set(1 if held else 0)
        self.holding = held
        if not held:
            self._set_buckets(Tally(), dropped=0)
            if self._failed_in_a_row is not None:
                self._failed_in_a_row.set(0)  # its failures are the new holder's to count

    def lease_transition(self, account: str, reason: Transition) -> None:
        """Count one change in this replica's hold on the account's lease, by its ``reason``."""
        counter = self._metrics.lease_transitions
        if not self.forgotten and counter is not None:
            counter.labels(*self._at, str(reason)).inc()

    def _picture(self, report: CycleReport) -> None:
        """The bucket gauges: the whole account's picture where continuous verification keeps one
        (a slice verifies a few buckets), else the cycle's own counts."""
        if report.picture is not None:
            counts, dropped = report.picture.counts, report.picture.dropped
        else:
            counts, dropped = report.counts, sum(1 for r in report.results if r.dropped)
        self._set_buckets(Tally({state.value: n for state, n in counts.items()}), dropped=dropped)

    def _set_buckets(self, states: Tally[str], *, dropped: int) -> None:
        m = self._metrics
        for state in sorted(set(BUCKET_STATES) | set(states)):
            m.buckets.labels(*self._at, state).set(states[state])
        self._one(m.server_dropped_fields).set(dropped)

    def _one(self, collector: _C) -> _C:
        """The account's series of a collector that has no label but the account's.

        Made when first fed, not before: the hub's own work (``""``) has no cycles, and a
        ``lakecircle_last_success_timestamp_seconds`` at 0 for it would fire an alert.
        """
        return collector.labels(*self._at) if self._at else collector

    def _count_in_a_row(self, *, failed: bool) -> None:
        if self._failed_in_a_row is None:
            return
        if failed:
            self._failed_in_a_row.inc()
        else:
            self._failed_in_a_row.set(0)
