"""The S3 adapter: against moto's server over HTTP, and against stub clients where moto can't show it.

Moto never returns a ContinuationToken or BucketRegion from ListBuckets, ignores
ExpectedBucketOwner and drops ObjectSize* and NewerNoncurrentVersions, so pagination,
region resolution and the error mapping are tested with stub clients handed to the
adapter, and the integration fixtures stick to what moto round-trips.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import socket
import ssl
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import botocore
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from botocore.utils import parse_timestamp
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from lakecircle import errors
from lakecircle.adapters.retry import RetryPolicy
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.botocore import SMALL_BODY, USER_AGENT, OneAttemptSession, parse_s3_timestamp
from lakecircle.adapters.s3.errors import map_error
from lakecircle.adapters.s3.regions import region_from_location
from lakecircle.adapters.s3.stores import S3DefinitionSource, S3EndpointStore
from lakecircle.adapters.s3.transport import OBJECTS
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.parse import MAX_FILE_BYTES
from lakecircle.ports import BucketRef, DefinitionSource, EndpointStore, LifecycleStore, ObjectRef, TagReader
from lakecircle.s3_uri import parse_s3_uri
from lakecircle.testing import MemoryS3
from tests.builders import RecordingObserver
from tests.conftest import ServerTap
from tests.faultproxy import Fault, FaultProxy

ACCOUNT = "123456789012"  # moto's account
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"

pytestmark = pytest.mark.anyio


class Naps:
    """An injected sleep that records its delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def rules_from_wire(*wire: dict[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule.model_validate(w) for w in wire)


# What moto round-trips: no ObjectSize* filters, no NewerNoncurrentVersions.
ROUND_TRIP = LifecycleConfig(
    rules=rules_from_wire(
        {
            "ID": "archive-logs",
            "Status": "Enabled",
            "Filter": {"Prefix": "logs/"},
            "Expiration": {"Days": 90},
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 60, "StorageClass": "GLACIER"}],
        },
        {
            "ID": "tagged-until-2030",
            "Status": "Disabled",
            "Filter": {"Tag": {"Key": "team", "Value": "data"}},
            "Expiration": {"Date": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)},
        },
        {
            "ID": "old-versions",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "x/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
            "NoncurrentVersionTransitions": [{"NoncurrentDays": 5, "StorageClass": "GLACIER"}],
        },
        {
            "ID": "whole-bucket",
            "Status": "Enabled",
            "Filter": {},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
        },
    ),
    transition_default_minimum_object_size="all_storage_classes_128K",
)


@pytest.fixture
async def s3(moto: str) -> AsyncIterator[S3Adapter]:
    async with S3Adapter(account=ACCOUNT, region=REGION, concurrency=4) as adapter:
        yield adapter


