"""A benchmark-only S3 endpoint: aiohttp on 127.0.0.1, everything in memory, real S3 XML.

moto's server tops out near 250 requests per second, far below what a benchmark of a
concurrent client needs, so this serves the few operations LakeCircle uses, straight
from prepared bytes: ListBuckets (MaxBuckets, ContinuationToken, BucketRegion),
ListObjectsV2 (prefix, continuation), Get/Put/HeadObject, Get/Put/DeleteBucketLifecycle
(the PUT's XML is parsed and checked as S3 checks it: at least one rule, at most 1,000,
unique IDs, a checksum header), HeadBucket, GetBucketLocation and STS GetCallerIdentity.
``ExpectedBucketOwner`` is checked (403 on a mismatch). PutObject honours ``If-None-Match: *``
and ``If-Match`` as S3 does (412 PreconditionFailed, 404 NoSuchKey for ``If-Match`` on no
object), the check and the write in one step of the event loop, so of racing conditional
writes exactly one wins: the leases' races are tested here, since moto's server checks and
writes without a lock. It is not S3: no signature check, path-style addressing only, one region.

Several accounts, for the many-accounts benchmark: ``/__bench/accounts`` spreads the
workload's buckets over N member accounts (N = 0: every bucket in the one account, the
default), as moto does it: the caller's account is that of the access key in the SigV4
``Authorization`` header. STS AssumeRole on a member account's role (any role name) issues
credentials that act in that account, with an Expiration an hour (or DurationSeconds) away;
any other key is the hub's account (the definitions and records bucket lives there).
GetCallerIdentity answers the caller's account and ARN, ListBuckets lists the caller's
buckets, and a bucket of another account is refused (403) like one whose owner is not the
``ExpectedBucketOwner``. With N = 0 none of this runs: single-account requests cost what
they always did.

Knobs, set through ``/__bench/*`` (never counted): a delay before every answer
(``asyncio.sleep``; an ``Expect: 100-continue`` waits for it twice, once for the
go-ahead and once for the answer, as across a network), and a token bucket that
answers ``503 SlowDown`` to requests beyond ``rate`` per second (burst: a tenth of a
second's worth), and headers to ignore (``ignore``: ``If-None-Match``, ``If-Match``), as a
server without conditional writes does. Requests are counted by operation, throttled ones
apart, with the server's own CPU seconds.

Run it in its own process, so that the client's CPU is measured apart:
``python bench/fake_s3.py`` prints ``{"port": N}`` and serves until stdin closes or
SIGTERM. :class:`FakeS3Process` does that from Python and drives the admin API.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import fleet as fl  # noqa: E402 -- after the path is set for script use
from bench import workload as wl  # noqa: E402

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
CREATED = "2024-01-02T03:04:05.000Z"
LAST_MODIFIED = formatdate(1704164645, usegmt=True)
TDMOS_HEADER = "x-amz-transition-default-minimum-object-size"
TDMOS_VALUES = ("all_storage_classes_128K", "varies_by_storage_class")
CHECKSUM_HEADERS = (
    "content-md5",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
)
PRECONDITION_FAILED = "At least one of the pre-conditions you specified did not hold"
MALFORMED = "The XML you provided was not well-formed or did not validate against our published schema"
UNPAGINATED_BUCKETS = 10_000
"""ListBuckets without MaxBuckets answers at most this many (then a token)."""
STS = "STS"
"""A POST to ``/``: an STS call, whose form names the action."""
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


# -- the state ----------------------------------------------------------------------------


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


@dataclass
class StoredObject:
    data: bytes
    etag: str
    listing: str
    """Its ``<Contents>`` element, rendered once."""


def _contents(key: str, obj_data: bytes, etag: str) -> str:
    return (
        f"<Contents><Key>{escape(quote(key, safe='/'))}</Key><LastModified>{CREATED}</LastModified>"
        f"<ETag>{escape(etag)}</ETag><Size>{len(obj_data)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
    )


@dataclass
class ObjectBucket:
    """The objects of one bucket, with their keys kept sorted for listings."""

    objects: dict[str, StoredObject] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)

    def put(self, key: str, data: bytes) -> str:
        etag = _etag(data)
        if key not in self.objects:
            bisect.insort(self.keys, key)
        self.objects[key] = StoredObject(data, etag, _contents(key, data, etag))
        return etag


@dataclass
class TokenBucket:
    """At most ``rate`` requests per second on average, bursts of ``burst``."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Caller:
    """Whose credentials a request carries: an account, and the ARN GetCallerIdentity answers."""

    account: str
    arn: str


