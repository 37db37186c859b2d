"""One bucket's write: the write-ahead records, the one PUT or DELETE, then its ``current/`` record.

Every write is preceded by its change record and a snapshot of what the bucket held, so
a write can always be rolled back, and a write that fails or is cut short says so in
its change record (ARCHITECTURE.md, "Records"). The ``current/`` record is saved after
the write, off the cycle's path (a failure costs only the record). On a shutdown that
cancels a write, the outcome is still recorded within :data:`SHIELDED_TIMEOUT`.
"""

from __future__ import annotations

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
from lakecircle.engine.records import Change, Outcome
from lakecircle.errors import LakeCircleError, S3Error
from lakecircle.ports import BucketRef, LifecycleStore

log = structlog.get_logger("lakecircle.engine.cycle")

SHIELDED_TIMEOUT = 5.0
"""Seconds a cycle cut short by a shutdown may still spend recording what it did (the
outcome of an interrupted write, the cycle's report in ``log/``)."""


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

    async def write(self, pending: PendingWrite, background: TaskGroup) -> BucketResult:
        """The write-ahead records, then the one PUT or DELETE, then (in ``background``) current/."""
        ref, decision, last = pending.ref, pending.decision, pending.last
        plan, name = decision.plan, ref.name
        change: Change | None = None
        cancelled = anyio.get_cancelled_exc_class()
        if self.history is not None:
            last_key = last.history if last is not None else None
            change = self.history.change_record(plan, cycle_id=self.cycle_id, last_applied=last_key)
            try:
                await self.history.before_write(change)
            except SnapshotError as exc:
                if exc.record_saved:
                    await self._finish_change(change, Outcome.NOT_STARTED, str(exc))
                return BucketResult(name, BucketState.FAILED, plan=plan, error=str(exc), stage=Stage.SNAPSHOT)
            except cancelled:
                await self._finish_change(change, Outcome.NOT_STARTED, "cut short by shutdown", shielded=True)
                raise
        try:
            if plan.action is Action.DELETE:
                await self.store.delete_lifecycle(ref)
            else:
                await self.store.put_lifecycle(ref, plan.desired)
        except S3Error as exc:
            if change is not None:
                await self._finish_change(change, Outcome.FAILED, str(exc))
            return BucketResult(
                name, BucketState.FAILED, plan=plan, error=str(exc), stage=Stage.WRITE, history=_key(change)
            )
        except cancelled:
            if change is not None:
                why = "cut short by shutdown while the request was under way: the bucket may hold either configuration"
                await self._finish_change(change, Outcome.FAILED, why, shielded=True)
            raise
        applied = self._applied(pending, _key(change))
        self.applied.remember(name, applied)
        if self.history is not None and change is not None:
            background.start_soon(self._save_current, self.history, plan, applied, change.key)
        return BucketResult(
            name,
            BucketState.DIVERGING if decision.diverging else BucketState.CHANGED,
            plan=plan,
            dropped=decision.dropped,
            external=decision.external,
            guard=decision.guard,
            history=_key(change),
        )

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

    async def _save_current(self, history: History, plan: BucketPlan, applied: Applied, history_key: str) -> None:
        """Save the bucket's current/ record (after its write; a failure costs only the record)."""
        async with self.record_slots:
            try:
                await history.after_write(plan, applied, cycle_id=self.cycle_id, history_key=history_key)
            except Exception as exc:
                log.exception("current_record_not_saved", bucket=plan.bucket, error=str(exc))

    async def _finish_change(self, change: Change, outcome: Outcome, error: str, *, shielded: bool = False) -> None:
        """Say in a change record that its write failed or never started (a failure to
        say so is logged: the record then reads as unknown)."""
        assert self.history is not None  # noqa: S101 -- a change record exists only with a history
        with anyio.move_on_after(SHIELDED_TIMEOUT if shielded else None, shield=shielded):
            try:
                await self.history.finish(change, outcome, error)
            except LakeCircleError as exc:
                log.warning("change_outcome_not_saved", key=change.key, outcome=outcome.value, error=str(exc))


def _key(change: Change | None) -> str | None:
    return None if change is None else change.key
