"""One reconcile cycle: definitions and the live account in, one report value out.

The cycle lists the account's buckets a page at a time and feeds the managed ones (the
defined buckets that exist) to a bounded pool of workers: read live, plan, and in SYNC
mode make exactly one PUT or DELETE for a changed bucket. A failing bucket is reported
and the others go on. Metrics, log lines, history and exit codes are all derived from
the :class:`CycleReport` it returns.

The removal guard is a stop, not an allowance: a cycle whose planned removals exceed
``LCC_MAX_REMOVALS`` removes none of them. Since writes go on while other buckets are
still being read, a bucket whose write removes rules waits until the cycle knows its
total (every bucket read), unless the total is already over the limit, when it is
written at once without its removals. Buckets without removals are written at once, and
at most ``LCC_MAX_REMOVALS`` buckets ever wait (each removes at least one rule).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from lakecircle.core.definitions import Definitions
from lakecircle.core.digest import in_sync
from lakecircle.core.drift import Applied, Verdict, judge, server_dropped
from lakecircle.core.model import LifecycleConfig, Rule
from lakecircle.core.plan import Action, BucketPlan, hold_removals, plan_bucket
from lakecircle.engine.history import History, SnapshotError
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.records import Change, Outcome
from lakecircle.errors import LakeCircleError, S3Error, TransientError
from lakecircle.ports import BucketRef, LifecycleStore, ObjectRef

log = structlog.get_logger("lakecircle.engine.cycle")


class BucketState(StrEnum):
    IN_SYNC = "in_sync"
    CHANGED = "changed"
    """Written this cycle."""
    DRIFTED = "drifted"
    """Differs from its definition and was not written (a dry run)."""
    MISSING = "missing"
    """Defined, but not in the account."""
    INVALID = "invalid"
    """Its definition has errors: skipped."""
    FAILED = "failed"
    PROPAGATING = "propagating"
    """Just written; S3 still answers with what it held before. Not written again."""
    DIVERGING = "diverging"
    """Still not what LakeCircle wrote after the settle window: rewritten only with backoff."""


class Guard(StrEnum):
    """A guard that holds back a cycle's removals."""

    PARTIAL_DEFINITIONS = "partial_definitions"
    """A definition file could not be read: the picture is partial, nothing is removed."""
    BLAST_RADIUS = "blast_radius"
    """More removals planned than ``LCC_MAX_REMOVALS``: none is made until a person allows it."""
    UNKNOWN_TOTAL = "unknown_total"
    """The account's bucket listing failed part way, or a bucket could not be read for a
    reason that may pass (throttling, a server error, the network): the cycle's total of
    removals is unknown, so the removals that waited for it are not made. (A bucket whose
    read is refused for good, access denied or gone, cannot be written in any cycle and
    does not count.)"""


SHIELDED_TIMEOUT = 5.0
"""Seconds a cycle cut short by a shutdown may still spend recording what it did (the
outcome of an interrupted write, the cycle's report in ``log/``)."""


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """A plan in numbers: what reports and metrics need of it."""

    action: Action
    added: int
    removed: int
    changed: int
    held: int = 0
    """Removals a guard held back (the rules stay)."""

    @classmethod
    def of(cls, plan: BucketPlan) -> PlanCounts:
        return cls(plan.action, len(plan.added), len(plan.removed), len(plan.changed), len(plan.held))


@dataclass(frozen=True, slots=True)
class BucketResult:
    bucket: str
    state: BucketState
    plan: BucketPlan | None = None
    """The plan, where the reconciler keeps plans (commands do; the daemon keeps counts)."""
    error: str | None = None
    stage: str | None = None
    """Where a failure happened: read, write."""
    dropped: tuple[str, ...] = ()
    """Fields the server did not store although LakeCircle wrote them."""
    external: bool = False
    """The bucket held what LakeCircle wrote and another writer changed it since."""
    guard: str | None = None
    """The guard (a :class:`Guard` value) that held back this bucket's removals."""
    history: str | None = None
    """The key of the change record written before this bucket's write."""
    counts: PlanCounts | None = None
    """The plan's counts (set whenever there was a plan, kept or not)."""

    def __post_init__(self) -> None:
        if self.counts is None and self.plan is not None:
            object.__setattr__(self, "counts", PlanCounts.of(self.plan))

    def without_plan(self) -> BucketResult:
        """The same result holding the plan's counts only."""
        return self if self.plan is None else dataclasses.replace(self, plan=None)


