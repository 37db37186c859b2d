"""Metrics derived from hand-built cycle reports, on a fresh registry per test."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from lakecircle import errors
from lakecircle.adapters.retry import RequestObserver
from lakecircle.adapters.throttle import ThrottleGate
from lakecircle.core.definitions import Definitions
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.plan import plan_bucket
from lakecircle.core.problems import Problem, Severity
from lakecircle.core.report import BucketPicture, BucketResult, BucketState, CycleReport
from lakecircle.service.metrics import BUCKET_STATES, CONTENT_TYPE, HELP, OUTCOMES, RETRY_REASONS, STAGES, Metrics
from tests.builders import rule

NOW = 1_750_000_000.0

CONTRACT = (
    # Names other parts (the dashboard, the alerts, users' queries) rely on.
    "lakecircle_rules_added_total",
    "lakecircle_rules_removed_total",
    "lakecircle_rules_changed_total",
    "lakecircle_failures_total",
    "lakecircle_cycles_total",
    "lakecircle_cycle_duration_seconds",
    "lakecircle_last_success_timestamp_seconds",
    "lakecircle_buckets",
    "lakecircle_definition_files",
    "lakecircle_definition_errors",
    "lakecircle_s3_requests_total",
    "lakecircle_s3_request_duration_seconds",
    "lakecircle_s3_retries_total",
    "lakecircle_info",
    # Added for the guards of issue 5.
    "lakecircle_partial_definitions",
    "lakecircle_guard_trips_total",
    "lakecircle_server_dropped_fields",
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def changed(bucket: str, *, live: tuple[Rule, ...], desired: tuple[Rule, ...]) -> BucketResult:
    return BucketResult(
        bucket, BucketState.CHANGED, plan=plan_bucket(bucket, LifecycleConfig(desired), LifecycleConfig(live))
    )


def definitions(files: int = 2, *, errors: int = 0, warnings: int = 0, unreadable: tuple[str, ...] = ()) -> Definitions:
    problems = [Problem("a.toml", "bad", bucket=f"bad-{i}") for i in range(errors)]
    problems += [Problem("a.toml", "hmm", severity=Severity.WARNING) for _ in range(warnings)]
    return Definitions(
        buckets={},
        invalid={},
        problems=tuple(problems),
        files=tuple(f"f{i}.toml" for i in range(files)),
        unreadable=unreadable,
    )


def report(
    *results: BucketResult,
    defs: Definitions | None = None,
    fatal: str | None = None,
    trigger: str = "manual",
    duration: float = 1.5,
    dry_run: bool = False,
    guards: tuple[str, ...] = (),
) -> CycleReport:
    return CycleReport(
        guards=guards,
        cycle_id="c0ffee",
        trigger=trigger,
        dry_run=dry_run,
        started_at=NOW - duration,
        duration=duration,
        results=results,
        definitions=definitions() if defs is None and fatal is None else defs,
        buckets_listed=len(results),
        fatal=fatal,
        counts=Counter(r.state for r in results),
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_slice_of_continuous_verification_counts_as_a_cycle_and_its_picture_sets_the_bucket_gauges() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    picture = BucketPicture(Counter({BucketState.IN_SYNC: 999_998, BucketState.FAILED: 2}), dropped=1)
    one = report(BucketResult("b", BucketState.IN_SYNC), trigger="verify", duration=0.02)
    metrics.observe_cycle(dataclasses.replace(one, picture=picture), now=NOW)
    assert value(registry, "lakecircle_cycles_total", trigger="verify", result="success") == 1
    assert value(registry, "lakecircle_cycle_duration_seconds_count") == 0  # passes' durations only
    assert value(registry, "lakecircle_buckets", state="in_sync") == 999_998
    assert value(registry, "lakecircle_buckets", state="failed") == 2
    assert value(registry, "lakecircle_server_dropped_fields") == 1


def test_an_unsupported_bucket_is_counted_in_its_own_state_and_the_cycle_is_not_a_failure(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    unsupported = BucketResult("newer", BucketState.UNSUPPORTED, error='holds rule "a": FutureAction')
    metrics.observe_cycle(report(unsupported, BucketResult("b", BucketState.IN_SYNC)), now=NOW)
    assert value(registry, "lakecircle_buckets", state="unsupported") == 1
    assert value(registry, "lakecircle_buckets", state="in_sync") == 1
    assert value(registry, "lakecircle_buckets", state="failed") == 0
    assert value(registry, "lakecircle_failures_total", stage="read") == 0


def test_collectors_live_on_their_own_registry_never_the_global_one() -> None:
    first, second = Metrics(), Metrics()
    first.on_request("GetObject", "success", 0.01)

    assert first.registry is not second.registry
    assert value(first.registry, "lakecircle_s3_requests_total", operation="GetObject", outcome="success") == 1
    assert value(second.registry, "lakecircle_s3_requests_total", operation="GetObject", outcome="success") is None
    assert not [m.name for m in REGISTRY.collect() if m.name.startswith("lakecircle")]


def test_labelled_series_exist_at_zero_before_anything_happens(registry: CollectorRegistry, metrics: Metrics) -> None:
    for stage in ("definitions", "list", "read", "write", "snapshot", "cycle"):
        assert value(registry, "lakecircle_failures_total", stage=stage) == 0
    for state in ("in_sync", "changed", "drifted", "missing", "invalid", "failed", "propagating", "diverging"):
        assert value(registry, "lakecircle_buckets", state=state) == 0
    assert value(registry, "lakecircle_buckets", state="unsupported") == 0
    for guard in ("partial_definitions", "blast_radius"):
        assert value(registry, "lakecircle_guard_trips_total", guard=guard) == 0
    for trigger in ("startup", "poll", "resync", "signal", "manual"):
        for result in ("success", "partial", "failure"):
            assert value(registry, "lakecircle_cycles_total", trigger=trigger, result=result) == 0
    assert value(registry, "lakecircle_last_success_timestamp_seconds") == 0
    assert set(BUCKET_STATES) >= {s.value for s in BucketState}
    assert set(STAGES) == {"definitions", "list", "read", "write", "snapshot", "cycle", "poll"}


def test_a_successful_cycle_counts_rules_of_changed_buckets_only(registry: CollectorRegistry, metrics: Metrics) -> None:
    a, b, c = rule("a"), rule("b"), rule("c")
    results = (
        # one rule added, one removed, one changed
        changed("written", live=(a, b), desired=(rule("a", days=60), c)),
        # a DELETE removes every rule
        changed("emptied", live=(a, b), desired=()),
        BucketResult(
            "same", BucketState.IN_SYNC, plan=plan_bucket("same", LifecycleConfig((a,)), LifecycleConfig((a,)))
        ),
        BucketResult("gone", BucketState.MISSING, error="defined but not in the account"),
        BucketResult("wrong", BucketState.INVALID, error="1 problem(s)"),
    )
    result = metrics.observe_cycle(
        report(*results, defs=definitions(3, errors=1, warnings=2), trigger="resync"), now=NOW
    )

    assert result == "success"
    assert value(registry, "lakecircle_rules_added_total") == 1
    assert value(registry, "lakecircle_rules_removed_total") == 3
    assert value(registry, "lakecircle_rules_changed_total") == 1
    assert value(registry, "lakecircle_cycles_total", trigger="resync", result="success") == 1
    assert value(registry, "lakecircle_cycle_duration_seconds_count") == 1
    assert value(registry, "lakecircle_cycle_duration_seconds_sum") == 1.5
    assert value(registry, "lakecircle_cycle_duration_seconds_bucket", le="2.5") == 1
    assert value(registry, "lakecircle_cycle_duration_seconds_bucket", le="1.0") == 0
    assert value(registry, "lakecircle_last_success_timestamp_seconds") == NOW
    assert value(registry, "lakecircle_buckets", state="changed") == 2
    assert value(registry, "lakecircle_buckets", state="in_sync") == 1
    assert value(registry, "lakecircle_buckets", state="missing") == 1
    assert value(registry, "lakecircle_buckets", state="invalid") == 1
    assert value(registry, "lakecircle_buckets", state="failed") == 0
    assert value(registry, "lakecircle_definition_files") == 3
    assert value(registry, "lakecircle_definition_errors") == 1
    assert value(registry, "lakecircle_partial_definitions") == 0
    assert all(value(registry, "lakecircle_failures_total", stage=s) == 0 for s in STAGES)


def test_a_dry_run_counts_drift_but_no_rules(registry: CollectorRegistry, metrics: Metrics) -> None:
    plan = plan_bucket("drifty", LifecycleConfig((rule("new"),)), LifecycleConfig((rule("old"),)))
    metrics.observe_cycle(report(BucketResult("drifty", BucketState.DRIFTED, plan=plan), dry_run=True), now=NOW)

    assert value(registry, "lakecircle_buckets", state="drifted") == 1
    assert value(registry, "lakecircle_rules_added_total") == 0
    assert value(registry, "lakecircle_rules_removed_total") == 0


def test_failed_buckets_make_a_partial_cycle_counted_by_stage(registry: CollectorRegistry, metrics: Metrics) -> None:
    results = (
        BucketResult("r1", BucketState.FAILED, error="AccessDenied", stage="read"),
        BucketResult("r2", BucketState.FAILED, error="SlowDown", stage="read"),
        BucketResult("w1", BucketState.FAILED, error="AccessDenied", stage="write"),
        BucketResult("bug", BucketState.FAILED, error="internal error: KeyError()"),
        BucketResult("success", BucketState.IN_SYNC),
    )
    metrics.observe_cycle(report(trigger="resync"), now=NOW - 600)
    result = metrics.observe_cycle(report(*results, trigger="poll"), now=NOW)

    assert result == "partial"
    assert value(registry, "lakecircle_cycles_total", trigger="poll", result="partial") == 1
    assert value(registry, "lakecircle_failures_total", stage="read") == 2
    assert value(registry, "lakecircle_failures_total", stage="write") == 1
    assert value(registry, "lakecircle_failures_total", stage="cycle") == 1  # no stage: an internal error
    assert value(registry, "lakecircle_buckets", state="failed") == 4
    assert value(registry, "lakecircle_last_success_timestamp_seconds") == NOW - 600


def test_unreadable_definitions_make_a_partial_cycle_and_trip_the_guard(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    defs = definitions(4, unreadable=("broken.toml", "huge.toml"))
    result = metrics.observe_cycle(
        report(BucketResult("b", BucketState.IN_SYNC), defs=defs, guards=("partial_definitions",)), now=NOW
    )

    assert result == "partial"
    assert value(registry, "lakecircle_partial_definitions") == 1
    assert value(registry, "lakecircle_failures_total", stage="definitions") == 2
    assert value(registry, "lakecircle_guard_trips_total", guard="partial_definitions") == 1
    assert value(registry, "lakecircle_guard_trips_total", guard="blast_radius") == 0
    assert value(registry, "lakecircle_last_success_timestamp_seconds") == 0

    metrics.observe_cycle(report(BucketResult("b", BucketState.IN_SYNC), defs=definitions(4)), now=NOW + 30)
    assert value(registry, "lakecircle_partial_definitions") == 0
    assert value(registry, "lakecircle_guard_trips_total", guard="partial_definitions") == 1


def test_settle_states_blast_radius_and_external_drift_are_counted(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    results = (
        BucketResult("a", BucketState.PROPAGATING),
        BucketResult("b", BucketState.DIVERGING, dropped=("r: Filter.ObjectSizeGreaterThan",)),
        BucketResult("c", BucketState.CHANGED, external=True),
        BucketResult("d", BucketState.DRIFTED, guard="blast_radius"),
    )
    metrics.observe_cycle(report(*results, guards=("blast_radius",)), now=NOW)
    assert value(registry, "lakecircle_buckets", state="propagating") == 1
    assert value(registry, "lakecircle_buckets", state="diverging") == 1
    assert value(registry, "lakecircle_server_dropped_fields") == 1
    assert value(registry, "lakecircle_external_drift_total") == 1
    assert value(registry, "lakecircle_guard_trips_total", guard="blast_radius") == 1


def test_a_fatal_cycle_fails_and_keeps_the_last_known_gauges(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.observe_cycle(report(BucketResult("b", BucketState.IN_SYNC), defs=definitions(5)), now=NOW)

    no_definitions = report(fatal="could not list s3://cfg/definition/: AccessDenied", duration=0.2)
    assert metrics.observe_cycle(no_definitions, now=NOW + 30) == "failure"
    no_buckets = report(defs=definitions(5), fatal="could not list the account's buckets: SlowDown", trigger="signal")
    assert metrics.observe_cycle(no_buckets, now=NOW + 60) == "failure"

    assert value(registry, "lakecircle_cycles_total", trigger="manual", result="failure") == 1
    assert value(registry, "lakecircle_cycles_total", trigger="signal", result="failure") == 1
    assert value(registry, "lakecircle_failures_total", stage="definitions") == 1
    assert value(registry, "lakecircle_failures_total", stage="list") == 1
    assert value(registry, "lakecircle_cycle_duration_seconds_count") == 3
    assert value(registry, "lakecircle_last_success_timestamp_seconds") == NOW
    assert value(registry, "lakecircle_buckets", state="in_sync") == 1
    assert value(registry, "lakecircle_definition_files") == 5


def test_a_cycle_that_raised_counts_as_a_failed_cycle(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.observe_cycle_error("poll", duration=3.0)

    assert value(registry, "lakecircle_cycles_total", trigger="poll", result="failure") == 1
    assert value(registry, "lakecircle_failures_total", stage="cycle") == 1
    assert value(registry, "lakecircle_cycle_duration_seconds_sum") == 3.0


def test_buckets_whose_server_drops_fields_are_counted(registry: CollectorRegistry, metrics: Metrics) -> None:
    results = (
        BucketResult("minio-1", BucketState.IN_SYNC, dropped=("Filter.ObjectSizeGreaterThan",)),
        BucketResult("minio-2", BucketState.IN_SYNC, dropped=("NewerNoncurrentVersions", "Filter.ObjectSizeLessThan")),
        BucketResult("aws", BucketState.IN_SYNC),
    )
    metrics.observe_cycle(report(*results), now=NOW)
    assert value(registry, "lakecircle_server_dropped_fields") == 2

    metrics.observe_cycle(report(BucketResult("aws", BucketState.IN_SYNC)), now=NOW + 30)
    assert value(registry, "lakecircle_server_dropped_fields") == 0


def test_bucket_gauges_follow_the_last_cycle_not_a_sum(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.observe_cycle(report(*(BucketResult(f"b{i}", BucketState.IN_SYNC) for i in range(3))), now=NOW)
    metrics.observe_cycle(report(BucketResult("b0", BucketState.IN_SYNC)), now=NOW + 30)

    assert value(registry, "lakecircle_buckets", state="in_sync") == 1
    assert value(registry, "lakecircle_cycles_total", trigger="manual", result="success") == 2


def test_s3_requests_and_retries_are_counted_by_operation(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.on_request("GetBucketLifecycleConfiguration", "success", 0.004)
    metrics.on_request("GetBucketLifecycleConfiguration", "success", 0.2)
    metrics.on_request("PutBucketLifecycleConfiguration", "throttled", 1.5)
    metrics.on_retry("PutBucketLifecycleConfiguration", "throttled", 0.4)

    get = "GetBucketLifecycleConfiguration"
    put = "PutBucketLifecycleConfiguration"
    assert value(registry, "lakecircle_s3_requests_total", operation=get, outcome="success") == 2
    assert value(registry, "lakecircle_s3_requests_total", operation=put, outcome="throttled") == 1
    assert value(registry, "lakecircle_s3_request_duration_seconds_bucket", operation=get, le="0.005") == 1
    assert value(registry, "lakecircle_s3_request_duration_seconds_bucket", operation=get, le="0.25") == 2
    assert value(registry, "lakecircle_s3_request_duration_seconds_bucket", operation=put, le="60.0") == 1
    assert value(registry, "lakecircle_s3_retries_total", operation=put, reason="throttled") == 1


def test_metrics_is_the_s3_adapters_request_observer(registry: CollectorRegistry, metrics: Metrics) -> None:
    observer: RequestObserver = metrics  # mypy checks the Protocol; the calls check the labels
    op = "GetObject"
    transient: list[errors.TransientError] = [
        errors.Throttled("x", operation=op),
        errors.ServerError("x", operation=op),
        errors.ConnectionFailed("x", operation=op),
    ]
    permanent: list[errors.S3Error] = [
        errors.AccessDenied("x", operation=op),
        errors.NotFound("x", operation=op),
        errors.InvalidRequest("x", operation=op),
        errors.MalformedResponse("x", operation=op),
    ]
    for error in [None, *transient, *permanent]:  # one per outcome, in the order of OUTCOMES
        observer.observe_request(op, error, 0.01)
    for retried in transient:  # one per reason, in the order of RETRY_REASONS
        observer.observe_retry(op, retried, 0.5)

    assert all(value(registry, "lakecircle_s3_requests_total", operation="GetObject", outcome=o) == 1 for o in OUTCOMES)
    assert all(
        value(registry, "lakecircle_s3_retries_total", operation="GetObject", reason=r) == 1 for r in RETRY_REASONS
    )


def test_info_carries_version_mode_and_account_in_one_series(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.set_info("1.2.3", "DRYRUN", None)
    metrics.set_info("1.2.3", "SYNC", "123456789012")

    assert value(registry, "lakecircle_info", version="1.2.3", mode="SYNC", account="123456789012") == 1
    info = [s for m in registry.collect() if m.name == "lakecircle" for s in m.samples]
    assert len(info) == 1


def test_no_metric_has_a_bucket_label(registry: CollectorRegistry, metrics: Metrics) -> None:
    results = tuple(
        BucketResult(f"secret-bucket-{i}", state, stage="read" if state is BucketState.FAILED else None, dropped=("X",))
        for i, state in enumerate(BucketState)
    )
    metrics.observe_cycle(report(*results), now=NOW)
    metrics.on_request("GetBucketLifecycleConfiguration", "success", 0.01)

    labels = {name for m in registry.collect() for s in m.samples for name in s.labels}
    assert "bucket" not in labels
    assert labels <= {"stage", "trigger", "result", "state", "guard", "operation", "outcome", "reason", "le"} | {
        "version",
        "mode",
        "account",
    }
    assert b"secret-bucket" not in metrics.render()


def test_every_contract_metric_is_exposed_with_help_text(metrics: Metrics) -> None:
    text = metrics.render().decode()
    helps = dict(re.findall(r"^# HELP (\S+) (.+)$", text, flags=re.MULTILINE))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))

    for name in CONTRACT:
        assert name in types, name
        assert len(helps[name]) > 20, name
    assert types["lakecircle_cycle_duration_seconds"] == "histogram"
    assert types["lakecircle_s3_request_duration_seconds"] == "histogram"
    assert types["lakecircle_buckets"] == "gauge"


def test_the_readme_metrics_table_names_exactly_the_metrics_exposed(metrics: Metrics) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    tabled = set(re.findall(r"^\| `(lakecircle_[a-z0-9_]+)` \|", section, flags=re.MULTILINE))
    with_events = Metrics(leases=True)
    with_events.add_events()  # LCC_EVENTS_QUEUE set
    exposed = set(re.findall(r"^# TYPE (\S+) ", with_events.render().decode(), flags=re.MULTILINE))
    hub = Metrics(multi_account=True, leases=True).render().decode()
    hub_only = set(re.findall(r"^# TYPE (\S+) ", hub, flags=re.MULTILINE))

    assert set(CONTRACT) <= tabled
    assert tabled == exposed | hub_only  # the leases', the events' and a hub's own metrics are in the table too


def test_each_help_text_is_the_help_of_one_metric_exposed(metrics: Metrics) -> None:
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", metrics.render().decode(), flags=re.MULTILINE))

    assert list(helps) == list(HELP)
    assert all(helps[name] == HELP[name] for name in HELP)


def test_render_has_no_created_series_and_says_its_format(metrics: Metrics) -> None:
    metrics.observe_cycle(report(), now=NOW)

    assert b"_created" not in metrics.render()
    assert metrics.content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_promtool_accepts_the_exposition(registry: CollectorRegistry, metrics: Metrics) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found: apt-get install prometheus (Debian's package ships it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    metrics.observe_cycle(report(BucketResult("b", BucketState.FAILED, stage="read")), now=NOW)
    metrics.on_request("ListBuckets", "success", 0.05)
    metrics.on_retry("ListBuckets", "throttled", 0.1)
    metrics.set_info("0.1.0", "SYNC", "123456789012")

    done = subprocess.run(  # noqa: S603 (a fixed tool, found on PATH)
        [promtool, "check", "metrics"], input=metrics.render(), capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_the_metrics_module_does_not_load_the_s3_adapter() -> None:
    code = (
        "import sys, lakecircle.service.metrics; "
        "print(sorted(m for m in sys.modules if m.startswith(('lakecircle.adapters.s3', 'aioboto3', 'botocore'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)  # noqa: S603

    assert done.stdout.strip() == "[]"


def test_the_rate_limit_gauge_reads_the_throttle_gate_at_scrape_time() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    unlimited = ThrottleGate()
    metrics.watch_gate(unlimited)
    assert value(registry, "lakecircle_s3_request_rate_limit") == 0.0
    capped = ThrottleGate(max_requests_per_second=40.0)
    metrics.watch_gate(capped)
    assert value(registry, "lakecircle_s3_request_rate_limit") == pytest.approx(40.0)
