"""Under fire: LakeCircle against moto through the fault-injecting proxy.

The campaign runs the real service (:func:`lakecircle.app.serve.run_service`, as
``lakecircle daemon`` does) over 500 buckets while the proxy throttles, fails, resets,
delays and garbles its requests; every bucket must converge within the retry budget,
nothing may crash, the daemon runs until it is told to stop, and its metrics must agree
request for request with what the proxy injected. Smaller tests pin the faults the
campaign cannot: reads that stall past the client's timeout, garbled or truncated
answers on chosen buckets (never a write on the strength of them), and a definition
file whose download is cut short.

Each test prints what was injected and what LakeCircle reported (``pytest -s``), and
puts the same figures in its assertion messages.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.botocore import SMALL_BODY
from lakecircle.app.serve import run_service
from lakecircle.app.wiring import Account, build_reconciler
from lakecircle.core.model import LifecycleConfig, config_from_response, config_to_request
from lakecircle.core.normalize import canonical_config
from lakecircle.core.report import BucketState, CycleReport
from lakecircle.service.daemon import Daemon
from lakecircle.service.metrics import Metrics
from lakecircle.settings import load_settings
from tests.builders import definition, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ServerTap
from tests.faultproxy import LIFECYCLE_OPERATIONS, Event, Fault, FaultProxy, classify
from tests.helpers import child_env, clear_settings

pytestmark = pytest.mark.anyio

ENDPOINT = "faults-endpoint"
PREFIX = "lc/"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

OUTCOME_OF_FAULT = {
    Fault.SLOWDOWN: "throttled",
    Fault.SERVER_ERROR: "server_error",
    # botocore reads a 200 whose body is no XML as a retryable 500 (handlers._handle_200_error)
    Fault.GARBAGE: "server_error",
    Fault.RESET: "connection",
    Fault.STALL: "connection",
    Fault.TRUNCATE: "connection",
}
"""The ``outcome`` (and retry ``reason``) LakeCircle must report for each injected fault."""


# -- helpers ------------------------------------------------------------------------------


def desired(rule_id: str, days: int) -> LifecycleConfig:
    return LifecycleConfig((rule(rule_id, days, "logs/"),))


def live(s3_client: Any, bucket: str) -> LifecycleConfig:
    try:
        return config_from_response(s3_client.get_bucket_lifecycle_configuration(Bucket=bucket))
    except s3_client.exceptions.ClientError:
        return LifecycleConfig()


def arrange(s3_client: Any, count: int, *, seed: int, name: str = "fault") -> dict[str, LifecycleConfig]:
    """``count`` buckets with their definitions under the endpoint; returns what each must hold.

    A fifth already hold their definition, a fifth hold a stale rule that must go, the
    rest hold nothing yet.
    """
    rng = random.Random(seed)
    s3_client.create_bucket(Bucket=ENDPOINT)
    wanted: dict[str, LifecycleConfig] = {}
    for i in range(count):
        bucket = f"{name}-{i:03d}"
        rule_id, days = f"keep-{i}", 30 + i % 50
        s3_client.create_bucket(Bucket=bucket)
        s3_client.put_object(
            Bucket=ENDPOINT,
            Key=f"{PREFIX}definition/{bucket}.toml",
            Body=definition(bucket, rule(rule_id, days, "logs/")),
        )
        roll = rng.random()
        if roll < 0.2:
            s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, **config_to_request(desired(rule_id, days)))
        elif roll < 0.4:
            s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, **config_to_request(desired("stale", 9)))
        wanted[bucket] = desired(rule_id, days)
    return wanted


def not_converged(s3_client: Any, wanted: dict[str, LifecycleConfig]) -> list[str]:
    """The buckets whose rules differ from ``wanted`` (S3 adds TransitionDefaultMinimumObjectSize)."""
    return [
        b
        for b, config in wanted.items()
        if canonical_config(LifecycleConfig(live(s3_client, b).rules)) != canonical_config(config)
    ]


def parse_samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def by_label(samples: Samples, name: str, label: str, **labels: str) -> dict[str, float]:
    """``name``'s samples (matching ``labels``) summed by the value of ``label``, zeros left out."""
    wanted = set(labels.items())
    out: Counter[str] = Counter()
    for (n, ls), v in samples.items():
        if n == name and wanted <= ls and v:
            out[dict(ls)[label]] += int(v)
    return dict(sorted(out.items()))


