"""The demo's world: every bundled example uploaded (the fleet folder too), and its buckets
synced through the command line against moto's server end as the examples say.

``test_entrypoints`` runs the whole demo as a process and reads what it prints; here the
demo's arrangement is synced once and each bucket's rules are read back from the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakecircle.app.demo import (
    DEMO_ACCOUNT,
    ENDPOINT_BUCKET,
    LOGS_BUCKETS,
    OVERRIDE_BUCKET,
    TAGGED_BUCKET,
    UNMANAGED_BUCKET,
    arrange,
    example_definitions,
)
from tests.conftest import MOTO_ACCOUNT
from tests.helpers import cli_env, holdings, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "definitions"
BASELINE = {"abort-incomplete-uploads": 0}
"""fleet/baseline.toml: every bucket but ``*-scratch`` (rule ID -> expiration days, 0: none)."""
LOGS = {"logs-infrequent-access": 0, "logs-expire": 90}
"""fleet/logs.toml: every ``*-logs`` bucket."""

AFTER = {
    # the pattern family: its two rules and the baseline's
    "acme-web-logs": {**BASELINE, **LOGS},
    # shared: another writer's rule stays beside the selectors' rules
    "acme-cdn-logs": {**BASELINE, **LOGS, "cdn-vendor-exports": 14},
    # the override: its own logs-expire (seven years) in place of the family's, and its own rule
    OVERRIDE_BUCKET: {**BASELINE, **LOGS, "logs-expire": 2557, "audit-noncurrent-expire": 0},
    # selected by its tag retention = "1y"
    TAGGED_BUCKET: {**BASELINE, "retention-1y": 365},
    # exact definitions keep their rules, and get the baseline's too
    "acme-legacy-exports": {**BASELINE, "exports-expire": 90, "everything-else-ia": 0},
    ENDPOINT_BUCKET: BASELINE,
    # nothing selects it: its own rule, untouched
    UNMANAGED_BUCKET: {"scratch-expire": 1},
}


def test_the_demo_uploads_every_example_file_the_fleet_folder_included() -> None:
    expected = {f"definition/{p.relative_to(EXAMPLES).as_posix()}" for p in EXAMPLES.rglob("*.toml")}

    uploaded = example_definitions()

    assert set(uploaded) == expected
    assert {
        "definition/fleet/baseline.toml",
        "definition/fleet/logs.toml",
        "definition/fleet/acme-audit-logs.toml",
        "definition/fleet/retention-1y.toml",
    } <= set(uploaded)
    assert uploaded["definition/fleet/logs.toml"] == (EXAMPLES / "fleet" / "logs.toml").read_bytes()


def test_the_demo_buckets_sync_as_the_fleet_example_says(moto: str, s3_client: Any, tmp_path: Path) -> None:
    assert DEMO_ACCOUNT == MOTO_ACCOUNT
    assert set(LOGS_BUCKETS) | {OVERRIDE_BUCKET, TAGGED_BUCKET} <= set(AFTER)
    arrange(s3_client)
    env = cli_env(moto, tmp_path / "home", LCC_ENDPOINT=f"s3://{ENDPOINT_BUCKET}/lifecycle/")

    planned = run_cli(env, "plan", "--show-unmanaged")
    synced = run_cli(env, "sync")
    again = run_cli(env, "plan", "--detailed-exitcode")

    assert planned.code == 0, str(planned)
    assert planned.stdout.splitlines()[-2:] == ["Unmanaged bucket(s), 1: no definition selects them.", "  acme-scratch"]
    assert synced.code == 0, str(synced)
    assert "1 bucket(s) unmanaged: no definition selects them (never read)." in synced.stdout
    assert holdings(s3_client, AFTER) == AFTER
    assert again.code == 0, str(again)


def test_explain_shows_the_override_of_the_demo_bucket_from_the_examples_folder(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9", tmp_path / "home")  # no account: nothing is read from S3
    for name in ("LCC_AWS_ACCOUNT", "LCC_AWS_REGION"):
        env.pop(name)

    explained = run_cli(env, "explain", OVERRIDE_BUCKET, "--definitions", str(EXAMPLES))

    assert explained.code == 0, str(explained)
    fleet = EXAMPLES / "fleet"
    assert f"    rule logs-expire: overridden by {fleet / 'acme-audit-logs.toml'}" in explained.stdout.splitlines()
    assert f'  {fleet / "logs.toml"}  (pattern "*-logs")' in explained.stdout.splitlines()
    assert "  Days = 2557" in explained.stdout.splitlines()
