"""Roll a bucket back to a recorded configuration, through the same write-ahead path.

Only applied changes count. The default target is what the bucket held before
LakeCircle's last applied change: the ``previous`` of its ``current/`` record, which is
written only after a write succeeded (a change record is saved before every attempt, so
the newest one may be of a write that failed). With ``--to``, the target is what a change
record says the bucket held before that change (its ``before``), and the change must have
been applied. The ``previous/`` objects of versions before issue 18 are never read: after a
failed write they hold the bucket's own state, not the one before the last change.

The rollback is itself a change: it gets its own change record, marked applied (a
running daemon does not know of it, so its next change record would not name it) and
becomes the bucket's ``current/``. If the definitions say otherwise, the next cycle
would undo it, and the result says so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

import anyio

from lakecircle.core.definitions import Definitions
from lakecircle.core.drift import Applied
from lakecircle.core.model import BucketDefinition, LifecycleConfig
from lakecircle.core.plan import Action, BucketPlan, plan_bucket
from lakecircle.core.problems import printable
from lakecircle.core.validate.bucket import validate_bucket
from lakecircle.engine.history import History
from lakecircle.engine.leases import Fence
from lakecircle.engine.records import Outcome, RecordError
from lakecircle.engine.write import EITHER, cut_after, finish_change, lease_stamp, not_written, send_write
from lakecircle.errors import LakeCircleError, S3Error
from lakecircle.ports import BucketRef, LifecycleStore

_NOT_APPLIED = {
    Outcome.FAILED: "its write failed",
    Outcome.NOT_STARTED: "its write never started",
    Outcome.UNKNOWN: "no outcome of its write is recorded",
}


@dataclass(frozen=True, slots=True)
class RollbackResult:
    plan: BucketPlan
    source: str
    applied: bool
    history: str | None
    undone_by_definitions: bool
    """The definitions disagree: the next cycle would write them over the rollback."""
    unreadable: list[RecordError] = field(default_factory=list)
    """Stored records that could not be read on the way (the rollback went on without them)."""


@dataclass(frozen=True, slots=True)
class Target:
    config: LifecycleConfig
    source: str
    last_applied: str | None
    """The bucket's last applied change (the rollback's record names it)."""
    unreadable: list[RecordError]


async def target_of(history: History, bucket: str, record: str | None, storage_classes: Collection[str] = ()) -> Target:
    """What to restore, from applied changes only; LakeCircleError (one line) when there is none.
    ``storage_classes``: the server's own transition targets (``LCC_STORAGE_CLASSES``), valid in a record."""
    if record is None:
        current = await history.read_current(bucket)
        if current is None:
            raise LakeCircleError(
                f"no applied change of {printable(bucket)} is recorded ({History.current_key(bucket)} does not exist):"
                f" nothing to roll back; see `lakecircle history {printable(bucket)}` and name a record with --to"
            )
        key = History.current_key(bucket)
        if current.bucket != bucket:
            raise RecordError(key, f"a record of bucket {printable(current.bucket)}, not of {printable(bucket)}")
        if current.previous is None or "Rules" not in current.previous:
            # Never read as "no rules": that would delete every rule the bucket holds.
            raise RecordError(
                key,
                "holds no previous configuration (null, missing, or without Rules), so what the bucket held"
                " before is unknown;"
                f" nothing was written: name a change record with --to (see `lakecircle history {printable(bucket)}`)",
            )
        config = History.current_config(current, "previous")
        _check_restorable(key, bucket, config, storage_classes)
        change = f" (before change {current.history})" if current.history else ""
        return Target(config, f"{History.current_key(bucket)}{change}", current.history, [])

    target = await history.read_change(record)
    if target.document.bucket != bucket:
        raise RecordError(record, f"a record of bucket {printable(target.document.bucket)}, not of {printable(bucket)}")
    known = await history.bucket_history(bucket)
    resolved = next((r for r in known.records if r.key == record), target)
    if resolved.outcome is not Outcome.APPLIED:
        why = _NOT_APPLIED[resolved.outcome] + (f" ({resolved.error})" if resolved.error else "")
        raise RecordError(
            record,
            f"{why}, so the bucket never held its result; rollback uses applied changes only"
            f" (see `lakecircle history {printable(bucket)}`)",
        )
    if "Rules" not in resolved.document.before:
        # LakeCircle always writes Rules (an empty list for none): never read a record that
        # does not say as "no rules", which would delete every rule the bucket holds.
        raise RecordError(record, "its before holds no Rules, so what the bucket held before is unknown")
    config = resolved.config("before")
    _check_restorable(record, bucket, config, storage_classes)
    last = known.current.history if known.current is not None else None
    return Target(config, record, last, known.unreadable)


