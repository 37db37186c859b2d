"""deploy/prometheus/alerts.yml: promtool accepts it, and its unit tests pass and cover every alert.

``promtool test rules`` runs deploy/prometheus/alerts_test.yml, which feeds each alert
series over time and says when it must fire and when it must not. These tests also
check that every alert has both kinds of case there, that the alerts select only
metrics LakeCircle exposes (or multi-account mode adds: :func:`contract_metrics`), that
they keep the ``account`` label of a hub's series so that each fires per account, and
that the issue's list of alerts and deploy/README.md's alerts table name the same alerts
as the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy_common import (
    ACCOUNT,
    ALERTS,
    ALERTS_TEST,
    DEPLOY,
    TARGET_LABELS,
    account_labelled,
    alert_rules,
    contract_metrics,
    load_yaml,
    metric_names,
    require_binary,
    selector_labels,
)

EXPECTED = {
    # The issue's list: down, cycles failing, no successful cycle for three resync
    # intervals, drift persisting, S3 throttling sustained, definition errors, guards.
    "LakeCircleDown",
    "LakeCircleCyclesFailing",
    "LakeCircleNoSuccessfulCycle",
    "LakeCircleDriftPersisting",
    "LakeCircleS3Throttling",
    "LakeCircleDefinitionErrors",
    "LakeCircleGuardTripped",
    # Issue 16 (many accounts): an account the hub cannot work in.
    "LakeCircleAccountFailing",
    # Issue 17 (replicas): an account whose lease no replica holds.
    "LakeCircleLeaseUnheld",
    # Issue 19: buckets holding lifecycle fields LakeCircle does not know, never written.
    "LakeCircleBucketsUnsupported",
}

ACROSS_REPLICAS = {"LakeCircleLeaseUnheld"}
"""Alerts that judge an account's replicas together: they aggregate `by` the account, not `without`."""

