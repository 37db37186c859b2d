"""Metrics in both modes: a single-account exposition byte for byte as before, and a hub's
series per account, by the contract of :mod:`tests.deploy_common` (which the dashboard and
the alerts are checked against, so the exporter and they cannot drift apart).

The golden file ``single_account.prom`` is what :class:`Metrics` exposed after
:func:`feed` before multi-account mode existed; a deliberate change to single-account
series (a new metric, a new known label value) rewrites it on purpose, never by accident.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakecircle import errors
from lakecircle.adapters.retry import RequestObserver
from lakecircle.adapters.throttle import ThrottleGate
from lakecircle.core.lease import Transition
from lakecircle.core.report import BucketResult, BucketState, CycleReport
from lakecircle.service import metrics as metrics_module
from lakecircle.service.metrics import ACCOUNT_LABELLED, HELP, HUB_HELP, AccountMetrics, Metrics
from tests import deploy_common
from tests.builders import rule
from tests.service.test_metrics import NOW, changed, definitions, report

GOLDEN = Path(__file__).with_name("single_account.prom")
HELD = "123456789012"
"""The account whose lease :func:`feed` reports held."""


def feed(target: Metrics | AccountMetrics) -> None:
    """Every way of feeding the metrics, once or more, with values that show in the exposition.

    The lease is held from the start (with leases off its reports count nothing).
    """
    target.lease_held(HELD, True)
    target.lease_transition(HELD, Transition.ACQUIRED)
    target.lease_transition(HELD, Transition.RENEWED)
    target.lease_transition(HELD, Transition.RENEWED)
    a, b = rule("a"), rule("b")
    results = (
        changed("written", live=(a, b), desired=(rule("a", days=60), rule("c"))),
        BucketResult("in-sync", BucketState.IN_SYNC, dropped=("Filter.ObjectSizeGreaterThan",)),
        BucketResult("gone", BucketState.MISSING, error="defined but not in the account"),
        BucketResult("r1", BucketState.FAILED, error="AccessDenied", stage="read"),
        BucketResult("other", BucketState.CHANGED, external=True),
        BucketResult("held", BucketState.DRIFTED, guard="blast_radius"),
    )
    target.observe_cycle(report(*results, trigger="startup", duration=0.7), now=NOW - 600)
    target.observe_cycle(report(BucketResult("in-sync", BucketState.IN_SYNC), trigger="resync"), now=NOW - 300)
    target.observe_cycle(report(trigger="plan", duration=45.0), now=NOW - 250)
    unreadable = definitions(3, errors=1, unreadable=("broken.toml",))
    last = (*results[1:3], BucketResult("slow", BucketState.DIVERGING, dropped=("NewerNoncurrentVersions",)))
    target.observe_cycle(report(*last, defs=unreadable, guards=("partial_definitions",), trigger="poll"), now=NOW - 200)
    target.observe_cycle(report(fatal="could not list the account's buckets: SlowDown", defs=definitions(3)), now=NOW)
    target.observe_cycle(report(fatal="could not list the definitions", trigger="signal", duration=0.1), now=NOW)
    target.observe_cycle_error("resync", duration=2.0)
    target.observe_cycle_error("poll")
    op = "GetBucketLifecycleConfiguration"
    for error in (
        None,
        errors.Throttled("x", operation=op),
        errors.ServerError("x", operation=op),
        errors.ConnectionFailed("x", operation=op),
        errors.AccessDenied("x", operation=op),
        errors.NotFound("x", operation=op),
        errors.InvalidRequest("x", operation=op),
        errors.MalformedResponse("x", operation=op),
    ):
        target.observe_request(op, error, 0.03)
    target.observe_retry(op, errors.Throttled("x", operation=op), 0.5)
    target.on_request("ListBuckets", "success", 0.2)
    target.on_request("ListBuckets", "success", 7.0)
    target.on_retry("ListBuckets", "connection", 1.0)
    target.watch_gate(ThrottleGate(max_requests_per_second=40.0))


def single_account_exposition(*, leases: bool = True) -> bytes:
    metrics = Metrics(leases=leases)
    feed(metrics)
    metrics.observe_poll_failure()
    metrics.set_info("0.1.0", "SYNC", "123456789012")
    return metrics.render()


def test_a_single_account_exposition_is_byte_for_byte_what_it_was_before_many_accounts() -> None:
    """Changed on purpose since: issue 17 added the two lease metrics (with leases on), issue 18 the
    verification lag and the `verify` trigger."""
    assert single_account_exposition().decode() == GOLDEN.read_text(encoding="utf-8")


def test_with_leases_off_a_single_account_exposition_is_the_golden_one_without_the_lease_metrics() -> None:
    golden = GOLDEN.read_text(encoding="utf-8").splitlines(keepends=True)
    without = "".join(line for line in golden if "lakecircle_lease" not in line)

    assert single_account_exposition(leases=False).decode() == without
    assert len(without) < len("".join(golden))


# -- a hub: the series of each account -----------------------------------------------

A, B, C = "111111111111", "222222222222", "333333333333"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(metrics: Metrics) -> Samples:
    """Every sample of the exposition, by series name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def of_account(found: Samples, account: str) -> Samples:
    """The samples of ``account``, with the ``account`` label left out."""
    return {
        (name, frozenset((k, v) for k, v in labels if k != "account")): value
        for (name, labels), value in found.items()
        if ("account", account) in labels
    }