@dataclass
class Listing:
    """One account's buckets, as ListBuckets pages through them."""

    names: list[str]
    xml: list[str]


class FakeS3:
    """The endpoint's state and its aiohttp handler."""

    def __init__(self) -> None:
        self.account = wl.ACCOUNT
        """The hub's account: the one account without member accounts, and always the
        account of credentials STS did not issue."""
        self.hub = Caller(self.account, f"arn:aws:iam::{self.account}:user/bench")
        self.members: tuple[str, ...] = ()
        """Member accounts (``/__bench/accounts``); empty: one account, as before."""
        self.owners: dict[str, str] = {}
        """Each member account's buckets: name to account (the hub's are not in it)."""
        self.listings: dict[str, Listing] = {}
        """Each member account's ListBuckets (the hub's is bucket_names and bucket_xml)."""
        self.sessions: dict[str, Caller] = {}
        """Credentials AssumeRole issued, by access key ID."""
        self.region = wl.REGION
        self.delay = 0.0
        self.throttle: TokenBucket | None = None
        self.ignored: frozenset[str] = frozenset()
        """Conditional headers PutObject ignores (``If-None-Match``, ``If-Match``), as a server without them."""
        self.counts: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.lifecycle: dict[str, tuple[bytes, str]] = {}
        self.objects: dict[str, ObjectBucket] = {}
        self.bucket_names: Sequence[str] = []
        self.bucket_xml: Sequence[str] = []
        self.workload: wl.Workload | None = None
        self.fleet: fl.Fleet | None = None
        """A generated fleet (``/__bench/fleet``): its buckets exist without an object each."""
        self.written_at: dict[str, float] = {}
        """When each bucket's lifecycle was last written or deleted (``time.monotonic()``: one clock
        for every process of the machine), so a harness can time a repair."""
        self.watch: frozenset[str] = frozenset()
        """Buckets whose requests are also counted apart (``watched``), with the records under
        the endpoint whose keys name them."""
        self.watched: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        """Requests to the endpoint bucket by operation and first part of the key below its
        prefix (``PutObject history``, ``GetObject definition``, ``ListObjectsV2 definition``)."""
        self._request_id = 0
        self.set_buckets([])

    # -- setup --------------------------------------------------------------------------

    def set_buckets(self, names: list[str]) -> None:
        everything = sorted({*names, wl.ENDPOINT_BUCKET})
        self.bucket_names = everything
        self.bucket_xml = self._bucket_xml(everything)
        self.objects = {n: self.objects.get(n) or ObjectBucket() for n in everything}

    def _bucket_xml(self, names: list[str]) -> list[str]:
        return [
            f"<Bucket><Name>{n}</Name><CreationDate>{CREATED}</CreationDate><BucketRegion>{self.region}</BucketRegion>"
            "</Bucket>"
            for n in names
        ]

    def load(self, workload: wl.Workload) -> None:
        self.workload = workload
        self.fleet = None
        self.written_at = {}
        self.objects = {}
        self.set_buckets(list(workload.buckets))
        endpoint = self.objects[wl.ENDPOINT_BUCKET]
        for key, data in workload.definitions.items():
            endpoint.put(key, data)
        self.lifecycle = dict(workload.live)
        if self.members:
            self.spread(len(self.members))

    def spread(self, accounts: int) -> None:
        """The workload's buckets over ``accounts`` member accounts, in equal runs of
        sorted names (0: every bucket in the hub's account); the endpoint bucket stays the hub's."""
        names = list(self.workload.buckets) if self.workload is not None else []
        self.members = tuple(wl.member_account(k) for k in range(accounts))
        self.owners = {}
        self.listings = {}
        if not self.members:
            self.set_buckets(names)
            return
        self.set_buckets([])
        xml = dict(zip(names, self._bucket_xml(names), strict=True))
        for index, name in enumerate(names):
            owner = self.members[index * accounts // len(names)]
            self.owners[name] = owner
            listing = self.listings.setdefault(owner, Listing([], []))
            listing.names.append(name)
            listing.xml.append(xml[name])
            self.objects.setdefault(name, ObjectBucket())
        for account in self.members:
            self.listings.setdefault(account, Listing([], []))

    # -- the handler ----------------------------------------------------------------------

    async def expect(self, request: web.Request) -> None:
        """Answer ``Expect: 100-continue`` after the delay, as a server across a network
        does: the client's wait for the go-ahead is a round trip of its own (aiohttp's
        default handler would answer at once)."""
        if request.headers.get("Expect", "").lower() != "100-continue":
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {request.headers.get('Expect')}")
        if self.delay and not request.path.startswith("/__bench/"):
            await asyncio.sleep(self.delay)
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__bench/"):
            return await self.admin(request, path.removeprefix("/__bench/"))
        bucket, _, key = path[1:].partition("/")
        query = request.query
        method = request.method
        operation = _operation(method, bucket, key, query)
        if operation == STS:
            operation = str((await request.post()).get("Action") or "UnknownAction")
        self.counts[operation] += 1
        if bucket == wl.ENDPOINT_BUCKET:
            self.count_key(operation, key or request.query.get("prefix", ""))
        elif bucket in self.watch:
            self.watched[operation] += 1
        if self.throttle is not None and not self.throttle.take():
            self.throttled[operation] += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.error(503, "SlowDown", "Please reduce your request rate.", head=method == "HEAD")
        if self.delay:
            await asyncio.sleep(self.delay)
        if bucket and bucket not in self.objects and (self.fleet is None or bucket not in self.fleet):
            return self.error(404, "NoSuchBucket", "The specified bucket does not exist", head=method == "HEAD")
        owner = request.headers.get("x-amz-expected-bucket-owner")
        if not self.members:
            if owner is not None and owner != self.account:
                return self.error(403, "AccessDenied", "Access Denied", head=method == "HEAD")
        elif bucket:
            holder = self.owners.get(bucket, self.account)
            if (owner is not None and owner != holder) or self.caller(request).account != holder:
                return self.error(403, "AccessDenied", "Access Denied", head=method == "HEAD")
        handler = getattr(self, "op_" + operation, None)
        if handler is None:
            return self.error(501, "NotImplemented", f"{operation} is not served by the benchmark endpoint")
        response: web.StreamResponse = await handler(request, bucket, key)
        return response

    def count_key(self, operation: str, key: str) -> None:
        part = key.removeprefix(wl.ENDPOINT_PREFIX).split("/", 1)[0]
        self.keys[f"{operation} {part}"] += 1
        if self.watch and any(name in key for name in self.watch):
            self.watched[f"{operation} {part}"] += 1

    def caller(self, request: web.Request) -> Caller:
        """The account of the request's access key (SigV4's ``Credential=KEY/...``)."""
        auth = request.headers.get("Authorization", "")
        start = auth.find("Credential=")
        if start < 0:
            return self.hub
        start += len("Credential=")
        return self.sessions.get(auth[start : auth.find("/", start)], self.hub)

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        self._request_id += 1
        headers = {"x-amz-request-id": f"BENCH{self._request_id:011d}", "x-amz-id-2": "bench"}
        if extra:
            headers.update(extra)
        return headers

    def xml(self, body: bytes | str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(
            body=XML_HEAD + data, status=status, content_type="application/xml", headers=self._headers(headers)
        )

    def error(self, status: int, code: str, message: str, *, head: bool = False) -> web.Response:
        if head:
            return web.Response(status=status, headers=self._headers())
        body = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message><RequestId>bench</RequestId></Error>"
        return self.xml(body, status=status)

    # -- operations ---------------------------------------------------------------------

    async def op_ListBuckets(self, request: web.Request, _: str, __: str) -> web.Response:
        query = request.query
        token = query.get("continuation-token")
        limit = int(query.get("max-buckets") or UNPAGINATED_BUCKETS)
        if not 1 <= limit <= 10_000:
            return self.error(400, "InvalidArgument", "max-buckets must be between 1 and 10000")
        names, xml = self.bucket_names, self.bucket_xml
        if self.members:
            listing = self.listings.get(self.caller(request).account)
            if listing is not None:
                names, xml = listing.names, listing.xml
        start = bisect.bisect_right(names, _untoken(token)) if token else 0
        end = min(start + limit, len(names))
        more = end < len(names)
        parts = [
            f'<ListAllMyBucketsResult xmlns="{NS}"><Owner><ID>bench-owner</ID><DisplayName>bench</DisplayName></Owner>'
            "<Buckets>",
            *xml[start:end],
            "</Buckets>",
        ]
        if more:
            parts.append(f"<ContinuationToken>{_token(names[end - 1])}</ContinuationToken>")
        parts.append("</ListAllMyBucketsResult>")
        return self.xml("".join(parts))

    async def op_HeadBucket(self, _: web.Request, __: str, ___: str) -> web.Response:
        return web.Response(status=200, headers=self._headers({"x-amz-bucket-region": self.region}))

    async def op_GetBucketLocation(self, _: web.Request, __: str, ___: str) -> web.Response:
        location = "" if self.region == "us-east-1" else self.region
        return self.xml(f'<LocationConstraint xmlns="{NS}">{location}</LocationConstraint>')

    async def op_GetBucketLifecycleConfiguration(self, _: web.Request, bucket: str, __: str) -> web.Response:
        stored = self.lifecycle.get(bucket)
        if stored is None and self.fleet is not None and bucket in self.fleet:
            stored = (self.fleet.generated(bucket), TDMOS_VALUES[0])
        if stored is None or not stored[0]:  # never held one, or deleted (a fleet's: an empty body)
            return self.error(404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")
        return self.xml(stored[0], headers={TDMOS_HEADER: stored[1]})

    async def op_PutBucketLifecycleConfiguration(self, request: web.Request, bucket: str, __: str) -> web.Response:
        if not any(h in request.headers for h in CHECKSUM_HEADERS):
            return self.error(400, "InvalidRequest", "Missing required header for this request: Content-MD5")
        body = _decode_chunked(request, await request.read())
        tdmos = request.headers.get(TDMOS_HEADER, TDMOS_VALUES[0])
        if tdmos not in TDMOS_VALUES:
            return self.error(400, "InvalidRequest", f"Invalid TransitionDefaultMinimumObjectSize found: {tdmos}")
        problem = _check_lifecycle(body)
        if problem is not None:
            return self.error(400, *problem)
        self.lifecycle[bucket] = (body, tdmos)
        self.written_at[bucket] = time.monotonic()
        return web.Response(status=200, headers=self._headers({TDMOS_HEADER: tdmos}))

    async def op_DeleteBucketLifecycle(self, _: web.Request, bucket: str, __: str) -> web.Response:
        if self.fleet is not None and bucket in self.fleet:
            self.lifecycle[bucket] = (b"", "")  # else its generated configuration would come back
        else:
            self.lifecycle.pop(bucket, None)
        self.written_at[bucket] = time.monotonic()
        return web.Response(status=204, headers=self._headers())

    async def op_ListObjectsV2(self, request: web.Request, bucket: str, _: str) -> web.Response:
        query = request.query
        store = self.objects[bucket]
        prefix = query.get("prefix", "")
        limit = max(0, min(int(query.get("max-keys") or 1000), 1000))
        token = query.get("continuation-token")
        after = max(query.get("start-after", ""), _untoken(token) if token else "")
        start = bisect.bisect_left(store.keys, prefix)
        if after:
            start = max(start, bisect.bisect_right(store.keys, after))
        picked: list[str] = []
        index = start
        while index < len(store.keys) and len(picked) < limit:
            key = store.keys[index]
            if not key.startswith(prefix):
                break
            picked.append(key)
            index += 1
        truncated = index < len(store.keys) and store.keys[index].startswith(prefix) and bool(picked)
        parts = [
            f'<ListBucketResult xmlns="{NS}"><Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix>'
            f"<KeyCount>{len(picked)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        ]
        if query.get("encoding-type") == "url":
            parts.append("<EncodingType>url</EncodingType>")
        if token:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if truncated:
            parts.append(f"<NextContinuationToken>{_token(picked[-1])}</NextContinuationToken>")
        parts.extend(store.objects[k].listing for k in picked)
        parts.append("</ListBucketResult>")
        return self.xml("".join(parts))

    async def op_GetObject(self, _: web.Request, bucket: str, key: str) -> web.Response:
        obj = self.objects[bucket].objects.get(key)
        if obj is None:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        headers = self._headers({"ETag": obj.etag, "Last-Modified": LAST_MODIFIED})
        return web.Response(body=obj.data, content_type="binary/octet-stream", headers=headers)

    async def op_HeadObject(self, _: web.Request, bucket: str, key: str) -> web.Response:
        obj = self.objects[bucket].objects.get(key)
        if obj is None:
            return web.Response(status=404, headers=self._headers())
        headers = {"ETag": obj.etag, "Last-Modified": LAST_MODIFIED, "Content-Length": str(len(obj.data))}
        return web.Response(status=200, headers=self._headers(headers))

    async def op_PutObject(self, request: web.Request, bucket: str, key: str) -> web.Response:
        data = _decode_chunked(request, await request.read())
        store = self.objects[bucket]
        # No await from the check to the write: of racing conditional writes, one wins.
        refused = self.refused(request, store.objects.get(key))
        if refused is not None:
            return refused
        etag = store.put(key, data)
        return web.Response(status=200, headers=self._headers({"ETag": etag}))

    def refused(self, request: web.Request, existing: StoredObject | None) -> web.Response | None:
        """S3's answer to a PutObject whose condition does not hold, or None."""
        if_none_match = None if "If-None-Match" in self.ignored else request.headers.get("If-None-Match")
        if_match = None if "If-Match" in self.ignored else request.headers.get("If-Match")
        if if_none_match == "*" and existing is not None:
            return self.error(412, "PreconditionFailed", PRECONDITION_FAILED)
        if if_match is not None and existing is None:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        if if_match is not None and existing is not None and if_match.strip('"') != existing.etag.strip('"'):
            return self.error(412, "PreconditionFailed", PRECONDITION_FAILED)
        return None

    async def op_GetCallerIdentity(self, request: web.Request, __: str, ___: str) -> web.Response:
        caller = self.caller(request) if self.sessions else self.hub
        body = (
            f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult>'
            f"<Arn>{escape(caller.arn)}</Arn><UserId>AIDABENCH</UserId>"
            f"<Account>{caller.account}</Account></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )
        return web.Response(body=body.encode(), content_type="text/xml", headers=self._headers())

    async def op_AssumeRole(self, request: web.Request, __: str, ___: str) -> web.Response:
        """Credentials acting in the role's account (a member account or the hub's), for
        DurationSeconds (default an hour); any other account's role is AccessDenied."""
        form = await request.post()
        role_arn, session_name = str(form.get("RoleArn", "")), str(form.get("RoleSessionName", ""))
        parts = role_arn.split(":", 5)
        account = parts[4] if len(parts) == 6 and parts[5].startswith("role/") else ""
        if account not in self.members and account != self.account:
            return self.sts_error(403, "AccessDenied", f"Not authorized to perform sts:AssumeRole on {role_arn}")
        role_name = parts[5].rsplit("/", 1)[-1]
        key = f"ASIABENCH{len(self.sessions):011d}"
        self.sessions[key] = Caller(account, f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(str(form.get("DurationSeconds") or 3600)))
        body = (
            f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult><Credentials>'
            f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>bench-secret</SecretAccessKey>"
            f"<SessionToken>bench-token-{key}</SessionToken>"
            f"<Expiration>{expires:%Y-%m-%dT%H:%M:%SZ}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROABENCH:{escape(session_name)}</AssumedRoleId>"
            f"<Arn>{escape(self.sessions[key].arn)}</Arn></AssumedRoleUser></AssumeRoleResult>"
            "<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )
        return web.Response(body=body.encode(), content_type="text/xml", headers=self._headers())

    def sts_error(self, status: int, code: str, message: str) -> web.Response:
        body = (
            f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>bench</RequestId></ErrorResponse>"
        )
        return web.Response(body=body.encode(), status=status, content_type="text/xml", headers=self._headers())

    # -- the admin API (not counted, not delayed, not throttled) --------------------------

    async def admin(self, request: web.Request, what: str) -> web.Response:
        params: dict[str, Any] = await request.json() if request.can_read_body else {}
        if what in FLEET_CALLS:
            return web.json_response(self.fleet_admin(what, params))
        if what == "workload":
            started = time.perf_counter()
            work = wl.build(int(params["buckets"]), int(params.get("rules", 5)), float(params.get("drift", 0.1)))
            self.load(work)
            return web.json_response(
                {
                    "buckets": len(work.buckets),
                    "files": len(work.definitions),
                    "drifted": sorted(work.drifted),
                    "second": sorted(work.second),
                    "seconds": time.perf_counter() - started,
                }
            )
        if what == "reset":
            # Back to the workload's initial state (drifted), as if no cycle had run.
            assert self.workload is not None
            self.load(self.workload)
            return web.json_response({"ok": True})
        if what == "definitions":
            # The workload's definition files into a local directory (``--definitions DIR``).
            assert self.workload is not None
            directory = Path(params["directory"])
            for key, data in self.workload.definitions.items():
                path = directory / key.removeprefix(wl.DEFINITION_PREFIX)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            return web.json_response({"files": len(self.workload.definitions)})
        if what == "accounts":
            self.spread(int(params.get("accounts", 0)))
            return web.json_response({"accounts": list(self.members), "hub": self.account})
        if what == "second-drift":
            assert self.workload is not None
            self.lifecycle.update(self.workload.second_drift())
            return web.json_response({"drifted": len(self.workload.second)})
        if what == "settings":
            self.delay = float(params.get("delay_ms", 0)) / 1000
            rate = float(params.get("rate", 0))
            self.throttle = TokenBucket(rate, max(1.0, rate / 10), tokens=max(1.0, rate / 10)) if rate > 0 else None
            self.ignored = frozenset(params.get("ignore", ()))
            return web.json_response({"delay_s": self.delay, "rate": rate, "ignore": sorted(self.ignored)})
        if what == "counts":
            if request.method == "POST":
                self.counts.clear()
                self.throttled.clear()
                self.watched.clear()
                self.keys.clear()
            times = os.times()
            return web.json_response(
                {
                    "ops": dict(self.counts),
                    "throttled": dict(self.throttled),
                    "watched": dict(self.watched),
                    "keys": dict(self.keys),
                    "now": time.monotonic(),
                    "cpu": times.user + times.system,
                    "lifecycle_written": len(self.lifecycle),
                }
            )
        return web.json_response({"error": f"unknown admin call {what}"}, status=404)

    def fleet_admin(self, what: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The generated fleet's admin calls (bench/fleet.py): ``fleet`` makes one of ``buckets``
        names with ``groups`` exact group files and its definitions under the endpoint;
        ``drift`` gives named buckets the drifted configuration behind LakeCircle's back;
        ``written`` says when named buckets were last written; ``watch`` counts named buckets'
        requests apart; ``put-object`` writes an object of the endpoint bucket, uncounted."""
        if what == "fleet":
            started = time.perf_counter()
            self.workload = None
            self.objects = {}
            self.lifecycle = {}
            self.written_at = {}
            self.set_buckets([])
            fleet = fl.Fleet(int(params["buckets"]), int(params.get("groups", 10)), self.region)
            self.fleet = fleet
            self.bucket_names = fl.Names(fleet, list(self.bucket_names))
            self.bucket_xml = fl.Xml(self.bucket_names)
            endpoint = self.objects[wl.ENDPOINT_BUCKET]
            for key, data in fl.definitions(fleet.size, fleet.groups).items():
                endpoint.put(key, data)
            return {
                "buckets": fleet.size,
                "managed": fleet.managed,
                "exact": sorted(fleet.exact),
                "files": len(endpoint.keys),
                "seconds": time.perf_counter() - started,
            }
        if what == "drift":
            drifted = self.fleet.bodies["drifted"] if self.fleet is not None else b""
            for bucket in params["buckets"]:
                self.lifecycle[bucket] = (drifted, TDMOS_VALUES[0])
            return {"drifted": len(params["buckets"]), "now": time.monotonic()}
        if what == "written":
            return {"written": {b: self.written_at.get(b) for b in params["buckets"]}, "now": time.monotonic()}
        if what == "watch":
            self.watch = frozenset(params.get("buckets", ()))
            self.watched.clear()
            return {"watching": len(self.watch)}
        # put-object
        etag = self.objects[params.get("bucket", wl.ENDPOINT_BUCKET)].put(params["key"], params["data"].encode())
        return {"etag": etag, "now": time.monotonic()}


FLEET_CALLS = frozenset({"fleet", "drift", "written", "watch", "put-object"})


def _operation(method: str, bucket: str, key: str, query: Mapping[str, str]) -> str:
    if not bucket:
        return STS if method == "POST" else "ListBuckets"
    if key:
        return {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject"}.get(method, f"{method}Object")
    if "lifecycle" in query:
        return {
            "GET": "GetBucketLifecycleConfiguration",
            "PUT": "PutBucketLifecycleConfiguration",
            "DELETE": "DeleteBucketLifecycle",
        }.get(method, f"{method}Lifecycle")
    if method == "HEAD":
        return "HeadBucket"
    if "list-type" in query:
        return "ListObjectsV2"
    if "location" in query:
        return "GetBucketLocation"
    return f"{method}Bucket"


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _untoken(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError:
        return ""


def _decode_chunked(request: web.Request, body: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (botocore's trailing-checksum uploads)."""
    if "aws-chunked" not in request.headers.get("Content-Encoding", "") and not request.headers.get(
        "x-amz-content-sha256", ""
    ).startswith("STREAMING-"):
        return body
    out = bytearray()
    rest = body
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def _check_lifecycle(body: bytes) -> tuple[str, str] | None:
    """S3's answer to a lifecycle configuration it would refuse, or None."""
    try:
        root = ET.fromstring(body)  # noqa: S314 -- the benchmark's own client sends it
    except ET.ParseError:
        return "MalformedXML", MALFORMED
    rules = root.findall(f"{{{NS}}}Rule") or root.findall("Rule")
    if not rules or len(rules) > 1000:
        return "MalformedXML", MALFORMED
    ids = [(r.findtext(f"{{{NS}}}ID") or r.findtext("ID") or "") for r in rules]
    named = [i for i in ids if i]
    if len(set(named)) != len(named):
        return "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule"
    return None


# -- running it ---------------------------------------------------------------------------


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until stdin closes or SIGTERM; print ``{"port": N}`` once listening."""
    fake = FakeS3()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", fake.handle, expect_handler=fake.expect)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only here
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(json.dumps({"port": bound, "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1) else None)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class FakeS3Process:
    """The endpoint in a child process, and a small client of its admin API.

    ``with FakeS3Process() as s3:`` starts it and stops it (closing its stdin) on exit.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_s3"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark S3 endpoint did not start")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def call(self, what: str, payload: dict[str, Any] | None = None, *, timeout: float = 600) -> dict[str, Any]:
        return admin_call(self.url, what, payload, timeout=timeout)

    def workload(self, buckets: int, *, rules: int = 5, drift: float = 0.1) -> dict[str, Any]:
        return self.call("workload", {"buckets": buckets, "rules": rules, "drift": drift})

    def settings(self, *, delay_ms: float = 0, rate: float = 0, ignore: tuple[str, ...] = ()) -> None:
        """A delay before every answer, a rate limit (0: none), and conditional headers PutObject ignores."""
        self.call("settings", {"delay_ms": delay_ms, "rate": rate, "ignore": list(ignore)})

    def counts(self, *, reset: bool = False) -> dict[str, Any]:
        return self.call("counts", {} if reset else None)

    def accounts(self, accounts: int) -> list[str]:
        """Spread the workload's buckets over ``accounts`` member accounts (0: one account)."""
        members: list[str] = self.call("accounts", {"accounts": accounts})["accounts"]
        return members


def admin_call(url: str, what: str, payload: dict[str, Any] | None = None, *, timeout: float = 600) -> dict[str, Any]:
    """One call of the endpoint's admin API: POST with a JSON body, GET without one."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 -- a loopback URL of our own
        f"{url}/__bench/{what}", data=data, method="GET" if data is None else "POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
    return result


def ops_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Requests by operation between two counts."""
    return {op: n - before.get(op, 0) for op, n in sorted(after.items()) if n - before.get(op, 0)}


if __name__ == "__main__":
    asyncio.run(serve())
