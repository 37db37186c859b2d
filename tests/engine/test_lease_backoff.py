"""A lease write that keeps failing while reads work is retried with a backoff, one warning a streak."""

from __future__ import annotations

import anyio
import pytest
import structlog

from lakecircle.engine.leases import LeaseKeeper
from lakecircle.testing import LeaseFault, MemoryS3

pytestmark = pytest.mark.anyio

D = 0.6
"""A short real duration: the backoff (D / 100, doubling to D / 3) and the timeouts scale with it."""


@pytest.mark.parametrize("holding", [True, False], ids=["holder-renewing", "standby-acquiring"])
async def test_a_failing_lease_write_is_not_retried_in_a_hot_loop(holding: bool) -> None:
    s3 = MemoryS3()
    keeper = LeaseKeeper(s3, "123456789012", "pod-a", D, write_timeout=1.0)
    with structlog.testing.capture_logs() as logs:
        async with anyio.create_task_group() as group:
            group.start_soon(keeper.run)
            if holding:
                with anyio.fail_after(2 * D):
                    while not keeper.held():
                        await anyio.sleep(0.01)
            for call in ("create", "replace"):
                s3.lease_fault(call, LeaseFault.FAIL)
            before = s3.calls["PutObject"]
            await anyio.sleep(D)  # holder: three renewals due; standby: a free lease it wants
            puts = s3.calls["PutObject"] - before
            group.cancel_scope.cancel()
    warnings = [e for e in logs if e["event"] == "lease_request_failed" and e["log_level"] == "warning"]
    assert puts <= 20, f"{puts} PutObject attempts in one lease duration ({len(warnings)} warnings)"
