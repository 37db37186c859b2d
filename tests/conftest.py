"""Shared fixtures: moto's S3 server over real HTTP on loopback, reset between tests.

Nothing patches botocore: the adapter under test and the boto3 client that arranges
state both talk HTTP to one moto server started for the whole session on a free port
of 127.0.0.1. The ``moto`` fixture empties it before each test through moto's reset
API and points the AWS SDK at it through the SDK's own environment variables.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import structlog
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tests.seaweed import SeaweedServer

MOTO_ACCOUNT = "123456789012"
"""The account moto's STS answers with."""

MOTO_REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Every test starts and ends with structlog's defaults (a CLI run reconfigures it)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


ONE_REPLICA = {"LCC_LEASE_SECONDS": "0", "LCC_PROBE_SERVER": "false"}
"""The settings of one replica, leases off: how every test runs LakeCircle unless it is about leases.

The server probe is off too (its scratch bucket and objects would show in the request counts
of tests about something else); the tests of the probe turn it on.

With leases on (the default) every ``sync`` and daemon waits a write timeout before its first
write, and a lease created where none was a whole duration (30 s): a test that is not about
leases would only wait. The autouse fixture below sets them in this process, and
:func:`tests.helpers.cli_env`, :func:`tests.helpers.child_env` and
:func:`tests.helpers.clear_settings` in what the tests give a child process or a command."""


@pytest.fixture(autouse=True)
def _one_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs one replica, leases off (:data:`ONE_REPLICA`), unless it sets them:
    the replicas' tests do, and the settings' tests clear every ``LCC_*`` variable first."""
    for name, value in ONE_REPLICA.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def anyio_backend() -> str:
    """aioboto3 runs on asyncio only."""
    return "asyncio"


@dataclass
class ServerTap:
    """Wraps moto's WSGI app: counts requests as the server sees them, and can refuse some.

    ``counts`` is keyed by (HTTP method, bucket, subresource), e.g. ("PUT", "b1",
    "lifecycle"). ``deny`` holds buckets whose lifecycle calls get S3's 403 AccessDenied.
    """

    app: Any
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    deny: set[str] = field(default_factory=set)
    deny_writes: set[str] = field(default_factory=set)
    """Buckets whose object PUTs get 403 AccessDenied (a failing snapshot store)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ["REQUEST_METHOD"]
        bucket = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
        query = environ.get("QUERY_STRING", "")
        sub = query.split("=", 1)[0].split("&", 1)[0] if query else ""
        with self.lock:
            self.counts[(method, bucket, sub)] += 1
        if (sub == "lifecycle" and bucket in self.deny) or (method == "PUT" and not sub and bucket in self.deny_writes):
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message><RequestId>TAP0000001</RequestId></Error>"
            )
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("x-amz-request-id", "TAP0000001")])
            return [body]
        return self.app(environ, start_response)

    def total(self, method: str, sub: str = "lifecycle") -> int:
        with self.lock:
            return sum(n for (m, _, s), n in self.counts.items() if m == method and s == sub)

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.deny.clear()
            self.deny_writes.clear()


@pytest.fixture(scope="session")
def moto_tap() -> Iterator[tuple[str, ServerTap]]:
    """moto's server on 127.0.0.1 and a free port, behind a counting tap, for the session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access-log line per request
    tap = ServerTap(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, tap, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", tap
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="session")
def moto_server(moto_tap: tuple[str, ServerTap]) -> str:
    """The URL of the session's moto server."""
    return moto_tap[0]


@pytest.fixture
def tap(moto: str, moto_tap: tuple[str, ServerTap]) -> ServerTap:
    """The request counts and refusals of the (freshly reset) moto server."""
    return moto_tap[1]


def reset_moto(url: str) -> None:
    """Empty every moto backend: POST /moto-api/reset."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("POST", "/moto-api/reset")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"moto reset failed: HTTP {response.status}")
    finally:
        connection.close()


@pytest.fixture
def moto(moto_server: str, moto_tap: tuple[str, ServerTap], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An empty moto server, and the AWS SDK's environment pointing at it; yields its URL."""
    reset_moto(moto_server)
    moto_tap[1].reset()
    _sdk_environment(monkeypatch, tmp_path, moto_server)
    return moto_server


def _sdk_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, keys: tuple[str, str] = ("testing", "testing")
) -> None:
    """The AWS SDK's environment pointed at the S3 server at ``url``, signing with ``keys`` (fake ones)."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_REGION",
        "AWS_REQUEST_CHECKSUM_CALCULATION",
        "AWS_RESPONSE_CHECKSUM_VALIDATION",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    # No configuration file of the machine running the tests may change what is tested.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)


@pytest.fixture
def s3_client(moto: str) -> Any:
    """A plain synchronous boto3 S3 client, for arranging and inspecting the server's state."""
    return boto3.client("s3", region_name=MOTO_REGION)


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SeaweedFS's S3 server (``weed mini``) on 127.0.0.1 for the session; yields its URL.

    A server that does not start fails the tests that use it, with the end of its log: the
    binary comes with the test extra, so a missing one is a broken install, not a reason to skip.
    """
    from tests.helpers import KEY_ID, SECRET  # the keys every run of tests.helpers.cli_env signs with

    with SeaweedServer(tmp_path_factory.mktemp("seaweed"), access_key=KEY_ID, secret_key=SECRET) as server:
        print(f"SeaweedFS answered in {server.startup_seconds:.2f} s")  # noqa: T201 -- shown with pytest -s
        yield server.url


@pytest.fixture
def seaweed(seaweed_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The session's SeaweedFS server, and the AWS SDK's environment pointing at it; yields its URL.

    It is never emptied: a test takes bucket names of its own (:func:`tests.seaweed.fresh_name`).
    """
    from tests.helpers import KEY_ID, SECRET

    _sdk_environment(monkeypatch, tmp_path, seaweed_server, keys=(KEY_ID, SECRET))
    return seaweed_server
