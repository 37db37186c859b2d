"""What the commands print: problems, a cycle's summary, an explanation, a history line, and the exit verdict.

Plans and summaries go to standard output, logs to standard error. Everything a user's
input or a stored record put into a line goes through
:func:`~lakecircle.core.problems.printable` first (ARCHITECTURE.md, "Observability").

With many accounts (``LCC_ACCOUNTS``) a plan is grouped by account: a header line per
account with its state (a failed one named with its role and cause), that account's plan,
then one summary for every account, which counts the accounts too (:func:`hub_plan_text`,
:func:`summary` with ``hub``, :func:`hub_plan_json`). A failed account fails the command
as a failed bucket does (:func:`hub_failed`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import click

from lakecircle.app.accounts import HubRun, cause, failure, not_managed
from lakecircle.app.session import Explained
from lakecircle.core.definitions import Definitions, UnreadableFile
from lakecircle.core.explain import explanation_json, explanation_text
from lakecircle.core.problems import Problem, printable
from lakecircle.core.render import PLAN_FORMAT_VERSION, plan_json, render_plan_text
from lakecircle.core.report import BucketResult, BucketState, CycleReport, Guard, counts_document, report_document
from lakecircle.engine.hub import AccountRun, AccountState
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


def unmanaged_list(report: CycleReport, hub: HubRun | None = None) -> str:
    """``plan --show-unmanaged``: the buckets no definition selects, one a line (with ``hub``,
    each with its account)."""
    if hub is not None:
        named = [
            f"  {printable(name)} (account {run.account.id})"
            for run in hub.runs
            if run.report is not None
            for name in run.report.unmanaged
        ]
        return "\n".join((f"Unmanaged bucket(s), {len(named)}: no definition selects them.", *named))
    names = report.unmanaged
    head = f"Unmanaged bucket(s), {len(names)}: no definition selects them."
    return "\n".join((head, *(f"  {printable(name)}" for name in names)))


def _unsupported(counts: Counter[BucketState]) -> str:
    """``, 1 unsupported`` when a bucket's rules hold a field LakeCircle does not know."""
    return f", {counts[BucketState.UNSUPPORTED]} unsupported" if counts[BucketState.UNSUPPORTED] else ""


def summary(report: CycleReport, hub: HubRun | None = None) -> str:
    """One paragraph a person reads after a cycle; with ``hub`` (many accounts), the buckets
    named with their accounts and the accounts counted."""
    c = report.counts
    verb = "would change" if report.dry_run else "changed"
    changed = c[BucketState.DRIFTED] if report.dry_run else c[BucketState.CHANGED]
    managed = sum(1 for r in hub.runs if r.state is AccountState.MANAGED) if hub is not None else 0
    where = "the account" if hub is None else f"{managed} account(s)"
    lines = [
        f"{changed} bucket(s) {verb}, {c[BucketState.IN_SYNC]} in sync, {c[BucketState.MISSING]} missing,"
        f" {c[BucketState.INVALID]} invalid, {c[BucketState.FAILED]} failed{_unsupported(c)}"
        f" ({report.buckets_listed} bucket(s) in {where}, {report.duration:.1f} s)."
    ]
    accounts = _accounts_of(hub)
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
        bucket = printable(result.bucket) + accounts.get(id(result), "")
        if result.state in (BucketState.FAILED, BucketState.INVALID, BucketState.MISSING, BucketState.UNSUPPORTED):
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
    if hub is not None:
        lines.extend(_accounts_lines(hub))
    if report.fatal is not None:
        lines.append(f"Cycle failed: {report.fatal}")
    return "\n".join(lines)


def _accounts_of(hub: HubRun | None) -> dict[int, str]:
    """`` (account <id>)`` by result, for the lines that name a bucket (none with one account)."""
    if hub is None:
        return {}
    return {id(r): f" (account {run.account.id})" for run in hub.runs if run.report for r in run.report.results}


def _accounts_lines(hub: HubRun) -> list[str]:
    states = [r.state for r in hub.runs]
    shown = [s for s in AccountState if s is not AccountState.RUNNING or s in states]  # running: the daemon's only
    counted = ", ".join(f"{states.count(state)} {state.value}" for state in shown)
    lines = [f"Accounts: {counted} (LCC_ACCOUNTS: {printable(hub.source)})."]
    lines.extend(f"  failed: {printable(_failed(run))}" for run in hub.failed_accounts)
    if hub.unknown:
        lines.append(f"  {printable(not_managed(hub.unknown, hub.source))}")
    lines.extend(f"  left out: {printable(problem)}" for problem in hub.problems)
    return lines


def _failed(run: AccountRun) -> str:
    return failure(run.account, run.error or "failed")


def account_header(run: AccountRun) -> str:
    """The line that opens an account's part of a plan: its ID and state."""
    account = run.account
    if run.state is AccountState.FAILED:
        return printable(f"account {account.id}: failed (role {account.role_arn}): {cause(account, run.error or '')}")
    if run.state is AccountState.SKIPPED:
        return f"account {account.id}: skipped (not named by --account)"
    listed = run.report.buckets_listed if run.report is not None else 0
    return f"account {account.id}: managed, {listed} bucket(s) listed"


