"""grafana/lakecircle.json: its queries name only what the exporter exposes, and return data.

The static tests read the dashboard's PromQL and compare the metric and label names with
real expositions of :class:`~lakecircle.service.metrics.Metrics`, single-account and
multi-account, which hold the contract in :mod:`tests.deploy_common` (``account`` on the
series of :data:`ACCOUNT_LABELLED`, the hub-only gauges). The end-to-end tests run a real
Prometheus scraping every second, then ask it every panel's query, and the alerts' state,
through its HTTP API: once scraping ``lakecircle demo`` (the daemon against an embedded S3
server, single-account mode: no ``account`` label anywhere), once scraping what a hub's
``Metrics`` of three accounts exposes, with one account failing.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lakecircle.core.definitions import Definitions
from lakecircle.core.lease import Transition
from lakecircle.core.report import BucketResult, BucketState, CycleReport
from lakecircle.service.metrics import Metrics
from tests.deploy_common import (
    ACCOUNT,
    ALERTS,
    DEPLOY,
    GRAFANA,
    GRAFANA_VARIABLES,
    MULTI_ACCOUNT_ONLY,
    TARGET_LABELS,
    account_labelled,
    alert_rules,
    contract_metrics,
    dashboard,
    declared_contract,
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
    # Issue 16 (many accounts).
    "accounts by state": "lakecircle_accounts",
    "accounts failing": "lakecircle_account_consecutive_failed_cycles",
    # Issue 17 (replicas).
    "leases held": "lakecircle_leases_held",
    "lease transitions": "lakecircle_lease_transitions_total",
}

LEASE_METRICS = frozenset({"lakecircle_leases_held", "lakecircle_lease_transitions_total"})
"""The series of a replica with leases on (LCC_LEASE_SECONDS above 0): none with leases off."""


def hub_only(expr: str) -> bool:
    """A query of series only a hub exposes: it returns nothing for a single-account LakeCircle."""
    return metric_names(expr) <= set(MULTI_ACCOUNT_ONLY)


def lease_only(expr: str) -> bool:
    """A query of the leases' series: it returns nothing with leases off."""
    return metric_names(expr) <= LEASE_METRICS


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
    exposed = contract_metrics()
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
    exposed = contract_metrics()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            inner, _, label = query.removeprefix("label_values(").removesuffix(")").rpartition(",")
            assert metric_names(inner) <= set(exposed), query
            for name in metric_names(inner):
                assert label.strip() in exposed[name] | TARGET_LABELS, query


def _variable(name: str) -> dict[str, Any]:
    return next(v for v in dashboard()["templating"]["list"] if v["name"] == name)


def test_the_account_variable_lists_a_hubs_accounts_and_all_matches_series_without_the_label() -> None:
    variable = _variable(ACCOUNT)
    assert variable["type"] == "query"
    assert re.fullmatch(r"label_values\(lakecircle_buckets(\{[^}]*\})?, account\)", variable["query"]["query"])
    assert variable["definition"] == variable["query"]["query"]
    assert variable["includeAll"] is True
    assert variable["multi"] is True
    assert variable["current"]["value"] == ["$__all"]
    # Grafana puts allValue into account=~"...": it must match the absent label (single-account mode) too.
    assert re.fullmatch(variable["allValue"], "")
    assert re.fullmatch(variable["allValue"], "111111111111")
    assert GRAFANA_VARIABLES["$account"] == variable["allValue"]
    names = [v["name"] for v in dashboard()["templating"]["list"]]
    assert names.index(ACCOUNT) > names.index("instance"), "it lists the accounts of the chosen instances"


def test_every_query_of_an_account_labelled_metric_filters_by_the_account_variable() -> None:
    labelled = account_labelled()
    for where, expr in panel_exprs(dashboard()):
        for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
            name, matchers = match.groups()
            if name in labelled:
                assert 'account=~"$account"' in matchers, f"{where}: {name} is not filtered by the account"
            else:
                # lakecircle_info's account is the service's own; the definitions belong to no account.
                assert ACCOUNT not in matchers, f"{where}: {name} has no account label to filter by"


