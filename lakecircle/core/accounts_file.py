"""Read an accounts file (``LCC_ACCOUNTS`` = a path or ``s3://bucket/key``) into accounts and problems.

The format (the issue fixes it)::

    [[Account]]
    Id = "111111111111"
    RoleArn = "arn:aws:iam::111111111111:role/lakecircle"   # optional: LCC_ROLE_NAME's role
    ExternalId = "..."                                       # optional
    Tags = { env = "prod", team = "media" }                  # optional, for AccountTags

A bad accounts file is treated as a bad definition is: every problem comes back at once,
naming the file, the entry (``Account[2]``), the field and what to change, and nothing
raises. An entry with an error is left out and the others are managed; two entries with
one ``Id`` are both left out (which role and tags are meant is unknown). A file that cannot
be read as a whole (too large, not UTF-8, not TOML, no ``[[Account]]``) is unreadable:
its accounts are unknown (:attr:`~lakecircle.core.accounts.AccountList.readable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from lakecircle.core.accounts import (
    Account,
    AccountList,
    account_id_problem,
    default_role_arn,
    external_id_problem,
    role_arn_problem,
    tag_problems,
)
from lakecircle.core.problems import Problem, shown, suggest
from lakecircle.core.toml_reader import TomlError, read_toml

MAX_ACCOUNTS_FILE_BYTES: Final = 1024 * 1024
"""An accounts file over 1 MiB is refused unread (a thousand accounts take about 150 KB)."""

ENTRY_KEYS: Final = ("Id", "RoleArn", "ExternalId", "Tags")


def parse_accounts_file(name: str, data: bytes, *, role_name: str, partition: str = "aws") -> AccountList:
    """The accounts of one accounts file's bytes; an entry without ``RoleArn`` gets
    ``arn:<partition>:iam::<Id>:role/<role_name>`` (:func:`~lakecircle.core.accounts.default_role_arn`)."""
    if len(data) > MAX_ACCOUNTS_FILE_BYTES:
        return _unreadable(
            name, f"file is {len(data):,} bytes, over the 1 MiB limit for an accounts file; list fewer accounts"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return _unreadable(name, f"file is not UTF-8 (bad byte at line {line}, offset {exc.start}); save it as UTF-8")
    try:
        document = read_toml(text.removeprefix("\ufeff"))
    except TomlError as exc:
        return _unreadable(name, str(exc))
    return read_accounts(name, document, role_name=role_name, partition=partition)


def read_accounts(name: str, document: Mapping[str, Any], *, role_name: str, partition: str = "aws") -> AccountList:
    """The accounts of an already decoded accounts file."""
    problems = [
        Problem(
            name,
            f"unknown key {shown(key)}{suggest(key, ['Account'])}; an accounts file holds [[Account]] tables",
            field=key,
        )
        for key in document
        if key != "Account"
    ]
    entries = document.get("Account")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        said = (
            "Account must be an array of tables, written [[Account]]"
            if entries is not None and not (isinstance(entries, list) and not entries)
            else "the file lists no accounts"
        )
        problems.append(Problem(name, f'{said}; list each account as [[Account]] with its Id = "012345678901"'))
        return AccountList((), tuple(problems), readable=False)
    read: list[tuple[int, Account | None]] = []
    for index, entry in enumerate(entries):
        account, found = _entry(name, index, entry, role_name=role_name, partition=partition)
        problems.extend(found)
        read.append((index, account))
    first: dict[str, int] = {}
    repeated: set[str] = set()
    for index, account in read:
        if account is None:
            continue
        if account.id in first:
            repeated.add(account.id)
            problems.append(
                Problem(
                    name,
                    f"account {account.id} is listed twice, here and in Account[{first[account.id]}]; both entries"
                    " are left out until one is removed",
                    field=f"Account[{index}].Id",
                )
            )
        else:
            first[account.id] = index
    accounts = tuple(a for _, a in read if a is not None and a.id not in repeated)
    return AccountList(accounts, tuple(problems))


def _entry(
    file: str, index: int, entry: Mapping[str, Any], *, role_name: str, partition: str
) -> tuple[Account | None, list[Problem]]:
    """One ``[[Account]]`` table's account, or None when it has an error; and its problems."""
    where = f"Account[{index}]."
    problems: list[Problem] = []

    def problem(key: str, message: str) -> None:
        problems.append(Problem(file, message, field=f"{where}{key}"))

    for key in entry:
        if key not in ENTRY_KEYS:
            problem(
                key,
                f"unknown key {shown(key)}{suggest(key, ENTRY_KEYS)}; allowed here: {', '.join(sorted(ENTRY_KEYS))}",
            )
    raw_id = entry.get("Id")
    account_id: str | None = None
    if raw_id is None:
        problem("Id", "missing required key 'Id' (the account's 12-digit ID, as a string)")
    else:
        found = account_id_problem(raw_id)
        if found is None:
            account_id = str(raw_id)
        else:
            problem("Id", f"Id {found}")
    role_arn = entry.get("RoleArn")
    if role_arn is not None:
        found = role_arn_problem(role_arn, account_id) if isinstance(role_arn, str) else "it must be a string"
        if found is not None:
            problem("RoleArn", f"RoleArn: {found}")
    external_id = entry.get("ExternalId")
    if external_id is not None:
        found = external_id_problem(external_id) if isinstance(external_id, str) else "must be a string (quote it)"
        if found is not None:
            problem("ExternalId", f"ExternalId {found}")
    tags = entry.get("Tags")
    if tags is not None and not isinstance(tags, dict):
        problem("Tags", 'Tags must be a table, such as Tags = { env = "prod" }')
    for path, message in tag_problems(tags) if isinstance(tags, dict) else ():
        problem(f"Tags.{path}" if path else "Tags", message)
    if problems or account_id is None:
        return None, problems
    return (
        Account(
            account_id,
            role_arn if isinstance(role_arn, str) else default_role_arn(account_id, role_name, partition),
            external_id if isinstance(external_id, str) else None,
            tuple(sorted((tags or {}).items())),
        ),
        problems,
    )


def _unreadable(name: str, message: str) -> AccountList:
    return AccountList((), (Problem(name, message),), readable=False)
