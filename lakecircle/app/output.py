"""What the commands print: problems, a cycle's summary, a history line, and the exit verdict.

Plans and summaries go to standard output, logs to standard error. Everything a user's
input or a stored record put into a line goes through
:func:`~lakecircle.core.problems.printable` first (ARCHITECTURE.md, "Observability").
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from lakecircle.core.definitions import Definitions, UnreadableFile
from lakecircle.core.problems import Problem, printable
from lakecircle.core.report import BucketState, CycleReport, Guard
from lakecircle.engine.records import ChangeRecord


def print_problems(definitions: Definitions, output: str, warnings: Sequence[Problem] = ()) -> None:
    """``validate``'s report: every problem, then ``warnings`` (those found across the files,
    :func:`~lakecircle.core.fleet_warnings.shadowed_definitions`), and a count line; or one JSON document.

    Selectors are counted beside buckets (by label: ``fleet.toml``, ``fleet.toml
    Bucket[2]``); the count line names them only when there are some, so that definitions
    without selectors read as they did before."""
    problems = (*definitions.problems, *warnings)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "files": len(definitions.files),
                    "buckets": sorted(definitions.buckets),
                    "invalid_buckets": sorted(definitions.invalid),
                    "selectors": [s.label for s in definitions.selectors],
                    "invalid_selectors": sorted(definitions.invalid_selectors),
                    "errors": definitions.error_count,
                    "unreadable_files": [f.as_dict() for f in definitions.unreadable_files],
                    "problems": [p.as_dict() for p in problems],
                },
                indent=2,
            )
        )
        return
    for problem in problems:
        click.echo(str(problem))
    warned = len(problems) - definitions.error_count
    selectors = len(definitions.selectors), len(definitions.invalid_selectors)
    selected = f", {selectors[0]} valid selector(s), {selectors[1]} invalid" if any(selectors) else ""
    click.echo(
        f"{len(definitions.files)} file(s), {len(definitions.buckets)} valid bucket(s),"
        f" {len(definitions.invalid)} invalid{selected}; {definitions.error_count} error(s), {warned} warning(s)"
    )


def unmanaged_list(report: CycleReport) -> str:
    """``plan --show-unmanaged``: the buckets no definition selects, one a line."""
    names = report.unmanaged
    head = f"Unmanaged bucket(s), {len(names)}: no definition selects them."
    return "\n".join((head, *(f"  {printable(name)}" for name in names)))


def summary(report: CycleReport) -> str:
    """One paragraph a person reads after a cycle."""
    c = report.counts
    verb = "would change" if report.dry_run else "changed"
    changed = c[BucketState.DRIFTED] if report.dry_run else c[BucketState.CHANGED]
    lines = [
        f"{changed} bucket(s) {verb}, {c[BucketState.IN_SYNC]} in sync, {c[BucketState.MISSING]} missing,"
        f" {c[BucketState.INVALID]} invalid, {c[BucketState.FAILED]} failed"
        f" ({report.buckets_listed} bucket(s) in the account, {report.duration:.1f} s)."
    ]
    if not report.dry_run:
        lines.append(
            f"Rules: {report.rules_added} added, {report.rules_changed} changed, {report.rules_removed} removed."
        )
    if c[BucketState.UNMANAGED]:
        lines.append(f"{c[BucketState.UNMANAGED]} bucket(s) unmanaged: no definition selects them (never read).")
    if c[BucketState.PROPAGATING] or c[BucketState.DIVERGING]:
        lines.append(
            f"{c[BucketState.PROPAGATING]} bucket(s) propagating (just written; S3 still answers with the old"
            f" rules), {c[BucketState.DIVERGING]} diverging (rewritten only with backoff)."
        )
    for result in report.results:
        bucket = printable(result.bucket)
        if result.state in (BucketState.FAILED, BucketState.INVALID, BucketState.MISSING):
            lines.append(f"  {result.state.value}: {bucket}: {printable(result.error or '')}")
        elif result.dropped:
            lines.append(f"  {result.state.value}: {bucket}: the server did not keep {', '.join(result.dropped)}")
        if result.external:
            lines.append(f"  drift: {bucket} was changed by another writer since LakeCircle wrote it")
    partial = report.definitions is not None and report.definitions.partial
    if Guard.PARTIAL_DEFINITIONS in report.guards and partial:
        lines.append("Guard: some definition files could not be read, so no rule was removed anywhere.")
    lines.extend(_tags_unread_lines(report))
    if Guard.BLAST_RADIUS in report.guards:
        lines.append(
            f"Guard: {report.removals_planned} rule removal(s) planned, more than LCC_MAX_REMOVALS"
            f" ({report.max_removals}), so none was made: every one is held back (marked ! in the plan)."
            " Review the plan, then run `lakecircle sync --allow-mass-removal` once"
            " (the daemon: LCC_ALLOW_MASS_REMOVAL=true)."
        )
    if Guard.UNKNOWN_TOTAL in report.guards:
        lines.append(
            "Guard: a read failed for a reason that may pass (or the bucket listing failed part way), so the"
            " cycle's total of removals is unknown: the removals that waited for it were not made (marked ! in"
            " the plan); a cycle that reads every bucket makes them."
        )
    lines.extend(f"Warning: {warning.message}" for warning in report.warnings)
    if report.definitions is not None and report.definitions.partial:
        files = report.definitions.unreadable_files
        lines.append(f"{len(files)} definition file(s) could not be read; a partial picture removes no rule:")
        lines.extend(f"  unreadable: {line}" for line in unreadable_lines(report.definitions))
    if report.fatal is not None:
        lines.append(f"Cycle failed: {report.fatal}")
    return "\n".join(lines)


def _tags_unread_lines(report: CycleReport) -> list[str]:
    """The buckets planned without their tags (those that failed for it are named as failed)."""
    failed = {r.bucket for r in report.results if r.state is BucketState.FAILED}
    planned = [t for t in report.tags_unread if t.bucket not in failed]
    if not planned:
        return []
    head = (
        f"Guard: the tags of {len(planned)} bucket(s) could not be read, so their rules stay as they are"
        " (partial_definitions): none was removed and no selector's change was made (marked ! in the plan);"
        " rules new to them were added."
    )
    return [head, *(f"  tags unread: {printable(t.bucket)}: {printable(t.error)}" for t in planned)]


def unreadable_lines(definitions: Definitions) -> list[str]:
    """Each unreadable definition file on a line, with why (``summary``, ``explain``)."""
    return [_unreadable_line(f) for f in definitions.unreadable_files]


def _unreadable_line(file: UnreadableFile) -> str:
    where = f" (line {file.line})" if file.line is not None else ""
    return f"{printable(file.file)}{where}: {printable(file.reason)}"


def failed(report: CycleReport) -> bool:
    """Exit 1: a bucket failed or is invalid, the cycle could not run, or a definition file is unreadable."""
    partial = report.definitions is not None and report.definitions.partial
    return not report.ok or partial or report.counts[BucketState.INVALID] > 0


def history_line(record: ChangeRecord) -> str:
    doc = record.document

    def count(name: str) -> int:
        value = doc.plan.get(name)
        return len(value) if isinstance(value, list) else 0

    held = f" !{count('held')}" if count("held") else ""
    outcome = record.outcome.value + (f": {record.error}" if record.error else "")
    return printable(
        f"{record.key}  {doc.time}  {doc.kind} {doc.action}"
        f"  +{count('added')} ~{count('changed')} -{count('removed')}{held}"
        f"  cycle {doc.cycle_id}  {outcome}"
    )
