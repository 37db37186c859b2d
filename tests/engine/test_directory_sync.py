"""A cycle over a directory bucket: listed by ListDirectoryBuckets (not "missing"), planned and
written without ExpectedBucketOwner, in sync after; a definition it refuses is never sent.

The bucket calls go over real HTTP to bench/fake_directory.py; the definitions and records
are in memory (:class:`lakecircle.testing.MemoryS3`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fake_directory import FakeDirectoryServer
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.core.report import BucketState, CycleReport
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule
from tests.helpers import offline_sdk

BUCKET = "logs--use1-az4--x-s3"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeDirectoryServer]:
    offline_sdk(monkeypatch, tmp_path)
    with FakeDirectoryServer([BUCKET]) as fake:
        yield fake


async def cycle(server: FakeDirectoryServer, records: MemoryS3, *, dry_run: bool = False) -> CycleReport:
    s3 = S3Adapter(account="123456789012", region="us-east-1", endpoint_url=server.url, verify_account=False)
    s3.directory_buckets = True  # the test endpoint is not AWS's: ask it all the same
    async with s3:
        reconciler = Reconciler(s3, DefinitionLoader(records), history=History(records), dry_run=dry_run)
        return await reconciler.run_cycle()


@pytest.mark.anyio
async def test_plan_then_sync_writes_a_directory_bucket_without_expected_bucket_owner(
    server: FakeDirectoryServer,
) -> None:
    records = MemoryS3()
    wanted = (
        rule("expire", 7, prefix="tmp/"),
        rule("abort", Expiration=None, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}),
    )
    records.objects["definition/express.toml"] = definition(BUCKET, *wanted)

    planned = await cycle(server, records, dry_run=True)
    assert planned.counts[BucketState.DRIFTED] == 1
    assert planned.counts[BucketState.MISSING] == 0
    assert not server.state.of("PUT", "lifecycle")

    synced = await cycle(server, records)
    assert synced.writes == 1
    (put,) = server.state.of("PUT", "lifecycle")
    assert put.bucket == BUCKET
    assert "x-amz-expected-bucket-owner" not in put.headers
    assert b"<ID>expire</ID>" in server.state.lifecycles[BUCKET]

    again = await cycle(server, records, dry_run=True)
    assert again.counts[BucketState.IN_SYNC] == 1
    assert not [r for r in server.state.requests if "x-amz-expected-bucket-owner" in r.headers]


@pytest.mark.anyio
async def test_a_transition_on_a_directory_bucket_is_refused_before_anything_is_sent(
    server: FakeDirectoryServer,
) -> None:
    records = MemoryS3()
    moved = rule("archive", 90, Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}])
    records.objects["definition/express.toml"] = definition(BUCKET, moved)

    report = await cycle(server, records)

    assert report.writes == 0
    assert report.counts[BucketState.INVALID] == 1
    assert not server.state.of("PUT", "lifecycle")
    assert not server.state.of("GET", "lifecycle")
