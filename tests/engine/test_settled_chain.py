"""A release is settled only once its holder's own new-holder wait is over: a holder released during
it (a takeover, a lease after an unsettled release) passes the wait on, since the holder before it
may still be writing."""

from __future__ import annotations

import anyio
import pytest

from lakecircle.core.lease import decode
from lakecircle.testing import MemoryS3
from tests.engine.leasing import KEY, D, keeper, running, until

pytestmark = pytest.mark.anyio


async def test_a_takeover_released_during_its_wait_does_not_let_the_next_holder_write_at_once() -> None:
    s3 = MemoryS3()
    a, b, c = keeper(s3, "a"), keeper(s3, "b"), keeper(s3, "c", wanted=False)
    async with running(a, b, c) as scopes:
        await until(a.may_start_write)
        with a.writing():  # a's PUT is under way (a partition): it may apply up to its linger
            scopes["a"].cancel()  # a frozen / cut off: no renewal, no release
            await until(b.held, within=3 * D)  # b takes over, and must wait one write timeout
            took_over = anyio.current_time()
            assert not b.may_start_write()
            await b.release()  # b is evicted at once (a rollout goes on, a node drain)
            released = decode(s3.objects[KEY])
            assert released is not None
            assert released.released
            assert anyio.current_time() - took_over < b.write_timeout  # b released within its wait
            assert not released.settled, (
                "b released settled before its new-holder wait was over: the next holder writes at"
                " once while a's write (started under a's lease) may still apply"
            )


async def test_an_unsettled_release_stays_unsettled_through_a_holder_that_never_waited_it_out() -> None:
    s3 = MemoryS3()
    a, b, c = keeper(s3, "a"), keeper(s3, "b"), keeper(s3, "c", wanted=False)
    async with running(a, b, c):
        await until(a.may_start_write)
        with a.writing():
            pass  # cut: left unanswered, it may still apply
        await until(lambda: b.holder_seen == "a")
        await a.release()  # unsettled: b must wait a write timeout
        await until(b.held)
        assert not b.may_start_write()
        await b.release()  # before its wait is over
        c.want(True)
        await until(c.held)
        assert not c.may_start_write(), "a's cut write may still apply, yet c writes at once"
