"""The lease keeper over S3 (moto's server), and the in-memory store the engine's lease tests use answering
as S3 does: the same requests give the same answers and the same ETags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.leases import S3LeaseStore
from lakecircle.core.lease import Transition, decode
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.ports import LeaseStore
from lakecircle.testing import MemoryS3
from tests.adapters.test_s3 import create_bucket
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION

pytestmark = pytest.mark.anyio

BUCKET = "lease-endpoint"
URI = f"s3://{BUCKET}/lc/"
KEY = "lease/123456789012.json"


@pytest.fixture
async def store(moto: str, s3_client: Any) -> AsyncIterator[S3LeaseStore]:
    create_bucket(s3_client, BUCKET)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, concurrency=4) as adapter:
        yield S3LeaseStore(adapter, URI)


async def answers(store: LeaseStore) -> list[object]:
    """What a store answers to one sequence of lease requests."""
    out: list[object] = [await store.read(KEY)]
    first = await store.create(KEY, b'{"epoch": 1}')
    out += [first, await store.create(KEY, b'{"epoch": 1, "again": true}')]
    out += [await store.replace(KEY, b'{"epoch": 2}', '"0123"')]  # a stale ETag
    out += [await store.replace("lease/none.json", b"{}", first or "")]  # no such object
    second = await store.replace(KEY, b'{"epoch": 1, "renewed": 2}', first or "")
    out += [second, await store.read(KEY), await store.replace(KEY, b'{"epoch": 9}', first or "")]
    return out


async def test_the_memory_store_answers_lease_requests_as_s3_does(store: S3LeaseStore) -> None:
    assert await answers(MemoryS3()) == await answers(store)


async def test_a_keeper_acquires_and_renews_a_lease_over_s3(store: S3LeaseStore, s3_client: Any) -> None:
    seen: list[Transition] = []

    class Observer:
        def lease_transition(self, account: str, reason: Transition) -> None:
            seen.append(reason)

        def lease_held(self, account: str, held: bool) -> None:
            pass

    keeper = LeaseKeeper(store, "123456789012", "pod-a", 1.5, write_timeout=10.0, observer=Observer())
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(keeper.run)
            await keeper.wait_until_writable()
            while seen.count(Transition.RENEWED) < 2:
                await anyio.sleep(0.01)
            assert keeper.may_start_write()
            tg.cancel_scope.cancel()
        await keeper.release()
    body = decode(s3_client.get_object(Bucket=BUCKET, Key="lc/" + KEY)["Body"].read())
    assert body is not None
    assert (body.holder, body.epoch, body.released) == ("pod-a", 1, True)
    assert seen == [Transition.ACQUIRED, Transition.RENEWED, Transition.RENEWED, Transition.RELEASED]
