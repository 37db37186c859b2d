"""A definition source over a local directory, for ``plan`` and ``sync --definitions DIR``.

It serves the same :class:`~lakecircle.store.DefinitionSource` Protocol as the S3 prefix,
so a cycle cannot tell where its definitions came from. Keys are the files' paths as
``lakecircle validate DIR`` prints them, and the ETag is a hash of the content, so the
loader's cache works the same way. File I/O runs in a worker thread.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio.to_thread

from lakecircle.errors import DefinitionSourceError
from lakecircle.parse import MAX_FILE_BYTES
from lakecircle.store import ObjectRef


class LocalDefinitionSource:
    """Every ``*.toml`` file under a directory (recursively), or one given file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

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
        return [_ref(file) for file in definition_files(self.directory)]

    async def fetch(self, ref: ObjectRef) -> bytes:
        """The file's bytes; never more than one byte over the limit, so the parser refuses it."""
        try:
            return await anyio.to_thread.run_sync(read_capped, Path(ref.key))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DefinitionSourceError(f"cannot read the definition {ref.key}: {reason}") from exc


def definition_files(path: Path) -> list[Path]:
    """Every ``*.toml`` under a directory (recursively, sorted), or the one file given."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return [file for file in sorted(path.rglob("*.toml")) if file.is_file()]
    raise FileNotFoundError(2, "no such file or directory", str(path))


def read_capped(path: Path) -> bytes:
    """A file's bytes, never more than one byte over the limit, so the parser refuses it."""
    with path.open("rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _ref(path: Path) -> ObjectRef:
    stat = path.stat()
    if stat.st_size > MAX_FILE_BYTES:
        # Never read: the loader refuses it by its size. Size and mtime still show a change.
        etag = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
    else:
        etag = hashlib.sha256(read_capped(path)).hexdigest()
    return ObjectRef(str(path), etag, stat.st_size)
