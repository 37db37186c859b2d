"""Load the definitions of a cycle from a source, fetching only what changed.

Files are cached in brief by (key, ETag): a file whose ETag did not change since the last
cycle is neither downloaded nor parsed again. A file over the size limit is refused by
its listed size, unread. A file that cannot be fetched makes the picture partial.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio

from lakecircle.definitions import Definitions, FileBrief, definitions_from_briefs
from lakecircle.errors import DefinitionSourceError, S3Error
from lakecircle.parse import MAX_FILE_BYTES, parse_file
from lakecircle.problems import Problem
from lakecircle.store import DefinitionSource, ObjectRef


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
    :class:`~lakecircle.definitions.FileBrief` (its compressed bytes, its buckets' digests
    and problems), never its models.
    """

    def __init__(self, source: DefinitionSource, *, concurrency: int = 16) -> None:
        self.source = source
        self.concurrency = concurrency
        self._cache: dict[str, FileBrief] = {}
        self._last: Loaded | None = None

    async def list_refs(self) -> list[ObjectRef]:
        """List the definitions (raises DefinitionSourceError when that is impossible)."""
        return await self.source.list_definitions()

    async def load(self, refs: list[ObjectRef] | None = None) -> Loaded:
        if refs is None:
            refs = await self.list_refs()
        briefs: dict[str, FileBrief] = {}
        todo: list[ObjectRef] = []
        for ref in refs:
            cached = self._cache.get(ref.key)
            if cached is not None and cached.etag == ref.etag:
                briefs[ref.key] = cached
            elif ref.size > MAX_FILE_BYTES:
                briefs[ref.key] = _unreadable(
                    ref.key,
                    f"file is {ref.size:,} bytes, over the 1 MiB limit for a definition file;"
                    " split it into several files",
                )
            else:
                todo.append(ref)

        async def worker(pending: Iterator[ObjectRef]) -> None:
            for ref in pending:  # one iterator shared by the workers
                try:
                    data = await self.source.fetch(ref)
                except (S3Error, DefinitionSourceError) as exc:
                    briefs[ref.key] = _unreadable(ref.key, f"could not be read: {exc}")
                    continue
                parsed = parse_file(ref.key, data)
                brief = FileBrief.of(parsed, data, ref.etag)
                del parsed, data
                briefs[ref.key] = brief
                if brief.readable:  # a garbled download is fetched again next time
                    self._cache[ref.key] = brief

        pending = iter(todo)
        async with anyio.create_task_group() as tg:
            for _ in range(min(self.concurrency, len(todo))):
                tg.start_soon(worker, pending)

        keys = {r.key for r in refs}
        for key in list(self._cache):
            if key not in keys:
                del self._cache[key]
        fingerprint = listing_fingerprint(refs)
        if not todo and self._last is not None and self._last.fingerprint == fingerprint:
            return dataclasses.replace(self._last, fetched=0)  # nothing changed: nothing to rebuild
        ordered = [briefs[r.key] for r in sorted(refs, key=lambda r: r.key)]
        with collector_paused():
            definitions = definitions_from_briefs(ordered)
        loaded = Loaded(definitions, fingerprint, len(todo))
        self._last = loaded if not definitions.partial else None
        return loaded


def listing_fingerprint(refs: Iterable[ObjectRef]) -> bytes:
    """16 bytes that change when any definition file is added, removed or changed."""
    digest = hashlib.blake2b(digest_size=16)
    for key, etag in sorted((r.key, r.etag) for r in refs):
        digest.update(f"{key}\0{etag}\n".encode())
    return digest.digest()


def _unreadable(key: str, message: str) -> FileBrief:
    return FileBrief(key, b"", (), (Problem(key, message),), readable=False)