def hub_plan_text(hub: HubRun, *, color: bool = False) -> str:
    """Each account's plan under its header, in the account list's order; the accounts
    ``--account`` left out are only counted (:func:`summary`)."""
    blocks = []
    for run in hub.runs:
        if run.state is AccountState.SKIPPED:
            continue
        block = [account_header(run)]
        if run.report is not None and run.state is AccountState.MANAGED:
            block.append(render_plan_text(run.report.plans, color=color, total=run.report.compared))
        blocks.append("\n".join(block))
    return "\n\n".join(blocks) if blocks else "No account was run."


def hub_plan_json(hub: HubRun, *, show_unmanaged: bool = False) -> dict[str, Any]:
    """``plan --output json`` with many accounts: the single account's document, each bucket
    (and each report problem and change) with its ``account``, and an ``accounts`` list."""
    buckets: list[dict[str, Any]] = []
    pending = False
    problems: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    ran: set[int] = set()
    for run in hub.runs:
        if run.report is None:
            continue
        account = run.account.id
        buckets.extend({"account": account, **plan_json(plan)} for plan in run.report.plans)
        pending = pending or any(plan.has_changes for plan in run.report.plans)
        own = report_document(run.report)
        problems.extend({"account": account, **entry} for entry in own["problems"])
        changes.extend({"account": account, **entry} for entry in own["changes"])
        ran.update(id(r) for r in run.report.results)
    across = [r for r in hub.report.results if id(r) not in ran]  # missing from every account
    problems.extend({"account": None, **entry} for entry in _problems(across))
    report = report_document(hub.report) | {"problems": problems, "changes": changes}
    document: dict[str, Any] = {
        "format_version": PLAN_FORMAT_VERSION,
        "changes": pending,
        "buckets": buckets,
        "report": report,
        "accounts": [_account_json(run) for run in hub.runs],
        "unknown_accounts": list(hub.unknown),
        "account_problems": list(hub.problems),
    }
    if show_unmanaged:
        document["unmanaged"] = [
            {"account": run.account.id, "bucket": name}
            for run in hub.runs
            if run.report is not None
            for name in run.report.unmanaged
        ]
    return document


def _problems(results: Sequence[BucketResult]) -> list[dict[str, Any]]:
    return [
        {"bucket": r.bucket, "state": r.state.value, "error": r.error, "stage": r.stage}
        for r in results
        if r.error is not None
    ]


def _account_json(run: AccountRun) -> dict[str, Any]:
    report = run.report
    return {
        "id": run.account.id,
        "role_arn": run.account.role_arn,
        "state": run.state.value,
        "error": run.error,
        "buckets_listed": report.buckets_listed if report is not None else 0,
        "counts": counts_document(report.counts) if report is not None else {},
    }


def hub_failed(hub: HubRun) -> bool:
    """Exit 1 with many accounts: as :func:`failed` for the summed report, or an account
    failed, or ``--account`` named an account the list does not hold, or the account list
    has errors (its bad entries were left out, as a bad definition is)."""
    return failed(hub.report) or bool(hub.failed_accounts) or bool(hub.unknown) or bool(hub.problems)


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
    """Exit 1: a bucket failed, is invalid or unsupported, the cycle could not run, or a definition
    file is unreadable."""
    partial = report.definitions is not None and report.definitions.partial
    return not report.ok or partial or report.counts[BucketState.INVALID] + report.counts[BucketState.UNSUPPORTED] > 0


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


def print_explained(explained: Explained, output: str, *, many: bool) -> None:
    """``explain``'s answer on standard output (text or one JSON document), and on standard
    error a warning for each reason it may be incomplete; with ``many`` (``LCC_ACCOUNTS``),
    the accounts searched too."""
    explanation, definitions = explained.explanation, explained.definitions
    if output == "json":
        document = explanation_json(explanation)
        document["unreadable_files"] = [f.as_dict() for f in definitions.unreadable_files]
        if many:
            document.setdefault("account", None)
            document.setdefault("out_of_scope", [])
            document["accounts_searched"] = explained.searched
            document["unreachable_accounts"] = list(explained.unreachable)
        document["unsupported"] = explained.unsupported
        click.echo(json.dumps(document, indent=2))
    else:
        text = explanation_text(explanation).split("\n")
        if explained.unsupported is not None:
            text.append(f"unsupported: it is never written: {printable(explained.unsupported)}")
        if many and explained.account is None:
            text.insert(
                1,
                f"account: none of the {explained.searched} managed account(s) searched holds it;"
                " every definition is shown as it would apply in any account",
            )
        click.echo("\n".join(text))
    for unreachable in explained.unreachable:
        click.echo(f"warning: could not ask {printable(unreachable)}", err=True)
    if definitions.partial:
        click.echo("warning: some definition files could not be read, so this picture may be incomplete:", err=True)
        for line in unreadable_lines(definitions):
            click.echo(f"  unreadable: {line}", err=True)
    if explained.tags_failed:
        click.echo(
            "warning: the bucket's tags could not be read, so the selectors that need them are left out", err=True
        )
