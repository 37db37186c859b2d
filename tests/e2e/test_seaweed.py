"""The S3 path end to end against a second real server: SeaweedFS (``weed mini``), over HTTP.

SeaweedFS keeps what moto drops (object-size filters, NewerNoncurrentVersions, the minimum
object size) and has no lifecycle transitions at all. The loop a user runs (validate, plan,
sync, a clean plan, a change behind LakeCircle's back that the daemon repairs, a rollback)
runs here with its records on a SeaweedFS bucket (its conditional writes hold), and a
definition with a transition fails its own bucket once, naming what the server lacks.
The server is shared by the session and never emptied: each test takes fresh bucket names.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import boto3
import pytest

from lakecircle.core.model import LifecycleConfig, config_from_response
from tests.builders import definition, rule
from tests.conftest import MOTO_REGION
from tests.faultproxy import FaultProxy
from tests.helpers import KEY_ID, SECRET, DaemonProcess, assert_clean, cli_env, object_keys, put_definitions, run_cli
from tests.seaweed import SeaweedServer, fresh_name

PREFIX = "lc/"

KEPT = (
    rule("logs", 30, "logs/"),
    rule(
        "sized",
        7,
        None,
        Filter={"And": {"Prefix": "tmp/", "ObjectSizeGreaterThan": 1024, "ObjectSizeLessThan": 1048576}},
    ),
    rule(
        "versions",
        Expiration=None,
        Filter={"Tag": {"Key": "keep", "Value": "no"}},
        NoncurrentVersionExpiration={"NoncurrentDays": 30, "NewerNoncurrentVersions": 3},
    ),
    rule("uploads", prefix=None, Expiration=None, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 3}),
    rule("dated", prefix="fy24/", Expiration={"Date": "2030-01-01T00:00:00Z"}),
    rule("markers", prefix="del/", Expiration={"ExpiredObjectDeleteMarker": True}),
    rule(
        "tagged",
        90,
        None,
        Filter={"And": {"Prefix": "t/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}},
    ),
)
"""Rules SeaweedFS keeps as sent, the fields moto drops among them, tag filters, a date and delete markers."""

ARCHIVE = rule("archive", 365, "old/", Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}])
"""A rule with a transition, which SeaweedFS does not implement."""


@pytest.fixture
def s3(seaweed: str) -> Any:
    """A boto3 client of the SeaweedFS server, for arranging and inspecting its state (its keys
    given: boto3's default session keeps the first credentials it found, moto's of other tests)."""
    return boto3.client(
        "s3", region_name=MOTO_REGION, endpoint_url=seaweed, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )


def env_for(url: str, home: Path, endpoint: str, **settings: str) -> dict[str, str]:
    """A run's environment against the server at ``url``, records under ``endpoint``'s prefix.

    SeaweedFS has no STS: the account is not verified (``LCC_VERIFY_ACCOUNT``), and the keys
    sign without a session token (it would take one for an STS session it does not know).
    """
    env = cli_env(url, home, LCC_ENDPOINT=f"s3://{endpoint}/{PREFIX}", LCC_VERIFY_ACCOUNT="false", **settings)
    del env["AWS_SESSION_TOKEN"]
    return env


def held(s3: Any, bucket: str) -> LifecycleConfig:
    """The bucket's configuration as the server returns it, read through LakeCircle's model."""
    try:
        return config_from_response(s3.get_bucket_lifecycle_configuration(Bucket=bucket))
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return LifecycleConfig(())
        raise


def test_validate_plan_sync_plan_clean_drift_repaired_by_the_daemon_and_rollback(
    seaweed: str, s3: Any, tmp_path: Path
) -> None:
    bucket, endpoint = fresh_name("loop"), fresh_name("records")
    s3.create_bucket(Bucket=bucket)
    put_definitions(s3, endpoint, PREFIX, {"loop.toml": definition(bucket, *KEPT)})
    env = env_for(seaweed, tmp_path / "home", endpoint)

    validated = run_cli(env, "validate", f"s3://{endpoint}/{PREFIX}definition/")
    assert validated.code == 0, validated
    planned = run_cli(env, "plan", "--detailed-exitcode")
    assert planned.code == 2, planned
    synced = run_cli(env, "sync")
    assert synced.code == 0, synced
    assert_clean(synced)
    assert held(s3, bucket).rules == KEPT  # every field as sent, the sizes and version counts too
    again = run_cli(env, "plan", "--detailed-exitcode")
    assert again.code == 0, again
    assert "No changes." in again.stdout
    assert f"{PREFIX}current/{bucket}.json" in object_keys(s3, endpoint, PREFIX)

    drift = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 1}}
    daemon_env = env | {
        "LCC_POLL_INTERVAL": "1",
        "LCC_RESYNC_INTERVAL": "1",
        "LCC_METRICS_ADDR": "127.0.0.1:0",
        "LCC_PROBE_SERVER": "true",
    }
    with DaemonProcess(daemon_env, tmp_path / "daemon.log") as daemon:
        daemon.wait_for_event("cycle_finished", trigger="startup", timeout=60)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [drift]})
        daemon.wait_until("the drift repaired", lambda: held(s3, bucket).rules == KEPT, timeout=30)
        daemon.send(signal.SIGTERM)
        code, _ = daemon.wait_exit()
    assert code == 0, daemon
    [probed] = daemon.named("server_probed")  # once, at start: what this server lacks
    assert (probed["level"], probed["missing"], probed["not_probed"]) == ("warning", ["transitions"], []), probed
    assert probed["object_size_filters"] is True
    assert probed["conditional_writes"] is True

    restored = run_cli(env, "rollback", bucket)
    assert restored.code == 0, restored
    assert [r.to_wire() for r in held(s3, bucket).rules] == [drift]  # what it held before LakeCircle's last write


def test_a_transition_fails_its_bucket_once_naming_the_server_and_the_other_bucket_syncs(
    seaweed: str, s3: Any, tmp_path: Path
) -> None:
    archived, plain, endpoint = fresh_name("archived"), fresh_name("plain"), fresh_name("records")
    for name in (archived, plain):
        s3.create_bucket(Bucket=name)
    files = {"archived.toml": definition(archived, KEPT[0], ARCHIVE), "plain.toml": definition(plain, *KEPT)}
    put_definitions(s3, endpoint, PREFIX, files)
    with FaultProxy(seaweed) as proxy:
        synced = run_cli(env_for(proxy.url, tmp_path / "home", endpoint), "sync")
        puts = [e for e in proxy.bucket_events(archived) if e.operation == "PutBucketLifecycleConfiguration"]

    assert synced.code == 1, synced
    assert_clean(synced)
    assert len(puts) == 1, puts  # NotImplemented is not retried
    lines = synced.lines_naming(archived)
    assert any(
        f"the S3 server at {proxy.url} does not implement lifecycle transitions (transitions in rule(s) 'archive')"
        in line
        and "remove the transitions from the bucket's definition" in line
        and "run `lakecircle validate`" not in line
        for line in lines
    ), synced
    assert held(s3, archived).rules == ()
    assert held(s3, plain).rules == KEPT


class _Refused(SeaweedServer):
    """A ``weed mini`` given a flag it does not know: it exits at once."""

    def _arguments(self, ports: list[int]) -> list[str]:
        return [*super()._arguments(ports), "-no.such.flag=1"]


def test_a_server_that_does_not_start_fails_with_the_end_of_its_output(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as caught, _Refused(tmp_path, access_key=KEY_ID, secret_key=SECRET):
        pass

    assert "SeaweedFS did not start: weed mini exited with status" in str(caught.value)
    assert "no.such.flag" in str(caught.value)  # weed's own complaint, from its output