def hub() -> Metrics:
    return Metrics(multi_account=True)


def fatal() -> CycleReport:
    """A resync that could not work in the account (its role, identity check or bucket listing failed)."""
    return report(fatal="could not assume the account's role: AccessDenied", defs=definitions(), trigger="resync")


def test_a_hubs_exporter_exposes_exactly_the_series_and_labels_the_deploy_contract_declares() -> None:
    assert deploy_common.hub_exposed_metrics() == deploy_common.declared_contract()
    # The exporter's list and the contract's are one list (plus the hub's own gauge of failed cycles).
    assert deploy_common.ACCOUNT_LABELLED | {"lakecircle_account_consecutive_failed_cycles"} == ACCOUNT_LABELLED
    assert metrics_module.ACCOUNT_STATES == deploy_common.ACCOUNT_STATES


def test_an_account_counts_exactly_what_a_single_account_lakecircle_counts_under_its_label() -> None:
    alone = Metrics(leases=True)
    feed(alone)
    metrics = Metrics(multi_account=True, leases=True)
    feed(metrics.account(A))

    expected = {key: value for key, value in samples(alone).items() if key[0].startswith(tuple(ACCOUNT_LABELLED))}
    assert of_account(samples(metrics), A) == expected | {
        ("lakecircle_account_consecutive_failed_cycles", frozenset()): 4.0  # feed ends with 2 fatal cycles, 2 raised
    }
    # The definitions' gauges are the same in both: one set of definitions for every account.
    definition_gauges = {key: v for key, v in samples(alone).items() if key[0].startswith("lakecircle_definition")}
    assert definition_gauges.items() <= samples(metrics).items()


def test_a_failing_account_among_healthy_ones_has_its_own_series_and_leaves_theirs_alone() -> None:
    metrics = hub()
    for account in (A, B):
        fed = metrics.account(account)
        fed.observe_request("ListBuckets", None, 0.01)
        fed.observe_cycle(report(BucketResult("logs", BucketState.IN_SYNC), trigger="resync"), now=NOW)
    failing = metrics.account(C)
    for _ in range(4):
        failing.observe_cycle(fatal(), now=NOW)
    metrics.observe_accounts({A: "managed", B: "managed", C: "failed"})

    found = samples(metrics)
    for account in (A, B):
        mine = of_account(found, account)
        assert mine[("lakecircle_cycles_total", frozenset({("trigger", "resync"), ("result", "success")}))] == 1
        assert mine[("lakecircle_last_success_timestamp_seconds", frozenset())] == NOW
        assert mine[("lakecircle_failures_total", frozenset({("stage", "list")}))] == 0
        assert mine[("lakecircle_account_consecutive_failed_cycles", frozenset())] == 0
        assert mine[("lakecircle_buckets", frozenset({("state", "in_sync")}))] == 1
    theirs = of_account(found, C)
    assert theirs[("lakecircle_cycles_total", frozenset({("trigger", "resync"), ("result", "failure")}))] == 4
    assert theirs[("lakecircle_failures_total", frozenset({("stage", "list")}))] == 4
    assert theirs[("lakecircle_last_success_timestamp_seconds", frozenset())] == 0
    assert theirs[("lakecircle_account_consecutive_failed_cycles", frozenset())] == 4
    assert theirs[("lakecircle_buckets", frozenset({("state", "in_sync")}))] == 0
    assert [found[("lakecircle_accounts", frozenset({("state", s)}))] for s in ("managed", "failed", "skipped")] == [
        2,
        1,
        0,
    ]


