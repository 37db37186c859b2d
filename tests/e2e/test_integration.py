"""The S3 path end to end: moto's server over HTTP, requests counted where the server sees them."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lakecircle.adapters.local import LocalDefinitionSource
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.app.cli import cli
from lakecircle.core.model import LifecycleConfig, Rule, config_to_request
from lakecircle.core.render import config_toml
from lakecircle.core.report import BucketState
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.loader import DefinitionLoader
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ServerTap

# Everything here is a feature moto's server stores and returns unchanged; the features
# it drops (object-size filters, NewerNoncurrentVersions on expiration, the minimum
# object size) are covered against stub clients and the in-memory store.
RULES: list[dict[str, Any]] = [
    {
        "ID": "logs-archive",
        "Status": "Enabled",
        "Filter": {"Prefix": "logs/"},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
        "Expiration": {"Days": 365},
    },
    {
        "ID": "tagged-tmp",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}},
        "Expiration": {"Days": 7},
    },
    {
        "ID": "versions",
        "Status": "Disabled",
        "Filter": {"Tag": {"Key": "keep", "Value": "no"}},
        "NoncurrentVersionTransitions": [
            {"NoncurrentDays": 30, "StorageClass": "STANDARD_IA", "NewerNoncurrentVersions": 2}
        ],
        "NoncurrentVersionExpiration": {"NoncurrentDays": 60},
    },
    {
        "ID": "uploads",
        "Status": "Enabled",
        "Filter": {},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    },
    {
        "ID": "dated",
        "Status": "Enabled",
        "Filter": {"Prefix": "fy24/"},
        "Transitions": [{"Date": "2027-01-01T00:00:00Z", "StorageClass": "DEEP_ARCHIVE"}],
    },
]
LEGACY_RULES: list[dict[str, Any]] = [
    {"ID": "old-exports", "Status": "Enabled", "Prefix": "exports/", "Expiration": {"Days": 90}},
    {"ID": "old-rest", "Status": "Enabled", "Prefix": "", "Transitions": [{"Days": 60, "StorageClass": "GLACIER"}]},
]


def config(rules: list[dict[str, Any]]) -> LifecycleConfig:
    return LifecycleConfig(tuple(Rule.model_validate(r) for r in rules))


def reordered(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = copy.deepcopy(rules)[::-1]
    for r in out:
        if "Transitions" in r:
            r["Transitions"].reverse()
        and_ = r.get("Filter", {}).get("And")
        if and_:
            and_["Tags"].reverse()
    return out


def drifted(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = copy.deepcopy(rules)
    out[0]["Expiration"]["Days"] = 400
    return out


STATES: dict[str, list[dict[str, Any]] | None] = {
    "state-none": None,
    "state-identical": RULES,
    "state-reordered": reordered(RULES),
    "state-drifted": drifted(RULES),
    "state-extra": [*RULES, {"ID": "foreign", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}],
    "state-fewer": RULES[:2],
}
UNCHANGED = {"state-identical", "state-reordered"}


def arrange(s3_client: Any, directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    for bucket, live in STATES.items():
        s3_client.create_bucket(Bucket=bucket)
        if live is not None:
            s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, **config_to_request(config(live)))
        (directory / f"{bucket}.toml").write_text(config_toml(bucket, config(RULES)))
    s3_client.create_bucket(Bucket="legacy-form")
    s3_client.put_bucket_lifecycle_configuration(Bucket="legacy-form", **config_to_request(config(LEGACY_RULES)))
    (directory / "legacy-form.toml").write_text(config_toml("legacy-form", config(LEGACY_RULES)))


@pytest.fixture
def lcc_env(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_client.create_bucket(Bucket="lcc-endpoint")
    monkeypatch.setenv("LCC_ENDPOINT", "s3://lcc-endpoint/lc/")
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_LOG_FORMAT", "JSON")
    monkeypatch.setenv("LCC_APP_LEVEL", "WARNING")


def test_sync_then_plan_reports_no_changes_and_writes_once_per_changed_bucket(
    s3_client: Any, tap: ServerTap, tmp_path: Path, lcc_env: None
) -> None:
    arrange(s3_client, tmp_path / "defs")
    tap.reset()
    runner = CliRunner()
    synced = runner.invoke(cli, ["sync", "--definitions", str(tmp_path / "defs")])
    assert synced.exit_code == 0, synced.output
    changed = len(STATES) - len(UNCHANGED)
    assert tap.total("PUT") + tap.total("DELETE") == changed
    assert f"{changed} bucket(s) changed" in synced.output
    planned = runner.invoke(cli, ["plan", "--definitions", str(tmp_path / "defs"), "--detailed-exitcode"])
    assert planned.exit_code == 0, planned.output
    assert "No changes." in planned.output
    assert tap.total("PUT") + tap.total("DELETE") == changed  # plan wrote nothing


def test_plan_detailed_exitcode_is_2_with_pending_changes_and_json_lists_them(
    s3_client: Any, tmp_path: Path, lcc_env: None
) -> None:
    arrange(s3_client, tmp_path / "defs")
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "--definitions", str(tmp_path / "defs"), "--detailed-exitcode"])
    assert result.exit_code == 2, result.output
    assert "~ rule logs-archive" in result.output
    assert "~ Expiration.Days: 400 -> 365" in result.output
    as_json = runner.invoke(cli, ["plan", "--definitions", str(tmp_path / "defs"), "--output", "json"])
    document = json.loads(as_json.output)
    actions = {b["bucket"]: b["action"] for b in document["buckets"]}
    assert actions["state-none"] == "put"
    assert "state-identical" not in actions  # buckets in sync are counted, not listed
    assert document["report"]["counts"]["in_sync"] == 3  # identical, reordered, legacy-form
    removed = next(b for b in document["buckets"] if b["bucket"] == "state-extra")["removed"]
    assert [r["ID"] for r in removed] == ["foreign"]


def test_empty_definition_deletes_with_one_request(
    s3_client: Any, tap: ServerTap, tmp_path: Path, lcc_env: None
) -> None:
    s3_client.create_bucket(Bucket="to-clear")
    s3_client.put_bucket_lifecycle_configuration(Bucket="to-clear", **config_to_request(config(RULES)))
    (tmp_path / "clear.toml").write_text('BucketName = "to-clear"\n[LifecycleConfiguration]\nRules = []\n')
    tap.reset()
    result = CliRunner().invoke(cli, ["sync", "--definitions", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert tap.total("DELETE") == 1
    assert tap.total("PUT") == 0
    with pytest.raises(s3_client.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        s3_client.get_bucket_lifecycle_configuration(Bucket="to-clear")


def test_export_then_plan_reports_no_changes(s3_client: Any, tmp_path: Path, lcc_env: None) -> None:
    arrange(s3_client, tmp_path / "defs")
    runner = CliRunner()
    exported = runner.invoke(cli, ["export", "--output", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    files = sorted(p.name for p in (tmp_path / "out").glob("*.toml"))
    assert files == sorted([*(f"{b}.toml" for b, live in STATES.items() if live is not None), "legacy-form.toml"])
    planned = runner.invoke(cli, ["plan", "--definitions", str(tmp_path / "out"), "--detailed-exitcode"])
    assert planned.exit_code == 0, planned.output
    assert "No changes." in planned.output


def test_export_of_named_buckets_only(s3_client: Any, tmp_path: Path, lcc_env: None) -> None:
    arrange(s3_client, tmp_path / "defs")
    result = CliRunner().invoke(cli, ["export", "--bucket", "legacy-form", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["legacy-form.toml"]


def test_export_names_each_bucket_it_could_not_export_exits_1_and_writes_the_others(
    s3_client: Any, tap: ServerTap, tmp_path: Path, lcc_env: None
) -> None:
    arrange(s3_client, tmp_path / "defs")
    tap.deny.add("legacy-form")
    result = CliRunner().invoke(
        cli,
        ["export", "--bucket", "legacy-form", "--bucket", "state-drifted", "--bucket", "no-such-bucket",
         "--output", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("  legacy-form: not exported: ") for line in lines), lines
    assert "  no-such-bucket: not exported: no such bucket in the account" in lines
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["state-drifted.toml"]


def test_export_to_an_output_that_cannot_be_written_says_so_in_one_line(
    s3_client: Any, tmp_path: Path, lcc_env: None
) -> None:
    arrange(s3_client, tmp_path / "defs")
    (tmp_path / "a-file").write_text("")
    result = CliRunner().invoke(cli, ["export", "--output", str(tmp_path / "a-file" / "out")])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert f"Error: cannot write {tmp_path / 'a-file' / 'out'}: Not a directory;" in result.output
    assert "Traceback" not in result.output


def test_access_denied_on_one_bucket_fails_it_and_syncs_the_others(
    s3_client: Any, tap: ServerTap, tmp_path: Path, lcc_env: None
) -> None:
    arrange(s3_client, tmp_path / "defs")
    tap.reset()
    tap.deny.add("state-drifted")
    result = CliRunner().invoke(cli, ["sync", "--definitions", str(tmp_path / "defs")])
    assert result.exit_code == 1
    failure_lines = [line for line in result.output.splitlines() if line.strip().startswith("failed:")]
    assert len(failure_lines) == 1
    assert "state-drifted" in failure_lines[0]
    assert "AccessDenied" in failure_lines[0]
    assert "grant" in failure_lines[0]  # says what to do
    assert tap.total("PUT") == len(STATES) - len(UNCHANGED) - 1


def test_wrong_account_refuses_to_run_naming_both_accounts(
    s3_client: Any, tmp_path: Path, lcc_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrange(s3_client, tmp_path / "defs")
    monkeypatch.setenv("LCC_AWS_ACCOUNT", "999999999999")
    result = CliRunner().invoke(cli, ["sync", "--definitions", str(tmp_path / "defs")])
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1
    assert "999999999999" in error[0]
    assert MOTO_ACCOUNT in error[0]


def test_missing_variable_and_bad_params_give_one_line_each(
    moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_ACTION_PARAMS", "{oops")
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 1
    assert "LCC_ACTION_PARAMS: expected a JSON object" in result.output
    monkeypatch.delenv("LCC_ACTION_PARAMS")
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "LCC_" in line]
    assert [line.split(":")[0].strip().removeprefix("Error") for line in lines] == [
        "",
        "LCC_AWS_ACCOUNT",
        "LCC_ENDPOINT",
    ] or len(lines) >= 2
    assert any("LCC_AWS_ACCOUNT: required but not set" in line for line in lines)
    assert any("LCC_ENDPOINT: required but not set" in line for line in lines)


def test_unreachable_endpoint_is_one_actionable_line(
    moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lcc_env: None
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    result = CliRunner().invoke(cli, ["plan", "--definitions", str(tmp_path)])
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1
    assert "127.0.0.1:9" in error[0] or "connect" in error[0].lower()
    assert "AWS_ENDPOINT_URL" in error[0]


def test_definitions_from_the_s3_prefix(
    s3_client: Any, tap: ServerTap, tmp_path: Path, lcc_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrange(s3_client, tmp_path / "defs")
    for path in (tmp_path / "defs").glob("*.toml"):
        s3_client.put_object(Bucket="lcc-endpoint", Key=f"lc/definition/{path.name}", Body=path.read_bytes())
    s3_client.put_object(Bucket="lcc-endpoint", Key="lc/definition/README.md", Body=b"not a definition")
    monkeypatch.setenv("LCC_ENDPOINT", "s3://lcc-endpoint/lc/")
    tap.reset()
    result = CliRunner().invoke(cli, ["sync"])
    assert result.exit_code == 0, result.output
    assert tap.total("PUT") == len(STATES) - len(UNCHANGED)


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_cycle_over_2000_buckets_matches_the_servers_counts(
    s3_client: Any, tap: ServerTap, tmp_path: Path
) -> None:
    rng = random.Random(7)
    directory = tmp_path / "defs"
    directory.mkdir()
    expected_writes = 0
    lines = []
    for i in range(2000):
        name = f"bulk-{i:05d}"
        s3_client.create_bucket(Bucket=name)
        drift = rng.random() < 0.1
        if not drift:
            s3_client.put_bucket_lifecycle_configuration(Bucket=name, **config_to_request(config(RULES[:1])))
        expected_writes += drift
        lines.append(config_toml(name, config(RULES[:1])))
    # Several buckets per file, as [[Bucket]] tables, 100 files.
    for f in range(20):
        chunk = lines[f * 100 : (f + 1) * 100]
        body = "\n".join(
            "[[Bucket]]\n"
            + text.replace("[[LifecycleConfiguration", "[[Bucket.LifecycleConfiguration").replace(
                "[LifecycleConfiguration", "[Bucket.LifecycleConfiguration"
            )
            for text in chunk
        )
        (directory / f"bulk-{f:02d}.toml").write_text(body)
    tap.reset()
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, concurrency=16, page_size=10_000) as adapter:
        reconciler = Reconciler(adapter, DefinitionLoader(LocalDefinitionSource(directory)), concurrency=16)
        report = await reconciler.run_cycle()
    assert report.ok, report.fatal
    assert report.buckets_listed == 2000
    assert report.counts[BucketState.CHANGED] == expected_writes
    assert report.counts[BucketState.IN_SYNC] == 2000 - expected_writes
    assert tap.total("GET") == 2000
    assert tap.total("PUT") == expected_writes
    assert adapter.calls["PutBucketLifecycleConfiguration"] == expected_writes
