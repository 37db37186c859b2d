"""One reconcile cycle: definitions and the live account in, one report value out.

A :class:`Reconciler` is what a command or the daemon holds between cycles (settings,
the store, the definition loader, the cache of applied writes). Each
:meth:`Reconciler.run_cycle` makes a :class:`Cycle`, whose :meth:`Cycle.run` reads top
to bottom (ARCHITECTURE.md, "The cycle"): load the definitions, list the account's
buckets a page at a time into a bounded pool of readers, read and plan each managed
bucket, decide what to do with it (:func:`~lakecircle.core.decide.decide`), hand each
write to a writer (at most ``concurrency`` at once, while the readers go on), release
the writes the removal guard held until the total was known, and report. Its state
lives and dies with the run. A failing bucket is reported and the others go on;
metrics, log lines, history and exit codes are derived from the :class:`CycleReport`.
With replicas, each write asks this replica's lease first (``fence``): a closed fence
stops the cycle's bucket work as a drain does (:mod:`~lakecircle.engine.write`).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from lakecircle.clocks import WallClock
from lakecircle.core.accounts import Account
from lakecircle.core.decide import Do, decide, needs_record, unwritten
from lakecircle.core.definitions import Definitions
from lakecircle.core.digest import in_sync
from lakecircle.core.plan import plan_bucket
from lakecircle.core.report import BucketResult, BucketState, CycleReport, Guard, Stage, Trigger
from lakecircle.core.selectors import Match
from lakecircle.engine.applied import AppliedCache, CurrentListing
from lakecircle.engine.candidates import Candidate, PassWatch, given, listed
from lakecircle.engine.cycle_scope import WHOLE, CycleScope
from lakecircle.engine.early import BucketReads, EarlyReads
from lakecircle.engine.fleet import Combinations, CycleMatcher, in_scope, wanted
from lakecircle.engine.history import History
from lakecircle.engine.leases import Fence
from lakecircle.engine.loader import DefinitionLoader, Loaded
from lakecircle.engine.removals import RemovalGuard
from lakecircle.engine.report_log import log_removal_guard, log_report, save_report
from lakecircle.engine.results import ResultHook, Results, invalid_results
from lakecircle.engine.tags import TagCache
from lakecircle.engine.write import BucketWriter, PendingWrite
from lakecircle.errors import LakeCircleError, NoSuchBucket, S3Error, TransientError, UnsupportedConfiguration
from lakecircle.ports import BucketRef, LifecycleStore, ObjectRef, TagReader

log = structlog.get_logger("lakecircle.engine.cycle")


class Reconciler:
    """Runs cycles against one account; keeps the definition cache and the applied writes between cycles."""

    def __init__(
        self,
        store: LifecycleStore,
        loader: DefinitionLoader,
        *,
        concurrency: int = 16,
        dry_run: bool = False,
        bucket_filter: frozenset[str] | None = None,
        clock: WallClock = time.time,
        history: History | None = None,
        settle_seconds: float = 300.0,
        max_removals: int | None = None,
        allow_mass_removal: bool = False,
        around_cycle: Callable[[], AbstractContextManager[Any]] | None = None,
        keep_plans: bool = True,
        tags: TagReader | None = None,
        list_unmanaged: bool = False,
        account: Account | None = None,
        fence: Fence | None = None,
        early_reads: int = 0,
    ) -> None:
        self.store = store
        self.loader = loader
        """The definition loader (public: the daemon polls and refetches through it)."""
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.bucket_filter = bucket_filter
        self.clock = clock
        self.around_cycle = around_cycle or contextlib.nullcontext  # each cycle's (the retry deadline)
        self.history = history  # write-ahead records under the endpoint; None only where nothing is written
        self.max_removals = max_removals
        """Rule removals a cycle may plan and still make (None: no limit); past it, none are made."""
        self.allow_mass_removal = allow_mass_removal  # a person allowed removals past max_removals
        self.keep_plans = keep_plans
        """Keep each bucket's plan in the report (commands print them); the daemon keeps counts only."""
        self.applied = AppliedCache(history, clock=clock, settle_seconds=settle_seconds)
        self.tags = TagCache(tags)
        """Bucket tags for ``BucketTags`` selectors, reused by poll cycles (:mod:`~lakecircle.engine.tags`)."""
        self.combinations = Combinations()
        """Selector combinations in brief, kept while the definitions stay the same."""
        self.list_unmanaged = list_unmanaged
        """Keep the unmanaged buckets' names in the report (``plan --show-unmanaged``)."""
        self.account = account
        """A hub's member account (definitions apply by scope; the hub judges missing), or None."""
        self.unlisted: frozenset[str] = frozenset()
        """A member's defined buckets its last whole listing did not hold (the hub's to judge)."""
        self.fence = fence
        """This replica's lease of the account, asked before each bucket write (None: leases are off)."""
        self.early_reads = early_reads  # buckets read while the definitions load, at most (engine/early.py)
        self.watch: PassWatch | None = None
        """Told of each pass's listing (the daemon's continuous verification), or None."""
        self.loaded: Loaded | None = None
        """The definitions the last cycle loaded (a daemon's slices verify with them)."""
        self.held_removals: Collection[str] = ()
        """Buckets whose removals a cycle held for ``max_removals``: a slice holds them too."""
        self._epoch: int | None = None
        self._draining = False
        self._cut_short: CycleReport | None = None

    def wanted(self, name: str) -> bool:
        """Whether this run may manage ``name`` (``LCC_BUCKETS``, when set, limits it)."""
        return self.bucket_filter is None or name in self.bucket_filter

    def drain(self) -> None:
        """Start no new bucket work (a shutdown); in-flight work finishes."""
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def cut_short(self) -> CycleReport | None:
        """The report of the last cycle cancelled part way (a shutdown's timeout): the
        cycle raises, and its caller still counts what it did with this."""
        return self._cut_short

    async def run_cycle(
        self,
        trigger: str = Trigger.MANUAL,
        on_result: ResultHook | None = None,
        refs: list[ObjectRef] | None = None,
        *,
        scope: CycleScope = WHOLE,
    ) -> CycleReport:
        """One cycle; ``refs``: the definition listing a poll already made; ``scope``: what it covers
        besides (the whole account by default)."""
        self._cut_short = None
        epoch = self.fence.epoch if self.fence is not None else None
        if epoch != self._epoch:
            # Another replica may have written while this one did not hold the lease: what it
            # remembers of the buckets' writes is read again from current/.
            self.applied.forget()
            self._epoch = epoch
        cycle = Cycle(self, trigger, on_result, scope.buckets)
        cycle.reads = scope.reads
        try:
            return await cycle.run(refs, scope.loaded)
        except anyio.get_cancelled_exc_class():
            self._cut_short = cycle.interrupted
            raise


