"""What the lease tests of the engine share: keepers over the in-memory store in short real durations,
each run in a cancel scope of its own (cancel one to freeze that replica), and a wait for a condition."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from lakecircle.engine.leases import LeaseKeeper
from lakecircle.ports import LeaseStore

ACCOUNT = "123456789012"
KEY = f"lease/{ACCOUNT}.json"
D = 0.6
"""The lease duration of these tests: renewals every 0.2 s, a write timeout of 0.2 s, a margin of 0.06 s."""


def keeper(store: LeaseStore, replica: str, **kwargs: Any) -> LeaseKeeper:
    """A keeper of the account's lease for ``replica`` (duration :data:`D`, write timeout capped at D / 3)."""
    return LeaseKeeper(store, ACCOUNT, replica, kwargs.pop("duration", D), write_timeout=10.0, **kwargs)


@asynccontextmanager
async def running(*keepers: LeaseKeeper) -> AsyncIterator[dict[str, anyio.CancelScope]]:
    """Each keeper's run() in its own cancel scope, by replica; all cancelled at the end."""
    scopes: dict[str, anyio.CancelScope] = {}

    async def run(one: LeaseKeeper, scope: anyio.CancelScope) -> None:
        with scope:
            await one.run()

    async with anyio.create_task_group() as tg:
        for one in keepers:
            scopes[one.replica] = anyio.CancelScope()
            tg.start_soon(run, one, scopes[one.replica])
        yield scopes
        tg.cancel_scope.cancel()


async def until(condition: Callable[[], bool], within: float = 3 * D) -> float:
    """Wait until ``condition`` holds (fail after ``within`` seconds); the monotonic time it was seen to."""
    with anyio.fail_after(within):
        while not condition():
            await anyio.sleep(0.002)
    return time.monotonic()
