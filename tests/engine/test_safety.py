"""Nothing lost, nothing flapping: history, rollback, ownership and guards against moto."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from lakecircle.app.cli import cli
from lakecircle.app.wiring import build_reconciler, open_account
from lakecircle.core.model import LifecycleConfig, Rule, config_from_response, config_to_request
from lakecircle.core.normalize import canonical_config
from lakecircle.settings import load_settings
from tests import builders
from tests.builders import definition, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ServerTap
from tests.faultproxy import Fault, FaultProxy

ENDPOINT = "lcc-endpoint"


def live(s3_client: Any, bucket: str) -> LifecycleConfig:
    try:
        return config_from_response(s3_client.get_bucket_lifecycle_configuration(Bucket=bucket))
    except s3_client.exceptions.ClientError:
        return LifecycleConfig()


def put_live(s3_client: Any, bucket: str, *rules: Rule) -> None:
    config = LifecycleConfig(rules)
    s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, **config_to_request(config))


def history_keys(s3_client: Any, bucket: str | None = None) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=ENDPOINT, Prefix="lc/history/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return [k for k in keys if bucket is None or k.endswith(f"Z-{bucket}.json")]


@pytest.fixture
def env(moto: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    s3_client.create_bucket(Bucket=ENDPOINT)
    monkeypatch.setenv("LCC_ENDPOINT", f"s3://{ENDPOINT}/lc/")
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_LOG_FORMAT", "JSON")
    monkeypatch.setenv("LCC_APP_LEVEL", "WARNING")
    defs = tmp_path / "defs"
    defs.mkdir()
    return defs


def sync(defs: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["sync", "--definitions", str(defs), *extra])


def test_every_change_has_a_history_record_and_a_current_record(s3_client: Any, env: Path) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("old", 5))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("new", 40)))
    result = sync(env)
    assert result.exit_code == 0, result.output
    (key,) = history_keys(s3_client, "bkt-1")
    record = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key=key)["Body"].read())
    assert [r["ID"] for r in record["before"]["Rules"]] == ["old"]
    assert [r["ID"] for r in record["after"]["Rules"]] == ["new"]
    assert record["action"] == "put"
    assert record["caller"].startswith("arn:aws:")
    assert record["cycle_id"]
    assert s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix="lc/previous/").get("KeyCount", 0) == 0
    current = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key="lc/current/bkt-1.json")["Body"].read())
    assert [r["ID"] for r in current["config"]["Rules"]] == ["new"]
    assert current["history"] == key.removeprefix("lc/")
    logs = s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix="lc/log/").get("KeyCount", 0)
    assert logs == 1


def test_each_written_bucket_costs_the_endpoint_two_object_writes_around_its_one_lifecycle_write(
    s3_client: Any, tap: ServerTap, env: Path
) -> None:
    for name in ("bkt-1", "bkt-2", "bkt-3"):
        s3_client.create_bucket(Bucket=name)
        put_live(s3_client, name, rule("old", 5))
        (env / f"{name}.toml").write_bytes(definition(name, rule("new", 40)))
    tap.reset()
    result = sync(env)
    assert result.exit_code == 0, result.output
    written = {b: n for (m, b, sub), n in tap.counts.items() if m == "PUT" and sub == "lifecycle"}
    assert written == {"bkt-1": 1, "bkt-2": 1, "bkt-3": 1}
    # The change record before each write, its current/ record after, and the cycle's report.
    assert tap.counts[("PUT", ENDPOINT, "")] == 2 * 3 + 1


def test_a_failed_snapshot_write_leaves_the_bucket_untouched(s3_client: Any, tap: ServerTap, env: Path) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("old", 5))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("new", 40)))
    tap.reset()
    tap.deny_writes.add(ENDPOINT)
    result = sync(env)
    assert result.exit_code == 1
    assert "bkt-1" in result.output
    assert "write-ahead" in result.output
    assert tap.total("PUT") == 0
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["old"]


def test_rollback_restores_the_previous_configuration_in_canonical_form(s3_client: Any, env: Path) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    original = (rule("keep-a", 7, "a/"), rule("keep-b", 90, "b/"))
    put_live(s3_client, "bkt-1", *original)
    before = live(s3_client, "bkt-1")
    definition = builders.definition("bkt-1", rule("new", 40))
    s3_client.put_object(Bucket=ENDPOINT, Key="lc/definition/bkt-1.toml", Body=definition)
    assert CliRunner().invoke(cli, ["sync"]).exit_code == 0
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["new"]

    dry = CliRunner().invoke(cli, ["rollback", "bkt-1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "+ rule keep-a" in dry.output
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["new"]

    done = CliRunner().invoke(cli, ["rollback", "bkt-1"])
    assert done.exit_code == 0, done.output
    assert canonical_config(live(s3_client, "bkt-1")) == canonical_config(before)
    assert "the next sync" in done.output  # the definitions still say otherwise
    assert len(history_keys(s3_client, "bkt-1")) == 2
    listed = CliRunner().invoke(cli, ["history", "bkt-1"])
    lines = listed.output.strip().splitlines()
    assert len(lines) == 2
    assert "rollback" in lines[0]  # newest first
    assert "sync" in lines[1]


def test_rollback_to_a_record_restores_what_the_bucket_held_before_it(s3_client: Any, env: Path) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("v0"))
    for version in ("v1", "v2"):
        (env / "b1.toml").write_bytes(definition("bkt-1", rule(version)))
        assert sync(env).exit_code == 0
    first = sorted(history_keys(s3_client, "bkt-1"))[0].removeprefix("lc/")
    done = CliRunner().invoke(cli, ["rollback", "bkt-1", "--to", first])
    assert done.exit_code == 0, done.output
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v0"]


def test_shared_ownership_keeps_foreign_rules_and_removes_only_its_own(s3_client: Any, env: Path) -> None:
    s3_client.create_bucket(Bucket="shared")
    put_live(s3_client, "shared", rule("theirs", 3, "t/"))
    (env / "s.toml").write_bytes(definition("shared", rule("ours-1"), rule("ours-2", 60, "x/"), Ownership="shared"))
    for _ in range(2):
        assert sync(env).exit_code == 0
        assert sorted(r.id or "" for r in live(s3_client, "shared").rules) == ["ours-1", "ours-2", "theirs"]
    (env / "s.toml").write_bytes(definition("shared", rule("ours-1"), Ownership="shared"))
    result = sync(env)
    assert result.exit_code == 0, result.output
    assert sorted(r.id or "" for r in live(s3_client, "shared").rules) == ["ours-1", "theirs"]


def test_an_unreadable_definition_file_mid_run_removes_nothing(s3_client: Any, env: Path) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    s3_client.create_bucket(Bucket="bkt-2")
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("a"), rule("b", 60, "b/")))
    (env / "b2.toml").write_bytes(definition("bkt-2", rule("c")))
    assert sync(env).exit_code == 0
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("a")))  # would remove rule b...
    (env / "broken.toml").write_bytes(b"BucketName = \n")  # ...but a file cannot be parsed
    result = sync(env)
    assert "no rule was removed" in result.output
    assert sorted(r.id or "" for r in live(s3_client, "bkt-1").rules) == ["a", "b"]
    (env / "broken.toml").unlink()
    assert sync(env).exit_code == 0
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["a"]


@pytest.mark.parametrize("name", ["BKT-1", "bkt-1 ", "bkt_1"])
def test_a_file_naming_a_bucket_s3_cannot_hold_makes_the_picture_partial_and_removes_nothing(
    s3_client: Any, env: Path, name: str
) -> None:
    # Which bucket such a file means is unknown (a typo of bkt-1?): its rules may be bkt-1's.
    s3_client.create_bucket(Bucket="bkt-1")
    (env / "a.toml").write_bytes(definition("bkt-1", rule("a")))
    (env / "b.toml").write_bytes(definition("bkt-1", rule("b", 60, "b/")))
    assert sync(env).exit_code == 0
    (env / "b.toml").write_bytes(definition(name, rule("b", 60, "b/")))
    result = sync(env)
    assert result.exit_code == 1
    assert "no rule was removed" in result.output
    unreadable = [line for line in result.output.splitlines() if line.lstrip().startswith("unreadable:")]
    assert any("b.toml: BucketName: bucket name" in line for line in unreadable), result.output
    assert sorted(r.id or "" for r in live(s3_client, "bkt-1").rules) == ["a", "b"]


def test_the_blast_radius_guard_removes_nothing_in_any_cycle_until_a_person_allows_it(
    s3_client: Any, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LCC_MAX_REMOVALS", "3")
    for i in range(3):
        s3_client.create_bucket(Bucket=f"mass-{i}")
        put_live(s3_client, f"mass-{i}", rule("x1"), rule("x2", 60, "2/"))
        (env / f"mass-{i}.toml").write_bytes(definition(f"mass-{i}", rule("new")))
    for _ in range(2):  # a second plain sync removes nothing either
        result = sync(env)
        assert "6 rule removal(s) planned, more than LCC_MAX_REMOVALS (3), so none was made" in result.output
        assert "  ! rule x1 (removal held back: the rule stays)" in result.output
        assert "  - rule" not in result.output
        for i in range(3):  # the additions went, every removal was held back
            assert sorted(r.id or "" for r in live(s3_client, f"mass-{i}").rules) == ["new", "x1", "x2"]

    planned = CliRunner().invoke(cli, ["plan", "--definitions", str(env), "--output", "json"])
    document = json.loads(planned.stdout)
    assert document["report"]["removals"] == {"planned": 6, "held": 6, "limit": 3}
    assert document["report"]["guards"] == ["blast_radius"]
    assert {b["bucket"]: [r["ID"] for r in b["held"]] for b in document["buckets"]} == {
        f"mass-{i}": ["x1", "x2"] for i in range(3)
    }
    assert all(b["removed"] == [] for b in document["buckets"])
    logs = s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix="lc/log/")["Contents"]
    saved = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key=logs[-1]["Key"])["Body"].read())
    assert saved["removals"] == {"planned": 6, "held": 6, "limit": 3}

    lifted = sync(env, "--allow-mass-removal")
    assert lifted.exit_code == 0, lifted.output
    assert all([r.id for r in live(s3_client, f"mass-{i}").rules] == ["new"] for i in range(3))


def test_the_allow_mass_removal_setting_lifts_the_guard_for_every_cycle(
    s3_client: Any, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LCC_MAX_REMOVALS", "1")
    monkeypatch.setenv("LCC_ALLOW_MASS_REMOVAL", "true")
    s3_client.create_bucket(Bucket="mass")
    put_live(s3_client, "mass", rule("x1"), rule("x2", 60, "2/"))
    (env / "mass.toml").write_bytes(definition("mass", rule("new")))
    result = sync(env)
    assert result.exit_code == 0, result.output
    assert [r.id for r in live(s3_client, "mass").rules] == ["new"]


def test_rules_another_writer_deletes_after_a_confirmed_write_are_rewritten_in_the_next_cycle(
    s3_client: Any, env: Path
) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("ours", 40)))

    async def cycles() -> list[Any]:
        settings = load_settings()
        async with open_account(settings, need_endpoint=False) as account:
            reconciler = build_reconciler(settings, account, env, dry_run=False)
            states = []
            for step in range(3):
                if step == 2:  # another writer deletes the rules, well within the settle window
                    s3_client.delete_bucket_lifecycle(Bucket="bkt-1")
                report = await reconciler.run_cycle()
                states.append((report.results[0].state.value, report.results[0].external))
            return states

    assert anyio.run(cycles) == [("changed", False), ("in_sync", False), ("changed", True)]
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["ours"]


def clean(result: Result) -> str:
    """The command's whole output, after checking that no traceback or repr reached it."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.output
    assert "Traceback" not in text
    assert "Error(" not in text  # no exception repr
    return text


