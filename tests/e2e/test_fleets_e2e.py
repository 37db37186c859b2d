"""Fleets end to end: ``python -m lakecircle`` against moto's server over HTTP, definitions in
the S3 prefix with a baseline for every bucket, a pattern family with an exact override and
a tag-selected retention class (moto stores bucket tags)."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.builders import definition, fleet
from tests.conftest import MOTO_ACCOUNT
from tests.faultproxy import LIFECYCLE_OPERATIONS, Fault, FaultProxy
from tests.helpers import (
    DaemonProcess,
    cli_env,
    holdings,
    http_get,
    pictured,
    put_definitions,
    put_rules,
    rules_of,
    run_cli,
)

ENDPOINT = "fleet-endpoint"
PREFIX = "lc/"
FILES = {
    "baseline.toml": fleet(["*"], *pictured({"abort": 7}), BucketExclude=[ENDPOINT]),
    "logs.toml": fleet(["*-logs"], *pictured({"expire": 90})),
    "app-logs.toml": definition("app-logs", *pictured({"expire": 30})),
    "retention.toml": fleet(["*"], *pictured({"keep": 365}), BucketTags={"retention": "1y"}),
}
AFTER = {
    "app-logs": {"abort": 7, "expire": 30},
    "web-logs": {"abort": 7, "expire": 90},
    "archive": {"abort": 7, "keep": 365},
    "photos": {"abort": 7, "theirs": 5},
}


def test_a_fleet_plans_syncs_and_then_plans_clean_with_the_endpoint_bucket_unmanaged(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    put_definitions(s3_client, ENDPOINT, PREFIX, FILES)
    for bucket in ("app-logs", "web-logs", "archive"):
        put_rules(s3_client, bucket, {})
    put_rules(s3_client, "photos", {"theirs": 5})
    s3_client.put_bucket_tagging(Bucket="archive", Tagging={"TagSet": [{"Key": "retention", "Value": "1y"}]})
    env = cli_env(moto, tmp_path / "home", LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}")

    planned = run_cli(env, "plan", "--output", "json", "--show-unmanaged")
    assert planned.code == 0, str(planned)
    document = json.loads(planned.stdout)
    assert document["unmanaged"] == [ENDPOINT]
    assert document["report"]["counts"]["unmanaged"] == 1
    assert sorted(b["bucket"] for b in document["buckets"] if b["action"] == "put") == sorted(AFTER)

    synced = run_cli(env, "sync")
    assert synced.code == 0, str(synced)
    assert {bucket: rules_of(s3_client, bucket) for bucket in AFTER} == AFTER
    assert "1 bucket(s) unmanaged" in synced.stdout

    again = run_cli(env, "plan", "--detailed-exitcode", "--show-unmanaged")
    assert again.code == 0, str(again)
    assert f"  {ENDPOINT}" in again.stdout.splitlines()


# -- tag reads that fail, through the fault proxy ------------------------------------------------
#
# One account, synced once with every tag read: then the definitions change so that every
# bucket has something to add, change or remove, and the next runs go through the fault
# proxy, which refuses or throttles one bucket's GetBucketTagging.

TAGGED = {"retention": "1y"}
BEFORE_FILES = {
    "baseline.toml": fleet(["*"], *pictured({"abort": 7, "tmp": 1}), BucketExclude=[ENDPOINT]),
    "logs.toml": fleet(["*-logs"], *pictured({"expire": 90})),
    "app-logs.toml": definition("app-logs", *pictured({"expire": 30})),
    "retention.toml": fleet(["*"], *pictured({"keep": 365}), BucketExclude=["*-logs", ENDPOINT], BucketTags=TAGGED),
}
AFTER_FILES = {  # everywhere abort changes, fresh comes and tmp goes; the logs buckets gain trim
    "baseline.toml": fleet(["*"], *pictured({"abort": 5, "fresh": 30}), BucketExclude=[ENDPOINT]),
    "logs.toml": fleet(["*-logs"], *pictured({"expire": 90, "trim": 10})),
}
SYNCED = {
    "app-logs": {"abort": 7, "tmp": 1, "expire": 30},
    "web-logs": {"abort": 7, "tmp": 1, "expire": 90},
    "archive": {"abort": 7, "tmp": 1, "keep": 365},
    "vault": {"abort": 7, "tmp": 1, "keep": 365},
    "photos": {"abort": 7, "tmp": 1},
}
CONVERGED = {
    "app-logs": {"abort": 5, "fresh": 30, "expire": 30, "trim": 10},
    "web-logs": {"abort": 5, "fresh": 30, "expire": 90, "trim": 10},
    "archive": {"abort": 5, "fresh": 30, "keep": 365},
    "vault": {"abort": 5, "fresh": 30, "keep": 365},
    "photos": {"abort": 5, "fresh": 30},
}
TAG_READ = "GetBucketTagging"
READ_FOR_TAGS = ["archive", "photos", "vault"]
"""The buckets the tag selector's patterns match (not the *-logs buckets, not the endpoint)."""


