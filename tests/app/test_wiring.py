"""The wiring of many accounts: the hub, the process's slots, and each member account opened checked.

Against moto's STS and S3 over HTTP; a refused AssumeRole is the fault proxy's, pinned on
one role (moto's STS assumes any role, see tests/adapters/test_roles.py).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
import structlog

from lakecircle import errors
from lakecircle.app.wiring import open_member, request_slots, service_identity
from lakecircle.core.accounts import Account
from lakecircle.settings import load_settings
from tests.conftest import MOTO_REGION
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import assumed_client

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
