"""A cycle's bucket results as they come: logged, told to the caller's hook, kept for the report.

The daemon keeps counts, not plans (``keep_plans`` off): a bucket in sync is then only
counted, so a cycle over a million buckets in sync holds no result for each. Unmanaged
buckets are counted the same way, their names kept only when asked
(``plan --show-unmanaged``). The guards that held removals and the removals held are
summed as results arrive (ARCHITECTURE.md, "The cycle").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from lakecircle.core.definitions import Definitions
from lakecircle.core.report import BucketResult, BucketState, Guard, TagsUnread
from lakecircle.engine.fleet import Coverage
from lakecircle.engine.report_log import debug_enabled, log_bucket

ResultHook = Callable[[BucketResult], None]


class Results:
    """One cycle's results, guards and counts."""

    def __init__(self, *, keep_plans: bool, on_result: ResultHook | None, list_unmanaged: bool) -> None:
        self.keep_plans = keep_plans
        self.on_result = on_result
        self.quiet = not debug_enabled()
        self.kept: list[BucketResult] = []
        self.omitted = 0
        """Buckets in sync that ``kept`` leaves out (``keep_plans`` off)."""
        self.guards: set[Guard] = set()
        self.held = 0
        """Rule removals held back by a guard."""
        self.unmanaged = Coverage(keep_names=list_unmanaged)
        self.tags_unread: list[TagsUnread] = []
        """Buckets whose tags could not be read (few: a failed read is not a bucket in sync)."""

    def collect(self, result: BucketResult) -> None:
        if result.state is BucketState.UNMANAGED:
            self.unmanaged.note(result.bucket)
            return
        if not (self.quiet and result.state is BucketState.IN_SYNC):  # most of a large account
            log_bucket(result)
        if self.on_result is not None:
            self.on_result(result)
        if result.guard is not None:
            self.guards.add(Guard(result.guard))
            self.held += result.counts.held if result.counts is not None else 0
        if self.keep_plans:
            self.kept.append(result)
        elif result.state is BucketState.IN_SYNC and result.guard is None:
            self.omitted += 1
        else:
            self.kept.append(result.without_plan())

    def note_tags_unread(self, bucket: str, error: str) -> None:
        self.tags_unread.append(TagsUnread(bucket, error))

    def tags_unread_by_name(self) -> tuple[TagsUnread, ...]:
        return tuple(sorted(self.tags_unread, key=lambda t: t.bucket))

    def in_order(self) -> list[BucketResult]:
        return sorted(self.kept, key=lambda r: r.bucket)

    def counts(self, results: list[BucketResult]) -> Counter[BucketState]:
        """Buckets by state: ``results``, and those only counted."""
        only_counted = Counter({BucketState.IN_SYNC: self.omitted, BucketState.UNMANAGED: self.unmanaged.count})
        return Counter(r.state for r in results) + only_counted


def invalid_results(definitions: Definitions, wanted: Callable[[str], bool]) -> list[BucketResult]:
    """A result for each bucket whose definitions are invalid (never written), ``wanted`` ones only."""
    return [invalid_result(definitions, name) for name in sorted(n for n in definitions.invalid if wanted(n))]


def invalid_result(definitions: Definitions, name: str) -> BucketResult:
    """The result of ``name``, whose definitions are invalid."""
    problems = definitions.invalid[name]
    return BucketResult(
        name, BucketState.INVALID, error=f"{len(problems)} problem(s) in its definition, first: {problems[0]}"
    )
