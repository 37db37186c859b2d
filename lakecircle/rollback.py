"""Roll a bucket back to a recorded configuration, through the same write-ahead path.

The target is the bucket's ``previous/`` snapshot (what it held before LakeCircle's last
change) or, with ``--to``, the configuration a history record says the bucket had before
that change. The rollback is itself a change: it gets its own history record and becomes
the bucket's ``current/``. If the definitions say otherwise, the next cycle would undo it,
and the result says so.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from lakecircle.definitions import Definitions
from lakecircle.drift import Applied, config_from_json
from lakecircle.errors import LakeCircleError
from lakecircle.history import History
from lakecircle.model import LifecycleConfig
from lakecircle.plan import Action, BucketPlan, plan_bucket
from lakecircle.store import BucketRef, LifecycleStore


@dataclass(frozen=True, slots=True)
class RollbackResult:
    plan: BucketPlan
    source: str
    applied: bool
    history: str | None
    undone_by_definitions: bool
    """The definitions disagree: the next cycle would write them over the rollback."""


async def target_of(history: History, bucket: str, record: str | None) -> tuple[LifecycleConfig, str]:
    if record is None:
        key = History.previous_key(bucket)
        document = await history.read(key)
        return config_from_json(document["config"]), key
    document = await history.read(record)
    if document.get("bucket") != bucket:
        raise LakeCircleError(f"record {record} is about bucket {document.get('bucket')!r}, not {bucket!r}")
    return config_from_json(document["before"]), record


async def rollback(
    store: LifecycleStore,
    history: History,
    bucket: BucketRef,
    *,
    record: str | None = None,
    dry_run: bool = False,
    definitions: Definitions | None = None,
) -> RollbackResult:
    target, source = await target_of(history, bucket.name, record)
    live = await store.get_lifecycle(bucket)
    plan = plan_bucket(bucket.name, target, live)
    defined = definitions.buckets.get(bucket.name) if definitions is not None else None
    undone = defined is not None and plan_bucket(bucket.name, defined.config, plan.desired).has_changes
    if dry_run or plan.action is Action.NOOP:
        return RollbackResult(plan, source, applied=False, history=None, undone_by_definitions=undone)
    cycle_id = f"rollback-{uuid.uuid4().hex[:8]}"
    key = await history.before_write(plan, cycle_id=cycle_id, kind="rollback")
    if plan.action is Action.DELETE:
        await store.delete_lifecycle(bucket)
    else:
        await store.put_lifecycle(bucket, plan.desired)
    applied = Applied.of(plan.desired if plan.action is Action.PUT else LifecycleConfig(), live, time.time())
    await history.after_write(plan, applied, cycle_id=cycle_id, history_key=key)
    return RollbackResult(plan, source, applied=True, history=key, undone_by_definitions=undone)
