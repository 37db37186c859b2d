"""The one-shot path's wiring (``plan``, ``sync``): buckets read while the definitions load,
a local directory read by a few workers."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from lakecircle.adapters.local import READERS
from lakecircle.app.session import ONE_RUN_YOUNG, ONE_SHOT_EARLY_READS, open_reconciler, run
from lakecircle.app.wiring import definition_loader
from lakecircle.settings import load_settings
from tests.conftest import MOTO_ACCOUNT, MOTO_REGION

pytestmark = pytest.mark.anyio


@pytest.fixture
def account(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LCC_AWS_ACCOUNT", MOTO_ACCOUNT)
    monkeypatch.setenv("LCC_AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("LCC_CONCURRENCY", "32")


@pytest.mark.usefixtures("account")
async def test_a_commands_reconciler_reads_buckets_while_its_definitions_load(tmp_path: Path) -> None:
    async with open_reconciler(load_settings(), tmp_path, dry_run=True) as reconciler:
        assert reconciler.early_reads == ONE_SHOT_EARLY_READS > 0


@pytest.mark.usefixtures("account")
def test_a_local_directory_is_read_by_a_few_workers_whatever_the_concurrency(tmp_path: Path) -> None:
    adapter: Any = None  # a local directory needs none
    assert definition_loader(load_settings(), adapter, tmp_path).concurrency == READERS < 32


class Costly:
    """A command's value whose repr is counted (a report of thousands of buckets is slow to format)."""

    formatted = 0

    def __repr__(self) -> str:
        Costly.formatted += 1
        return "Costly()"


def test_a_commands_value_is_never_formatted_on_the_way_out_of_the_event_loop() -> None:
    async def body() -> Costly:
        return Costly()

    value = run(body)

    assert isinstance(value, Costly)
    assert Costly.formatted == 0


@pytest.mark.usefixtures("account")
async def test_a_commands_cycle_leaves_the_process_so_far_to_the_collector_and_collects_less_often(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()

    async with open_reconciler(load_settings(), tmp_path, dry_run=True):
        assert gc.get_threshold()[0] == ONE_RUN_YOUNG
        assert gc.get_freeze_count() > 0

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
