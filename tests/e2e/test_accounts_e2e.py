"""Many accounts end to end: ``python -m lakecircle`` as the hub of an organization (moto's
Organizations, STS and S3 over HTTP), three member accounts with buckets created through
their roles, definitions in the hub's S3 prefix.

The hub is moto's own account, the organization's management account; the members are
the accounts it creates, tagged ``lakecircle = on``, which ``LCC_ACCOUNT_FILTER`` selects (the
management account is left out by it). A refused role is the fault proxy's answer to
AssumeRole, pinned on that role: moto's STS assumes any role.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import definition, fleet
from tests.conftest import MOTO_REGION
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import (
    DaemonProcess,
    assert_clean,
    assumed_client,
    cli_env,
    http_get,
    object_keys,
    pictured,
    put_definitions,
    rules_of,
    run_cli,
)

ENDPOINT, PREFIX = "hub-records", "lc/"
NAMES = ("media", "data", "logs")


def role_of(account: str) -> str:
    return f"arn:aws:iam::{account}:role/lakecircle"


def member_s3(account: str, endpoint_url: str) -> Any:
    return assumed_client("s3", role_of(account), endpoint_url)


@pytest.fixture
def organization(moto: str) -> dict[str, str]:
    """Three member accounts of a new organization, tagged for LakeCircle, by name."""
    org = boto3.client("organizations", region_name=MOTO_REGION)
    org.create_organization(FeatureSet="ALL")
    members = {}
    for name in NAMES:
        created = org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        members[name] = created["AccountId"]
        org.tag_resource(ResourceId=created["AccountId"], Tags=[{"Key": "lakecircle", "Value": "on"}])
    return members


def holdings(members: dict[str, str], endpoint_url: str) -> dict[str, dict[str, int]]:
    return {f"{name}-bucket": rules_of(member_s3(members[name], endpoint_url), f"{name}-bucket") for name in NAMES}


def test_the_hub_of_an_organization_plans_syncs_and_plans_clean_and_a_refused_role_fails_alone(
    moto: str, s3_client: Any, organization: dict[str, str], tmp_path: Path
) -> None:
    members = organization
    put_definitions(
        s3_client,
        ENDPOINT,
        PREFIX,
        {
            "base.toml": fleet(["*-bucket"], *pictured({"abort": 7})),
            "data.toml": definition("data-bucket", *pictured({"keep": 365}), Accounts=[members["data"]]),
        },
    )
    for name in NAMES:
        member_s3(members[name], moto).create_bucket(Bucket=f"{name}-bucket")
    settings = {"LCC_ENDPOINT": f"s3://{ENDPOINT}/{PREFIX}", "LCC_ACCOUNTS": "organization"}
    env = cli_env(moto, tmp_path / "home", LCC_ACCOUNT_FILTER="lakecircle=on", **settings)

    planned = run_cli(env, "plan", "--detailed-exitcode", "--output", "json")
    assert planned.code == 2, planned
    document = json.loads(planned.stdout)
    assert sorted((a["id"], a["state"]) for a in document["accounts"]) == sorted(
        (members[name], "managed") for name in NAMES
    )
    assert sorted((b["account"], b["bucket"]) for b in document["buckets"]) == sorted(
        (members[name], f"{name}-bucket") for name in NAMES
    )

    synced = run_cli(env, "sync")
    assert synced.code == 0, synced
    assert_clean(synced)
    assert holdings(members, moto) == {
        "media-bucket": {"abort": 7},
        "data-bucket": {"abort": 7, "keep": 365},
        "logs-bucket": {"abort": 7},
    }
    keys = object_keys(s3_client, ENDPOINT, PREFIX)
    for name in NAMES:
        assert f"{PREFIX}accounts/{members[name]}/current/{name}-bucket.json" in keys

    again = run_cli(env, "plan", "--detailed-exitcode")
    assert again.code == 0, again
    assert "Accounts: 3 managed, 0 failed, 0 skipped (LCC_ACCOUNTS: organization)." in again.stdout

    put_definitions(s3_client, ENDPOINT, PREFIX, {"base.toml": fleet(["*-bucket"], *pictured({"abort": 3}))})
    with FaultProxy(moto) as proxy:
        proxy.force("AssumeRole", role_of(members["media"]), Fault.DENIED)
        refused = run_cli(cli_env(proxy.url, tmp_path / "home", LCC_ACCOUNT_FILTER="lakecircle=on", **settings), "sync")

    assert refused.code == 1, refused
    assert_clean(refused)
    assert f"account {members['media']}: failed (role {role_of(members['media'])}): AssumeRole failed" in (
        refused.stdout
    )
    assert "Accounts: 2 managed, 1 failed, 0 skipped" in refused.stdout
    assert holdings(members, moto) == {
        "media-bucket": {"abort": 7},
        "data-bucket": {"abort": 3, "keep": 365},
        "logs-bucket": {"abort": 3},
    }

    only = run_cli(env, "sync", "--account", members["media"])
    assert only.code == 0, only
    assert "Accounts: 1 managed, 0 failed, 2 skipped" in only.stdout
    assert holdings(members, moto)["media-bucket"] == {"abort": 3}

    restored = run_cli(env, "rollback", "media-bucket", "--account", members["media"])
    assert restored.code == 0, restored
    assert holdings(members, moto)["media-bucket"] == {"abort": 7}


# -- the daemon as the hub ---------------------------------------------------------------------


def account_series(url: str, name: str) -> dict[str, float]:
    """A metric's value per ``account`` label, summed over its other labels."""
    status, text = http_get(f"{url}/metrics")
    assert status == 200, text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = sample.labels.get("account", "")
                found[key] = found.get(key, 0.0) + sample.value
    return found


