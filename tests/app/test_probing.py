"""The service's one ``server_probed`` line: logged once, a warning for what is missing, never fatal."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.app.probing import announce_server
from lakecircle.settings import load_settings
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION

pytestmark = pytest.mark.anyio


async def announced(**settings: Any) -> list[MutableMapping[str, Any]]:
    # On unless a test says otherwise (the suite turns it off for every other test: tests.conftest.ONE_REPLICA).
    config = load_settings({}, aws_region=MOTO_REGION, aws_account=MOTO_ACCOUNT, **({"probe_server": True} | settings))
    with structlog.testing.capture_logs() as logs:
        async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, verify_account=False) as adapter:
            await announce_server(config, adapter)
    return logs


async def test_what_moto_drops_is_one_warning_line(moto: str, s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="records")

    [line] = await announced(endpoint="s3://records/lc/")

    assert (line["event"], line["log_level"], line["source"]) == ("server_probed", "warning", "probe")
    assert line["missing"] == [
        "object_size_filters",
        "newer_noncurrent_versions",
        "transition_default_minimum_object_size",
    ]
    assert (line["transitions"], line["conditional_writes"], line["not_probed"]) == (True, True, [])


async def test_an_endpoint_bucket_that_is_missing_is_named_and_the_rest_is_probed(moto: str) -> None:
    [line] = await announced(endpoint="s3://no-such-records/lc/")

    assert line["log_level"] == "warning"
    assert line["conditional_writes"] is None
    assert line["object_size_filters"] is False
    [why] = line["not_probed"]
    assert why.startswith("conditional writes: bucket no-such-records: PutObject failed [NoSuchBucket]")


@pytest.mark.parametrize("settings", [{"probe_server": False, "endpoint": "s3://records/lc/"}, {}])
async def test_no_probe_when_turned_off_or_without_an_endpoint(
    moto: str, s3_client: Any, settings: dict[str, Any]
) -> None:
    s3_client.create_bucket(Bucket="records")

    assert await announced(**settings) == []
    assert [b["Name"] for b in s3_client.list_buckets()["Buckets"]] == ["records"]
