"""Where the managed accounts come from (``LCC_ACCOUNTS``): an accounts file, or the organization.

Both implement :class:`~lakecircle.ports.AccountSource`:

- :class:`AccountsFile` reads an accounts file from S3 (through the S3 adapter's object read,
  with its size limit, retries and ``ExpectedBucketOwner``) or from the local disk (in a
  worker thread, never more than the limit), and parses it with
  :func:`lakecircle.core.accounts_file.parse_accounts_file`. A file that cannot be opened
  raises; a file with bad content is an :class:`~lakecircle.core.accounts.AccountList` with
  problems.
- :class:`OrganizationAccounts` lists the organization's ACTIVE accounts with the service's
  own credentials, every request through the S3 adapter's transport (one retry layer, the
  throttle gate, the observer, errors mapped in one place). Without OUs in the filter it is
  ListAccounts, paged; with OUs, only the OUs' subtrees are walked (ListAccountsForParent
  and ListOrganizationalUnitsForParent per OU), which costs a request or two per OU instead
  of one per account. Tags (ListTagsForResource, one request per account) are read only
  when the filter has tags or the caller asks for them.

An account is ACTIVE by its ``State`` (Organizations' newer field: PENDING_ACTIVATION, ACTIVE,
SUSPENDED, PENDING_CLOSURE, CLOSED) or, where a server sends only the older ``Status``, by that;
a suspended or closed account is left out, because no role in it can be assumed.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import anyio.to_thread

from lakecircle import errors
from lakecircle.adapters.local import NotARegularFile, read_capped
from lakecircle.adapters.s3.adapter import S3Adapter
from lakecircle.adapters.s3.transport import S3Transport
from lakecircle.core.account_filter import AccountFilter
from lakecircle.core.accounts import Account, AccountList, account_id_problem, default_role_arn
from lakecircle.core.accounts_file import MAX_ACCOUNTS_FILE_BYTES, parse_accounts_file
from lakecircle.core.problems import Problem, Severity
from lakecircle.ports import AccountSource
from lakecircle.settings import AccountsFrom, Settings

ORGANIZATIONS: Final = "organizations"
"""The service name of Organizations' client."""
FILTER_SETTING: Final = "LCC_ACCOUNT_FILTER"
TAG_READS: Final = 4
"""ListTagsForResource requests under way at once: Organizations throttles an account's API
calls at a few per second, and the tags of a few hundred accounts are read once per resync."""


def account_source(settings: Settings, adapter: S3Adapter) -> AccountSource | None:
    """The source ``LCC_ACCOUNTS`` names, reading through ``adapter`` (the hub's own: its
    credentials list the organization and read the accounts file); None when it is unset
    (single-account mode)."""
    role = {"role_name": settings.role_name, "partition": settings.role_partition}
    match settings.accounts_from:
        case None:
            return None
        case AccountsFrom.ORGANIZATION:
            return OrganizationAccounts(adapter, account_filter=settings.parsed_account_filter, **role)
        case AccountsFrom.S3_FILE:
            return AccountsFile.in_s3(adapter, str(settings.accounts), **role)
        case AccountsFrom.LOCAL_FILE:
            return AccountsFile.on_disk(Path(str(settings.accounts)), **role)