def test_the_lease_panels_show_each_replica_and_say_they_are_empty_with_leases_off() -> None:
    lease_panels = [p for p in panels(dashboard()) if all(lease_only(t["expr"]) for t in p["targets"])]
    assert {p["title"] for p in lease_panels} == {"Leases held", "Lease transitions"}
    for panel in lease_panels:
        assert "Empty with leases off (LCC_LEASE_SECONDS=0)" in panel["description"], panel["title"]
    [held] = [p for p in lease_panels if p["title"] == "Leases held"]
    assert grouping_labels(held["targets"][0]["expr"]) == {"instance"}
    assert held["targets"][0]["legendFormat"] == "{{instance}}"


def test_hub_only_panels_say_so() -> None:
    hub_panels = [p for p in panels(dashboard()) if all(hub_only(t["expr"]) for t in p["targets"])]
    assert {p["title"] for p in hub_panels} >= {"Accounts by state", "Failed cycles in a row, by account"}
    for panel in hub_panels:
        assert "empty for a single-account LakeCircle" in panel["description"], panel["title"]


def test_the_per_account_panels_group_by_account_and_name_it() -> None:
    by_account = [(p, t) for p in panels(dashboard()) for t in p["targets"] if ACCOUNT in grouping_labels(t["expr"])]
    assert len(by_account) >= 5
    for panel, target in by_account:
        assert "{{account}}" in target["legendFormat"], panel["title"]


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
    # With leases on the demo holds its account's lease, and the lease panels show it; with
    # leases off there is no lease series and they stay empty, as the hub's panels do.
    leases = bool(_query(base, "lakecircle_leases_held"))
    if leases:
        assert _query(base, "lakecircle_leases_held == 1"), "the demo's one replica holds its lease"
    optional = [where for where, expr in exprs if hub_only(expr) or (lease_only(expr) and not leases)]
    empty = [where for where, expr in exprs if where not in optional and not _query(base, substitute(expr))]
    assert not empty, f"panels whose query returned no series: {empty}"
    # Single-account mode: no account label anywhere, so the account variable offers only All
    # (which the queries above used), and the hub's own panels stay empty.
    assert _get_json(f"{base}/api/v1/label/{ACCOUNT}/values?match[]=lakecircle_buckets")["data"] == []
    hub = [where for where, expr in exprs if hub_only(expr)]
    assert hub, "the dashboard has panels of a hub's own series"
    assert not [where for where, expr in exprs if hub_only(expr) and _query(base, substitute(expr))]

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
    expected = {r["alert"]: "inactive" for r in alert_rules()}
    # The demo's buckets drift and are repaired while the test runs, so this one is pending
    # (its `for` is an hour) or inactive depending on the instant of its last evaluation, which
    # no query made afterwards can see again; it is never firing. promtool's unit tests hold its logic.
    states = {}
    for rule in rules_now():
        assert rule["health"] == "ok", rule
        states[rule["name"]] = rule["state"]
    assert states.get("LakeCircleDriftPersisting") in {"pending", "inactive"}, states
    expected["LakeCircleDriftPersisting"] = states["LakeCircleDriftPersisting"]
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


# -- end to end: what a hub of three accounts exposes, one of them failing -----------

HEALTHY = ("111111111111", "222222222222")
FAILING = "333333333333"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def _cycle(*, now: float, fatal: str | None = None) -> CycleReport:
    """A resync of one account: two buckets in sync, or ``fatal`` (the account could not be worked in)."""
    in_sync = () if fatal else (BucketResult("logs", BucketState.IN_SYNC), BucketResult("data", BucketState.IN_SYNC))
    definitions = Definitions(buckets={}, invalid={}, problems=(), files=("fleet.toml",), unreadable=())
    return CycleReport(
        cycle_id="c0ffee",
        trigger="resync",
        dry_run=False,
        started_at=now - 2.0,
        duration=2.0,
        results=in_sync,
        definitions=definitions,
        buckets_listed=len(in_sync),
        fatal=fatal,
        counts=Counter(r.state for r in in_sync),
    )