@dataclass(frozen=True, slots=True)
class CycleReport:
    cycle_id: str
    trigger: str
    dry_run: bool
    started_at: float
    duration: float
    results: tuple[BucketResult, ...]
    definitions: Definitions | None
    buckets_listed: int = 0
    fatal: str | None = None
    """Set when the cycle could not run at all (definitions not listable, account unreadable)."""
    counts: Counter[BucketState] = field(default_factory=Counter)
    fingerprint: bytes | None = None
    """The fingerprint of the definition listing this cycle used
    (:func:`~lakecircle.engine.loader.listing_fingerprint`)."""
    interrupted: bool = False
    """Stopped early by a shutdown: buckets not reached are in no list."""
    guards: tuple[str, ...] = ()
    """Guards (:class:`Guard` values) that held back removals this cycle."""
    removals_planned: int = 0
    """Rule removals the cycle's writes would make without the removal guard (a DELETE
    counts the bucket's rules); held-back removals included."""
    removals_held: int = 0
    """Rule removals held back by a guard (the rules stay)."""
    max_removals: int | None = None
    """The removal limit the cycle ran with (None: a person allowed any number)."""
    in_sync_omitted: int = 0
    """Buckets in sync that are counted but have no entry in ``results`` (a daemon's
    report: an account may hold a million buckets in sync)."""

    @property
    def ok(self) -> bool:
        return self.fatal is None and self.counts[BucketState.FAILED] == 0

    @property
    def failed(self) -> list[BucketResult]:
        return [r for r in self.results if r.state is BucketState.FAILED]

    def _sum(self, attr: str, states: tuple[BucketState, ...]) -> int:
        return sum(getattr(r.counts, attr) for r in self.results if r.counts is not None and r.state in states)

    @property
    def rules_added(self) -> int:
        return self._sum("added", (BucketState.CHANGED,))

    @property
    def rules_removed(self) -> int:
        return self._sum("removed", (BucketState.CHANGED,))

    @property
    def rules_changed(self) -> int:
        return self._sum("changed", (BucketState.CHANGED,))

    @property
    def plans(self) -> list[BucketPlan]:
        """Every bucket's plan; a bucket that is not to be written now shows as NOOP."""
        quiet = (BucketState.IN_SYNC, BucketState.PROPAGATING, BucketState.DIVERGING)
        return [
            r.plan
            if r.state not in quiet or not r.plan.has_changes
            else dataclasses.replace(
                r.plan, action=Action.NOOP, added=(), removed=(), changed=(), tdmos_change=None, held=()
            )
            for r in self.results
            if r.plan is not None
        ]

    @property
    def compared(self) -> int:
        """Managed buckets whose live configuration was read and planned."""
        compared = sum(1 for r in self.results if r.counts is not None or r.state is BucketState.IN_SYNC)
        return compared + self.in_sync_omitted

    @property
    def external_drift(self) -> int:
        return sum(1 for r in self.results if r.external)

    @property
    def writes(self) -> int:
        return self.counts[BucketState.CHANGED]

    @property
    def pending(self) -> int:
        return self.counts[BucketState.DRIFTED]


ResultHook = Callable[[BucketResult], None]


