"""The account's buckets, their lifecycle configurations and the endpoint's objects, over S3.

:class:`S3Adapter` implements :class:`~lakecircle.ports.LifecycleStore` on the requests of
:class:`~lakecircle.adapters.s3.transport.S3Transport`, and gives the stores of
:mod:`lakecircle.adapters.s3.stores` the endpoint's objects. Each bucket's calls go to its
own region's client (:mod:`lakecircle.adapters.s3.regions` finds it), and every bucket-level
call carries ``ExpectedBucketOwner``, so a bucket name taken over by another account is never
read or written (ARCHITECTURE.md, "Safety"); directory buckets, listed after the general
purpose ones (:mod:`lakecircle.adapters.s3.directory`), are the exception: they do not take it.
It is the :class:`~lakecircle.ports.TagReader` too: bucket tags go the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import ValidationError

from lakecircle import errors
from lakecircle.adapters.retry import RetryOn
from lakecircle.adapters.s3.directory import directory_buckets, directory_config, owner_of
from lakecircle.adapters.s3.errors import followed_token, request_id_of, unreadable_lifecycle
from lakecircle.adapters.s3.regions import BucketRegions
from lakecircle.adapters.s3.tag_values import with_empty_values
from lakecircle.adapters.s3.transport import OBJECTS, S3Transport, as_is
from lakecircle.adapters.s3.unknown_fields import UNKNOWN_FIELDS, unknown_keys
from lakecircle.core.model import LifecycleConfig, config_from_response, config_to_request
from lakecircle.ports import BucketRef

DEFAULT_PAGE_SIZE = 10_000
"""ListBuckets page size (MaxBuckets): S3's maximum. Each page is a round trip the readers
wait out when they catch up with the listing; 5,000 buckets cost one request, not five."""

Condition = Mapping[str, str]
"""A conditional write's parameter: ``{"IfNoneMatch": "*"}`` or ``{"IfMatch": etag}``."""


