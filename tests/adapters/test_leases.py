"""The lease store over S3: conditional writes against moto's server, the fault proxy and the benchmark endpoint.

moto's server honours ``If-None-Match: *`` and ``If-Match`` (from 5.1.5) but checks and
writes without a lock, and it never answers 409 ConditionalRequestConflict: it shows the
request shapes and answers. Races (many writers on one key) run against the benchmark
endpoint, whose check and write are one step; a 409 and an answer without an ETag come from
stub clients.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bench import workload as wl
from bench.fake_s3 import FakeS3Process
from lakecircle import errors
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.leases import (
    PROBE_BODY,
    PROBE_PREFIX,
    ConditionalWrites,
    S3LeaseStore,
    conditional_writes_supported,
    probe_key,
)
from lakecircle.adapters.s3.stores import S3EndpointStore
from lakecircle.adapters.s3.transport import OBJECTS
from lakecircle.engine.leases import lease_key
from lakecircle.engine.sharing import REPLICAS
from lakecircle.ports import LeaseStore, Versioned
from lakecircle.testing import MemoryS3
from tests.adapters.test_s3 import StubAccount, client_error, create_bucket, methods, record_params, stub_adapter
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION, ServerTap
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import offline_sdk

pytestmark = pytest.mark.anyio

BUCKET = "lease-endpoint"
URI = f"s3://{BUCKET}/lc/"
KEY = "lease/123456789012.json"
REPLICA = "pod-a"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02)


def quoted_md5(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


@pytest.fixture
async def store(moto: str, s3_client: Any) -> AsyncIterator[S3LeaseStore]:
    create_bucket(s3_client, BUCKET)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, concurrency=4) as adapter:
        yield S3LeaseStore(adapter, URI)


def test_the_s3_lease_store_is_a_lease_store_and_names_where_it_writes() -> None:
    store = S3LeaseStore(S3Adapter(account=MOTO_ACCOUNT, region="eu-west-1"), URI)
    typed: LeaseStore = store
    assert typed is store
    assert (store.server, store.location) == ("S3 in eu-west-1", URI)
    proxied = S3LeaseStore(S3Adapter(account=MOTO_ACCOUNT, region="eu-west-1", endpoint_url="http://s3.local"), URI)
    assert proxied.server == "http://s3.local"


# -- against moto's server ------------------------------------------------------------------


async def test_a_create_succeeds_once_and_then_answers_none(store: S3LeaseStore, s3_client: Any) -> None:
    etag = await store.create(KEY, b'{"holder": "a"}')

    assert etag == quoted_md5(b'{"holder": "a"}')
    assert await store.create(KEY, b'{"holder": "b"}') is None
    stored = s3_client.get_object(Bucket=BUCKET, Key="lc/" + KEY)
    assert stored["Body"].read() == b'{"holder": "a"}'
    assert stored["ETag"] == etag
    assert stored["ContentType"] == "application/json"


async def test_read_gives_the_bytes_and_the_etag_exactly_as_s3_sends_it(store: S3LeaseStore, s3_client: Any) -> None:
    assert await store.read(KEY) is None
    s3_client.put_object(Bucket=BUCKET, Key="lc/" + KEY, Body=b"held")
    etag = s3_client.head_object(Bucket=BUCKET, Key="lc/" + KEY)["ETag"]

    assert etag.startswith('"')
    assert await store.read(KEY) == Versioned(b"held", etag)


async def test_a_replace_with_the_etag_read_succeeds_and_returns_the_new_etag(store: S3LeaseStore) -> None:
    first = await store.create(KEY, b"epoch 1")
    read = await store.read(KEY)
    assert read is not None
    assert read.etag == first

    second = await store.replace(KEY, b"epoch 1, renewed", read.etag)

    assert second is not None
    assert second != first
    assert await store.read(KEY) == Versioned(b"epoch 1, renewed", second)


async def test_a_replace_with_a_stale_etag_answers_none_and_writes_nothing(store: S3LeaseStore) -> None:
    stale = await store.create(KEY, b"epoch 1")
    current = await store.replace(KEY, b"epoch 2", stale or "")
    assert current is not None

    assert await store.replace(KEY, b"epoch 2 by a paused replica", stale or "") is None
    assert await store.read(KEY) == Versioned(b"epoch 2", current)


async def test_a_replace_of_a_missing_object_answers_none_and_creates_nothing(store: S3LeaseStore) -> None:
    assert await store.replace(KEY, b"taken over", quoted_md5(b"gone")) is None
    assert await store.read(KEY) is None


async def test_conditional_writes_carry_their_condition_and_the_expected_bucket_owner(
    moto: str, s3_client: Any
) -> None:
    create_bucket(s3_client, BUCKET)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION) as adapter:
        seen = record_params(await adapter.client(lane=OBJECTS))
        store = S3LeaseStore(adapter, URI)
        etag = await store.create(KEY, b"a")
        await store.replace(KEY, b"b", etag or "")

    puts = [params for operation, params in seen if operation == "PutObject"]
    assert [(p["Key"], p.get("IfNoneMatch"), p.get("IfMatch")) for p in puts] == [
        ("lc/" + KEY, "*", None),
        ("lc/" + KEY, None, etag),
    ]
    assert all(p["ExpectedBucketOwner"] == MOTO_ACCOUNT for p in puts)


async def test_the_probe_finds_conditional_writes_on_moto_at_the_first_start_and_the_next(
    store: S3LeaseStore, s3_client: Any
) -> None:
    for _ in range(2):  # the first start creates the probe object; the next finds it there
        found = await conditional_writes_supported(store, replica=REPLICA, server=store.server, location=store.location)
        assert found == ConditionalWrites(True)
    assert s3_client.head_object(Bucket=BUCKET, Key="lc/lease/probe/pod-a.json")["ContentLength"] > 0


async def test_two_replicas_probing_at_once_each_probe_an_object_of_their_own_and_both_pass(
    store: S3LeaseStore, s3_client: Any
) -> None:
    found: dict[str, ConditionalWrites] = {}

    async def probe(replica: str) -> None:
        found[replica] = await conditional_writes_supported(
            store, replica=replica, server=store.server, location=store.location
        )

    async with anyio.create_task_group() as group:  # the Deployment's first rollout: two pods at once
        group.start_soon(probe, "pod-a")
        group.start_soon(probe, "pod-b")

    assert found == {"pod-a": ConditionalWrites(True), "pod-b": ConditionalWrites(True)}
    listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix="lc/lease/")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["lc/lease/probe/pod-a.json", "lc/lease/probe/pod-b.json"]
    assert await S3EndpointStore(store.adapter, URI).list_keys(REPLICAS) == [], "no probe is taken for a heartbeat"


@pytest.mark.parametrize("replica", ["pod-a", "replicas", "probe", MOTO_ACCOUNT, "lakecircle-7d9f8c-x2b4q"])
def test_a_probe_object_is_never_a_lease_nor_a_heartbeat(replica: str) -> None:
    key = probe_key(replica)

    assert key == f"{PROBE_PREFIX}{replica}.json"
    assert not key.startswith(REPLICAS), "the heartbeats' listing would take it for a replica"
    assert key not in {lease_key(MOTO_ACCOUNT), lease_key(replica), lease_key(f"replicas/{replica}")}
    assert "/" in key.removeprefix("lease/"), "a lease's key is lease/<account>.json, an account ID has no slash"


# -- answers lost, refused or throttled (the fault proxy in front of moto) --------------------


@pytest.fixture
def proxy(moto: str, moto_tap: tuple[str, ServerTap], s3_client: Any) -> Iterator[FaultProxy]:
    create_bucket(s3_client, BUCKET)
    with FaultProxy(moto_tap[0], seed=0) as running:
        yield running


async def test_a_create_whose_answer_was_lost_raises_after_one_attempt_and_a_read_finds_it(
    proxy: FaultProxy,
) -> None:
    # The connection reset after moto stored the object: retried, the create would be refused
    # on its own object (412) and report a race it won as lost.
    proxy.force("PutObject", BUCKET, Fault.RESET, times=1)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=FAST) as adapter:
        store = S3LeaseStore(adapter, URI)
        with pytest.raises(errors.ConnectionFailed):
            await store.create(KEY, b"mine")
        assert adapter.calls["PutObject"] == 1
        read = await store.read(KEY)

    assert proxy.by_operation(Fault.RESET) == {"PutObject": 1}
    assert read == Versioned(b"mine", quoted_md5(b"mine")), "the reset came after moto stored it"


async def test_a_replace_answered_with_a_server_error_raises_at_once(proxy: FaultProxy) -> None:
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=FAST) as adapter:
        store = S3LeaseStore(adapter, URI)
        etag = await store.create(KEY, b"epoch 1")
        proxy.force("PutObject", BUCKET, Fault.SERVER_ERROR, times=1)
        with pytest.raises(errors.ServerError):
            await store.replace(KEY, b"epoch 1, renewed", etag or "")
        assert adapter.calls["PutObject"] == 2  # the create, and one attempt of the replace


async def test_a_throttled_conditional_write_is_retried_as_it_was_not_applied(proxy: FaultProxy) -> None:
    proxy.force("PutObject", BUCKET, Fault.SLOWDOWN, times=2)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=FAST) as adapter:
        store = S3LeaseStore(adapter, URI)
        etag = await store.create(KEY, b"mine")
        assert adapter.calls["PutObject"] == 3

    assert etag == quoted_md5(b"mine")


async def test_plain_records_are_still_retried_after_a_lost_answer(proxy: FaultProxy) -> None:
    proxy.force("PutObject", BUCKET, Fault.SERVER_ERROR, times=1)
    async with S3Adapter(account=MOTO_ACCOUNT, region=MOTO_REGION, endpoint_url=proxy.url, retry=FAST) as adapter:
        await adapter.write_object(BUCKET, "lc/history/x.json", b"{}", "application/json")
        assert adapter.calls["PutObject"] == 2


# -- stub clients: what moto never answers ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"), [("ConditionalRequestConflict", 409), ("PreconditionFailed", 412), ("NoSuchKey", 404)]
)
async def test_a_refused_condition_answers_none_and_is_never_retried(code: str, status: int) -> None:
    account = StubAccount({"put_object": [client_error(code, status, "PutObject")]})
    async with stub_adapter(account, retry=FAST) as adapter:
        store = S3LeaseStore(adapter, URI)
        assert await store.create(KEY, b"a") is None
        assert await store.replace(KEY, b"b", '"e"') is None

    assert methods(account) == ["put_object", "put_object"]


async def test_a_missing_endpoint_bucket_is_no_lost_race() -> None:
    account = StubAccount({"put_object": [client_error("NoSuchBucket", 404, "PutObject")]})
    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.NoSuchBucket):
            await S3LeaseStore(adapter, URI).create(KEY, b"a")


async def test_an_answer_without_an_etag_is_malformed_as_no_condition_could_follow_it() -> None:
    account = StubAccount({"put_object": [{}], "get_object": [{"Body": EmptyBody()}]})
    async with stub_adapter(account) as adapter:
        store = S3LeaseStore(adapter, URI)
        with pytest.raises(errors.MalformedResponse, match="no ETag"):
            await store.create(KEY, b"a")
        with pytest.raises(errors.MalformedResponse, match="no ETag"):
            await store.read(KEY)


class EmptyBody:
    async def __aenter__(self) -> EmptyBody:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self, _: int | None = None) -> bytes:
        return b""


async def test_a_server_that_does_not_implement_conditional_writes_is_not_supported() -> None:
    account = StubAccount({"put_object": [client_error("NotImplemented", 501, "PutObject")]})
    async with stub_adapter(account) as adapter:
        store = S3LeaseStore(adapter, URI)
        found = await conditional_writes_supported(
            store, replica=REPLICA, server="http://old-s3:9000", location=store.location
        )

    assert not found.supported
    assert found.reason.startswith("the server at http://old-s3:9000 (s3://lease-endpoint/lc/lease/probe/pod-a.json)")
    assert "does not implement conditional writes" in found.reason
    assert found.reason.endswith("set LCC_LEASE_SECONDS=0 and run one replica")


class Body:
    """A GetObject answer's streaming body."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aenter__(self) -> Body:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self, _: int | None = None) -> bytes:
        data, self.data = self.data, b""
        return data


