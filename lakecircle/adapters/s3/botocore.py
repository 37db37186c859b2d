"""LakeCircle's adjustments to botocore and aiobotocore, each with the reason it was measured for.

botocore is written for every AWS service and every kind of caller; a few of its defaults
cost LakeCircle correctness or time. Each adjustment lives here with what it changes and why:

- one HTTP request per attempt (:class:`OneAttemptSession`, and ``total_max_attempts`` in
  :func:`client_config`): the retry layer above sees and counts every attempt;
- one TLS context per process, its CA bundle read once (:func:`shared_ssl_context`), not one
  per client: a hub opens three clients per member account;
- small bodies sent at once, without ``Expect: 100-continue`` (:func:`_send_small_bodies_at_once`);
- ``Content-MD5`` instead of a CRC32 for servers that require it (:func:`_use_content_md5`);
- S3's timestamps read by the standard library (:func:`parse_s3_timestamp`, :func:`botocore_session`);
- a 200 answer that is not the operation's document refused (:func:`_check_root`);
- the elements of a lifecycle configuration botocore's model does not know kept in view, not
  dropped (:func:`~lakecircle.adapters.s3.unknown_fields.note_unknown_elements`);
- one User-Agent, built once (:data:`USER_AGENT`);
- S3's endpoint rules worked out once per client for plain bucket names (:class:`BucketEndpoints`);
- aiobotocore's log records kept off standard error when nothing was configured to show them
  (:data:`AIOBOTOCORE_LOG`).

:func:`client_config` and :func:`adjust_client` apply them to the clients the S3 adapter
opens (ARCHITECTURE.md, "Errors and retries").
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import functools
import hashlib
import logging
import platform
import re
import ssl
from typing import Any

import aiobotocore
import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.httpsession import create_urllib3_context, get_cert_path
from botocore.parsers import ResponseParserError
from botocore.utils import determine_content_length, parse_timestamp

from lakecircle import __version__
from lakecircle.adapters.s3.unknown_fields import note_unknown_elements

AIOBOTOCORE_LOG = logging.getLogger("aiobotocore")
"""aiobotocore's loggers, given a handler that drops their records, as botocore gives its own.

When a role's session cannot be renewed, aiobotocore logs a warning with the whole
traceback ("Refreshing temporary credentials failed during mandatory refresh period.")
before it raises the error. botocore puts a ``NullHandler`` on its ``botocore`` logger;
aiobotocore puts none on its own, so with standard logging left unconfigured (LakeCircle
logs through structlog) Python's last-resort handler printed that traceback to standard
error, where no traceback may reach a user (ARCHITECTURE.md, "Code map", app). The error
itself is raised all the same and reported, naming the account and the role. A program
that configures standard logging still receives the records.
"""
AIOBOTOCORE_LOG.addHandler(logging.NullHandler())


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
    cost each one a round trip more (two per written bucket: history/ before the write,
    current/ after it). Registered last on ``before-call.s3``, after
    botocore's own handler has added the header; larger bodies keep it.
    """
    headers = params.get("headers") or {}
    if "Expect" in headers and determine_content_length(params.get("body")) <= SMALL_BODY:
        del headers["Expect"]


class OneAttemptSession(AIOHTTPSession):  # type: ignore[misc]  # aiobotocore is untyped
    """aiobotocore's HTTP session, without aiohttp's own silent retry.

    aiohttp (3.10 and later) sends an idempotent request (GET, HEAD, PUT, DELETE) a second
    time, at once, when the connection drops before an answer comes. That is a retry layer
    under LakeCircle's own: no backoff, no throttle gate, and invisible to the metrics (a
    connection reset was counted nowhere). LakeCircle makes one HTTP request per attempt,
    so each session is told not to. (``_retry_connection`` is aiohttp's own switch, the one
    its test client turns off; without it this class changes nothing.)
    """

    async def _get_session(self, proxy_url: Any) -> Any:
        session = await super()._get_session(proxy_url)
        if getattr(session, "_retry_connection", False):
            session._retry_connection = False
        return session

    def _create_connector(self, proxy_url: Any) -> Any:
        """aiobotocore's connector, with the process's TLS context for these certificates
        (:func:`shared_ssl_context`) rather than a new one. Through a proxy, without
        verification, or on an aiobotocore whose session lacks what this reads, aiobotocore's own."""
        try:
            verify, cert_file, key_file = self._verify, self._cert_file, self._key_file
            limit, connector_args = self._max_pool_connections, self._connector_args
        except AttributeError:
            return super()._create_connector(proxy_url)
        if proxy_url or not verify:
            return super()._create_connector(proxy_url)
        context = shared_ssl_context(get_cert_path(verify), cert_file, key_file)
        return aiohttp.TCPConnector(limit=limit, ssl=context, **connector_args)