class Cycle:
    """One run of a :class:`Reconciler`: its steps, and the state that dies with it."""

    _background: TaskGroup
    """Where writes and current/ records are made, off the readers' path (set by :meth:`reconcile`)."""

    def __init__(
        self, owner: Reconciler, trigger: str, on_result: ResultHook | None, buckets: Sequence[BucketRef] | None = None
    ) -> None:
        self.owner = owner
        self.slice = buckets
        """The buckets this cycle verifies (None: every bucket the account lists)."""
        self.reads = True  # False: a listing pass
        self.trigger = trigger
        self.cycle_id = uuid.uuid4().hex[:12]
        self.started = owner.clock()
        self.definitions: Definitions | None = None
        limit = None if owner.allow_mass_removal else owner.max_removals
        self.removals = RemovalGuard(limit, held=owner.held_removals if buckets is not None else ())
        self.results = Results(keep_plans=owner.keep_plans, on_result=on_result, list_unmanaged=owner.list_unmanaged)
        self.listed = 0
        self.matcher = CycleMatcher(())
        """The selectors, compiled once per cycle, counting what each selects (set by :meth:`reconcile`)."""
        self.unread = False
        """A managed bucket's read failed for a reason that may pass (a transient error)."""
        self.fatal: str | None = None
        self.interrupted: CycleReport | None = None
        self.listing = CurrentListing(owner.history)
        self.buckets: BucketReads = owner.store
        """Where buckets are listed and read: the store, or its view with the reads made early."""
        self.write_slots = anyio.Semaphore(owner.concurrency)
        """Bucket writes under way at once; a reader with a write to hand over waits for one."""
        self.writer = BucketWriter(
            owner.store,
            owner.history,
            owner.applied,
            owner.clock,
            self.cycle_id,
            anyio.CapacityLimiter(owner.concurrency),
            owner.fence,
        )

    @property
    def stopping(self) -> bool:
        """No new bucket work: the reconciler drains (a shutdown), or a write found the lease's fence closed."""
        return self.owner.draining or self.writer.fenced_out

    async def run(self, refs: list[ObjectRef] | None, given: Loaded | None) -> CycleReport:
        owner = self.owner
        limit = owner.early_reads if given is None and owner.account is None else 0  # the one-shot path
        early = EarlyReads(owner.store, owner.concurrency, limit, owner.wanted, self)
        with structlog.contextvars.bound_contextvars(cycle_id=self.cycle_id), owner.around_cycle():
            async with early.running():
                try:
                    loaded = (
                        given if given is not None else await owner.loader.load(refs, early.note, share=early.share)
                    )
                except LakeCircleError as exc:
                    return self.finish(fatal=str(exc))
                self.buckets = early.complete()  # the picture is whole: buckets are planned from here on
                self.definitions, owner.loaded = loaded.definitions, loaded
                try:
                    await self.reconcile(loaded.definitions)
                except anyio.get_cancelled_exc_class():
                    # Cut short (the daemon's shutdown timeout): what was done still goes to log/.
                    self.interrupted = self.finish(interrupted=True)
                    await save_report(self.owner.history, self.interrupted, shielded=True)
                    raise
                report = self.finish(fatal=self.fatal, fingerprint=loaded.fingerprint)
                partial = loaded.definitions.partial and self.slice is None  # said once a pass, not once a slice
                if report.writes or not report.ok or report.guards or report.interrupted or partial:
                    # Draining, the shutdown timeout may fall now: the report still goes to log/.
                    await save_report(self.owner.history, report, shielded=self.owner.draining)
                return report

    async def reconcile(self, definitions: Definitions) -> None:
        """Every managed bucket read, decided and written; the others reported."""
        remaining = {n for n in definitions.buckets if self.owner.wanted(n)}  # not listed yet: missing at the end
        self.matcher = CycleMatcher(in_scope(definitions.selectors, self.owner.account), only=self.owner.bucket_filter)
        # Even without tag selectors: a resync ends what was read before; a slice, its buckets'; a listing pass, none.
        only = None if self.slice is None and self.reads else [ref.name for ref in self.slice or ()]
        self.owner.tags.begin(self.trigger, only)
        send, receive = anyio.create_memory_object_stream[Candidate](self.owner.concurrency)
        # Writes and current/ records are made alongside, off the readers' path; the cycle waits for them.
        async with anyio.create_task_group() as self._background:
            async with anyio.create_task_group() as readers:
                for _ in range(self.owner.concurrency):
                    readers.start_soon(self.read_buckets, receive.clone(), definitions)
                receive.close()
                if self.slice is None:
                    await listed(self, send, remaining, definitions)
                else:
                    await given(self, send, self.slice, definitions)
            await self.release_held_writes()
            if log_removal_guard(self.removals, self.owner.max_removals):
                self.results.guards.add(Guard.BLAST_RADIUS)
        if self.slice is None:  # a definition's problems are said once a pass, not once a slice
            self.report_invalid(definitions)
        if self.fatal is None and not self.stopping and self.slice is None:
            self.owner.unlisted = frozenset(remaining)
            for name in sorted(remaining) if self.owner.account is None else ():  # a hub judges across accounts
                self.results.collect(BucketResult(name, BucketState.MISSING, error="defined but not in the account"))

    async def read_buckets(self, items: MemoryObjectReceiveStream[Candidate], definitions: Definitions) -> None:
        """A reader of the pool: read and decide each bucket handed to it."""
        async with items:
            async for ref, matches in items:
                if self.stopping:
                    continue
                try:
                    item = await self.read_and_decide(ref, definitions, matches)
                except Exception as exc:  # a bug must cost one bucket, not the cycle
                    log.exception("bucket_internal_error", bucket=ref.name)
                    item = BucketResult(ref.name, BucketState.FAILED, error=f"internal error: {exc!r}")
                if isinstance(item, PendingWrite) and item.decision.removals:
                    for admitted in self.removals.admit(item):
                        await self.dispatch(admitted)
                else:
                    await self.dispatch(item)

    async def read_and_decide(
        self, ref: BucketRef, definitions: Definitions, matches: tuple[Match, ...] = ()
    ) -> BucketResult | PendingWrite:
        """The bucket read, planned and decided: its result, or the write it needs.

        A bucket that selectors' patterns match gets its tags read first when one of them
        asks for tags, then its desired state from :func:`~lakecircle.core.combine.combine`;
        a bucket only an exact definition names takes the path it took before selectors. Either
        way a plan says where each rule comes from (its file, and its selector)."""
        name, owner = ref.name, self.owner
        want = await wanted(
            ref, definitions, matches, tags=owner.tags, combinations=owner.combinations, seen=self.matcher
        )
        self.unread = self.unread or want.unknown_total
        if want.tags_unread is not None:
            self.results.note_tags_unread(name, str(want.tags_unread))
        if want.result is not None:
            return want.result
        try:
            live = await self.buckets.get_lifecycle(ref)
        except S3Error as exc:
            if isinstance(exc, TransientError):
                self.unread = True  # its removals are unknown: the cycle's total is too
            elif isinstance(exc, NoSuchBucket) and self.slice is not None:  # deleted since it was listed
                return BucketResult(name, BucketState.MISSING, error="no longer in the account")
            elif isinstance(exc, UnsupportedConfiguration):  # read, and not to be written
                return BucketResult(name, BucketState.UNSUPPORTED, error=str(exc))
            return BucketResult(name, BucketState.FAILED, error=str(exc), stage=Stage.READ)
        brief = want.desired(definitions, name)
        if brief is not None and in_sync(brief.rules, brief.tdmos, live):
            # The common case, decided by digests: no models of the definitions, no plan.
            owner.applied.confirm(name)
            return BucketResult(name, BucketState.IN_SYNC)
        target = want.target(definitions, name)
        config = target.config
        keep = await owner.applied.others_rules(name, self.listing, config, shared=target.shared, live=live)
        plan = plan_bucket(name, config, live, keep=keep, sources=target.sources, overrides=target.overrides)
        partial = definitions.partial or want.tags_unread is not None
        last = await owner.applied.get(name, self.listing) if needs_record(plan, partial=partial) else None
        decision = decide(plan, last, now=owner.clock(), settle=owner.applied.settle_seconds, partial=partial)
        if decision.guard is not None:
            self.results.guards.add(decision.guard)
        if decision.do is Do.NOTHING:
            owner.applied.confirm(name)
        if decision.confirm and last is not None:
            last = owner.applied.confirmed(name, last)
        if decision.do is not Do.WRITE:
            return unwritten(name, decision)
        owned = tuple(r.id for r in config.rules if r.id is not None)
        return PendingWrite(ref, decision, last, owned)

    async def dispatch(self, item: BucketResult | PendingWrite) -> None:
        """Collect a result, or hand a write to a writer (once a write slot is free)."""
        if isinstance(item, BucketResult):
            self.results.collect(item)
        elif self.owner.dry_run:
            self.results.collect(unwritten(item.ref.name, item.decision))
        else:
            # Written by a writer, while this reader reads the next bucket.
            await self.write_slots.acquire()
            if self.stopping:  # stopped while waiting: a write not yet begun is not begun
                self.write_slots.release()
                return
            self._background.start_soon(self.write, item)

    async def write(self, pending: PendingWrite) -> None:
        try:
            await self.writer.write_reported(pending, self._background, self.results.collect)
        finally:
            self.write_slots.release()

    async def release_held_writes(self) -> None:
        """Every bucket read: the cycle knows its planned removals, and the writes that
        waited for the total go now, with their removals or without. A listing that
        failed, or a read that may succeed next time, leaves the total unknown: they go
        without."""
        for item in self.removals.release(complete=self.fatal is None and not self.unread):
            if self.stopping:
                break
            await self.dispatch(item)

    def report_invalid(self, definitions: Definitions) -> None:
        """The invalid buckets, once per cycle (a hub reports them once for all its accounts)."""
        for result in invalid_results(definitions, self.owner.wanted) if self.owner.account is None else ():
            self.results.collect(result)

    def finish(
        self, *, fatal: str | None = None, fingerprint: bytes | None = None, interrupted: bool = False
    ) -> CycleReport:
        results = self.results.in_order()
        whole = fatal is None and not (interrupted or self.stopping)
        report = CycleReport(
            cycle_id=self.cycle_id,
            trigger=self.trigger,
            dry_run=self.owner.dry_run,
            started_at=self.started,
            duration=max(self.owner.clock() - self.started, 0.0),
            results=tuple(results),
            definitions=self.definitions,
            buckets_listed=self.listed,
            fatal=fatal,
            counts=self.results.counts(results),
            fingerprint=fingerprint,
            interrupted=interrupted or self.stopping,
            guards=tuple(sorted(self.results.guards)),
            removals_planned=self.removals.planned,
            removals_held=self.results.held,
            max_removals=self.removals.limit,
            in_sync_omitted=self.results.omitted,
            unmanaged=self.results.unmanaged.names,
            warnings=self.matcher.unmatched(complete=whole) if self.slice is None else (),  # said by passes
            tags_unread=self.results.tags_unread_by_name(),
        )
        log_report(report, routine=self.slice is not None)
        return report
