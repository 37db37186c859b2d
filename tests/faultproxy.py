"""A fault-injecting HTTP proxy between LakeCircle and moto's server, for the campaigns.

LakeCircle talks to the proxy (``AWS_ENDPOINT_URL`` or the adapter's ``endpoint_url``);
the proxy forwards each request to the upstream server (moto behind the conftest tap)
unless a fault is drawn for it. The faults are what S3 and the network do to a client
under load:

- ``slowdown``: 503 with S3's ``SlowDown`` error document, the request never forwarded;
- ``server_error``: 500 ``InternalError``, never forwarded;
- ``reset``: the connection closed with a TCP RST and no answer; half of the resets
  happen before forwarding and half after the server handled the request (a write
  that was applied but whose answer was lost);
- ``stall``: no answer for ``stall_seconds``, then the connection dropped (beyond the
  client's read timeout, the client gives up first); never forwarded;
- ``delay``: a bounded stall of ``delay_seconds``, then the request is forwarded and
  answered normally;
- ``truncate``: the server's answer with its full ``Content-Length`` but half its body,
  then the connection closed;
- ``garbage``: the server's 200 answer with its body replaced by bytes that are no XML;
- ``replace``: the server's 200 answer with its body replaced by other bytes of the same
  length (headers, ETag included, as the server sent them): a cache or a middlebox that
  serves the wrong bytes;
- ``denied``: 403 with S3's ``AccessDenied`` error document, never forwarded;
- ``not_implemented``: 501 with S3's ``NotImplemented`` error document (an S3-compatible
  server without the operation or the feature), never forwarded;
- ``list_no_token``: a ListObjectsV2 page cut to ``list_page_keys`` keys that says
  ``IsTruncated`` but carries no ``NextContinuationToken``: a listing that cannot be
  followed to its end;
- ``list_loop``: a ListObjectsV2 listing stuck on its first token: the first page
  (``list_page_keys`` keys) hands out a continuation token, and every page asked for
  with a token holds no keys, says ``IsTruncated`` and hands the same token back: a
  listing that would never end;
- ``list_drop``: a ListObjectsV2 page without some of its keys (those ending with one of
  ``drop_suffixes``, or every other key), its ``KeyCount`` as the server said.

Beside the faults, ``force`` takes a :class:`Rewrite`: the server's 200 answer with its
body edited (a newer server's answer, made from moto's: an XML element moto never sends).

An STS request (a query-protocol POST: AssumeRole, GetCallerIdentity) gets STS's own error
document for ``slowdown`` (400 ``Throttling``), ``server_error`` (500 ``InternalFailure``) and
``denied`` (403 ``AccessDenied``), which botocore reads only in that shape; its RoleArn, if
it has one, stands where a bucket would, so a fault can be pinned on one role's AssumeRole
(``force("AssumeRole", role_arn, Fault.DENIED)``).

Rates are per request and per fault, drawn from a seeded PRNG; ``limits`` caps a fault's
total (a few stalls). Body faults (``truncate``, ``garbage``, ``replace``) only hit
successful answers of the operations in ``body_operations``; listing faults only hit
ListObjectsV2. ``force`` pins a fault (or a replacement body) on one bucket's operation
(``ANY``: every bucket's), or on one object key. Everything injected is counted per fault
and per operation, every request is logged in order (for "what came after what" checks),
and the ``x-amz-expected-bucket-owner`` header of every bucket-level request is recorded.
``wait_for`` blocks until a request of an operation has arrived (before any fault or
delay), so a test can act while that request is held.

The proxy runs its own asyncio loop in a thread, so it serves in-process tests, sync
tests and subprocesses alike; ``with FaultProxy(...) as proxy:`` starts it on 127.0.0.1
and a free port and, on exit, stops it and closes every socket it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
UPSTREAM_TIMEOUT = 30.0


class Fault(StrEnum):
    SLOWDOWN = "slowdown"
    SERVER_ERROR = "server_error"
    RESET = "reset"
    STALL = "stall"
    DELAY = "delay"
    TRUNCATE = "truncate"
    GARBAGE = "garbage"
    REPLACE = "replace"
    DENIED = "denied"
    NOT_IMPLEMENTED = "not_implemented"
    LIST_NO_TOKEN = "list_no_token"
    LIST_LOOP = "list_loop"
    LIST_DROP = "list_drop"


BODY_FAULTS = frozenset({Fault.TRUNCATE, Fault.GARBAGE, Fault.REPLACE})

LISTING_FAULTS = frozenset({Fault.LIST_NO_TOKEN, Fault.LIST_LOOP, Fault.LIST_DROP})
"""Faults of a ListObjectsV2 answer (they hit no other operation)."""

ANY = "*"
"""``force(operation, ANY, ...)``: every bucket's ``operation``."""