def _check_restorable(key: str, bucket: str, config: LifecycleConfig, storage_classes: Collection[str]) -> None:
    """A recorded configuration goes through the same validation as a definition before it
    is written back (a record may have been edited, or written by a server that kept what
    S3 would refuse): RecordError naming the key and the first problem otherwise."""
    definition = BucketDefinition(bucket, config, (key,))
    errors = [p for p in validate_bucket(definition, storage_classes) if p.is_error and p.field != "BucketName"]
    if errors:
        first = errors[0]
        where = ", ".join(part for part in (first.rule and f"rule {first.rule}", first.field) if part)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RecordError(
            key,
            f"the configuration it holds would be refused by S3 ({where}: {first.message}){more};"
            " nothing was written: name another record with --to",
        )


async def rollback(
    store: LifecycleStore,
    history: History,
    bucket: BucketRef,
    *,
    record: str | None = None,
    dry_run: bool = False,
    definitions: Definitions | None = None,
    fence: Fence | None = None,
    storage_classes: Collection[str] = (),
) -> RollbackResult:
    """Restore the bucket's configuration from a record, through the write-ahead path; with
    replicas (``fence``) only while this replica's lease lets a write start, cut after the write
    timeout, and stamped with the lease's holder and epoch."""
    target = await target_of(history, bucket.name, record, storage_classes)
    live = await store.get_lifecycle(bucket)
    plan = plan_bucket(bucket.name, target.config, live)
    defined = definitions.buckets.get(bucket.name) if definitions is not None else None
    undone = defined is not None and plan_bucket(bucket.name, defined.config, plan.desired).has_changes
    if dry_run or plan.action is Action.NOOP:
        return RollbackResult(plan, target.source, False, None, undone, target.unreadable)
    cycle_id = f"rollback-{uuid.uuid4().hex[:8]}"
    stamp = lease_stamp(fence)
    change = history.change_record(
        plan, cycle_id=cycle_id, kind="rollback", last_applied=target.last_applied, lease=stamp
    )
    await history.before_write(change)  # SnapshotError: the bucket is not written
    if fence is not None and (stamp is None or lease_stamp(fence) != stamp):  # the records took time: same epoch?
        why = not_written(fence)
        await finish_change(history, change, Outcome.NOT_STARTED, why)
        raise LakeCircleError(f"{bucket.name}: {why}; run the rollback again")
    try:
        answered = await send_write(store, bucket, plan, fence)
    except S3Error as exc:
        await finish_change(history, change, Outcome.FAILED, str(exc))
        raise
    if not answered:
        why = cut_after(fence)
        await finish_change(history, change, Outcome.FAILED, f"{why}: {EITHER}")
        raise LakeCircleError(f"{bucket.name}: {why}; {EITHER}: run it again")
    applied = Applied.of(
        plan.desired if plan.action is Action.PUT else LifecycleConfig(), live, time.time(), history=change.key
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: history.after_write(plan, applied, cycle_id=cycle_id, history_key=change.key, lease=stamp)
        )
        tg.start_soon(history.finish, change, Outcome.APPLIED)
    return RollbackResult(plan, target.source, True, change.key, undone, target.unreadable)