def test_the_daemon_as_the_hub_converges_every_account_but_the_refused_one_and_counts_each_under_its_label(
    moto: str, s3_client: Any, organization: dict[str, str], tmp_path: Path
) -> None:
    members = organization
    put_definitions(s3_client, ENDPOINT, PREFIX, {"base.toml": fleet(["*-bucket"], *pictured({"abort": 7}))})
    for name in NAMES:
        member_s3(members[name], moto).create_bucket(Bucket=f"{name}-bucket")
    refused = members["media"]
    with FaultProxy(moto) as proxy:
        proxy.force("AssumeRole", role_of(refused), Fault.DENIED)
        env = cli_env(
            proxy.url,
            tmp_path / "home",
            LCC_ENDPOINT=f"s3://{ENDPOINT}/{PREFIX}",
            LCC_ACCOUNTS="organization",
            LCC_ACCOUNT_FILTER="lakecircle=on",
            LCC_METRICS_ADDR="127.0.0.1:0",
            LCC_POLL_INTERVAL="1",
            LCC_RESYNC_INTERVAL="3600",
        )
        with DaemonProcess(env, tmp_path / "daemon.log") as daemon:
            url = daemon.metrics_url()
            daemon.wait_for_event("hub_cycle_finished", trigger="startup")
            added = account_series(url, "lakecircle_rules_added_total")
            states = account_series(url, "lakecircle_account_consecutive_failed_cycles")
            accounts = account_series(url, "lakecircle_accounts")
            daemon.send(signal.SIGTERM)
            code, _ = daemon.wait_exit()
    assert code == 0, str(daemon)
    assert holdings(members, moto) == {
        "media-bucket": {},
        "data-bucket": {"abort": 7},
        "logs-bucket": {"abort": 7},
    }
    assert added[members["data"]] == 1
    assert added[members["logs"]] == 1
    assert added.get(refused, 0) == 0
    assert states[refused] == 1
    assert states[members["data"]] == 0
    assert accounts[""] == 3  # managed, failed, skipped summed: every listed member once
    keys = object_keys(s3_client, ENDPOINT, PREFIX)
    assert f"{PREFIX}accounts/{members['data']}/current/data-bucket.json" in keys
    assert not any(k.startswith(f"{PREFIX}accounts/{refused}/current/") for k in keys)
