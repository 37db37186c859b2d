"""The commands with many accounts (``LCC_ACCOUNTS``), against moto's S3 and STS over HTTP.

The hub is moto's own account (the endpoint and the definitions live there); three member
accounts, listed in an accounts file, hold buckets created through their roles (moto's STS
assumes any role, and its credentials act in the role's account). A refused role is the
fault proxy's answer to AssumeRole, pinned on that role (see tests/adapters/test_roles.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lakecircle.app.cli import cli
from tests.builders import definition, fleet, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import assumed_client, object_keys, put_definitions, put_rules, rules_of

A, B, C = "111111111111", "222222222222", "333333333333"
HUB_BUCKET, PREFIX = "hub-records", "lcc/"
BUCKETS = {A: ("a-logs", "a-data"), B: ("b-logs",), C: ("c-logs",)}


def role_of(account: str) -> str:
    return f"arn:aws:iam::{account}:role/lakecircle"


def member_s3(account: str) -> Any:
    return assumed_client("s3", role_of(account))


@pytest.fixture
def org(moto: str, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hub's settings, an accounts file of A (env=prod), B and C, their buckets and the definitions."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f'[[Account]]\nId = "{A}"\nTags = {{ env = "prod" }}\n\n[[Account]]\nId = "{B}"\n\n[[Account]]\nId = "{C}"\n'
    )
    for name, value in {
        "LCC_AWS_ACCOUNT": MOTO_ACCOUNT,
        "LCC_AWS_REGION": MOTO_REGION,
        "LCC_ENDPOINT": f"s3://{HUB_BUCKET}/{PREFIX}",
        "LCC_ACCOUNTS": str(accounts),
        "LCC_APP_LEVEL": "ERROR",
        "LCC_RETRY_MAX_ATTEMPTS": "2",
        "LCC_RETRY_BASE_DELAY": "0.01",
        "LCC_RETRY_MAX_DELAY": "0.02",
    }.items():
        monkeypatch.setenv(name, value)
    put_definitions(
        s3_client,
        HUB_BUCKET,
        PREFIX,
        {
            "logs.toml": fleet(["*-logs"], rule("expire", 90)),
            "a-data.toml": definition("a-data", rule("keep", 365), Accounts=[A]),
            "prod.toml": fleet(["*"], rule("abort", 7), AccountTags={"env": "prod"}),
        },
    )
    for account, names in BUCKETS.items():
        s3 = member_s3(account)
        for name in names:
            s3.create_bucket(Bucket=name)
    return tmp_path


@pytest.fixture
def proxy(moto: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with FaultProxy(moto) as started:
        monkeypatch.setenv("AWS_ENDPOINT_URL", started.url)
        yield started


def lakecircle(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def holdings() -> dict[str, dict[str, dict[str, int]]]:
    """Every member account's buckets and their rules (rule ID: expiration days)."""
    return {account: {name: rules_of(member_s3(account), name) for name in names} for account, names in BUCKETS.items()}


CONVERGED = {
    A: {"a-logs": {"expire": 90, "abort": 7}, "a-data": {"keep": 365, "abort": 7}},
    B: {"b-logs": {"expire": 90}},
    C: {"c-logs": {"expire": 90}},
}
UNTOUCHED: dict[str, dict[str, dict[str, int]]] = {a: {name: {} for name in names} for a, names in BUCKETS.items()}


# -- plan, sync, plan ---------------------------------------------------------------------------


