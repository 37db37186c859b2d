"""One bucket's write: the write-ahead change record, the one PUT or DELETE, then its ``current/`` record.

Every write is preceded by its change record, which holds what the bucket held, so a
write can always be rolled back, and a write that fails or is cut short says so in its
change record (ARCHITECTURE.md, "Records"). The ``current/`` record is saved after the
write, off the cycle's path (a failure costs only the record): three requests per written
bucket. On a shutdown that
cancels a write, the outcome is still recorded within :data:`SHIELDED_TIMEOUT`.

With replicas (issue 17), a write is fenced by this replica's lease of the account
(:class:`~lakecircle.engine.leases.Fence`): it starts only while the lease has the write's
timeout plus a margin left (asked before its records, and again before its request, as the
records take time), its PUT or DELETE is cut after that timeout (so it ends before the lease
could pass to another replica), and its records name the holder and the epoch. A closed fence
stops the cycle's writes, as a drain does (ARCHITECTURE.md, Safety).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import TaskGroup

from lakecircle.clocks import WallClock
from lakecircle.core.decide import Decision, owned_after
from lakecircle.core.drift import Applied
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.plan import Action, BucketPlan
from lakecircle.core.report import BucketResult, BucketState, Stage
from lakecircle.engine.applied import AppliedCache
from lakecircle.engine.history import History, SnapshotError
from lakecircle.engine.leases import Fence, flight
from lakecircle.engine.records import Change, LeaseStamp, Outcome
from lakecircle.errors import LakeCircleError, S3Error
from lakecircle.ports import BucketRef, LifecycleStore

log = structlog.get_logger("lakecircle.engine.cycle")

SHIELDED_TIMEOUT = 5.0
"""Seconds a cycle cut short by a shutdown may still spend recording what it did (the
outcome of an interrupted write, the cycle's report in ``log/``)."""

EITHER = "the bucket may hold either configuration"


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A bucket read and decided that needs a write: what :meth:`BucketWriter.write` takes
    (in a dry run, what is reported instead)."""

    ref: BucketRef
    decision: Decision
    last: Applied | None
    """LakeCircle's last applied write to the bucket."""
    owned: tuple[str, ...]
    """IDs of the rules the write takes from the definitions (its record adds those it
    owned whose removal a guard held back: :func:`~lakecircle.core.decide.owned_after`)."""


@dataclass(slots=True)
class BucketWriter:
    """Writes the buckets of one cycle."""

    store: LifecycleStore
    history: History | None
    applied: AppliedCache
    clock: WallClock
    cycle_id: str
    record_slots: anyio.CapacityLimiter
    """current/ records saved at once: as many as buckets in work."""
    fence: Fence | None = None
    """This replica's lease of the account (None: leases are off). A write starts only while it
    allows, is cut after its ``write_timeout``, and its records name the holder and epoch."""
    fenced_out: bool = False
    """A write found the fence closed: the cycle starts no more writes (as when it drains)."""

    async def write_reported(
        self, pending: PendingWrite, background: TaskGroup, collect: Callable[[BucketResult], None]
    ) -> None:
        """:meth:`write`, its result handed to ``collect``, also when it is cut short or fails by a bug."""
        try:
            result = await self.write(pending, background)
        except anyio.get_cancelled_exc_class():
            why = f"cut short by {self.cut_by()} while it was being written"
            collect(
                BucketResult(
                    pending.ref.name, BucketState.FAILED, plan=pending.decision.plan, error=why, stage=Stage.WRITE
                )
            )
            raise
        except Exception as exc:  # a bug must cost one bucket, not the cycle
            log.exception("bucket_internal_error", bucket=pending.ref.name)
            result = BucketResult(pending.ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
        collect(result)

    async def write(self, pending: PendingWrite, background: TaskGroup) -> BucketResult:
        """The write-ahead change record, then the one PUT or DELETE, then (in ``background``) current/."""
        ref, decision, last = pending.ref, pending.decision, pending.last
        plan, name = decision.plan, ref.name
        stamp = lease_stamp(self.fence)
        if self.fence is not None and stamp is None:
            return self._fenced(plan)
        change: Change | None = None
        if self.history is not None:
            last_key = last.history if last is not None else None
            change = self.history.change_record(plan, cycle_id=self.cycle_id, last_applied=last_key, lease=stamp)
            failed = await self._before_write(change, plan)
            if failed is not None:
                return failed
        if self.fence is not None and lease_stamp(self.fence) != stamp:  # the records took time: ask again
            if change is not None:
                await self._finish_change(change, Outcome.NOT_STARTED, not_written(self.fence))
            return self._fenced(plan, change)
        error = await self._send(ref, plan, change)
        if error is not None:
            return BucketResult(
                name, BucketState.FAILED, plan=plan, error=error, stage=Stage.WRITE, history=_key(change)
            )
        applied = self._applied(pending, _key(change))
        self.applied.remember(name, applied)
        if self.history is not None and change is not None:
            background.start_soon(self._save_current, self.history, plan, applied, change.key, stamp)
        return BucketResult(
            name,
            BucketState.DIVERGING if decision.diverging else BucketState.CHANGED,
            plan=plan,
            dropped=decision.dropped,
            external=decision.external,
            guard=decision.guard,
            history=_key(change),
        )

    def cut_by(self) -> str:
        """What cut a write short when it is cancelled: a shutdown, or the loss of the lease."""
        if self.fence is not None and not self.fence.may_start_write():
            return f"the loss of this replica's lease of account {self.fence.account}"
        return "shutdown"

    def _fenced(self, plan: BucketPlan, change: Change | None = None) -> BucketResult:
        """The fence is closed: this bucket is not written, and the cycle starts no more writes."""
        self.fenced_out = True
        error = not_written(self.fence)
        return BucketResult(
            plan.bucket, BucketState.FAILED, plan=plan, error=error, stage=Stage.WRITE, history=_key(change)
        )

    async def _before_write(self, change: Change, plan: BucketPlan) -> BucketResult | None:
        """Save the write-ahead change record; the bucket's failed result when it could not be."""
        assert self.history is not None  # noqa: S101 -- a change record exists only with a history
        try:
            await self.history.before_write(change)
        except SnapshotError as exc:
            return BucketResult(plan.bucket, BucketState.FAILED, plan=plan, error=str(exc), stage=Stage.SNAPSHOT)
        except anyio.get_cancelled_exc_class():
            await self._finish_change(change, Outcome.NOT_STARTED, f"cut short by {self.cut_by()}", shielded=True)
            raise
        return None

    async def _send(self, ref: BucketRef, plan: BucketPlan, change: Change | None) -> str | None:
        """The one PUT or DELETE (all its attempts within the fence's write timeout); why it failed, else None."""
        try:
            if await send_write(self.store, ref, plan, self.fence):
                return None
            error = f"{cut_after(self.fence)}: {EITHER}"
        except S3Error as exc:
            error = str(exc)
        except anyio.get_cancelled_exc_class():
            if change is not None:
                why = f"cut short by {self.cut_by()} while the request was under way: {EITHER}"
                await self._finish_change(change, Outcome.FAILED, why, shielded=True)
            raise
        if change is not None:
            await self._finish_change(change, Outcome.FAILED, error)
        return error

    def _applied(self, pending: PendingWrite, history_key: str | None) -> Applied:
        """The record of the write just made."""
        decision, last, plan = pending.decision, pending.last, pending.decision.plan
        # A correction the bucket never held on to counts towards the backoff.
        again = last is not None and (decision.diverging or (decision.external and not last.confirmed))
        return Applied.of(
            plan.desired if plan.action is Action.PUT else LifecycleConfig(),
            last.previous_json() if decision.diverging and last is not None else plan.live,
            self.clock(),
            rewrites=last.rewrites + 1 if again and last is not None else 0,
            owned=owned_after(pending.owned, plan.held, last.owned if last is not None else None),
            history=history_key,
        )

    async def _save_current(
        self, history: History, plan: BucketPlan, applied: Applied, history_key: str, lease: LeaseStamp | None
    ) -> None:
        """Save the bucket's current/ record (after its write; a failure costs only the record)."""
        async with self.record_slots:
            try:
                await history.after_write(plan, applied, cycle_id=self.cycle_id, history_key=history_key, lease=lease)
            except Exception as exc:
                log.exception("current_record_not_saved", bucket=plan.bucket, error=str(exc))

    async def _finish_change(self, change: Change, outcome: Outcome, error: str, *, shielded: bool = False) -> None:
        """Say in a change record that its write failed or never started (a failure to
        say so is logged: the record then reads as unknown)."""
        assert self.history is not None  # noqa: S101 -- a change record exists only with a history
        await finish_change(self.history, change, outcome, error, shielded=shielded)


def _key(change: Change | None) -> str | None:
    return None if change is None else change.key


def lease_stamp(fence: Fence | None) -> LeaseStamp | None:
    """The holder and epoch a write may start in now (None: it may not, or there is no fence)."""
    if fence is None or not fence.may_start_write():
        return None
    epoch = fence.epoch
    return None if epoch is None else LeaseStamp(fence.holder, epoch)


def not_written(fence: Fence | None) -> str:
    """Why a write was not started: the fence closed."""
    account = fence.account if fence is not None else "?"
    return f"not written: this replica's lease of account {account} is lost or about to expire"


def cut_after(fence: Fence | None) -> str:
    """Why a write's answer was not waited for: the fence's write timeout ran out."""
    limit = fence.write_timeout if fence is not None else 0.0
    return f"cut after {limit:g} s, the longest a write may take under this replica's lease"


async def send_write(store: LifecycleStore, ref: BucketRef, plan: BucketPlan, fence: Fence | None) -> bool:
    """The one PUT or DELETE of ``plan``, all its attempts within the fence's write timeout
    (counted as a write in flight meanwhile): True when it was answered, False when it was cut
    (the bucket may hold either configuration). S3Error when S3 refused it."""
    with flight(fence) as answered, anyio.move_on_after(fence.write_timeout if fence is not None else None) as scope:
        if plan.action is Action.DELETE:
            await store.delete_lifecycle(ref)
        else:
            await store.put_lifecycle(ref, plan.desired)
        answered()
    return not scope.cancelled_caught


async def finish_change(
    history: History, change: Change, outcome: Outcome, error: str, *, shielded: bool = False
) -> None:
    """Say in a change record that its write failed or never started; a failure to say so is
    logged (the record then reads as unknown), as the write's own error is what is reported.
    ``shielded``: also when cancelled, within :data:`SHIELDED_TIMEOUT`."""
    with anyio.move_on_after(SHIELDED_TIMEOUT if shielded else None, shield=shielded):
        try:
            await history.finish(change, outcome, error)
        except LakeCircleError as exc:
            log.warning("change_outcome_not_saved", key=change.key, outcome=outcome.value, error=str(exc))
