"""The wiring of many accounts: the hub, the process's slots, and each member account opened checked.

Against moto's STS and S3 over HTTP; a refused AssumeRole is the fault proxy's, pinned on
one role (moto's STS assumes any role, see tests/adapters/test_roles.py).
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from lakecircle import errors
from lakecircle.adapters.s3.leases import S3LeaseStore
from lakecircle.app.leasing import LeaseHeld
from lakecircle.app.shares import accounts_at_once, request_slots, service_identity
from lakecircle.app.wiring import open_hub, open_member
from lakecircle.core.accounts import Account
from lakecircle.core.report import Trigger
from lakecircle.engine.hub import AccountState
from lakecircle.engine.sharing import REPLICAS
from lakecircle.settings import load_settings
from tests.app.test_leasing import Transitions
from tests.builders import fleet, rule
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import assumed_client, object_keys, put_definitions, rules_of

pytestmark = pytest.mark.anyio

MEMBER = Account("111111111111", "arn:aws:iam::111111111111:role/lakecircle", external_id="lcc-canary-ext-4Rb8")


def settings() -> Any:
    return load_settings({}, aws_region=MOTO_REGION, concurrency=4)


async def test_a_member_account_is_opened_verified_and_logged_without_its_external_id(moto: str) -> None:
    assumed_client("s3", MEMBER.role_arn).create_bucket(Bucket="member-bucket")
    config = settings()
    slots = request_slots(config)

    with structlog.testing.capture_logs() as logs:
        async with open_member(config, service_identity(config, replica="r0"), MEMBER, slots=slots) as account:
            pages = [page async for page in account.adapter.iter_buckets()]

    assert [ref.name for page in pages for ref in page] == ["member-bucket"]
    assert account.caller == "arn:aws:sts::111111111111:assumed-role/lakecircle/lakecircle-r0"
    assert account.adapter.slots is slots.account(MEMBER.id)
    assert (slots.total, slots.per_account) == (4, 2)
    assert logs == [
        {
            "event": "account_verified",
            "log_level": "info",
            "account": MEMBER.id,
            "role": MEMBER.role_arn,
            "caller": account.caller,
        }
    ]


async def test_a_member_whose_role_is_refused_fails_before_anything_is_read(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings()
    entered = False

    with FaultProxy(moto) as proxy:
        proxy.force("AssumeRole", MEMBER.role_arn, Fault.DENIED)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        with structlog.testing.capture_logs() as logs, pytest.raises(errors.RoleDenied) as caught:
            async with open_member(config, service_identity(config), MEMBER):
                entered = True

    assert not entered
    assert logs == []
    assert caught.value.account == MEMBER.id
    assert set(proxy.seen) == {"AssumeRole"}


def test_the_hubs_session_name_names_the_replica_or_the_host() -> None:
    config = settings()

    assert service_identity(config, replica="lakecircle-0").session_name == "lakecircle-lakecircle-0"
    assert service_identity(config).session_name.startswith(f"lakecircle-{socket.gethostname()[:10]}")


def test_the_hub_needs_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LCC_AWS_REGION", raising=False)
    with pytest.raises(errors.ConfigError, match="LCC_AWS_REGION"):
        service_identity(load_settings({}))


# -- the hub ------------------------------------------------------------------------------------

ENDPOINT = "s3://hub-records/lcc/"
MEMBERS = ("111111111111", "222222222222")


def accounts_file(path: Path, *ids: str) -> Path:
    path.write_text("".join(f'[[Account]]\nId = "{i}"\n' for i in ids))
    return path


def hub_settings(tmp_path: Path, **overrides: Any) -> Any:
    given: dict[str, Any] = {
        "aws_account": MOTO_ACCOUNT,
        "aws_region": MOTO_REGION,
        "endpoint": ENDPOINT,
        "accounts": str(accounts_file(tmp_path / "accounts.toml", *MEMBERS)),
        "concurrency": 4,
    }
    return load_settings({}, **(given | overrides))


async def test_the_hub_writes_each_members_buckets_and_keeps_its_records_under_accounts_id(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    put_definitions(s3_client, "hub-records", "lcc/", {"base.toml": fleet(["*"], rule("abort", 7))})
    for account in MEMBERS:
        assumed_client("s3", f"arn:aws:iam::{account}:role/lakecircle").create_bucket(Bucket=f"data-{account}")

    adapters: dict[str | None, str] = {}
    slots: dict[str | None, Any] = {}

    def opened(account: str | None, adapter: Any) -> None:
        adapters[account] = adapter.account
        slots[account] = adapter.slots

    async with open_hub(hub_settings(tmp_path), dry_run=False, opened=opened) as hub:
        report = await hub.run_cycle(Trigger.SYNC)
        runs = dict(hub.runs)

    assert report.ok
    assert report.writes == 2
    assert adapters == {None: MOTO_ACCOUNT} | {account: account for account in MEMBERS}
    # Every adapter, the hub's own (records, definitions) included, is under the one process bound.
    assert all(s is not None for s in slots.values())
    assert len({s._process for s in slots.values()}) == 1
    assert {k: r.state for k, r in runs.items()} == dict.fromkeys(MEMBERS, AccountState.MANAGED)
    keys = object_keys(s3_client, "hub-records", "lcc/")
    for account in MEMBERS:
        assert f"lcc/accounts/{account}/current/data-{account}.json" in keys
        assert not any(k.startswith(f"lcc/accounts/{account}/previous/") for k in keys)
        assert any(k.startswith(f"lcc/accounts/{account}/history/") for k in keys)
        assert any(k.startswith(f"lcc/accounts/{account}/log/") for k in keys)
        member = assumed_client("s3", f"arn:aws:iam::{account}:role/lakecircle")
        assert rules_of(member, f"data-{account}") == {"abort": 7}
    assert not [k for k in keys if k.startswith(("lcc/current/", "lcc/history/", "lcc/log/", "lcc/previous/"))]


async def test_the_hubs_own_account_is_verified_before_anything_is_read(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    config = hub_settings(tmp_path, aws_account="999999999999")
    entered = False

    with pytest.raises(errors.AccountMismatch):
        async with open_hub(config, dry_run=True):
            entered = True

    assert not entered


def test_a_hub_needs_lcc_accounts() -> None:
    config = load_settings({}, aws_account=MOTO_ACCOUNT, aws_region=MOTO_REGION, endpoint=ENDPOINT)

    async def go() -> None:
        async with open_hub(config, dry_run=True):
            pass

    with pytest.raises(errors.ConfigError, match="LCC_ACCOUNTS"):
        anyio.run(go)


@pytest.mark.parametrize(("concurrency", "at_once"), [(1, 2), (4, 2), (16, 4), (64, 16)])
def test_accounts_run_four_slots_each_and_never_fewer_than_two_at_once(concurrency: int, at_once: int) -> None:
    assert accounts_at_once(load_settings({}, concurrency=concurrency)) == at_once


# -- the hub's leases ---------------------------------------------------------------------------


def own_calls(seen: dict[str, Any]) -> Callable[[str | None, Any], None]:
    """An ``opened`` watch that keeps the hub's own adapter and its request counts once verified."""

    def opened(account: str | None, adapter: Any) -> None:
        if account is None:
            seen.update(adapter=adapter, calls=Counter(adapter.calls))

    return opened