def create_bucket(s3_client: Any, name: str, region: str = REGION) -> None:
    if region == "us-east-1":
        s3_client.create_bucket(Bucket=name)
    else:
        s3_client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def record_params(client: Any, event: str = "before-parameter-build.s3") -> list[tuple[str, dict[str, Any]]]:
    """Record (operation, parameters) of every request the client makes, via a botocore event hook."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, dict(params)))

    client.meta.events.register(event, hook)
    return seen


async def collect(adapter: S3Adapter) -> list[list[BucketRef]]:
    return [page async for page in adapter.iter_buckets()]


def test_the_adapters_implement_the_store_protocols() -> None:
    adapter = S3Adapter(account=ACCOUNT, region=REGION)
    store: LifecycleStore = adapter
    source: DefinitionSource = S3DefinitionSource(adapter, "s3://endpoint/lc/definition/")
    endpoint: EndpointStore = S3EndpointStore(adapter, "s3://endpoint/lc/")
    assert store is adapter
    assert source.location == "s3://endpoint/lc/definition/"
    assert isinstance(endpoint, S3EndpointStore)


# -- against moto ---------------------------------------------------------------------------


async def test_lists_every_bucket_of_the_account(s3: S3Adapter, s3_client: Any) -> None:
    for name in ("alpha-bucket", "beta-bucket"):
        create_bucket(s3_client, name)
    create_bucket(s3_client, "gamma-bucket", "eu-west-1")

    pages = await collect(s3)

    assert [sorted(b.name for b in page) for page in pages] == [["alpha-bucket", "beta-bucket", "gamma-bucket"]]
    assert s3.calls["ListBuckets"] == 1


async def test_finds_a_bucket_of_the_account_by_name_with_one_listbuckets_by_prefix(
    s3: S3Adapter, s3_client: Any
) -> None:
    for name in ("data", "data-2", "datum"):
        create_bucket(s3_client, name)
    sent = record_params(await s3.client(REGION))

    found = await s3.find_bucket("data")
    missing = await s3.find_bucket("dat")

    assert found is not None
    assert found.name == "data"
    assert missing is None
    assert [(op, params.get("Prefix")) for op, params in sent] == [("ListBuckets", "data"), ("ListBuckets", "dat")]


async def test_finds_a_missing_region_once_and_sends_the_buckets_calls_there(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "eu-bucket", "eu-west-1")
    [[ref]] = await collect(s3)  # moto lists no BucketRegion
    assert ref.region is None
    eu_requests = record_params(await s3.client("eu-west-1"))

    assert await s3.get_lifecycle(ref) == LifecycleConfig()
    assert await s3.get_lifecycle(ref) == LifecycleConfig()

    assert await s3.region_of(ref) == "eu-west-1"
    assert s3.calls["HeadBucket"] == 1
    assert [op for op, _ in eu_requests] == ["GetBucketLifecycleConfiguration"] * 2


async def test_a_bucket_without_configuration_reads_as_no_rules(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "bare-bucket")

    assert await s3.get_lifecycle(BucketRef("bare-bucket", REGION)) == LifecycleConfig()


async def test_put_then_get_round_trips_the_configuration(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "rules-bucket")
    ref = BucketRef("rules-bucket", REGION)

    await s3.put_lifecycle(ref, ROUND_TRIP)

    assert await s3.get_lifecycle(ref) == ROUND_TRIP


async def test_the_legacy_prefix_form_round_trips(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "legacy-bucket")
    ref = BucketRef("legacy-bucket", REGION)
    legacy = rules_from_wire(
        {"ID": "old", "Status": "Enabled", "Prefix": "old/", "Expiration": {"Days": 3}},
        {"ID": "all", "Status": "Enabled", "Prefix": "", "Expiration": {"Days": 400}},
    )

    await s3.put_lifecycle(ref, LifecycleConfig(rules=legacy))

    assert (await s3.get_lifecycle(ref)).rules == legacy


async def test_transition_default_minimum_object_size_is_its_own_request_parameter(
    s3: S3Adapter, s3_client: Any
) -> None:
    create_bucket(s3_client, "tdmos-bucket")
    requests = record_params(await s3.client())
    config = LifecycleConfig(
        rules=ROUND_TRIP.rules[:1], transition_default_minimum_object_size="varies_by_storage_class"
    )

    await s3.put_lifecycle(BucketRef("tdmos-bucket", REGION), config)

    [(operation, params)] = requests
    assert operation == "PutBucketLifecycleConfiguration"
    assert params["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    assert "TransitionDefaultMinimumObjectSize" not in params["LifecycleConfiguration"]


async def test_delete_removes_the_configuration(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "doomed-rules")
    ref = BucketRef("doomed-rules", REGION)
    await s3.put_lifecycle(ref, ROUND_TRIP)

    await s3.delete_lifecycle(ref)

    assert await s3.get_lifecycle(ref) == LifecycleConfig()
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3_client.get_bucket_lifecycle_configuration(Bucket="doomed-rules")


async def test_every_bucket_call_carries_the_expected_bucket_owner(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "owned-bucket")
    create_bucket(s3_client, "endpoint-bucket")
    s3_client.put_object(Bucket="endpoint-bucket", Key="lc/definition/a.toml", Body=b"x = 1\n")
    bucket_requests = record_params(await s3.client())
    object_requests = record_params(await s3.client(lane=OBJECTS))  # the endpoint's objects: a client of their own
    ref = BucketRef("owned-bucket")  # region unknown: found with HeadBucket
    source = S3DefinitionSource(s3, "s3://endpoint-bucket/lc/definition/")
    endpoint = S3EndpointStore(s3, "s3://endpoint-bucket/lc/")

    await s3.put_lifecycle(ref, ROUND_TRIP)
    await s3.get_lifecycle(ref)
    await s3.delete_lifecycle(ref)
    [definition] = await source.list_definitions()
    await source.fetch(definition)
    await endpoint.put_bytes("current/owned-bucket.json", b"{}")
    await endpoint.get_bytes("current/owned-bucket.json")
    await endpoint.list_keys("current/")

    assert {op for op, _ in bucket_requests} == {
        "HeadBucket",
        "PutBucketLifecycleConfiguration",
        "GetBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
    }
    assert {op for op, _ in object_requests} == {"ListObjectsV2", "GetObject", "PutObject"}
    assert all(params.get("ExpectedBucketOwner") == ACCOUNT for _, params in bucket_requests + object_requests)


async def test_counts_one_call_per_request_by_operation(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "counted-bucket")
    ref = BucketRef("counted-bucket", REGION)

    await s3.check_account()
    await collect(s3)
    await s3.get_lifecycle(ref)
    await s3.put_lifecycle(ref, ROUND_TRIP)
    await s3.get_lifecycle(ref)
    await s3.delete_lifecycle(ref)

    assert s3.calls == Counter(
        {
            "GetCallerIdentity": 1,
            "ListBuckets": 1,
            "GetBucketLifecycleConfiguration": 2,
            "PutBucketLifecycleConfiguration": 1,
            "DeleteBucketLifecycle": 1,
        }
    )


async def test_account_check_returns_the_callers_arn(s3: S3Adapter) -> None:
    assert await s3.check_account() == f"arn:aws:sts::{ACCOUNT}:user/moto"


async def test_account_check_refuses_another_account(moto: str) -> None:
    async with S3Adapter(account=OTHER_ACCOUNT, region=REGION) as adapter:
        with pytest.raises(errors.AccountMismatch) as caught:
            await adapter.check_account()

    assert (caught.value.expected, caught.value.actual) == (OTHER_ACCOUNT, ACCOUNT)
    assert OTHER_ACCOUNT in str(caught.value)
    assert ACCOUNT in str(caught.value)


async def test_account_check_can_be_turned_off_and_then_asks_nothing(moto: str) -> None:
    async with S3Adapter(account=OTHER_ACCOUNT, region=REGION, verify_account=False) as adapter:
        assert await adapter.check_account() is None

    assert adapter.calls["GetCallerIdentity"] == 0


async def test_a_missing_bucket_is_no_such_bucket(s3: S3Adapter) -> None:
    with pytest.raises(errors.NoSuchBucket) as caught:
        await s3.get_lifecycle(BucketRef("no-such-bucket", REGION))

    assert caught.value.bucket == "no-such-bucket"
    assert caught.value.operation == "GetBucketLifecycleConfiguration"
    assert caught.value.code == "NoSuchBucket"
    assert caught.value.status == 404
    assert isinstance(caught.value.__cause__, ClientError)


async def test_a_missing_bucket_of_unknown_region_is_no_such_bucket(s3: S3Adapter) -> None:
    with pytest.raises(errors.NoSuchBucket) as caught:
        await s3.put_lifecycle(BucketRef("no-such-bucket"), ROUND_TRIP)

    assert caught.value.operation == "HeadBucket"
    assert s3.calls["PutBucketLifecycleConfiguration"] == 0


async def test_an_unreachable_endpoint_is_connection_failed_after_our_retries_only(moto: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    naps = Naps()
    async with S3Adapter(
        account=ACCOUNT,
        region=REGION,
        endpoint_url=f"http://127.0.0.1:{port}",
        connect_timeout=2,
        retry=RetryPolicy(max_attempts=3),
        sleep=naps,
    ) as adapter:
        with pytest.raises(errors.ConnectionFailed) as caught:
            await collect(adapter)

    assert caught.value.operation == "ListBuckets"
    assert isinstance(caught.value, errors.TransientError)
    assert adapter.calls["ListBuckets"] == 3  # botocore made one attempt per retry of ours
    assert len(naps.delays) == 2


async def test_content_md5_replaces_the_crc32_checksum(moto: str, s3_client: Any) -> None:
    create_bucket(s3_client, "md5-bucket")
    headers: list[dict[str, str]] = []
    bodies: list[bytes] = []

    def capture(request: Any, **_: Any) -> None:
        headers.append({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        bodies.append(request.body)

    async with S3Adapter(account=ACCOUNT, region=REGION, content_md5=True) as adapter:
        (await adapter.client()).meta.events.register("before-send.s3.PutBucketLifecycleConfiguration", capture)
        ref = BucketRef("md5-bucket", REGION)
        await adapter.put_lifecycle(ref, ROUND_TRIP)
        assert await adapter.get_lifecycle(ref) == ROUND_TRIP

    [sent] = headers
    assert sent["content-md5"] == base64.b64encode(hashlib.md5(bodies[0], usedforsecurity=False).digest()).decode()
    assert not [name for name in sent if name.startswith("x-amz-checksum-") or name == "x-amz-sdk-checksum-algorithm"]


async def test_without_content_md5_botocore_sends_its_own_checksum(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "crc-bucket")
    headers: list[set[str]] = []

    def capture(request: Any, **_: Any) -> None:
        headers.append({k.lower() for k in request.headers})

    (await s3.client()).meta.events.register("before-send.s3.PutBucketLifecycleConfiguration", capture)
    await s3.put_lifecycle(BucketRef("crc-bucket", REGION), ROUND_TRIP)

    [sent] = headers
    assert "content-md5" not in sent
    assert any(name.startswith("x-amz-checksum-") for name in sent)


# -- retries, against moto behind a throttling proxy ---------------------------------------


class SlowDownFirst:
    """WSGI middleware: S3's 503 SlowDown for the first ``times`` lifecycle requests, then the app's answers."""

    def __init__(self, app: Any, times: int) -> None:
        self.app = app
        self.left = times
        self.throttled = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        if query.split("=", 1)[0].split("&", 1)[0] == "lifecycle":
            with self.lock:
                refuse = self.left > 0
                if refuse:
                    self.left -= 1
                    self.throttled += 1
            if refuse:
                body = (
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    b"<Message>Please reduce your request rate.</Message><RequestId>SLOW0001</RequestId></Error>"
                )
                start_response(
                    "503 Slow Down",
                    [
                        ("Content-Type", "application/xml"),
                        ("Content-Length", str(len(body))),
                        ("x-amz-request-id", "SLOW0001"),
                    ],
                )
                return [body]
        return self.app(environ, start_response)


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on 127.0.0.1 and a free port, as conftest serves moto; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


async def test_a_throttled_lifecycle_read_succeeds_after_retries_and_each_attempt_is_observed(
    s3: S3Adapter, s3_client: Any, tap: ServerTap
) -> None:
    create_bucket(s3_client, "busy-bucket")
    ref = BucketRef("busy-bucket", REGION)
    await s3.put_lifecycle(ref, ROUND_TRIP)
    slow = SlowDownFirst(tap, times=3)
    observer = RecordingObserver()
    policy = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05)  # real, short sleeps

    with serve(slow) as url:
        async with S3Adapter(
            account=ACCOUNT, region=REGION, endpoint_url=url, retry=policy, observer=observer
        ) as adapter:
            assert await adapter.get_lifecycle(ref) == ROUND_TRIP

    operation = "GetBucketLifecycleConfiguration"
    assert slow.throttled == 3
    assert tap.counts[("GET", "busy-bucket", "lifecycle")] == 1  # only the fourth attempt got through
    assert adapter.calls[operation] == 4  # each of our attempts is one HTTP request: botocore never retries
    assert [(op, outcome) for op, outcome, _ in observer.requests] == [(operation, "throttled")] * 3 + [
        (operation, "success")
    ]
    assert [(op, reason) for op, reason, _ in observer.retries] == [(operation, "throttled")] * 3
    assert all(0 <= delay <= 0.05 for _, _, delay in observer.retries)
    assert all(seconds > 0 for _, _, seconds in observer.requests)


class Body:
    """A streaming body that hands out its chunks (or raises an exception among them)."""

    def __init__(self, chunks: list[bytes | Exception]) -> None:
        self.chunks = chunks

    async def __aenter__(self) -> Body:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self, _: int | None = None) -> bytes:
        chunk = self.chunks.pop(0) if self.chunks else b""
        if isinstance(chunk, Exception):
            raise chunk
        return chunk


async def test_a_connection_dropped_while_reading_an_object_is_retried() -> None:
    dropped = IncompleteReadError(actual_bytes=2, expected_bytes=5)
    account = StubAccount({"get_object": [{"Body": Body([b"ab", dropped])}, {"Body": Body([b"abcde"])}]})
    naps = Naps()

    async with stub_adapter(account, sleep=naps) as adapter:
        assert await adapter.read_object("endpoint", "lc/definition/a.toml", limit=100) == b"abcde"

    assert methods(account) == ["get_object", "get_object"]
    assert len(naps.delays) == 1


# -- definitions and the endpoint, against moto -----------------------------------------


async def test_definitions_are_the_toml_keys_under_the_prefix_with_etags(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "endpoint-bucket")
    objects = {
        "lc/definition/a.toml": b'BucketName = "a"\n',
        "lc/definition/team/b.toml": b'BucketName = "b"\n# longer\n',
        "lc/definition/README.md": b"# not a definition\n",
        "lc/definition/c.toml.bak": b"old\n",
        "lc/current/a.toml": b"not under the definition prefix\n",
    }
    for key, body in objects.items():
        s3_client.put_object(Bucket="endpoint-bucket", Key=key, Body=body)
    source = S3DefinitionSource(s3, "s3://endpoint-bucket/lc/definition/")

    refs = await source.list_definitions()

    assert sorted(r.key for r in refs) == ["lc/definition/a.toml", "lc/definition/team/b.toml"]
    for ref in refs:
        head = s3_client.head_object(Bucket="endpoint-bucket", Key=ref.key)
        assert ref.etag == head["ETag"].strip('"')
        assert ref.etag == hashlib.md5(objects[ref.key], usedforsecurity=False).hexdigest()
        assert ref.size == len(objects[ref.key])
        assert await source.fetch(ref) == objects[ref.key]


async def test_fetch_reads_no_more_than_one_byte_over_the_limit(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "endpoint-bucket")
    s3_client.put_object(Bucket="endpoint-bucket", Key="definition/huge.toml", Body=b"#" * (MAX_FILE_BYTES + 4096))
    source = S3DefinitionSource(s3, "s3://endpoint-bucket/definition/")
    [ref] = await source.list_definitions()

    data = await source.fetch(ref)

    assert ref.size == MAX_FILE_BYTES + 4096
    assert len(data) == MAX_FILE_BYTES + 1


async def test_a_definition_prefix_that_cannot_be_listed_names_the_uri(s3: S3Adapter) -> None:
    source = S3DefinitionSource(s3, "s3://missing-endpoint/lc/definition/")

    with pytest.raises(errors.DefinitionSourceError, match="s3://missing-endpoint/lc/definition/") as caught:
        await source.list_definitions()

    assert isinstance(caught.value.__cause__, errors.NoSuchBucket)


async def test_the_endpoint_store_keeps_keys_relative_to_its_prefix(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "endpoint-bucket")
    s3_client.put_object(Bucket="endpoint-bucket", Key="elsewhere/current/x.json", Body=b"{}")
    store = S3EndpointStore(s3, "s3://endpoint-bucket/lc/")

    await store.put_bytes("current/a.json", b'{"a": 1}')
    await store.put_bytes("current/b.json", b'{"b": 2}')
    await store.put_bytes("history/2025/01/01/a.json", b"{}")

    assert await store.get_bytes("current/a.json") == b'{"a": 1}'
    assert await store.get_bytes("current/none.json") is None
    assert await store.list_keys("current/") == ["current/a.json", "current/b.json"]
    head = s3_client.head_object(Bucket="endpoint-bucket", Key="lc/current/a.json")
    assert head["ContentType"] == "application/json"


# -- stub clients: what moto cannot show ----------------------------------------------------


Answer = dict[str, Any] | Exception


class StubAccount:
    """Canned answers per client method, and a log of (region, method, params) requests."""

    def __init__(self, answers: dict[str, list[Answer]] | None = None) -> None:
        self.answers: dict[str, list[Answer]] = answers or {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def factory(self, service: str, region: str) -> contextlib.nullcontext[StubClient]:
        return contextlib.nullcontext(StubClient(self, region))


class StubClient:
    def __init__(self, account: StubAccount, region: str) -> None:
        self._account = account
        self._region = region

    def __getattr__(self, method: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def call(**params: Any) -> dict[str, Any]:
            self._account.requests.append((self._region, method, params))
            await asyncio.sleep(0)  # let concurrent callers interleave
            queue = self._account.answers.get(method)
            if not queue:
                return {}
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def stub_adapter(account: StubAccount, **options: Any) -> S3Adapter:
    return S3Adapter(account=ACCOUNT, region=REGION, client_factory=account.factory, **options)


def client_error(
    code: str, status: int, operation: str = "GetBucketLifecycleConfiguration", headers: dict[str, str] | None = None
) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"RequestId": "REQ123", "HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        },
        operation,
    )


def methods(account: StubAccount) -> list[str]:
    return [method for _, method, _ in account.requests]


async def test_bucket_pages_follow_continuation_tokens_until_none_comes_back() -> None:
    account = StubAccount(
        {
            "list_buckets": [
                {"Buckets": [{"Name": "a", "BucketRegion": "eu-west-1"}, {"Name": "b"}], "ContinuationToken": "t1"},
                {"Buckets": [{"Name": "c", "BucketRegion": "us-west-2"}], "ContinuationToken": "t2"},
                {"Buckets": [{"Name": "d"}]},
            ]
        }
    )

    async with stub_adapter(account, page_size=2) as adapter:
        pages = await collect(adapter)

    assert pages == [
        [BucketRef("a", "eu-west-1"), BucketRef("b", None)],
        [BucketRef("c", "us-west-2")],
        [BucketRef("d", None)],
    ]
    assert [params for _, _, params in account.requests] == [
        {"MaxBuckets": 2},
        {"MaxBuckets": 2, "ContinuationToken": "t1"},
        {"MaxBuckets": 2, "ContinuationToken": "t2"},
    ]
    assert adapter.calls["ListBuckets"] == 3


async def test_buckets_are_listed_ten_thousand_a_page_by_default() -> None:
    account = StubAccount({"list_buckets": [{"Buckets": [{"Name": "a"}]}]})

    async with stub_adapter(account) as adapter:
        await collect(adapter)

    assert [params for _, _, params in account.requests] == [{"MaxBuckets": 10_000}]


async def test_a_continuation_token_that_repeats_is_a_malformed_response() -> None:
    account = StubAccount({"list_buckets": [{"Buckets": [{"Name": "a"}], "ContinuationToken": "same"}]})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.MalformedResponse, match="ContinuationToken"):
            await collect(adapter)

    assert adapter.calls["ListBuckets"] == 2


async def test_continuation_tokens_that_come_round_again_are_a_malformed_response() -> None:
    pages: list[dict[str, Any] | Exception] = [
        {"Buckets": [{"Name": f"b{i}"}], "ContinuationToken": token} for i, token in enumerate("ababab")
    ]
    account = StubAccount({"list_buckets": pages})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.MalformedResponse, match="ContinuationToken"):
            await collect(adapter)

    assert adapter.calls["ListBuckets"] == 3  # t=a, t=b, then a again: stopped


async def test_definition_listing_follows_continuation_tokens() -> None:
    account = StubAccount(
        {
            "list_objects_v2": [
                {
                    "Contents": [{"Key": "d/a.toml", "ETag": '"e1"', "Size": 1}, {"Key": "d/x.md", "ETag": '"e2"'}],
                    "IsTruncated": True,
                    "NextContinuationToken": "n1",
                },
                {"Contents": [{"Key": "d/b.toml", "ETag": '"e3"', "Size": 3}], "IsTruncated": False},
            ]
        }
    )

    async with stub_adapter(account) as adapter:
        refs = await S3DefinitionSource(adapter, "s3://endpoint/d/").list_definitions()

    assert refs == [ObjectRef("d/a.toml", "e1", 1), ObjectRef("d/b.toml", "e3", 3)]
    assert [params.get("ContinuationToken") for _, _, params in account.requests] == [None, "n1"]
    assert all(params["Prefix"] == "d/" for _, _, params in account.requests)


async def test_a_definition_page_that_says_more_follows_without_a_token_is_a_failed_listing() -> None:
    account = StubAccount(
        {"list_objects_v2": [{"Contents": [{"Key": "d/a.toml", "ETag": '"e1"'}], "IsTruncated": True}]}
    )

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.DefinitionSourceError, match="gives no NextContinuationToken") as caught:
            await S3DefinitionSource(adapter, "s3://endpoint/d/").list_definitions()

    assert isinstance(caught.value.__cause__, errors.MalformedResponse)
    assert adapter.calls["ListObjectsV2"] == 1


async def test_a_continuation_token_already_used_ends_the_object_listing_as_malformed() -> None:
    def page(token: str) -> dict[str, Any]:
        return {
            "Contents": [{"Key": f"d/{token}.toml", "ETag": '"e"'}],
            "IsTruncated": True,
            "NextContinuationToken": token,
        }

    account = StubAccount({"list_objects_v2": [page("t1"), page("t2"), page("t1"), page("t2")]})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.MalformedResponse, match="already used came back"):
            async for _ in adapter.iter_objects("endpoint", "d/"):
                pass

    assert [params.get("ContinuationToken") for _, _, params in account.requests] == [None, "t1", "t2"]


MD5_OF_OTHER = hashlib.md5(b"other", usedforsecurity=False).hexdigest()


async def test_an_object_body_that_does_not_match_its_md5_etag_is_retried_then_refused() -> None:
    good = hashlib.md5(b"abcde", usedforsecurity=False).hexdigest()
    account = StubAccount(
        {
            "get_object": [
                {"Body": Body([b"abXde"]), "ETag": f'"{good}"'},
                {"Body": Body([b"abcde"]), "ETag": f'"{good}"'},
                {"Body": Body([b"abXde"]), "ETag": f'"{good}"'},
            ]
        }
    )
    naps = Naps()

    async with stub_adapter(account, sleep=naps, retry=RetryPolicy(max_attempts=2)) as adapter:
        assert await adapter.read_object("endpoint", "d/a.toml", limit=100) == b"abcde"
        with pytest.raises(errors.ConnectionFailed, match=f"does not match its ETag {good}"):
            await adapter.read_object("endpoint", "d/a.toml", limit=100)

    assert methods(account) == ["get_object"] * 4
    assert len(naps.delays) == 2


@pytest.mark.parametrize(
    "answer",
    [
        {"ETag": f'"{MD5_OF_OTHER}"', "ServerSideEncryption": "aws:kms"},
        {"ETag": f'"{MD5_OF_OTHER}"', "SSECustomerAlgorithm": "AES256"},
        {"ETag": f'"{MD5_OF_OTHER}-3"'},  # a multipart upload
        {},
    ],
    ids=["sse-kms", "sse-c", "multipart", "no-etag"],
)
async def test_an_etag_that_is_no_md5_of_the_body_is_not_checked(answer: dict[str, Any]) -> None:
    account = StubAccount({"get_object": [{"Body": Body([b"abcde"]), **answer}]})

    async with stub_adapter(account) as adapter:
        assert await adapter.read_object("endpoint", "d/a.toml") == b"abcde"

    assert methods(account) == ["get_object"]


async def test_a_body_read_only_up_to_the_limit_is_not_checked_against_its_etag() -> None:
    account = StubAccount({"get_object": [{"Body": Body([b"abc", b"de"]), "ETag": f'"{MD5_OF_OTHER}"'}]})

    async with stub_adapter(account) as adapter:
        assert await adapter.read_object("endpoint", "d/huge.toml", limit=3) == b"abc"


def test_page_size_is_bounded_by_what_s3_accepts() -> None:
    with pytest.raises(ValueError, match="page_size"):
        S3Adapter(account=ACCOUNT, region=REGION, page_size=10_001)


async def test_a_listed_region_is_used_without_asking() -> None:
    account = StubAccount({"list_buckets": [{"Buckets": [{"Name": "a", "BucketRegion": "ap-south-1"}]}]})

    async with stub_adapter(account) as adapter:
        [[ref]] = await collect(adapter)
        await adapter.get_lifecycle(ref)
        await adapter.put_lifecycle(ref, ROUND_TRIP)
        await adapter.delete_lifecycle(ref)

    assert [(region, method) for region, method, _ in account.requests[1:]] == [
        ("ap-south-1", "get_bucket_lifecycle_configuration"),
        ("ap-south-1", "put_bucket_lifecycle_configuration"),
        ("ap-south-1", "delete_bucket_lifecycle"),
    ]


async def test_the_region_comes_from_the_head_bucket_header_once_per_bucket() -> None:
    head = {"ResponseMetadata": {"HTTPHeaders": {"x-amz-bucket-region": "eu-central-1"}}}
    account = StubAccount({"head_bucket": [head]})

    async with stub_adapter(account) as adapter:
        ref = BucketRef("a")
        await asyncio.gather(*(adapter.get_lifecycle(ref) for _ in range(5)))
        await adapter.put_lifecycle(ref, ROUND_TRIP)

    assert methods(account).count("head_bucket") == 1
    assert {region for region, method, _ in account.requests if method != "head_bucket"} == {"eu-central-1"}
    assert account.requests[0] == (REGION, "head_bucket", {"Bucket": "a", "ExpectedBucketOwner": ACCOUNT})


async def test_a_refused_head_bucket_still_gives_the_region_from_its_header() -> None:
    refused = client_error("403", 403, "HeadBucket", {"x-amz-bucket-region": "sa-east-1"})
    account = StubAccount({"head_bucket": [refused]})

    async with stub_adapter(account) as adapter:
        assert await adapter.region_of(BucketRef("a")) == "sa-east-1"

    assert "get_bucket_location" not in methods(account)


@pytest.mark.parametrize(
    ("constraint", "region"),
    [(None, "us-east-1"), ("", "us-east-1"), ("EU", "eu-west-1"), ("eu-west-3", "eu-west-3")],
)
async def test_without_a_region_header_get_bucket_location_decides(constraint: str | None, region: str) -> None:
    account = StubAccount(
        {
            "head_bucket": [client_error("403", 403, "HeadBucket")],
            "get_bucket_location": [{"LocationConstraint": constraint}],
        }
    )

    async with stub_adapter(account) as adapter:
        assert await adapter.region_of(BucketRef("a")) == region

    assert methods(account) == ["head_bucket", "get_bucket_location"]
    assert account.requests[1][2] == {"Bucket": "a", "ExpectedBucketOwner": ACCOUNT}


async def test_a_throttled_head_bucket_is_retried_and_not_papered_over() -> None:
    account = StubAccount({"head_bucket": [client_error("SlowDown", 503, "HeadBucket")]})

    async with stub_adapter(account, retry=RetryPolicy(max_attempts=3), sleep=Naps()) as adapter:
        with pytest.raises(errors.Throttled):
            await adapter.get_lifecycle(BucketRef("a"))

    assert methods(account) == ["head_bucket"] * 3


async def test_get_reads_transition_default_minimum_object_size_and_every_feature() -> None:
    response = {
        "TransitionDefaultMinimumObjectSize": "varies_by_storage_class",
        "Rules": [
            {
                "ID": "sized",
                "Status": "Enabled",
                "Filter": {"And": {"Prefix": "p/", "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 100}},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 3, "NewerNoncurrentVersions": 2},
            }
        ],
        "ResponseMetadata": {"RequestId": "R"},
    }
    account = StubAccount({"get_bucket_lifecycle_configuration": [response]})

    async with stub_adapter(account) as adapter:
        config = await adapter.get_lifecycle(BucketRef("a", REGION))

    assert config.transition_default_minimum_object_size == "varies_by_storage_class"
    [rule] = config.rules
    assert rule.filter is not None
    assert rule.filter.and_ is not None
    assert rule.filter.and_.object_size_less_than == 100
    assert rule.noncurrent_version_expiration is not None
    assert rule.noncurrent_version_expiration.newer_noncurrent_versions == 2


async def test_a_field_botocore_knows_and_the_model_does_not_makes_the_bucket_unsupported() -> None:
    response = {
        "Rules": [
            {"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}},
            {"ID": "y", "Status": "Enabled", "Filter": {"Size": 3}, "Expiration": {"Days": 1}, "FutureFeature": {}},
        ],
        "ResponseMetadata": {"RequestId": "REQ9"},
    }
    account = StubAccount({"get_bucket_lifecycle_configuration": [response]})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.UnsupportedConfiguration) as caught:
            await adapter.get_lifecycle(BucketRef("a", REGION))

    assert caught.value.fields == ('rule "y": Filter.Size', 'rule "y": FutureFeature')
    assert (caught.value.bucket, caught.value.request_id) == ("a", "REQ9")


async def test_a_field_of_the_wrong_type_beside_an_unknown_one_is_a_malformed_response() -> None:
    response = {
        "Rules": [{"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": "one"}, "FutureFeature": {}}],
        "ResponseMetadata": {"RequestId": "REQ9"},
    }
    account = StubAccount({"get_bucket_lifecycle_configuration": [response]})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.MalformedResponse, match=r"Expiration\.Days") as caught:
            await adapter.get_lifecycle(BucketRef("a", REGION))

    assert not isinstance(caught.value, errors.UnsupportedConfiguration)
    assert (caught.value.bucket, caught.value.request_id) == ("a", "REQ9")


async def test_put_sends_the_whole_configuration_with_the_owner() -> None:
    account = StubAccount()
    config = LifecycleConfig(
        rules=ROUND_TRIP.rules[:2], transition_default_minimum_object_size="all_storage_classes_128K"
    )

    async with stub_adapter(account) as adapter:
        await adapter.put_lifecycle(BucketRef("a", REGION), config)

    [(_, method, params)] = account.requests
    assert method == "put_bucket_lifecycle_configuration"
    assert params["Bucket"] == "a"
    assert params["ExpectedBucketOwner"] == ACCOUNT
    assert params["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    assert [r["ID"] for r in params["LifecycleConfiguration"]["Rules"]] == ["archive-logs", "tagged-until-2030"]


async def test_a_failed_call_raises_the_projects_error_from_botocores() -> None:
    denied = client_error("AccessDenied", 403, "PutBucketLifecycleConfiguration")
    account = StubAccount({"put_bucket_lifecycle_configuration": [denied]})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.AccessDenied) as caught:
            await adapter.put_lifecycle(BucketRef("a", REGION), ROUND_TRIP)

    assert caught.value.__cause__ is denied
    assert "bucket a: PutBucketLifecycleConfiguration failed [AccessDenied]" in str(caught.value)
    assert "REQ123" in str(caught.value)


def test_the_adapter_refuses_to_work_outside_its_context() -> None:
    adapter = S3Adapter(account=ACCOUNT, region=REGION, client_factory=StubAccount().factory)

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(adapter.client())


# -- the error mapping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "operation", "expected"),
    [
        ("AccessDenied", 403, "GetBucketLifecycleConfiguration", errors.AccessDenied),
        ("AllAccessDisabled", 403, "GetBucketLifecycleConfiguration", errors.AccessDenied),
        ("SomethingForbidden", 403, "PutBucketLifecycleConfiguration", errors.AccessDenied),
        ("InvalidClientTokenId", 403, "GetCallerIdentity", errors.AccessDenied),
        ("NoSuchBucket", 404, "DeleteBucketLifecycle", errors.NoSuchBucket),
        ("404", 404, "HeadBucket", errors.NoSuchBucket),
        ("SlowDown", 503, "PutBucketLifecycleConfiguration", errors.Throttled),
        ("Throttling", 400, "GetCallerIdentity", errors.Throttled),
        ("ThrottlingException", 400, "ListBuckets", errors.Throttled),
        ("RequestTimeout", 400, "PutObject", errors.Throttled),
        ("RequestLimitExceeded", 400, "ListBuckets", errors.Throttled),
        ("ServiceUnavailable", 503, "ListBuckets", errors.Throttled),
        ("InternalError", 500, "GetBucketLifecycleConfiguration", errors.ServerError),
        ("BadGateway", 502, "GetBucketLifecycleConfiguration", errors.ServerError),
        ("MalformedXML", 400, "PutBucketLifecycleConfiguration", errors.InvalidRequest),
        ("InvalidArgument", 400, "PutBucketLifecycleConfiguration", errors.InvalidRequest),
        ("InvalidRequest", 400, "PutBucketLifecycleConfiguration", errors.InvalidRequest),
        ("PermanentRedirect", 301, "GetBucketLifecycleConfiguration", errors.InvalidRequest),
        ("NoSuchKey", 404, "GetObject", errors.NotFound),
        ("NoSuchLifecycleConfiguration", 404, "GetBucketLifecycleConfiguration", errors.NotFound),
        # A "not found" code with a refusal's or a failure's status is that refusal or failure:
        # read as "no rules", it would have a bucket's rules written over.
        ("NoSuchLifecycleConfiguration", 403, "GetBucketLifecycleConfiguration", errors.AccessDenied),
        ("NoSuchLifecycleConfiguration", 503, "GetBucketLifecycleConfiguration", errors.Throttled),
        ("NoSuchLifecycleConfiguration", 500, "GetBucketLifecycleConfiguration", errors.ServerError),
        ("InvalidObjectState", 403, "GetObject", errors.ArchivedObject),
        ("NoSuchTagSet", 404, "GetBucketTagging", errors.NotFound),
        # Read as "no tags", a failure would have a tag selector drop the bucket.
        ("NoSuchTagSet", 503, "GetBucketTagging", errors.Throttled),
        ("NoSuchTagSet", 500, "GetBucketTagging", errors.ServerError),
        ("NoSuchTagSet", 403, "GetBucketTagging", errors.AccessDenied),
        # Each operation's own "not found" code only.
        ("NoSuchTagSet", 404, "GetBucketLifecycleConfiguration", errors.InvalidRequest),
        ("NoSuchLifecycleConfiguration", 404, "GetBucketTagging", errors.InvalidRequest),
        # A conditional PutObject's refusals (the leases'): an answer, never retried.
        ("PreconditionFailed", 412, "PutObject", errors.ConditionFailed),
        ("412", 412, "PutObject", errors.ConditionFailed),  # no error document
        ("ConditionalRequestConflict", 409, "PutObject", errors.ConditionFailed),
        ("NoSuchKey", 404, "PutObject", errors.ConditionFailed),  # If-Match on a key with no object
        # A missing bucket or a failure is never read as a lost race; other operations keep their own.
        ("NoSuchBucket", 404, "PutObject", errors.NoSuchBucket),
        ("PreconditionFailed", 500, "PutObject", errors.ServerError),
        ("PreconditionFailed", 412, "GetObject", errors.InvalidRequest),
        # A server that lacks a feature: a 5xx that another try would not change.
        ("NotImplemented", 501, "PutBucketLifecycleConfiguration", errors.NotImplementedByServer),
        ("501", 501, "GetBucketTagging", errors.NotImplementedByServer),  # no error document
    ],
)
def test_client_errors_map_by_code_and_status(
    code: str, status: int, operation: str, expected: type[errors.S3Error]
) -> None:
    mapped = map_error(client_error(code, status, operation), operation=operation, bucket="b")

    assert type(mapped) is expected
    assert isinstance(mapped, errors.S3Error)
    assert (mapped.operation, mapped.bucket, mapped.code, mapped.status, mapped.request_id) == (
        operation,
        "b",
        code,
        status,
        "REQ123",
    )


def test_the_request_id_falls_back_to_the_response_header() -> None:
    exc = ClientError(
        {
            "Error": {"Code": "404", "Message": "Not Found"},
            "ResponseMetadata": {"RequestId": "", "HTTPStatusCode": 404, "HTTPHeaders": {"x-amz-request-id": "HDR1"}},
        },
        "HeadBucket",
    )

    mapped = map_error(exc, operation="HeadBucket", bucket="b")

    assert isinstance(mapped, errors.NoSuchBucket)
    assert mapped.request_id == "HDR1"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), errors.ConnectionFailed),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), errors.ConnectionFailed),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), errors.ConnectionFailed),
        (ResponseParserError("Unable to parse response, invalid XML"), errors.MalformedResponse),
        (ParamValidationError(report="Unknown parameter"), errors.InvalidRequest),
        (NoCredentialsError(), errors.ConfigError),
    ],
)
def test_transport_and_local_errors_map_to_what_the_caller_does_next(
    exc: Exception, expected: type[errors.LakeCircleError]
) -> None:
    mapped = map_error(exc, operation="ListBuckets")

    assert type(mapped) is expected
    if isinstance(mapped, errors.S3Error):
        assert mapped.operation == "ListBuckets"


def test_transient_and_permanent_errors_are_told_apart() -> None:
    throttled = map_error(client_error("SlowDown", 503), operation="X")
    denied = map_error(client_error("AccessDenied", 403), operation="X")

    assert isinstance(throttled, errors.TransientError)
    assert isinstance(denied, errors.PermanentError)


# -- bucket tags (the TagReader port) -------------------------------------------------------


def put_tags(s3_client: Any, bucket: str, tags: dict[str, str]) -> None:
    s3_client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


TaggedAccount = tuple[S3Adapter | MemoryS3, Callable[[str, dict[str, str]], None]]
"""A tag reader, and how to create a bucket with tags in it."""


@pytest.fixture(params=["s3-adapter-over-moto", "memory-s3"])
async def tagged(request: pytest.FixtureRequest, moto: str, s3_client: Any) -> AsyncIterator[TaggedAccount]:
    """A TagReader and a way to create a bucket with tags in it: moto behind the adapter, or MemoryS3."""
    if request.param == "memory-s3":
        memory = MemoryS3()
        yield memory, lambda name, tags: memory.add_bucket(name, tags=tags)
        return

    def arrange(name: str, tags: dict[str, str]) -> None:
        create_bucket(s3_client, name)
        if tags:
            put_tags(s3_client, name, tags)

    async with S3Adapter(account=ACCOUNT, region=REGION) as adapter:
        yield adapter, arrange


def test_the_adapter_and_the_memory_s3_are_tag_readers() -> None:
    readers: list[TagReader] = [S3Adapter(account=ACCOUNT, region=REGION), MemoryS3()]
    assert all(callable(reader.get_bucket_tags) for reader in readers)


async def test_a_buckets_tags_read_back_as_keys_and_values(tagged: TaggedAccount) -> None:
    reader, arrange = tagged
    arrange("tagged-bucket", {"retention": "1y", "team": "data", "empty": ""})

    tags = await reader.get_bucket_tags(BucketRef("tagged-bucket", REGION))

    assert tags == {"retention": "1y", "team": "data", "empty": ""}
    assert reader.calls["GetBucketTagging"] == 1


async def test_a_bucket_without_tags_reads_as_no_tags(tagged: TaggedAccount) -> None:
    reader, arrange = tagged
    arrange("untagged-bucket", {})

    assert await reader.get_bucket_tags(BucketRef("untagged-bucket", REGION)) == {}
    assert reader.calls["GetBucketTagging"] == 1


async def test_a_missing_buckets_tags_are_no_such_bucket(tagged: TaggedAccount) -> None:
    reader, _ = tagged

    with pytest.raises(errors.NoSuchBucket) as caught:
        await reader.get_bucket_tags(BucketRef("no-such-bucket", REGION))

    assert (caught.value.operation, caught.value.bucket) == ("GetBucketTagging", "no-such-bucket")
    assert "GetBucketTagging failed" in str(caught.value)


async def test_tags_removed_from_a_bucket_read_as_no_tags_again(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "retagged-bucket")
    put_tags(s3_client, "retagged-bucket", {"retention": "1y"})
    ref = BucketRef("retagged-bucket", REGION)
    assert await s3.get_bucket_tags(ref) == {"retention": "1y"}

    s3_client.delete_bucket_tagging(Bucket="retagged-bucket")

    assert await s3.get_bucket_tags(ref) == {}


async def test_a_tag_read_goes_to_the_buckets_region_with_the_owner_and_is_observed(moto: str, s3_client: Any) -> None:
    create_bucket(s3_client, "eu-tagged", "eu-west-1")
    put_tags(s3_client, "eu-tagged", {"retention": "1y"})
    create_bucket(s3_client, "eu-untagged", "eu-west-1")
    observer = RecordingObserver()

    async with S3Adapter(account=ACCOUNT, region=REGION, observer=observer) as adapter:
        eu_requests = record_params(await adapter.client("eu-west-1"))
        assert await adapter.get_bucket_tags(BucketRef("eu-tagged")) == {"retention": "1y"}  # region found first
        assert await adapter.get_bucket_tags(BucketRef("eu-untagged", "eu-west-1")) == {}

    assert [op for op, _ in eu_requests] == ["GetBucketTagging"] * 2
    assert all(params["ExpectedBucketOwner"] == ACCOUNT for _, params in eu_requests)
    assert [(op, outcome) for op, outcome, _ in observer.requests] == [
        ("HeadBucket", "success"),
        ("GetBucketTagging", "success"),
        ("GetBucketTagging", "not_found"),  # NoSuchTagSet: counted as what it was, read as no tags
    ]
    assert adapter.calls == Counter({"HeadBucket": 1, "GetBucketTagging": 2})


async def test_a_throttled_tag_read_is_retried_and_a_refused_one_is_access_denied(moto: str, s3_client: Any) -> None:
    create_bucket(s3_client, "busy-tagged")
    put_tags(s3_client, "busy-tagged", {"retention": "1y"})
    create_bucket(s3_client, "secret-tagged")
    observer = RecordingObserver()
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)

    with FaultProxy(moto) as proxy:
        proxy.force("GetBucketTagging", "busy-tagged", Fault.SLOWDOWN, times=2)
        proxy.force("GetBucketTagging", "secret-tagged", Fault.DENIED)
        async with S3Adapter(
            account=ACCOUNT, region=REGION, endpoint_url=proxy.url, retry=policy, observer=observer
        ) as adapter:
            assert await adapter.get_bucket_tags(BucketRef("busy-tagged", REGION)) == {"retention": "1y"}
            with pytest.raises(errors.AccessDenied) as caught:
                await adapter.get_bucket_tags(BucketRef("secret-tagged", REGION))

    assert [(op, outcome) for op, outcome, _ in observer.requests] == [
        ("GetBucketTagging", "throttled"),
        ("GetBucketTagging", "throttled"),
        ("GetBucketTagging", "success"),
        ("GetBucketTagging", "denied"),  # never retried
    ]
    assert [(op, reason) for op, reason, _ in observer.retries] == [("GetBucketTagging", "throttled")] * 2
    assert (caught.value.bucket, caught.value.code) == ("secret-tagged", "AccessDenied")
    assert "deploy/iam-policy.json" in str(caught.value)


@pytest.mark.parametrize(
    ("tag_set", "problem"),
    [
        pytest.param([{"Value": "1y"}], "tag #1 of its TagSet has no Key", id="an entry without a key"),
        pytest.param(
            [{"Key": "a", "Value": "1"}, {"Key": "", "Value": "2"}],
            "tag #2 of its TagSet has no Key",
            id="an empty key",
        ),
        pytest.param(
            [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "b"}],
            "tag team comes twice, with different values",
            id="one key with two values",
        ),
        pytest.param([{"Key": "team", "Value": 7}], "the value of tag team is not text", id="a value that is no text"),
        pytest.param("team=data", "its TagSet is not a list of tags", id="a tag set that is no list"),
        pytest.param(["team"], "tag #1 of its TagSet has no Key", id="an entry that is no tag"),
    ],
)
async def test_a_tag_set_that_cannot_be_read_is_a_malformed_response_naming_the_bucket(
    tag_set: Any, problem: str
) -> None:
    account = StubAccount({"get_bucket_tagging": [{"TagSet": tag_set, "ResponseMetadata": {"RequestId": "TAG1"}}]})

    async with stub_adapter(account) as adapter:
        with pytest.raises(errors.MalformedResponse) as caught:
            await adapter.get_bucket_tags(BucketRef("odd-bucket", REGION))

    assert (caught.value.bucket, caught.value.operation, caught.value.request_id) == (
        "odd-bucket",
        "GetBucketTagging",
        "TAG1",
    )
    assert str(caught.value) == (
        f"bucket odd-bucket: GetBucketTagging failed: the bucket's tags could not be read: {problem};"
        " nothing was written on the strength of it (request id TAG1)"
    )


@pytest.mark.parametrize(
    ("tag_set", "tags"),
    [
        pytest.param([{"Key": "team"}], {"team": ""}, id="an entry without a value has the empty value"),
        pytest.param(
            [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "a"}],
            {"team": "a"},
            id="one tag sent twice is one tag",
        ),
        pytest.param(None, {}, id="an answer without a tag set has no tags"),
    ],
)
async def test_tag_sets_that_s3_compatible_servers_shorten_still_read(tag_set: Any, tags: dict[str, str]) -> None:
    account = StubAccount({"get_bucket_tagging": [{"TagSet": tag_set}]})

    async with stub_adapter(account) as adapter:
        assert await adapter.get_bucket_tags(BucketRef("lean-bucket", REGION)) == tags


async def test_the_memory_s3_fails_tag_reads_as_told_and_hands_out_copies() -> None:
    memory = MemoryS3()
    memory.add_bucket("kept", tags={"team": "data"})
    memory.add_bucket("denied")
    memory.fail(
        "GetBucketTagging", "denied", lambda op, b: errors.AccessDenied("Access Denied", operation=op, bucket=b)
    )

    tags = await memory.get_bucket_tags(BucketRef("kept"))
    tags["team"] = "changed"
    with pytest.raises(errors.AccessDenied):
        await memory.get_bucket_tags(BucketRef("denied"))

    assert await memory.get_bucket_tags(BucketRef("kept")) == {"team": "data"}
    assert memory.calls == Counter({"GetBucketTagging": 3})


# -- small helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/lc/definition", ("bucket", "lc/definition/")),
        ("s3://bucket/lc/definition/", ("bucket", "lc/definition/")),
    ],
)
def test_s3_uris_split_into_bucket_and_prefix(uri: str, parts: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == parts


@pytest.mark.parametrize("uri", ["bucket/prefix/", "s3:///prefix/", "https://bucket/"])
def test_a_malformed_s3_uri_is_a_config_error(uri: str) -> None:
    with pytest.raises(errors.ConfigError):
        parse_s3_uri(uri)


@pytest.mark.parametrize(
    ("constraint", "region"),
    [(None, "us-east-1"), ("", "us-east-1"), ("EU", "eu-west-1"), ("ap-south-1", "ap-south-1")],
)
def test_location_constraints_name_regions(constraint: str | None, region: str) -> None:
    assert region_from_location(constraint) == region


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29T12:00:00.000Z",  # S3's XML timestamps
        "2026-11-29T12:00:00Z",
        "2026-11-29T00:00:00+00:00",
        "2026-11-29T12:30:15.123456Z",
        "2026-11-29T12:00:00.000+02:00",
        "2026-11-29T12:00:00",  # no offset: naive, as botocore gives it
        "Sun, 29 Nov 2026 12:00:00 GMT",  # an HTTP date header
        "Mon, 01 Jan 2001 00:00:59 GMT",
        "Sun, 29 Nov 2026 12:00:00 +0000",  # another zone's spelling: botocore's parser
        "1796212800",  # epoch seconds
        "2026-11-29",
    ],
)
def test_timestamps_read_as_botocore_reads_them(value: str) -> None:
    ours, botocores = parse_s3_timestamp(value), parse_timestamp(value)

    assert ours == botocores
    assert ours.utcoffset() == botocores.utcoffset()


@pytest.mark.parametrize(
    "value", ["someday", "2026-13-45T00:00:00Z", "2026-11-29Tnoon", "Sun, 31 Feb 2026 12:00:00 GMT"]
)
def test_an_invalid_timestamp_fails_as_botocores_does(value: str) -> None:
    with pytest.raises(ValueError, match="Invalid timestamp") as ours:
        parse_s3_timestamp(value)
    with pytest.raises(ValueError, match="Invalid timestamp") as botocores:
        parse_timestamp(value)
    assert str(ours.value) == str(botocores.value)


async def test_the_adapters_clients_read_timestamps_with_the_fast_parser(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "dated-bucket")
    ref = BucketRef("dated-bucket", REGION)
    dated = rules_from_wire(
        {"ID": "dated", "Status": "Enabled", "Filter": {}, "Expiration": {"Date": "2030-01-01T00:00:00Z"}}
    )

    await s3.put_lifecycle(ref, LifecycleConfig(rules=dated))
    raw = await s3.call("GetBucketLifecycleConfiguration", Bucket="dated-bucket", ExpectedBucketOwner=ACCOUNT)

    # The standard library's UTC, where botocore's own parser gives dateutil's tzutc().
    assert raw["Rules"][0]["Expiration"]["Date"].tzinfo is dt.UTC
    assert (await s3.get_lifecycle(ref)).rules == dated


async def test_every_request_carries_lakecircles_user_agent(s3: S3Adapter, s3_client: Any) -> None:
    create_bucket(s3_client, "agent-bucket")
    client = await s3.client(REGION)
    sent: list[str] = []

    def hook(request: Any, **_: Any) -> None:
        sent.append(request.headers["User-Agent"].decode())

    client.meta.events.register("before-send.s3", hook)

    await s3.get_lifecycle(BucketRef("agent-bucket", REGION))
    await s3.put_lifecycle(BucketRef("agent-bucket", REGION), ROUND_TRIP)

    expected = f"{USER_AGENT} botocore/{botocore.__version__}"  # boto3's session adds botocore's
    assert sent == [expected, expected]
    assert USER_AGENT.startswith("lakecircle/")


async def test_the_endpoints_objects_have_a_client_and_connection_pool_of_their_own(s3: S3Adapter) -> None:
    buckets, objects = await s3.client(), await s3.client(lane=OBJECTS)

    assert buckets is not objects
    assert buckets.meta.config.max_pool_connections == objects.meta.config.max_pool_connections == 10  # max(4, 10)
    assert await s3.client(lane=OBJECTS) is objects


async def test_every_connection_pool_of_the_process_verifies_with_one_tls_context() -> None:
    """A hub opens three clients per member account; the CA bundle is read once, not per pool."""
    pools = [OneAttemptSession(), OneAttemptSession(max_pool_connections=4), OneAttemptSession()]
    connectors = [pool._create_connector(None) for pool in pools]
    unverified = OneAttemptSession(verify=False)._create_connector(None)
    try:
        first = connectors[0]._ssl
        assert isinstance(first, ssl.SSLContext)
        assert all(c._ssl is first for c in connectors)
        assert first.verify_mode is ssl.CERT_REQUIRED
        assert first.cert_store_stats()["x509_ca"] > 0  # the CA bundle, loaded
        assert [c.limit for c in connectors] == [10, 4, 10]  # each pool its own size
        assert unverified._ssl is False
    finally:
        for connector in [*connectors, unverified]:
            await connector.close()


def record_headers(client: Any, operation: str) -> list[dict[str, str]]:
    """The headers of every ``operation`` request the client sends, as sent."""
    seen: list[dict[str, str]] = []

    def hook(request: Any, **_: Any) -> None:
        seen.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    client.meta.events.register(f"before-send.s3.{operation}", hook)
    return seen


async def test_a_small_record_is_sent_at_once_and_a_large_object_waits_for_100_continue(
    s3: S3Adapter, s3_client: Any
) -> None:
    create_bucket(s3_client, "records-bucket")
    sent = record_headers(await s3.client(lane=OBJECTS), "PutObject")

    await s3.write_object("records-bucket", "history/small.json", b"{}" * 1000, "application/json")
    await s3.write_object("records-bucket", "log/large.json", b" " * (SMALL_BODY + 1), "application/json")

    assert [headers.get("Expect") for headers in sent] == [None, "100-continue"]
    stored = s3_client.get_object(Bucket="records-bucket", Key="history/small.json")["Body"].read()
    assert stored == b"{}" * 1000