@functools.cache
def shared_ssl_context(ca_certs: str | None, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """The TLS context of every connection that verifies against ``ca_certs`` (and presents
    ``cert_file``), made as aiobotocore makes it, once per process.

    aiobotocore makes a context for each client's connection pool and reads the CA bundle
    into it (12 ms of CPU and 0.7 MB each on the benchmark's machine). The hub opens three
    clients per member account (S3, STS for the identity check, STS for each AssumeRole):
    with 50 accounts that was 150 contexts, 2-3 s of CPU in the first cycle and about 70 MB
    kept. A context is made to be shared by many connections; its settings do not change
    after this, and it holds no per-connection state.
    """
    context: ssl.SSLContext = create_urllib3_context()
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    if ca_certs:
        context.load_verify_locations(ca_certs, None, None)
    return context


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


def client_config(*, concurrency: int, connect_timeout: float, read_timeout: float, content_md5: bool) -> AioConfig:
    """The configuration of every client: a pool of ``concurrency`` connections, botocore's
    timeouts, one attempt per call, :data:`USER_AGENT`, and (``content_md5``) MD5 checksums."""
    options: dict[str, Any] = {
        "max_pool_connections": max(concurrency, 10),
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        # One attempt per call: lakecircle/adapters/retry.py, around each request the S3
        # adapter makes, is the only retry layer, with jittered backoff shared by the
        # process, and it sees and counts every attempt. botocore retrying underneath
        # would multiply the attempts and hide them from the metrics. (botocore's own
        # "max_attempts" counts retries, not attempts: 1 there means 2 requests.)
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "user_agent": USER_AGENT,
    }
    if content_md5:
        # Unset otherwise, so that AWS_REQUEST_CHECKSUM_CALCULATION still applies.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return AioConfig(http_session_cls=OneAttemptSession, **options)


PROBE_BUCKET = "lakecircle-endpoint-probe"
"""The plain bucket name :class:`BucketEndpoints` asks S3's endpoint rules about."""

_PLAIN_BUCKET = re.compile(r"[a-z0-9](?:-?[a-z0-9])+")
"""Lower-case letters, digits and single hyphens, a letter or digit at each end: no dot, no
ARN, no upper case, none of the ``--x-s3``-style suffixes S3's endpoint rules treat apart."""


class BucketEndpoints:
    """S3's endpoint rules answered once per client for every plain bucket name.

    botocore evaluates S3's endpoint rule set for every request, 0.2 ms each (a fifth of
    the CPU of a bucket read, measured at 5,000 buckets), and caches 100 answers by all of
    their parameters, the bucket's name and an object's key among them: a cycle over
    thousands of buckets never finds one there. For a plain name of 3 to 63 characters
    (:data:`_PLAIN_BUCKET`) the rules take one path whatever the name (virtual-hostable,
    nothing to encode), and the answer differs only by the name in its URL: the rules are
    asked once about :data:`PROBE_BUCKET` for each set of the other parameters they read
    (those they never read, such as ``Key``, are left out), and the name is put in the URL
    in its place. An answer that holds the probe anywhere but once in its URL, or a rule
    set this cannot read the parameters of (a later botocore's), is never reused, nor is
    any other name's: botocore answers those as before.
    """

    LIMIT = 64
    """Sets of the other parameters remembered (a client has a few: its region, its endpoint)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._answers: dict[tuple[tuple[str, Any], ...], Any] = {}
        self._read: frozenset[str] | None = None

    def resolve_endpoint(self, **params: Any) -> Any:
        bucket = params.get("Bucket")
        if not isinstance(bucket, str) or not 3 <= len(bucket) <= 63 or not _PLAIN_BUCKET.fullmatch(bucket):
            return self.provider.resolve_endpoint(**params)
        if self._read is None:
            self._read = _parameters_read(getattr(self.provider, "ruleset", None))
        key = tuple(sorted((n, v) for n, v in params.items() if n != "Bucket" and n in self._read))
        if key not in self._answers:
            if len(self._answers) >= self.LIMIT or "Bucket" not in self._read:
                return self.provider.resolve_endpoint(**params)
            answer = self.provider.resolve_endpoint(**{**params, "Bucket": PROBE_BUCKET})
            rest = f"{answer.properties!r}{answer.headers!r}"
            self._answers[key] = answer if answer.url.count(PROBE_BUCKET) == 1 and PROBE_BUCKET not in rest else None
        probed = self._answers[key]
        if probed is None:
            return self.provider.resolve_endpoint(**params)
        return probed._replace(url=probed.url.replace(PROBE_BUCKET, bucket))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)  # the rule set's other uses (its parameters)


_TEMPLATE_NAME = re.compile(r"\{([A-Za-z]\w*)(?:#\w+)?\}")


def _parameters_read(ruleset: Any) -> frozenset[str]:
    """Every name a rule set's rules read (``{"ref": name}`` or ``{name}`` in a template);
    empty when it holds no rules this can walk."""
    found: set[str] = set()
    pending: list[Any] = [getattr(ruleset, "rules", None)]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if isinstance(item.get("ref"), str):
                found.add(item["ref"])
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, str):
            found.update(_TEMPLATE_NAME.findall(item))
        elif hasattr(item, "__dict__"):
            pending.extend(vars(item).values())
    return frozenset(found)


def adjust_client(client: Any, *, service: str, content_md5: bool) -> None:
    """Register this module's event handlers on a freshly opened S3 ``client``.

    Clients of other services, and the stub clients tests hand in (no ``meta.events``),
    are left as they are.
    """
    events = getattr(getattr(client, "meta", None), "events", None)
    if service != "s3" or events is None:
        return
    if content_md5:
        events.register("before-call.s3.PutBucketLifecycleConfiguration", _use_content_md5)
    for name in _EXPECTED_ROOTS:
        events.register(f"before-parse.s3.{name}", _check_root)
    events.register("before-parse.s3.GetBucketLifecycleConfiguration", note_unknown_elements)
    # Last on the event botocore's own handler that adds the header is on.
    events.register_last("before-call.s3", _send_small_bodies_at_once)
    resolver = getattr(client, "_ruleset_resolver", None)
    if resolver is not None and hasattr(getattr(resolver, "_provider", None), "resolve_endpoint"):
        resolver._provider = BucketEndpoints(resolver._provider)  # no public hook for it