async def test_a_409_conflict_on_the_probes_last_if_match_is_tried_again_before_any_verdict() -> None:
    # S3 answers 409 ConditionalRequestConflict to one of two conditional writes that cross.
    refused = client_error("PreconditionFailed", 412, "PutObject")
    account = StubAccount(
        {
            "put_object": [
                {"ETag": '"kms-1"'},  # created
                refused,  # a second create
                refused,  # If-Match on a stale ETag
                client_error("ConditionalRequestConflict", 409, "PutObject"),  # crossed another write
                {"ETag": '"kms-2"'},
            ],
            "get_object": [
                {"Body": Body(PROBE_BODY), "ETag": '"kms-1"'},
                {"Body": Body(PROBE_BODY), "ETag": '"kms-1"'},
            ],
        }
    )
    async with stub_adapter(account, retry=FAST) as adapter:
        store = S3LeaseStore(adapter, URI)
        found = await conditional_writes_supported(store, replica=REPLICA, server="S3", location=store.location)

    assert found == ConditionalWrites(True)
    assert methods(account)[-4:] == ["get_object", "put_object", "get_object", "put_object"]


async def test_the_probe_lets_other_failures_through() -> None:
    account = StubAccount({"put_object": [client_error("AccessDenied", 403, "PutObject")]})
    async with stub_adapter(account) as adapter:
        store = S3LeaseStore(adapter, URI)
        with pytest.raises(errors.AccessDenied):
            await conditional_writes_supported(store, replica=REPLICA, server="S3", location=store.location)


