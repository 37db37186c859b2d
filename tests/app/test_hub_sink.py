"""The daemon's metrics of a hub: each account's cycles under its ``account`` label, the
account states, and an account that left the list forgotten (ARCHITECTURE.md, "Many accounts")."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakecircle.app.sinks import CycleSink, HubSink
from lakecircle.core.accounts import AccountList
from lakecircle.core.report import Trigger
from lakecircle.engine.hub import AccountState
from lakecircle.errors import AccessDenied, LakeCircleError
from lakecircle.service.metrics import Metrics
from lakecircle.service.server import Health
from tests.builders import fleet, rule
from tests.engine.test_hub import A, B, Organization, member

pytestmark = pytest.mark.anyio


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_each_accounts_cycle_is_counted_under_its_account_and_a_refused_one_as_failed() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    org.stores[A].add_bucket("a-logs")
    org.refused[B] = AccessDenied("not authorized to perform sts:AssumeRole", operation="AssumeRole")
    metrics = Metrics(multi_account=True)
    org.hub.observer = HubSink(metrics, clock=lambda: 1000.0)
    await org.hub.run_cycle(Trigger.STARTUP)

    added = samples(metrics, "lakecircle_rules_added_total")
    assert added[(("account", A),)] == 1
    assert added[(("account", B),)] == 0
    failed_in_a_row = samples(metrics, "lakecircle_account_consecutive_failed_cycles")
    assert failed_in_a_row == {(("account", A),): 0, (("account", B),): 1}
    states = samples(metrics, "lakecircle_accounts")
    assert states[(("state", "managed"),)] == 1
    assert states[(("state", "failed"),)] == 1


async def test_an_account_that_leaves_the_list_has_its_series_forgotten() -> None:
    org = Organization(member(A), member(B), base=fleet(["*"], rule("abort", 7)))
    metrics = Metrics(multi_account=True)
    org.hub.observer = HubSink(metrics)
    await org.hub.run_cycle(Trigger.STARTUP)
    assert B in metrics.render().decode()
    org.source.list = AccountList((member(A),))
    await org.hub.run_cycle(Trigger.RESYNC)
    assert B not in metrics.render().decode()
    assert samples(metrics, "lakecircle_accounts")[(("state", "managed"),)] == 1


async def test_a_hub_cycle_that_could_not_run_is_counted_as_a_failed_cycle_of_the_hub() -> None:
    org = Organization(member(A), base=fleet(["*"], rule("abort", 7)))
    org.source.fail = LakeCircleError("cannot read the accounts file accounts.toml: no such file")
    metrics = Metrics(multi_account=True)
    health = Health(max_age=60, outage_limit=60)
    sink = CycleSink(metrics, health, None, count_cycles=False)
    sink.cycle_finished(await org.hub.run_cycle(Trigger.STARTUP))
    cycles = samples(metrics, "lakecircle_cycles_total")
    assert cycles[(("account", ""), ("result", "failure"), ("trigger", "startup"))] == 1


async def test_a_hub_that_manages_no_account_is_not_ready_until_it_manages_some() -> None:
    org = Organization(member(A), base=fleet(["*"], rule("abort", 7)))
    org.source.fail = LakeCircleError("cannot read the accounts file accounts.toml: no such file")
    metrics = Metrics(multi_account=True)
    health = Health(max_age=60, outage_limit=60, clock=lambda: 1000.0)
    org.hub.observer = HubSink(metrics, health)
    sink = CycleSink(metrics, health, None, count_cycles=False, clock=lambda: 1000.0)
    sink.cycle_finished(await org.hub.run_cycle(Trigger.STARTUP))
    sink.poll_succeeded()  # the definitions read fine: S3 is there, but nothing is managed
    ready, why = health.ready()
    assert not ready
    assert why == "no account to manage: accounts.toml (cannot read the accounts file accounts.toml: no such file)"

    org.source.fail = None
    sink.cycle_finished(await org.hub.run_cycle(Trigger.RESYNC))
    assert health.ready() == (True, "ok")


async def test_an_account_still_in_its_first_cycle_counts_as_managed() -> None:
    metrics = Metrics(multi_account=True)
    HubSink(metrics).accounts_seen({A: AccountState.RUNNING, B: AccountState.FAILED})
    states = samples(metrics, "lakecircle_accounts")
    assert states[(("state", "managed"),)] == 1
    assert states[(("state", "failed"),)] == 1
