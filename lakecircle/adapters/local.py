"""A definition source over a local directory, for ``plan`` and ``sync --definitions DIR``.

It serves the same :class:`~lakecircle.ports.DefinitionSource` Protocol as the S3 prefix,
so a cycle cannot tell where its definitions came from. Keys are the files' paths as
``lakecircle validate DIR`` prints them, and the ETag is a hash of the content, so the
loader's cache works the same way. File I/O runs in a worker thread. The listing reads
every file to hash it, so it keeps what it read (up to :data:`HELD_BYTES`) for the fetch
that follows: each file is read once, and is fetched as it was when its ETag was made.

Every entry whose name matches ``*.toml`` is a definition, whatever it turns out to be.
One that cannot be read as a regular file (a dangling or looping symbolic link, a
directory, a named pipe or a socket, a file without read permission, a directory that
cannot be listed) is listed all the same, and its fetch fails with the reason: the
loader then counts it unreadable, and a partial picture removes no rules
(ARCHITECTURE.md, "Safety"). Skipping it instead would remove the rules it defines. Directory links are
followed, each directory once, so a link loop ends; nothing is opened that could block
(a named pipe is refused by its type, and opened without blocking in case it appears
between the check and the open).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread

from lakecircle.core.parse import MAX_FILE_BYTES
from lakecircle.errors import DefinitionSourceError
from lakecircle.ports import DefinitionSource, ObjectRef

PATTERN_SUFFIX = ".toml"
"""Definition files are the entries whose name ends so (``*.toml``, recursively)."""

READERS = 4
"""Files of a local directory read at once: a read is no round trip, and more worker threads only
contend with the event loop that reads the buckets meanwhile (5,000 files under ``plan`` at
concurrency 32: 0.35 s less wall time with 4 than with 32)."""

HELD_BYTES = 32 * 1024 * 1024
"""Bytes of the files a listing read (to hash them) kept for their fetch; past it, files are
read again when fetched. The one-shot path's 5,000 files of 1 KB: no second read, no thread
hand-over per file."""


class LocalDefinitionSource:
    """Every ``*.toml`` entry under a directory (recursively), or one given file."""

    def __init__(self, directory: Path, *, held_bytes: int = HELD_BYTES) -> None:
        self.directory = directory
        self.held_bytes = held_bytes
        self._held: dict[str, tuple[str, bytes]] = {}
        """The last listing's files as it read them, by key: (ETag, bytes), until fetched."""

    @property
    def location(self) -> str:
        return str(self.directory)

    async def list_definitions(self) -> list[ObjectRef]:
        try:
            return await anyio.to_thread.run_sync(self._list)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DefinitionSourceError(f"cannot list the definitions at {self.location}: {reason}") from exc

    def _list(self) -> list[ObjectRef]:
        refs: list[ObjectRef] = []
        held: dict[str, tuple[str, bytes]] = {}
        room = self.held_bytes
        for key in definition_entries(self.directory):
            ref, data = _ref(key)
            refs.append(ref)
            if data is not None and len(data) <= room:
                held[key] = (ref.etag, data)
                room -= len(data)
        self._held = held  # a new listing: what an older one read is dropped
        return refs

    async def fetch(self, ref: ObjectRef) -> bytes:
        """The file's bytes; never more than one byte over the limit, so the parser refuses it.

        The bytes the listing read for this ETag when it kept them, else the file read now.
        Raises DefinitionSourceError saying why when the entry cannot be read as a file.
        """
        etag, data = self._held.pop(ref.key, ("", b""))
        if etag and etag == ref.etag:
            return data  # no wait: the loader lets the event loop run between slices of its parsing
        try:
            return await anyio.to_thread.run_sync(read_entry, ref.key)
        except OSError as exc:
            raise DefinitionSourceError(unreadable_reason(ref.key, exc)) from exc


class CombinedSource:
    """Several sources read as one (``lakecircle validate PATH... s3://...``).

    Their keys must tell the sources apart (local paths; S3 sources with full names). A
    key listed by two of them (a file under two paths given) is read once.
    """

    def __init__(self, sources: Sequence[DefinitionSource]) -> None:
        self.sources = list(sources)
        self._owner: dict[str, DefinitionSource] = {}

    @property
    def location(self) -> str:
        return ", ".join(source.location for source in self.sources)

    async def list_definitions(self) -> list[ObjectRef]:
        refs: dict[str, ObjectRef] = {}
        for source in self.sources:
            for ref in await source.list_definitions():
                self._owner.setdefault(ref.key, source)
                refs.setdefault(ref.key, ref)
        return list(refs.values())

    async def fetch(self, ref: ObjectRef) -> bytes:
        return await self._owner[ref.key].fetch(ref)


