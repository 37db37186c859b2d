"""Directory buckets through the S3 adapter, over real HTTP to bench/fake_directory.py (moto
serves neither ListDirectoryBuckets nor S3 Express sessions): listed, read and written
without ExpectedBucketOwner, in their zone's region; and, without a custom endpoint, sent
to the S3 Express control endpoint botocore's rules choose."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import structlog

from bench.fake_directory import FakeDirectoryServer
from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.directory import lists_directories
from lakecircle.core.model import LifecycleConfig
from lakecircle.ports import BucketRef
from tests.builders import rule
from tests.helpers import offline_sdk

ACCOUNT = "123456789012"
EAST = "logs--use1-az4--x-s3"
LAX = "scratch--usw2-lax1-az1--x-s3"


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline_sdk(monkeypatch, tmp_path)


@pytest.fixture
def server(credentials: None) -> Iterator[FakeDirectoryServer]:
    with FakeDirectoryServer([EAST, LAX, "a--euw1-az1--x-s3"], general_buckets=["plain-bucket"], page=2) as fake:
        yield fake


def adapter(server: FakeDirectoryServer, **options: Any) -> S3Adapter:
    s3 = S3Adapter(account=ACCOUNT, region="eu-west-1", endpoint_url=server.url, verify_account=False, **options)
    s3.directory_buckets = True  # the test endpoint is not AWS's: ask it all the same
    return s3


async def listed(s3: S3Adapter, prefix: str | None = None) -> list[BucketRef]:
    return [ref async for page in s3.iter_buckets(prefix) for ref in page]


@pytest.mark.anyio
async def test_directory_buckets_are_listed_after_the_general_purpose_ones_page_by_page(
    server: FakeDirectoryServer,
) -> None:
    async with adapter(server) as s3:
        refs = await listed(s3)

        assert [r.name for r in refs] == ["plain-bucket", "a--euw1-az1--x-s3", EAST, LAX]
        assert {r.name: r.region for r in refs[1:]} == {
            "a--euw1-az1--x-s3": "eu-west-1",
            LAX: "us-west-2",
            EAST: "us-east-1",
        }
        assert s3.calls["ListDirectoryBuckets"] == 2  # three buckets, two a page
    tokens = [r.query.get("continuation-token") for r in server.state.requests if "max-directory-buckets" in r.query]
    assert tokens == [None, ["page-2"]]


@pytest.mark.anyio
async def test_a_directory_bucket_is_found_by_name(server: FakeDirectoryServer) -> None:
    async with adapter(server) as s3:
        assert await s3.find_bucket(LAX) == BucketRef(LAX, "us-west-2")
        assert await s3.find_bucket("missing--use1-az4--x-s3") is None


@pytest.mark.anyio
async def test_a_directory_buckets_lifecycle_is_written_read_and_deleted_without_expected_bucket_owner(
    server: FakeDirectoryServer,
) -> None:
    config = LifecycleConfig(rules=(rule("expire", 7, prefix="tmp/"),))
    async with adapter(server) as s3:
        ref = BucketRef(EAST)
        assert await s3.get_lifecycle(ref) == LifecycleConfig()

        await s3.put_lifecycle(ref, config)
        assert (await s3.get_lifecycle(ref)).rules == config.rules

        await s3.delete_lifecycle(ref)
        assert EAST not in server.state.lifecycles

    calls = [r for r in server.state.requests if "lifecycle" in r.query]
    assert [r.method for r in calls] == ["GET", "PUT", "GET", "DELETE"]
    assert all(r.bucket == EAST for r in calls)
    assert not [r for r in calls if "x-amz-expected-bucket-owner" in r.headers]
    # botocore signs them for S3 Express: a session first, asked at the custom endpoint too
    assert server.state.of("GET", "session")
    assert all("s3express" in r.headers["authorization"] for r in calls)


@pytest.mark.anyio
async def test_a_directory_bucket_never_reads_nor_sends_a_transition_default_minimum_object_size(
    server: FakeDirectoryServer,
) -> None:
    server.state.minimum_size = "all_storage_classes_128K"
    sized = LifecycleConfig((rule("expire", 7, prefix="tmp/"),), "varies_by_storage_class")
    async with adapter(server) as s3:
        ref = BucketRef(EAST)
        await s3.put_lifecycle(ref, sized)
        read = await s3.get_lifecycle(ref)

    assert read == LifecycleConfig(sized.rules)
    [put] = server.state.of("PUT", "lifecycle")
    assert "x-amz-transition-default-minimum-object-size" not in put.headers


@pytest.mark.anyio
async def test_a_general_purpose_bucket_still_carries_expected_bucket_owner(server: FakeDirectoryServer) -> None:
    async with adapter(server) as s3:
        with pytest.raises(errors.InvalidRequest):  # the test endpoint refuses the owner everywhere
            await s3.get_lifecycle(BucketRef("plain-bucket", "eu-west-1"))

    (call,) = [r for r in server.state.requests if "lifecycle" in r.query]
    assert call.headers["x-amz-expected-bucket-owner"] == ACCOUNT


@pytest.mark.anyio
async def test_a_server_without_directory_buckets_lists_none_and_is_asked_once(credentials: None) -> None:
    with FakeDirectoryServer([], serves_directories=False) as fake:
        async with adapter(fake) as s3:
            assert await listed(s3) == []
            assert s3.calls["ListDirectoryBuckets"] == 1  # NotImplemented: no retry


@pytest.mark.anyio
async def test_a_role_refused_list_directory_buckets_lists_its_general_buckets_says_so_once_and_asks_no_more(
    server: FakeDirectoryServer,
) -> None:
    server.state.denies_directories = True
    with structlog.testing.capture_logs() as logs:
        async with adapter(server) as s3:
            assert [r.name for r in await listed(s3)] == ["plain-bucket"]
            assert [r.name for r in await listed(s3)] == ["plain-bucket"]
            assert s3.calls["ListDirectoryBuckets"] == 1

    [line] = logs
    assert (line["event"], line["log_level"], line["region"]) == (
        "directory_buckets_not_listed",
        "warning",
        "eu-west-1",
    )
    assert "ListDirectoryBuckets failed [AccessDenied]" in line["error"]
    assert "s3express:ListAllMyDirectoryBuckets" in line["hint"]


@pytest.mark.anyio
async def test_a_server_that_is_not_aws_is_not_asked_for_directory_buckets(server: FakeDirectoryServer) -> None:
    s3 = S3Adapter(account=ACCOUNT, region="eu-west-1", endpoint_url=server.url, verify_account=False)
    async with s3:
        assert [r.name for r in await listed(s3)] == ["plain-bucket"]

    assert s3.directory_buckets is False
    assert s3.calls["ListDirectoryBuckets"] == 0


@pytest.mark.parametrize(
    ("endpoint", "aws"),
    [
        (None, True),
        ("https://s3.eu-west-1.amazonaws.com", True),
        ("https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", True),
        ("https://s3.cn-north-1.amazonaws.com.cn", True),
        ("http://127.0.0.1:9000", False),
        ("https://minio.example.com", False),
        ("https://amazonaws.com.example.com", False),
    ],
)
def test_only_a_client_of_aws_own_endpoints_lists_directory_buckets(
    credentials: None, endpoint: str | None, aws: bool
) -> None:
    client = botocore.session.get_session().create_client("s3", region_name="eu-west-1", endpoint_url=endpoint)

    assert lists_directories(client) is aws


@pytest.mark.anyio
async def test_without_a_custom_endpoint_a_directory_bucket_goes_to_its_zones_s3_express_control_endpoint(
    credentials: None,
) -> None:
    async with S3Adapter(account=ACCOUNT, region="eu-west-1") as s3:
        ref = BucketRef(LAX)
        region = await s3.region_of(ref)
        client = await s3.client(region)
        operation = client.meta.service_model.operation_model("PutBucketLifecycleConfiguration")
        found = client._ruleset_resolver.construct_endpoint(  # the client's own resolution, nothing sent
            operation_model=operation, call_args={"Bucket": LAX}, request_context={}
        )
        if inspect.isawaitable(found):
            found = await found

    assert region == "us-west-2"
    assert found.url == f"https://s3express-control.us-west-2.amazonaws.com/{LAX}"
    assert s3.calls == {}  # neither HeadBucket nor GetBucketLocation was asked for the region
