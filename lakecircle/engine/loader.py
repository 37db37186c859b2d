"""Load the definitions of a cycle from a source, fetching only what changed.

Files are cached in brief by (key, ETag): a file whose ETag did not change since the last
cycle is neither downloaded nor parsed again. A file over the size limit is refused by
its listed size, unread. A file that cannot be fetched makes the picture partial.

Two kinds of unreadable file, told apart because they heal differently. A file whose
download failed (a dropped connection, a refused GET, a body that does not match its
ETag) may read at the next try: it is not cached, :attr:`DefinitionLoader.failed` names
it, and the daemon's next poll fetches it again (:meth:`DefinitionLoader.refetch_failed`).
A file that was read and is unreadable by its content (empty, not UTF-8, not TOML, too
large) stays so until its ETag changes: it is cached like any other file, and keeps the
picture partial in every cycle without being downloaded again.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import anyio.to_thread

from lakecircle.core.definitions import Definitions, FileBrief, definitions_from_briefs
from lakecircle.core.parse import MAX_FILE_BYTES, parse_file
from lakecircle.core.problems import Problem
from lakecircle.errors import DefinitionSourceError, S3Error
from lakecircle.ports import DefinitionSource, ObjectRef


@dataclass(frozen=True, slots=True)
class Loaded:
    definitions: Definitions
    fingerprint: bytes
    """A digest of the listed (key, ETag) pairs: equal fingerprints mean the definitions
    did not change (:func:`listing_fingerprint`)."""
    fetched: int
    """Files downloaded this time (the others came from the cache)."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector around a bulk parse.

    Parsing thousands of files allocates millions of small objects that all stay alive;
    on Python 3.11 the collector traverses the growing heap again and again, which cost
    about a third of the planning benchmark's parse time. Nothing parsed here forms
    reference cycles worth collecting, so the pause frees nothing late.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class DefinitionLoader:
    """Loads the definitions of each cycle, keeping every file in brief between cycles.

    Changed files are fetched by ``concurrency`` workers and parsed as they arrive, so no
    more than that many files' bytes are held at once; the cache keeps each file's
    :class:`~lakecircle.core.definitions.FileBrief` (its compressed bytes, its buckets' digests
    and problems), never its models.
    """

    def __init__(
        self, source: DefinitionSource, *, concurrency: int = 16, storage_classes: Collection[str] = ()
    ) -> None:
        self.source = source
        self.concurrency = concurrency
        self.storage_classes = frozenset(storage_classes)
        """The transition targets the server has beside S3's own (``LCC_STORAGE_CLASSES``)."""
        self._cache: dict[str, FileBrief] = {}
        self._last: Loaded | None = None
        self._failed: dict[str, FileBrief] = {}
        self._pacing = _Pacing()

    @property
    def failed(self) -> dict[str, str]:
        """The files whose download failed in the last load (or refetch), by key: their ETag."""
        return {key: brief.etag for key, brief in self._failed.items()}

    async def list_refs(self) -> list[ObjectRef]:
        """List the definitions (raises DefinitionSourceError when that is impossible)."""
        return await self.source.list_definitions()

    async def load(
        self,
        refs: list[ObjectRef] | None = None,
        on_file: Callable[[FileBrief], None] | None = None,
        *,
        share: float = 1.0,
    ) -> Loaded:
        """The definitions of ``refs`` (else of a new listing); ``on_file`` is told of each
        file as soon as it is known, from the cache or parsed (the one-shot path reads the
        buckets a file names meanwhile: :mod:`~lakecircle.engine.early`, which also asks
        that parsing take at most ``share`` of the time, see :class:`_Pacing`)."""
        if refs is None:
            refs = await self.list_refs()
        briefs: dict[str, FileBrief] = {}
        todo: list[ObjectRef] = []
        for ref in refs:
            cached = self._cache.get(ref.key)
            if cached is not None and cached.etag == ref.etag:
                briefs[ref.key] = cached
                if on_file is not None:
                    on_file(cached)
            elif ref.size > MAX_FILE_BYTES:
                briefs[ref.key] = _unreadable(
                    ref.key,
                    f"file is {ref.size:,} bytes, over the 1 MiB limit for a definition file;"
                    " split it into several files",
                    ref.etag,
                )
                self._cache[ref.key] = briefs[ref.key]
            else:
                todo.append(ref)

        self._failed = {}
        await self._fetch_all(todo, briefs, on_file, share)

        keys = {r.key for r in refs}
        for key in list(self._cache):
            if key not in keys:
                del self._cache[key]
        fingerprint = listing_fingerprint(refs)
        if not todo and self._last is not None and self._last.fingerprint == fingerprint:
            return dataclasses.replace(self._last, fetched=0)  # nothing changed: nothing to rebuild
        ordered = [briefs[r.key] for r in sorted(refs, key=lambda r: r.key)]
        with collector_paused():
            definitions = definitions_from_briefs(ordered, self.storage_classes)
        loaded = Loaded(definitions, fingerprint, len(todo))
        # Reused while the listing stays the same, unless a download failed: that one is tried again.
        self._last = loaded if not self._failed else None
        return loaded

    async def refetch_failed(self, refs: list[ObjectRef]) -> int:
        """Fetch again the files of ``refs`` whose download failed last time, unchanged since.

        Those that now read are cached (the next :meth:`load` uses them without a
        download); returns how many now read, whatever their content.
        """
        todo = [r for r in refs if r.key in self._failed and self._failed[r.key].etag == r.etag]
        briefs: dict[str, FileBrief] = {}
        await self._fetch_all(todo, briefs)
        return sum(1 for r in todo if r.key not in self._failed)

    async def _fetch_all(
        self,
        todo: list[ObjectRef],
        briefs: dict[str, FileBrief],
        on_file: Callable[[FileBrief], None] | None = None,
        share: float = 1.0,
    ) -> None:
        """Fetch and parse ``todo`` with ``concurrency`` workers, into ``briefs`` and the cache."""

        async def worker(pending: Iterator[ObjectRef]) -> None:
            for ref in pending:  # one iterator shared by the workers
                try:
                    data = await self.source.fetch(ref)
                except (S3Error, DefinitionSourceError) as exc:
                    # Not cached: a download that failed may succeed at the next try.
                    self._failed[ref.key] = briefs[ref.key] = _unreadable(
                        ref.key, f"could not be read: {exc}", ref.etag
                    )
                    continue
                self._failed.pop(ref.key, None)
                if not data.strip():
                    brief = _empty(ref)
                elif len(data) > PARSE_IN_THREAD_BYTES:
                    # A large file can take the reader seconds (a 1 MiB table of 90,000 lines):
                    # off the event loop, so /healthz, signals and the other workers go on.
                    brief = await anyio.to_thread.run_sync(_parsed, ref, data, self.storage_classes)
                else:
                    began = time.monotonic()
                    brief = _parsed(ref, data, self.storage_classes)
                    self._pacing.busy += time.monotonic() - began
                del data
                # Cached whether readable or not: the same ETag is the same content.
                briefs[ref.key] = self._cache[ref.key] = brief
                if on_file is not None:
                    on_file(brief)
                await self._pacing.pace()

        self._pacing = _Pacing(share)
        pending = iter(todo)
        async with anyio.create_task_group() as tg:
            for _ in range(min(self.concurrency, len(todo))):
                tg.start_soon(worker, pending)


