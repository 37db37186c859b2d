"""The lease metrics (issue 17): :class:`Metrics` as the lease keepers' observer, in both modes.

``lakecircle_leases_held`` says whether this replica holds an account's lease (1) or stands by
(0); ``lakecircle_lease_transitions_total{reason}`` counts each change. Both exist only with
leases on: a lone replica with ``LCC_LEASE_SECONDS=0`` must not look like one whose lease is
unheld. A replica that stops holding a lease sets that account's bucket gauges to 0, so that
summing the replicas' series counts each bucket once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Protocol

import pytest
from prometheus_client import CollectorRegistry

from lakecircle.core.lease import Transition
from lakecircle.core.report import BucketResult, BucketState
from lakecircle.service.metrics import HELP, HUB_HELP, LEASE_HELP, LEASE_REASONS, Metrics
from tests.service.test_account_metrics import of_account, samples
from tests.service.test_metrics import NOW, report

A, B = "111111111111", "222222222222"


class LeaseObserver(Protocol):
    """The shape of ``lakecircle.engine.leases.LeaseObserver`` (I17_INTEGRATION.md), what a keeper reports."""

    def lease_transition(self, account: str, reason: Transition) -> None: ...

    def lease_held(self, account: str, held: bool) -> None: ...


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def held(metrics: Metrics, **labels: str) -> float | None:
    return value(metrics, "lakecircle_leases_held", **labels)


def transitions(metrics: Metrics, **labels: str) -> dict[str, float | None]:
    return {r: value(metrics, "lakecircle_lease_transitions_total", reason=r, **labels) for r in LEASE_REASONS}


def test_the_reasons_are_the_lease_machines_transitions() -> None:
    assert LEASE_REASONS == ("acquired", "renewed", "lost", "released", "taken_over")


def test_a_single_account_replica_reports_its_lease_without_a_label() -> None:
    metrics = Metrics(leases=True)
    observer: LeaseObserver = metrics
    assert held(metrics) == 0, "a replica that was told nothing yet stands by"
    assert transitions(metrics) == dict.fromkeys(LEASE_REASONS, 0)

    observer.lease_held(A, True)
    observer.lease_transition(A, Transition.TAKEN_OVER)
    observer.lease_transition(A, Transition.RENEWED)
    observer.lease_transition(A, Transition.RENEWED)
    assert held(metrics) == 1
    observer.lease_transition(A, Transition.LOST)
    observer.lease_held(A, False)

    assert held(metrics) == 0
    assert transitions(metrics) == {"acquired": 0, "renewed": 2, "lost": 1, "released": 0, "taken_over": 1}
    assert "account=" not in "".join(
        line for line in metrics.render().decode().splitlines() if line.startswith("lakecircle_lease")
    )


def test_with_leases_off_there_is_no_lease_series_and_a_report_changes_nothing() -> None:
    for metrics in (Metrics(), Metrics(multi_account=True)):
        observer: LeaseObserver = metrics
        labels = {"account": A} if metrics.multi_account else {}
        fed = metrics.account(A) if metrics.multi_account else metrics
        fed.observe_cycle(report(BucketResult("b", BucketState.DRIFTED)), now=NOW)

        observer.lease_transition(A, Transition.LOST)
        observer.lease_held(A, False)

        assert "lakecircle_lease" not in metrics.render().decode()
        assert value(metrics, "lakecircle_buckets", state="drifted", **labels) == 1


def test_a_hub_has_each_accounts_lease_series_at_0_from_its_first_use() -> None:
    metrics = Metrics(multi_account=True, leases=True)
    metrics.account(A)

    assert held(metrics, account=A) == 0
    assert transitions(metrics, account=A) == dict.fromkeys(LEASE_REASONS, 0)
    assert held(metrics, account=B) is None
    assert held(metrics, account="") is None, "the hub's own work holds no lease"
    assert held(metrics) is None


def test_a_hubs_keeper_reports_each_account_under_its_label_and_makes_its_series() -> None:
    metrics = Metrics(multi_account=True, leases=True)
    observer: LeaseObserver = metrics
    observer.lease_held(A, True)
    observer.lease_transition(A, Transition.ACQUIRED)
    observer.lease_held(B, False)  # an account another replica holds: no view made for it before

    assert [held(metrics, account=A), held(metrics, account=B)] == [1, 0]
    assert transitions(metrics, account=A)["acquired"] == 1
    assert transitions(metrics, account=B) == dict.fromkeys(LEASE_REASONS, 0)
    # B's other series exist too, at 0, as for any account the hub has seen.
    assert value(metrics, "lakecircle_cycles_total", account=B, trigger="resync", result="success") == 0


def test_an_accounts_view_is_its_keepers_observer_too() -> None:
    metrics = Metrics(multi_account=True, leases=True)
    view: LeaseObserver = metrics.account(A)
    view.lease_held(A, True)
    view.lease_transition(A, Transition.RELEASED)

    assert held(metrics, account=A) == 1
    assert transitions(metrics, account=A)["released"] == 1


def test_forget_drops_the_lease_series_and_a_late_release_does_not_bring_them_back() -> None:
    metrics = Metrics(multi_account=True, leases=True)
    for account in (A, B):
        metrics.lease_held(account, True)
        metrics.lease_transition(account, Transition.ACQUIRED)
    view = metrics.account(B)

    metrics.forget(B)
    metrics.lease_transition(B, Transition.RELEASED)  # the keeper lets go after the account left
    metrics.lease_held(B, False)
    view.lease_held(B, True)

    assert B not in metrics.render().decode()
    assert held(metrics, account=A) == 1
    # If it comes back, its series start from zero again, and its keeper's reports count.
    metrics.account(B)
    assert held(metrics, account=B) == 0
    metrics.lease_held(B, True)
    assert held(metrics, account=B) == 1
    assert transitions(metrics, account=B) == dict.fromkeys(LEASE_REASONS, 0)


@pytest.mark.parametrize("multi_account", [False, True], ids=["single account", "a hub's account"])
def test_a_replica_that_stops_holding_the_lease_stops_describing_the_accounts_buckets(multi_account: bool) -> None:
    metrics = Metrics(multi_account=multi_account, leases=True)
    labels = {"account": A} if multi_account else {}
    fed = metrics.account(A) if multi_account else metrics

    def buckets() -> dict[str, float | None]:
        found = {s: value(metrics, "lakecircle_buckets", state=s, **labels) for s in ("drifted", "in_sync")}
        return found | {"dropped": value(metrics, "lakecircle_server_dropped_fields", **labels)}

    metrics.lease_held(A, True)
    cycle = report(
        BucketResult("a", BucketState.DRIFTED),
        BucketResult("b", BucketState.IN_SYNC),
        BucketResult("odd", BucketState.IN_SYNC, dropped=("NewerNoncurrentVersions",)),
    )
    fed.observe_cycle(cycle, now=NOW)
    assert buckets() == {"drifted": 1, "in_sync": 2, "dropped": 1}

    metrics.lease_held(A, False)
    assert buckets() == {"drifted": 0, "in_sync": 0, "dropped": 0}
    # The cycle the lost lease cut short is counted, but its buckets are the new holder's to describe.
    fed.observe_cycle(cycle, now=NOW + 1)
    assert buckets() == {"drifted": 0, "in_sync": 0, "dropped": 0}
    assert value(metrics, "lakecircle_cycles_total", trigger="manual", result="success", **labels) == 2
    assert value(metrics, "lakecircle_last_success_timestamp_seconds", **labels) == NOW + 1

    metrics.lease_held(A, True)
    fed.observe_cycle(cycle, now=NOW + 2)
    assert buckets() == {"drifted": 1, "in_sync": 2, "dropped": 1}


def test_the_lease_help_texts_come_after_the_others_and_before_a_hubs_own() -> None:
    def helps(metrics: Metrics) -> dict[str, str]:
        return dict(re.findall(r"^# HELP (\S+) (.*)$", metrics.render().decode(), flags=re.MULTILINE))

    single = helps(Metrics(leases=True))
    assert list(single) == [*list(HELP)[:-1], *LEASE_HELP, "lakecircle_info"]
    hub = helps(Metrics(multi_account=True, leases=True))
    assert list(hub) == [*list(HELP)[:-1], *LEASE_HELP, *HUB_HELP, "lakecircle_info"]
    assert hub == {**HELP, **LEASE_HELP, **HUB_HELP}
    assert all("LCC_LEASE_SECONDS" in text for text in LEASE_HELP.values())


@pytest.mark.parametrize("multi_account", [False, True], ids=["single account", "hub"])
def test_promtool_accepts_an_exposition_with_leases(multi_account: bool) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found: apt-get install prometheus (Debian's package ships it)")
    metrics = Metrics(CollectorRegistry(), multi_account=multi_account, leases=True)
    for account in (A, B):
        metrics.lease_held(account, account == A)
        metrics.lease_transition(account, Transition.ACQUIRED)

    done = subprocess.run(  # noqa: S603 (a fixed tool, found on PATH)
        [promtool, "check", "metrics"], input=metrics.render(), capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    if multi_account:
        assert of_account(samples(metrics), B)[("lakecircle_leases_held", frozenset())] == 0


def test_a_former_holder_stops_counting_an_accounts_failed_cycles_in_a_row() -> None:
    metrics = Metrics(multi_account=True, leases=True)
    view = metrics.account("111111111111")
    view.lease_held("111111111111", True)
    view.observe_cycle(report(fatal="could not list the buckets"), now=NOW)
    assert value(metrics, "lakecircle_account_consecutive_failed_cycles", account="111111111111") == 1
    view.lease_held("111111111111", False)  # another replica took it: LakeCircleAccountFailing is its to raise
    assert value(metrics, "lakecircle_account_consecutive_failed_cycles", account="111111111111") == 0