def test_a_failed_write_reads_as_failed_and_rollback_restores_the_last_applied_change(
    s3_client: Any, env: Path, moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("v0"))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("v1")))
    assert sync(env).exit_code == 0
    with FaultProxy(moto) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("LCC_RETRY_MAX_ATTEMPTS", "1")
        proxy.force("PutBucketLifecycleConfiguration", "bkt-1", Fault.SERVER_ERROR)
        (env / "b1.toml").write_bytes(definition("bkt-1", rule("v2")))
        assert sync(env).exit_code == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v1"]

    listed = CliRunner().invoke(cli, ["history", "bkt-1"])
    assert listed.exit_code == 0, listed.output
    newest, older = clean(listed).strip().splitlines()
    assert "  failed: " in newest
    assert "InternalError" in newest
    assert older.endswith("  applied")
    as_json = json.loads(CliRunner().invoke(cli, ["history", "bkt-1", "--output", "json"]).stdout)
    assert [r["outcome"]["state"] for r in as_json] == ["failed", "applied"]

    done = CliRunner().invoke(cli, ["rollback", "bkt-1"])
    assert done.exit_code == 0, done.output
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v0"]


def put_record(s3_client: Any, key: str, body: bytes) -> None:
    s3_client.put_object(Bucket=ENDPOINT, Key=f"lc/{key}", Body=body)


