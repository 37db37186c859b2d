"""The leases' clock keeps counting while the machine is suspended (a laptop's lid closed, a VM
paused): Linux's CLOCK_MONOTONIC, which time.monotonic reads, stops then, and a holder reading it
would wake believing it still held a lease another replica had taken meanwhile."""

from __future__ import annotations

import sys
import time

import pytest

from lakecircle.clocks import lease_clock
from lakecircle.engine.leases import LeaseKeeper
from lakecircle.engine.sharing import Sharing
from lakecircle.testing import MemoryS3


@pytest.mark.skipif(sys.platform != "linux", reason="CLOCK_BOOTTIME is Linux's")
def test_on_linux_the_lease_clock_is_the_boot_time_clock() -> None:
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    now = lease_clock()
    after = time.clock_gettime(time.CLOCK_BOOTTIME)
    assert before <= now <= after


def test_keepers_and_sharing_count_time_with_the_lease_clock_unless_given_another() -> None:
    s3 = MemoryS3()
    keeper = LeaseKeeper(s3, "123456789012", "pod-a", 30.0, write_timeout=10.0)
    sharing = Sharing(s3, s3, "pod-a", 30.0, write_timeout=10.0)
    assert keeper._clock is lease_clock
    assert sharing.clock is lease_clock
