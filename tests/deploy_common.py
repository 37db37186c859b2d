"""Helpers shared by the tests of ``deploy/`` and ``grafana/``: paths, tools, PromQL names.

The deployment files are part of the product, so their tests read them as a user's
tools would (YAML, JSON, promtool, Prometheus) and check them against the code they
describe: the metric names :class:`~lakecircle.service.metrics.Metrics` exposes, the settings
:mod:`lakecircle.settings` accepts, the operations :mod:`lakecircle.adapters.s3` calls.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakecircle.service.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
GRAFANA = REPO / "grafana"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = GRAFANA / "lakecircle.json"


def require_binary(name: str, path: str | None = None) -> str:
    """The path of a tool the test needs: a failure on CI when it is missing, else a skip.

    The Makefile's ``tools`` target installs Debian's ``prometheus`` package (promtool
    and the server) on CI, so a missing binary there is a broken CI, not a reason to skip.
    """
    found = path if path is not None and Path(path).exists() else shutil.which(name)
    if found is None:
        message = f"{name} not found: install Debian's prometheus package (make tools does, as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def load_yaml_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: ``!Ref x`` reads as ``{"Ref": x}``, ``!Sub s`` as ``{"Fn::Sub": s}``."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_form)


def load_cloudformation(path: Path) -> Any:
    """A CloudFormation template in YAML, its short-form functions spelled out as in JSON."""
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 -- a SafeLoader with CloudFormation's tags


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of deploy/prometheus/alerts.yml, in order."""
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# -- the dashboard --------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel with queries, rows' nested panels included."""
    found: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        found.extend(panel.get("panels", []))
        if panel.get("type") != "row":
            found.append(panel)
    return found


def panel_exprs(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title and refId, PromQL expression) for every query of every panel."""
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


GRAFANA_VARIABLES = {
    # What Grafana would put in place of its variables, for running the queries outside it.
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$job": "lakecircle",
    "$instance": ".+",
    "$account": ".*",  # All: a single-account LakeCircle's series have no account label
}


def substitute(expr: str, values: dict[str, str] = GRAFANA_VARIABLES) -> str:
    """``expr`` with the dashboard's variables replaced (longest names first); unknown ones fail."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    assert "$" not in expr, f"a variable the tests cannot replace is left in: {expr}"
    return expr


# -- PromQL: the metric and label names an expression uses --------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\s*\()(?![\w:])")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out)."""
    text = _STRING.sub('""', expr)
    names = {m.group(1) for m in _SELECTOR.finditer(text) if m.group(1)}
    text = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names |= {m.group(1) for m in _IDENTIFIER.finditer(text) if m.group(1).lower() not in _KEYWORDS}
    return names


def selector_labels(expr: str) -> dict[str, set[str]]:
    """For each metric selected with ``{...}``, the label names its matchers use."""
    text = _STRING.sub('""', expr)
    labels: dict[str, set[str]] = {}
    for match in _SELECTOR.finditer(text):
        if match.group(1):
            labels.setdefault(match.group(1), set()).update(_MATCHER_LABEL.findall(match.group(2)))
    return labels


def grouping_labels(expr: str) -> set[str]:
    """The label names of every ``by``/``without``/``on``/``ignoring``/``group_*`` clause."""
    text = _STRING.sub('""', expr)
    return {label.strip() for clause in _GROUPING.findall(text) for label in clause.split(",") if label.strip()}


TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series."""


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name LakeCircle's exporter can expose, with its label names.

    Read from a real exposition of :class:`~lakecircle.service.metrics.Metrics` with leases
    on (``LCC_LEASE_SECONDS`` above 0, the default), after one S3 request and one retry were
    observed so that the labelled series that appear only then are in it too. Histograms
    appear as their ``_bucket``, ``_sum`` and ``_count``.
    """
    metrics = Metrics(leases=True)
    metrics.on_request("ListBuckets", "success", 0.01)
    metrics.on_retry("ListBuckets", "throttled", 0.2)
    return series_labels(metrics.render().decode())