async def test_a_hub_replicas_leases_and_heartbeats_never_go_through_the_hubs_adapter(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    # The hub's adapter carries every member's records, under the process's slots and the
    # account's rate limit: a renewal queued there comes back too late for its lease.
    s3_client.create_bucket(Bucket="hub-records")
    config = hub_settings(tmp_path, lease_seconds=6, replica_id="pod-a", max_requests_per_second=2)
    own: dict[str, Any] = {}

    async with open_hub(config, dry_run=False, opened=own_calls(own), leases=Transitions()) as hub:
        sharing = hub.sharing
        assert sharing is not None
        assert isinstance(sharing.store, S3LeaseStore)
        await sharing.store.read(f"lease/{MEMBERS[0]}.json")
        await sharing.listing.list_keys(REPLICAS)
        store = sharing.store
        assert hub.hold is None

    assert own["adapter"].calls == own["calls"], "the probe, a lease read, the heartbeats' listing: none went there"
    assert own["adapter"].slots is not None
    lane = store.adapter
    assert (lane.slots, lane.gate.limiter) == (None, None)
    with pytest.raises(RuntimeError, match="outside its `async with` block"):
        await lane.client()


async def test_a_hub_syncs_hold_of_an_accounts_lease_never_goes_through_the_hubs_adapter(
    moto: str, s3_client: Any, tmp_path: Path
) -> None:
    s3_client.create_bucket(Bucket="hub-records")
    config = hub_settings(tmp_path, lease_seconds=6, replica_id="laptop")
    own: dict[str, Any] = {}

    async with open_hub(config, dry_run=False, opened=own_calls(own), lease_wait=0.5) as hub:
        assert hub.hold is not None
        with pytest.raises(LeaseHeld, match="took its lease"):  # a created lease: its first write waits
            async with hub.hold(Account(MEMBERS[0], f"arn:aws:iam::{MEMBERS[0]}:role/lakecircle")):
                pass

    assert f"lcc/lease/{MEMBERS[0]}.json" in object_keys(s3_client, "hub-records", "lcc/lease/")
    assert own["adapter"].calls == own["calls"], "the probe and the lease's requests went their own way"