def expected_by_operation(injected: Counter[tuple[Fault, str]], outcome: str) -> dict[str, float]:
    out: Counter[str] = Counter()
    for (fault, operation), n in injected.items():
        if OUTCOME_OF_FAULT.get(fault) == outcome and n:
            out[operation] += n
    return dict(sorted(out.items()))


def read_after_unreadable(proxy: FaultProxy, buckets: list[str]) -> list[tuple[str, Event, Event]]:
    """Writes that followed a garbled or truncated lifecycle read of the same bucket.

    Each cycle reads a bucket before it writes it, so the lifecycle request after an
    unreadable GET must be another GET (a retry, or the next cycle's read), never a write.
    """
    bad: list[tuple[str, Event, Event]] = []
    for bucket in buckets:
        events = proxy.bucket_events(bucket)
        for before, after in itertools.pairwise(events):
            unreadable = before.operation == "GetBucketLifecycleConfiguration" and before.fault in (
                Fault.GARBAGE,
                Fault.TRUNCATE,
            )
            if unreadable and after.operation != "GetBucketLifecycleConfiguration":
                bad.append((bucket, before, after))
    return bad


def show(figures: str) -> None:
    """Print a campaign's figures: what was injected and what LakeCircle reported (pytest -s)."""
    print("\n" + figures)  # noqa: T201 -- the campaigns report their figures on purpose


def service_env(monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy, **extra: str) -> None:
    values = {
        "LCC_ENDPOINT": f"s3://{ENDPOINT}/{PREFIX}",
        "LCC_AWS_ACCOUNT": MOTO_ACCOUNT,
        "LCC_AWS_REGION": MOTO_REGION,
        "LCC_METRICS_ADDR": "127.0.0.1:0",
        "LCC_POLL_INTERVAL": "1",
        "LCC_RESYNC_INTERVAL": "1",
        "LCC_CONCURRENCY": "16",
        "LCC_RETRY_BASE_DELAY": "0.01",
        "LCC_RETRY_MAX_DELAY": "0.2",
        "LCC_MAX_REMOVALS": "10000",
        **extra,
    }
    clear_settings(monkeypatch, **values)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)