@pytest.mark.parametrize(
    ("cycles", "in_a_row"),
    [
        pytest.param(["fatal"], [1], id="a fatal cycle counts one"),
        pytest.param(["fatal", "fatal", "fatal"], [1, 2, 3], id="fatal cycles in a row add up"),
        pytest.param(["fatal", "fatal", "success"], [1, 2, 0], id="a successful cycle resets them"),
        pytest.param(
            ["fatal", "partial", "fatal"], [1, 0, 1], id="a partial cycle worked in the account and resets them"
        ),
        pytest.param(["fatal", "raised"], [1, 2], id="a cycle that raised counts as failed"),
        pytest.param(["success", "success"], [0, 0], id="a healthy account stays at zero"),
    ],
)
def test_failed_cycles_in_a_row_count_fatal_cycles_until_one_works(cycles: list[str], in_a_row: list[int]) -> None:
    metrics = hub()
    fed = metrics.account(A)
    seen = []
    for kind in cycles:
        if kind == "raised":
            fed.observe_cycle_error("resync")
        elif kind == "fatal":
            fed.observe_cycle(fatal(), now=NOW)
        elif kind == "partial":
            fed.observe_cycle(report(BucketResult("b", BucketState.FAILED, stage="read")), now=NOW)
        else:
            fed.observe_cycle(report(BucketResult("b", BucketState.IN_SYNC)), now=NOW)
        seen.append(metrics.registry.get_sample_value("lakecircle_account_consecutive_failed_cycles", {"account": A}))
    assert seen == in_a_row


def test_the_hubs_own_work_is_counted_without_an_account_and_has_no_cycle_series() -> None:
    metrics = hub()
    observer: RequestObserver = metrics  # the hub's adapter (definitions, records, Organizations)
    observer.observe_request("ListObjectsV2", None, 0.02)
    observer.observe_retry("ListAccounts", errors.Throttled("x", operation="ListAccounts"), 0.3)
    metrics.observe_poll_failure()
    metrics.watch_gate(ThrottleGate(max_requests_per_second=25.0))

    own = of_account(samples(metrics), "")
    assert own[("lakecircle_s3_requests_total", frozenset({("operation", "ListObjectsV2"), ("outcome", "success")}))]
    assert own[("lakecircle_s3_retries_total", frozenset({("operation", "ListAccounts"), ("reason", "throttled")}))]
    assert own[("lakecircle_failures_total", frozenset({("stage", "poll")}))] == 1
    assert own[("lakecircle_s3_request_rate_limit", frozenset())] == pytest.approx(25.0)
    # No cycle of its own: a last success at 0 would fire LakeCircleNoSuccessfulCycle for the hub.
    assert not {name for name, _ in own} & {
        "lakecircle_cycles_total",
        "lakecircle_last_success_timestamp_seconds",
        "lakecircle_buckets",
        "lakecircle_account_consecutive_failed_cycles",
        "lakecircle_cycle_duration_seconds_count",
    }
    assert "lakecircle_account_consecutive_failed_cycles" not in {name for name, _ in samples(metrics)}


def test_an_accounts_view_is_its_s3_adapters_observer_and_made_once_with_its_series_at_zero() -> None:
    metrics = hub()
    observer: RequestObserver = metrics.account(A)
    assert metrics.account(A) is observer
    observer.observe_request(
        "PutBucketLifecycleConfiguration", errors.AccessDenied("x", operation="PutBucketLifecycleConfiguration"), 0.05
    )

    mine = of_account(samples(metrics), A)
    assert (
        mine[
            (
                "lakecircle_s3_requests_total",
                frozenset({("operation", "PutBucketLifecycleConfiguration"), ("outcome", "denied")}),
            )
        ]
        == 1
    )
    for state in ("in_sync", "failed", "diverging"):
        assert mine[("lakecircle_buckets", frozenset({("state", state)}))] == 0
    assert mine[("lakecircle_cycles_total", frozenset({("trigger", "resync"), ("result", "failure")}))] == 0
    assert mine[("lakecircle_last_success_timestamp_seconds", frozenset())] == 0
    assert mine[("lakecircle_s3_request_rate_limit", frozenset())] == 0
    assert of_account(samples(metrics), B) == {}


