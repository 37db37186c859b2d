"""The endpoint's listing with ETags (``S3EndpointStore.list_etags``): how a replica watches its peers'
heartbeats (engine/sharing.py) without reading them. A listing's ETag must be the one a read of the
same object gives, or every heartbeat would look written anew, or never; against moto's server and
the benchmark endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import workload as wl
from bench.fake_s3 import FakeS3Process
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.leases import S3LeaseStore
from lakecircle.adapters.s3.stores import S3EndpointStore
from tests.adapters.test_s3 import create_bucket
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION
from tests.helpers import offline_sdk

pytestmark = pytest.mark.anyio

BUCKET = "heartbeat-endpoint"
HEARTBEATS = ["lease/replicas/pod-a.json", "lease/replicas/pod-b.json"]


async def heartbeats_listed_and_read(adapter: S3Adapter, uri: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two heartbeats written, one renewed, and an account's lease beside them; the heartbeats'
    ETags as a listing gives them and as reads give them."""
    leases, endpoint = S3LeaseStore(adapter, uri), S3EndpointStore(adapter, uri)
    for key in HEARTBEATS:
        await leases.create(key, key.encode())
    renewed = await leases.read(HEARTBEATS[1])
    assert renewed is not None
    await leases.replace(HEARTBEATS[1], b"renewed", renewed.etag)
    await leases.create("lease/123456789012.json", b"an account's lease, not a heartbeat")
    listed = await endpoint.list_etags("lease/replicas/")
    read = {}
    for key in listed:
        found = await leases.read(key)
        assert found is not None
        read[key] = found.etag
    return listed, read


async def test_a_listing_gives_each_heartbeat_with_the_etag_a_read_gives(moto: str, s3_client: Any) -> None:
    create_bucket(s3_client, BUCKET)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, concurrency=4) as adapter:
        listed, read = await heartbeats_listed_and_read(adapter, f"s3://{BUCKET}/lc/")
    assert sorted(listed) == HEARTBEATS
    assert listed == read


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeS3Process]:
    offline_sdk(monkeypatch, tmp_path)
    with FakeS3Process() as server:
        yield server


async def test_the_benchmark_endpoint_lists_each_heartbeat_with_the_etag_a_read_gives(bench: FakeS3Process) -> None:
    fast = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02)
    async with S3Adapter(account=wl.ACCOUNT, region=wl.REGION, endpoint_url=bench.url, retry=fast) as adapter:
        listed, read = await heartbeats_listed_and_read(adapter, f"s3://{wl.ENDPOINT_BUCKET}/heartbeats/")
    assert sorted(listed) == HEARTBEATS
    assert listed == read
