"""An in-memory account and endpoint, for tests and benchmarks of the reconcile logic.

It implements the same Protocols as the S3 adapter (:mod:`lakecircle.ports`), bucket
tags and the leases' conditional writes included, counts calls by S3 operation name, and
can be told to fail a bucket's calls with a given error, or a lease call in the ways a
network fails (:class:`LeaseFault`), so the reconcile, lease and daemon code can be
exercised in milliseconds.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

import anyio
import anyio.lowlevel

from lakecircle.core.model import LifecycleConfig
from lakecircle.errors import ConnectionFailed, DefinitionSourceError, NoSuchBucket, S3Error
from lakecircle.ports import BucketRef, ObjectRef, Versioned

FailureFactory = Callable[[str, str], S3Error]
"""Builds the error for (operation, bucket)."""


class LeaseFault(StrEnum):
    """How a lease call (``read``, ``create``, ``replace``) misbehaves, as :meth:`MemoryS3.lease_fault` sets."""

    FAIL = "fail"
    """Raises ConnectionFailed without doing anything."""
    LOSE_ANSWER = "lose_answer"
    """Does what it was asked, then raises ConnectionFailed (the answer was lost)."""
    HANG = "hang"
    """Never answers (the caller's timeout ends it); nothing is done."""


def etag_of(data: bytes) -> str:
    """S3's ETag of a plain PutObject: the MD5 of the bytes, in double quotes."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


@dataclass
class MemoryS3:
    """Buckets with lifecycle configurations, plus an object store for the endpoint."""

    lifecycles: dict[str, LifecycleConfig] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    """Bucket -> its tags (a bucket not here has none); set them in tests."""
    objects: dict[str, bytes] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, str], FailureFactory] = field(default_factory=dict)
    """(operation, bucket) -> error factory; bucket "*" matches every bucket."""
    page_size: int = 1000
    definition_prefix: str = "definition/"
    list_fails: S3Error | None = None
    stores: Callable[[LifecycleConfig], LifecycleConfig] | None = None
    """What the server keeps of a PUT (a stand-in for servers that drop fields)."""
    lease_faults: dict[tuple[str, str], LeaseFault] = field(default_factory=dict)
    """(lease call, key) -> how it misbehaves; key "*" matches every key (:meth:`lease_fault`)."""

    # -- arranging state ----------------------------------------------------------------

    def add_bucket(
        self,
        name: str,
        config: LifecycleConfig | None = None,
        region: str = "us-east-1",
        tags: dict[str, str] | None = None,
    ) -> None:
        self.lifecycles[name] = config or LifecycleConfig()
        self.regions[name] = region
        if tags:
            self.tags[name] = dict(tags)

    def fail(self, operation: str, bucket: str, factory: FailureFactory) -> None:
        self.failures[(operation, bucket)] = factory

    def lease_fault(self, call: str, fault: LeaseFault | None, key: str = "*") -> None:
        """Make the lease call ``call`` (``read``, ``create``, ``replace``) on ``key`` misbehave; None: mend it."""
        if fault is None:
            self.lease_faults.pop((call, key), None)
        else:
            self.lease_faults[(call, key)] = fault

    def _call(self, operation: str, bucket: str | None = None) -> None:
        self.calls[operation] += 1
        if bucket is not None:
            factory = self.failures.get((operation, bucket)) or self.failures.get((operation, "*"))
            if factory is not None:
                raise factory(operation, bucket)
            if bucket not in self.lifecycles:
                raise NoSuchBucket("The specified bucket does not exist", operation=operation, bucket=bucket)

    # -- LifecycleStore -------------------------------------------------------------------

    async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        names = sorted(self.lifecycles)
        for start in range(0, max(len(names), 1), self.page_size):
            self._call("ListBuckets")
            factory = self.failures.get(("ListBuckets", "*"))  # fail("ListBuckets", "*", ...): the listing fails
            if factory is not None:
                raise factory("ListBuckets", "*")
            yield [BucketRef(n, self.regions.get(n)) for n in names[start : start + self.page_size]]

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        self._call("GetBucketLifecycleConfiguration", bucket.name)
        return self.lifecycles[bucket.name]

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        self._call("PutBucketLifecycleConfiguration", bucket.name)
        self.lifecycles[bucket.name] = config if self.stores is None else self.stores(config)

    async def delete_lifecycle(self, bucket: BucketRef) -> None:
        self._call("DeleteBucketLifecycle", bucket.name)
        self.lifecycles[bucket.name] = LifecycleConfig()

    # -- TagReader --------------------------------------------------------------------------

    async def get_bucket_tags(self, bucket: BucketRef) -> dict[str, str]:
        self._call("GetBucketTagging", bucket.name)
        return dict(self.tags.get(bucket.name, {}))

    # -- DefinitionSource -----------------------------------------------------------------

    @property
    def location(self) -> str:
        return f"memory://{self.definition_prefix}"

    async def list_definitions(self) -> list[ObjectRef]:
        self.calls["ListObjectsV2"] += 1
        if self.list_fails is not None:
            raise DefinitionSourceError(f"cannot list {self.location}: {self.list_fails}") from self.list_fails
        return [
            ObjectRef(key, hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data))
            for key, data in sorted(self.objects.items())
            if key.startswith(self.definition_prefix) and key.endswith(".toml")
        ]

    async def fetch(self, ref: ObjectRef) -> bytes:
        self._call("GetObject")
        return self.objects[ref.key]

    # -- EndpointStore --------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        self._call("PutObject")
        self.objects[key] = data

    async def get_bytes(self, key: str) -> bytes | None:
        self._call("GetObject")
        return self.objects.get(key)

    async def list_keys(self, prefix: str) -> list[str]:
        self.calls["ListObjectsV2"] += 1
        return sorted(k for k in self.objects if k.startswith(prefix))

    async def list_etags(self, prefix: str) -> dict[str, str]:
        self.calls["ListObjectsV2"] += 1
        return {k: etag_of(data) for k, data in sorted(self.objects.items()) if k.startswith(prefix)}

    # -- LeaseStore -----------------------------------------------------------------------

    async def read(self, key: str) -> Versioned | None:
        async with self._lease_call("read", "GetObject", key):
            data = self.objects.get(key)
            return None if data is None else Versioned(data, etag_of(data))

    async def create(self, key: str, data: bytes) -> str | None:
        async with self._lease_call("create", "PutObject", key):
            if key in self.objects:
                return None
            self.objects[key] = data
            return etag_of(data)

    async def replace(self, key: str, data: bytes, etag: str) -> str | None:
        async with self._lease_call("replace", "PutObject", key):
            current = self.objects.get(key)
            if current is None or etag_of(current) != etag:
                return None
            self.objects[key] = data
            return etag_of(data)

    @asynccontextmanager
    async def _lease_call(self, call: str, operation: str, key: str) -> AsyncIterator[None]:
        """Count the call and apply its fault; the body (check and write, with no await) is atomic."""
        self.calls[operation] += 1
        fault = self.lease_faults.get((call, key)) or self.lease_faults.get((call, "*"))
        await anyio.lowlevel.checkpoint()
        if fault is LeaseFault.HANG:
            await anyio.sleep_forever()
        if fault is LeaseFault.FAIL:
            raise ConnectionFailed("the connection was reset", operation=operation)
        yield
        if fault is LeaseFault.LOSE_ANSWER:
            raise ConnectionFailed("the answer was lost", operation=operation)
