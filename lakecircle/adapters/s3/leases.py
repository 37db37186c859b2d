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

import random
from dataclasses import dataclass

import anyio

from lakecircle import errors
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.ports import LeaseStore, Versioned
from lakecircle.s3_uri import parse_s3_uri

PROBE_PREFIX = "lease/probe/"
"""Where :func:`conditional_writes_supported` writes, one object per replica (relative to
``LCC_ENDPOINT``); they may stay. Apart from the leases (``lease/<account>.json``, an
account ID is twelve digits) and the heartbeats (``lease/replicas/``)."""

PROBE_BODY = (
    b'{"purpose": "LakeCircle checks at start that this server honours conditional writes'
    b' (If-None-Match, If-Match); this object may stay", "version": 1}\n'
)

IF_MATCH_TRIES = 3
"""How many times the probe's last step (read, then If-Match on the ETag read) is tried
before the server is judged to refuse a matching If-Match."""

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


def probe_key(replica: str) -> str:
    """The probe object of ``replica`` (``LCC_REPLICA_ID``), relative to ``LCC_ENDPOINT``."""
    return f"{PROBE_PREFIX}{replica}.json"


async def conditional_writes_supported(
    store: LeaseStore, *, replica: str, server: str, location: str
) -> ConditionalWrites:
    """Whether the server behind ``store`` honours ``If-None-Match: *`` and ``If-Match``.

    Creates :func:`probe_key` of ``replica``: if it was not there, a second identical
    create must be refused; if it was (an earlier start's probe), the create must have been
    refused and the object must be there. Then a replace on an ETag no object has must be
    refused, and one on the ETag the server gave must succeed (else no lease could ever be
    renewed; see :func:`_replaced_on_its_etag`). A server that accepts what it should refuse
    ignores the condition: leases on it would elect every replica. The object is this
    replica's own, so that replicas starting together (the Deployment's first rollout) do
    not race on it: under SSE-KMS every PUT gets a new ETag, and S3 may answer 409 to two
    crossing conditional writes. Nothing is deleted. ``server`` and ``location``
    (``s3://bucket/prefix/``) name where, in the reason. Other failures (access denied, the
    network) raise as the store raises them.
    """
    key = probe_key(replica)
    where = f"the server at {server} ({location}{key})"
    advice = "leases need them: set LCC_LEASE_SECONDS=0 and run one replica"
    try:
        created = await store.create(key, PROBE_BODY)
        if created is not None and await store.create(key, PROBE_BODY) is not None:
            return ConditionalWrites(False, f"{where} ignores conditional writes (If-None-Match); {advice}")
        if created is None and await store.read(key) is None:
            return ConditionalWrites(
                False, f"{where} refuses to create an object that is not there (If-None-Match); {advice}"
            )
        if await store.replace(key, PROBE_BODY, STALE_ETAG) is not None:
            return ConditionalWrites(False, f"{where} ignores conditional writes (If-Match); {advice}")
        if not await _replaced_on_its_etag(store, key):
            return ConditionalWrites(
                False, f"{where} refuses If-Match on the ETag it gave (no lease could be renewed); {advice}"
            )
    except errors.S3Error as exc:
        if exc.status != 501 and exc.code != "NotImplemented":
            raise
        return ConditionalWrites(False, f"{where} does not implement conditional writes ({exc.message}); {advice}")
    return ConditionalWrites(True)


async def _replaced_on_its_etag(store: LeaseStore, key: str) -> bool:
    """Whether a replace with ``If-Match`` on the ETag just read succeeds, in one of
    :data:`IF_MATCH_TRIES` tries a short random pause apart.

    Another writer of the key between the read and the replace (a second process with this
    replica's ID, a command run inside the pod) changes the ETag under SSE-KMS, and two
    conditional writes that cross may both be answered 409: a lost try, not a server that
    refuses a matching If-Match, which refuses every try.
    """
    for attempt in range(IF_MATCH_TRIES):
        if attempt:
            await anyio.sleep(random.uniform(0.05, 0.2) * attempt)  # noqa: S311 (jitter, not a secret)
        read = await store.read(key)
        if read is not None and await store.replace(key, PROBE_BODY, read.etag) is not None:
            return True
    return False