def hub_exposed_metrics() -> dict[str, set[str]]:
    """:func:`exposed_metrics` of a hub: ``Metrics(multi_account=True, leases=True)``, one member account.

    The account and the hub's own work have each observed one request and one retry, so
    that every series a hub can expose is in it (the account's others exist from the start).
    """
    metrics = Metrics(multi_account=True, leases=True)
    for fed in (metrics, metrics.account("111111111111")):
        fed.on_request("ListBuckets", "success", 0.01)
        fed.on_retry("ListBuckets", "throttled", 0.2)
    return series_labels(metrics.render().decode())


def series_labels(exposition: str) -> dict[str, set[str]]:
    """Each series name of a text exposition, with the names of the labels its samples carry."""
    found: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        series = line.rpartition(" ")[0]
        name, _, labels = series.partition("{")
        found.setdefault(name, set()).update(_MATCHER_LABEL.findall(_STRING.sub('""', labels)))
    return found


# -- multi-account mode: the metrics contract of issue 16 -----------------------------

ACCOUNT = "account"
"""The label a hub (LCC_ACCOUNTS set) adds to the series below: the 12-digit account ID."""

ACCOUNT_LABELLED = frozenset(
    {
        # the cycles
        "lakecircle_rules_added_total",
        "lakecircle_rules_removed_total",
        "lakecircle_rules_changed_total",
        "lakecircle_failures_total",
        "lakecircle_cycles_total",
        "lakecircle_cycle_duration_seconds",
        "lakecircle_last_success_timestamp_seconds",
        # the buckets
        "lakecircle_buckets",
        "lakecircle_verification_lag_seconds",
        "lakecircle_external_drift_total",
        "lakecircle_server_dropped_fields",
        # the guards
        "lakecircle_guard_trips_total",
        # S3 requests
        "lakecircle_s3_requests_total",
        "lakecircle_s3_request_duration_seconds",
        "lakecircle_s3_retries_total",
        "lakecircle_s3_request_rate_limit",
        # the leases (issue 17): one per account
        "lakecircle_leases_held",
        "lakecircle_lease_transitions_total",
    }
)
"""Metrics whose series carry ``account`` in multi-account mode, and no ``account`` in single-account mode.

The definitions' gauges (one set of definitions for every account) and ``lakecircle_info``
(whose ``account`` is the service's own, LCC_AWS_ACCOUNT) keep their labels. A series of
the service's own work (a poll of the definitions, Organizations, the accounts file) has
``account=""``, which Prometheus stores as no label.
"""

ACCOUNT_STATES = ("managed", "failed", "skipped")

MULTI_ACCOUNT_ONLY: dict[str, frozenset[str]] = {
    # Exposed by a hub only; a single-account LakeCircle has no such series.
    "lakecircle_accounts": frozenset({"state"}),
    "lakecircle_account_consecutive_failed_cycles": frozenset({ACCOUNT}),
}

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _family(series_name: str) -> str:
    """The metric a series belongs to: a histogram's ``_bucket``, ``_sum`` and ``_count`` are its own."""
    for suffix in _HISTOGRAM_SUFFIXES:
        base = series_name.removesuffix(suffix)
        if base != series_name and base in ACCOUNT_LABELLED:
            return base
    return series_name


def account_labelled() -> set[str]:
    """Every series name (histograms' parts included) that carries ``account`` in multi-account mode."""
    names = {name for name in exposed_metrics() if _family(name) in ACCOUNT_LABELLED}
    return names | {name for name, labels in MULTI_ACCOUNT_ONLY.items() if ACCOUNT in labels}


def declared_contract() -> dict[str, set[str]]:
    """:func:`exposed_metrics` with what multi-account mode adds by the contract above.

    Written from the contract, not measured: a hub's exporter must expose exactly this
    (:func:`hub_exposed_metrics`, beside a single-account one's :func:`exposed_metrics`).
    """
    found = exposed_metrics()
    for name in account_labelled():
        found[name] = found.get(name, set()) | {ACCOUNT}
    for name, labels in MULTI_ACCOUNT_ONLY.items():
        found[name] = found.get(name, set()) | set(labels)
    return found


def contract_metrics() -> dict[str, set[str]]:
    """What dashboards and alerts may name: every series of either mode, with the labels of either.

    Measured on the exporter in both modes; that it equals :func:`declared_contract` is a test.
    """
    found = exposed_metrics()
    for name, labels in hub_exposed_metrics().items():
        found[name] = found.get(name, set()) | labels
    return found
