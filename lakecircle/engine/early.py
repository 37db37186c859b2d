"""Read buckets while the definitions are still loading: the one-shot path's overlap (issue 18).

A command (``plan``, ``sync``) reads every definition file before it knows the picture,
and only then used to list and read the account's buckets: two phases in a row, where the
second is mostly waiting on S3. :class:`EarlyReads` runs beside the loader. It lists the
account's buckets, and as each file is parsed (:meth:`note`) the buckets it names by
``BucketName`` are read at once when they are listed (``GetBucketLifecycleConfiguration``),
by ``concurrency`` readers. Nothing is decided early: the cycle plans every bucket only
once the picture is complete, as before, reading through :meth:`iter_buckets` (the pages
already listed, then the rest of the listing) and :meth:`get_lifecycle` (the read already
made or under way, else a new one). So the partial-picture guard keeps its meaning
(ARCHITECTURE.md, Safety, rule 6): no rule is removed, nor anything else decided, from a
picture before every file was read and parsed.

Only buckets a parsed file names exactly are read early: a selector's buckets, and any
bucket no file named, wait for the whole picture, so a bucket nothing selects is never
read (Safety, rule 1). A bucket read early that the whole picture leaves out (its
definition invalid) costs that read and nothing else. What is held is bounded: at most
``limit`` configurations read ahead, and listing pauses once ``hold`` buckets wait for the
picture; past either, the rest waits for the picture as before.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from lakecircle.core.definitions import FileBrief
from lakecircle.core.model import LifecycleConfig
from lakecircle.errors import S3Error
from lakecircle.ports import BucketRef, LifecycleStore

HOLD = 10_000
"""Listed buckets held while the picture is incomplete before listing pauses (one S3 page)."""

LOAD_SHARE = 0.35
"""The share of the time the definition loader's parsing takes while buckets are read early.
Bucket reads at concurrency 32 and 50 ms keep the event loop about 60% busy; parsing 5,000
files (1 s of CPU) at full speed took the rest and more, and the reads ran at a third of
their rate until it ended. At this share, files are still parsed three times faster than
the reads need their names."""


class Stopping(Protocol):
    @property
    def stopping(self) -> bool:
        """No new bucket work (a shutdown, a closed fence)."""
        ...


class BucketReads(Protocol):
    """What a cycle reads buckets through: the store itself, or :class:`EarlyReads` over it."""

    def iter_buckets(self) -> AsyncIterator[list[BucketRef]]: ...

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig: ...


@dataclass
class _Read:
    """One bucket's early read: under way until ``done`` is set."""

    done: anyio.Event = field(default_factory=anyio.Event)
    value: LifecycleConfig | None = None
    error: Exception | None = None


