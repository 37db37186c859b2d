"""Where the service's cycle reports, polls and account states go: the metrics and readiness.

:class:`CycleSink` feeds each cycle's report and each poll's outcome to the metrics and to
:class:`~lakecircle.service.server.Health` (contact with S3, the last cycle); :class:`HubSink` a
hub's account reports and account states. A slice of continuous verification lists nothing: when
every bucket it read failed, S3 was out of reach as far as it knows, and readiness counts it so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from lakecircle.clocks import WallClock
from lakecircle.core.accounts import Account as Member
from lakecircle.core.report import BucketState, CycleReport, Stage, Trigger
from lakecircle.engine.hub import AccountState
from lakecircle.errors import LakeCircleError
from lakecircle.service.metrics import Metrics, fatal_stage
from lakecircle.service.server import Health

__all__ = ["CycleSink", "HubSink"]


class CycleSink:
    """Feeds each cycle's report, and each poll's outcome, to the metrics and the readiness check."""

    def __init__(
        self,
        metrics: Metrics,
        health: Health,
        on_report: Callable[[CycleReport], None] | None,
        *,
        clock: WallClock = time.time,
        count_cycles: bool = True,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.on_report = on_report
        self.clock = clock
        """Unix time: when a cycle finished (the last-success gauge), when contacts began to fail."""
        self.count_cycles = count_cycles
        """False for a hub: each account's report is counted under its account (:class:`HubSink`),
        and the sum of them would count every rule twice."""

    def cycle_finished(self, report: CycleReport) -> None:
        now = self.clock()
        if report.definitions is not None:
            self.health.mark_definitions_loaded()
        if report.fatal is None and not _all_failed(report):
            self.health.mark_contact()
        elif report.fatal is None:  # a slice that lists nothing: its reads were its contact with S3
            self.health.mark_contact_failed(Stage.READ, now)
        else:
            self.health.mark_contact_failed(fatal_stage(report), now)
        self.health.mark_cycle_finished(now)
        if self.count_cycles:
            self.metrics.observe_cycle(report, now=now)
        elif report.fatal is not None:  # the hub's own failure (its definitions, its account list): no account's
            self.metrics.observe_cycle_error(report.trigger, duration=report.duration)
        if self.on_report is not None:
            self.on_report(report)

    def cycle_crashed(self, trigger: str) -> None:
        self.metrics.observe_cycle_error(trigger)

    def poll_succeeded(self) -> None:
        self.health.mark_contact()

    def lease_contact(self, reached: bool) -> None:
        """A lease request reached S3 or failed (the outage rule of a standby replica's readiness)."""
        if reached:
            self.health.mark_contact()
        else:
            self.health.mark_contact_failed("lease", self.clock())

    def poll_failed(self, error: LakeCircleError) -> None:
        self.metrics.observe_poll_failure()
        self.health.mark_contact_failed(Stage.POLL, self.clock())


def _all_failed(report: CycleReport) -> bool:
    """A cycle of continuous verification (no listing) in which every bucket read failed."""
    failed = report.counts[BucketState.FAILED]
    return report.trigger == Trigger.VERIFY and failed > 0 and failed == sum(report.counts.values())


class HubSink:
    """A hub's observer: each account's report to that account's metrics, the account states
    to ``lakecircle_accounts`` (an account still in its first cycle counts as managed), an
    account that left the list forgotten (its series gone, or its alerts would fire for ever),
    and a hub that manages no account to readiness (``health``: not ready while it lasts)."""

    def __init__(self, metrics: Metrics, health: Health | None = None, *, clock: WallClock = time.time) -> None:
        self.metrics = metrics
        self.health = health
        self.clock = clock
        self._listed: set[str] = set()

    def account_finished(self, account: Member, report: CycleReport) -> None:
        self.metrics.account(account.id).observe_cycle(report, now=self.clock())

    def accounts_seen(self, states: Mapping[str, AccountState]) -> None:
        self.metrics.observe_accounts(
            {k: (AccountState.MANAGED if s is AccountState.RUNNING else s).value for k, s in states.items()}
        )
        for gone in sorted(self._listed - set(states)):
            self.metrics.forget(gone)
        self._listed = set(states)
        if self.health is not None:
            self.health.mark_managing(None)

    def managing_none(self, why: str) -> None:
        if self.health is not None:
            self.health.mark_managing(why)
