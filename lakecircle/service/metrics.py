"""Prometheus metrics: one object owning its collectors, fed by cycle reports and S3 calls.

Everything about a cycle is derived from its :class:`~lakecircle.core.report.CycleReport`
by :meth:`Metrics.observe_cycle`, so the numbers a dashboard shows are the numbers the
summary log line prints. S3 requests come from the S3 adapter, whose observer a
:class:`Metrics` is (``observe_request``, ``observe_retry``); it imports nothing of the adapter.

The collectors live on the registry given to :class:`Metrics` (a fresh one by default, never
the global one). The metric names, their HELP texts and labels are a contract, held by
:mod:`~lakecircle.service.metric_names` (the README's metrics table; ARCHITECTURE.md,
"Observability"): dashboards and alerts rely on them, and the exposition lists them in
the order :class:`Metrics` creates them. No metric has a per-bucket label: an account
may hold a million buckets. What a cycle report or a request adds to the series is in
:class:`~lakecircle.service.account_metrics.AccountMetrics`, the same code in both modes.

Many accounts. A hub (``LCC_ACCOUNTS`` set) makes ``Metrics(multi_account=True)``: every
series about cycles, buckets, failures, guards and S3 requests (:data:`ACCOUNT_LABELLED`)
then carries an ``account`` label, the member account's 12-digit ID, one value per
managed account. Each account is fed through its own view, ``metrics.account(id)``
(:class:`AccountMetrics`, with the same feeding methods as :class:`Metrics`): its cycle
reports, and the observer of its S3 adapter. The hub's own work (polls of the definitions,
Organizations, the accounts file, the records under ``LCC_ENDPOINT``) is counted by the
:class:`Metrics` object's own methods, with ``account=""``, which Prometheus stores as no
label: the hub's adapter takes ``metrics`` itself as its observer. The definitions' gauges
(one set of definitions for every account) and ``lakecircle_info`` (whose ``account`` is
the service's own) keep their labels. Two metrics are a hub's alone:
``lakecircle_accounts{state}`` (:meth:`Metrics.observe_accounts`) and
``lakecircle_account_consecutive_failed_cycles{account}``, which each account's fatal
cycles raise and any other cycle of it resets. An account that leaves the managed set is
forgotten (:meth:`Metrics.forget`): its series would otherwise stay at their last values
and its alerts keep firing. In single-account mode (the default) no series has an
``account`` label and the exposition is exactly what it was before hubs existed.

Replicas. With leases on (``Metrics(leases=True)``, for ``LCC_LEASE_SECONDS`` above 0) the
object is also the lease keepers' observer (``lease_held``, ``lease_transition``: the
``LeaseObserver`` of ``lakecircle.engine.leases``): ``lakecircle_leases_held`` is 1 while
this replica holds the account's lease and 0 while it stands by, and
``lakecircle_lease_transitions_total{reason}`` counts each change, both with ``account`` in
a hub (made for each account as its view is). With leases off neither exists: a single
replica that holds no lease must not look like one that lost it, or ``LakeCircleLeaseUnheld``
would fire. A replica that stops holding a lease sets that account's bucket gauges to 0, so
that the replicas' series add up to one account's buckets.
"""

from __future__ import annotations

import itertools
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.registry import Collector

