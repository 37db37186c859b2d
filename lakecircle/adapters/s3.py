"""The S3 adapter: the one place that talks to AWS, and the only module that sees botocore.

It implements the Protocols of :mod:`lakecircle.ports` over aioboto3: the account's
buckets and their lifecycle configurations (:class:`S3Adapter`), the definition files
under the definition prefix (:class:`S3DefinitionSource`) and LakeCircle's own records
under the endpoint (:class:`S3EndpointStore`). Every botocore exception becomes one of
LakeCircle's errors (:func:`map_error`), raised ``from`` the original, so the rest of the
code decides what to do next by the error's class alone.

One aioboto3 session; per region, one client for the account's buckets and one for the
endpoint's objects (each with its own connection pool, see :meth:`S3Adapter.client`),
created on first use and closed when the adapter's ``async with`` block ends. Each
bucket's calls go to its own region's client, and every bucket-level call carries
``ExpectedBucketOwner`` (DESIGN.md, rule 8).

Every request goes through :meth:`S3Adapter.call`, which retries transient errors with
:func:`lakecircle.adapters.retry.call_with_retries` (the only retry layer: botocore makes one
attempt) and tells the :class:`~lakecircle.adapters.retry.RequestObserver` about each attempt.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import platform
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import aioboto3
import aiobotocore
import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore import xform_name
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError
from botocore.utils import determine_content_length, parse_timestamp
from pydantic import ValidationError

from lakecircle import __version__, errors
from lakecircle.adapters.retry import (
    Clock,
    RequestObserver,
    RetryPolicy,
    Sleep,
    ThrottleGate,
    call_with_retries,
    outcome_of,
)
from lakecircle.core.model import LifecycleConfig, Rule, config_from_response, config_to_request
from lakecircle.core.parse import MAX_FILE_BYTES
from lakecircle.ports import BucketRef, ObjectRef

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 1000
"""ListBuckets page size (MaxBuckets); S3 accepts 1 to 10,000."""

BUCKETS = "buckets"
"""The client lane of the account's buckets (see :meth:`S3Adapter.client`)."""
OBJECTS = "objects"
"""The client lane of the endpoint's objects: definitions and LakeCircle's records."""

ClientFactory = Callable[[str, str], AbstractAsyncContextManager[Any]]
"""Opens a client for (service, region). The default is the aioboto3 session's; tests
hand in stub clients to exercise logic that moto cannot show."""

_BOTO_ERRORS = (ClientError, BotoCoreError, ResponseParserError, aiohttp.ClientError)
"""What one attempt may raise from below: botocore's errors, and aiohttp's where aiobotocore
lets them through (a body cut short while it is streamed raises ClientPayloadError)."""

_THROTTLED_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
    }
)
_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
    }
)
_SERVER_ERROR_CODES = frozenset({"InternalError", "ServiceUnavailable"})


# -- error mapping ----------------------------------------------------------------------


