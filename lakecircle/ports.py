"""The small interfaces the reconcile code talks to, so tests can hand it memory instead of S3.

:class:`LifecycleStore` is the account side (buckets and their lifecycle configuration),
:class:`TagReader` the buckets' tags (read only for selectors that use ``BucketTags``),
:class:`DefinitionSource` the definition side (TOML files by key and ETag), and
:class:`EndpointStore` LakeCircle's own records under ``LCC_ENDPOINT``. The S3 adapter
(:mod:`lakecircle.adapters.s3`) implements all four over aioboto3; :mod:`lakecircle.testing`
implements them in memory for tests and benchmarks. :class:`AccountSource` is where the
managed accounts come from when one service serves many (``LCC_ACCOUNTS``), implemented by
:mod:`lakecircle.adapters.accounts` (an accounts file, or the organization). :class:`LeaseStore`
holds the replicas' leases (``lease/<account>.json``), written only on a condition; the lease
protocol itself is :mod:`lakecircle.core.lease`, which takes :class:`Versioned` values as they are.
:class:`EventQueue` is the optional events queue (``LCC_EVENTS_QUEUE``), implemented over SQS by
:mod:`lakecircle.adapters.sqs`, so that the engine's events loop never imports an SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from lakecircle.core.accounts import AccountList
from lakecircle.core.model import LifecycleConfig


@dataclass(frozen=True, slots=True)
class BucketRef:
    """A bucket of the account and the region its calls go to (None: not known yet)."""

    name: str
    region: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A definition file: its key, ETag and size, as ListObjectsV2 reports them."""

    key: str
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class Versioned:
    """An object's bytes and the ETag they were read with."""

    data: bytes
    etag: str


class LifecycleStore(Protocol):
    def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        """The account's buckets, a page at a time (an account may hold a million)."""
        ...

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        """The live configuration; no configuration at all reads as no rules."""
        ...

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        """Replace the whole configuration with ``config`` (one request)."""
        ...

    async def delete_lifecycle(self, bucket: BucketRef) -> None: ...


class TagReader(Protocol):
    """The account's bucket tags, apart from :class:`LifecycleStore`.

    Only selectors with ``BucketTags`` need them, and each read is a request per bucket
    with a permission of its own (``s3:GetBucketTagging``, which deployments without tag
    selectors leave out): a Protocol of its own, so that a store of buckets named exactly
    need not offer it and the engine asks for tags only where a selector uses them.
    """

    async def get_bucket_tags(self, bucket: BucketRef) -> dict[str, str]:
        """The bucket's tags, key to value; a bucket without tags (NoSuchTagSet) reads as ``{}``."""
        ...


class DefinitionSource(Protocol):
    @property
    def location(self) -> str:
        """Where the definitions are, for messages (``s3://bucket/prefix/definition/``)."""
        ...

    async def list_definitions(self) -> list[ObjectRef]:
        """Every ``*.toml`` definition with its ETag; raises DefinitionSourceError."""
        ...

    async def fetch(self, ref: ObjectRef) -> bytes:
        """The file's bytes; never called for a file over the size limit."""
        ...


class EndpointStore(Protocol):
    """LakeCircle's own objects under ``LCC_ENDPOINT`` (change records, current/ records, reports)."""

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...

    async def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def list_etags(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` with its ETag as the listing gives it (one ListObjectsV2 per
        1,000 keys: how the replicas watch each other's heartbeats without reading them)."""
        ...


class AccountSource(Protocol):
    """The accounts one service manages (``LCC_ACCOUNTS``): an accounts file, or an organization.

    Read again at every resync; the list may change between two reads.
    """

    @property
    def location(self) -> str:
        """Where the accounts come from, for messages (``organization``, ``s3://bucket/accounts.toml``)."""
        ...

    async def accounts(self, *, with_tags: bool = False) -> AccountList:
        """The accounts, with the problems found on the way (an accounts file's bad entries, a
        filter's OU the organization does not have). ``with_tags``: every account's tags are
        wanted (definitions use ``AccountTags``); an accounts file has them anyway, an
        organization reads them only then or when its filter needs them. Raises
        :class:`~lakecircle.errors.AccountSourceError` when the accounts cannot be read at all."""
        ...


class LeaseStore(Protocol):
    """Objects under LCC_ENDPOINT written only on a condition (S3 conditional writes)."""

    async def read(self, key: str) -> Versioned | None:
        """The object and its ETag; None when there is none."""
        ...

    async def create(self, key: str, data: bytes) -> str | None:
        """PutObject If-None-Match: *. The new ETag; None when an object is already there (412, or 409
        ConditionalRequestConflict)."""
        ...

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        """PutObject If-Match: etag. The new ETag; None when the object's ETag is no longer etag (412, 409)
        or it is gone (404)."""
        ...


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """One message received from the events queue: its id, the receipt that deletes it, its body."""

    id: str
    receipt: str
    body: str


@dataclass(frozen=True, slots=True)
class NotDeleted:
    """A message the queue did not delete, and why (SQS's code and message)."""

    message: QueueMessage
    reason: str


class EventQueue(Protocol):
    """The events queue: messages received by long poll and deleted once handled (SQS semantics:
    a message not deleted comes back after its visibility timeout)."""

    @property
    def location(self) -> str:
        """The queue, for messages (its URL)."""
        ...

    async def receive(self) -> list[QueueMessage]:
        """Up to a batch of messages, waiting (long poll) for the first; ``[]`` when none came.

        Raises :class:`~lakecircle.errors.EventQueueError` when the queue cannot be read."""
        ...

    async def delete(self, messages: Sequence[QueueMessage]) -> list[NotDeleted]:
        """Delete handled messages; returns those the queue did not delete, each with its reason
        (a request that failed as a whole leaves each of its messages there). Never raises for a
        message left: it comes back, and handling one twice is harmless."""
        ...