class EarlyReads:
    """Bucket reads begun while the definitions load; the cycle's view of the store afterwards."""

    def __init__(
        self,
        store: LifecycleStore,
        concurrency: int,
        limit: int,
        wanted: Callable[[str], bool],
        cycle: Stopping,
        *,
        hold: int = HOLD,
    ) -> None:
        self.store = store
        self.concurrency = concurrency
        self.limit = limit
        """Early reads at most (each holds a configuration until the cycle plans its bucket); 0: none."""
        self.hold = max(hold, limit)
        self.wanted = wanted
        self.cycle = cycle
        self.started = 0
        """Early reads begun (for tests and logs)."""
        self._named: set[str] = set()
        self._unknown: dict[str, BucketRef] = {}
        """Listed buckets no parsed file has named yet."""
        self._pages: list[list[BucketRef]] = []
        self._listing: AsyncIterator[list[BucketRef]] | None = None
        self._exhausted = False
        self._error: S3Error | None = None
        self._listed = anyio.Event()
        self._complete = False
        self._taken: set[str] = set()
        """Buckets the cycle read itself: their early reads, still queued, never begin."""
        self._reads: dict[str, _Read] = {}
        self._send: MemoryObjectSendStream[BucketRef] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Listing and reading in the background while the caller loads the definitions and
        then reconciles; what is left of it (reads no bucket needed) is cancelled on the way out."""
        if self.limit <= 0:
            yield
            return
        async with anyio.create_task_group() as tasks:
            self.start(tasks)
            try:
                yield
            finally:
                self.complete()
                tasks.cancel_scope.cancel()
        await self.close()

    def start(self, tasks: TaskGroup) -> None:
        self._send, receive = anyio.create_memory_object_stream[BucketRef](math.inf)
        tasks.start_soon(self._list)
        for _ in range(self.concurrency):
            tasks.start_soon(self._read, receive.clone())
        receive.close()

    @property
    def share(self) -> float:
        """The share of the time the loader may parse while this reads (1: no early reads)."""
        return LOAD_SHARE if self.limit > 0 else 1.0

    def note(self, brief: FileBrief) -> None:
        """A file was parsed (or taken from the cache): the buckets it names may be read now."""
        if self.limit <= 0 or self._complete:
            return
        for bucket in brief.buckets:
            name = bucket.name
            if name in self._named or not self.wanted(name):
                continue
            self._named.add(name)
            ref = self._unknown.pop(name, None)
            if ref is not None:
                self._enqueue(ref)

    def complete(self) -> BucketReads:
        """The picture is whole: no bucket is queued for an early read any more; those queued go
        on (the cycle plans the buckets read already meanwhile, so the reads keep their pace), but
        for a bucket the cycle reads first. Returns what the cycle reads through: this view of the
        store (the store itself when there were no early reads)."""
        self._complete = True
        self._unknown.clear()
        self._named.clear()
        if self._send is not None:
            self._send.close()
        return self if self.limit > 0 else self.store

    # -- the cycle's view ---------------------------------------------------------------

    async def iter_buckets(self) -> AsyncIterator[list[BucketRef]]:
        """The pages listed early, then the rest of the listing."""
        await self._listed.wait()
        pages, self._pages = self._pages, []
        for page in pages:
            yield page
        if self._error is not None:
            raise self._error
        if self._listing is not None and not self._exhausted:
            async for page in self._listing:
                yield page

    async def get_lifecycle(self, bucket: BucketRef) -> LifecycleConfig:
        read = self._reads.pop(bucket.name, None)
        if read is None:
            self._taken.add(bucket.name)  # read here: an early read queued for it never begins
            return await self.store.get_lifecycle(bucket)
        await read.done.wait()
        if read.error is not None:
            raise read.error
        assert read.value is not None  # noqa: S101 -- set with done unless error is
        return read.value

    async def close(self) -> None:
        """Close what is left of the listing (a cycle that stopped before its end)."""
        aclose = getattr(self._listing, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    # -- the background -----------------------------------------------------------------

    def _enqueue(self, ref: BucketRef) -> None:
        if self._send is None or self._complete or self.started >= self.limit or self.cycle.stopping:
            return
        self.started += 1
        self._send.send_nowait(ref)

    async def _list(self) -> None:
        listing = self.store.iter_buckets()
        self._listing = listing
        held = 0
        try:
            while not self._complete and held < self.hold and not self.cycle.stopping:
                try:
                    page = await anext(listing)
                except StopAsyncIteration:
                    self._exhausted = True
                    break
                self._pages.append(page)
                held += len(page)
                for ref in page:
                    if ref.name in self._named:
                        self._enqueue(ref)
                    elif not self._complete:
                        self._unknown[ref.name] = ref
        except S3Error as exc:
            self._error = exc  # the cycle's listing raises it, where a failed listing is handled
        finally:
            self._listed.set()

    async def _read(self, refs: MemoryObjectReceiveStream[BucketRef]) -> None:
        async with refs:
            async for ref in refs:
                if self.cycle.stopping or ref.name in self._taken:
                    continue  # not begun: the cycle reads it itself (or has)
                read = self._reads[ref.name] = _Read()
                try:
                    read.value = await self.store.get_lifecycle(ref)
                except Exception as exc:  # noqa: BLE001 -- handed to the cycle, which reports it
                    read.error = exc
                finally:
                    read.done.set()