def map_error(exc: Exception, *, operation: str, bucket: str | None = None) -> errors.LakeCircleError:
    """LakeCircle's error for a botocore exception raised by ``operation`` on ``bucket``.

    The caller raises the result ``from exc``. Missing credentials are a configuration
    problem (:class:`~lakecircle.errors.ConfigError`), not a bucket's failure.
    """
    if isinstance(exc, ClientError):
        return _map_client_error(exc, operation=operation, bucket=bucket)
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, connection resets.
        return errors.ConnectionFailed(str(exc), operation=operation, bucket=bucket)
    if isinstance(exc, aiohttp.ClientPayloadError):
        # A streamed body (GetObject) cut short: aiobotocore passes aiohttp's error on, whose
        # text holds the repr of the error inside it: say it in words instead.
        return errors.ConnectionFailed(
            "the connection broke while the answer's body was read (fewer bytes came than it announced)",
            operation=operation,
            bucket=bucket,
        )
    if isinstance(exc, aiohttp.ClientError):
        return errors.ConnectionFailed(
            f"the connection broke while the answer was read: {_without_reprs(str(exc))}",
            operation=operation,
            bucket=bucket,
        )
    if isinstance(exc, FlexibleChecksumError):
        # The body does not match the checksum S3 sent with it: a corrupted transfer, worth another try.
        return errors.ConnectionFailed(
            f"the answer's body does not match its checksum (corrupted in transfer): {_one_line(str(exc))}",
            operation=operation,
            bucket=bucket,
        )
    if isinstance(exc, ResponseParserError):
        return errors.MalformedResponse(
            f"the response could not be parsed: {_one_line(str(exc))}", operation=operation, bucket=bucket
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return errors.ConfigError(
            [
                f"AWS credentials: {exc}; provide them the AWS SDK's way"
                " (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or task role)"
            ]
        )
    if isinstance(exc, ParamValidationError):
        return errors.InvalidRequest(
            f"the request was refused before it was sent: {_one_line(str(exc))}", operation=operation, bucket=bucket
        )
    return errors.PermanentError(str(exc) or type(exc).__name__, operation=operation, bucket=bucket)


def _map_client_error(exc: ClientError, *, operation: str, bucket: str | None) -> errors.S3Error:
    response: Mapping[str, Any] = exc.response or {}
    error: Mapping[str, Any] = response.get("Error") or {}
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    headers: Mapping[str, Any] = meta.get("HTTPHeaders") or {}
    code = str(error.get("Code") or "") or None
    raw_status = meta.get("HTTPStatusCode")
    status = raw_status if isinstance(raw_status, int) else None
    request_id = meta.get("RequestId") or headers.get("x-amz-request-id") or headers.get("x-amzn-requestid") or None
    message = str(error.get("Message") or code or exc)
    if status is not None and status >= 500 and code == str(status):
        # No S3 error document could be read: botocore reports a 200 whose body is not XML
        # (garbled or cut short) as a retryable 500 too. Say so rather than "Internal Server Error".
        message = f"HTTP {status} without a readable S3 error document ({message}); the answer was garbled or cut short"
    cls = _error_class(code, status, operation)
    return cls(message, operation=operation, bucket=bucket, code=code, request_id=request_id, status=status)


def _error_class(code: str | None, status: int | None, operation: str) -> type[errors.S3Error]:
    if code in _THROTTLED_CODES or status in (429, 503):
        return errors.Throttled
    if code == "InvalidObjectState":  # a 403, but no permission would help
        return errors.ArchivedObject
    if code in _ACCESS_DENIED_CODES or status == 403:
        return errors.AccessDenied
    if code == "NoSuchBucket" or (status == 404 and operation == "HeadBucket"):
        # HEAD responses have no body, so HeadBucket's "no such bucket" is a bare 404.
        return errors.NoSuchBucket
    if code in _SERVER_ERROR_CODES or (status is not None and status >= 500):
        return errors.ServerError
    return errors.InvalidRequest


def _one_line(text: str) -> str:
    return " ".join(text.split())


_REPR = re.compile(r"<[^<>]*>")


def _without_reprs(text: str) -> str:
    """A library's message on one line, without the ``<Class ...>`` reprs some put in it."""
    return _one_line(_REPR.sub("", text)).rstrip(": ") or "no reason given"


def _describe_validation(exc: ValidationError | TypeError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
    return _one_line(str(exc))


def _describe_rule_problem(response: Mapping[str, Any], exc: ValidationError | TypeError | ValueError) -> str:
    """What in a GetBucketLifecycleConfiguration answer the model refused, naming the rule."""
    rules = response.get("Rules")
    for index, raw in enumerate(rules if isinstance(rules, list) else ()):
        try:
            Rule.model_validate(raw)
        except (ValidationError, TypeError, ValueError) as rule_exc:
            rule_id = raw.get("ID") if isinstance(raw, Mapping) else None
            name = f"rule {rule_id!r}" if isinstance(rule_id, str) and rule_id else f"rule #{index + 1}"
            return f"{name}: {_describe_validation(rule_exc)}"
    return _describe_validation(exc)


def _request_id(response: Mapping[str, Any]) -> str | None:
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    return meta.get("RequestId") or None


def _region_header(response: Mapping[str, Any]) -> str | None:
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    headers: Mapping[str, Any] = meta.get("HTTPHeaders") or {}
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


def region_from_location(constraint: str | None) -> str:
    """GetBucketLocation's LocationConstraint as a region name (None or "" is us-east-1)."""
    if not constraint:
        return "us-east-1"
    if constraint == "EU":
        return "eu-west-1"
    return constraint


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix/``; the prefix is "" or ends with "/"."""
    if not uri.startswith("s3://"):
        raise errors.ConfigError([f"{uri!r} is not an S3 URI; expected one such as s3://bucket/prefix/"])
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise errors.ConfigError([f"{uri!r} names no bucket; expected an S3 URI such as s3://bucket/prefix/"])
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def _use_content_md5(params: dict[str, Any], **_: Any) -> None:
    """Send ``Content-MD5`` instead of a CRC32 checksum, for servers that require it.

    botocore >= 1.36 computes a CRC32 for every operation whose model requires a checksum
    (PutBucketLifecycleConfiguration does), even with ``request_checksum_calculation =
    "when_required"``, and no longer sends Content-MD5, which some S3-compatible servers
    insist on ("Missing required header for this request: Content-MD5"). Registered on
    ``before-call``: the checksum is decided before this event and applied after it.
    """
    body = params.get("body") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    checksum = params.get("context", {}).get("checksum", {})
    checksum.pop("request_algorithm", None)
    checksum.pop("request_algorithm_header", None)
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    params["headers"]["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def parse_s3_timestamp(value: Any) -> Any:
    """botocore's timestamp parser, with S3's own form read by the standard library.

    S3's XML carries ISO 8601 UTC timestamps (``2026-11-29T12:00:00.000Z``): every
    listed object's LastModified, every bucket's CreationDate, every dated lifecycle rule;
    its headers carry HTTP dates (an object's Last-Modified). botocore reads each through
    dateutil's general parser, 60-70 µs apiece, which made a tenth of the CPU of a bucket
    read and most of a definition listing's. ``datetime.fromisoformat`` and
    ``email.utils.parsedate_to_datetime`` read those two forms in 0.3 and 5 µs to the
    same aware datetimes; any other form (epoch seconds, an invalid value) still goes
    through botocore's parser, with its errors.
    """
    if isinstance(value, str):
        if len(value) >= 19 and value[4] == "-" and value[10] == "T":
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                pass
        elif _HTTP_DATE.match(value):
            try:
                return email.utils.parsedate_to_datetime(value)
            except ValueError:
                pass
    return parse_timestamp(value)


_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\Z")
"""An HTTP date in UTC (``Sun, 29 Nov 2026 12:00:00 GMT``), as S3 sends Last-Modified."""


def botocore_session() -> AioSession:
    """A botocore session whose clients read timestamps with :func:`parse_s3_timestamp`.

    The parser is a default of the session's response-parser factory (botocore's own
    switch for it, the one the AWS CLI uses), so every client made from the session has it.
    """
    session = AioSession()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_s3_timestamp)
    return session


USER_AGENT = (
    f"lakecircle/{__version__} aiobotocore/{aiobotocore.__version__}"
    f" Python/{platform.python_version()} {platform.system()}/{platform.release()}"
)
"""The User-Agent of every request: LakeCircle, its SDK and the platform, fixed at start
(boto3's session adds ``botocore/<version>``).

Given as the client's ``user_agent``, so botocore sends it as it is. Its default header
is assembled again for every request, twice (once when the request is serialised, once
more after the request is created, to add the features the call used), which cost 6-8%
of the CPU of a bucket read.
"""


SMALL_BODY = 1 << 20
"""Bodies up to this size (1 MiB) are sent without ``Expect: 100-continue``."""


def _send_small_bodies_at_once(params: dict[str, Any], **_: Any) -> None:
    """Drop ``Expect: 100-continue`` from a request whose body is small (a PutObject).

    botocore turns every PutObject body into a file object and asks for ``100 Continue``
    before sending it, so a client can stop before uploading gigabytes to a server that
    will refuse them. LakeCircle's objects are records of a few KB: waiting for the go-ahead
    cost each one a round trip more (three per written bucket: previous/ and history/
    before the write, current/ after it). Registered last on ``before-call.s3``, after
    botocore's own handler has added the header; larger bodies keep it.
    """
    headers = params.get("headers") or {}
    if "Expect" in headers and determine_content_length(params.get("body")) <= SMALL_BODY:
        del headers["Expect"]


class _OneAttemptSession(AIOHTTPSession):  # type: ignore[misc]  # aiobotocore is untyped
    """aiobotocore's HTTP session, without aiohttp's own silent retry.

    aiohttp (3.10 and later) sends an idempotent request (GET, HEAD, PUT, DELETE) a second
    time, at once, when the connection drops before an answer comes. That is a retry layer
    under tenacity's: no backoff, no throttle gate, and invisible to the metrics (a
    connection reset was counted nowhere). LakeCircle makes one HTTP request per attempt,
    so each session is told not to. (``_retry_connection`` is aiohttp's own switch, the one
    its test client turns off; without it this class changes nothing.)
    """

    async def _get_session(self, proxy_url: Any) -> Any:
        session = await super()._get_session(proxy_url)
        if getattr(session, "_retry_connection", False):
            session._retry_connection = False
        return session


_EXPECTED_ROOTS = {
    "GetBucketLifecycleConfiguration": "LifecycleConfiguration",
    "ListBuckets": "ListAllMyBucketsResult",
    "ListObjectsV2": "ListBucketResult",
}
"""The root element of a successful answer to the operations LakeCircle decides on."""


def _check_root(response_dict: dict[str, Any], operation_model: Any = None, **_: Any) -> None:
    """Refuse a 200 answer that is not the document the operation returns.

    botocore reads whatever XML comes back into the operation's shape and leaves out what
    it does not recognise: an empty body, an HTML page from a proxy or another operation's
    document all read as "no rules". A bucket read that way would be planned and written
    as if it held nothing, its write-ahead record saying so, and a shared bucket's foreign
    rules dropped. Registered on ``before-parse`` for the operations of ``_EXPECTED_ROOTS``;
    a body that is not XML at all botocore has already turned into a retryable 500.
    """
    expected = _EXPECTED_ROOTS.get(getattr(operation_model, "name", ""))
    if expected is None or response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes | bytearray):
        return
    root = _root_tag(bytes(body))
    if root != expected:
        found = f"a <{root}> document" if root else "no XML document"
        raise ResponseParserError(f"expected a <{expected}> document in the answer, got {found} ({len(body)} bytes)")


def _root_tag(body: bytes) -> str | None:
    """The local name of the first element of ``body``, or None when it has none."""
    match = re.search(
        rb"<\s*([A-Za-z_][\w.:-]*)", re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", body, flags=re.S)
    )
    if match is None:
        return None
    return match.group(1).decode("ascii", "replace").rpartition(":")[2]


async def _as_is(response: dict[str, Any]) -> dict[str, Any]:
    return response


async def _read_at_most(body: Any, limit: int | None) -> bytes:
    """Read a streaming body to its end, or to ``limit`` bytes, whichever comes first."""
    if limit is None:
        data: bytes = await body.read()
        return data
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk: bytes = await body.read(limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")


def _check_md5(response: Mapping[str, Any], data: bytes, *, bucket: str, key: str) -> None:
    """Refuse a body whose MD5 is not its ETag, where the ETag is the body's MD5.

    S3's ETag is the MD5 of the object for a single-part upload stored unencrypted or with
    SSE-S3; not for a multipart upload (``<hex>-<parts>``) nor under SSE-KMS or SSE-C.
    botocore checks no ETag; it checks a body against an ``x-amz-checksum-*`` header, but
    only for objects uploaded with such a checksum and only while response checksum
    validation is on (``LCC_CONTENT_MD5`` turns it to "when required"). This check covers
    every other definition file: a body replaced or garbled on the way (a proxy, a cache)
    fails the attempt, which is retried, and is never parsed as the file.
    """
    etag = str(response.get("ETag") or "").strip('"').lower()
    encryption = str(response.get("ServerSideEncryption") or "AES256")
    if not _PLAIN_MD5.fullmatch(etag) or encryption != "AES256" or response.get("SSECustomerAlgorithm"):
        return
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if digest != etag:
        raise errors.ConnectionFailed(
            f"the body of {key} ({len(data):,} bytes) does not match its ETag {etag} (its MD5 is {digest});"
            " it was garbled or replaced on the way",
            operation="GetObject",
            bucket=bucket,
            request_id=_request_id(response),
        )


# -- the adapter ------------------------------------------------------------------------


class S3Adapter:
    """The account's buckets and their lifecycle configurations, over aioboto3.

    Use it as ``async with S3Adapter(...) as s3:``; clients are created per region on
    first use and closed on exit. ``calls`` counts the requests made (every attempt),
    by operation name.

    Retries: every request is retried on throttling, 5xx and connection errors as
    ``retry`` says (default :class:`~lakecircle.adapters.retry.RetryPolicy`), behind one
    :class:`~lakecircle.adapters.retry.ThrottleGate` (``gate``) shared by all of the adapter's
    requests, which also applies ``max_requests_per_second`` (0: no limit). ``observer``
    hears of each attempt (``on_request``) and each retry (``on_retry``). ``clock`` and
    ``sleep`` (``time.monotonic``, ``anyio.sleep``) are injected for tests.

    Timeouts: ``connect_timeout`` and ``read_timeout`` are botocore's; ``attempt_timeout``
    (default: their sum) bounds a whole attempt, because a request can stall where the
    read timeout does not apply: aiohttp waits for a PutObject's ``100 Continue`` without
    one. An attempt cut off by it is a :class:`~lakecircle.errors.ConnectionFailed`.

    Deadline: ``with s3.cycle_deadline():`` at the start of a cycle sets ``deadline_at``
    to now plus ``retry.deadline`` (or the seconds given); no retry inside the block
    sleeps past it. Outside such a block each call's own start counts.
    """

    def __init__(
        self,
        *,
        account: str,
        region: str,
        concurrency: int = 16,
        content_md5: bool = False,
        endpoint_url: str | None = None,
        verify_account: bool = True,
        session: aioboto3.Session | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        attempt_timeout: float | None = None,
        client_factory: ClientFactory | None = None,
        retry: RetryPolicy | None = None,
        observer: RequestObserver | None = None,
        max_requests_per_second: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not 1 <= page_size <= 10_000:
            raise ValueError(f"page_size must be between 1 and 10,000, not {page_size}")
        self.account = account
        self.region = region
        self.concurrency = concurrency
        self.content_md5 = content_md5
        self.endpoint_url = endpoint_url
        self.verify_account = verify_account
        self.page_size = page_size
        self.calls: Counter[str] = Counter()
        self.retry = retry if retry is not None else RetryPolicy()
        self.observer = observer
        self.deadline_at: float | None = None
        self.attempt_timeout = connect_timeout + read_timeout if attempt_timeout is None else attempt_timeout
        """The most one attempt may take, answer read included (see :meth:`_attempt`)."""
        self._clock = clock
        self._sleep = sleep
        self.gate = ThrottleGate(
            base_delay=self.retry.base_delay,
            max_delay=self.retry.max_delay,
            max_requests_per_second=max_requests_per_second,
            clock=clock,
            sleep=sleep,
        )
        self._session = session if session is not None else aioboto3.Session(botocore_session=botocore_session())
        self._config = self._client_config(connect_timeout, read_timeout)
        self._factory: ClientFactory = client_factory or self._session_client
        self._stack: AsyncExitStack | None = None
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = asyncio.Lock()
        self._regions: dict[str, str] = {}
        self._region_locks: dict[str, asyncio.Lock] = {}

    def _client_config(self, connect_timeout: float, read_timeout: float) -> AioConfig:
        options: dict[str, Any] = {
            "max_pool_connections": max(self.concurrency, 10),
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            # One attempt per call: tenacity in lakecircle/adapters/retry.py, around each request in
            # call(), is the only retry layer, with jittered backoff shared by the process,
            # and it sees and counts every attempt. botocore retrying underneath would
            # multiply the attempts and hide them from the metrics. (botocore's own
            # "max_attempts" counts retries, not attempts: 1 there means 2 requests.)
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            "user_agent": USER_AGENT,
        }
        if self.content_md5:
            # Unset otherwise, so that AWS_REQUEST_CHECKSUM_CALCULATION still applies.
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        return AioConfig(http_session_cls=_OneAttemptSession, **options)

    def _session_client(self, service: str, region: str) -> AbstractAsyncContextManager[Any]:
        client: AbstractAsyncContextManager[Any] = self._session.client(
            service, region_name=region, config=self._config, endpoint_url=self.endpoint_url
        )
        return client

    async def __aenter__(self) -> Self:
        self._stack = AsyncExitStack()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        self._clients.clear()
        if stack is not None:
            await stack.aclose()

    # -- clients and requests -------------------------------------------------------------

    async def client(self, region: str | None = None, *, service: str = "s3", lane: str = BUCKETS) -> Any:
        """The client of ``service`` in ``region`` (default: the adapter's region) for ``lane``.

        Two lanes, each a client with its own pool of ``concurrency`` connections:
        :data:`BUCKETS` for the account's buckets and :data:`OBJECTS` for the endpoint's
        objects (definitions, write-ahead and current/ records), so that LakeCircle's own
        records never wait for a connection behind bucket work, nor take one from it.
        """
        region = region or self.region
        key = (service, region, lane)
        client = self._clients.get(key)
        if client is not None:
            return client
        async with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                if self._stack is None:
                    raise RuntimeError("S3Adapter is used outside its `async with` block")
                opened: Any = await self._stack.enter_async_context(self._factory(service, region))
                if service == "s3" and self.content_md5:
                    opened.meta.events.register("before-call.s3.PutBucketLifecycleConfiguration", _use_content_md5)
                events = getattr(getattr(opened, "meta", None), "events", None)
                if service == "s3" and events is not None:  # a botocore client (tests may hand in stubs)
                    for name in _EXPECTED_ROOTS:
                        events.register(f"before-parse.s3.{name}", _check_root)
                    # Last on the event botocore's own handler that adds the header is on.
                    events.register_last("before-call.s3", _send_small_bodies_at_once)
                self._clients[key] = client = opened
        return client

    @contextmanager
    def cycle_deadline(self, seconds: float | None = None) -> Iterator[float | None]:
        """Within the block, no retry sleeps past ``seconds`` from now (default: ``retry.deadline``).

        The daemon enters it at the start of each cycle; yields the absolute deadline on
        the adapter's clock (None: no deadline) and restores the previous one on exit.
        """
        seconds = self.retry.deadline if seconds is None else seconds
        previous = self.deadline_at
        self.deadline_at = None if seconds is None else self._clock() + seconds
        try:
            yield self.deadline_at
        finally:
            self.deadline_at = previous

    async def _send(self, client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request, counted; botocore's exceptions pass through."""
        self.calls[operation] += 1
        response: dict[str, Any] = await getattr(client, xform_name(operation))(**params)
        return response

    async def _attempt(
        self,
        operation: str,
        params: dict[str, Any],
        consume: Callable[[dict[str, Any]], Awaitable[T]],
        *,
        region: str | None,
        service: str,
        lane: str,
    ) -> T:
        """One attempt: the request and ``consume`` of its response, timed, observed, errors mapped."""
        bucket = params.get("Bucket")
        try:
            client = await self.client(region, service=service, lane=lane)
        except _BOTO_ERRORS as exc:
            raise map_error(exc, operation=operation, bucket=bucket) from exc
        started = self._clock()
        outcome: str | None = None  # stays None when the request is cancelled: not observed
        try:
            with anyio.fail_after(self.attempt_timeout):
                result = await consume(await self._send(client, operation, params))
        except _BOTO_ERRORS as exc:
            mapped = map_error(exc, operation=operation, bucket=bucket)
            outcome = outcome_of(mapped)
            raise mapped from exc
        except ValueError as exc:
            # botocore's parsers raise a bare ValueError for a value of the wrong type
            # (<Days>abc</Days>, a timestamp that is no date): the answer cannot be read.
            mapped = errors.MalformedResponse(
                f"the response could not be parsed: {_one_line(str(exc))}", operation=operation, bucket=bucket
            )
            outcome = outcome_of(mapped)
            raise mapped from exc
        except TimeoutError as exc:
            mapped = errors.ConnectionFailed(
                f"no complete answer within {self.attempt_timeout:g} s; the request stalled",
                operation=operation,
                bucket=bucket,
            )
            outcome = outcome_of(mapped)
            raise mapped from exc
        except Exception as exc:
            outcome = outcome_of(exc)
            raise
        else:
            outcome = "success"
            return result
        finally:
            if outcome is not None and self.observer is not None:
                self.observer.on_request(operation, outcome, self._clock() - started)

    async def _retried(
        self,
        operation: str,
        params: dict[str, Any],
        consume: Callable[[dict[str, Any]], Awaitable[T]],
        *,
        region: str | None = None,
        service: str = "s3",
        lane: str = BUCKETS,
    ) -> T:
        return await call_with_retries(
            lambda: self._attempt(operation, params, consume, region=region, service=service, lane=lane),
            operation=operation,
            policy=self.retry,
            gate=self.gate,
            sleep=self._sleep,
            clock=self._clock,
            deadline_at=self.deadline_at,
            on_retry=self.observer.on_retry if self.observer is not None else None,
        )

    async def call(
        self, operation: str, *, region: str | None = None, service: str = "s3", lane: str = BUCKETS, **params: Any
    ) -> dict[str, Any]:
        """Make an ``operation`` request (``"GetBucketLifecycleConfiguration"``) in ``region``.

        Every S3 and STS request goes through here: transient errors are retried (see
        :mod:`lakecircle.adapters.retry`), each attempt is counted in ``calls`` and observed.
        Raises LakeCircle's own errors, never botocore's.
        """
        return await self._retried(operation, params, _as_is, region=region, service=service, lane=lane)

    # -- account ----------------------------------------------------------------------------

    async def check_account(self) -> str | None:
        """The caller's ARN, after checking that the credentials belong to ``account``.

        Returns None without asking STS when ``verify_account`` is off (S3-compatible
        servers often have no STS); the caller then says the account was not verified.
        """
        if not self.verify_account:
            return None
        response = await self.call("GetCallerIdentity", service="sts")
        actual = str(response.get("Account") or "")
        arn = response.get("Arn")
        if actual != self.account:
            raise errors.AccountMismatch(self.account, actual or "(none)", arn)
        return str(arn) if arn else None

    # -- LifecycleStore ---------------------------------------------------------------------

    async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        """The account's buckets, one ListBuckets page at a time.

        Stops when no ContinuationToken comes back (some S3-compatible servers never send
        one). A bucket listed without BucketRegion gets its region later, on first use.
        """
        token: str | None = None
        while True:
            params: dict[str, Any] = {"MaxBuckets": self.page_size}
            if token:
                params["ContinuationToken"] = token
            response = await self.call("ListBuckets", **params)
            yield [self._bucket_ref(entry, response) for entry in response.get("Buckets") or ()]
            next_token = response.get("ContinuationToken")
            if not next_token:
                return
            if next_token == token:
                raise errors.MalformedResponse(
                    "the same ContinuationToken came back twice; the bucket list would never end",
                    operation="ListBuckets",
                    request_id=_request_id(response),
                )
            token = next_token

    def _bucket_ref(self, entry: Mapping[str, Any], response: Mapping[str, Any]) -> BucketRef:
        name = entry.get("Name")
        if not isinstance(name, str) or not name:
            raise errors.MalformedResponse(
                f"a bucket entry has no name: {entry!r}", operation="ListBuckets", request_id=_request_id(response)
            )
        region = entry.get("BucketRegion") or self._regions.get(name)
        return BucketRef(name, region)

    async def region_of(self, bucket: BucketRef) -> str:
        """The bucket's region: as listed, or found once (HeadBucket, GetBucketLocation) and cached."""
        if bucket.region:
            return bucket.region
        name = bucket.name
        cached = self._regions.get(name)
        if cached:
            return cached
        lock = self._region_locks.setdefault(name, asyncio.Lock())
        try:
            async with lock:
                cached = self._regions.get(name)
                if cached:
                    return cached
                region = await self._resolve_region(name)
                self._regions[name] = region
                return region
        finally:
            self._region_locks.pop(name, None)

    async def _resolve_region(self, name: str) -> str:
        params = {"Bucket": name, "ExpectedBucketOwner": self.account}
        try:
            response = await self.call("HeadBucket", **params)
        except errors.S3Error as exc:
            # S3 names the region even when it refuses the HEAD (403) or redirects (301).
            cause = exc.__cause__
            region = _region_header(cause.response or {}) if isinstance(cause, ClientError) else None
            if region:
                return region
            if not isinstance(exc, errors.AccessDenied | errors.InvalidRequest):
                raise
        else:
            region = response.get("BucketRegion") or _region_header(response)
            if region:
                return str(region)
        location = await self.call("GetBucketLocation", **params)
        return region_from_location(location.get("LocationConstraint"))

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        """The live configuration; NoSuchLifecycleConfiguration reads as no rules."""
        region = await self.region_of(bucket)
        operation = "GetBucketLifecycleConfiguration"
        try:
            response = await self.call(operation, region=region, Bucket=bucket.name, ExpectedBucketOwner=self.account)
        except errors.S3Error as exc:
            if exc.code == "NoSuchLifecycleConfiguration":
                return LifecycleConfig()
            raise
        try:
            return config_from_response(response)
        except (ValidationError, TypeError, ValueError) as exc:
            raise errors.MalformedResponse(
                f"the lifecycle configuration could not be read: {_describe_rule_problem(response, exc)}",
                operation=operation,
                bucket=bucket.name,
                request_id=_request_id(response),
            ) from exc

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        """Replace the whole configuration (TransitionDefaultMinimumObjectSize included)."""
        region = await self.region_of(bucket)
        await self.call(
            "PutBucketLifecycleConfiguration",
            region=region,
            Bucket=bucket.name,
            ExpectedBucketOwner=self.account,
            **config_to_request(config),
        )

    async def delete_lifecycle(self, bucket: BucketRef) -> None:
        region = await self.region_of(bucket)
        await self.call("DeleteBucketLifecycle", region=region, Bucket=bucket.name, ExpectedBucketOwner=self.account)

    # -- objects (the endpoint bucket, in the adapter's region) -------------------------

    def _owner(self) -> dict[str, str]:
        """``ExpectedBucketOwner`` for an object call, unless the adapter has no account
        (``lakecircle validate s3://...`` reads a prefix without LCC_AWS_ACCOUNT)."""
        return {"ExpectedBucketOwner": self.account} if self.account else {}

    async def iter_objects(self, bucket: str, prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
        """ListObjectsV2 over ``prefix``, one page at a time, to the listing's end.

        A page that says more follows (IsTruncated) but gives no NextContinuationToken, or
        gives a token already used, ends the listing early or never; a page that carries
        fewer or more keys than its KeyCount says lost some on the way. Each is a
        :class:`~lakecircle.errors.MalformedResponse`, never a shorter listing.
        """
        token: str | None = None
        used: set[str] = set()
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, **self._owner()}
            if token:
                params["ContinuationToken"] = token
            response = await self.call("ListObjectsV2", lane=OBJECTS, **params)
            contents = list(response.get("Contents") or ())
            said = response.get("KeyCount")
            carried = len(contents) + len(response.get("CommonPrefixes") or ())
            if said is not None and said != carried:
                raise errors.MalformedResponse(
                    f"a page says it holds {said} key(s) (KeyCount) but carries {carried},"
                    f" so the listing of {prefix or '/'} is not whole",
                    operation="ListObjectsV2",
                    bucket=bucket,
                    request_id=_request_id(response),
                )
            yield contents
            if not response.get("IsTruncated"):
                return
            next_token = response.get("NextContinuationToken")
            if not next_token:
                problem = "a page says more objects follow (IsTruncated) but gives no NextContinuationToken"
            elif next_token in used:
                problem = "a NextContinuationToken already used came back; the listing would never end"
            else:
                used.add(next_token)
                token = next_token
                continue
            raise errors.MalformedResponse(
                f"{problem}, so the listing of {prefix or '/'} cannot be followed to its end",
                operation="ListObjectsV2",
                bucket=bucket,
                request_id=_request_id(response),
            )

    async def read_object(self, bucket: str, key: str, *, limit: int | None = None) -> bytes:
        """The object's bytes, at most ``limit`` of them (the rest is never downloaded).

        A body that does not match its ETag is a failed attempt, retried (see :func:`_check_md5`);
        one shorter than its Content-Length botocore's body refuses, also retried.
        """

        async def read_body(response: dict[str, Any]) -> bytes:
            # Inside the attempt: a connection dropped mid-body is retried like any other.
            body = response["Body"]
            async with body:
                data = await _read_at_most(body, limit)
            if limit is None or len(data) < limit:  # the whole body
                _check_md5(response, data, bucket=bucket, key=key)
            return data

        params = {"Bucket": bucket, "Key": key, **self._owner()}
        return await self._retried("GetObject", params, read_body, lane=OBJECTS)

    async def write_object(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        await self.call(
            "PutObject",
            lane=OBJECTS,
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ExpectedBucketOwner=self.account,
        )


class S3DefinitionSource:
    """The ``*.toml`` definition files under an S3 prefix, by key and ETag.

    A file is named by its key, or with ``full_names`` by its URI (``s3://bucket/key``, as
    ``lakecircle validate`` prints it beside local paths). A listing that cannot be
    followed to its end raises, like one that cannot be made: a cycle without the whole
    listing writes nothing.
    """

    def __init__(self, adapter: S3Adapter, uri: str, *, full_names: bool = False) -> None:
        self._adapter = adapter
        self.bucket, self.prefix = parse_s3_uri(uri)
        self._names = f"s3://{self.bucket}/" if full_names else ""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    async def list_definitions(self) -> list[ObjectRef]:
        refs: list[ObjectRef] = []
        try:
            async for page in self._adapter.iter_objects(self.bucket, self.prefix):
                refs.extend(
                    ObjectRef(self._names + str(o["Key"]), str(o.get("ETag") or "").strip('"'), int(o.get("Size") or 0))
                    for o in page
                    if str(o.get("Key", "")).endswith(".toml")
                )
        except errors.S3Error as exc:
            raise errors.DefinitionSourceError(f"cannot list the definitions at {self.location}: {exc}") from exc
        return refs

    async def fetch(self, ref: ObjectRef) -> bytes:
        """The file's bytes; never more than one byte over the limit, so the parser refuses it."""
        key = ref.key.removeprefix(self._names)
        return await self._adapter.read_object(self.bucket, key, limit=MAX_FILE_BYTES + 1)


class S3EndpointStore:
    """LakeCircle's own objects under ``LCC_ENDPOINT``; keys are relative to it."""

    def __init__(self, adapter: S3Adapter, uri: str) -> None:
        self._adapter = adapter
        self.bucket, self.prefix = parse_s3_uri(uri)

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        await self._adapter.write_object(self.bucket, self.prefix + key, data, content_type)

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            return await self._adapter.read_object(self.bucket, self.prefix + key)
        except errors.S3Error as exc:
            if exc.code in ("NoSuchKey", "404"):
                return None
            raise

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        async for page in self._adapter.iter_objects(self.bucket, self.prefix + prefix):
            keys.extend(str(o["Key"]).removeprefix(self.prefix) for o in page)
        return sorted(keys)