LOOP_TOKEN = "faultproxy-loop-token"
"""The continuation token of a looping listing whose first page the server did not truncate."""

LIFECYCLE_OPERATIONS = frozenset(
    {"GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle"}
)

S3_OPERATIONS = frozenset(
    {
        *LIFECYCLE_OPERATIONS,
        "ListBuckets",
        "HeadBucket",
        "GetBucketLocation",
        "GetBucketTagging",
        "ListObjectsV2",
        "GetObject",
        "PutObject",
        "HeadObject",
    }
)
"""The operations LakeCircle makes against S3 (STS's GetCallerIdentity is not among them)."""

_ERRORS = {
    Fault.SLOWDOWN: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    Fault.SERVER_ERROR: (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
    Fault.DENIED: (403, "Forbidden", "AccessDenied", "Access Denied"),
    Fault.NOT_IMPLEMENTED: (
        501,
        "Not Implemented",
        "NotImplemented",
        "A header you provided implies functionality that is not implemented",
    ),
}

_GARBAGE = (
    b"\x00\x9f\x92\x96 not xml at all \xff\xfe",
    b"<html><body><h1>502 Bad Gateway</h1></body></html",
    b"<?xml version='1.0'?><LifecycleConfiguration><Rule><ID>cut",
)


_STS_ERRORS = {
    Fault.SLOWDOWN: (400, "Bad Request", "Throttling", "Rate exceeded"),
    Fault.SERVER_ERROR: (500, "Internal Server Error", "InternalFailure", "An internal error occurred."),
    Fault.DENIED: (
        403,
        "Forbidden",
        "AccessDenied",
        "User is not authorized to perform: sts:{action} on resource: {role}",
    ),
}
"""STS's answers for the error faults, in the shape of its query protocol."""


def is_query(method: str, target: str, body: bytes) -> bool:
    """A query-protocol request (STS): a POST to ``/`` whose form names an Action."""
    return method == "POST" and unquote(urlsplit(target).path) == "/" and b"Action=" in body


def classify(method: str, target: str, body: bytes) -> tuple[str, str | None]:
    """(operation, bucket) of a path-style S3 request; (action, RoleArn or None) of an STS query request."""
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    path = unquote(parts.path)
    if is_query(method, target, body):
        form = dict(parse_qsl(body.decode("latin-1")))
        return form.get("Action", "Unknown"), form.get("RoleArn")
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return ("ListBuckets" if method == "GET" else f"{method}Root"), None
    if key:
        names = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
        return names.get(method, f"{method}Object"), bucket
    if "lifecycle" in query:
        names = {
            "GET": "GetBucketLifecycleConfiguration",
            "PUT": "PutBucketLifecycleConfiguration",
            "DELETE": "DeleteBucketLifecycle",
        }
        return names.get(method, f"{method}Lifecycle"), bucket
    if "location" in query:
        return "GetBucketLocation", bucket
    if "tagging" in query:
        names = {"GET": "GetBucketTagging", "PUT": "PutBucketTagging", "DELETE": "DeleteBucketTagging"}
        return names.get(method, f"{method}BucketTagging"), bucket
    if query.get("list-type") == "2":
        return "ListObjectsV2", bucket
    names = {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket", "GET": "ListObjects"}
    return names.get(method, f"{method}Bucket"), bucket


@dataclass(frozen=True, slots=True)
class Event:
    """One request the proxy saw, in arrival order."""

    seq: int
    operation: str
    bucket: str | None
    fault: Fault | None
    owner: str | None
    """The x-amz-expected-bucket-owner header, if any."""
    key: str = ""
    """The object key of an object request."""
    signer: str | None = None
    """The access key ID the request was signed with (its Authorization header's Credential)."""


@dataclass(frozen=True)
class Rewrite:
    """``force(operation, bucket, Rewrite(edit))``: the server's 200 answer to it, its body
    passed through ``edit`` (counted as no fault: the answer is one a server could give)."""

    edit: Callable[[bytes], bytes]


@dataclass
class _Forced:
    what: Fault | bytes | Rewrite
    times: int | None


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    expect: bool = False
    """The client sent ``Expect: 100-continue`` and waits for it before sending the body."""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class FaultProxy:
    """The proxy; see the module docstring. Use it as a context manager."""

    upstream: str
    rates: Mapping[Fault, float] = field(default_factory=dict)
    seed: int = 0
    limits: Mapping[Fault, int] = field(default_factory=dict)
    operations: frozenset[str] = S3_OPERATIONS
    """Operations random faults may hit."""
    body_operations: frozenset[str] = frozenset({"GetBucketLifecycleConfiguration"})
    """Operations whose successful answers may be truncated or replaced by garbage."""
    stall_seconds: float = 5.0
    delay_seconds: float = 1.0
    list_page_keys: int = 1
    """Keys on a page of a truncated or looping listing."""
    drop_suffixes: tuple[str, ...] = ()
    """Keys a ``list_drop`` page leaves out (none given: every other key)."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._forced: dict[tuple[str, str | None, str | None], _Forced] = {}
        self._arrived: Counter[str] = Counter()
        self._arrival = threading.Condition(self._lock)
        self._seq = 0
        self.enabled = True
        """False: forward everything untouched (the counts still run)."""
        self.injected: Counter[tuple[Fault, str]] = Counter()
        self.seen: Counter[str] = Counter()
        self.events: list[Event] = []
        self.errors: list[str] = []
        """The proxy's own failures (a bug in the test harness, not in LakeCircle)."""
        self.port = 0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- control (any thread) -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def force(
        self,
        operation: str,
        bucket: str | None,
        what: Fault | bytes | Rewrite,
        *,
        times: int | None = None,
        key: str | None = None,
    ) -> None:
        """Always inject ``what`` (a fault, or a 200 body) into ``bucket``'s ``operation``.

        ``bucket`` may be :data:`ANY` (every bucket); ``key`` narrows an object operation
        to one object key. The most specific forcing wins: the key's, then the bucket's,
        then ``ANY``'s. ``times`` limits how often (None: every time). Forced faults ignore
        ``enabled`` and the rates, and are counted like random ones (a replacement body
        as garbage).
        """
        with self._lock:
            self._forced[(operation, bucket, key)] = _Forced(what, times)

    def clear_forced(self) -> None:
        with self._lock:
            self._forced.clear()

    def drop_connections(self, timeout: float = 10.0) -> None:
        """End every connection in progress: requests still held by a delay or a stall are dropped.

        A test whose client is gone (a killed daemon) must not leave a held request to be
        forwarded into the next test's server state.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def cancel() -> None:
            for task in list(self._tasks):
                task.cancel()

        with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
            loop.call_soon_threadsafe(cancel)
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset(self) -> None:
        """Forward everything again and forget what was seen: a proxy shared by tests."""
        with self._lock:
            self._forced.clear()
            self.rates = {}
            self.limits = {}
            self.enabled = True
            self.injected.clear()
            self.seen.clear()
            self.events.clear()
            self._arrived.clear()

    def wait_for(self, operation: str, *, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests of ``operation`` have arrived; False on timeout.

        A request counts on arrival, before its fault or delay: a held request has arrived.
        """
        with self._arrival:
            return self._arrival.wait_for(lambda: self._arrived[operation] >= count, timeout)

    def arrived(self, operation: str) -> int:
        with self._lock:
            return self._arrived[operation]

    def total(self, fault: Fault) -> int:
        with self._lock:
            return sum(n for (f, _), n in self.injected.items() if f is fault)

    def by_operation(self, fault: Fault) -> dict[str, int]:
        with self._lock:
            return {op: n for (f, op), n in sorted(self.injected.items()) if f is fault and n}

    def snapshot(self) -> Counter[tuple[Fault, str]]:
        with self._lock:
            return Counter(self.injected)

    def requests(self) -> int:
        with self._lock:
            return sum(self.seen.values())

    def bucket_events(self, bucket: str, operations: Iterable[str] = LIFECYCLE_OPERATIONS) -> list[Event]:
        wanted = frozenset(operations)
        with self._lock:
            return [e for e in self.events if e.bucket == bucket and e.operation in wanted]

    def owner_problems(self, account: str, operations: Iterable[str] = LIFECYCLE_OPERATIONS) -> list[Event]:
        """Bucket-level requests of ``operations`` without ``x-amz-expected-bucket-owner: account``."""
        wanted = frozenset(operations)
        with self._lock:
            return [e for e in self.events if e.operation in wanted and e.bucket and e.owner != account]

    def summary(self) -> str:
        with self._lock:
            faults: Counter[Fault] = Counter()
            for (fault, _), n in self.injected.items():
                faults[fault] += n
            lines = [f"proxy: {sum(self.seen.values())} requests, injected " + _fmt(faults)]
            for fault in Fault:
                ops = {op: n for (f, op), n in sorted(self.injected.items()) if f is fault and n}
                if ops:
                    lines.append(f"  {fault.value}: {ops}")
            return "\n".join(lines)

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._serve_thread, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError(f"the fault proxy did not start: {self.errors}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                raise RuntimeError("the fault proxy did not stop within 30 s")

    def _serve_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # noqa: BLE001 -- reported to the test through errors
            self.errors.append(f"proxy loop: {exc!r}")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=MAX_HEAD)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    # -- one connection, one request ------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, TimeoutError):
            pass  # the client went away, or the proxy is stopping
        except Exception as exc:  # noqa: BLE001 -- reported to the test through errors
            self.errors.append(f"proxy handler: {exc!r}")
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request is None:
            return
        operation, bucket = classify(request.method, request.target, request.body)
        key = _object_key(request.target)
        with self._arrival:
            self._arrived[operation] += 1
            self._arrival.notify_all()
        fault = self._draw(operation, bucket, key)
        rewrite = fault if isinstance(fault, Rewrite) else None
        if rewrite is not None:
            fault = None
        forced_body = fault if isinstance(fault, bytes) else None
        if forced_body is not None:
            fault = Fault.GARBAGE
        assert not isinstance(fault, bytes | Rewrite)
        if request.expect:
            if fault is Fault.STALL:  # not even the 100 Continue (aiobotocore's PutObject waits for it)
                self._count(fault, operation, bucket, request)
                await asyncio.sleep(self.stall_seconds)
                _reset(writer)
                return
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            request.body = await _read_body(reader, request.headers, to_eof=False)
        if fault in _ERRORS:
            self._count(fault, operation, bucket, request)
            if is_query(request.method, request.target, request.body):
                writer.write(_sts_error_response(fault, operation, bucket))
            else:
                writer.write(_error_response(fault, request.method == "HEAD"))
            await writer.drain()
            return
        if fault is Fault.RESET and self._coin():
            self._count(fault, operation, bucket, request)
            _reset(writer)
            return
        if fault is Fault.STALL:
            self._count(fault, operation, bucket, request)
            await asyncio.sleep(self.stall_seconds)
            _reset(writer)
            return
        if fault is Fault.DELAY:
            await asyncio.sleep(self.delay_seconds)
        listing = fault in LISTING_FAULTS and operation == "ListObjectsV2"
        sent_token = dict(parse_qsl(urlsplit(request.target).query)).get("continuation-token")
        if listing and fault is not Fault.LIST_DROP:
            request.target = _paged(request.target, self.list_page_keys, first_page=sent_token == LOOP_TOKEN)
        response = await self._forward(request)
        if fault in BODY_FAULTS and (response.status != 200 or not response.body or request.method == "HEAD"):
            fault = None  # nothing to spoil: the answer passes as it is, and nothing is counted
        if fault in LISTING_FAULTS and (not listing or response.status != 200):
            fault = None
        self._count(fault, operation, bucket, request)
        if fault is Fault.RESET:  # after the server handled it: the answer is lost
            _reset(writer)
            return
        if rewrite is not None and response.status == 200 and request.method != "HEAD":
            response.body = rewrite.edit(response.body)
        if fault is Fault.GARBAGE:
            response.body = forced_body if forced_body is not None else self._garbage()
        if fault is Fault.REPLACE:
            response.body = replaced(response.body)
        if fault is Fault.LIST_NO_TOKEN:
            response.body = _truncated_without_token(response.body)
        if fault is Fault.LIST_LOOP:
            response.body = _looping(response.body, sent_token)
        if fault is Fault.LIST_DROP:
            response.body = _dropping(response.body, self.drop_suffixes)
        truncate = fault is Fault.TRUNCATE
        writer.write(_render(response, head=request.method == "HEAD", truncate=truncate))
        await writer.drain()
        if truncate:
            _reset(writer)

    def _draw(self, operation: str, bucket: str | None, key: str = "") -> Fault | bytes | Rewrite | None:
        with self._lock:
            for pinned in ((operation, bucket, key or None), (operation, bucket, None), (operation, ANY, None)):
                forced = self._forced.get(pinned)
                if forced is not None and (forced.times is None or forced.times > 0):
                    if forced.times is not None:
                        forced.times -= 1
                    return forced.what
            if not self.enabled or operation not in self.operations:
                return None
            roll = self._rng.random()
            for fault in Fault:
                rate = self.rates.get(fault, 0.0)
                if roll < rate:
                    if fault in BODY_FAULTS and operation not in self.body_operations:
                        return None
                    if fault in LISTING_FAULTS and operation != "ListObjectsV2":
                        return None
                    limit = self.limits.get(fault)
                    if limit is not None and sum(n for (f, _), n in self.injected.items() if f is fault) >= limit:
                        return None
                    return fault
                roll -= rate
            return None

    def _coin(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5

    def _garbage(self) -> bytes:
        with self._lock:
            return self._rng.choice(_GARBAGE)

    def _count(self, fault: Fault | None, operation: str, bucket: str | None, request: _Request) -> None:
        with self._lock:
            self._seq += 1
            self.seen[operation] += 1
            if fault is not None:
                self.injected[(fault, operation)] += 1
            owner = request.header("x-amz-expected-bucket-owner")
            signer = _signer(request.header("authorization"))
            self.events.append(Event(self._seq, operation, bucket, fault, owner, _object_key(request.target), signer))

    async def _forward(self, request: _Request) -> _Response:
        host, port = self._upstream
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        try:
            async with asyncio.timeout(UPSTREAM_TIMEOUT):
                head = f"{request.method} {request.target} HTTP/1.1\r\n"
                skip = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "expect"}
                for name, value in request.headers:
                    if name.lower() not in skip:
                        head += f"{name}: {value}\r\n"
                head += f"Content-Length: {len(request.body)}\r\nConnection: close\r\n\r\n"
                writer.write(head.encode("latin-1") + request.body)
                await writer.drain()
                return await _read_response(reader, head_only=request.method == "HEAD")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# -- HTTP/1.1, as little as the SDK and moto need ------------------------------------------


async def _read_headers(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None  # a connection opened and closed without a request
        raise
    first, *lines = raw[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return first, headers


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]], *, to_eof: bool) -> bytes:
    values = {k.lower(): v for k, v in headers}
    if "chunked" in values.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = values.get("content-length")
    if length is not None:
        size = int(length)
        if size > MAX_BODY:
            raise ValueError(f"body of {size} bytes is over the proxy's limit")
        return await reader.readexactly(size)
    return await reader.read(MAX_BODY) if to_eof else b""


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """The request; its body is left unread when the client waits for ``100 Continue`` first."""
    parsed = await _read_headers(reader)
    if parsed is None:
        return None
    first, headers = parsed
    method, target, version = first.split(" ", 2)
    expect = any(k.lower() == "expect" and v.lower() == "100-continue" for k, v in headers)
    body = b"" if expect else await _read_body(reader, headers, to_eof=False)
    return _Request(method, target, version, headers, body, expect)


async def _read_response(reader: asyncio.StreamReader, *, head_only: bool) -> _Response:
    parsed = await _read_headers(reader)
    if parsed is None:
        raise ConnectionResetError("the upstream server closed the connection without answering")
    first, headers = parsed
    _, status, *reason = first.split(" ", 2)
    code = int(status)
    body = b"" if head_only or code in (204, 304) else await _read_body(reader, headers, to_eof=True)
    return _Response(code, reason[0] if reason else "", headers, body)


def _render(response: _Response, *, head: bool, truncate: bool = False) -> bytes:
    skip = {"connection", "keep-alive", "transfer-encoding"} | (set() if head else {"content-length"})
    text = f"HTTP/1.1 {response.status} {response.reason}\r\n"
    for name, value in response.headers:
        if name.lower() not in skip:
            text += f"{name}: {value}\r\n"
    if not head:
        text += f"Content-Length: {len(response.body)}\r\n"
    text += "Connection: close\r\n\r\n"
    body = b"" if head else response.body
    if truncate:
        body = body[: len(body) // 2]
    return text.encode("latin-1") + body


def _error_response(fault: Fault, head: bool) -> bytes:
    status, reason, code, message = _ERRORS[fault]
    request_id = f"FAULT{random.getrandbits(40):010X}"
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>{request_id}</RequestId><HostId>faultproxy</HostId></Error>"
    ).encode()
    return _render(
        _Response(
            status,
            reason,
            [("Content-Type", "application/xml"), ("x-amz-request-id", request_id), ("Content-Length", str(len(body)))],
            body,
        ),
        head=head,
    )


def _sts_error_response(fault: Fault, action: str, role: str | None) -> bytes:
    status, reason, code, message = _STS_ERRORS[fault]
    request_id = f"fault-{random.getrandbits(40):010x}"
    text = message.format(action=action, role=role or "*")
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{text}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return _render(
        _Response(status, reason, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body), head=False
    )


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP RST: no answer, no orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def _signer(authorization: str | None) -> str | None:
    """The access key ID of a SigV4 Authorization header."""
    found = _CREDENTIAL.search(authorization or "")
    return found.group(1) if found else None


def _object_key(target: str) -> str:
    """The object key of a path-style request ("" for bucket and service requests)."""
    return unquote(urlsplit(target).path).lstrip("/").partition("/")[2]


# -- answers rewritten: bodies and listing pages ------------------------------------------


def replaced(body: bytes) -> bytes:
    """Other bytes of the same length: every byte changed, deterministically."""
    return bytes(b ^ 0x5A for b in body)


def _paged(target: str, page_keys: int, *, first_page: bool) -> str:
    """``target`` asking for at most ``page_keys`` keys (and for the first page, if told)."""
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "max-keys"]
    if first_page:
        query = [(k, v) for k, v in query if k not in ("continuation-token", "start-after")]
    query.append(("max-keys", str(page_keys)))
    return f"{parts.path}?{urlencode(query)}"