class NotARegularFile(OSError):
    """An entry named like a definition that is no regular file (a directory, a pipe, a socket)."""


def definition_entries(path: Path) -> list[str]:
    """The key of every ``*.toml`` entry under a directory (recursively, sorted), or of the path given.

    Entries are listed whatever they are (see the module's docstring). A subdirectory that
    cannot be listed is an entry too, its key ending in ``/``, so that its failure is
    reported. Raises OSError when ``path`` itself does not exist or cannot be listed.
    """
    if not path.is_dir():
        if not os.path.lexists(path):
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(path))
        return [str(path)]
    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    pending = [path]
    while pending:
        directory = pending.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue  # reached again through a link: listed once (and a link loop ends here)
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError:
            if directory == path:
                raise
            found.add(os.path.join(directory, ""))  # its definitions are unknown: fetched, it says why
            continue
        for entry in entries:
            child = directory / entry.name
            named = entry.name.endswith(PATTERN_SUFFIX)
            if named:
                found.add(str(child))
            is_dir = _is_dir(entry)
            if is_dir:
                pending.append(child)
            elif is_dir is None and not named:
                # A link whose target cannot be looked at (permission denied):
                # it may lead to definitions, so it is reported like a directory that
                # could not be listed, never skipped.
                found.add(os.path.join(child, ""))
    return sorted(found)


def _is_dir(entry: os.DirEntry[str]) -> bool | None:
    """Whether the entry is a directory (links followed); None when that cannot be told."""
    try:
        return entry.is_dir()  # follows links; a dangling link is no directory (False)
    except OSError as exc:
        return False if exc.errno == errno.ELOOP else None  # a loop leads nowhere


def read_entry(key: str) -> bytes:
    """The bytes of the entry listed as ``key`` (see :func:`definition_entries`).

    Raises OSError when it cannot be read as a regular file; a directory that could not
    be listed raises the error listing it raises now.
    """
    if key.endswith(os.sep):
        with os.scandir(key):
            pass
        raise NotARegularFile(errno.EISDIR, "a directory that could not be listed", key)
    return read_capped(Path(key))


def read_capped(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, never more than one byte over ``limit``, so the parser refuses it.

    Raises :class:`NotARegularFile` for anything else, and OSError when it cannot be opened.
    """
    _require_regular(os.stat(path).st_mode, path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        _require_regular(os.fstat(fd).st_mode, path)  # swapped since the check: still never a pipe
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = handle.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _require_regular(mode: int, path: Path) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    else:
        kind = "no regular file"
    raise NotARegularFile(errno.EINVAL, kind, str(path))


def unreadable_reason(key: str, exc: OSError) -> str:
    """Why the entry listed as ``key`` cannot be read, in words a person can act on."""
    path = Path(key)
    if key.endswith(os.sep):
        why = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else (exc.strerror or str(exc))
        return f"the directory cannot be listed ({why}), so the definitions in it are unknown"
    if isinstance(exc, NotARegularFile):
        return f"it is {exc.strerror}, not a regular file; a definition must be a file (rename or remove it)"
    if exc.errno == errno.ENOENT and path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"it is a symbolic link to {target!r}, which does not exist; fix or remove the link"
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link that loops (too many levels of symbolic links); fix or remove the link"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; let LakeCircle's user read it"
    if exc.errno == errno.ENOENT:
        return "it no longer exists (removed while it was being read)"
    return exc.strerror or str(exc)


def _ref(key: str) -> tuple[ObjectRef, bytes | None]:
    """The entry's listing, and the bytes its ETag was made from (None: not read)."""
    try:
        if key.endswith(os.sep):
            read_entry(key)  # raises: why it could not be listed
        path = Path(key)
        info = path.stat()
        _require_regular(info.st_mode, path)
        if info.st_size > MAX_FILE_BYTES:
            # Never read: the loader refuses it by its size. Size and mtime still show a change.
            return ObjectRef(key, f"{info.st_mtime_ns:x}-{info.st_size:x}", info.st_size), None
        data = read_capped(path)
        return ObjectRef(key, hashlib.sha256(data).hexdigest(), info.st_size), data
    except OSError as exc:
        # Listed all the same: the loader fetches it and reports why it cannot be read. The
        # ETag follows the reason, so an entry repaired since is read again.
        reason = unreadable_reason(key, exc)
        return ObjectRef(key, "unreadable-" + hashlib.sha256(reason.encode()).hexdigest()[:16], 0), None
