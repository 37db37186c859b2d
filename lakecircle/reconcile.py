"""One reconcile cycle: definitions and the live account in, one report value out.

The cycle lists the account's buckets a page at a time and feeds the managed ones (the
defined buckets that exist) to a bounded pool of workers: read live, plan, and in SYNC
mode make exactly one PUT or DELETE for a changed bucket. A failing bucket is reported
and the others go on. Metrics, log lines, history and exit codes are all derived from
the :class:`CycleReport` it returns.
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

from lakecircle.definitions import Definitions
from lakecircle.digest import in_sync
from lakecircle.drift import Applied, Verdict, judge, server_dropped
from lakecircle.errors import LakeCircleError, S3Error
from lakecircle.history import History
from lakecircle.loader import DefinitionLoader
from lakecircle.model import LifecycleConfig, Rule
from lakecircle.plan import Action, BucketPlan, plan_bucket
from lakecircle.store import BucketRef, LifecycleStore, ObjectRef

log = structlog.get_logger("lakecircle.reconcile")


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


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """A plan in numbers: what reports and metrics need of it."""

    action: Action
    added: int
    removed: int
    changed: int

    @classmethod
    def of(cls, plan: BucketPlan) -> PlanCounts:
        return cls(plan.action, len(plan.added), len(plan.removed), len(plan.changed))


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
    """A guard that held back this bucket's removals (partial_definitions, blast_radius)."""
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
    """The fingerprint of the definition listing this cycle used (:func:`~lakecircle.loader.listing_fingerprint`)."""
    interrupted: bool = False
    """Stopped early by a shutdown: buckets not reached are in no list."""
    guards: tuple[str, ...] = ()
    """Guards that held back removals this cycle."""
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
            else dataclasses.replace(r.plan, action=Action.NOOP, added=(), removed=(), changed=(), tdmos_change=None)
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
        """Rule removals allowed per cycle (None: no limit)."""
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
        self._omitted = 0
        """Buckets in sync this cycle that ``results`` leaves out (``keep_plans`` off)."""
        self._background: TaskGroup | None = None
        """Where the current/ records of this cycle's writes are saved."""
        self._record_slots = anyio.CapacityLimiter(concurrency)
        """current/ records saved at once: as many as buckets in work."""
        self._write_slots = anyio.Semaphore(concurrency)
        """Bucket writes under way at once; a worker with a write to hand over waits for one."""
        self._removals_left: int | None = None
        self._guards: set[str] = set()
        self._cycle_id = ""
        self._partial = False

    async def run_cycle(
        self, trigger: str = "manual", on_result: ResultHook | None = None, refs: list[ObjectRef] | None = None
    ) -> CycleReport:
        cycle_id = uuid.uuid4().hex[:12]
        started = self.clock()
        self._cycle_id = cycle_id
        self._guards = set()
        self._removals_left = self.max_removals
        self._listed = None
        self._omitted = 0
        with structlog.contextvars.bound_contextvars(cycle_id=cycle_id), self.around_cycle():
            try:
                loaded = await self.loader.load(refs)
            except LakeCircleError as exc:
                return self._finish(cycle_id, trigger, started, results=[], definitions=None, listed=0, fatal=str(exc))
            definitions = loaded.definitions
            self._partial = definitions.partial
            results, listed, fatal = await self._reconcile(definitions, on_result)
            report = self._finish(
                cycle_id,
                trigger,
                started,
                results=results,
                definitions=definitions,
                listed=listed,
                fatal=fatal,
                fingerprint=loaded.fingerprint,
            )
            if self.history is not None and (report.writes or not report.ok or report.guards):
                try:
                    await self.history.write_report(report_document(report), cycle_id=cycle_id)
                except LakeCircleError as exc:
                    log.warning("cycle_report_not_saved", error=str(exc))
            return report

    def _finish(
        self,
        cycle_id: str,
        trigger: str,
        started: float,
        *,
        results: list[BucketResult],
        definitions: Definitions | None,
        listed: int,
        fatal: str | None,
        fingerprint: bytes | None = None,
    ) -> CycleReport:
        results.sort(key=lambda r: r.bucket)
        report = CycleReport(
            cycle_id=cycle_id,
            trigger=trigger,
            dry_run=self.dry_run,
            started_at=started,
            duration=max(self.clock() - started, 0.0),
            results=tuple(results),
            definitions=definitions,
            buckets_listed=listed,
            fatal=fatal,
            counts=Counter(r.state for r in results) + Counter({BucketState.IN_SYNC: self._omitted}),
            fingerprint=fingerprint,
            interrupted=self.draining,
            guards=tuple(sorted(self._guards)),
            in_sync_omitted=self._omitted,
        )
        log_report(report)
        return report

    def _wanted(self, name: str) -> bool:
        return self.bucket_filter is None or name in self.bucket_filter

    async def _reconcile(
        self, definitions: Definitions, on_result: ResultHook | None
    ) -> tuple[list[BucketResult], int, str | None]:
        results: list[BucketResult] = []

        quiet = not _debug_enabled()

        def record(result: BucketResult) -> None:
            if not (quiet and result.state is BucketState.IN_SYNC):  # most of a large account
                log_bucket(result)
            if on_result is not None:
                on_result(result)
            if self.keep_plans:
                results.append(result)
            elif result.state is BucketState.IN_SYNC and result.guard is None:
                self._omitted += 1
            else:
                results.append(result.without_plan())

        remaining = {n for n in definitions.buckets if self._wanted(n)}
        """Defined buckets not listed yet (what is left at the end is missing)."""
        invalid = {n for n in definitions.invalid if self._wanted(n)}
        listed = 0
        fatal: str | None = None
        send, receive = anyio.create_memory_object_stream[BucketRef](self.concurrency)

        async def worker(items: MemoryObjectReceiveStream[BucketRef]) -> None:
            async with items:
                async for ref in items:
                    if self.draining:
                        continue
                    try:
                        result = await self._one(ref, definitions)
                    except Exception as exc:  # a bug must cost one bucket, not the cycle
                        log.exception("bucket_internal_error", bucket=ref.name)
                        result = BucketResult(ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
                    if isinstance(result, _Write):
                        # Written by a writer, while this worker reads the next bucket.
                        await self._write_slots.acquire()
                        if self.draining:  # stopped while waiting: a write not yet begun is not begun
                            self._write_slots.release()
                            continue
                        background.start_soon(write, result)
                    else:
                        record(result)

        async def write(pending: _Write) -> None:
            try:
                result = await self._write(pending)
            except Exception as exc:  # a bug must cost one bucket, not the cycle
                log.exception("bucket_internal_error", bucket=pending.ref.name)
                result = BucketResult(pending.ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
            finally:
                self._write_slots.release()
            record(result)

        # Writes and current/ records are made alongside, off the workers' path; the cycle waits for them.
        async with anyio.create_task_group() as background, anyio.create_task_group() as tg:
            self._background = background
            for _ in range(self.concurrency):
                tg.start_soon(worker, receive.clone())
            receive.close()
            async with send:
                try:
                    async for page in self.store.iter_buckets():
                        if self.draining:
                            break
                        listed += len(page)
                        for ref in page:
                            if ref.name in remaining and not self.draining:
                                remaining.discard(ref.name)
                                await send.send(ref)
                except S3Error as exc:
                    fatal = f"could not list the account's buckets: {exc}"
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
        return results, listed, fatal

    async def _one(self, ref: BucketRef, definitions: Definitions) -> BucketResult | _Write:
        """The bucket read and planned: its result, or the write it needs (see :meth:`_write`)."""
        name = ref.name
        try:
            live = await self.store.get_lifecycle(ref)
        except S3Error as exc:
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

        guard: str | None = None
        keep: Callable[[Rule], bool] | None = None
        if foreign and self._partial:
            keep, guard = _everything, "partial_definitions"
        elif foreign and definition.shared:
            record = await self._record(name)
            ours = set(record.owned) if record is not None else set()
            keep = lambda rule: rule.id not in ours  # noqa: E731 -- a one-line predicate
        plan = plan_bucket(name, desired, live, keep=keep)
        if guard is not None and len(foreign) > len(plan.removed):
            self._guards.add(guard)
            if plan.action is Action.NOOP:  # only removals, all held back
                return BucketResult(name, BucketState.DRIFTED, plan=plan_bucket(name, desired, live), guard=guard)
        else:
            guard = None

        if plan.action is Action.NOOP:
            self._confirm(name)
            # No plan kept: an account may hold a million buckets in sync.
            return BucketResult(name, BucketState.IN_SYNC, guard=guard)

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
        if removals and not self._take_removals(removals):
            self._guards.add("blast_radius")
            guard = "blast_radius"
            held = plan_bucket(name, desired, live, keep=_everything)
            if held.action is Action.NOOP:  # only removals, all held back
                return BucketResult(name, BucketState.DRIFTED, plan=plan, guard=guard)
            plan = held

        external = verdict is Verdict.EXTERNAL_DRIFT
        if self.dry_run:
            state = BucketState.DIVERGING if verdict is Verdict.DIVERGING_WRITE else BucketState.DRIFTED
            return BucketResult(name, state, plan=plan, dropped=dropped, external=external, guard=guard)
        owned = tuple(r.id for r in desired.rules if r.id is not None)
        return _Write(ref, plan, record, verdict, guard=guard, dropped=dropped, owned=owned)

    def _confirm(self, name: str) -> None:
        """The bucket was read holding what LakeCircle last wrote to it."""
        known = self.records.get(name)
        if known is not None and not known.confirmed:
            self.records[name] = dataclasses.replace(known, confirmed=True)

    def _take_removals(self, count: int) -> bool:
        if self._removals_left is None:
            return True
        if count > self._removals_left:
            return False
        self._removals_left -= count
        return True

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
                await history.after_write(plan, applied, cycle_id=self._cycle_id, history_key=history_key)
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

    async def _write(self, pending: _Write) -> BucketResult:
        """The write-ahead records, then the one PUT or DELETE, then (alongside) current/."""
        ref, plan, record, verdict = pending.ref, pending.plan, pending.record, pending.verdict
        guard, dropped, owned = pending.guard, pending.dropped, pending.owned
        name = ref.name
        external = verdict is Verdict.EXTERNAL_DRIFT
        history_key: str | None = None
        if self.history is not None:
            try:
                history_key = await self.history.before_write(plan, cycle_id=self._cycle_id)
            except LakeCircleError as exc:
                return BucketResult(name, BucketState.FAILED, plan=plan, error=str(exc), stage="snapshot")
        try:
            if plan.action is Action.DELETE:
                await self.store.delete_lifecycle(ref)
            else:
                await self.store.put_lifecycle(ref, plan.desired)
        except S3Error as exc:
            return BucketResult(name, BucketState.FAILED, plan=plan, error=str(exc), stage="write")
        diverging = verdict is Verdict.DIVERGING_WRITE
        # A correction the bucket never held on to counts towards the backoff.
        again = record is not None and (diverging or (external and not record.confirmed))
        applied = Applied.of(
            plan.desired if plan.action is Action.PUT else LifecycleConfig(),
            record.previous_json() if diverging and record is not None else plan.live,
            self.clock(),
            rewrites=record.rewrites + 1 if again and record is not None else 0,
            owned=owned,
        )
        self.records[name] = applied
        self._unknown.discard(name)
        if self.history is not None and history_key is not None:
            if self._background is not None:
                self._background.start_soon(self._save_current, self.history, plan, applied, history_key)
            else:
                await self._save_current(self.history, plan, applied, history_key)
        state = BucketState.DIVERGING if diverging else BucketState.CHANGED
        return BucketResult(
            name, state, plan=plan, dropped=dropped, external=external, guard=guard, history=history_key
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Write:
    """A bucket read and planned that needs a write: what :meth:`Reconciler._write` takes."""

    ref: BucketRef
    plan: BucketPlan
    record: Applied | None
    verdict: Verdict
    guard: str | None
    dropped: tuple[str, ...]
    owned: tuple[str, ...]


def _everything(_: Rule) -> bool:
    return True


def _debug_enabled() -> bool:
    """Whether the log takes DEBUG lines (a bucket in sync is one)."""
    logger = structlog.get_logger("lakecircle.reconcile").bind()
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
        "guards": list(report.guards),
        "partial_definitions": bool(report.definitions and report.definitions.partial),
        "counts": {state.value: report.counts[state] for state in BucketState},
        "rules": {"added": report.rules_added, "changed": report.rules_changed, "removed": report.rules_removed},
        "problems": [
            {"bucket": r.bucket, "state": r.state.value, "error": r.error, "stage": r.stage}
            for r in report.results
            if r.error is not None
        ],
        "changes": [
            {"bucket": r.bucket, "state": r.state.value, "history": r.history, "external": r.external}
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
    if report.definitions is not None:
        fields["definition_files"] = len(report.definitions.files)
        fields["definition_errors"] = report.definitions.error_count
        fields["partial_definitions"] = report.definitions.partial
    if report.fatal is not None:
        log.error("cycle_failed", error=report.fatal, **fields)
    else:
        log.info("cycle_finished", ok=report.ok, **fields)
