"""The local-directory definition source behind ``--definitions DIR``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lakecircle.errors import DefinitionSourceError
from lakecircle.parse import MAX_FILE_BYTES
from lakecircle.sources import LocalDefinitionSource
from lakecircle.store import DefinitionSource

pytestmark = pytest.mark.anyio


async def test_lists_the_toml_files_under_the_directory_with_content_etags(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    files = {
        tmp_path / "a.toml": b'BucketName = "a"\n',
        tmp_path / "team" / "b.toml": b'BucketName = "b"\n',
    }
    for path, data in files.items():
        path.write_bytes(data)
    (tmp_path / "notes.md").write_text("not a definition")
    source: DefinitionSource = LocalDefinitionSource(tmp_path)

    refs = await source.list_definitions()

    assert [r.key for r in refs] == [str(tmp_path / "a.toml"), str(tmp_path / "team" / "b.toml")]
    for ref in refs:
        data = files[Path(ref.key)]
        assert ref.etag == hashlib.sha256(data).hexdigest()
        assert ref.size == len(data)
        assert await source.fetch(ref) == data


async def test_a_changed_file_gets_a_new_etag(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_bytes(b"x = 1\n")
    source = LocalDefinitionSource(tmp_path)
    [before] = await source.list_definitions()

    path.write_bytes(b"x = 2\n")
    [after] = await source.list_definitions()

    assert before.etag != after.etag


async def test_an_oversize_file_is_listed_by_size_and_never_read_past_the_limit(tmp_path: Path) -> None:
    (tmp_path / "huge.toml").write_bytes(b"#" * (MAX_FILE_BYTES + 100))
    source = LocalDefinitionSource(tmp_path)

    [ref] = await source.list_definitions()

    assert ref.size == MAX_FILE_BYTES + 100
    assert len(await source.fetch(ref)) == MAX_FILE_BYTES + 1


async def test_a_missing_directory_is_a_definition_source_error(tmp_path: Path) -> None:
    source = LocalDefinitionSource(tmp_path / "nowhere")

    with pytest.raises(DefinitionSourceError, match="nowhere"):
        await source.list_definitions()
