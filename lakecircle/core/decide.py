"""What to do with a bucket read and planned: the safety policy of a cycle as one pure function.

The engine reads a bucket, plans it, and asks :func:`decide`: leave it (in sync), write
it, write it without its removals (which guard held them), wait for S3 to show a write
that was just made, or back off a bucket that keeps diverging (ARCHITECTURE.md,
"Safety"). Everything comes in as values (the plan, what LakeCircle last wrote to the
bucket, the time, the settle window, whether the definitions were read whole), and a
small frozen :class:`Decision` comes out; the engine does the I/O it implies. Shared
ownership (leaving another writer's rules in a ``shared`` bucket) shapes the plan
itself, so it is the planning predicate :func:`others_rules`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lakecircle.core.drift import Applied, Verdict, judge, server_dropped
from lakecircle.core.model import Rule
from lakecircle.core.plan import Action, BucketPlan, hold_removals, hold_selector_changes, selector_changes
from lakecircle.core.report import BucketResult, BucketState, Guard


class Do(StrEnum):
    """What the engine does with a bucket."""

    NOTHING = "nothing"
    """In sync (another writer's rules in a shared bucket left as they are)."""
    HOLD = "hold"
    """Its only changes are removals a guard holds back: nothing to write, reported drifted."""
    WAIT = "wait"
    """Just written, and S3 still answers with what it held before: propagating, not written."""
    BACK_OFF = "back_off"
    """Still not what LakeCircle wrote, and its backoff has not passed: diverging, not written."""
    WRITE = "write"
    """Write the decision's plan (in a dry run: report it)."""


@dataclass(frozen=True, slots=True)
class Decision:
    do: Do
    plan: BucketPlan
    """The plan to write or report (without its removals when a guard held them)."""
    verdict: Verdict | None = None
    """What the difference means given LakeCircle's last write (None: not judged)."""
    guard: Guard | None = None
    """The guard that held back the plan's removals."""
    dropped: tuple[str, ...] = ()
    """Fields the server did not store although LakeCircle wrote them."""
    confirm: bool = False
    """The last write is now known to be held as far as the server can: mark it confirmed."""

    @property
    def external(self) -> bool:
        """Another writer changed what LakeCircle wrote."""
        return self.verdict is Verdict.EXTERNAL_DRIFT

    @property
    def diverging(self) -> bool:
        """A rewrite of a bucket that did not keep what it was sent (it counts towards the backoff)."""
        return self.verdict is Verdict.DIVERGING_WRITE

    @property
    def removals(self) -> int:
        """Rule removals the write makes (a DELETE counts the bucket's rules)."""
        return len(self.plan.live.rules) if self.plan.action is Action.DELETE else len(self.plan.removed)


def others_rules(owned: tuple[str, ...] | None) -> Callable[[Rule], bool]:
    """The live rules a shared bucket keeps: every rule but those LakeCircle wrote last
    (``owned``, the IDs of its last write; None: never written, so every foreign rule)."""
    ours = set(owned or ())
    return lambda rule: rule.id not in ours


def owned_after(written: tuple[str, ...], held: Sequence[Rule], owned: tuple[str, ...] | None) -> tuple[str, ...]:
    """The rule IDs a write leaves LakeCircle's own: those it took from the definitions
    (``written``), and those of the rules it already owned (``owned``, its last write's)
    whose removal a guard held back. Those stay in the bucket as LakeCircle's, so that a
    shared bucket removes them once the guard lets them go, rather than taking them for
    another writer's."""
    mine = set(owned or ())
    return written + tuple(r.id for r in held if r.id is not None and r.id in mine and r.id not in written)


def needs_record(plan: BucketPlan, *, partial: bool) -> bool:
    """Whether :func:`decide` reads the last write's record: the plan writes something
    after the partial-definitions guard (an in-sync bucket costs no lookup)."""
    return (hold_partial(plan) if partial else plan).action is not Action.NOOP


def hold_partial(plan: BucketPlan) -> BucketPlan:
    """What a picture that is not whole lets go: removals and selectors' changes held back."""
    return hold_removals(hold_selector_changes(plan))


def decide(plan: BucketPlan, record: Applied | None, *, now: float, settle: float, partial: bool) -> Decision:
    """What to do with a planned bucket, ``record`` being LakeCircle's last write to it.

    Definitions read only in part hold back every removal, and every change a selector asks
    of a live rule (:attr:`Guard.PARTIAL_DEFINITIONS`); a plan with nothing else is HOLD.
    An empty plan is NOTHING. Otherwise the drift verdict (:func:`~lakecircle.core.drift.judge`)
    says WAIT (propagating), BACK_OFF (diverging within its backoff) or WRITE.
    """
    guard: Guard | None = None
    if partial and (plan.removed or selector_changes(plan)):
        guard, plan = Guard.PARTIAL_DEFINITIONS, hold_partial(plan)
        if plan.action is Action.NOOP:  # only removals and selectors' changes, all held back
            return Decision(Do.HOLD, plan, guard=guard)
    if plan.action is Action.NOOP:
        return Decision(Do.NOTHING, plan)
    verdict = judge(plan, record, now=now, settle=settle)
    dropped = tuple(server_dropped(plan) or ())
    # The server holds all it can of LakeCircle's write: a later change is someone else's.
    confirm = bool(dropped) and record is not None and verdict is not Verdict.WRITE and not record.confirmed
    do = {Verdict.PROPAGATING: Do.WAIT, Verdict.DIVERGING_WAIT: Do.BACK_OFF}.get(verdict, Do.WRITE)
    return Decision(do, plan, verdict, guard, () if do is Do.WAIT else dropped, confirm)


def without_removals(decision: Decision, guard: Guard) -> Decision:
    """A write with its removals held back by ``guard`` (the blast radius, or an unknown
    total): the write of what else changed, or HOLD when nothing else did."""
    plan = hold_removals(decision.plan)
    do = Do.HOLD if plan.action is Action.NOOP else decision.do
    return dataclasses.replace(decision, do=do, plan=plan, guard=guard)


def unwritten(bucket: str, decision: Decision) -> BucketResult:
    """The result of a bucket not written: in sync, held, waiting, backing off, or (a
    write in a dry run) what it would write."""
    if decision.do is Do.NOTHING:
        return BucketResult(bucket, BucketState.IN_SYNC)
    if decision.do is Do.WAIT:
        return BucketResult(bucket, BucketState.PROPAGATING, plan=decision.plan, guard=decision.guard)
    diverging = decision.do is Do.BACK_OFF or (decision.do is Do.WRITE and decision.diverging)
    return BucketResult(
        bucket,
        BucketState.DIVERGING if diverging else BucketState.DRIFTED,
        plan=decision.plan,
        dropped=decision.dropped,
        external=decision.external,
        guard=decision.guard,
    )
