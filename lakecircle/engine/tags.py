"""Bucket tags for the selectors that use ``BucketTags``, read once per resync (with continuous
verification: each bucket's again at its own verification).

A tag read is a request per bucket (GetBucketTagging), so the engine reads a bucket's tags
only when a selector with ``BucketTags`` matches its name, and keeps what it read between
cycles: a poll cycle (the definitions changed) reuses the tags, every other cycle (the
daemon's start, its resync, a signal, a command) reads them again, since a bucket's tags
change without anything LakeCircle can see. A read that failed is not kept: the next cycle
tries again.

A bucket whose tags could not be read has selectors whose choice is unknown: the cycle
leaves that bucket's selector-given rules as they are (ARCHITECTURE.md, "Safety", rule 6);
this module only says that the read failed.
"""

from __future__ import annotations

from collections.abc import Iterable

from lakecircle.core.report import Trigger
from lakecircle.errors import S3Error
from lakecircle.ports import BucketRef, TagReader

REUSED_ON = frozenset({Trigger.POLL})
"""Triggers whose cycles reuse the tags already read (every other trigger reads them again)."""


class TagUnread(Exception):
    """A bucket's tags could not be read (no reader wired, or S3 refused or failed)."""

    def __init__(self, bucket: str, cause: S3Error | None) -> None:
        self.bucket = bucket
        self.cause = cause
        reason = str(cause) if cause is not None else "no tag reader is configured"
        super().__init__(f"could not read the bucket's tags (GetBucketTagging) for its BucketTags selectors: {reason}")


class TagCache:
    """Tags by bucket, kept by the :class:`~lakecircle.engine.cycle.Reconciler` across cycles."""

    def __init__(self, reader: TagReader | None) -> None:
        self.reader = reader
        self._tags: dict[str, dict[str, str]] = {}

    def begin(self, trigger: str, only: Iterable[str] | None = None) -> None:
        """A cycle starts: forget what was read unless the trigger reuses it (a definition change);
        ``only``: the cycle verifies these buckets alone (continuous verification), whose tags alone
        are read again."""
        if trigger in REUSED_ON:
            return
        if only is not None:
            for name in only:
                self._tags.pop(name, None)
        else:
            self._tags.clear()

    async def get(self, ref: BucketRef) -> dict[str, str]:
        """The bucket's tags, read now or kept from earlier in this resync; raises :class:`TagUnread`."""
        found = self._tags.get(ref.name)
        if found is not None:
            return found
        if self.reader is None:
            raise TagUnread(ref.name, None)
        try:
            found = await self.reader.get_bucket_tags(ref)
        except S3Error as exc:
            raise TagUnread(ref.name, exc) from exc
        self._tags[ref.name] = found
        return found

    def discard(self, name: str) -> None:
        """Forget ``name``'s tags (the bucket is gone, or no longer verified)."""
        self._tags.pop(name, None)

    def known(self, name: str) -> dict[str, str] | None:
        """The bucket's tags read earlier in this resync, without a request; None when none were read."""
        return self._tags.get(name)

    def __len__(self) -> int:
        return len(self._tags)
