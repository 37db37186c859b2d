"""What a command opens with many accounts (``LCC_ACCOUNTS``): the hub for ``plan`` and
``sync``, and the account that holds a bucket for ``explain``, ``history``, ``rollback`` and
``export``.

Every command opens the hub's own account first (``LCC_AWS_ACCOUNT``, verified as in
single-account mode): the definitions, the account list and every account's records are
read through it. A member account is opened through its role only when the command needs
its buckets, and one that cannot be reached is that account's failure, named with its role
and cause; the others go on (ARCHITECTURE.md, "Many accounts"). ``--account`` limits a
command to the accounts it names; an ID the account list does not hold is said, never
ignored silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import structlog

from lakecircle.adapters.accounts import account_source
from lakecircle.app.export import Exported, export_store
from lakecircle.app.rollbacks import restore
from lakecircle.app.session import Explained, unsupported_in
from lakecircle.app.shares import accounts_at_once, request_slots, service_identity
from lakecircle.app.wiring import Account as Opened
from lakecircle.app.wiring import definition_loader, member_history, open_account, open_hub, open_member
from lakecircle.core.accounts import Account
from lakecircle.core.definitions import Definitions
from lakecircle.core.explain import explain
from lakecircle.core.report import CycleReport
from lakecircle.core.selectors import Matcher, needing_tags
from lakecircle.engine.hub import AccountRun, AccountState
from lakecircle.engine.records import BucketHistory
from lakecircle.engine.rollback import RollbackResult
from lakecircle.errors import AccountSourceError, LakeCircleError
from lakecircle.settings import Settings

log = structlog.get_logger("lakecircle.app.accounts")


@dataclass(frozen=True, slots=True)
class HubRun:
    """One hub cycle of ``plan`` or ``sync``: the summed report and each account's part."""

    report: CycleReport
    runs: tuple[AccountRun, ...]
    """Each listed account's part, in the list's order (skipped ones included)."""
    source: str
    """Where the accounts came from (``organization``, a file), for messages."""
    unknown: tuple[str, ...] = ()
    """``--account`` IDs the account list does not hold (nothing was done for them)."""
    problems: tuple[str, ...] = ()
    """The account list's errors: entries left out, so accounts they meant were not managed."""

    @property
    def failed_accounts(self) -> list[AccountRun]:
        return [r for r in self.runs if r.state is AccountState.FAILED]


async def run_hub(
    settings: Settings,
    definitions_dir: Path | None,
    trigger: str,
    *,
    dry_run: bool,
    only: frozenset[str] | None = None,
    allow_mass_removal: bool = False,
    list_unmanaged: bool = False,
    lease_wait: float | None = None,
) -> HubRun:
    """One cycle of every managed account (those of ``only``, when given); ``lease_wait``
    (``sync``): each account's lease held around its cycle."""
    async with open_hub(
        settings,
        definitions_dir,
        dry_run=dry_run,
        only=only,
        allow_mass_removal=allow_mass_removal,
        list_unmanaged=list_unmanaged,
        lease_wait=lease_wait,
    ) as hub:
        report = await hub.run_cycle(trigger)
        runs = tuple(hub.runs[a.id] for a in hub.accounts if a.id in hub.runs)
        listed = {a.id for a in hub.accounts}
        unknown = tuple(sorted((only or frozenset()) - listed))
        return HubRun(report, runs, hub.source.location, unknown, hub.roster.problems)


# -- the account list, and the accounts a command names ----------------------------------------


async def _listed(settings: Settings, hub: Opened, *, with_tags: bool = False) -> tuple[tuple[Account, ...], str]:
    """The managed accounts and where they come from; LakeCircleError when they cannot be read."""
    source = account_source(settings, hub.adapter)
    assert source is not None  # noqa: S101 -- only called with LCC_ACCOUNTS set
    found = await source.accounts(with_tags=with_tags)
    for problem in found.problems:
        log.warning("accounts_problem", source=source.location, problem=str(problem))
    if not found.readable:
        problems = "; ".join(str(p) for p in found.problems) or "unreadable"
        raise AccountSourceError(f"the accounts at {source.location} could not be read: {problems}")
    return found.accounts, source.location


def _chosen(accounts: Sequence[Account], only: frozenset[str] | None, location: str) -> list[Account]:
    """The accounts ``--account`` names (every one without it); an ID the list lacks is an error."""
    if only is None:
        return list(accounts)
    unknown = sorted(only - {a.id for a in accounts})
    if unknown:
        raise LakeCircleError(not_managed(unknown, location))
    return [a for a in accounts if a.id in only]