def test_unreadable_history_records_are_named_in_one_line_each_and_the_others_still_listed(
    s3_client: Any, env: Path
) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("v1")))
    assert sync(env).exit_code == 0
    bad = {
        "history/2020/01/01/000000.000001Z-bkt-1.json": b"\x00\x01 not json",
        "history/2020/01/01/000000.000002Z-bkt-1.json": b"[1, 2]",
        "history/2020/01/01/000000.000003Z-bkt-1.json": json.dumps({"format_version": 7}).encode(),
        "history/2020/01/01/000000.000004Z-bkt-1.json": json.dumps(
            {"format_version": 1, "bucket": "bkt-1", "kind": "sync", "time": 5}
        ).encode(),
    }
    for key, body in bad.items():
        put_record(s3_client, key, body)
    result = CliRunner().invoke(cli, ["history", "bkt-1"])
    assert result.exit_code == 1
    clean(result)
    assert len(result.stdout.strip().splitlines()) == 1  # the good record
    assert result.stdout.strip().endswith("  applied")
    errors = result.stderr.strip().splitlines()
    assert [line.split(": ", 1)[0] for line in errors] == [f"unreadable record {k}" for k in sorted(bad)]
    assert "not JSON" in errors[0]
    assert "not a JSON object" in errors[1]
    assert "format_version is 7" in errors[2]
    assert "time: Input should be a valid string" in errors[3]
    as_json = CliRunner().invoke(cli, ["history", "bkt-1", "--output", "json"])
    assert as_json.exit_code == 1
    assert [r.get("unreadable") is None for r in json.loads(as_json.stdout)] == [True, False, False, False, False]