def hub_exposition(now: float) -> str:
    """What a hub of three accounts exposes, one of them failing: ``Metrics(multi_account=True)``'s exposition.

    The healthy accounts each ran a cycle with S3 requests (one retried); the failing
    account's role could not be assumed for four cycles in a row. The hub itself listed the
    definitions. This replica holds the three accounts' leases (renewed once).
    """
    metrics = Metrics(multi_account=True, leases=True)
    metrics.set_info("0.1.0", "SYNC", "999999999999")
    metrics.on_request("ListObjectsV2", "success", 0.02)
    for account in (*HEALTHY, FAILING):
        metrics.lease_held(account, True)
        metrics.lease_transition(account, Transition.ACQUIRED)
        metrics.lease_transition(account, Transition.RENEWED)
    for account in HEALTHY:
        fed = metrics.account(account)
        fed.on_request("ListBuckets", "success", 0.01)
        fed.on_request("GetBucketLifecycleConfiguration", "throttled", 0.01)
        fed.on_retry("GetBucketLifecycleConfiguration", "throttled", 0.2)
        fed.on_request("GetBucketLifecycleConfiguration", "success", 0.01)
        fed.observe_cycle(_cycle(now=now), now=now)
    failing = metrics.account(FAILING)
    for cycles_ago in range(4, 0, -1):
        failing.observe_cycle(_cycle(now=now - 600 * cycles_ago, fatal="role not assumed"), now=now - 600 * cycles_ago)
    metrics.observe_accounts({HEALTHY[0]: "managed", HEALTHY[1]: "managed", FAILING: "failed"})
    return metrics.render().decode()


def test_the_hub_exposition_holds_the_contract() -> None:
    text = hub_exposition(1000.0)
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            found.setdefault(match.group(1), set()).update(re.findall(r'(\w+)="', match.group(2) or ""))
    assert found == declared_contract()
    assert 'lakecircle_account_consecutive_failed_cycles{account="333333333333"} 4.0' in text


@pytest.fixture
def hub_target() -> Iterator[str]:
    """An HTTP server on loopback answering /metrics with :func:`hub_exposition`: its address."""
    body = hub_exposition(time.time()).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", Metrics.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # no access log on the test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_every_panel_query_returns_a_hubs_series_for_all_accounts_and_for_one(
    hub_target: str,
    prometheus: Callable[[str], tuple[str, subprocess.Popen[bytes], Path]],
) -> None:
    base, prom, prom_log = prometheus(hub_target)
    _wait_for("Prometheus ready", lambda: _status(f"{base}/-/ready") == 200, 30, prom, prom_log)
    _wait_for(
        "three scrapes", lambda: bool(_query(base, "count_over_time(lakecircle_info[1m]) >= 3")), 30, prom, prom_log
    )

    # The account variable's query offers the three accounts.
    offered = _get_json(f"{base}/api/v1/label/{ACCOUNT}/values?match[]=lakecircle_buckets")["data"]
    assert offered == [*HEALTHY, FAILING]

    exprs = panel_exprs(dashboard())
    empty = [where for where, expr in exprs if not _query(base, substitute(expr))]
    assert not empty, f"panels whose query returned no series with every account: {empty}"

    chosen = HEALTHY[1]
    one = {**GRAFANA_VARIABLES, "$account": chosen}
    for where, expr in exprs:
        result = _query(base, substitute(expr, one))
        assert result, f"{where}: no series for account {chosen}"
        if not metric_names(expr) & account_labelled():
            continue  # lakecircle_info's account is the hub's own (LCC_AWS_ACCOUNT), whichever account is chosen
        others = {r["metric"].get(ACCOUNT) for r in result} - {None, chosen}
        assert not others, f"{where}: series of {others} shown for account {chosen}"

    # The alerts evaluate on a hub's series: the failing account, and only it, fires LakeCircleAccountFailing.
    def account_failing() -> set[str]:
        alerts = _get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
        return {
            a["labels"].get(ACCOUNT, "")
            for a in alerts
            if a["labels"]["alertname"] == "LakeCircleAccountFailing" and a["state"] == "firing"
        }

    _wait_for("LakeCircleAccountFailing", lambda: bool(account_failing()), 30, prom, prom_log)
    assert account_failing() == {FAILING}
    rules = _get_json(f"{base}/api/v1/rules")["data"]["groups"]
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
