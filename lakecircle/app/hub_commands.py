"""The commands' branches for many accounts (``LCC_ACCOUNTS``): ``plan``, ``sync``,
``explain`` and ``history`` run through :mod:`lakecircle.app.accounts` and print each
account's part under its header (:mod:`lakecircle.app.output`).

Each branch that prints is the whole command from there on and exits with its code, as
:mod:`lakecircle.app.cli` does for one account; the exit codes are the same (0, 1, and 2
with ``plan --detailed-exitcode``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from lakecircle.app.accounts import account_histories, explain_in_accounts, run_hub
from lakecircle.app.output import history_line, hub_failed, hub_plan_json, hub_plan_text, summary, unmanaged_list
from lakecircle.app.session import ACCOUNT, Explained, run
from lakecircle.core.problems import printable
from lakecircle.core.report import Trigger
from lakecircle.errors import LakeCircleError
from lakecircle.settings import Settings


def plan_accounts(  # noqa: PLR0917 -- plan's options, given once
    settings: Settings,
    definitions_dir: Path | None,
    only: frozenset[str] | None,
    output: str,
    detailed_exitcode: bool,
    show_unmanaged: bool,
) -> NoReturn:
    """``plan`` with many accounts: the hub's cycle, grouped by account; exits."""
    hub = run(
        lambda: run_hub(settings, definitions_dir, Trigger.PLAN, dry_run=True, only=only, list_unmanaged=show_unmanaged)
    )
    if output == "json":
        click.echo(json.dumps(hub_plan_json(hub, show_unmanaged=show_unmanaged), indent=2))
    else:
        click.echo(hub_plan_text(hub, color=sys.stdout.isatty()))
        click.echo(summary(hub.report, hub))
        if show_unmanaged:
            click.echo(unmanaged_list(hub.report, hub))
    if hub_failed(hub):
        sys.exit(1)
    sys.exit(2 if detailed_exitcode and hub.report.pending else 0)


def sync_accounts(
    settings: Settings,
    definitions_dir: Path | None,
    only: frozenset[str] | None,
    *,
    dry_run: bool,
    allow_mass_removal: bool,
    lease_wait: float | None = None,
) -> NoReturn:
    """``sync`` with many accounts: the hub's cycle, each account's changes under its header; exits."""
    hub = run(
        lambda: run_hub(
            settings,
            definitions_dir,
            Trigger.SYNC,
            dry_run=dry_run,
            only=only,
            allow_mass_removal=allow_mass_removal,
            lease_wait=lease_wait,
        )
    )
    click.echo(hub_plan_text(hub, color=sys.stdout.isatty()))
    click.echo(summary(hub.report, hub))
    sys.exit(1 if hub_failed(hub) else 0)


def explain_accounts(
    settings: Settings, definitions_dir: Path | None, bucket: str, only: frozenset[str] | None
) -> Explained:
    """``explain`` with many accounts: the account that holds the bucket found, and its scope applied."""
    try:
        settings.require(*ACCOUNT)  # the hub reads the account list even with --definitions
    except LakeCircleError as exc:
        raise click.ClickException(str(exc)) from None
    return run(lambda: explain_in_accounts(settings, definitions_dir, bucket, only))


def history_accounts(settings: Settings, bucket: str, only: frozenset[str] | None, output: str) -> NoReturn:
    """``history`` with many accounts: each account's records under its header; exits."""
    found = run(lambda: account_histories(settings, bucket, only))
    unreadable = False
    for account_id, records in found:
        for problem in records.unreadable:
            unreadable = True
            click.echo(f"unreadable record of account {account_id}: {problem}", err=True)
    if output == "json":
        entries = [
            {"account": account_id, **entry}
            for account_id, records in found
            for entry in [r.as_dict() for r in records.records]
            + [{"key": p.key, "unreadable": p.reason} for p in records.unreadable]
        ]
        click.echo(json.dumps(entries, indent=2))
    else:
        shown = [(account_id, records) for account_id, records in found if records.records]
        for account_id, records in shown:
            click.echo(f"account {account_id}:")
            for record in records.records:
                click.echo(f"  {history_line(record)}")
        if not shown and not unreadable:
            click.echo(f"no history for {printable(bucket)} in {len(found)} account(s)")
    sys.exit(1 if unreadable else 0)