_TRUNCATED = re.compile(rb"<IsTruncated>\w+</IsTruncated>")
_NEXT_TOKEN = re.compile(rb"<NextContinuationToken>[^<]*</NextContinuationToken>")
_CONTENTS = re.compile(rb"<Contents>.*?</Contents>", re.DOTALL)
_KEY = re.compile(rb"<Key>([^<]*)</Key>")
_KEY_COUNT = re.compile(rb"<KeyCount>\d+</KeyCount>")


def _truncated_without_token(body: bytes) -> bytes:
    return _TRUNCATED.sub(b"<IsTruncated>true</IsTruncated>", _NEXT_TOKEN.sub(b"", body), count=1)


def _looping(body: bytes, sent_token: str | None) -> bytes:
    """The first page with a token (the server's, else a made-up one); later pages empty, the token repeated."""
    found = _NEXT_TOKEN.search(body)
    if sent_token is None and found is not None:
        return body
    token = sent_token or LOOP_TOKEN
    if sent_token is not None:
        body = _KEY_COUNT.sub(b"<KeyCount>0</KeyCount>", _CONTENTS.sub(b"", body))
    body = _truncated_without_token(body)
    tag = b"<NextContinuationToken>" + token.encode() + b"</NextContinuationToken>"
    return body.replace(b"<IsTruncated>true</IsTruncated>", b"<IsTruncated>true</IsTruncated>" + tag, 1)


def _dropping(body: bytes, suffixes: tuple[str, ...]) -> bytes:
    entries = _CONTENTS.findall(body)

    def dropped(index: int, entry: bytes) -> bool:
        found = _KEY.search(entry)
        key = unquote(found.group(1).decode()) if found else ""
        return key.endswith(suffixes) if suffixes else index % 2 == 1

    doomed = {entry for i, entry in enumerate(entries) if dropped(i, entry)}
    return _CONTENTS.sub(lambda m: b"" if m.group(0) in doomed else m.group(0), body)


def _fmt(counts: Mapping[Fault, int]) -> str:
    return ", ".join(f"{fault.value}={counts.get(fault, 0)}" for fault in Fault)