def not_managed(ids: Iterable[str], location: str) -> str:
    """The message for ``--account`` IDs the account list does not hold."""
    listed = ", ".join(ids)
    return (
        f"--account {listed}: not among the managed accounts (LCC_ACCOUNTS: {location});"
        " name a listed account, or add it to the list"
    )


def failure(account: Account, error: str) -> str:
    """An account's failure as a command says it: the account, its role, the cause."""
    return f"account {account.id} (role {account.role_arn}): {cause(account, error)}"


def cause(account: Account, error: str) -> str:
    """``error`` without the account and role a role's error already names first."""
    return error.removeprefix(f"account {account.id} (role {account.role_arn}): ")


MemberOpener = Callable[[Account], AbstractAsyncContextManager[Opened]]
"""Opens a member account through its role (:func:`~lakecircle.app.wiring.open_member`)."""


@asynccontextmanager
async def _members(settings: Settings) -> AsyncIterator[tuple[Opened, MemberOpener]]:
    """The hub's own account, and a way to open each member account through its role (with the
    process's request slots shared)."""
    identity = service_identity(settings)
    slots = request_slots(settings)
    async with open_account(settings) as hub:

        def member(account: Account) -> AbstractAsyncContextManager[Opened]:
            return open_member(settings, identity, account, slots=slots)

        yield hub, member


# -- explain ------------------------------------------------------------------------------------


@dataclass
class _Search:
    """Which account holds a bucket, as the accounts answer."""

    holder: Account | None = None
    tags: dict[str, str] | None = None
    tags_error: str | None = None
    unsupported: str | None = None
    failed: list[tuple[Account, str]] = field(default_factory=list)


async def explain_in_accounts(
    settings: Settings, definitions_dir: Path | None, bucket: str, only: frozenset[str] | None
) -> Explained:
    """Why ``bucket`` gets its rules in the account that holds it (``lakecircle explain``).

    Each managed account (those of ``only``) is asked whether it holds the bucket (one
    ListBuckets by prefix, through its role), a few accounts at a time; the holder's scope
    decides which definitions apply, and its tags are read there when a selector in scope
    needs them. When no account holds it, every definition is shown as it would apply
    anywhere; an account that could not be asked makes the answer incomplete.
    """
    async with _members(settings) as (hub, member):
        definitions = (await definition_loader(settings, hub.adapter, definitions_dir).load()).definitions
        accounts, location = await _listed(settings, hub, with_tags=_uses_account_tags(definitions))
        chosen = _chosen(accounts, only, location)
        search = _Search()
        matcher = Matcher(definitions.selectors)
        limiter = anyio.CapacityLimiter(accounts_at_once(settings))

        async def ask(account: Account) -> None:
            async with limiter:
                if search.holder is not None:
                    return
                try:
                    async with member(account) as opened:
                        ref = await opened.adapter.find_bucket(bucket)
                        if ref is None:
                            return
                        search.holder = account
                        matches = [m for m in matcher.match(bucket) if m.selector.scope.admits(account)]
                        if matches or bucket in definitions.buckets:
                            search.unsupported = await unsupported_in(opened.adapter, ref)
                        if needing_tags(matches):
                            try:
                                search.tags = await opened.adapter.get_bucket_tags(ref)
                            except LakeCircleError as exc:
                                search.tags_error = f"the read failed: {exc}"
                except LakeCircleError as exc:
                    search.failed.append((account, str(exc)))

        async with anyio.create_task_group() as group:
            for account in chosen:
                group.start_soon(ask, account)
        matches = matcher.match(bucket)
        if search.holder is None:
            note = _nowhere(len(chosen), search.failed)
            explanation = explain(bucket, definitions, matches, None, note)
            return Explained(
                explanation, definitions, searched=len(chosen), unreachable=tuple(_failures(search.failed))
            )
        explanation = explain(bucket, definitions, matches, search.tags, search.tags_error, account=search.holder)
        return Explained(
            explanation,
            definitions,
            tags_failed=search.tags_error is not None,
            account=search.holder,
            searched=len(chosen),
            unsupported=search.unsupported if explanation.managed else None,
        )


def _uses_account_tags(definitions: Definitions) -> bool:
    return any(s.scope.tags for s in definitions.selectors) or any(d.scope.tags for d in definitions.buckets.values())