# -- the campaign -----------------------------------------------------------------------


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto, seed=8) as started:
        yield started
    assert not started.errors, started.errors


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_500_buckets_converge_through_throttling_errors_and_resets_and_the_metrics_agree(
    s3_client: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = arrange(s3_client, 500, seed=500)
    proxy.rates = {
        Fault.SLOWDOWN: 0.10,
        Fault.SERVER_ERROR: 0.02,
        Fault.RESET: 0.01,
        Fault.DELAY: 0.002,
        Fault.TRUNCATE: 0.01,
        Fault.GARBAGE: 0.01,
    }
    proxy.limits = {Fault.DELAY: 4}
    proxy.delay_seconds = 1.5
    # The retry budget: ten attempts a request (eight by default). At ~15 % faults per
    # attempt, ten failures in a row happen to one request in 10^8.
    service_env(monkeypatch, proxy, LCC_RETRY_MAX_ATTEMPTS="10")
    settings = load_settings()

    reports: list[CycleReport] = []
    converged = anyio.Event()
    exited = anyio.Event()
    started: list[tuple[Daemon, tuple[str, int]]] = []
    stop_requested = False

    def on_report(report: CycleReport) -> None:
        reports.append(report)
        # The whole account as continuous verification last saw each bucket (a cycle may verify a few).
        counts = report.picture.counts if report.picture is not None else report.counts
        if report.ok and counts[BucketState.IN_SYNC] == len(wanted):
            converged.set()

    async def service() -> None:
        try:
            await run_service(settings, on_started=lambda d, a: started.append((d, a)), on_report=on_report)
        finally:
            exited.set()

    began = time.monotonic()
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(service)
            with anyio.move_on_after(200):
                async with anyio.create_task_group() as waiting:

                    async def until(event: anyio.Event) -> None:
                        await event.wait()
                        waiting.cancel_scope.cancel()

                    waiting.start_soon(until, converged)
                    waiting.start_soon(until, exited)
            assert not exited.is_set(), f"the daemon exited on its own after {len(reports)} cycle(s)"
            assert converged.is_set(), (
                f"no cycle found all {len(wanted)} buckets in sync within 200 s: "
                f"{[dict(r.counts) for r in reports]}\n{proxy.summary()}"
            )
            # Continuous verification reads a few buckets a second: the metrics are read again until no
            # request ran meanwhile, so the proxy's counts and the exporter's are of the same moment.
            daemon, (host, port) = started[0]
            for _ in range(50):
                injected = proxy.snapshot()
                seen = Counter(proxy.seen)
                async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics") as response:
                    text = await response.text()
                if proxy.snapshot() == injected and Counter(proxy.seen) == seen:
                    break
                await anyio.sleep(0.05)
            assert proxy.snapshot() == injected, "a request ran each time the metrics were read"
            stop_requested = True
            daemon.request_stop()
    elapsed = time.monotonic() - began
    assert stop_requested
    samples = parse_samples(text)

    reported = {
        outcome: by_label(samples, "lakecircle_s3_requests_total", "operation", outcome=outcome)
        for outcome in ("throttled", "server_error", "connection", "error")
    }
    retried = {
        reason: by_label(samples, "lakecircle_s3_retries_total", "operation", reason=reason)
        for reason in ("throttled", "server_error", "connection")
    }
    expected = {
        outcome: expected_by_operation(injected, outcome) for outcome in ("throttled", "server_error", "connection")
    }
    requests = by_label(samples, "lakecircle_s3_requests_total", "operation")
    failures = by_label(samples, "lakecircle_failures_total", "stage")
    cycles = by_label(samples, "lakecircle_cycles_total", "result")
    figures = (
        f"{proxy.summary()}\n"
        f"LakeCircle: requests by operation {requests}\n"
        f"  requests_total by outcome: {reported}\n"
        f"  retries_total by reason:   {retried}\n"
        f"  failures_total: {failures}; cycles_total: {cycles}; crashes {daemon.stats.crashes}\n"
        f"  cycles: {[{s.value: n for s, n in r.counts.items()} for r in reports]}\n"
        f"  {len(wanted)} buckets converged in {len(reports)} cycle(s), {elapsed:.1f} s"
    )
    show(figures)

    assert proxy.total(Fault.SLOWDOWN) > 300, figures  # the campaign really was under fire
    assert proxy.total(Fault.SERVER_ERROR) > 40, figures
    assert proxy.total(Fault.RESET) > 10, figures
    assert proxy.total(Fault.DELAY) >= 1, figures
    assert proxy.total(Fault.GARBAGE) + proxy.total(Fault.TRUNCATE) > 0, figures
    # Request for request, the metrics say what the proxy did.
    assert requests == dict(sorted(seen.items())), figures
    for outcome in ("throttled", "server_error", "connection"):
        assert reported[outcome] == expected[outcome], f"{outcome}:\n{figures}"
        assert retried[outcome] == expected[outcome], f"{outcome} retries:\n{figures}"
    assert reported["error"] == {}, figures
    # Within the retry budget: no bucket failed, no cycle failed or crashed, no internal error.
    assert all(r.counts[BucketState.FAILED] == 0 and r.fatal is None for r in reports), figures
    assert sum(failures.values()) == 0, figures
    assert cycles.get("failure", 0) == 0, figures
    assert daemon.stats.crashes == 0, figures
    assert daemon.stopping, figures
    crashes = [e for e in logs if e["event"] in ("cycle_crashed", "bucket_internal_error")]
    assert not crashes, crashes[:3]
    errors_logged = [e for e in logs if e.get("log_level") in ("error", "exception", "critical")]
    assert not errors_logged, errors_logged[:3]
    # Nothing written on the strength of an unreadable answer.
    assert read_after_unreadable(proxy, sorted(wanted)) == [], figures
    # The account, read directly: every bucket holds its definition.
    proxy.enabled = False
    assert not_converged(s3_client, wanted) == []
    assert proxy.owner_problems(MOTO_ACCOUNT) == []


# -- stalls past the read timeout -------------------------------------------------------


async def test_reads_that_stall_past_the_read_timeout_are_retried_and_counted_as_connection_failures(
    s3_client: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = arrange(s3_client, 30, seed=30, name="stall")
    proxy.operations = LIFECYCLE_OPERATIONS
    proxy.stall_seconds = 3.0
    proxy.rates = {Fault.STALL: 0.15}
    proxy.limits = {Fault.STALL: 6}
    service_env(monkeypatch, proxy)
    settings = load_settings()
    metrics = Metrics()
    policy = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.1)
    began = time.monotonic()
    async with S3Adapter(
        account=MOTO_ACCOUNT,
        region=MOTO_REGION,
        endpoint_url=proxy.url,
        connect_timeout=1,
        # Well above an answer of moto's on a loaded machine, well below the stall: only
        # the proxy's stalls time out.
        read_timeout=1.5,
        retry=policy,
        observer=metrics,
    ) as adapter:
        reconciler = build_reconciler(settings, Account(adapter, None), None, dry_run=False)
        with anyio.fail_after(60):
            report = await reconciler.run_cycle("campaign")
    elapsed = time.monotonic() - began
    samples = parse_samples(metrics.render().decode())
    stalls = proxy.by_operation(Fault.STALL)
    reported = by_label(samples, "lakecircle_s3_requests_total", "operation", outcome="connection")
    retried = by_label(samples, "lakecircle_s3_retries_total", "operation", reason="connection")
    figures = (
        f"{proxy.summary()}\nLakeCircle: connection failures {reported}, retries {retried};"
        f" cycle {dict(report.counts)} in {elapsed:.1f} s"
    )
    show(figures)
    assert sum(stalls.values()) >= 3, figures
    assert reported == stalls, figures
    assert retried == stalls, figures
    assert report.ok, figures
    proxy.enabled = False
    assert not_converged(s3_client, wanted) == [], figures
    assert elapsed < 2.0 * sum(stalls.values()) + 20, figures  # each stall cost the read timeout, not the stall


# -- garbled and truncated answers on chosen buckets ------------------------------------


async def test_a_garbled_or_truncated_lifecycle_read_fails_its_bucket_clearly_and_nothing_is_written(
    s3_client: Any, proxy: FaultProxy, tap: ServerTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = arrange(s3_client, 12, seed=12, name="garble")
    garbled, truncated = "garble-003", "garble-007"
    for bucket in (garbled, truncated):  # both hold a stale rule a sync would replace
        s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, **config_to_request(desired("stale", 9)))
    proxy.force("GetBucketLifecycleConfiguration", garbled, Fault.GARBAGE)
    proxy.force("GetBucketLifecycleConfiguration", truncated, Fault.TRUNCATE)
    service_env(monkeypatch, proxy)
    metrics = Metrics()
    tap.reset()
    report = await proxied_sync(proxy, metrics)
    results = {r.bucket: r for r in report.results}
    figures = f"{proxy.summary()}\nLakeCircle: {dict(report.counts)}; " + "; ".join(
        f"{b}: {results[b].error}" for b in (garbled, truncated)
    )
    show(figures)

    for bucket, words in ((garbled, "garbled or cut short"), (truncated, "Connection was closed")):
        result = results[bucket]
        assert result.state is BucketState.FAILED, figures
        assert result.stage == "read", figures
        assert result.error is not None, figures
        assert f"bucket {bucket}: GetBucketLifecycleConfiguration failed" in result.error, figures
        assert words in result.error, figures
        # Four attempts, every one unreadable, and then no write at all.
        assert [e.operation for e in proxy.bucket_events(bucket)] == ["GetBucketLifecycleConfiguration"] * 4, figures
        assert tap.counts[("PUT", bucket, "lifecycle")] == 0, figures
        assert tap.counts[("DELETE", bucket, "lifecycle")] == 0, figures
        assert [r.id for r in live(s3_client, bucket).rules] == ["stale"], figures
    others = {b: w for b, w in wanted.items() if b not in (garbled, truncated)}
    assert all(results[b].state in (BucketState.CHANGED, BucketState.IN_SYNC) for b in others), figures
    # Two reads failed for reasons that may pass: the cycle's total of removals is unknown,
    # so the others' removals waited and were not made; the next cycle makes them.
    assert report.guards == ("unknown_total",), figures
    assert report.rules_removed == 0, figures
    proxy.enabled = False
    proxy.clear_forced()
    again = await proxied_sync(proxy, Metrics())  # the next cycle, counted apart
    assert again.guards == (), figures
    assert not_converged(s3_client, others) == [], figures
    samples = parse_samples(metrics.render().decode())
    assert total(samples, "lakecircle_s3_retries_total", operation="GetBucketLifecycleConfiguration") == 6, figures


async def test_a_definition_download_cut_short_is_retried_not_a_crashed_cycle(
    s3_client: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = arrange(s3_client, 4, seed=4, name="cut")
    proxy.body_operations = frozenset({"GetObject"})
    proxy.force("GetObject", ENDPOINT, Fault.TRUNCATE, times=2)
    service_env(monkeypatch, proxy)
    metrics = Metrics()
    report = await proxied_sync(proxy, metrics)
    samples = parse_samples(metrics.render().decode())
    partial = report.definitions is not None and report.definitions.partial
    figures = f"{proxy.summary()}\nLakeCircle: {dict(report.counts)}, partial definitions: {partial}"
    show(figures)
    assert proxy.by_operation(Fault.TRUNCATE) == {"GetObject": 2}, figures
    assert by_label(samples, "lakecircle_s3_retries_total", "operation", reason="connection") == {"GetObject": 2}
    assert report.ok, figures
    assert report.definitions is not None, figures
    assert not report.definitions.partial, figures
    assert not_converged(s3_client, wanted) == [], figures


def test_the_proxy_names_the_operations_lakecircle_makes() -> None:
    cases = {
        ("GET", "/", b""): ("ListBuckets", None),
        ("GET", "/bkt?lifecycle", b""): ("GetBucketLifecycleConfiguration", "bkt"),
        ("PUT", "/bkt?lifecycle", b""): ("PutBucketLifecycleConfiguration", "bkt"),
        ("DELETE", "/bkt?lifecycle", b""): ("DeleteBucketLifecycle", "bkt"),
        ("GET", "/bkt?list-type=2&prefix=lc%2F", b""): ("ListObjectsV2", "bkt"),
        ("GET", "/bkt/lc/definition/a.toml", b""): ("GetObject", "bkt"),
        ("PUT", "/bkt/lc/history/x.json", b""): ("PutObject", "bkt"),
        ("HEAD", "/bkt", b""): ("HeadBucket", "bkt"),
        ("GET", "/bkt?location", b""): ("GetBucketLocation", "bkt"),
        ("GET", "/bkt?tagging", b""): ("GetBucketTagging", "bkt"),
        ("POST", "/", b"Action=GetCallerIdentity&Version=2011-06-15"): ("GetCallerIdentity", None),
    }
    assert {key: classify(*key) for key in cases} == cases


async def proxied_sync(proxy: FaultProxy, metrics: Metrics) -> CycleReport:
    """One sync cycle of the settings in the environment, through the proxy, with quick retries."""
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
    async with S3Adapter(
        account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=policy, observer=metrics
    ) as adapter:
        reconciler = build_reconciler(load_settings(), Account(adapter, None), None, dry_run=False)
        with anyio.fail_after(60):
            return await reconciler.run_cycle("campaign")


def stalling_adapter(proxy: FaultProxy, metrics: Metrics) -> S3Adapter:
    """An adapter through the proxy with 1 s timeouts (2 s an attempt) and quick retries."""
    return S3Adapter(
        account=MOTO_ACCOUNT,
        region=MOTO_REGION,
        endpoint_url=proxy.url,
        connect_timeout=1,
        read_timeout=1,
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05),
        observer=metrics,
    )


async def test_a_record_write_whose_answer_stalls_is_cut_off_and_retried(
    s3_client: Any, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A write-ahead record (PutObject) that the server never answers: the read timeout cuts
    # it off, the retry layer sends it again, and the bucket is written after it.
    wanted = arrange(s3_client, 3, seed=3, name="expect")
    proxy.stall_seconds = 30.0
    proxy.force("PutObject", ENDPOINT, Fault.STALL, times=1)
    service_env(monkeypatch, proxy)
    settings = load_settings()
    metrics = Metrics()
    began = time.monotonic()
    async with stalling_adapter(proxy, metrics) as adapter:
        assert adapter.attempt_timeout == 2
        reconciler = build_reconciler(settings, Account(adapter, None), None, dry_run=False)
        with anyio.fail_after(20):
            report = await reconciler.run_cycle("campaign")
    elapsed = time.monotonic() - began
    samples = parse_samples(metrics.render().decode())
    figures = f"{proxy.summary()}\nLakeCircle: {dict(report.counts)} in {elapsed:.1f} s"
    show(figures)
    assert proxy.by_operation(Fault.STALL) == {"PutObject": 1}, figures
    assert by_label(samples, "lakecircle_s3_retries_total", "operation", reason="connection") == {"PutObject": 1}
    assert report.ok, figures
    assert elapsed < 15, figures
    proxy.enabled = False
    assert not_converged(s3_client, wanted) == [], figures


async def test_a_large_write_that_stalls_before_100_continue_is_cut_off_by_the_attempt_timeout(
    s3_client: Any, proxy: FaultProxy
) -> None:
    # A body over SMALL_BODY is sent with "Expect: 100-continue", and aiohttp waits for the
    # go-ahead where botocore's read timeout does not apply: without a bound on the whole
    # attempt, a server that never sends it would hold the caller for good.
    s3_client.create_bucket(Bucket=ENDPOINT)
    proxy.stall_seconds = 30.0
    proxy.force("PutObject", ENDPOINT, Fault.STALL, times=1)
    metrics = Metrics()
    body = b" " * (SMALL_BODY + 1)
    began = time.monotonic()
    async with stalling_adapter(proxy, metrics) as adapter:
        assert adapter.attempt_timeout == 2
        with anyio.fail_after(20):
            await adapter.write_object(ENDPOINT, f"{PREFIX}log/large.json", body, "application/json")
    elapsed = time.monotonic() - began
    samples = parse_samples(metrics.render().decode())
    assert proxy.by_operation(Fault.STALL) == {"PutObject": 1}, proxy.summary()
    assert by_label(samples, "lakecircle_s3_retries_total", "operation", reason="connection") == {"PutObject": 1}
    assert elapsed < 15
    assert s3_client.get_object(Bucket=ENDPOINT, Key=f"{PREFIX}log/large.json")["ContentLength"] == len(body)


# -- SIGKILL of the daemon in the middle of a cycle ----------------------------------------


def history_afters(s3_client: Any) -> dict[str, list[set[str]]]:
    """Per bucket, the rule IDs each history record says were written."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=ENDPOINT, Prefix=f"{PREFIX}history/")
    afters: dict[str, list[set[str]]] = {}
    for page in pages:
        for entry in page.get("Contents", []):
            record = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key=entry["Key"])["Body"].read())
            rules = (record.get("after") or {}).get("Rules") or []
            afters.setdefault(record["bucket"], []).append({r["ID"] for r in rules})
    return afters


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_daemon_killed_mid_cycle_again_and_again_loses_no_change_and_converges(
    s3_client: Any, moto: str, tmp_path: Path
) -> None:
    rng = random.Random(9)
    count = 80
    arrange(s3_client, count, seed=80, name="kill")
    env = child_env(  # one replica killed and restarted: a lease would make each restart wait it out
        LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}",
        LCC_AWS_ACCOUNT=MOTO_ACCOUNT,
        LCC_AWS_REGION=MOTO_REGION,
        LCC_LOG_FORMAT="JSON",
        LCC_METRICS_ADDR="127.0.0.1:0",
        LCC_POLL_INTERVAL="3600",
        LCC_CONCURRENCY="4",
        LCC_MAX_REMOVALS="10000",
    )
    buckets = [f"kill-{i:03d}" for i in range(count)]
    initial = {b: {r.id for r in live(s3_client, b).rules} for b in buckets}
    mid_cycle = 0
    for kill in range(5):
        for bucket in rng.sample(buckets, 15):  # the definitions change between runs
            body = definition(bucket, rule(f"gen-{kill}", 40 + kill, "logs/"))
            s3_client.put_object(Bucket=ENDPOINT, Key=f"{PREFIX}definition/{bucket}.toml", Body=body)
        log = tmp_path / f"daemon-{kill}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "lakecircle", "daemon"], env=env, stdout=out, stderr=out)
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and '"state": "changed"' not in log.read_text():
                    assert proc.poll() is None, log.read_text()[-2000:]
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.3))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        mid_cycle += '"cycle_finished"' not in log.read_text()
    final = subprocess.run(
        [sys.executable, "-m", "lakecircle", "daemon", "--cycles", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    show(f"SIGKILL campaign: 5 kills, {mid_cycle} in the middle of a cycle; the final cycle exited 0")
    assert mid_cycle >= 3, "the kills did not land inside cycles"
    finished = [json.loads(line) for line in final.stderr.splitlines() if '"cycle_finished"' in line]
    assert finished, final.stderr[-2000:]
    assert finished[-1]["failed"] == 0, finished[-1]
    afters = history_afters(s3_client)
    for bucket in buckets:
        ids = {r.id for r in live(s3_client, bucket).rules}
        key = f"{PREFIX}definition/{bucket}.toml"
        rule_id = tomllib.loads(s3_client.get_object(Bucket=ENDPOINT, Key=key)["Body"].read().decode())
        wanted = {r["ID"] for r in rule_id["LifecycleConfiguration"]["Rules"]}
        assert ids == wanted, f"{bucket} holds {ids}, its definition says {wanted}"
        if ids != initial[bucket]:  # LakeCircle wrote it: a record says so
            assert ids in afters.get(bucket, []), f"{bucket}: no history record says it was given {ids}"
    changed = [b for b in buckets if {r.id for r in live(s3_client, b).rules} != initial[b]]
    assert len(changed) >= count // 2, f"only {len(changed)} buckets changed"
