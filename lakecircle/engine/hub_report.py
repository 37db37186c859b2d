"""A hub cycle in one report: the accounts' reports summed, the buckets missing from every
account, the definitions invalid once, and the selectors that selected nothing anywhere
(ARCHITECTURE.md, "Many accounts"). Kept apart from :mod:`~lakecircle.engine.hub`, which runs
the accounts; this only adds up what they reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import structlog

from lakecircle.core.accounts import Account
from lakecircle.core.definitions import Definitions
from lakecircle.core.fleet_warnings import SelectorWarning
from lakecircle.core.report import BucketResult, BucketState, CycleReport
from lakecircle.engine.fleet import in_scope
from lakecircle.engine.loader import Loaded
from lakecircle.engine.results import invalid_results

log = structlog.get_logger("lakecircle.engine.hub")


class AccountState(StrEnum):
    """What became of a listed account in the last cycle (``lakecircle_accounts{state}``)."""

    MANAGED = "managed"
    FAILED = "failed"
    """It could not be reached, or its cycle could not run (its report says why)."""
    SKIPPED = "skipped"
    """Left out of this run (``--account``), or run by another replica (its lease is theirs)."""
    RUNNING = "running"
    """Still in a cycle an earlier hub cycle started (the daemon's hub cycle waits for an account
    only so long: :mod:`~lakecircle.engine.lanes`); ``lakecircle_accounts`` counts it as it
    was left by its last cycle."""


@dataclass(frozen=True, slots=True)
class AccountRun:
    """One account's part of the last hub cycle."""

    account: Account
    state: AccountState
    report: CycleReport | None = None
    error: str | None = None
    """Why it failed: it could not be reached, or its cycle could not run."""
    unlisted: frozenset[str] = frozenset()
    """The ``BucketName`` definitions its listing did not hold (when it listed every bucket)."""
    previous: AccountRun | None = None
    """A running account's last finished cycle: ``missing`` and the warnings are judged by it
    when it ran the same definitions (an account always slower than the hub waits would
    otherwise hide them for ever)."""


@dataclass(frozen=True, slots=True)
class HubCycle:
    """What a hub cycle is, apart from what its accounts did."""

    cycle_id: str
    trigger: str
    dry_run: bool
    started: float
    now: float


def summed_report(
    cycle: HubCycle,
    runs: Mapping[str, AccountRun],
    loaded: Loaded | None,
    *,
    fatal: str | None = None,
    interrupted: bool = False,
    partial: bool = False,
) -> CycleReport:
    """One report for the daemon and the summary line: the accounts' reports summed, with the
    buckets missing from every account and the invalid definitions once; logs ``hub_cycle_finished``."""
    reports = [r.report for r in runs.values() if r.report is not None] if fatal is None else []
    definitions = loaded.definitions if loaded is not None else None
    fingerprint = loaded.fingerprint if loaded is not None else None
    judged = {k: judged_by(r, fingerprint) for k, r in runs.items()}
    whole = fatal is None and not partial  # partial: other replicas hold some accounts, unseen here
    missing = missing_results(judged, definitions) if whole and not interrupted else []
    invalid = invalid_results(definitions, lambda _: True) if definitions is not None and fatal is None else []
    results = [x for report in reports for x in report.results] + missing + invalid
    counts: Counter[BucketState] = Counter(r.state for r in missing + invalid)
    for report in reports:
        counts.update(report.counts)
    summed = CycleReport(
        cycle_id=cycle.cycle_id,
        trigger=cycle.trigger,
        dry_run=cycle.dry_run,
        started_at=cycle.started,
        duration=max(cycle.now - cycle.started, 0.0),
        results=tuple(sorted(results, key=lambda r: r.bucket)),
        definitions=definitions,
        buckets_listed=sum(r.buckets_listed for r in reports),
        fatal=fatal,
        counts=counts,
        fingerprint=loaded.fingerprint if loaded is not None else None,
        interrupted=interrupted or any(r.interrupted for r in reports),
        guards=tuple(sorted({g for r in reports for g in r.guards})),
        removals_planned=sum(r.removals_planned for r in reports),
        removals_held=sum(r.removals_held for r in reports),
        max_removals=next((r.max_removals for r in reports if r.fatal is None), None),
        in_sync_omitted=sum(r.in_sync_omitted for r in reports),
        unmanaged=tuple(sorted(n for r in reports for n in r.unmanaged)),
        warnings=unmatched_everywhere(runs, judged, definitions) if whole else (),
        tags_unread=tuple(t for r in reports for t in r.tags_unread),
    )
    log.info(
        "hub_cycle_finished",
        trigger=cycle.trigger,
        accounts=len(runs),
        failed_accounts=sum(1 for r in runs.values() if r.state is AccountState.FAILED),
        running_accounts=sum(1 for r in runs.values() if r.state is AccountState.RUNNING),
        **({"fatal": fatal} if fatal else {}),
        buckets_listed=summed.buckets_listed,
        changed=summed.counts.get(BucketState.CHANGED, 0),
        missing=summed.counts.get(BucketState.MISSING, 0),
        duration_s=round(summed.duration, 3),
    )
    return summed