class S3Adapter(S3Transport):
    """The account's buckets and their lifecycle configurations, over aioboto3.

    Use it as ``async with S3Adapter(...) as s3:``. ``account`` is the account whose
    buckets it manages (``ExpectedBucketOwner``), checked against the credentials by
    :meth:`check_account` unless ``verify_account`` is off; ``page_size`` is ListBuckets'
    page. Every other option is :class:`~lakecircle.adapters.s3.transport.S3Transport`'s:
    clients, timeouts, retries, the throttle gate, the observer, clock and sleep.
    """

    def __init__(
        self, *, account: str, verify_account: bool = True, page_size: int = DEFAULT_PAGE_SIZE, **options: Any
    ) -> None:
        if not 1 <= page_size <= 10_000:
            raise ValueError(f"page_size must be between 1 and 10,000, not {page_size}")
        super().__init__(**options)
        self.account = account
        self.verify_account = verify_account
        self.page_size = page_size
        self.directory_buckets: bool | None = None
        """Whether listings ask ListDirectoryBuckets too; None: when the endpoint is AWS's own."""
        self._regions = BucketRegions(self.call, account, self.region)

    def beside(self, *, connections: int) -> S3Adapter:
        """An adapter for requests that must never wait behind this one's (the leases'):
        the same account (``ExpectedBucketOwner``, checked through this one) and what
        :meth:`~lakecircle.adapters.s3.transport.S3Transport.options_beside` keeps, with
        clients, a gate and no limits of its own. Use it with ``async with`` as any adapter."""
        return S3Adapter(account=self.account, verify_account=False, **self.options_beside(connections=connections))

    # -- account ----------------------------------------------------------------------------

    async def check_account(self) -> str | None:
        """The caller's ARN, after checking that the credentials belong to ``account``; None without
        asking STS when ``verify_account`` is off (the caller then says the account was not verified)."""
        if not self.verify_account:
            return None
        response = await self.call("GetCallerIdentity", service="sts")
        actual = str(response.get("Account") or "")
        arn = response.get("Arn")
        if actual != self.account:
            raise errors.AccountMismatch(self.account, actual or "(none)", arn)
        return str(arn) if arn else None

    # -- LifecycleStore ---------------------------------------------------------------------

    async def iter_buckets(self, prefix: str | None = None) -> AsyncIterator[list[BucketRef]]:
        """The account's buckets (those whose names start with ``prefix``, when given), one
        page at a time: ListBuckets' pages, then ListDirectoryBuckets' in the adapter's region."""
        async for page in self._general_buckets(prefix):
            yield page
        async for page in directory_buckets(self, prefix=prefix):
            yield page

    async def _general_buckets(self, prefix: str | None) -> AsyncIterator[list[BucketRef]]:
        """ListBuckets' pages. Stops when no ContinuationToken comes back (some S3-compatible
        servers never send one). A bucket listed without BucketRegion gets its region on first use."""
        token: str | None = None
        used: set[str] = set()
        while True:
            params: dict[str, Any] = {"MaxBuckets": self.page_size}
            if prefix:
                params["Prefix"] = prefix
            if token:
                params["ContinuationToken"] = token
            response = await self.call("ListBuckets", **params)
            yield [self._bucket_ref(entry, response) for entry in response.get("Buckets") or ()]
            token = followed_token(response, token, used, operation="ListBuckets")
            if token is None:
                return

    async def find_bucket(self, name: str) -> BucketRef | None:
        """The bucket ``name`` with its region when this account holds it, else None.

        ListBuckets lists the caller's own buckets only, and its ``Prefix`` makes it one
        request whatever the account's size (``lakecircle explain`` and ``rollback`` find
        which of many accounts holds a bucket so). A server that ignores ``Prefix`` lists
        everything, and the answer is the same.
        """
        found = None
        async for page in self.iter_buckets(prefix=name):  # to its end: a generator left open is finalized late
            found = next((ref for ref in page if ref.name == name), found)
        return found

    def _bucket_ref(self, entry: Mapping[str, Any], response: Mapping[str, Any]) -> BucketRef:
        name = entry.get("Name")
        if not isinstance(name, str) or not name:
            raise errors.MalformedResponse(
                f"a bucket entry has no name: {entry!r}", operation="ListBuckets", request_id=request_id_of(response)
            )
        region = entry.get("BucketRegion") or self._regions.found(name)
        return BucketRef(name, region)

    async def region_of(self, bucket: BucketRef) -> str:
        """The bucket's region: as listed, or found once (HeadBucket, GetBucketLocation) and cached."""
        return await self._regions.of(bucket)

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        """The live configuration; NoSuchLifecycleConfiguration reads as no rules.

        A rule that holds a field LakeCircle does not know, whether botocore knows it
        (:data:`~lakecircle.adapters.s3.unknown_fields.UNKNOWN_FIELDS`) or not, raises
        :class:`~lakecircle.errors.UnsupportedConfiguration` naming each such field."""
        region = await self.region_of(bucket)
        try:
            response = await self.call(
                "GetBucketLifecycleConfiguration", region=region, Bucket=bucket.name, **self._owner(bucket.name)
            )
        except errors.NotFound:
            return LifecycleConfig()
        return directory_config(bucket.name, lifecycle_of(response, bucket=bucket.name))

    async def put_lifecycle(self, bucket: BucketRef, config: LifecycleConfig) -> None:
        """Replace the whole configuration (TransitionDefaultMinimumObjectSize included)."""
        region = await self.region_of(bucket)
        await self.call(
            "PutBucketLifecycleConfiguration",
            region=region,
            Bucket=bucket.name,
            **self._owner(bucket.name),
            **config_to_request(directory_config(bucket.name, config)),
        )

    async def delete_lifecycle(self, bucket: BucketRef) -> None:
        region = await self.region_of(bucket)
        await self.call("DeleteBucketLifecycle", region=region, Bucket=bucket.name, **self._owner(bucket.name))

    # -- TagReader ---------------------------------------------------------------------------

    async def get_bucket_tags(self, bucket: BucketRef) -> dict[str, str]:
        """The bucket's tags (GetBucketTagging); NoSuchTagSet, a bucket without tags, reads as ``{}``.

        Called only for buckets a selector with ``BucketTags`` could select: the request
        goes the way of every bucket call (its region, ``ExpectedBucketOwner``, retries, the
        throttle gate, the observer). An answer whose TagSet cannot be read as key and value
        pairs is a :class:`~lakecircle.errors.MalformedResponse` naming the bucket, never
        fewer tags: a tag read as missing would have a selector drop the bucket.
        """
        region = await self.region_of(bucket)
        try:
            response = await self.call(
                "GetBucketTagging", region=region, Bucket=bucket.name, **self._owner(bucket.name)
            )
        except errors.NotFound:
            return {}
        return tags_from_response(response, bucket=bucket.name)

    def _owner(self, bucket: str) -> dict[str, str]:
        """``ExpectedBucketOwner`` for a call on ``bucket`` (:func:`~lakecircle.adapters.s3.directory.owner_of`)."""
        return owner_of(bucket, self.account)

    # -- objects (the endpoint bucket, in the adapter's region) -------------------------

    async def iter_objects(self, bucket: str, prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
        """ListObjectsV2 over ``prefix``, one page at a time, to the listing's end.

        A page that says more follows (IsTruncated) but gives no NextContinuationToken, or
        gives a token already used, ends the listing early or never; a page that carries
        fewer or more keys than its KeyCount says lost some on the way. Each is a
        :class:`~lakecircle.errors.MalformedResponse`, never a shorter listing.
        """
        token: str | None = None
        used: set[str] = set()
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, **self._owner(bucket)}
            if token:
                params["ContinuationToken"] = token
            response = await self.call("ListObjectsV2", lane=OBJECTS, **params)
            contents = list(response.get("Contents") or ())
            said = response.get("KeyCount")
            carried = len(contents) + len(response.get("CommonPrefixes") or ())
            if said is not None and said != carried:
                raise errors.MalformedResponse(
                    f"a page says it holds {said} key(s) (KeyCount) but carries {carried},"
                    f" so the listing of {prefix or '/'} is not whole",
                    operation="ListObjectsV2",
                    bucket=bucket,
                    request_id=request_id_of(response),
                )
            yield contents
            if not response.get("IsTruncated"):
                return
            next_token = response.get("NextContinuationToken")
            if not next_token:
                problem = "a page says more objects follow (IsTruncated) but gives no NextContinuationToken"
            elif next_token in used:
                problem = "a NextContinuationToken already used came back; the listing would never end"
            else:
                used.add(next_token)
                token = next_token
                continue
            raise errors.MalformedResponse(
                f"{problem}, so the listing of {prefix or '/'} cannot be followed to its end",
                operation="ListObjectsV2",
                bucket=bucket,
                request_id=request_id_of(response),
            )

    async def read_object(self, bucket: str, key: str, *, limit: int | None = None) -> bytes:
        """The object's bytes, at most ``limit`` of them (the rest is never downloaded)."""
        data, _ = await self.read_object_etag(bucket, key, limit=limit)
        return data

    async def read_object_etag(self, bucket: str, key: str, *, limit: int | None = None) -> tuple[bytes, str]:
        """The object's bytes (at most ``limit``) and its ETag exactly as S3 sent it, quotes included
        ("" when the answer has none), for an ``If-Match`` that must hand it back unchanged.

        A body that does not match its ETag is a failed attempt, retried (see :func:`_check_md5`);
        one shorter than its Content-Length botocore's body refuses, also retried.
        """

        async def read_body(response: dict[str, Any]) -> tuple[bytes, str]:
            # Inside the attempt: a connection dropped mid-body is retried like any other.
            body = response["Body"]
            async with body:
                data = await _read_at_most(body, limit)
            if limit is None or len(data) < limit:  # the whole body
                _check_md5(response, data, bucket=bucket, key=key)
            return data, str(response.get("ETag") or "")

        params = {"Bucket": bucket, "Key": key, **self._owner(bucket)}
        return await self._retried("GetObject", params, read_body, lane=OBJECTS)

    async def write_object(
        self, bucket: str, key: str, data: bytes, content_type: str, *, condition: Condition | None = None
    ) -> str:
        """PutObject; the new ETag as S3 sent it ("" when the answer has none).

        With a ``condition`` (``{"IfNoneMatch": "*"}`` or ``{"IfMatch": etag}``) a refusal on it
        raises :class:`~lakecircle.errors.ConditionFailed`, and only throttling is retried: it
        says the write was not applied. After a timeout, a dropped connection or a 5xx it may
        have been, and a retry would then be refused on its own write's new ETag, a lost race
        that never was; so those are raised at once (the outcome is unknown: read again).
        """
        params = {"Bucket": bucket, "Key": key, "Body": data, "ContentType": content_type, **self._owner(bucket)}
        retry_on: RetryOn = (errors.TransientError,)
        if condition:
            params.update(condition)
            retry_on = (errors.Throttled,)
        response = await self._retried("PutObject", params, as_is, lane=OBJECTS, retry_on=retry_on)
        return str(response.get("ETag") or "")