PROMETHEUS_OWN = {"up"}
"""Series Prometheus makes itself, not LakeCircle."""


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool", "/usr/bin/promtool")
    return subprocess.run(  # noqa: S603 -- Debian's promtool on our own files
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_alerts_are_the_issues_list() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    assert set(names) == EXPECTED


def test_promtool_check_rules_accepts_the_alerts() -> None:
    result = _promtool("check", "rules", str(ALERTS), cwd=ALERTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def test_promtool_check_rules_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(ALERTS.read_text().replace("== 0 or absent(", "== 0 or absent(("))
    result = _promtool("check", "rules", str(broken), cwd=tmp_path)
    assert result.returncode != 0


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = _promtool("test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: one alert made more lenient breaks them."""
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    text = ALERTS.read_text()
    assert 'lakecircle_definition_errors{job="lakecircle"} > 0' in text
    (tmp_path / "alerts.yml").write_text(
        text.replace(
            'lakecircle_definition_errors{job="lakecircle"} > 0', 'lakecircle_definition_errors{job="lakecircle"} > 5'
        )
    )
    result = _promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "LakeCircleDefinitionErrors" in result.stdout + result.stderr


def test_promtool_unit_tests_catch_an_alert_that_sums_the_accounts_together(tmp_path: Path) -> None:
    """The multi-account unit tests can fail: an alert folding `account` away no longer names the failing one."""
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    text = ALERTS.read_text()
    folded = "sum without (trigger, result) ("
    assert text.count(folded) == 2
    (tmp_path / "alerts.yml").write_text(text.replace(folded, f"sum without (trigger, result, {ACCOUNT}) ("))
    result = _promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "LakeCircleCyclesFailing" in result.stdout + result.stderr


def test_every_alert_keeps_the_account_label_of_what_it_aggregates() -> None:
    """`by` would have to name `account` (and drop any other target label); `without` must never name it."""
    for rule in alert_rules():
        expr = rule["expr"]
        if not metric_names(expr) & account_labelled():
            continue
        if rule["alert"] in ACROSS_REPLICAS:
            clauses = re.findall(r"\bby\s*\(([^)]*)\)", expr)
            assert clauses, rule["alert"]
            assert all({ACCOUNT, "job"} <= {label.strip() for label in c.split(",")} for c in clauses), rule["alert"]
            assert not re.search(r"\bwithout\s*\(", expr), rule["alert"]
            continue
        assert not re.search(r"\b(?:by|on)\s*\(", expr), f"{rule['alert']}: aggregate `without` the folded labels"
        for clause in re.findall(r"\b(?:without|ignoring)\s*\(([^)]*)\)", expr):
            assert ACCOUNT not in {label.strip() for label in clause.split(",")}, rule["alert"]


def test_the_unit_tests_cover_a_failing_account_among_healthy_ones_and_single_account_series() -> None:
    spec = load_yaml(ALERTS_TEST)
    fired_for: dict[str, set[str]] = {}
    for test in spec["tests"]:
        accounts = {
            match for case in test["input_series"] for match in re.findall(r'account="(\d{12})"', case["series"])
        }
        for case in test.get("alert_rule_test", []):
            for alert in case["exp_alerts"]:
                fired = alert["exp_labels"].get(ACCOUNT)
                if fired is not None:
                    assert len(accounts) >= 2, f"{test['name']}: one account firing among others"
                    fired_for.setdefault(case["alertname"], set()).add(fired)
    per_account = {rule["alert"] for rule in alert_rules() if metric_names(rule["expr"]) & account_labelled()}
    assert set(fired_for) == per_account, f"no multi-account firing case for {per_account - set(fired_for)}"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    spec = load_yaml(ALERTS_TEST)
    assert spec["rule_files"] == [ALERTS.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in spec["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert firing == EXPECTED, f"no firing case for {EXPECTED - firing}"
    assert quiet == EXPECTED, f"no quiet case for {EXPECTED - quiet}"


def test_alerts_select_only_exposed_metrics_and_labels() -> None:
    exposed = contract_metrics()
    for rule in alert_rules():
        names = metric_names(rule["expr"]) - PROMETHEUS_OWN
        assert names <= set(exposed), f"{rule['alert']}: {names - set(exposed)} not exposed"
        for name, labels in selector_labels(rule["expr"]).items():
            if name not in PROMETHEUS_OWN:
                assert labels <= exposed[name] | TARGET_LABELS, f"{rule['alert']}: {name}{{{labels}}}"


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_no_successful_cycle_waits_three_default_resync_intervals() -> None:
    from lakecircle.settings import Settings

    rule = next(r for r in alert_rules() if r["alert"] == "LakeCircleNoSuccessfulCycle")
    three = 3 * Settings.model_fields["resync_interval"].default
    assert f"> {three:.0f}" in rule["expr"]
    assert f"[{three / 60:.0f}m" in rule["expr"]


def test_the_lease_alert_waits_two_default_lease_durations() -> None:
    from lakecircle.settings import Settings

    rule = next(r for r in alert_rules() if r["alert"] == "LakeCircleLeaseUnheld")
    two = 2 * Settings.model_fields["lease_seconds"].default
    assert rule["for"] == f"{two / 60:.0f}m"


@pytest.mark.parametrize(
    ("change", "alert"),
    [
        pytest.param(
            ("max by (job, account) (", "max by (job) ("),
            "LakeCircleLeaseUnheld",
            id="the lease alert judging all accounts together",
        ),
        pytest.param(
            ("group_left (account) lakecircle_info", "group_left () lakecircle_info"),
            "LakeCircleLeaseUnheld",
            id="the single-account form without the account of lakecircle_info",
        ),
        pytest.param(
            (
                "unless\n          min_over_time(lakecircle_leases_held",
                "or\n          min_over_time(lakecircle_leases_held",
            ),
            "LakeCircleNoSuccessfulCycle",
            id="no successful cycle judging standby replicas too",
        ),
    ],
)
def test_promtool_unit_tests_catch_a_lease_blind_alert(change: tuple[str, str], alert: str, tmp_path: Path) -> None:
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    text = ALERTS.read_text()
    old, new = change
    assert old in text
    (tmp_path / "alerts.yml").write_text(text.replace(old, new))
    result = _promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


@pytest.mark.parametrize("alert", sorted(EXPECTED))
def test_the_deploy_readme_alerts_table_lists(alert: str) -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`?(LakeCircle\w+)`?\s*\|", readme, flags=re.MULTILINE)
    assert alert in rows
    assert set(rows) == EXPECTED