from lakecircle import __version__, errors
from lakecircle.core.accounts import account_id_problem
from lakecircle.service.account_metrics import AccountMetrics
from lakecircle.service.event_metrics import EventMetrics
from lakecircle.service.metric_names import (
    ACCOUNT,
    ACCOUNT_LABELLED,
    ACCOUNT_STATES,
    BUCKET_STATES,
    CYCLE_BUCKETS,
    GUARDS,
    HELP,
    HUB_HELP,
    LEASE_HELP,
    LEASE_REASONS,
    OUTCOMES,
    RESULTS,
    RETRY_REASONS,
    S3_BUCKETS,
    STAGES,
    TRIGGERS,
    cycle_result,
    fatal_stage,
    outcome_of,
    reason_of,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from lakecircle.adapters.throttle import ThrottleGate
    from lakecircle.core.lease import Transition
    from lakecircle.core.report import CycleReport

__all__ = [
    "ACCOUNT",
    "ACCOUNT_LABELLED",
    "ACCOUNT_STATES",
    "BUCKET_STATES",
    "CONTENT_TYPE",
    "HELP",
    "HUB_HELP",
    "LEASE_HELP",
    "LEASE_REASONS",
    "OUTCOMES",
    "RETRY_REASONS",
    "STAGES",
    "AccountMetrics",
    "Metrics",
    "cycle_result",
    "fatal_stage",
    "outcome_of",
    "reason_of",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :meth:`Metrics.render`: Prometheus's text exposition format."""


class Metrics:
    """LakeCircle's collectors on one registry, and the ways to feed them.

    Also the S3 adapter's observer: :meth:`observe_request` and :meth:`observe_retry` match
    the observer Protocol of :mod:`lakecircle.adapters.retry`; they name each error by its
    label and count it with :meth:`on_request` and :meth:`on_retry`.

    With ``multi_account`` (a hub), the series of :data:`ACCOUNT_LABELLED` carry an
    ``account`` label: each member account is fed through :meth:`account`, and the feeding
    methods of this object count the hub's own work as ``account=""``.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, multi_account: bool = False, leases: bool = False
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.multi_account = multi_account
        self.leases = leases
        new = _Collectors(self.registry, per_account=multi_account)
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
        self.verification_lag = new.gauge("lakecircle_verification_lag_seconds")
        # the leases, when they are on (LCC_LEASE_SECONDS above 0)
        self.leases_held: Gauge | None = None
        self.lease_transitions: Counter | None = None
        if leases:
            self.leases_held = new.gauge("lakecircle_leases_held")
            self.lease_transitions = new.counter("lakecircle_lease_transitions_total", reason=LEASE_REASONS)
        self.events: EventMetrics | None = None  # the events queue's, made by add_events()
        # the accounts: a hub's alone
        self.accounts: Gauge | None = None
        self.account_failed_cycles: Gauge | None = None
        if multi_account:
            self.accounts = new.gauge("lakecircle_accounts", state=ACCOUNT_STATES)
            self.account_failed_cycles = new.gauge("lakecircle_account_consecutive_failed_cycles")
        self.info = Info("lakecircle", HELP["lakecircle_info"], registry=self.registry)
        self.set_info(__version__, "", "")
        self._collectors = new
        self._views: dict[str, AccountMetrics] = {}
        self._forgotten: set[str] = set()
        self._own = AccountMetrics(self, "" if multi_account else None)
        if multi_account:
            # The hub's own work: requests, retries, polls; it has no cycles, buckets or guards of its own.
            new.create_known("", (self.failures, self.s3_rate_limit))

    # -- the accounts of a hub --------------------------------------------------------

    def account(self, account_id: str) -> AccountMetrics:
        """The series of one member account of a hub, made (each known series at 0) on first use.

        Raises ValueError in single-account mode, where series have no ``account`` label,
        and for anything but a 12-digit account ID.
        """
        view = self._views.get(account_id)
        if view is not None:
            return view
        if not self.multi_account:
            msg = "single-account metrics have no account label: feed the Metrics object itself"
            raise ValueError(msg)
        problem = account_id_problem(account_id)
        if problem is not None:
            msg = f"the account of a hub's metrics {problem}"
            raise ValueError(msg)
        self._collectors.create_known(account_id)
        self._forgotten.discard(account_id)
        view = self._views[account_id] = AccountMetrics(self, account_id)
        return view

    def observe_accounts(self, states: Mapping[str, str]) -> None:
        """Set ``lakecircle_accounts`` from each listed account's state (one of :data:`ACCOUNT_STATES`), by ID."""
        if self.accounts is None:
            msg = "lakecircle_accounts is a hub's: make Metrics(multi_account=True)"
            raise ValueError(msg)
        counts = Tally(states.values())
        unknown = sorted(set(counts) - set(ACCOUNT_STATES))
        if unknown:
            msg = f"account states {', '.join(unknown)} are not among {', '.join(ACCOUNT_STATES)}"
            raise ValueError(msg)
        for state in ACCOUNT_STATES:
            self.accounts.labels(state).set(counts[state])

    def forget(self, account_id: str) -> None:
        """Remove every series of an account that left the managed set; its view counts nothing more.

        Series kept at their last values would keep the account on the dashboard and its
        alerts firing. Ask :meth:`account` again if the account comes back: it starts at 0.
        """
        view = self._views.pop(account_id, None)
        if view is not None:
            view.forgotten = True
        if account_id:  # the hub's own series ("") stay
            self._forgotten.add(account_id)
            self._collectors.remove_account(account_id)

    def add_events(self) -> EventMetrics:
        """The events queue's metrics (``LCC_EVENTS_QUEUE`` set), made on first use (:mod:`.event_metrics`)."""
        if self.events is None:
            self.events = EventMetrics(self.registry)
        return self.events

    # -- the leases: the lease keepers' observer -------------------------------------------

    def lease_held(self, account: str, held: bool) -> None:
        """This replica holds ``account``'s lease now, or not: ``lakecircle_leases_held`` is 1 or 0.

        A replica that stops holding a lease no longer describes the account's buckets: their
        gauges go to 0 (:meth:`AccountMetrics.lease_held`). A single-account LakeCircle has one
        lease and its series no label: ``account`` matters in a hub only, where a report of an
        account :meth:`forget` forgot is ignored. Nothing is counted with leases off.
        """
        view = self._lease_view(account)
        if view is not None:
            view.lease_held(account, held)

    def lease_transition(self, account: str, reason: Transition) -> None:
        """Count one change in this replica's hold on ``account``'s lease (``lakecircle_lease_transitions_total``)."""
        view = self._lease_view(account)
        if view is not None:
            view.lease_transition(account, reason)

    def _lease_view(self, account: str) -> AccountMetrics | None:
        if not self.multi_account:
            return self._own
        if account in self._forgotten:
            return None  # a keeper's last word (released) after the account left: its series stay gone
        return self.account(account)

    # -- feeding: one account's, or a hub's own work ------------------------------------

    def observe_cycle(self, report: CycleReport, *, now: float) -> str:
        """Count one finished cycle; ``now`` is the Unix time it finished. Returns its result.

        A cycle that could not run (``report.fatal``) leaves the bucket and definition
        gauges at their last values: it knows nothing newer about them.
        """
        return self._own.observe_cycle(report, now=now)

    def observe_cycle_error(self, trigger: str, *, duration: float | None = None) -> None:
        """Count a cycle that raised instead of returning a report (a bug, logged by the caller)."""
        self._own.observe_cycle_error(trigger, duration=duration)

    def observe_poll_failure(self) -> None:
        """Count a poll of the definitions that failed (the daemon logs it as ``poll_failed``)."""
        self._own.observe_poll_failure()

    def observe_request(self, operation: str, error: Exception | None, seconds: float) -> None:
        """One S3 request attempt finished, with ``error`` (None: it succeeded); counted by its :func:`outcome_of`."""
        self._own.on_request(operation, outcome_of(error), seconds)

    def observe_retry(self, operation: str, error: errors.TransientError, delay: float) -> None:
        """An S3 request raised ``error`` and will be retried; counted by its :func:`reason_of`."""
        self._own.on_retry(operation, reason_of(error), delay)

    def on_request(self, operation: str, outcome: str, seconds: float) -> None:
        """One S3 request attempt finished: ``outcome`` is one of :data:`OUTCOMES`."""
        self._own.on_request(operation, outcome, seconds)

    def on_retry(self, operation: str, reason: str, delay: float) -> None:
        """An S3 request will be retried after ``delay`` seconds for ``reason`` (one of :data:`RETRY_REASONS`)."""
        self._own.on_retry(operation, reason, delay)

    def watch_gate(self, gate: ThrottleGate) -> None:
        """Export ``gate``'s current rate limit as ``lakecircle_s3_request_rate_limit`` (read at scrape time)."""
        self._own.watch_gate(gate)

    def watch_verification(self, lag: Callable[[], float]) -> None:
        """Export ``lag()`` as ``lakecircle_verification_lag_seconds`` (read at scrape time)."""
        self._own.watch_verification(lag)

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
    """Makes collectors on one registry, each with its HELP text and a series for each
    combination of its labels' known values.

    ``labels`` maps each label's name to the values known from the start (none: its series
    appear as they are counted), so a dashboard sees a series at 0 before its first event.
    With ``per_account``, the metrics of :data:`ACCOUNT_LABELLED` get :data:`ACCOUNT` as
    their first label and their known series are made for each account as it comes
    (:meth:`create_known`).
    """

    def __init__(self, registry: CollectorRegistry, *, per_account: bool) -> None:
        self.registry = registry
        self.per_account = per_account
        self.labelled: list[tuple[Counter | Gauge | Histogram, Mapping[str, Sequence[str]]]] = []
        """Each collector with an account label, and its other labels' known values."""

    def counter(self, name: str, **labels: Sequence[str]) -> Counter:
        return self._known(Counter(name, _help(name), self._names(name, labels), registry=self.registry), name, labels)

    def gauge(self, name: str, **labels: Sequence[str]) -> Gauge:
        return self._known(Gauge(name, _help(name), self._names(name, labels), registry=self.registry), name, labels)

    def histogram(self, name: str, buckets: Sequence[float], **labels: Sequence[str]) -> Histogram:
        collector = Histogram(name, _help(name), self._names(name, labels), registry=self.registry, buckets=buckets)
        return self._known(collector, name, labels)

    def create_known(self, account: str, only: Sequence[Counter | Gauge | Histogram] | None = None) -> None:
        """Make ``account``'s series of every known label value (of the collectors ``only``: all by default)."""
        for collector, labels in self.labelled:
            if only is None or any(collector is chosen for chosen in only):
                for values in itertools.product(*labels.values()):
                    collector.labels(account, *values)

    def remove_account(self, account: str) -> None:
        """Remove every series whose ``account`` is ``account``."""
        for collector, labels in self.labelled:
            names = (ACCOUNT, *labels)
            series = {
                tuple(sample.labels[name] for name in names)
                for metric in collector.collect()
                for sample in metric.samples
                if sample.labels.get(ACCOUNT) == account
            }
            for values in series:
                collector.remove(*values)

    def _names(self, name: str, labels: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
        return (ACCOUNT, *labels) if self._per_account(name) else tuple(labels)

    def _per_account(self, name: str) -> bool:
        return self.per_account and name in ACCOUNT_LABELLED

    def _known(self, collector: _C, name: str, labels: Mapping[str, Sequence[str]]) -> _C:
        if self._per_account(name):
            self.labelled.append((collector, labels))
        elif labels:
            for values in itertools.product(*labels.values()):
                collector.labels(*values)
        return collector


def _help(name: str) -> str:
    return {**HELP, **LEASE_HELP, **HUB_HELP}[name]


class _WithoutCreated(Collector):
    """A registry's metrics without the ``*_created`` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self.registry.collect():
            created = f"{metric.name}_created"
            metric.samples = [s for s in metric.samples if s.name != created]
            yield metric