def test_plan_then_sync_then_plan_converges_every_account_grouped_by_account(org: Path, s3_client: Any) -> None:
    planned = lakecircle("plan", "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    lines = planned.stdout.splitlines()
    headers = [line for line in lines if line.startswith("account ")]
    assert headers == [
        f"account {A}: managed, 2 bucket(s) listed",
        f"account {B}: managed, 1 bucket(s) listed",
        f"account {C}: managed, 1 bucket(s) listed",
    ]
    assert lines.index(headers[0]) < lines.index("bucket a-data will be updated") < lines.index(headers[1])
    assert "Accounts: 3 managed, 0 failed, 0 skipped" in planned.stdout
    assert "4 bucket(s) would change, 0 in sync, 0 missing, 0 invalid, 0 failed (4 bucket(s) in 3 account(s)" in (
        planned.stdout
    )
    assert holdings() == UNTOUCHED

    synced = lakecircle("sync")
    assert synced.exit_code == 0, synced.output
    assert holdings() == CONVERGED
    keys = object_keys(s3_client, HUB_BUCKET, PREFIX)
    for account, names in BUCKETS.items():
        for name in names:
            assert f"{PREFIX}accounts/{account}/current/{name}.json" in keys
            assert any(k.startswith(f"{PREFIX}accounts/{account}/history/") and name in k for k in keys)
        assert any(k.startswith(f"{PREFIX}accounts/{account}/log/") for k in keys)
    assert not [k for k in keys if k.startswith(tuple(f"{PREFIX}{d}/" for d in ("current", "history", "log")))]

    again = lakecircle("plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert again.stdout.count("No changes.") == 3


def test_a_json_plan_names_each_buckets_account_and_lists_the_accounts(org: Path) -> None:
    planned = lakecircle("plan", "--output", "json", "--show-unmanaged")
    assert planned.exit_code == 0, planned.output
    document = json.loads(planned.stdout)
    assert sorted((b["account"], b["bucket"], b["action"]) for b in document["buckets"]) == [
        (A, "a-data", "put"),
        (A, "a-logs", "put"),
        (B, "b-logs", "put"),
        (C, "c-logs", "put"),
    ]
    assert [(a["id"], a["state"], a["error"], a["buckets_listed"]) for a in document["accounts"]] == [
        (A, "managed", None, 2),
        (B, "managed", None, 1),
        (C, "managed", None, 1),
    ]
    assert document["accounts"][1]["role_arn"] == role_of(B)
    assert document["accounts"][0]["counts"]["drifted"] == 2
    assert document["report"]["counts"]["drifted"] == 4
    assert document["unknown_accounts"] == []
    assert document["unmanaged"] == []
    assert document["changes"] is True


# -- a failed account ---------------------------------------------------------------------------


def test_an_account_whose_role_is_refused_fails_alone_named_and_sync_exits_1(org: Path, proxy: FaultProxy) -> None:
    proxy.force("AssumeRole", role_of(B), Fault.DENIED)

    synced = lakecircle("sync")
    proxy.clear_forced()  # the test's own reads through B's role

    assert synced.exit_code == 1, synced.output
    assert holdings() == CONVERGED | {B: UNTOUCHED[B]}
    header = next(line for line in synced.stdout.splitlines() if line.startswith(f"account {B}"))
    assert header.startswith(f"account {B}: failed (role {role_of(B)}): AssumeRole failed [AccessDenied]")
    assert "Accounts: 2 managed, 1 failed, 0 skipped" in synced.stdout
    assert f"  failed: account {B} (role {role_of(B)}): AssumeRole failed [AccessDenied]" in synced.stdout


def test_a_json_plan_gives_a_failed_accounts_error(org: Path, proxy: FaultProxy) -> None:
    proxy.force("AssumeRole", role_of(C), Fault.DENIED)

    planned = lakecircle("plan", "--output", "json")

    assert planned.exit_code == 1, planned.output
    (failed,) = [a for a in json.loads(planned.stdout)["accounts"] if a["state"] == "failed"]
    assert failed["id"] == C
    assert "AssumeRole failed [AccessDenied]" in failed["error"]


# -- --account ----------------------------------------------------------------------------------


def test_account_limits_a_sync_to_the_accounts_it_names(org: Path) -> None:
    synced = lakecircle("sync", "--account", B, "--account", C)

    assert synced.exit_code == 0, synced.output
    assert holdings() == CONVERGED | {A: UNTOUCHED[A]}
    assert f"account {A}" not in synced.stdout
    assert "Accounts: 2 managed, 0 failed, 1 skipped" in synced.stdout


def test_an_account_the_list_does_not_hold_is_named_and_the_command_exits_1(org: Path) -> None:
    planned = lakecircle("plan", "--account", "444444444444")

    assert planned.exit_code == 1, planned.output
    assert "--account 444444444444: not among the managed accounts (LCC_ACCOUNTS: " in planned.stdout


@pytest.mark.parametrize("command", ["plan", "sync", "export", "history", "explain", "rollback"])
def test_account_is_refused_as_a_usage_error_without_lcc_accounts(
    command: str, org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LCC_ACCOUNTS")
    args = {"export": ["--output", str(org / "out")], "history": ["a-logs"], "explain": ["a-logs"]}
    result = lakecircle(command, *args.get(command, ["a-logs"] if command == "rollback" else []), "--account", A)

    assert result.exit_code == 1, result.output
    assert "--account names one of many accounts and needs LCC_ACCOUNTS" in result.output


@pytest.mark.parametrize(
    ("value", "says"),
    [("12345", "'12345' is not an account ID"), ("11111111111a", "is not an account ID")],
    ids=["too few digits", "a letter"],
)
def test_an_account_id_that_is_not_12_digits_is_a_usage_error(org: Path, value: str, says: str) -> None:
    result = lakecircle("plan", "--account", value)

    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "12 digits" in result.output


# -- explain, history, rollback, export --------------------------------------------------------------


def test_explain_finds_the_account_that_holds_the_bucket_and_applies_its_scope(org: Path) -> None:
    in_b = lakecircle("explain", "b-logs")
    in_a = lakecircle("explain", "a-logs", "--output", "json")

    assert in_b.exit_code == 0, in_b.output
    lines = in_b.stdout.splitlines()
    assert lines[:2] == ["bucket b-logs", f"account: {B}"]
    assert f"not applied in account {B} (their Accounts or AccountTags leave it out):" in lines
    assert f"""  {PREFIX}definition/prod.toml  (pattern "*"): AccountTags = {{ env = 'prod' }}""" in lines
    document = json.loads(in_a.stdout)
    assert document["account"] == A
    assert sorted(s["file"] for s in document["selected_by"]) == [
        f"{PREFIX}definition/logs.toml",
        f"{PREFIX}definition/prod.toml",
    ]
    assert document["out_of_scope"] == []
    assert document["accounts_searched"] == 3


def test_explain_of_a_bucket_no_account_holds_says_so(org: Path) -> None:
    result = lakecircle("explain", "nowhere-logs")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        "account: none of the 3 managed account(s) searched holds it; every definition is shown as it would apply"
        " in any account"
    )


def test_explain_is_incomplete_when_an_account_could_not_be_asked(org: Path, proxy: FaultProxy) -> None:
    proxy.force("AssumeRole", role_of(C), Fault.DENIED)

    result = lakecircle("explain", "nowhere-logs")

    assert result.exit_code == 1, result.output
    assert f"warning: could not ask account {C} (role {role_of(C)}): AssumeRole failed" in result.stderr


def test_history_and_rollback_use_the_records_of_the_account_named(org: Path, s3_client: Any) -> None:
    put_rules(member_s3(A), "a-data", {"theirs": 5})
    assert lakecircle("sync").exit_code == 0
    assert rules_of(member_s3(A), "a-data") == {"keep": 365, "abort": 7}

    listed = lakecircle("history", "a-data", "--output", "json")
    only_b = lakecircle("history", "a-data", "--account", B)
    refused = lakecircle("rollback", "a-data")
    elsewhere = lakecircle("rollback", "a-data", "--account", C)
    restored = lakecircle("rollback", "a-data", "--account", A)

    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert (entry["account"], entry["bucket"], entry["outcome"]["state"]) == (A, "a-data", "applied")
    assert only_b.stdout.strip() == "no history for a-data in 1 account(s)"
    assert refused.exit_code == 1
    assert "--account is required with LCC_ACCOUNTS" in refused.output
    assert elsewhere.exit_code == 1
    assert f"account {C} holds no bucket a-data; nothing was written" in elsewhere.output
    assert restored.exit_code == 0, restored.output
    assert rules_of(member_s3(A), "a-data") == {"theirs": 5}
    keys = object_keys(s3_client, HUB_BUCKET, f"{PREFIX}accounts/{A}/history/")
    assert len([k for k in keys if "a-data" in k]) == 2  # the sync's change, and the rollback's


def test_export_writes_each_accounts_buckets_under_its_id_and_a_plan_of_them_is_clean(org: Path) -> None:
    assert lakecircle("sync").exit_code == 0
    out = org / "adopted"

    exported = lakecircle("export", "--output", str(out), "--account", A, "--account", B, "--bucket", "b-logs")
    everything = lakecircle("export", "--output", str(org / "all"))

    assert exported.exit_code == 0, exported.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.toml")) == [f"{B}/b-logs.toml"]
    assert f'Accounts = [\n    "{B}",\n]' in (out / B / "b-logs.toml").read_text()
    assert everything.exit_code == 0, everything.output
    planned = lakecircle("plan", "--definitions", str(org / "all"), "--detailed-exitcode")
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.count("No changes.") == 3


def test_export_of_a_bucket_no_account_holds_is_a_problem(org: Path) -> None:
    exported = lakecircle("export", "--output", str(org / "out"), "--bucket", "nowhere-logs")

    assert exported.exit_code == 1
    assert "nowhere-logs: not exported: no such bucket in the 3 managed account(s)" in exported.stdout


def test_explain_with_local_definitions_still_needs_the_hubs_account(
    org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LCC_AWS_ACCOUNT")
    (org / "defs").mkdir()

    result = lakecircle("explain", "a-logs", "--definitions", str(org / "defs"))

    assert result.exit_code == 1, result.output
    assert "LCC_AWS_ACCOUNT: required but not set" in result.output
    assert "Traceback" not in result.output


def test_an_accounts_file_that_cannot_be_read_fails_the_plan_naming_it(
    org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LCC_ACCOUNTS", str(org / "gone.toml"))

    planned = lakecircle("plan")

    assert planned.exit_code == 1, planned.output
    assert f"Cycle failed: no account to manage: {org / 'gone.toml'} (cannot read the accounts file" in planned.stdout
    assert "no such file; create it or fix LCC_ACCOUNTS" in planned.stdout


def test_an_accounts_file_with_a_bad_entry_plans_the_others_names_the_entry_and_exits_1(org: Path) -> None:
    accounts = org / "accounts.toml"
    accounts.write_text(accounts.read_text() + "\n[[Account]]\nId = 444444444444\n")

    planned = lakecircle("plan")

    assert planned.exit_code == 1, planned.output
    assert "Accounts: 3 managed, 0 failed, 0 skipped" in planned.stdout
    (left_out,) = [line for line in planned.stdout.splitlines() if line.startswith("  left out: ")]
    assert "Account[3]" in left_out
    assert "quote" in left_out
    document = json.loads(lakecircle("plan", "--output", "json").stdout)
    assert len(document["account_problems"]) == 1