def _nowhere(searched: int, failed: Sequence[tuple[Account, str]]) -> str:
    unasked = f", {len(failed)} of them could not be asked" if failed else ""
    return f"the bucket is in none of the {searched} managed account(s) searched{unasked}"


def _failures(failed: Iterable[tuple[Account, str]]) -> list[str]:
    return [failure(account, error) for account, error in sorted(failed, key=lambda f: f[0].id)]


# -- history, rollback, export ---------------------------------------------------------------------


async def account_histories(
    settings: Settings, bucket: str, only: frozenset[str] | None
) -> list[tuple[str, BucketHistory]]:
    """``bucket``'s change records in each account (those ``only`` names, listed or no longer
    listed: records outlive an account's place in the list; every listed account without it),
    read under ``accounts/<id>/`` through the hub's account; no member account is opened."""
    settings.require("endpoint")
    async with open_account(settings) as hub:
        ids = sorted(only) if only is not None else [a.id for a in (await _listed(settings, hub))[0]]
        found: dict[str, BucketHistory] = {}

        async def read(account_id: str) -> None:
            history = member_history(settings, hub.adapter, account_id, hub.caller)
            found[account_id] = await history.bucket_history(bucket)

        limiter = anyio.CapacityLimiter(accounts_at_once(settings))

        async def limited(account_id: str) -> None:
            async with limiter:
                await read(account_id)

        async with anyio.create_task_group() as group:
            for account_id in ids:
                group.start_soon(limited, account_id)
        return [(account_id, found[account_id]) for account_id in ids]


async def rollback_in_account(
    settings: Settings, account_id: str, bucket: str, *, record: str | None, dry_run: bool, lease_wait: float | None
) -> RollbackResult:
    """``lakecircle rollback --account ID``: the bucket restored in that account, from its own
    records under ``accounts/<id>/``, through the same write-ahead path as a sync.

    The account must be a managed one (its role comes from the list), and must hold the
    bucket: a bucket found elsewhere, or nowhere, is refused before anything is written.
    """
    settings.require("endpoint")
    async with _members(settings) as (hub, member):
        accounts, location = await _listed(settings, hub)
        (account,) = _chosen(accounts, frozenset({account_id}), location)
        definitions = (await definition_loader(settings, hub.adapter, None).load()).definitions
        async with member(account) as opened:
            ref = await opened.adapter.find_bucket(bucket)
            if ref is None:
                raise LakeCircleError(
                    f"account {account.id} holds no bucket {bucket}; nothing was written:"
                    " name the account that holds it with --account (`lakecircle explain` says which)"
                )
            history = member_history(settings, hub.adapter, account.id, opened.caller)
            return await restore(
                settings,
                account.id,
                ref,
                leases=hub.adapter,
                adapter=opened.adapter,
                history=history,
                record=record,
                dry_run=dry_run,
                definitions=definitions,
                lease_wait=lease_wait,
            )


async def export_accounts(
    settings: Settings, output_dir: Path, buckets: frozenset[str] | None, only: frozenset[str] | None
) -> Exported:
    """``lakecircle export`` of every managed account (those ``only`` names): each account's
    files under ``<output>/<id>/``, each saying ``Accounts = ["<id>"]``; an account that cannot
    be reached is a problem of its own, and a ``--bucket`` no account holds is one too."""
    async with _members(settings) as (hub, member):
        accounts, location = await _listed(settings, hub)
        chosen = _chosen(accounts, only, location)
        written: list[Path] = []
        problems: list[str] = []
        seen: set[str] = set()
        limiter = anyio.CapacityLimiter(accounts_at_once(settings))

        async def one(account: Account) -> None:
            async with limiter:
                try:
                    async with member(account) as opened:
                        done = await export_store(
                            opened.adapter,
                            output_dir / account.id,
                            buckets,
                            concurrency=settings.concurrency,
                            account=account.id,
                            storage_classes=settings.storage_classes,
                        )
                except LakeCircleError as exc:
                    problems.append(f"{failure(account, str(exc))}: not exported")
                    return
            written.extend(done.written)
            problems.extend(done.problems)
            seen.update(done.found)

        async with anyio.create_task_group() as group:
            for account in chosen:
                group.start_soon(one, account)
        problems.extend(
            f"{name}: not exported: no such bucket in the {len(chosen)} managed account(s)"
            for name in sorted((buckets or frozenset()) - seen)
        )
        return Exported(sorted(written), sorted(problems))
