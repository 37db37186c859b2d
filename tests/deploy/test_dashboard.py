"""grafana/lakecircle.json: its queries name only what the exporter exposes, and return data.

The static tests read the dashboard's PromQL and compare the metric and label names with
a real exposition of :class:`~lakecircle.service.metrics.Metrics`. The end-to-end test runs
``lakecircle demo`` (the daemon against an embedded S3 server) and a real Prometheus
scraping it every second, then asks Prometheus every panel's query, and the alerts'
state, through its HTTP API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy_common import (
    ALERTS,
    DEPLOY,
    GRAFANA,
    TARGET_LABELS,
    alert_rules,
    dashboard,
    exposed_metrics,
    free_port,
    grouping_labels,
    load_yaml,
    metric_names,
    panel_exprs,
    panels,
    require_binary,
    selector_labels,
    substitute,
)

CONTRACT_TOPICS = {
    # The list of what the dashboard shows, by the metric that shows it.
    "cycles by result": "lakecircle_cycles_total",
    "cycle duration quantiles": "lakecircle_cycle_duration_seconds_bucket",
    "rules added": "lakecircle_rules_added_total",
    "rules removed": "lakecircle_rules_removed_total",
    "rules changed": "lakecircle_rules_changed_total",
    "failures by stage": "lakecircle_failures_total",
    "buckets by state": "lakecircle_buckets",
    "time since the last success": "lakecircle_last_success_timestamp_seconds",
    "S3 requests": "lakecircle_s3_requests_total",
    "S3 latency": "lakecircle_s3_request_duration_seconds_bucket",
    "S3 retries": "lakecircle_s3_retries_total",
    "definition files": "lakecircle_definition_files",
    "definition errors": "lakecircle_definition_errors",
}


# -- PromQL name extraction (the tests below rely on it) -----------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{job="x", le=~"1|2"}[5m])) or vector(0)', {"a_bucket"}),
        ("time() - max(b > 0)", {"b"}),
        ('(sum(rate(c{outcome="throttled"}[1m])) or vector(0)) / sum(rate(c[1m]))', {"c"}),
        ('histogram_quantile(0.99, sum by (operation, le) (rate(d_bucket{a="}"}[$__rate_interval])))', {"d_bucket"}),
        ("e unless on(job) f offset 5m and bool g", {"e", "f", "g"}),
        ('up{job="lakecircle"} == 0 or absent(up{job="lakecircle"})', {"up"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_labels_are_read_out_of_promql() -> None:
    expr = 'sum by (operation, le) (rate(d_bucket{job="$job", instance=~"$i"}[1m])) / on(job) group_left(x) e'
    assert selector_labels(expr) == {"d_bucket": {"job", "instance"}}
    assert grouping_labels(expr) == {"operation", "le", "job", "x"}


# -- the dashboard against the exporter ----------------------------------------------


def test_dashboard_is_valid_json_with_unique_panel_ids_and_queries() -> None:
    board = dashboard()
    assert board["uid"] == "lakecircle"
    ids = [p["id"] for p in board["panels"]] + [n["id"] for p in board["panels"] for n in p.get("panels", [])]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_panel_query_names_only_metrics_and_labels_the_exporter_exposes() -> None:
    exposed = exposed_metrics()
    exprs = panel_exprs(dashboard())
    assert len(exprs) >= 20
    for where, expr in exprs:
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr}"
        unknown = names - set(exposed)
        assert not unknown, f"{where}: {sorted(unknown)} not exposed by LakeCircle; exposed: {sorted(exposed)}"
        for name, labels in selector_labels(expr).items():
            assert labels <= exposed[name] | TARGET_LABELS, f"{where}: {name} has no label {labels - exposed[name]}"
        known = set().union(*(exposed[n] for n in names)) | TARGET_LABELS
        assert grouping_labels(expr) <= known, f"{where}: grouping by a label the metrics lack: {expr}"


def test_template_variables_query_exposed_metrics() -> None:
    exposed = exposed_metrics()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            inner = query.removeprefix("label_values(").rpartition(",")[0]
            assert metric_names(inner) <= set(exposed), query


@pytest.mark.parametrize(("topic", "metric"), sorted(CONTRACT_TOPICS.items()))
def test_dashboard_shows(topic: str, metric: str) -> None:
    shown = set().union(*(metric_names(expr) for _, expr in panel_exprs(dashboard())))
    assert metric in shown, f"no panel shows {topic} ({metric})"


def test_quantile_panels_use_histogram_quantile_over_buckets() -> None:
    for where, expr in panel_exprs(dashboard()):
        if any(name.endswith("_bucket") for name in metric_names(expr)):
            assert expr.startswith("histogram_quantile("), where
            assert "le" in grouping_labels(expr), f"{where}: the buckets must be summed by le"


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "lakecircle.yml")
    assert provider["apiVersion"] == 1
    [entry] = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"].startswith("/")
    sources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    [source] = sources["datasources"]
    assert source["type"] == "prometheus"
    datasource_variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert datasource_variable["query"] == source["type"]


# -- end to end: the demo daemon, a real Prometheus, every panel's query --------------


def _get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- loopback test servers
        return json.load(response)


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback test servers
        status: int = response.status
        return status


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    data = _get_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def _wait_for(what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"{what} not within {timeout}s (exit code {proc.poll()}); output:\n{tail}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``lakecircle demo`` running (no --cycles) with its metrics on a free port: (process, address, log)."""
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LCC_", "AWS_"))}
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and package
            [sys.executable, "-m", "lakecircle", "demo", "--metrics-addr", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        yield proc, f"127.0.0.1:{port}", log
    finally:
        _stop(proc, signal.SIGKILL)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], tuple[str, subprocess.Popen[bytes], Path]]]:
    """Starts /usr/bin/prometheus scraping a target every second, with LakeCircle's alerts loaded."""
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    started: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> tuple[str, subprocess.Popen[bytes], Path]:
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        (workdir / "alerts.yml").write_bytes(ALERTS.read_bytes())
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [{"job_name": "lakecircle", "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        port = free_port()
        log = workdir / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 -- Debian's prometheus, loopback only
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        started.append(proc)
        return f"http://127.0.0.1:{port}", proc, log

    try:
        yield start
    finally:
        for proc in started:
            _stop(proc, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_every_panel_query_returns_series_from_a_real_prometheus_scraping_the_demo(
    demo: tuple[subprocess.Popen[bytes], str, Path],
    prometheus: Callable[[str], tuple[str, subprocess.Popen[bytes], Path]],
) -> None:
    proc, address, demo_log = demo
    base, prom, prom_log = prometheus(address)

    # The demo's second cycle (after the SIGHUP it sends itself) has finished.
    _wait_for(
        "the demo's two cycles",
        lambda: "== cycle 2" in demo_log.read_text(errors="replace"),
        60,
        proc,
        demo_log,
    )
    _wait_for("Prometheus ready", lambda: _status(f"{base}/-/ready") == 200, 30, prom, prom_log)

    def scraped_enough() -> bool:
        # Several scrapes since the second cycle, so that rate() over 1m has samples.
        expr = "count_over_time(lakecircle_info[1m]) >= 5 and on() lakecircle_cycle_duration_seconds_count >= 2"
        return len(_query(base, expr)) == 1

    _wait_for("five scrapes of the demo", scraped_enough, 60, prom, prom_log)

    exprs = panel_exprs(dashboard())
    empty = [where for where, expr in exprs if not _query(base, substitute(expr))]
    assert not empty, f"panels whose query returned no series: {empty}"

    # The alerts load and evaluate on the real series; none fires for a healthy demo.
    rules = _get_json(f"{base}/api/v1/rules")["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"] if r["type"] == "alerting"}
    assert set(loaded) == {r["alert"] for r in alert_rules()}

    def rules_now() -> list[dict[str, Any]]:
        return [r for g in _get_json(f"{base}/api/v1/rules")["data"]["groups"] for r in g["rules"]]

    # A rule not evaluated yet reports the zero time, 0001-01-01.
    _wait_for(
        "every rule evaluated",
        lambda: all(not r["lastEvaluation"].startswith("0001") for r in rules_now()),
        30,
        prom,
        prom_log,
    )
    drifting = _query(base, 'sum(lakecircle_buckets{state=~"drifted|diverging"}) > 0')
    expected = {r["alert"]: "inactive" for r in alert_rules()}
    # The demo's state decides this one: pending (its `for` is an hour) while a bucket drifts.
    expected["LakeCircleDriftPersisting"] = "pending" if drifting else "inactive"
    states = {}
    for rule in rules_now():
        assert rule["health"] == "ok", rule
        states[rule["name"]] = rule["state"]
    assert states == expected

    # The container's HEALTHCHECK script finds /healthz the way the image runs it.
    check = DEPLOY / "healthcheck.py"
    env = {**os.environ, "LCC_METRICS_ADDR": address}
    assert subprocess.run([sys.executable, check], env=env, timeout=30, check=False).returncode == 0  # noqa: S603

    # Ctrl-C stops the demo cleanly.
    assert _stop(proc, signal.SIGINT, timeout=30) == 0, demo_log.read_text(errors="replace")[-3000:]
    closed = {**os.environ, "LCC_METRICS_ADDR": address}
    result = subprocess.run([sys.executable, check], env=closed, timeout=30, check=False, capture_output=True)  # noqa: S603
    assert result.returncode == 1
