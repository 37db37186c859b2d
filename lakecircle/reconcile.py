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
from anyio.streams.memory import MemoryObjectReceiveStream

from lakecircle.definitions import Definitions
from lakecircle.drift import same_config, server_dropped
from lakecircle.errors import LakeCircleError, S3Error
from lakecircle.loader import DefinitionLoader
from lakecircle.model import BucketDefinition, LifecycleConfig
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


@dataclass(frozen=True, slots=True)
class BucketResult:
    bucket: str
    state: BucketState
    plan: BucketPlan | None = None
    error: str | None = None
    stage: str | None = None
    """Where a failure happened: read, write."""
    dropped: tuple[str, ...] = ()
    """Fields the server did not store although LakeCircle wrote them (kept in sync anyway)."""


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
    fingerprint: frozenset[tuple[str, str]] | None = None
    """The (key, ETag) pairs of the definitions this cycle used."""
    interrupted: bool = False
    """Stopped early by a shutdown: buckets not reached are in no list."""

    @property
    def ok(self) -> bool:
        return self.fatal is None and self.counts[BucketState.FAILED] == 0

    @property
    def failed(self) -> list[BucketResult]:
        return [r for r in self.results if r.state is BucketState.FAILED]

    def _sum(self, attr: str, states: tuple[BucketState, ...]) -> int:
        return sum(len(getattr(r.plan, attr)) for r in self.results if r.plan is not None and r.state in states)

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
        """Every bucket's plan; a bucket counted in sync shows as NOOP."""
        return [
            r.plan
            if r.state is not BucketState.IN_SYNC or not r.plan.has_changes
            else dataclasses.replace(r.plan, action=Action.NOOP, added=(), removed=(), changed=(), tdmos_change=None)
            for r in self.results
            if r.plan is not None
        ]

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
        applied: MutableMapping[str, LifecycleConfig] | None = None,
        around_cycle: Callable[[], AbstractContextManager[Any]] | None = None,
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
        self.applied: MutableMapping[str, LifecycleConfig] = {} if applied is None else applied
        """What this process last wrote to each bucket (shared between reconcilers)."""

    async def run_cycle(
        self, trigger: str = "manual", on_result: ResultHook | None = None, refs: list[ObjectRef] | None = None
    ) -> CycleReport:
        cycle_id = uuid.uuid4().hex[:12]
        started = self.clock()
        with structlog.contextvars.bound_contextvars(cycle_id=cycle_id), self.around_cycle():
            try:
                loaded = await self.loader.load(refs)
            except LakeCircleError as exc:
                return self._finish(cycle_id, trigger, started, results=[], definitions=None, listed=0, fatal=str(exc))
            definitions = loaded.definitions
            results, listed, fatal = await self._reconcile(definitions, on_result)
            return self._finish(
                cycle_id,
                trigger,
                started,
                results=results,
                definitions=definitions,
                listed=listed,
                fatal=fatal,
                fingerprint=loaded.fingerprint,
            )

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
        fingerprint: frozenset[tuple[str, str]] | None = None,
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
            counts=Counter(r.state for r in results),
            fingerprint=fingerprint,
            interrupted=self.draining,
        )
        log_report(report)
        return report

    def _wanted(self, name: str) -> bool:
        return self.bucket_filter is None or name in self.bucket_filter

    async def _reconcile(
        self, definitions: Definitions, on_result: ResultHook | None
    ) -> tuple[list[BucketResult], int, str | None]:
        results: list[BucketResult] = []

        def record(result: BucketResult) -> None:
            results.append(result)
            log_bucket(result)
            if on_result is not None:
                on_result(result)

        defined = {n: b for n, b in definitions.buckets.items() if self._wanted(n)}
        invalid = {n for n in definitions.invalid if self._wanted(n)}
        seen: set[str] = set()
        listed = 0
        fatal: str | None = None
        send, receive = anyio.create_memory_object_stream[tuple[BucketRef, BucketDefinition]](self.concurrency)

        async def worker(items: MemoryObjectReceiveStream[tuple[BucketRef, BucketDefinition]]) -> None:
            async with items:
                async for ref, definition in items:
                    if self.draining:
                        continue
                    try:
                        result = await self._one(ref, definition)
                    except Exception as exc:  # a bug must cost one bucket, not the cycle
                        log.exception("bucket_internal_error", bucket=ref.name)
                        result = BucketResult(ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
                    record(result)

        async with anyio.create_task_group() as tg:
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
                            if ref.name in invalid:
                                seen.add(ref.name)
                            definition = defined.get(ref.name)
                            if definition is not None and ref.name not in seen and not self.draining:
                                seen.add(ref.name)
                                await send.send((ref, definition))
                except S3Error as exc:
                    fatal = f"could not list the account's buckets: {exc}"

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
            for name in sorted(set(defined) - seen):
                record(BucketResult(name, BucketState.MISSING, error="defined but not in the account"))
        return results, listed, fatal

    async def _one(self, ref: BucketRef, definition: BucketDefinition) -> BucketResult:
        try:
            live = await self.store.get_lifecycle(ref)
        except S3Error as exc:
            return BucketResult(ref.name, BucketState.FAILED, error=str(exc), stage="read")
        plan = plan_bucket(ref.name, definition.config, live)
        if plan.action is Action.NOOP:
            return BucketResult(ref.name, BucketState.IN_SYNC, plan=plan)
        dropped = server_dropped(plan)
        last = self.applied.get(ref.name)
        if dropped and last is not None and same_config(last, plan.desired):
            return BucketResult(ref.name, BucketState.IN_SYNC, plan=plan, dropped=tuple(dropped))
        if self.dry_run:
            return BucketResult(ref.name, BucketState.DRIFTED, plan=plan)
        try:
            if plan.action is Action.DELETE:
                await self.store.delete_lifecycle(ref)
            else:
                await self.store.put_lifecycle(ref, plan.desired)
        except S3Error as exc:
            return BucketResult(ref.name, BucketState.FAILED, plan=plan, error=str(exc), stage="write")
        self.applied[ref.name] = plan.desired
        return BucketResult(ref.name, BucketState.CHANGED, plan=plan)


def log_bucket(result: BucketResult) -> None:
    fields: dict[str, object] = {"bucket": result.bucket, "state": result.state.value}
    if result.plan is not None:
        fields.update(
            action=result.plan.action.value,
            added=len(result.plan.added),
            removed=len(result.plan.removed),
            changed=len(result.plan.changed),
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
