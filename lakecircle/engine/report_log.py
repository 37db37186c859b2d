"""The log lines of a cycle: one per bucket, one per cycle, derived from the report values.

One line per bucket per cycle and one per cycle, not a line per step (ARCHITECTURE.md,
"Observability"). A bucket in sync is a DEBUG line, and is not even built when the log
takes no DEBUG lines: an account may hold a million buckets in sync. A selector that
selected no bucket is a warning line of its own, once per cycle.
"""

from __future__ import annotations

import logging

import anyio
import structlog

from lakecircle.core.report import BucketResult, BucketState, CycleReport, counts_document, report_document
from lakecircle.engine.history import History
from lakecircle.engine.removals import RemovalGuard
from lakecircle.engine.write import SHIELDED_TIMEOUT
from lakecircle.errors import LakeCircleError

log = structlog.get_logger("lakecircle.engine.cycle")


def debug_enabled() -> bool:
    """Whether the log takes DEBUG lines (a bucket in sync is one)."""
    logger = structlog.get_logger("lakecircle.engine.cycle").bind()
    check = getattr(logger, "is_enabled_for", None)
    return True if check is None else bool(check(logging.DEBUG))


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
    elif result.state is BucketState.UNSUPPORTED:
        log.warning("bucket_unsupported", **fields)
    elif result.state is BucketState.IN_SYNC:
        log.debug("bucket_reconciled", **fields)
    else:
        log.info("bucket_reconciled", **fields)


def log_report(report: CycleReport, *, routine: bool = False) -> None:
    """The cycle's summary line (``cycle_finished``, or ``cycle_failed``); ``routine``: a slice of
    continuous verification, whose line is at debug level when it found everything in sync."""
    fields = {
        "trigger": report.trigger,
        "dry_run": report.dry_run,
        "duration_s": round(report.duration, 3),
        "buckets_listed": report.buckets_listed,
        **counts_document(report.counts),
        "rules_added": report.rules_added,
        "rules_removed": report.rules_removed,
        "rules_changed": report.rules_changed,
    }
    if report.removals_held:
        fields["removals_held"] = report.removals_held
    if report.tags_unread:
        fields["tags_unread"] = len(report.tags_unread)
    if report.interrupted:
        fields["interrupted"] = True
    if report.definitions is not None:
        fields["definition_files"] = len(report.definitions.files)
        fields["definition_errors"] = report.definitions.error_count
        fields["partial_definitions"] = report.definitions.partial
    for warning in report.warnings:
        log.warning(
            warning.kind.value,
            file=warning.file,
            selector=warning.selector,
            patterns=list(warning.patterns),
            hint=warning.message,
            **({"exclude": list(warning.exclude)} if warning.exclude else {}),
            **({"tags": dict(warning.tags)} if warning.tags else {}),
        )
    if report.fatal is not None:
        log.error("cycle_failed", error=report.fatal, **fields)
    elif routine and report.ok and not report.writes and report.counts.keys() <= {BucketState.IN_SYNC}:
        log.debug("cycle_finished", ok=report.ok, **fields)
    else:
        log.info("cycle_finished", ok=report.ok, **fields)


def log_removal_guard(guard: RemovalGuard, limit: int | None) -> bool:
    """Say that the removal guard tripped (True), or that a person's allowance let a
    cycle remove past ``limit``, the configured ``LCC_MAX_REMOVALS``."""
    if guard.tripped:
        log.warning(
            "removal_guard_tripped",
            planned=guard.planned,
            limit=guard.limit,
            hint="no rule was removed; review the plan (`lakecircle plan`), then run"
            " `lakecircle sync --allow-mass-removal` once, or set LCC_ALLOW_MASS_REMOVAL=true for the daemon",
        )
    elif limit is not None and guard.limit is None and guard.planned > limit:
        log.warning("mass_removal_allowed", planned=guard.planned, limit=limit)
    return guard.tripped


async def save_report(history: History | None, report: CycleReport, *, shielded: bool) -> None:
    """The report in ``log/`` (shielded: within SHIELDED_TIMEOUT, even when cut short)."""
    if history is None:
        return
    with anyio.move_on_after(SHIELDED_TIMEOUT if shielded else None, shield=shielded):
        try:
            await history.write_report(report_document(report), cycle_id=report.cycle_id)
        except LakeCircleError as exc:
            log.warning("cycle_report_not_saved", error=str(exc))
