"""Replicas end to end: two ``python -m lakecircle daemon`` processes on moto's S3 over HTTP,
sharing through leases (README "Replicas"). One holds the account's lease and writes; the
other stands by, ready. Frozen with SIGSTOP past its lease, the holder loses it: the other
takes over within two lease durations, and the change records, which name holder and epoch,
show no write of one epoch overlapping another's.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.builders import definition, fleet
from tests.conftest import MOTO_REGION
from tests.e2e.test_accounts_e2e import account_series
from tests.helpers import (
    DaemonProcess,
    assert_clean,
    cli_env,
    http_get,
    object_keys,
    pictured,
    put_definitions,
    rules_of,
    run_cli,
)

ENDPOINT, PREFIX = "replica-records", "lc/"
LEASE = 6.0
THEIRS = {"ID": "theirs", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}


def replica_env(moto: str, home: Path, name: str, **extra: str) -> dict[str, str]:
    settings = {
        "LCC_ENDPOINT": f"s3://{ENDPOINT}/{PREFIX}",
        "LCC_METRICS_ADDR": "127.0.0.1:0",
        "LCC_POLL_INTERVAL": "1",
        "LCC_RESYNC_INTERVAL": "2",
        "LCC_LEASE_SECONDS": str(LEASE),
        "LCC_REPLICA_ID": name,
    }
    return cli_env(moto, home, **{**settings, **extra})


def changes(s3: Any) -> list[dict[str, Any]]:
    """Every change record under history/, oldest first."""
    keys = object_keys(s3, ENDPOINT, f"{PREFIX}history/")
    return [json.loads(s3.get_object(Bucket=ENDPOINT, Key=key)["Body"].read()) for key in keys]


@pytest.mark.slow
def test_a_frozen_holder_loses_its_lease_to_the_standby_which_repairs_and_no_two_epochs_write_at_once(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    put_definitions(s3_client, ENDPOINT, PREFIX, {"app.toml": definition("app-data", *pictured({"keep": 30}))})
    s3_client.create_bucket(Bucket="app-data")
    with DaemonProcess(replica_env(moto, tmp_path / "a", "pod-a"), tmp_path / "a.log") as first:
        first.wait_for_event("lease_acquired", timeout=30)
        first.wait_for_event("bucket_reconciled", bucket="app-data", timeout=30)
        with DaemonProcess(replica_env(moto, tmp_path / "b", "pod-b"), tmp_path / "b.log") as second:
            url = second.metrics_url()
            second.wait_until("pod-b ready as a standby", lambda: http_get(f"{url}/readyz")[0] == 200)
            assert "standby" in http_get(f"{url}/readyz")[1]
            assert not second.named("lease_acquired")
            first.send(signal.SIGSTOP)
            frozen_at = time.monotonic()
            s3_client.put_bucket_lifecycle_configuration(  # drift, while no one may write
                Bucket="app-data",
                LifecycleConfiguration={"Rules": [dict(THEIRS)]},
            )
            second.wait_for_event("lease_taken_over", timeout=3 * LEASE)
            took = time.monotonic() - frozen_at
            second.wait_until("pod-b repaired the drift", lambda: rules_of(s3_client, "app-data") == {"keep": 30})
            first.proc.kill()
            second.send(signal.SIGTERM)
            code, _ = second.wait_exit()
    assert code == 0, str(second)
    assert took <= 2 * LEASE + 2, took
    for replica in (first, second):  # the lease's log lines, too, show no secret (test_security runs one replica)
        assert_clean(replica.text)
    records = sorted(changes(s3_client), key=lambda r: r["time"])
    epochs = [r["lease"]["epoch"] for r in records]
    assert epochs == sorted(epochs), epochs  # in the order written, an epoch never follows a later one
    assert len(set(epochs)) >= 2, records  # pod-a wrote in its epoch, pod-b in a later one
    holders: dict[int, set[str]] = {r["lease"]["epoch"]: set() for r in records}
    for r in records:
        holders[r["lease"]["epoch"]].add(r["lease"]["holder"])
    assert all(len(h) == 1 for h in holders.values()), holders
    assert holders[epochs[0]] == {"pod-a"}
    assert holders[epochs[-1]] == {"pod-b"}


@pytest.fixture
def ten_accounts(moto: str) -> list[str]:
    """Ten member accounts of a new organization, tagged for LakeCircle."""
    org = boto3.client("organizations", region_name=MOTO_REGION)
    org.create_organization(FeatureSet="ALL")
    members = []
    for n in range(10):
        created = org.create_account(Email=f"m{n}@example.com", AccountName=f"m{n}")["CreateAccountStatus"]
        org.tag_resource(ResourceId=created["AccountId"], Tags=[{"Key": "lakecircle", "Value": "on"}])
        members.append(created["AccountId"])
    return members


def held_by(url: str) -> set[str]:
    return {account for account, value in account_series(url, "lakecircle_leases_held").items() if value >= 1}


@pytest.mark.slow
def test_two_hub_replicas_split_ten_accounts_and_the_survivor_takes_all_within_two_durations(
    moto: str, s3_client: Any, ten_accounts: list[str], tmp_path: Path
) -> None:
    put_definitions(s3_client, ENDPOINT, PREFIX, {"base.toml": fleet(["*-bucket"], *pictured({"abort": 7}))})
    hub = {"LCC_ACCOUNTS": "organization", "LCC_ACCOUNT_FILTER": "lakecircle=on", "LCC_RESYNC_INTERVAL": "3"}
    with (
        DaemonProcess(replica_env(moto, tmp_path / "a", "pod-a", **hub), tmp_path / "a.log") as first,
        DaemonProcess(replica_env(moto, tmp_path / "b", "pod-b", **hub), tmp_path / "b.log") as second,
    ):
        urls = first.metrics_url(), second.metrics_url()

        def split() -> tuple[int, int]:
            a, b = held_by(urls[0]), held_by(urls[1])
            assert not a & b, (a, b)  # never one account held by both
            return len(a), len(b)

        def shared() -> bool:  # the first to start may take all ten until it has seen the other renew
            a, b = split()
            return a + b == 10 and abs(a - b) <= 2

        first.wait_until("the ten accounts split 5/5 ± 1", shared, timeout=10 * LEASE)
        shares = split()
        person = run_cli(replica_env(moto, tmp_path / "person", "laptop", **hub), "sync", "--lease-wait", "0.5")
        first.proc.kill()
        killed_at = time.monotonic()
        second.wait_until("the survivor holds all ten", lambda: len(held_by(urls[1])) == 10, timeout=4 * LEASE)
        took = time.monotonic() - killed_at
        second.send(signal.SIGTERM)
        code, _ = second.wait_exit()
    assert code == 0, str(second)
    assert abs(shares[0] - shares[1]) <= 2, shares  # 5/5 ± 1
    assert person.code == 1, person  # every account's lease is the service's: each fails, naming its holder
    refused = [line for line in person.stdout.splitlines() if line.startswith("account ") and "is held by pod-" in line]
    assert len(refused) == 10, person
    assert took <= 2 * LEASE + 2, took


@pytest.mark.slow
def test_a_manual_sync_never_races_the_service_and_runs_once_the_service_released_the_lease(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    put_definitions(s3_client, ENDPOINT, PREFIX, {"app.toml": definition("app-data", *pictured({"keep": 30}))})
    s3_client.create_bucket(Bucket="app-data")
    person = replica_env(moto, tmp_path / "person", "laptop")
    with DaemonProcess(replica_env(moto, tmp_path / "a", "pod-a"), tmp_path / "a.log") as service:
        service.wait_for_event("bucket_reconciled", bucket="app-data", timeout=30)
        refused = run_cli(person, "sync", "--lease-wait", "1")
        service.send(signal.SIGTERM)
        code, _ = service.wait_exit()
    assert code == 0, str(service)
    assert refused.code == 1, refused
    assert "is held by pod-a" in refused.stderr
    assert "--lease-wait" in refused.stderr
    assert_clean(refused)
    service_released = [e for e in service.events() if e["event"] == "lease_released"]
    assert service_released, str(service)
    [lease_key] = [
        k["Key"]
        for k in s3_client.list_objects_v2(Bucket=ENDPOINT, Prefix=f"{PREFIX}lease/")["Contents"]
        if not k["Key"].startswith((f"{PREFIX}lease/replicas/", f"{PREFIX}lease/probe"))
    ]
    released = json.loads(s3_client.get_object(Bucket=ENDPOINT, Key=lease_key)["Body"].read())
    assert (released["holder"], released["released"], released["settled"]) == ("pod-a", True, True)
    # Settled (no write of pod-a's in flight): the person's sync writes at once, within a
    # --lease-wait shorter than the write timeout (2 s) a takeover would make it wait.
    synced = run_cli(person, "sync", "--lease-wait", "1")
    assert synced.code == 0, synced
    history = sorted(changes(s3_client), key=lambda r: r["time"])
    assert all("lease" in r for r in history)


@pytest.mark.slow
def test_a_hub_replica_runs_each_account_as_soon_as_it_takes_its_lease_not_at_the_next_resync(
    moto: str, s3_client: Any, ten_accounts: list[str], tmp_path: Path
) -> None:
    put_definitions(s3_client, ENDPOINT, PREFIX, {"base.toml": fleet(["*-bucket"], *pictured({"abort": 7}))})
    hub = {"LCC_ACCOUNTS": "organization", "LCC_ACCOUNT_FILTER": "lakecircle=on", "LCC_RESYNC_INTERVAL": "600"}
    with DaemonProcess(replica_env(moto, tmp_path / "a", "pod-a", **hub), tmp_path / "a.log") as only:
        url = only.metrics_url()
        only.wait_until("the ten accounts held", lambda: len(held_by(url)) == 10, timeout=10 * LEASE)

        def cycled() -> int:
            return len([a for a, n in account_series(url, "lakecircle_cycles_total").items() if a and n > 0])

        only.wait_until("a cycle in every account it holds", lambda: cycled() == 10, timeout=3 * LEASE)
        only.send(signal.SIGTERM)
        code, _ = only.wait_exit()
    assert code == 0, str(only)