def test_rollback_to_what_is_not_a_readable_change_record_says_so_in_one_line(s3_client: Any, env: Path) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("v0"))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("v1")))
    assert sync(env).exit_code == 0
    put_record(s3_client, "history/2020/01/01/000000.000001Z-bkt-1.json", b"{not json")
    put_record(s3_client, "history/2020/01/01/000000.000002Z-other.json", b"{}")
    cases = {
        "current/bkt-1.json": "not a change record",
        "log/x.json": "not a change record",
        "history/2020/01/01/000000.000001Z-bkt-1.json": "not JSON",
        "history/2020/01/01/000000.000002Z-other.json": "format_version is none",
        "history/2099/01/01/000000.000000Z-bkt-1.json": "no such record",
    }
    for key, reason in cases.items():
        result = CliRunner().invoke(cli, ["rollback", "bkt-1", "--to", key])
        assert result.exit_code == 1, (key, result.output)
        [line] = clean(result).strip().splitlines()
        assert line.startswith(f"Error: {key}: {reason}"), line
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v1"]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda c: c.pop("previous"), "holds no previous configuration"),
        (lambda c: c.update(previous=None), "holds no previous configuration"),
        (lambda c: c.update(previous={}), "holds no previous configuration"),
        (lambda c: c.update(bucket="bkt-2"), "a record of bucket bkt-2, not of bkt-1"),
    ],
    ids=["previous-missing", "previous-null", "previous-without-rules", "another-bucket"],
)
def test_rollback_refuses_a_current_record_that_does_not_say_what_this_bucket_held_before(
    s3_client: Any, env: Path, edit: Any, reason: str
) -> None:
    # Never read as "the bucket held no rules" (a DELETE of every rule), nor another bucket's past.
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("v0"))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("v1")))
    assert sync(env).exit_code == 0
    current = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key="lc/current/bkt-1.json")["Body"].read())
    edit(current)
    put_record(s3_client, "current/bkt-1.json", json.dumps(current).encode())

    result = CliRunner().invoke(cli, ["rollback", "bkt-1"])

    assert result.exit_code == 1, result.output
    [line] = clean(result).strip().splitlines()
    assert line.startswith(f"Error: current/bkt-1.json: {reason}"), line
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v1"]


