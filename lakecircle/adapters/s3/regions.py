"""Where each of an account's buckets lives: its region as ListBuckets gave it, else found once.

Each bucket's calls go to its own region's client (:mod:`lakecircle.adapters.s3.adapter`).
ListBuckets names most regions (BucketRegion); for a bucket listed without one, HeadBucket
answers, and S3 names the region in a header even when it refuses the HEAD (403) or
redirects it (301); GetBucketLocation decides when nothing else did. A region found is
cached for the adapter's life, and concurrent first uses of one bucket ask once.

A directory bucket's region is read from its zone ID, never asked: HeadBucket would need an
S3 Express session and GetBucketLocation does not serve directory buckets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from lakecircle import errors
from lakecircle.core.directory import directory_region, is_directory_bucket
from lakecircle.ports import BucketRef

Call = Callable[..., Awaitable[dict[str, Any]]]
"""An adapter's :meth:`~lakecircle.adapters.s3.transport.S3Transport.call`."""


class BucketRegions:
    """The regions of ``account``'s buckets found so far, asked through ``call``; ``default`` is
    the adapter's region, a directory bucket's when its zone ID names none."""

    def __init__(self, call: Call, account: str, default: str = "us-east-1") -> None:
        self.call = call
        """Named ``call`` as the adapter's is: tests/deploy reads the operations sent through it."""
        self._account = account
        self._default = default
        self._found: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def found(self, name: str) -> str | None:
        """The region of the bucket ``name`` when it was found already, else None."""
        return self._found.get(name)

    async def of(self, bucket: BucketRef) -> str:
        """The bucket's region: as listed, or found once (HeadBucket, GetBucketLocation) and cached."""
        if bucket.region:
            return bucket.region
        name = bucket.name
        if is_directory_bucket(name):
            return directory_region(name) or self._default
        cached = self._found.get(name)
        if cached:
            return cached
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            async with lock:
                cached = self._found.get(name)
                if cached:
                    return cached
                region = await self._resolve(name)
                self._found[name] = region
                return region
        finally:
            self._locks.pop(name, None)

    async def _resolve(self, name: str) -> str:
        params = {"Bucket": name, "ExpectedBucketOwner": self._account}
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


def region_from_location(constraint: str | None) -> str:
    """GetBucketLocation's LocationConstraint as a region name (None or "" is us-east-1)."""
    if not constraint:
        return "us-east-1"
    if constraint == "EU":
        return "eu-west-1"
    return constraint


def _region_header(response: Mapping[str, Any]) -> str | None:
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    headers: Mapping[str, Any] = meta.get("HTTPHeaders") or {}
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None