PARSE_SLICE = 0.005
"""Seconds of parsing between two turns of the event loop, for files that came without a wait
(a local directory's, read by its listing). A turn per file gave the loop to every bucket read
of the one-shot path between two files, so loading took half of ``sync``'s run (5,000 files:
5.2 s, 2.6 s in slices), and nothing is planned before it ends; a slice also keeps ``/healthz``
and signals answered while a daemon parses."""


@dataclass
class _Pacing:
    """How long a load's workers parsed, and when they let the event loop run.

    After each :data:`PARSE_SLICE` of parsing the loop runs; with a ``share`` below 1 the
    workers also wait until their parsing is no more than that share of the time since the
    load began, so that what runs beside them (the one-shot path's bucket reads) keeps the
    rest of the loop."""

    share: float = 1.0
    busy: float = 0.0
    """Seconds spent parsing so far."""
    began: float = field(default_factory=time.monotonic)
    paused_at: float = 0.0
    """``busy`` when the loop last ran."""

    async def pace(self) -> None:
        if self.busy - self.paused_at < PARSE_SLICE:
            return
        self.paused_at = self.busy
        owed = self.busy / self.share - (time.monotonic() - self.began)
        if owed > 0:
            await anyio.sleep(owed)
        else:
            await anyio.lowlevel.checkpoint()


PARSE_IN_THREAD_BYTES = 64 * 1024
"""Files larger than this are parsed in a worker thread; smaller ones (nearly all) parse in
well under a millisecond, less than the hand-over to a thread costs."""


def _parsed(ref: ObjectRef, data: bytes, storage_classes: Collection[str]) -> FileBrief:
    parsed = parse_file(ref.key, data)
    return FileBrief.of(parsed, data, ref.etag, storage_classes)


def _empty(ref: ObjectRef) -> FileBrief:
    return _unreadable(
        ref.key,
        "the file is empty, so it defines no bucket (a file read while it is still being written can be);"
        " write its definitions in it, or delete it",
        ref.etag,
    )


def listing_fingerprint(refs: Iterable[ObjectRef]) -> bytes:
    """16 bytes that change when any definition file is added, removed or changed."""
    digest = hashlib.blake2b(digest_size=16)
    for key, etag in sorted((r.key, r.etag) for r in refs):
        digest.update(f"{key}\0{etag}\n".encode())
    return digest.digest()


def _unreadable(key: str, message: str, etag: str = "") -> FileBrief:
    return FileBrief(key, b"", (), (Problem(key, message),), readable=False, etag=etag)