def lifecycle_of(response: dict[str, Any], *, bucket: str) -> LifecycleConfig:
    """A GetBucketLifecycleConfiguration answer as a configuration; an answer with a field
    LakeCircle does not know raises :class:`~lakecircle.errors.UnsupportedConfiguration`, one
    the model cannot read otherwise :class:`~lakecircle.errors.MalformedResponse`."""
    unknown = response.pop(UNKNOWN_FIELDS, None)
    if unknown:
        raise errors.UnsupportedConfiguration(unknown, bucket=bucket, request_id=request_id_of(response))
    try:
        return config_from_response(with_empty_values(response))
    except ValidationError as exc:
        keys = unknown_keys(response, exc)
        if keys is None:
            raise unreadable_lifecycle(response, exc, bucket=bucket) from exc
        raise errors.UnsupportedConfiguration(keys, bucket=bucket, request_id=request_id_of(response)) from exc
    except (TypeError, ValueError) as exc:
        raise unreadable_lifecycle(response, exc, bucket=bucket) from exc


def tags_from_response(response: Mapping[str, Any], *, bucket: str) -> dict[str, str]:
    """GetBucketTagging's TagSet as key to value, or the MalformedResponse that names what is wrong.

    S3 sends every tag with a Key and a Value (possibly empty) and never one key twice; an
    entry without a Key, or a key given two values, says the answer was not S3's to trust.
    An entry without a Value (some S3-compatible servers drop empty elements) is the empty value.
    """
    tags: dict[str, str] = {}
    entries = response.get("TagSet") or []
    if not isinstance(entries, list):
        raise _unreadable_tags("its TagSet is not a list of tags", response, bucket=bucket)
    for index, entry in enumerate(entries):
        key = entry.get("Key") if isinstance(entry, Mapping) else None
        value = entry.get("Value", "") if isinstance(entry, Mapping) else ""
        if not isinstance(key, str) or not key:
            problem = f"tag #{index + 1} of its TagSet has no Key"
        elif not isinstance(value, str):
            problem = f"the value of tag {key} is not text"
        elif tags.get(key, value) != value:
            problem = f"tag {key} comes twice, with different values"
        else:
            tags[key] = value
            continue
        raise _unreadable_tags(problem, response, bucket=bucket)
    return tags