def synced_fleet(s3_client: Any, moto: str, home: Path) -> dict[str, str]:
    """The fleet synced with every tag read, then AFTER_FILES uploaded; the env of a direct run."""
    put_definitions(s3_client, ENDPOINT, PREFIX, BEFORE_FILES)
    for bucket in SYNCED:
        put_rules(s3_client, bucket, {})
    for bucket in ("archive", "vault"):
        s3_client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "retention", "Value": "1y"}]})
    direct = cli_env(moto, home, LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}")
    first = run_cli(direct, "sync")
    assert first.code == 0, str(first)
    assert holdings(s3_client, SYNCED) == SYNCED
    put_definitions(s3_client, ENDPOINT, PREFIX, AFTER_FILES)
    return direct


def tag_reads(proxy: FaultProxy) -> Counter[str]:
    return Counter(e.bucket or "" for e in proxy.events if e.operation == TAG_READ)


def test_a_refused_tag_read_holds_that_buckets_removals_alone_and_the_others_add_change_and_remove(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    direct = synced_fleet(s3_client, moto, tmp_path / "home")
    with FaultProxy(moto) as proxy:
        env = {**direct, "AWS_ENDPOINT_URL": proxy.url}
        proxy.force(TAG_READ, "archive", Fault.DENIED)

        planned = run_cli(env, "plan", "--output", "json", "--detailed-exitcode")
        assert planned.code == 2, str(planned)  # held removals are pending changes, not a failure
        document = json.loads(planned.stdout)
        report = document["report"]
        assert (report["guards"], report["partial_definitions"]) == (["partial_definitions"], False)
        assert [t["bucket"] for t in report["tags_unread"]] == ["archive"]
        assert "AccessDenied" in report["tags_unread"][0]["error"]
        plans = {b["bucket"]: b for b in document["buckets"]}
        archive = plans["archive"]  # what is new to it comes; what its tags may decide stays
        assert ([r["ID"] for r in archive["added"]], archive["removed"], archive["changed"]) == (["fresh"], [], [])
        assert sorted(r["ID"] for r in archive["held"]) == ["keep", "tmp"]
        assert [c["id"] for c in archive["held_changes"]] == ["abort"]
        vault = plans["vault"]
        assert ([r["ID"] for r in vault["removed"]], [c["id"] for c in vault["changed"]]) == (["tmp"], ["abort"])
        assert (vault["held"], vault["held_changes"]) == ([], [])

        synced = run_cli(env, "sync")
        assert synced.code == 0, str(synced)
        assert holdings(s3_client, CONVERGED) == {
            **CONVERGED,
            "archive": {"abort": 7, "fresh": 30, "tmp": 1, "keep": 365},  # added to; nothing removed or changed
        }
        assert "Guard: the tags of 1 bucket(s) could not be read, so their rules stay as they are" in synced.stdout
        [named] = synced.lines_naming("tags unread: archive:")
        assert "AccessDenied" in named
        assert "Guard: a read failed" not in synced.stdout  # refused for good: the total is known

        # Tags are read only for the buckets the tag selector's patterns match, with the owner's guard.
        assert tag_reads(proxy) == Counter(dict.fromkeys(READ_FOR_TAGS, 2))  # plan, then sync
        assert proxy.owner_problems(MOTO_ACCOUNT, {TAG_READ, *LIFECYCLE_OPERATIONS}) == []

        proxy.clear_forced()
        healed = run_cli(env, "sync")
    assert healed.code == 0, str(healed)
    assert holdings(s3_client, CONVERGED) == CONVERGED
    assert "tags unread" not in healed.stdout


def test_a_throttled_tag_read_holds_that_buckets_removals_and_leaves_the_cycles_total_unknown(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    direct = synced_fleet(s3_client, moto, tmp_path / "home")
    with FaultProxy(moto) as proxy:
        env = {**direct, "AWS_ENDPOINT_URL": proxy.url}
        proxy.force(TAG_READ, "vault", Fault.SLOWDOWN)

        synced = run_cli(env, "sync")
        assert synced.code == 0, str(synced)
        assert tag_reads(proxy)["vault"] == int(env["LCC_RETRY_MAX_ATTEMPTS"])  # it outlasted every retry
        assert tag_reads(proxy) - Counter(vault=tag_reads(proxy)["vault"]) == Counter(archive=1, photos=1)
        # Every bucket gets its additions, and all but the vault their changes; no removal is
        # made: the vault's are held for its unread tags, the others' wait for a total the
        # throttled read left unknown.
        assert holdings(s3_client, CONVERGED) == {
            **{bucket: {**rules, "tmp": 1} for bucket, rules in CONVERGED.items()},
            "vault": {"abort": 7, "fresh": 30, "tmp": 1, "keep": 365},
        }
        [named] = synced.lines_naming("tags unread: vault:")
        assert "SlowDown" in named
        assert "Guard: a read failed for a reason that may pass" in synced.stdout

        proxy.clear_forced()
        healed = run_cli(env, "sync")
    assert healed.code == 0, str(healed)
    assert holdings(s3_client, CONVERGED) == CONVERGED


# -- the daemon: tags read once per resync, counted in the request metrics ------------------------


def tag_requests_counted(url: str) -> float:
    status, text = http_get(f"{url}/metrics")
    assert status == 200, text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lakecircle_s3_requests_total" and sample.labels.get("operation") == TAG_READ
    )


def test_the_daemon_reads_tags_once_per_resync_not_on_polls_and_counts_them_in_its_request_metrics(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    direct = synced_fleet(s3_client, moto, tmp_path / "home")
    put_definitions(s3_client, ENDPOINT, PREFIX, BEFORE_FILES)  # in sync: the daemon's first cycle writes nothing
    with FaultProxy(moto) as proxy:
        env = {
            **direct,
            "AWS_ENDPOINT_URL": proxy.url,
            "LCC_METRICS_ADDR": "127.0.0.1:0",
            "LCC_POLL_INTERVAL": "1",
            "LCC_RESYNC_INTERVAL": "3600",
        }
        with DaemonProcess(env, tmp_path / "daemon.log") as daemon:
            url = daemon.metrics_url()
            daemon.wait_for_event("cycle_finished", trigger="startup")
            assert tag_reads(proxy) == Counter(READ_FOR_TAGS)
            assert tag_requests_counted(url) == 3  # photos has no tag set: counted as not_found

            polls = proxy.arrived("ListObjectsV2")
            daemon.wait_until("two idle polls", lambda: proxy.arrived("ListObjectsV2") >= polls + 2)
            put_definitions(s3_client, ENDPOINT, PREFIX, AFTER_FILES)
            daemon.wait_for_event("cycle_finished", trigger="poll")
            assert holdings(s3_client, CONVERGED) == CONVERGED  # the poll cycle planned with the tags it had
            assert tag_reads(proxy) == Counter(READ_FOR_TAGS)
            assert tag_requests_counted(url) == 3

            daemon.send(signal.SIGHUP)  # a full cycle reads them again
            daemon.wait_for_event("cycle_finished", trigger="signal")
            assert tag_reads(proxy) == Counter(dict.fromkeys(READ_FOR_TAGS, 2))
            assert tag_requests_counted(url) == 6
            daemon.send(signal.SIGTERM)
            code, _ = daemon.wait_exit()
    assert code == 0, str(daemon)
