"""The benchmark's machinery works: its S3 endpoint, its clients and their request counts.

No timing is asserted (figures are the benchmark's to print): only that a tiny account
is served, that LakeCircle writes exactly the drifted buckets in each cycle, and that the
floor client GETs every bucket once, as the endpoint counts them; and, for many accounts,
that the endpoint keeps each account's buckets apart by the caller's credentials and that
the hub and the one-account run do the same work over the same buckets.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench.fake_s3 import FakeS3Process
from bench.run import client_env, run_client

BUCKETS = 50


@pytest.mark.timeout(30)
def test_benchmark_clients_write_exactly_the_drifted_buckets(tmp_path: Path) -> None:
    with FakeS3Process() as server:
        account = server.workload(BUCKETS)
        server.settings(delay_ms=0)
        env = client_env(server.url)

        cycles = run_client("cycles", "--cycles", "3", env=env, stderr=tmp_path / "cycles.log", timeout=25)
        floor = run_client("floor", "--buckets", str(BUCKETS), env=env, stderr=tmp_path / "floor.log", timeout=25)

    by_name = {c["name"]: c for c in cycles["cycles"]}
    assert set(by_name) == {"cold", "resync", "unchanged"}
    drifted = len(account["drifted"])
    assert drifted == len(account["second"]) == BUCKETS // 10
    expected = {"cold": drifted, "resync": drifted, "unchanged": 0}
    for name, cycle in by_name.items():
        ops = cycle["ops"]
        writes = ops.get("PutBucketLifecycleConfiguration", 0) + ops.get("DeleteBucketLifecycle", 0)
        assert writes == expected[name], (name, ops)
        assert cycle["states"].get("changed", 0) == expected[name], (name, cycle["states"])
        assert ops["GetBucketLifecycleConfiguration"] == BUCKETS, (name, ops)
        assert cycle["managed"] == BUCKETS
    # Only the cold cycle downloads the definition files; later ones use the ETag cache.
    assert by_name["cold"]["ops"]["GetObject"] >= BUCKETS
    assert by_name["unchanged"]["ops"].get("GetObject", 0) == 0
    assert floor["cycles"][0]["ops"] == {"GetBucketLifecycleConfiguration": BUCKETS}
    assert cycles["peak_rss_mb"] > 0


MEMBERS, PER_MEMBER = 3, 10


@pytest.mark.timeout(60)
def test_the_benchmark_endpoint_keeps_each_accounts_buckets_apart_by_the_callers_credentials() -> None:
    import boto3
    from botocore.exceptions import ClientError

    from bench.workload import ACCOUNT, REGION, member_account

    with FakeS3Process() as server:
        server.workload(MEMBERS * PER_MEMBER)
        members = server.accounts(MEMBERS)
        hub = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
        sts = hub.client("sts", endpoint_url=server.url)
        assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{members[1]}:role/lakecircle", RoleSessionName="smoke")
        keys = assumed["Credentials"]
        member = boto3.Session(
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
            region_name=REGION,
        )
        s3 = member.client("s3", endpoint_url=server.url)
        identity = member.client("sts", endpoint_url=server.url).get_caller_identity()
        listed = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        s3.get_bucket_lifecycle_configuration(Bucket=listed[0], ExpectedBucketOwner=members[1])
        with pytest.raises(ClientError) as by_hub:
            hub.client("s3", endpoint_url=server.url).get_bucket_lifecycle_configuration(Bucket=listed[0])
        with pytest.raises(ClientError) as stranger:
            sts.assume_role(RoleArn="arn:aws:iam::999999999999:role/lakecircle", RoleSessionName="smoke")
        hub_identity = sts.get_caller_identity()
        counts = server.counts()["ops"]

    assert members == [member_account(k) for k in range(MEMBERS)]
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{members[1]}:assumed-role/lakecircle/smoke"
    assert keys["Expiration"] > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=55)  # an hour, STS's default
    assert identity["Account"] == members[1]
    assert identity["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    assert len(listed) == PER_MEMBER  # the second run of sorted names
    assert by_hub.value.response["Error"]["Code"] == "AccessDenied"
    assert stranger.value.response["Error"]["Code"] == "AccessDenied"
    assert hub_identity["Account"] == ACCOUNT
    assert counts["AssumeRole"] == 2
    assert counts["GetCallerIdentity"] == 2


@pytest.mark.timeout(90)
def test_the_many_accounts_section_runs_the_hub_and_one_account_over_the_same_buckets(tmp_path: Path) -> None:
    import dataclasses

    from bench.run import QUICK, render, run

    plan = dataclasses.replace(QUICK, accounts=MEMBERS, per_account=PER_MEMBER, account_delays=(0,), passes=1)
    results = run(plan, tmp_path, frozenset({"accounts"}))

    many = results["accounts"]
    buckets = MEMBERS * PER_MEMBER
    assert many["buckets"] == buckets
    assert many["drifted"] == buckets // 10
    runs = many["runs"]["0"]
    for mode in ("single", "hub"):
        cold, unchanged = runs[mode]["cycles"]
        assert [cold["name"], unchanged["name"]] == ["cold", "unchanged"]
        for cycle, writes in ((cold, many["drifted"]), (unchanged, 0)):
            ops = cycle["ops"]
            assert ops.get("PutBucketLifecycleConfiguration", 0) + ops.get("DeleteBucketLifecycle", 0) == writes
            assert cycle["states"].get("changed", 0) == writes, (mode, cycle["states"])
            assert ops["GetBucketLifecycleConfiguration"] == buckets, (mode, ops)
            assert cycle["managed"] == buckets
    hub_cold, hub_unchanged = runs["hub"]["cycles"]
    # Each member account: its role assumed and its identity checked once, in the first cycle.
    assert hub_cold["ops"]["AssumeRole"] == hub_cold["ops"]["GetCallerIdentity"] == MEMBERS
    assert "AssumeRole" not in hub_unchanged["ops"]
    assert "GetCallerIdentity" not in hub_unchanged["ops"]
    assert hub_cold["ops"]["ListBuckets"] == hub_unchanged["ops"]["ListBuckets"] == MEMBERS
    assert hub_cold["accounts"] == hub_unchanged["accounts"] == {"managed": MEMBERS}
    assert "AssumeRole" not in runs["single"]["cycles"][0]["ops"]
    table = render(results)
    assert f"### 9. Many accounts: {MEMBERS} accounts x {PER_MEMBER} buckets" in table
    assert f"| {MEMBERS} accounts x {PER_MEMBER} buckets within 1.3x of {buckets} buckets in one account" in table


@pytest.mark.timeout(120)
def test_the_one_shot_section_runs_sync_and_plan_against_their_floors(tmp_path: Path) -> None:
    import dataclasses

    from bench.oneshot import OneShotPlan
    from bench.run import QUICK, render, run

    small = OneShotPlan(buckets=30, delay_ms=0, passes=1, original_buckets=20, original_measured=10, lease_pass=False)
    results = run(dataclasses.replace(QUICK, oneshot=small), tmp_path, frozenset({"oneshot"}))

    one = results["oneshot"]
    drifted = one["drifted"]
    assert drifted == 3
    runs = {kind: passes[0] for kind, passes in one["runs"].items()}
    assert set(runs) == {"sync", "floor-sync", "plan", "floor-get"}
    for kind, writes in (("sync", drifted), ("floor-sync", drifted), ("plan", 0), ("floor-get", 0)):
        ops = runs[kind]["ops"]
        assert ops.get("PutBucketLifecycleConfiguration", 0) + ops.get("DeleteBucketLifecycle", 0) == writes, kind
        assert ops["GetBucketLifecycleConfiguration"] == 30, (kind, ops)
        assert runs[kind]["exit"] == 0
    assert "GetObject" not in runs["sync"]["ops"]  # the definitions come from the local directory
    original = one["original"]
    assert set(original["runs"]) == {"sync-s3", "sync-local"}
    assert original["original"]["measured"] == 10
    table = render(results)
    assert "### 10. The one-shot path" in table
    assert "| One-shot `sync` within 1.15x of the floor-sync floor" in table
    assert "| `lakecircle sync` (sync-local) ≥ 30x faster than the original" in table


def test_the_generated_fleet_lists_in_pages_and_holds_a_configuration_per_name_until_written() -> None:
    import boto3

    from bench import fleet as fl

    with FakeS3Process() as server:
        made = server.call("fleet", {"buckets": 25_000, "groups": 2})
        s3 = boto3.client(
            "s3",
            endpoint_url=server.url,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        )
        first = s3.list_buckets(MaxBuckets=10_000)
        second = s3.list_buckets(MaxBuckets=10_000, ContinuationToken=first["ContinuationToken"])
        third = s3.list_buckets(MaxBuckets=10_000, ContinuationToken=second["ContinuationToken"])
        selected = s3.get_bucket_lifecycle_configuration(Bucket=fl.name(1))["Rules"]
        exact = s3.get_bucket_lifecycle_configuration(Bucket=made["exact"][0])["Rules"]
        server.call("watch", {"buckets": [fl.name(2)]})
        server.call("drift", {"buckets": [fl.name(2)]})
        drifted = s3.get_bucket_lifecycle_configuration(Bucket=fl.name(2))["Rules"]
        s3.delete_bucket_lifecycle(Bucket=fl.name(3))
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_lifecycle_configuration(Bucket=fl.name(3))
        written = server.call("written", {"buckets": [fl.name(3), fl.name(4)]})
        with pytest.raises(s3.exceptions.ClientError):
            s3.get_bucket_lifecycle_configuration(Bucket=fl.name(25_000))  # one past the fleet
        counts = server.counts()

    assert made["managed"] == 22_500  # every name but those ending in 9
    assert len(made["exact"]) == 2 * fl.GROUP
    assert made["files"] == 3  # the selector and two group files
    names = [b["Name"] for page in (first, second, third) for b in page["Buckets"]]
    assert names[:2] == [fl.name(0), fl.name(1)]
    assert names == sorted(names)
    assert len(names) == 25_001  # and the endpoint's own bucket, last
    assert "ContinuationToken" not in third
    assert [r["ID"] for r in selected] == ["abort-incomplete-uploads", "expire-tmp"]
    assert [r["ID"] for r in exact] == ["abort-incomplete-uploads", "expire-tmp", "keep-logs"]
    assert drifted[1]["Expiration"] == {"Days": fl.DRIFT_DAYS}
    assert written["written"][fl.name(3)] is not None
    assert written["written"][fl.name(4)] is None
    assert counts["watched"] == {"GetBucketLifecycleConfiguration": 1}
    assert counts["ops"]["ListBuckets"] == 3


@pytest.mark.timeout(180)
def test_the_million_section_runs_the_daemon_and_prints_its_figures(tmp_path: Path) -> None:
    import dataclasses

    from bench.million import MillionPlan
    from bench.run import QUICK, render, run

    small = MillionPlan(buckets=2000, groups=2, interval=20, poll=2, settle=1, window=4, samples=3, event_timeout=3)
    results = run(dataclasses.replace(QUICK, million=small), tmp_path, frozenset({"million"}))

    scale = results["million"]
    assert scale["fleet"]["managed"] == 1800
    assert scale["startup"]["done"]
    # The start-up pass reads every managed bucket once, and no unmanaged one.
    assert scale["startup"]["ops"]["GetBucketLifecycleConfiguration"] == 1800
    assert scale["steady"]["expected"] == 1800 / 20
    change = scale["change"]
    assert change["done"]
    assert change["figures"]["writes"] == 10  # the group file's 10 buckets, each written once
    assert change["figures"]["get_object"] == 1
    assert change["figures"]["reads"] >= 10
    assert 0 < scale["memory"]["VmHWM"] < 1000
    assert scale["exit"] == 0
    assert scale["events"]["samples"] >= 1
    table = render(results)
    assert "### 11. A million buckets: `lakecircle daemon` against 2,000 generated buckets (1,800 managed)" in table
    for target in (
        "| Daemon peak RSS at 2,000 buckets < 600 MB",
        "| Steady verification rate within 5% of buckets/interval",
        "| A definition change affecting 10 buckets < 20 requests",
        "| Event-to-repair p99 < 2 s during background verification",
    ):
        assert target in table
