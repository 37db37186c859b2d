"""Wiring of leases for the commands that write (app/leasing.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from lakecircle.app import leasing
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.testing import MemoryS3

pytestmark = pytest.mark.anyio


async def test_a_sync_that_took_a_free_lease_but_not_its_first_write_in_time_is_not_told_someone_holds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryS3()

    async def opened(settings: Any, adapter: Any) -> MemoryS3:
        return store

    monkeypatch.setattr(leasing, "open_lease_store", opened)
    settings = SimpleNamespace(
        aws_account="123456789012", replica_id="laptop", lease_seconds=30.0, require=lambda _: None
    )
    adapter = SimpleNamespace(attempt_timeout=70.0)
    with pytest.raises(leasing.LeaseHeld) as raised:
        async with leasing.hold_lease(settings, adapter, 2.0):  # type: ignore[arg-type]
            pass
    assert store.objects, "the lease was created: this sync holds it"
    assert "held by" not in str(raised.value)
    assert "took its lease" in str(raised.value)
    assert "--lease-wait" in str(raised.value)


@pytest.mark.parametrize(
    ("command", "way_out"),
    [("sync", "Let the service do the sync"), ("rollback", "Stop the service first (scale it to 0 replicas")],
)
async def test_a_command_refused_by_the_services_lease_names_the_holder_and_its_own_way_out(
    command: leasing.Writer, way_out: str
) -> None:
    store = MemoryS3()
    service = LeaseKeeper(store, "123456789012", "pod-a", 30.0, write_timeout=10.0)
    settings = SimpleNamespace(replica_id="laptop", lease_seconds=30.0)
    async with leasing.keeping(service):
        with anyio.fail_after(5):
            while not service.held():
                await anyio.sleep(0.01)
        with pytest.raises(leasing.LeaseHeld) as raised:
            async with leasing.holding(settings, store, "123456789012", 10.0, 0.3, command=command):  # type: ignore[arg-type]
                pass
    message = str(raised.value)
    assert "is held by pod-a" in message
    assert way_out in message
    assert ("Let the service do the sync" in message) == (command == "sync")
