"""The definition loader's pace: files that come without a wait are parsed in slices, the
event loop running between them, and within a share of the time when buckets are read
meanwhile (engine/loader.py, engine/early.py)."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from lakecircle.engine.early import LOAD_SHARE, EarlyReads
from lakecircle.engine.loader import PARSE_SLICE, DefinitionLoader
from lakecircle.ports import ObjectRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio

FILES = 1000


class AtOnce:
    """Definition files whose bytes are at hand: a fetch never waits (a local directory's listing read them)."""

    location = "memory"

    def __init__(self, files: int) -> None:
        self.files = {f"d/{i:04d}.toml": definition(f"bucket-{i:04d}", rule("r1")) for i in range(files)}

    async def list_definitions(self) -> list[ObjectRef]:
        return [ObjectRef(key, str(i), len(data)) for i, (key, data) in enumerate(self.files.items())]

    async def fetch(self, ref: ObjectRef) -> bytes:
        return self.files[ref.key]


async def test_files_that_come_without_a_wait_let_the_event_loop_run_between_slices_of_parsing() -> None:
    parsed = 0
    seen: list[int] = []  # files parsed, each time the event loop ran another task

    def counted(_: object) -> None:
        nonlocal parsed
        parsed += 1

    async def ticker() -> None:
        while True:
            seen.append(parsed)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        loaded = await DefinitionLoader(AtOnce(FILES), concurrency=4).load(on_file=counted)
        tasks.cancel_scope.cancel()

    assert len(loaded.definitions.buckets) == FILES
    during = [n for n in seen if 0 < n < FILES]
    assert during  # the loop ran while the files were parsed
    assert len(during) < FILES / 4  # not between every two files: many files to a slice


async def test_a_load_asked_for_a_share_of_the_time_parses_no_more_than_that_share() -> None:
    loader = DefinitionLoader(AtOnce(FILES), concurrency=4)

    began = time.monotonic()
    loaded = await loader.load(share=0.25)
    elapsed = time.monotonic() - began

    assert len(loaded.definitions.buckets) == FILES
    parsing = loader._pacing.busy
    assert parsing > 0
    assert parsing <= 0.25 * elapsed + PARSE_SLICE


def test_early_reads_ask_the_loader_for_part_of_the_time_and_a_load_without_them_for_all_of_it() -> None:
    assert EarlyReads(MemoryS3(), 4, 10, lambda _: True, Never()).share == LOAD_SHARE < 1
    assert EarlyReads(MemoryS3(), 4, 0, lambda _: True, Never()).share == 1


class Never:
    stopping = False