def _unreadable_tags(problem: str, response: Mapping[str, Any], *, bucket: str) -> errors.MalformedResponse:
    return errors.MalformedResponse(
        f"the bucket's tags could not be read: {problem}",
        operation="GetBucketTagging",
        bucket=bucket,
        request_id=request_id_of(response),
    )


async def _read_at_most(body: Any, limit: int | None) -> bytes:
    """Read a streaming body to its end, or to ``limit`` bytes, whichever comes first."""
    if limit is None:
        data: bytes = await body.read()
        return data
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk: bytes = await body.read(limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")


def _check_md5(response: Mapping[str, Any], data: bytes, *, bucket: str, key: str) -> None:
    """Refuse a body whose MD5 is not its ETag, where the ETag is the body's MD5.

    S3's ETag is the MD5 of the object for a single-part upload stored unencrypted or with
    SSE-S3; not for a multipart upload (``<hex>-<parts>``) nor under SSE-KMS or SSE-C.
    botocore checks no ETag; it checks a body against an ``x-amz-checksum-*`` header, but
    only for objects uploaded with such a checksum and only while response checksum
    validation is on (``LCC_CONTENT_MD5`` turns it to "when required"). This check covers
    every other definition file: a body replaced or garbled on the way (a proxy, a cache)
    fails the attempt, which is retried, and is never parsed as the file.
    """
    etag = str(response.get("ETag") or "").strip('"').lower()
    encryption = str(response.get("ServerSideEncryption") or "AES256")
    if not _PLAIN_MD5.fullmatch(etag) or encryption != "AES256" or response.get("SSECustomerAlgorithm"):
        return
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if digest != etag:
        raise errors.ConnectionFailed(
            f"the body of {key} ({len(data):,} bytes) does not match its ETag {etag} (its MD5 is {digest});"
            " it was garbled or replaced on the way",
            operation="GetObject",
            bucket=bucket,
            request_id=request_id_of(response),
        )
