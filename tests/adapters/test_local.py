"""The local-directory definition source behind ``--definitions DIR``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lakecircle.adapters.local import LocalDefinitionSource
from lakecircle.core.parse import MAX_FILE_BYTES
from lakecircle.errors import DefinitionSourceError
from lakecircle.ports import DefinitionSource

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


async def test_a_listed_file_is_fetched_as_the_listing_read_it_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_bytes(b"x = 1\n")
    source = LocalDefinitionSource(tmp_path)
    [ref] = await source.list_definitions()

    path.write_bytes(b"x = 2\n")  # changed after the listing: its ETag still says x = 1

    assert await source.fetch(ref) == b"x = 1\n"
    assert ref.etag == hashlib.sha256(b"x = 1\n").hexdigest()


async def test_a_file_past_the_bytes_a_listing_keeps_is_read_when_fetched(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_bytes(b"x = 1\n")
    (tmp_path / "b.toml").write_bytes(b"y = 1\n")
    source = LocalDefinitionSource(tmp_path, held_bytes=6)
    first, second = await source.list_definitions()

    (tmp_path / "b.toml").write_bytes(b"y = 2\n")

    assert await source.fetch(first) == b"x = 1\n"
    assert await source.fetch(second) == b"y = 2\n"


async def test_a_file_fetched_twice_is_read_again_the_second_time(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_bytes(b"x = 1\n")
    source = LocalDefinitionSource(tmp_path)
    [ref] = await source.list_definitions()
    await source.fetch(ref)

    path.write_bytes(b"x = 2\n")

    assert await source.fetch(ref) == b"x = 2\n"


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


# -- entries named like definitions that cannot be read as files ----------------------------


def make_entry(directory: Path, name: str, kind: str) -> Path:
    """An entry ``name`` under ``directory`` that is no readable regular file, of ``kind``."""
    path = directory / name
    if kind == "dangling link":
        path.symlink_to(directory / "missing-target")
    elif kind == "link loop":
        path.symlink_to(directory / f"{name}.other")
        (directory / f"{name}.other").symlink_to(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "named pipe":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))  # the file stays after the socket is closed
    else:
        raise ValueError(kind)
    return path


UNREADABLE_KINDS = {
    "dangling link": "symbolic link to",
    "link loop": "symbolic link that loops",
    "directory": "it is a directory, not a regular file",
    "named pipe": "it is a named pipe (FIFO), not a regular file",
    "socket": "it is a socket, not a regular file",
}


@pytest.mark.timeout(20)  # a named pipe must never block the listing or the read
@pytest.mark.parametrize("kind", sorted(UNREADABLE_KINDS))
async def test_a_toml_entry_that_is_no_readable_file_is_listed_and_its_fetch_says_why(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "good.toml").write_bytes(b'BucketName = "a"\n')
    entry = make_entry(tmp_path, "team.toml", kind)
    source = LocalDefinitionSource(tmp_path)

    refs = {r.key: r for r in await source.list_definitions()}

    assert sorted(refs) == [str(tmp_path / "good.toml"), str(entry)]
    with pytest.raises(DefinitionSourceError, match=re.escape(UNREADABLE_KINDS[kind])):
        await source.fetch(refs[str(entry)])


async def test_a_repaired_entry_gets_a_new_etag(tmp_path: Path) -> None:
    link = make_entry(tmp_path, "a.toml", "dangling link")
    source = LocalDefinitionSource(tmp_path)
    [before] = await source.list_definitions()

    (tmp_path / "missing-target").write_bytes(b'BucketName = "a"\n')
    [after] = await source.list_definitions()

    assert before.key == after.key == str(link)
    assert before.etag != after.etag
    assert await source.fetch(after) == b'BucketName = "a"\n'


@pytest.mark.timeout(20)
async def test_linked_directories_are_read_once_and_a_link_loop_ends(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "team.toml").write_bytes(b'BucketName = "team"\n')
    root = tmp_path / "defs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.toml").write_bytes(b'BucketName = "a"\n')
    (root / "sub" / "back").symlink_to(root)  # a loop: defs/sub/back/sub/back/...
    (root / "team").symlink_to(elsewhere)

    refs = await LocalDefinitionSource(root).list_definitions()

    assert [r.key for r in refs] == [str(root / "sub" / "a.toml"), str(root / "team" / "team.toml")]


def without_root_privileges() -> list[str]:
    """A command prefix under which even root obeys file permissions (empty when not root).

    Root reads and lists anything (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); util-linux's
    setpriv drops those two capabilities from the bounding set of the command it runs.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("the tests run as root and need setpriv (util-linux) to check permission errors")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_a_file_without_read_permission_and_a_directory_that_cannot_be_listed_are_named_by_validate(
    tmp_path: Path,
) -> None:
    (tmp_path / "good.toml").write_bytes(b'BucketName = "good"\n[LifecycleConfiguration]\nRules = []\n')
    (tmp_path / "secret.toml").write_bytes(b'BucketName = "secret"\n')
    (tmp_path / "secret.toml").chmod(0)
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "hidden.toml").write_bytes(b'BucketName = "hidden"\n')
    (tmp_path / "closed").chmod(0)
    try:
        result = subprocess.run(  # noqa: S603 -- our own interpreter and package
            [*without_root_privileges(), sys.executable, "-m", "lakecircle", "validate", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        (tmp_path / "closed").chmod(0o755)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    secret, closed = tmp_path / "secret.toml", tmp_path / "closed"
    assert f"{secret}: -: -: -: could not be read: permission denied; let LakeCircle's user read it" in lines
    assert f"{closed}/: -: -: -: could not be read: the directory cannot be listed (permission denied)," in (
        result.stdout
    )
    assert lines[-1].startswith("3 file(s), 1 valid bucket(s), 0 invalid; 2 error(s)"), lines
    assert "Traceback" not in result.stderr


def test_a_link_to_a_directory_that_cannot_be_reached_is_named_by_validate_not_skipped(tmp_path: Path) -> None:
    # The link's target cannot even be looked at (its parent is closed): what the link
    # leads to is unknown, so the definitions that may be there are reported, not skipped.
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "good.toml").write_bytes(b'BucketName = "good"\n[LifecycleConfiguration]\nRules = []\n')
    closed = tmp_path / "closed"
    (closed / "inner").mkdir(parents=True)
    (closed / "inner" / "hidden.toml").write_bytes(b'BucketName = "hidden"\n')
    (defs / "team").symlink_to(closed / "inner")
    closed.chmod(0)
    try:
        result = subprocess.run(  # noqa: S603 -- our own interpreter and package
            [*without_root_privileges(), sys.executable, "-m", "lakecircle", "validate", str(defs)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        closed.chmod(0o755)

    assert result.returncode == 1, result.stdout + result.stderr
    team = defs / "team"
    assert f"{team}/: -: -: -: could not be read: the directory cannot be listed (permission denied)," in (
        result.stdout
    ), result.stdout
    assert "Traceback" not in result.stderr