def test_forget_removes_every_series_of_an_account_that_left_and_keeps_the_others() -> None:
    metrics = hub()
    for account in (A, B):
        fed = metrics.account(account)
        feed(fed)
    gone = metrics.account(B)
    before_a = of_account(samples(metrics), A)

    metrics.forget(B)

    text = metrics.render().decode()
    assert B not in text
    assert of_account(samples(metrics), A) == before_a
    # A late request of the account that left does not bring its series back.
    gone.observe_request("ListBuckets", None, 0.01)
    gone.observe_cycle(fatal(), now=NOW)
    assert B not in metrics.render().decode()
    # If it comes back, it starts from zero.
    back = metrics.account(B)
    assert back is not gone
    assert of_account(samples(metrics), B)[("lakecircle_account_consecutive_failed_cycles", frozenset())] == 0
    assert of_account(samples(metrics), B)[("lakecircle_rules_added_total", frozenset())] == 0


def test_lakecircle_accounts_counts_the_last_listing_by_state() -> None:
    metrics = hub()
    metrics.observe_accounts({A: "managed", B: "skipped", C: "failed"})
    metrics.observe_accounts({A: "managed", B: "managed"})

    def count(state: str) -> float | None:
        return metrics.registry.get_sample_value("lakecircle_accounts", {"state": state})

    assert [count("managed"), count("failed"), count("skipped")] == [2, 0, 0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: Metrics().account(A),
            "single-account metrics have no account label",
            id="an account of a single-account LakeCircle",
        ),
        pytest.param(
            lambda: Metrics().observe_accounts({A: "managed"}),
            "lakecircle_accounts is a hub's",
            id="account states in single-account mode",
        ),
        pytest.param(lambda: hub().account("12345"), "not an account ID", id="an account ID of 5 digits"),
        pytest.param(lambda: hub().account(""), "not an account ID", id="the hub's own label as a member account"),
        pytest.param(
            lambda: hub().observe_accounts({A: "broken"}),
            "account states broken are not among managed, failed, skipped",
            id="an unknown account state",
        ),
    ],
)
def test_a_misuse_is_refused_with_a_sentence(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_a_hubs_help_texts_are_those_of_single_account_mode_and_the_hubs_own() -> None:
    metrics = hub()
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", metrics.render().decode(), flags=re.MULTILINE))

    assert list(helps) == [*list(HELP)[:-1], *HUB_HELP, "lakecircle_info"]
    assert helps == {**HELP, **HUB_HELP}
    assert all(len(text) > 60 for text in HUB_HELP.values())


def test_single_account_mode_has_no_account_label_but_lakecircle_infos() -> None:
    metrics = Metrics()
    feed(metrics)

    assert {name for name, labels in samples(metrics) if any(k == "account" for k, _ in labels)} == {"lakecircle_info"}


def test_the_readme_says_which_metrics_keep_their_labels_in_a_hub() -> None:
    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    said, table = section.split("\n| name |", 1)
    tabled = set(re.findall(r"^\| `(lakecircle_[a-z0-9_]+)` \|", table, flags=re.MULTILINE))
    kept = tabled - ACCOUNT_LABELLED
    definitions = {name for name in kept if "definition" in name}

    assert kept - definitions == {
        "lakecircle_info",
        "lakecircle_accounts",
        "lakecircle_events_total",
        "lakecircle_events_queue_readable",
    }
    assert all(f"`{name}`" in said for name in kept - definitions)
    assert "the definitions' four gauges" in " ".join(said.split())
    assert len(definitions) == 4


def test_promtool_accepts_a_hubs_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found: apt-get install prometheus (Debian's package ships it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    metrics = hub()
    feed(metrics)
    for account in (A, B):
        feed(metrics.account(account))
    metrics.observe_accounts({A: "managed", B: "failed"})

    done = subprocess.run(  # noqa: S603 (a fixed tool, found on PATH)
        [promtool, "check", "metrics"], input=metrics.render(), capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 0, (done.stdout + done.stderr).decode()