def test_rollback_with_a_current_record_the_model_refuses_names_it_and_ignores_previous(
    s3_client: Any, env: Path
) -> None:
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("v0"))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("v1")))
    assert sync(env).exit_code == 0
    put_record(s3_client, "previous/bkt-1.json", b"garbage")  # no longer what rollback reads
    assert CliRunner().invoke(cli, ["rollback", "bkt-1", "--dry-run"]).exit_code == 0
    current = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key="lc/current/bkt-1.json")["Body"].read())
    current["previous"] = {"Rules": [{"ID": "x", "Status": "Enabled", "Expiration": {"Days": "many"}}]}
    put_record(s3_client, "current/bkt-1.json", json.dumps(current).encode())
    result = CliRunner().invoke(cli, ["rollback", "bkt-1"])
    assert result.exit_code == 1
    [line] = clean(result).strip().splitlines()
    assert line.startswith("Error: current/bkt-1.json: previous: ")
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v1"]
    assert "Expiration.Days" in line
    listed = CliRunner().invoke(cli, ["history", "bkt-1"])  # the change it names is still applied
    assert listed.exit_code == 0
    assert clean(listed).strip().endswith("  applied")
    put_record(s3_client, "current/bkt-1.json", b"\xff\xfe")
    listed = CliRunner().invoke(cli, ["history", "bkt-1"])  # unreadable: the change is listed, unknown
    assert listed.exit_code == 1
    assert clean(listed).count("\n") == 2
    assert listed.stderr.startswith("unreadable record current/bkt-1.json: not JSON")
    assert listed.stdout.strip().endswith("  unknown")


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_the_account_converges(s3_client: Any, env: Path) -> None:
    rng = random.Random(11)
    buckets = [f"crash-{i:03d}" for i in range(200)]
    for name in buckets:
        s3_client.create_bucket(Bucket=name)
        if rng.random() < 0.5:
            put_live(s3_client, name, rule("stale", 9))
    child_env = dict(os.environ, LCC_MAX_REMOVALS="100000")  # the removal guard is tested elsewhere
    for kill in range(30):
        for name in rng.sample(buckets, 20):  # the definitions keep changing between runs
            (env / f"{name}.toml").write_bytes(definition(name, rule(f"gen-{kill}", 30 + kill)))
        proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            [sys.executable, "-m", "lakecircle", "sync", "--definitions", str(env)],
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    final = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "lakecircle", "sync", "--definitions", str(env)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    plan = CliRunner().invoke(cli, ["plan", "--definitions", str(env), "--detailed-exitcode"])
    assert plan.exit_code == 0, plan.output
    recorded = {key.rsplit("Z-", 1)[1].removesuffix(".json") for key in history_keys(s3_client)}
    changed = {name for name in buckets if (env / f"{name}.toml").exists()}
    assert changed <= recorded


def test_rollback_to_an_applied_change_whose_before_holds_no_rules_key_refuses_it(s3_client: Any, env: Path) -> None:
    # A record that does not say what the bucket held is never read as "no rules" (a DELETE).
    s3_client.create_bucket(Bucket="bkt-1")
    put_live(s3_client, "bkt-1", rule("v0"))
    (env / "b1.toml").write_bytes(definition("bkt-1", rule("v1")))
    assert sync(env).exit_code == 0
    current = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key="lc/current/bkt-1.json")["Body"].read())
    key = current["history"]
    change = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key=f"lc/{key}")["Body"].read())
    put_record(s3_client, key, json.dumps({**change, "before": {}}).encode())

    result = CliRunner().invoke(cli, ["rollback", "bkt-1", "--to", key])

    assert result.exit_code == 1, result.output
    [line] = clean(result).strip().splitlines()
    assert line.startswith(f"Error: {key}: its before holds no Rules"), line
    assert [r.id for r in live(s3_client, "bkt-1").rules] == ["v1"]
