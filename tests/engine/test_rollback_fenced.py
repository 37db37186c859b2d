"""A rollback writes under the account's lease as a sync does (engine/rollback.py): it asks the
fence before its write, and its change record names the lease's holder and epoch; one whose lease
lapsed during its reads writes nothing and says why."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from lakecircle.app.leasing import holding
from lakecircle.engine.rollback import rollback
from lakecircle.errors import LakeCircleError
from lakecircle.ports import BucketRef
from lakecircle.testing import LeaseFault
from tests.engine.test_history import ids, sync, world

pytestmark = pytest.mark.anyio

D = 1.2
ACCOUNT = "123456789012"


async def test_a_rollback_does_not_write_once_its_lease_is_lost() -> None:
    s3, history = world("v0")
    await sync(s3, history, "v1")  # the bucket holds v1; its record says it held v0 before
    settings: Any = SimpleNamespace(replica_id="laptop", lease_seconds=D)
    async with holding(settings, s3, ACCOUNT, D / 6, 3 * D) as keeper:  # what held_for_write does
        s3.lease_fault("replace", LeaseFault.FAIL)  # from now its renewals fail
        with anyio.fail_after(2 * D):
            while keeper.may_start_write():  # the rollback's reads take a while
                await anyio.sleep(0.01)
        with pytest.raises(LakeCircleError, match="lease of account 123456789012 is lost"):
            await rollback(s3, history, BucketRef("hist-bucket"), fence=keeper)
    assert ids(s3.lifecycles["hist-bucket"]) == ["v1"], "written without a valid lease"


async def test_a_rollbacks_change_record_names_the_lease_holder_and_epoch() -> None:
    s3, history = world("v0")
    await sync(s3, history, "v1")
    settings: Any = SimpleNamespace(replica_id="laptop", lease_seconds=D)
    async with holding(settings, s3, ACCOUNT, D / 6, 3 * D) as keeper:
        result = await rollback(s3, history, BucketRef("hist-bucket"), fence=keeper)
        stamp = {"holder": "laptop", "epoch": keeper.epoch}
    assert result.applied
    assert result.history is not None
    change = json.loads(s3.objects[result.history])
    [current] = [json.loads(data) for key, data in s3.objects.items() if key.startswith("current/")]
    assert current["history"] == result.history  # the rollback's own current/ record
    # The issue: "the epoch goes into every change record (history/, current/)".
    assert change["lease"] == current["lease"] == stamp