class Reconciler:
    """Runs cycles against one account; keeps the definition cache between cycles."""

    def __init__(
        self,
        store: LifecycleStore,
        loader: DefinitionLoader,
        *,
        concurrency: int = 16,
        dry_run: bool = False,
        bucket_filter: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
        history: History | None = None,
        settle_seconds: float = 300.0,
        max_removals: int | None = None,
        allow_mass_removal: bool = False,
        records: MutableMapping[str, Applied] | None = None,
        around_cycle: Callable[[], AbstractContextManager[Any]] | None = None,
        keep_plans: bool = True,
    ) -> None:
        self.store = store
        self.loader = loader
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.bucket_filter = bucket_filter
        self.clock = clock
        self.around_cycle = around_cycle or contextlib.nullcontext
        """Entered for each cycle (the S3 adapter's retry deadline)."""
        self.draining = False
        """Set on shutdown: no new bucket work starts; in-flight work finishes."""
        self.history = history
        """Write-ahead records under the endpoint; None only where nothing is written."""
        self.settle_seconds = settle_seconds
        self.max_removals = max_removals
        """Rule removals a cycle may plan and still make (None: no limit). A cycle that
        plans more makes none of them."""
        self.allow_mass_removal = allow_mass_removal
        """A person allowed this run to remove past ``max_removals`` (it still logs)."""
        self.records: MutableMapping[str, Applied] = {} if records is None else records
        """What LakeCircle last wrote to each bucket, as far as this process knows."""
        self.keep_plans = keep_plans
        """Keep each bucket's plan in the report (commands print them); the daemon keeps
        counts only, so a cycle that writes 10% of a large account holds no models."""
        self._unknown: set[str] = set()
        """Buckets whose current/ record was looked up and does not exist."""
        self._listed: set[str] | None = None
        """This cycle's listing of current/ (None: not listed yet)."""
        self._listing = anyio.Lock()
        self._background: TaskGroup | None = None
        """Where the current/ records of this cycle's writes are saved."""
        self._record_slots = anyio.CapacityLimiter(concurrency)
        """current/ records saved at once: as many as buckets in work."""
        self._write_slots = anyio.Semaphore(concurrency)
        """Bucket writes under way at once; a worker with a write to hand over waits for one."""
        self._run = _Run("", self._removal_guard())
        self.cut_short: CycleReport | None = None
        """The report of the last cycle cancelled part way (a shutdown's timeout): the
        cycle raises, and its caller still counts what it did."""

    def _removal_guard(self) -> _RemovalGuard:
        return _RemovalGuard(None if self.allow_mass_removal else self.max_removals)

    async def run_cycle(
        self, trigger: str = "manual", on_result: ResultHook | None = None, refs: list[ObjectRef] | None = None
    ) -> CycleReport:
        cycle_id = uuid.uuid4().hex[:12]
        started = self.clock()
        self.cut_short = None
        run = self._run = _Run(cycle_id, self._removal_guard())
        self._listed = None
        with structlog.contextvars.bound_contextvars(cycle_id=cycle_id), self.around_cycle():
            try:
                loaded = await self.loader.load(refs)
            except LakeCircleError as exc:
                return self._finish(run, trigger, started, definitions=None, listed=0, fatal=str(exc))
            definitions = loaded.definitions
            run.partial = definitions.partial
            try:
                listed, fatal = await self._reconcile(run, definitions, on_result)
            except anyio.get_cancelled_exc_class():
                # Cut short (the daemon's shutdown timeout): what was done still goes to log/.
                report = self._finish(
                    run, trigger, started, definitions=definitions, listed=run.listed, fatal=None, interrupted=True
                )
                self.cut_short = report
                with anyio.move_on_after(SHIELDED_TIMEOUT, shield=True):
                    await self._save_report(report)
                raise
            report = self._finish(
                run,
                trigger,
                started,
                definitions=definitions,
                listed=listed,
                fatal=fatal,
                fingerprint=loaded.fingerprint,
            )
            if report.writes or not report.ok or report.guards or report.interrupted or definitions.partial:
                if self.draining:  # the shutdown timeout may fall now: the report still goes to log/
                    with anyio.move_on_after(SHIELDED_TIMEOUT, shield=True):
                        await self._save_report(report)
                else:
                    await self._save_report(report)
            return report

    async def _save_report(self, report: CycleReport) -> None:
        if self.history is None:
            return
        try:
            await self.history.write_report(report_document(report), cycle_id=report.cycle_id)
        except LakeCircleError as exc:
            log.warning("cycle_report_not_saved", error=str(exc))

    def _finish(
        self,
        run: _Run,
        trigger: str,
        started: float,
        *,
        definitions: Definitions | None,
        listed: int,
        fatal: str | None,
        fingerprint: bytes | None = None,
        interrupted: bool = False,
    ) -> CycleReport:
        results = sorted(run.results, key=lambda r: r.bucket)
        guard = run.removals
        report = CycleReport(
            cycle_id=run.cycle_id,
            trigger=trigger,
            dry_run=self.dry_run,
            started_at=started,
            duration=max(self.clock() - started, 0.0),
            results=tuple(results),
            definitions=definitions,
            buckets_listed=listed,
            fatal=fatal,
            counts=Counter(r.state for r in results) + Counter({BucketState.IN_SYNC: run.omitted}),
            fingerprint=fingerprint,
            interrupted=interrupted or self.draining,
            guards=tuple(sorted(run.guards)),
            removals_planned=guard.planned,
            removals_held=run.held,
            max_removals=guard.limit,
            in_sync_omitted=run.omitted,
        )
        log_report(report)
        return report

    def _wanted(self, name: str) -> bool:
        return self.bucket_filter is None or name in self.bucket_filter

    async def _reconcile(
        self, run: _Run, definitions: Definitions, on_result: ResultHook | None
    ) -> tuple[int, str | None]:
        quiet = not _debug_enabled()

        def record(result: BucketResult) -> None:
            if not (quiet and result.state is BucketState.IN_SYNC):  # most of a large account
                log_bucket(result)
            if on_result is not None:
                on_result(result)
            if result.guard is not None:
                run.guards.add(Guard(result.guard))
                run.held += result.counts.held if result.counts is not None else 0
            if self.keep_plans:
                run.results.append(result)
            elif result.state is BucketState.IN_SYNC and result.guard is None:
                run.omitted += 1
            else:
                run.results.append(result.without_plan())

        remaining = {n for n in definitions.buckets if self._wanted(n)}
        """Defined buckets not listed yet (what is left at the end is missing)."""
        invalid = {n for n in definitions.invalid if self._wanted(n)}
        fatal: str | None = None
        send, receive = anyio.create_memory_object_stream[BucketRef](self.concurrency)

        async def dispatch(item: BucketResult | _Write) -> None:
            """Record a result, or hand a write to a writer (once a write slot is free)."""
            if isinstance(item, BucketResult):
                record(item)
            elif self.dry_run:
                record(item.unwritten())
            else:
                # Written by a writer, while this worker reads the next bucket.
                await self._write_slots.acquire()
                if self.draining:  # stopped while waiting: a write not yet begun is not begun
                    self._write_slots.release()
                    return
                background.start_soon(write, item)

        async def worker(items: MemoryObjectReceiveStream[BucketRef]) -> None:
            async with items:
                async for ref in items:
                    if self.draining:
                        continue
                    try:
                        result = await self._one(run, ref, definitions)
                    except Exception as exc:  # a bug must cost one bucket, not the cycle
                        log.exception("bucket_internal_error", bucket=ref.name)
                        result = BucketResult(ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
                    if isinstance(result, _Write) and result.removals:
                        for item in run.removals.admit(result):
                            await dispatch(item)
                    else:
                        await dispatch(result)

        async def write(pending: _Write) -> None:
            try:
                result = await self._write(run, pending)
            except anyio.get_cancelled_exc_class():
                record(
                    BucketResult(
                        pending.ref.name,
                        BucketState.FAILED,
                        plan=pending.plan,
                        error="cut short by shutdown while it was being written",
                        stage="write",
                    )
                )
                raise
            except Exception as exc:  # a bug must cost one bucket, not the cycle
                log.exception("bucket_internal_error", bucket=pending.ref.name)
                result = BucketResult(pending.ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
            finally:
                self._write_slots.release()
            record(result)

        # Writes and current/ records are made alongside, off the workers' path; the cycle waits for them.
        async with anyio.create_task_group() as background:
            self._background = background
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(worker, receive.clone())
                receive.close()
                async with send:
                    try:
                        async for page in self.store.iter_buckets():
                            if self.draining:
                                break
                            run.listed += len(page)
                            for ref in page:
                                if ref.name in remaining and not self.draining:
                                    remaining.discard(ref.name)
                                    await send.send(ref)
                    except S3Error as exc:
                        fatal = f"could not list the account's buckets: {exc}"
            # Every bucket read: the cycle knows its planned removals, and the writes that
            # waited for the total go now, with their removals or without. A listing that
            # failed, or a read that may succeed next time, leaves the total unknown: they
            # go without.
            for item in run.removals.release(complete=fatal is None and not run.unread):
                if self.draining:
                    break
                await dispatch(item)
            self._log_removals(run)
        self._background = None

        for name in sorted(invalid):
            problems = definitions.invalid[name]
            record(
                BucketResult(
                    name,
                    BucketState.INVALID,
                    error=f"{len(problems)} problem(s) in its definition, first: {problems[0]}",
                )
            )
        if fatal is None and not self.draining:
            for name in sorted(remaining):
                record(BucketResult(name, BucketState.MISSING, error="defined but not in the account"))
        return run.listed, fatal

    def _log_removals(self, run: _Run) -> None:
        guard = run.removals
        if guard.tripped:
            run.guards.add(Guard.BLAST_RADIUS)
            log.warning(
                "removal_guard_tripped",
                planned=guard.planned,
                limit=guard.limit,
                hint="no rule was removed; review the plan (`lakecircle plan`), then run"
                " `lakecircle sync --allow-mass-removal` once, or set LCC_ALLOW_MASS_REMOVAL=true for the daemon",
            )
        elif self.max_removals is not None and guard.limit is None and guard.planned > self.max_removals:
            log.warning("mass_removal_allowed", planned=guard.planned, limit=self.max_removals)

    async def _one(self, run: _Run, ref: BucketRef, definitions: Definitions) -> BucketResult | _Write:
        """The bucket read and planned: its result, or the write it needs (see :meth:`_write`)."""
        name = ref.name
        try:
            live = await self.store.get_lifecycle(ref)
        except S3Error as exc:
            if isinstance(exc, TransientError):
                run.unread = True  # its removals are unknown: the cycle's total is too
            return BucketResult(name, BucketState.FAILED, error=str(exc), stage="read")
        brief = definitions.desired.get(name)
        if brief is not None and in_sync(brief.rules, brief.tdmos, live):
            # The common case, decided by digests: no models of the definitions, no plan.
            self._confirm(name)
            return BucketResult(name, BucketState.IN_SYNC)
        definition = definitions.buckets[name]
        desired = definition.config
        named = {r.id for r in desired.rules}
        foreign = [r for r in live.rules if r.id not in named]

        keep: Callable[[Rule], bool] | None = None
        if foreign and definition.shared:
            record = await self._record(name)
            ours = set(record.owned) if record is not None else set()
            keep = lambda rule: rule.id not in ours  # noqa: E731 -- a one-line predicate
        plan = plan_bucket(name, desired, live, keep=keep)
        guard: Guard | None = None
        if run.partial and plan.removed:
            run.guards.add(Guard.PARTIAL_DEFINITIONS)
            guard, plan = Guard.PARTIAL_DEFINITIONS, hold_removals(plan)
            if plan.action is Action.NOOP:  # only removals, all held back
                return BucketResult(name, BucketState.DRIFTED, plan=plan, guard=guard)

        if plan.action is Action.NOOP:
            self._confirm(name)
            # No plan kept: an account may hold a million buckets in sync.
            return BucketResult(name, BucketState.IN_SYNC)

        record = await self._record(name)
        verdict = judge(plan, record, now=self.clock(), settle=self.settle_seconds)
        dropped = tuple(server_dropped(plan) or ())
        if dropped and record is not None and verdict is not Verdict.WRITE and not record.confirmed:
            # The server holds all it can of LakeCircle's write: a later change is someone else's.
            self.records[name] = record = dataclasses.replace(record, confirmed=True)
        if verdict is Verdict.PROPAGATING:
            return BucketResult(name, BucketState.PROPAGATING, plan=plan, guard=guard)
        if verdict is Verdict.DIVERGING_WAIT:
            return BucketResult(name, BucketState.DIVERGING, plan=plan, dropped=dropped, guard=guard)

        removals = len(live.rules) if plan.action is Action.DELETE else len(plan.removed)
        owned = tuple(r.id for r in desired.rules if r.id is not None)
        return _Write(ref, plan, record, verdict, guard=guard, dropped=dropped, owned=owned, removals=removals)

    def _confirm(self, name: str) -> None:
        """The bucket was read holding what LakeCircle last wrote to it."""
        known = self.records.get(name)
        if known is not None and not known.confirmed:
            self.records[name] = dataclasses.replace(known, confirmed=True)

    async def _record(self, name: str) -> Applied | None:
        """What LakeCircle last wrote to the bucket: from memory, else its current/ record."""
        known = self.records.get(name)
        if known is not None or name in self._unknown or self.history is None:
            return known
        listed = await self._list_records()
        if listed is not None and name not in listed:
            self._unknown.add(name)
            return None
        try:
            loaded = await self.history.load_applied(name)
        except LakeCircleError as exc:
            log.warning("current_record_unreadable", bucket=name, error=str(exc))
            loaded = None
        if loaded is None:
            self._unknown.add(name)
            return None
        if loaded.confirmed and self.clock() - loaded.at < self.settle_seconds:
            # Written by another process moments ago: no read of this one has confirmed it.
            loaded = dataclasses.replace(loaded, confirmed=False)
        self.records[name] = loaded
        return loaded

    async def _save_current(self, history: History, plan: BucketPlan, applied: Applied, history_key: str) -> None:
        """Save the bucket's current/ record (after its write; a failure costs only the record)."""
        async with self._record_slots:
            try:
                await history.after_write(plan, applied, cycle_id=self._run.cycle_id, history_key=history_key)
            except Exception as exc:
                log.exception("current_record_not_saved", bucket=plan.bucket, error=str(exc))

    async def _list_records(self) -> set[str] | None:
        """The buckets with a current/ record, listed once per cycle when first needed
        (one request per 1,000 records instead of a GET per bucket never written).
        None when the listing failed: each bucket's record is then read on its own."""
        async with self._listing:
            if self._listed is None and self.history is not None:
                try:
                    self._listed = await self.history.applied_buckets()
                except LakeCircleError as exc:
                    log.warning("current_records_not_listed", error=str(exc))
                    self._listed = _UNLISTED
            return None if self._listed is _UNLISTED else self._listed

    async def _finish_change(self, change: Change, outcome: Outcome, error: str, *, shielded: bool = False) -> None:
        """Say in a change record that its write failed or never started (a failure to
        say so is logged: the record then reads as unknown)."""
        assert self.history is not None  # noqa: S101 -- a change record exists only with a history
        with anyio.move_on_after(SHIELDED_TIMEOUT if shielded else None, shield=shielded):
            try:
                await self.history.finish(change, outcome, error)
            except LakeCircleError as exc:
                log.warning("change_outcome_not_saved", key=change.key, outcome=outcome.value, error=str(exc))

    async def _write(self, run: _Run, pending: _Write) -> BucketResult:
        """The write-ahead records, then the one PUT or DELETE, then (alongside) current/."""
        ref, plan, record, verdict = pending.ref, pending.plan, pending.record, pending.verdict
        guard, dropped, owned = pending.guard, pending.dropped, pending.owned
        name = ref.name
        external = verdict is Verdict.EXTERNAL_DRIFT
        change: Change | None = None
        cancelled = anyio.get_cancelled_exc_class()
        if self.history is not None:
            last = record.history if record is not None else None
            change = self.history.change_record(plan, cycle_id=run.cycle_id, last_applied=last)
            try:
                await self.history.before_write(change)
            except SnapshotError as exc:
                if exc.record_saved:
                    await self._finish_change(change, Outcome.NOT_STARTED, str(exc))
                return BucketResult(name, BucketState.FAILED, plan=plan, error=str(exc), stage="snapshot")
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
                name, BucketState.FAILED, plan=plan, error=str(exc), stage="write", history=_key(change)
            )
        except cancelled:
            if change is not None:
                why = "cut short by shutdown while the request was under way: the bucket may hold either configuration"
                await self._finish_change(change, Outcome.FAILED, why, shielded=True)
            raise
        diverging = verdict is Verdict.DIVERGING_WRITE
        # A correction the bucket never held on to counts towards the backoff.
        again = record is not None and (diverging or (external and not record.confirmed))
        applied = Applied.of(
            plan.desired if plan.action is Action.PUT else LifecycleConfig(),
            record.previous_json() if diverging and record is not None else plan.live,
            self.clock(),
            rewrites=record.rewrites + 1 if again and record is not None else 0,
            owned=owned,
            history=_key(change),
        )
        self.records[name] = applied
        self._unknown.discard(name)
        if self.history is not None and change is not None:
            if self._background is not None:
                self._background.start_soon(self._save_current, self.history, plan, applied, change.key)
            else:
                await self._save_current(self.history, plan, applied, change.key)
        state = BucketState.DIVERGING if diverging else BucketState.CHANGED
        return BucketResult(
            name, state, plan=plan, dropped=dropped, external=external, guard=guard, history=_key(change)
        )


def _key(change: Change | None) -> str | None:
    return None if change is None else change.key


@dataclasses.dataclass(frozen=True, slots=True)
class _Write:
    """A bucket read and planned that needs a write: what :meth:`Reconciler._write` takes
    (in a dry run, what is reported instead)."""

    ref: BucketRef
    plan: BucketPlan
    record: Applied | None
    verdict: Verdict
    guard: Guard | None
    dropped: tuple[str, ...]
    owned: tuple[str, ...]
    removals: int = 0
    """Rule removals the write makes (a DELETE counts the bucket's rules)."""

    def unwritten(self) -> BucketResult:
        """What a dry run reports for this write."""
        state = BucketState.DIVERGING if self.verdict is Verdict.DIVERGING_WRITE else BucketState.DRIFTED
        external = self.verdict is Verdict.EXTERNAL_DRIFT
        return BucketResult(
            self.ref.name, state, plan=self.plan, dropped=self.dropped, external=external, guard=self.guard
        )

    def held_back(self, guard: Guard = Guard.BLAST_RADIUS) -> BucketResult | _Write:
        """This write without its removals (the removal guard tripped, or ``guard``): the
        write of what else changed, or the bucket's result when nothing else did."""
        plan = hold_removals(self.plan)
        if plan.action is Action.NOOP:
            external = self.verdict is Verdict.EXTERNAL_DRIFT
            return BucketResult(
                self.ref.name,
                BucketState.DRIFTED,
                plan=plan,
                dropped=self.dropped,
                external=external,
                guard=guard,
            )
        return dataclasses.replace(self, plan=plan, guard=guard, removals=0)


@dataclass(slots=True)
class _RemovalGuard:
    """A cycle's planned removals against the limit: writes that remove rules wait here
    until the total is known, and go without their removals once it is over the limit."""

    limit: int | None
    """None: no limit (a person allowed a mass removal)."""
    planned: int = 0
    tripped: bool = False
    waiting: list[_Write] = field(default_factory=list)
    """At most ``limit`` writes (each removes a rule at least) until the guard trips."""

    def admit(self, pending: _Write) -> list[BucketResult | _Write]:
        """What may go now of a write that removes rules (the others wait)."""
        self.planned += pending.removals
        if self.limit is None:
            return [pending]
        if self.tripped:
            return [pending.held_back()]
        if self.planned > self.limit:
            self.tripped = True
            waited, self.waiting = self.waiting, []
            return [w.held_back() for w in (*waited, pending)]
        self.waiting.append(pending)
        return []

    def release(self, *, complete: bool = True) -> list[BucketResult | _Write]:
        """The writes that waited: as planned when every bucket was read (``complete``) and
        the total is within the limit; without their removals when the account's listing
        failed or a read failed for a passing reason, since the total is then unknown."""
        waited, self.waiting = self.waiting, []
        if complete:
            return list(waited)
        return [w.held_back(Guard.UNKNOWN_TOTAL) for w in waited]


@dataclass(slots=True)
class _Run:
    """One cycle's state: lives and dies with the cycle."""

    cycle_id: str
    removals: _RemovalGuard
    partial: bool = False
    results: list[BucketResult] = field(default_factory=list)
    omitted: int = 0
    """Buckets in sync that ``results`` leaves out (``keep_plans`` off)."""
    guards: set[Guard] = field(default_factory=set)
    held: int = 0
    """Rule removals held back by a guard."""
    listed: int = 0
    unread: bool = False
    """A managed bucket's read failed for a reason that may pass (a transient error)."""


def _debug_enabled() -> bool:
    """Whether the log takes DEBUG lines (a bucket in sync is one)."""
    logger = structlog.get_logger("lakecircle.engine.cycle").bind()
    check = getattr(logger, "is_enabled_for", None)
    return True if check is None else bool(check(logging.DEBUG))


_UNLISTED: set[str] = set()
"""The listing of current/ failed this cycle (compared by identity)."""


def report_document(report: CycleReport) -> dict[str, Any]:
    """The cycle report as JSON-ready data (``log/`` records, ``plan --output json``)."""
    return {
        "cycle_id": report.cycle_id,
        "trigger": report.trigger,
        "dry_run": report.dry_run,
        "started_at": report.started_at,
        "duration_s": round(report.duration, 3),
        "ok": report.ok,
        "fatal": report.fatal,
        "interrupted": report.interrupted,
        "guards": [str(guard) for guard in report.guards],
        "partial_definitions": bool(report.definitions and report.definitions.partial),
        "removals": {
            "planned": report.removals_planned,
            "held": report.removals_held,
            "limit": report.max_removals,
        },
        "unreadable_files": [f.as_dict() for f in report.definitions.unreadable_files] if report.definitions else [],
        "counts": {state.value: report.counts[state] for state in BucketState},
        "rules": {"added": report.rules_added, "changed": report.rules_changed, "removed": report.rules_removed},
        "problems": [
            {"bucket": r.bucket, "state": r.state.value, "error": r.error, "stage": r.stage}
            for r in report.results
            if r.error is not None
        ],
        "changes": [
            {
                "bucket": r.bucket,
                "state": r.state.value,
                "history": r.history,
                "external": r.external,
                "held": r.counts.held if r.counts is not None else 0,
            }
            for r in report.results
            if r.state in (BucketState.CHANGED, BucketState.DIVERGING, BucketState.DRIFTED)
        ],
    }


def log_bucket(result: BucketResult) -> None:
    fields: dict[str, object] = {"bucket": result.bucket, "state": result.state.value}
    if result.counts is not None:
        fields.update(
            action=result.counts.action.value,
            added=result.counts.added,
            removed=result.counts.removed,
            changed=result.counts.changed,
        )
        if result.counts.held:
            fields.update(held=result.counts.held, guard=result.guard)
    if result.error is not None:
        fields["error"] = result.error
    if result.dropped:
        log.warning(
            "server_dropped_fields",
            bucket=result.bucket,
            fields=list(result.dropped),
            hint="the server does not store these fields; LakeCircle will not rewrite the bucket for them",
        )
    if result.state is BucketState.FAILED:
        log.warning("bucket_failed", stage=result.stage, **fields)
    elif result.state is BucketState.MISSING:
        log.warning("bucket_missing", **fields)
    elif result.state is BucketState.INVALID:
        log.warning("bucket_invalid", **fields)
    elif result.state is BucketState.IN_SYNC:
        log.debug("bucket_reconciled", **fields)
    else:
        log.info("bucket_reconciled", **fields)


def log_report(report: CycleReport) -> None:
    fields = {
        "trigger": report.trigger,
        "dry_run": report.dry_run,
        "duration_s": round(report.duration, 3),
        "buckets_listed": report.buckets_listed,
        **{state.value: report.counts[state] for state in BucketState},
        "rules_added": report.rules_added,
        "rules_removed": report.rules_removed,
        "rules_changed": report.rules_changed,
    }
    if report.removals_held:
        fields["removals_held"] = report.removals_held
    if report.interrupted:
        fields["interrupted"] = True
    if report.definitions is not None:
        fields["definition_files"] = len(report.definitions.files)
        fields["definition_errors"] = report.definitions.error_count
        fields["partial_definitions"] = report.definitions.partial
    if report.fatal is not None:
        log.error("cycle_failed", error=report.fatal, **fields)
    else:
        log.info("cycle_finished", ok=report.ok, **fields)