class AccountsFile:
    """An accounts file, in S3 or on the local disk (:meth:`in_s3`, :meth:`on_disk`)."""

    def __init__(
        self, location: str, read: Callable[[], Awaitable[bytes]], *, role_name: str, partition: str = "aws"
    ) -> None:
        self._location = location
        self._read = read
        self.role_name = role_name
        self.partition = partition

    @classmethod
    def in_s3(cls, adapter: S3Adapter, uri: str, *, role_name: str, partition: str = "aws") -> AccountsFile:
        """The file at ``s3://bucket/key``, read through ``adapter`` (the hub's)."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")

        async def read() -> bytes:
            try:
                return await adapter.read_object(bucket, key, limit=MAX_ACCOUNTS_FILE_BYTES + 1)
            except errors.NotFound as exc:
                raise errors.AccountSourceError(
                    f"no accounts file at {uri} ({exc.code}); upload it or fix LCC_ACCOUNTS"
                ) from exc
            except errors.S3Error as exc:
                raise errors.AccountSourceError(f"cannot read the accounts file at {uri}: {exc}") from exc

        return cls(uri, read, role_name=role_name, partition=partition)

    @classmethod
    def on_disk(cls, path: Path, *, role_name: str, partition: str = "aws") -> AccountsFile:
        """The file at ``path``, read in a worker thread."""

        async def read() -> bytes:
            try:
                return await anyio.to_thread.run_sync(read_capped, path, MAX_ACCOUNTS_FILE_BYTES)
            except OSError as exc:
                raise errors.AccountSourceError(f"cannot read the accounts file {path}: {_why(exc)}") from exc

        return cls(str(path), read, role_name=role_name, partition=partition)

    @property
    def location(self) -> str:
        return self._location

    async def accounts(self, *, with_tags: bool = False) -> AccountList:
        """The file's accounts (their ``Tags`` come with them, ``with_tags`` or not)."""
        data = await self._read()
        return parse_accounts_file(self._location, data, role_name=self.role_name, partition=self.partition)


def _why(exc: OSError) -> str:
    if isinstance(exc, NotARegularFile):
        return f"it is {exc.strerror}, not a regular file"
    if exc.errno == errno.ENOENT:
        return "no such file; create it or fix LCC_ACCOUNTS"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; let LakeCircle's user read it"
    return exc.strerror or str(exc)