# -- races, against the benchmark endpoint (its check and write are one step) -----------------

RACERS = 40


@pytest.fixture(scope="module")
def bench_server() -> Iterator[FakeS3Process]:
    with FakeS3Process() as server:
        yield server


@pytest.fixture
def bench(bench_server: FakeS3Process, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeS3Process:
    """The benchmark endpoint, honouring conditions, and the SDK's environment for it."""
    bench_server.settings(delay_ms=20)  # every request waits, so the racers' requests are all under way at once
    offline_sdk(monkeypatch, tmp_path)
    return bench_server


@contextlib.asynccontextmanager
async def bench_store(bench: FakeS3Process, prefix: str) -> AsyncIterator[S3LeaseStore]:
    async with S3Adapter(
        account=wl.ACCOUNT, region=wl.REGION, endpoint_url=bench.url, concurrency=RACERS, retry=FAST
    ) as adapter:
        yield S3LeaseStore(adapter, f"s3://{wl.ENDPOINT_BUCKET}/{prefix}/")


async def race(count: int, write: Callable[[int], Awaitable[str | None]]) -> list[str | None]:
    """``write(i)`` for every i below ``count``, all at once; their answers in order."""
    answers: list[str | None] = [None] * count

    async def one(i: int) -> None:
        answers[i] = await write(i)

    async with anyio.create_task_group() as group:
        for i in range(count):
            group.start_soon(one, i)
    return answers


async def test_of_many_concurrent_creates_of_one_lease_exactly_one_wins(bench: FakeS3Process) -> None:
    async with bench_store(bench, "creates") as store:
        answers = await race(RACERS, lambda i: store.create(KEY, f"replica {i}".encode()))
        won = [i for i, etag in enumerate(answers) if etag is not None]
        assert len(won) == 1, answers
        assert await store.read(KEY) == Versioned(f"replica {won[0]}".encode(), answers[won[0]] or "")
    assert bench.counts()["ops"]["PutObject"] >= RACERS


async def test_of_many_concurrent_replaces_on_one_etag_exactly_one_wins(bench: FakeS3Process) -> None:
    async with bench_store(bench, "replaces") as store:
        etag = await store.create(KEY, b"epoch 1")
        assert etag is not None
        answers = await race(RACERS, lambda i: store.replace(KEY, f"epoch 2 by replica {i}".encode(), etag))
        won = [i for i, new in enumerate(answers) if new is not None]
        assert len(won) == 1, answers
        assert await store.read(KEY) == Versioned(f"epoch 2 by replica {won[0]}".encode(), answers[won[0]] or "")


async def test_the_benchmark_endpoint_refuses_if_match_on_a_missing_object(bench: FakeS3Process) -> None:
    async with bench_store(bench, "missing") as store:
        assert await store.replace(KEY, b"taken over", quoted_md5(b"gone")) is None
        assert await store.read(KEY) is None


@pytest.mark.parametrize(
    ("ignored", "reason"),
    [
        ((), None),
        (("If-None-Match", "If-Match"), "ignores conditional writes (If-None-Match)"),
        (("If-Match",), "ignores conditional writes (If-Match)"),
    ],
)
async def test_the_probe_says_whether_the_server_honours_conditional_writes(
    bench: FakeS3Process, ignored: tuple[str, ...], reason: str | None
) -> None:
    bench.settings(ignore=ignored)
    prefix = "probe-" + ("-".join(ignored) or "honoured")
    async with bench_store(bench, prefix) as store:
        found = await conditional_writes_supported(store, replica=REPLICA, server=store.server, location=store.location)

    if reason is None:
        assert found == ConditionalWrites(True)
        return
    assert not found.supported
    assert found.reason == (
        f"the server at {bench.url} (s3://{wl.ENDPOINT_BUCKET}/{prefix}/lease/probe/pod-a.json) {reason};"
        " leases need them: set LCC_LEASE_SECONDS=0 and run one replica"
    )


class RefusesEveryIfMatch(MemoryS3):
    """If-None-Match honoured; If-Match always refused (an ETag compared in another form, say unquoted)."""

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        return None


class NewETagEachPut:
    """Conditions honoured; each PUT gets a new opaque ETag, as under SSE-KMS (not the body's MD5).

    Every request lets the other tasks run first, so that concurrent probes interleave.
    """

    def __init__(self) -> None:
        self.objects: dict[str, Versioned] = {}
        self.puts = 0

    async def read(self, key: str) -> Versioned | None:
        await anyio.lowlevel.checkpoint()
        return self.objects.get(key)

    async def create(self, key: str, data: bytes) -> str | None:
        await anyio.lowlevel.checkpoint()
        return None if key in self.objects else self._put(key, data)

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        await anyio.lowlevel.checkpoint()
        found = self.objects.get(key)
        return self._put(key, data) if found is not None and found.etag == etag else None

    def _put(self, key: str, data: bytes) -> str:
        self.puts += 1
        self.objects[key] = Versioned(data, f'"kms-{self.puts}"')
        return self.objects[key].etag


async def probe_at_once(store: LeaseStore, *replicas: str) -> list[ConditionalWrites]:
    """The probes of ``replicas``, all at once; their verdicts in order."""
    found: list[ConditionalWrites] = [ConditionalWrites(False)] * len(replicas)

    async def one(i: int) -> None:
        found[i] = await conditional_writes_supported(store, replica=replicas[i], server="S3", location=URI)

    async with anyio.create_task_group() as group:
        for i in range(len(replicas)):
            group.start_soon(one, i)
    return found


async def test_two_replicas_probing_at_once_where_every_put_gets_a_new_etag_both_pass() -> None:
    store = NewETagEachPut()

    found = await probe_at_once(store, "pod-a", "pod-b")

    assert found == [ConditionalWrites(True)] * 2, [f.reason for f in found]
    assert set(store.objects) == {probe_key("pod-a"), probe_key("pod-b")}


async def test_a_probe_whose_if_match_loses_to_another_writer_of_its_object_tries_again() -> None:
    # Two processes with one replica ID (`kubectl exec <pod> -- lakecircle sync` while the pod's
    # daemon starts): the other's replace changes the ETag between this one's read and replace.
    store = NewETagEachPut()

    found = await probe_at_once(store, "pod-a", "pod-a")

    assert found == [ConditionalWrites(True)] * 2, [f.reason for f in found]


async def test_the_probe_refuses_a_server_where_a_matching_if_match_fails() -> None:
    store = RefusesEveryIfMatch()
    found = await conditional_writes_supported(store, replica=REPLICA, server="x", location="s3://b/p/")
    assert not found.supported, "the probe passed, yet no lease can be renewed or taken over on this server"