def failed_report(cycle: HubCycle, loaded: Loaded, why: str) -> CycleReport:
    """The report of an account whose cycle could not run, saying why."""
    return CycleReport(
        cycle.cycle_id,
        cycle.trigger,
        cycle.dry_run,
        cycle.started,
        max(cycle.now - cycle.started, 0.0),
        (),
        loaded.definitions,
        fatal=why,
    )


def judged_by(run: AccountRun, fingerprint: bytes | None) -> AccountRun | None:
    """The cycle an account's buckets are judged by (``missing``, the warnings): its own in this
    hub cycle, or, while it runs, its last one if that ran the same definitions; None when no
    cycle of it listed every bucket with these definitions."""
    if run.state is AccountState.RUNNING and run.previous is not None:
        last = run.previous.report
        run = run.previous if last is not None and last.fingerprint == fingerprint else run
    whole = run.state is AccountState.MANAGED and run.report is not None and not run.report.interrupted
    return run if whole else None


def missing_results(judged: Mapping[str, AccountRun | None], definitions: Definitions | None) -> list[BucketResult]:
    """The ``BucketName`` definitions no account's listing holds (none when an account could
    not list its buckets, or was left out of the run: the bucket may be there)."""
    if definitions is None or not judged or any(r is None for r in judged.values()):
        return []
    names: set[str] | None = None
    for run in judged.values():
        its = run.unlisted if run is not None else frozenset()
        names = set(its) if names is None else names & its
    return [
        BucketResult(name, BucketState.MISSING, error="defined but in no managed account")
        for name in sorted(names or ())
    ]


def unmatched_everywhere(
    runs: Mapping[str, AccountRun], judged: Mapping[str, AccountRun | None], definitions: Definitions | None
) -> tuple[SelectorWarning, ...]:
    """The selectors that selected no bucket in any account they apply in (each account
    warns of its own; a selector only one account lacks is no warning). A selector that applies
    in an account whose buckets were not all seen (failed, running, skipped, cut short) may
    select some there: no warning."""
    if definitions is None:
        return ()
    seen = [r for r in judged.values() if r is not None]
    unseen = [runs[k].account for k, r in judged.items() if r is None]
    warned: Counter[SelectorWarning] = Counter(w for r in seen if r.report is not None for w in r.report.warnings)
    kept = []
    for warning in warned:

        def applies(account: Account, warning: SelectorWarning = warning) -> bool:
            selectors = in_scope(definitions.selectors, account)
            return any((s.file, s.label) == (warning.file, warning.selector) for s in selectors)

        if not any(applies(a) for a in unseen) and warned[warning] >= sum(1 for r in seen if applies(r.account)):
            kept.append(warning)
    return tuple(kept)
