"""The leases' objects over S3: written only on a condition, and a check at start that the server honours it.

Replicas elect one writer per account through objects under ``LCC_ENDPOINT``
(``lease/<account>.json``) that are created with ``If-None-Match: *`` and replaced with
``If-Match: <the ETag read>`` (S3's conditional writes, 2024). :class:`S3LeaseStore`
implements :class:`~lakecircle.ports.LeaseStore` through the
:class:`~lakecircle.adapters.s3.adapter.S3Adapter`'s object calls (the adapter's region,
``ExpectedBucketOwner``, its error mapping): a refused condition is an answer, None, never
an error and never retried. That adapter is the leases' own (:meth:`S3Adapter.beside
<lakecircle.adapters.s3.adapter.S3Adapter.beside>`), so that a renewal never waits behind
the account's bucket work: its rate limit, its throttle gate, its slots, its connections.

A server that ignores the conditions (some S3-compatible servers, moto before 5.1.5 for
``If-Match``) would let two replicas both "win" and both write. Nothing in a normal answer
says so, hence :func:`conditional_writes_supported`, which asks once at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.ports import LeaseStore, Versioned
from lakecircle.s3_uri import parse_s3_uri

PROBE_KEY = "lease/probe.json"
"""The object :func:`conditional_writes_supported` writes (relative to ``LCC_ENDPOINT``); it may stay."""

PROBE_BODY = (
    b'{"purpose": "LakeCircle checks at start that this server honours conditional writes'
    b' (If-None-Match, If-Match); this object may stay", "version": 1}\n'
)

STALE_ETAG = '"00000000000000000000000000000000"'
"""An ETag no object has (the MD5 of no body the probe writes): ``If-Match`` on it must be refused."""


class S3LeaseStore:
    """Objects under ``LCC_ENDPOINT`` written only on a condition; keys are relative to it.

    ETags are kept exactly as S3 sends them (quotes included) and handed back unchanged in
    ``If-Match``. A write whose answer was lost (a timeout, a dropped connection, a 5xx)
    raises, never retried: it may have been applied, and the caller reads again to know
    (see :meth:`~lakecircle.adapters.s3.adapter.S3Adapter.write_object`).
    """

    def __init__(self, adapter: S3Adapter, uri: str) -> None:
        self._adapter = adapter
        self.bucket, self.prefix = parse_s3_uri(uri)

    @property
    def adapter(self) -> S3Adapter:
        """The adapter the requests go through (the leases' own, beside the account's)."""
        return self._adapter

    @property
    def location(self) -> str:
        """Where the objects are, for messages (``s3://bucket/prefix/``)."""
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def server(self) -> str:
        """The server the requests go to, for messages: ``AWS_ENDPOINT_URL``, else S3 in the adapter's region."""
        return self._adapter.endpoint_url or f"S3 in {self._adapter.region}"

    async def read(self, key: str) -> Versioned | None:
        try:
            data, etag = await self._adapter.read_object_etag(self.bucket, self.prefix + key)
        except errors.NotFound:
            return None
        if not etag:
            raise errors.MalformedResponse(
                f"the answer for {self.prefix + key} carries no ETag, so it cannot be replaced on a condition",
                operation="GetObject",
                bucket=self.bucket,
            )
        return Versioned(data, etag)

    async def create(self, key: str, data: bytes) -> str | None:
        return await self._put(key, data, {"IfNoneMatch": "*"})

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        return await self._put(key, data, {"IfMatch": etag})

    async def _put(self, key: str, data: bytes, condition: dict[str, str]) -> str | None:
        try:
            etag = await self._adapter.write_object(
                self.bucket, self.prefix + key, data, "application/json", condition=condition
            )
        except errors.ConditionFailed:
            return None
        if not etag:
            # Written, but the next write's condition needs the ETag: the caller reads it.
            raise errors.MalformedResponse(
                f"the answer for {self.prefix + key} carries no ETag; read the object for it",
                operation="PutObject",
                bucket=self.bucket,
            )
        return etag


@dataclass(frozen=True, slots=True)
class ConditionalWrites:
    """What :func:`conditional_writes_supported` found: ``reason`` says why not, for the user."""

    supported: bool
    reason: str = ""


async def conditional_writes_supported(store: LeaseStore, *, server: str, location: str) -> ConditionalWrites:
    """Whether the server behind ``store`` honours ``If-None-Match: *`` and ``If-Match``.

    Creates :data:`PROBE_KEY`: if it was not there, a second identical create must be
    refused; if it was (an earlier start's probe), the create must have been refused and
    the object must be there. Then a replace on an ETag no object has must be refused, and
    one on the ETag the server gave must succeed (else no lease could ever be renewed). A
    server that accepts what it should refuse ignores the condition: leases on it would
    elect every replica. Five requests at most, nothing deleted. ``server`` and
    ``location`` (``s3://bucket/prefix/``) name where, in the reason. Other failures
    (access denied, the network) raise as the store raises them.
    """
    where = f"the server at {server} ({location}{PROBE_KEY})"
    advice = "leases need them: set LCC_LEASE_SECONDS=0 and run one replica"
    try:
        created = await store.create(PROBE_KEY, PROBE_BODY)
        if created is not None and await store.create(PROBE_KEY, PROBE_BODY) is not None:
            return ConditionalWrites(False, f"{where} ignores conditional writes (If-None-Match); {advice}")
        if created is None and await store.read(PROBE_KEY) is None:
            return ConditionalWrites(
                False, f"{where} refuses to create an object that is not there (If-None-Match); {advice}"
            )
        if await store.replace(PROBE_KEY, PROBE_BODY, STALE_ETAG) is not None:
            return ConditionalWrites(False, f"{where} ignores conditional writes (If-Match); {advice}")
        read = await store.read(PROBE_KEY)
        if read is None or await store.replace(PROBE_KEY, PROBE_BODY, read.etag) is None:
            return ConditionalWrites(
                False, f"{where} refuses If-Match on the ETag it gave (no lease could be renewed); {advice}"
            )
    except errors.S3Error as exc:
        if exc.status != 501 and exc.code != "NotImplemented":
            raise
        return ConditionalWrites(False, f"{where} does not implement conditional writes ({exc.message}); {advice}")
    return ConditionalWrites(True)