class OrganizationAccounts:
    """The ACTIVE accounts of the organization the service's credentials can list, narrowed by
    ``LCC_ACCOUNT_FILTER``; each account's role is ``LCC_ROLE_NAME``'s in it."""

    location = "organization"

    def __init__(
        self,
        transport: S3Transport,
        *,
        role_name: str,
        partition: str = "aws",
        account_filter: AccountFilter | None = None,
    ) -> None:
        self._transport = transport
        self.role_name = role_name
        self.partition = partition
        self.filter = account_filter or AccountFilter()

    async def accounts(self, *, with_tags: bool = False) -> AccountList:
        try:
            if self.filter.parents:
                found, problems = await self._under_parents()
            else:
                found, problems = {entry["Id"]: (entry, frozenset[str]()) for entry in await self._all()}, []
            active = {i: (e, up) for i, (e, up) in found.items() if _active(e)}
            tags = await self._tags(list(active)) if with_tags or self.filter.needs_tags else {}
        except errors.S3Error as exc:
            raise errors.AccountSourceError(_cannot_list(exc)) from exc
        accounts = tuple(
            Account(
                account_id,
                default_role_arn(account_id, self.role_name, self.partition),
                tags=tuple(sorted(tags.get(account_id, {}).items())),
            )
            for account_id, (_, ancestors) in active.items()
            if self.filter.admits(tags.get(account_id, {}), ancestors)
        )
        if not accounts:
            problems.append(_none_selected(len(active), filtered=self.filter != AccountFilter()))
        return AccountList(accounts, tuple(problems))

    async def _all(self) -> list[Mapping[str, Any]]:
        return [_checked(entry, "ListAccounts") for entry in await self._pages("ListAccounts", "Accounts")]

    async def _under_parents(self) -> tuple[dict[str, tuple[Mapping[str, Any], frozenset[str]]], list[Problem]]:
        """Every account in the filter's OUs (and roots) or below them, with the IDs of the OUs
        on the way down (the filter's own among them); an OU the organization does not have
        is a problem naming it, and the others are still walked."""
        found: dict[str, tuple[Mapping[str, Any], frozenset[str]]] = {}
        problems: list[Problem] = []
        for parent in self.filter.parents:
            try:
                await self._walk(parent, found)
            except errors.NotFound:
                problems.append(
                    Problem(
                        FILTER_SETTING,
                        f"{parent} is no OU or root of the organization, so no account is managed for it;"
                        " correct or remove it (aws organizations list-roots, list-organizational-units-for-parent)",
                        field=parent,
                    )
                )
        return found, problems

    async def _walk(self, top: str, found: dict[str, tuple[Mapping[str, Any], frozenset[str]]]) -> None:
        queue = [(top, frozenset({top}))]
        while queue:
            parent, ancestors = queue.pop(0)
            for entry in await self._pages("ListAccountsForParent", "Accounts", ParentId=parent):
                checked = _checked(entry, "ListAccountsForParent")
                _, known = found.get(checked["Id"], (checked, frozenset[str]()))
                found[checked["Id"]] = (checked, known | ancestors)
            for unit in await self._pages("ListOrganizationalUnitsForParent", "OrganizationalUnits", ParentId=parent):
                unit_id = unit.get("Id") if isinstance(unit, Mapping) else None
                if not isinstance(unit_id, str) or not unit_id:
                    raise errors.MalformedResponse(
                        "an organizational unit without an Id", operation="ListOrganizationalUnitsForParent"
                    )
                queue.append((unit_id, ancestors | {unit_id}))

    async def _tags(self, account_ids: list[str]) -> dict[str, dict[str, str]]:
        """Each account's tags, a few accounts at a time; the first failure is raised."""
        gate = asyncio.Semaphore(TAG_READS)

        async def one(account_id: str) -> dict[str, str]:
            async with gate:
                entries = await self._pages("ListTagsForResource", "Tags", ResourceId=account_id)
            return {str(t["Key"]): str(t.get("Value", "")) for t in entries if isinstance(t, Mapping) and "Key" in t}

        results = await asyncio.gather(*(one(i) for i in account_ids), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return {i: r for i, r in zip(account_ids, results, strict=True) if not isinstance(r, BaseException)}

    async def _pages(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item of a paged Organizations listing, to its end (NextToken)."""
        items: list[Any] = []
        used: set[str] = set()
        token: str | None = None
        while True:
            page = await self._transport.call(
                operation, service=ORGANIZATIONS, **params, **({"NextToken": token} if token else {})
            )
            items.extend(page.get(key) or ())
            token = page.get("NextToken")
            if not token:
                return items
            if token in used:
                raise errors.MalformedResponse(
                    "the same NextToken came back twice; the listing would never end", operation=operation
                )
            used.add(token)


def _none_selected(active: int, *, filtered: bool) -> Problem:
    """A warning that nothing is managed: said, because a silent zero looks like a healthy hub."""
    if filtered:
        message = (
            f"selects none of the {active} ACTIVE account(s) it looked at (in its OUs, or in the whole"
            " organization); no account is managed: correct the filter"
        )
        return Problem(FILTER_SETTING, message, severity=Severity.WARNING)
    return Problem("organization", "lists no ACTIVE account; no account is managed", severity=Severity.WARNING)


def _checked(entry: object, operation: str) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("Id"), str) or account_id_problem(entry["Id"]):
        # An ID makes record keys (accounts/<id>/) and metric labels: only 12 ASCII digits pass.
        raise errors.MalformedResponse("an account entry without a 12-digit Id", operation=operation)
    return entry


def _active(entry: Mapping[str, Any]) -> bool:
    """ACTIVE by ``State`` where the answer has it, else by the older ``Status``."""
    return (entry.get("State") or entry.get("Status")) == "ACTIVE"


def _cannot_list(exc: errors.S3Error) -> str:
    code = f" [{exc.code}]" if exc.code else ""
    hint = ""
    if isinstance(exc, errors.AccessDenied):
        hint = (
            "; the service's role needs organizations:ListAccounts (ListAccountsForParent and"
            " ListOrganizationalUnitsForParent for OUs in LCC_ACCOUNT_FILTER, ListTagsForResource for tags), and"
            " must be in the management account or a delegated administrator"
        )
    elif exc.code == "AWSOrganizationsNotInUseException":
        hint = "; the service's account is in no organization: use an accounts file for LCC_ACCOUNTS instead"
    return f"cannot list the organization's accounts: {exc.operation} failed{code}: {exc.message}{hint}"
