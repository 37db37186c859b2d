"""A test endpoint for directory buckets (S3 Express One Zone): a real HTTP server on 127.0.0.1.

moto serves neither ListDirectoryBuckets (it answers the request as if it were ListBuckets)
nor the S3 Express session botocore asks for before a directory bucket's lifecycle call at
a custom endpoint, so the tests of directory buckets talk to this instead. It serves, from
memory and in S3's XML:

- ListDirectoryBuckets (``GET /?max-directory-buckets=N``, ``continuation-token``), in pages;
- ListBuckets (``GET /``): the general purpose buckets it was given (none by default);
- CreateSession (``GET /<bucket>?session``): credentials botocore signs the next calls with;
- Get/Put/DeleteBucketLifecycle (``/<bucket>?lifecycle``), the PUT's XML kept as it came.

As S3 does for a directory bucket, a lifecycle PUT holding a transition, a noncurrent action,
a tag filter, a Date or ExpiredObjectDeleteMarker is refused (400 InvalidRequest), and so,
to make the tests' point, is any lifecycle call carrying ``x-amz-expected-bucket-owner``.
Every request is recorded (method, path, query, headers) for the tests to read. It is not S3:
no signature check, path-style addressing only.

Use it as ``with FakeDirectoryServer(["logs--use1-az4--x-s3"]) as server:``; ``server.url``
is the endpoint to give the S3 adapter.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
REFUSED_IN_DIRECTORY = re.compile(
    rb"<(Transition|NoncurrentVersionExpiration|NoncurrentVersionTransition|Tag|Date|ExpiredObjectDeleteMarker)>"
)
"""What a directory bucket's lifecycle configuration may not hold."""


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case."""

    @property
    def bucket(self) -> str:
        return self.path.strip("/").split("/", 1)[0]


@dataclass
class DirectoryState:
    """What the server holds, and what it was asked."""

    directory_buckets: list[str]
    general_buckets: list[str] = field(default_factory=list)
    page: int = 1000
    """The most buckets a ListDirectoryBuckets page holds, whatever the request asks."""
    serves_directories: bool = True
    """False: ListDirectoryBuckets is answered 501 NotImplemented, as by a server without them."""
    minimum_size: str | None = None
    """A TransitionDefaultMinimumObjectSize header to answer GetBucketLifecycleConfiguration with
    (S3 documents none for directory buckets: a client must not depend on its absence)."""
    denies_directories: bool = False
    """True: ListDirectoryBuckets is answered 403 AccessDenied, as AWS answers a role without
    s3express:ListAllMyDirectoryBuckets."""
    lifecycles: dict[str, bytes] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, method: str, subresource: str) -> list[Request]:
        """The requests of ``method`` on a bucket's ``subresource`` (``lifecycle``, ``session``)."""
        return [r for r in self.requests if r.method == method and subresource in r.query]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read :attr:`DirectoryState.requests` instead."""

    def _request(self) -> Request:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        request = Request(self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()})
        with self.server.state.lock:
            self.server.state.requests.append(request)
        return request

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", minimum_size: str | None = None) -> None:
        self.send_response(status)
        if minimum_size is not None:
            self.send_header("x-amz-transition-default-minimum-object-size", minimum_size)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "FAKEDIRECTORY")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        self._send(status, body.encode())

    def do_GET(self) -> None:
        request = self._request()
        state = self.server.state
        if request.path == "/":
            if "max-directory-buckets" in request.query and state.denies_directories:
                self._error(403, "AccessDenied", "Access Denied")
            elif "max-directory-buckets" in request.query and not state.serves_directories:
                self._error(501, "NotImplemented", "ListDirectoryBuckets is not implemented")
            elif "max-directory-buckets" in request.query:
                self._send(200, _directory_page(state, request.query))
            else:
                self._send(200, _bucket_list("ListAllMyBucketsResult", state.general_buckets))
        elif "session" in request.query:
            self._send(200, _SESSION)
        elif "lifecycle" in request.query and self._owned(request):
            stored = state.lifecycles.get(request.bucket)
            if stored is None:
                self._error(404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")
            else:
                self._send(200, stored, state.minimum_size)
        elif "lifecycle" not in request.query:
            self._error(501, "NotImplemented", "not served by this test endpoint")

    def do_PUT(self) -> None:
        request = self._request()
        body = self._body()
        if "lifecycle" not in request.query:
            self._error(501, "NotImplemented", "not served by this test endpoint")
        elif self._owned(request):
            refused = REFUSED_IN_DIRECTORY.search(body)
            if refused is not None:
                what = refused.group(1).decode()
                self._error(400, "InvalidRequest", f"{what} is not supported for directory bucket lifecycle")
                return
            self.server.state.lifecycles[request.bucket] = body
            self._send(200)

    def do_DELETE(self) -> None:
        request = self._request()
        if "lifecycle" not in request.query:
            self._error(501, "NotImplemented", "not served by this test endpoint")
        elif self._owned(request):
            self.server.state.lifecycles.pop(request.bucket, None)
            self._send(204)

    def _owned(self, request: Request) -> bool:
        """Whether the request is on a bucket the server holds, without ``ExpectedBucketOwner``
        (answered with an error otherwise)."""
        if "x-amz-expected-bucket-owner" in request.headers:
            self._error(400, "InvalidArgument", "ExpectedBucketOwner is not supported for directory buckets")
            return False
        if request.bucket not in self.server.state.directory_buckets:
            self._error(404, "NoSuchBucket", "The specified bucket does not exist")
            return False
        return True


_SESSION = (
    f'<CreateSessionResult xmlns="{NAMESPACE}"><Credentials>'
    "<SessionToken>fake-session-token</SessionToken><SecretAccessKey>fake-secret</SecretAccessKey>"
    "<AccessKeyId>FAKESESSIONKEY</AccessKeyId><Expiration>2099-01-01T00:00:00Z</Expiration>"
    "</Credentials></CreateSessionResult>"
).encode()


def _bucket_list(root: str, names: list[str], token: str | None = None) -> bytes:
    entries = "".join(
        f"<Bucket><Name>{escape(n)}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>" for n in names
    )
    more = f"<ContinuationToken>{token}</ContinuationToken>" if token else ""
    return f'<{root} xmlns="{NAMESPACE}"><Buckets>{entries}</Buckets>{more}</{root}>'.encode()


def _directory_page(state: DirectoryState, query: dict[str, list[str]]) -> bytes:
    size = max(1, min(state.page, int(query["max-directory-buckets"][0] or 1000)))
    start = int((query.get("continuation-token") or ["0"])[0].removeprefix("page-") or 0)
    names = sorted(state.directory_buckets)[start : start + size]
    token = f"page-{start + size}" if start + size < len(state.directory_buckets) else None
    return _bucket_list("ListAllMyDirectoryBucketsResult", names, token)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: DirectoryState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeDirectoryServer:
    """The server in a thread of this process, from ``with`` to its end."""

    def __init__(
        self,
        directory_buckets: list[str],
        general_buckets: list[str] | None = None,
        *,
        page: int = 1000,
        serves_directories: bool = True,
    ) -> None:
        self.state = DirectoryState(
            list(directory_buckets), list(general_buckets or ()), page=page, serves_directories=serves_directories
        )
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-directory", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
