"""The accounts LakeCircle manages when one service serves many (``LCC_ACCOUNTS``).

An account is reached through its own assumed role; this module holds the value that says
which account and which role (:class:`Account`), where a definition applies
(:class:`AccountScope`: its ``Accounts`` and ``AccountTags``), what a source of accounts
found (:class:`AccountList`), and the forms AWS gives each part: 12-digit account IDs, IAM
role ARNs and names, STS's ExternalId, Organizations' tags. Reading an accounts file is
:mod:`lakecircle.core.accounts_file`, ``LCC_ACCOUNT_FILTER`` is
:mod:`lakecircle.core.account_filter`. Nothing here does I/O.

Account IDs are strings of 12 digits everywhere: ``012345678901`` is an account, and a
TOML integer would lose its leading zero, so an integer is refused with "quote it".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from lakecircle.core.problems import Problem, Severity, shown, shown_number
from lakecircle.core.shape_problems import toml_key


@dataclass(frozen=True, slots=True)
class Account:
    """One managed account: its 12-digit ID, the role assumed in it, and its tags."""

    id: str
    """The 12-digit account ID, as a string (leading zeros are part of it)."""
    role_arn: str
    """The IAM role LakeCircle assumes in the account."""
    external_id: str | None = field(default=None, repr=False)
    """The ExternalId the role's trust policy asks for; a secret: never logged (nor in a repr)."""
    tags: tuple[tuple[str, str], ...] = ()
    """The account's tags (accounts file ``Tags``, or Organizations' tags) as sorted pairs."""


# -- where a definition applies -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountScope:
    """A definition's ``Accounts`` and ``AccountTags``: the accounts it applies in.

    Without either key a definition applies in every managed account (:data:`EVERY_ACCOUNT`,
    the default of every definition value, so definitions without them are the values
    they always were). With both, an account must pass both.
    """

    accounts: frozenset[str] | None = None
    """``Accounts``: the account IDs it applies in; None when the key is absent (any account)."""
    tags: tuple[tuple[str, str], ...] = ()
    """``AccountTags`` as sorted pairs: the account must carry every one, with that value."""

    @property
    def everywhere(self) -> bool:
        return self.accounts is None and not self.tags

    def admits(self, account: Account) -> bool:
        """Whether a definition with this scope applies in ``account``: ``Accounts`` holds its
        ID (when given) and its tags carry every ``AccountTags`` pair (other tags do not matter)."""
        if self.accounts is not None and account.id not in self.accounts:
            return False
        if not self.tags:
            return True
        carried = dict(account.tags)
        return all(carried.get(key) == value for key, value in self.tags)

    def describe(self) -> str:
        """The scope as a definition writes it, for messages: ``Accounts = [...], AccountTags = {...}``."""
        parts = []
        if self.accounts is not None:
            listed = ", ".join(f'"{a}"' for a in sorted(self.accounts))
            parts.append(f"Accounts = [{listed}]")
        if self.tags:
            pairs = ", ".join(f"{toml_key(k)} = {shown(v)}" for k, v in self.tags)
            parts.append(f"AccountTags = {{ {pairs} }}")
        return ", ".join(parts) or "no Accounts or AccountTags (every account)"


EVERY_ACCOUNT: Final = AccountScope()
"""The scope of a definition without ``Accounts`` or ``AccountTags``."""


# -- what a source of accounts found ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountList:
    """The accounts a source found, and what was wrong on the way (each problem names its
    file or setting, its entry and field, and what to change).

    An entry with an error is left out; the others are managed. ``readable`` is False when
    the list as a whole could not be read (an accounts file too large, not UTF-8, not TOML,
    or without an ``[[Account]]``): the accounts it meant are unknown, and a caller that
    had a list before should keep it rather than drop every account.
    """

    accounts: tuple[Account, ...]
    problems: tuple[Problem, ...] = ()
    readable: bool = True

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.accounts)


# -- the forms of AWS's values ---------------------------------------------------------------

_ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")


def account_id_problem(value: object) -> str | None:
    """Why ``value`` (as TOML gave it) is not an account ID, or None when it is one.

    The message follows what was written: ``Id = 111111111111`` is "a number; quote it".
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return 'must be an account ID: a string of 12 digits, such as "012345678901"'
    if isinstance(value, int):
        digits = shown_number(value)
        if value >= 0 and len(digits) == 12:
            return f'is the number {digits}; account IDs are strings of 12 digits: quote it, "{digits}"'
        return (
            f"is the number {digits}; account IDs are strings of 12 digits:"
            " quote it, with every digit (leading zeros included)"
        )
    if not _ACCOUNT_ID.fullmatch(value):
        return f'{shown(value)} is not an account ID; account IDs are 12 digits, such as "012345678901"'
    return None


PARTITION_OF_REGION: Final = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)
"""The regions outside the ``aws`` partition, by prefix (the longer ``us-isob-`` before ``us-iso-``)."""


def partition_of(region: str | None) -> str:
    """The AWS partition of ``region``: ``aws`` unless the region is in China, GovCloud or an
    isolated partition. A role ARN built from ``LCC_ROLE_NAME`` uses it: the member accounts
    are in the hub's partition (roles cannot be assumed across partitions)."""
    for prefix, partition in PARTITION_OF_REGION:
        if region is not None and region.startswith(prefix):
            return partition
    return "aws"


_ROLE_ARN: Final = re.compile(r"arn:(aws(?:-[a-z]+)*):iam::([^:]*):role/(.*)", re.DOTALL)
_ROLE_NAME: Final = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
"""IAM's role names: 1 to 64 of letters, digits and ``_+=,.@-``."""
_PATH_PART: Final = re.compile(r"[\x21-\x2e\x30-\x7e]+")
"""One part of an IAM path: printable ASCII but ``/`` and space."""
MAX_PATH: Final = 512


def role_name_problem(value: str) -> str | None:
    """Why ``value`` is no IAM role name with an optional path (``lakecircle``,
    ``automation/lakecircle``), or None. The path is written without its outer slashes.
    The message does not show the value (``LCC_ROLE_NAME`` may hold a secret pasted there)."""
    if value.startswith("arn:"):
        return "give the role's name (after its path, if any), not its ARN: each account's ARN is built from it"
    *path, name = value.split("/")
    if not _ROLE_NAME.fullmatch(name):
        return (
            "the role name is not one IAM allows: 1 to 64 letters, digits and _+=,.@-"
            " (a path goes before it, as in automation/lakecircle)"
        )
    if path and not all(_PATH_PART.fullmatch(part) for part in path):
        return "the role's path has an empty part or a character IAM does not allow (printable ASCII only)"
    if len("/".join(path)) + 2 > MAX_PATH:
        return f"the role's path is over IAM's {MAX_PATH} characters"
    return None


def default_role_arn(account_id: str, role_name: str, partition: str = "aws") -> str:
    """``arn:<partition>:iam::<account>:role/<LCC_ROLE_NAME>``: the role assumed in an account
    whose entry names none (and in every account of an organization)."""
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def role_arn_problem(value: str, account_id: str | None) -> str | None:
    """Why ``value`` is not the ARN of an IAM role in ``account_id`` (None: any account), or None."""
    found = _ROLE_ARN.fullmatch(value)
    if found is None:
        return (
            f"{shown(value)} is not an IAM role ARN; write arn:aws:iam::<account>:role/<name>"
            " (another partition in place of aws where there is one)"
        )
    partition, owner, rest = found.groups()
    if not _ACCOUNT_ID.fullmatch(owner):
        return f"the ARN's account {shown(owner)} is not 12 digits; write arn:{partition}:iam::<account>:role/<name>"
    if account_id is not None and owner != account_id:
        return (
            f"the role is in account {owner}, not in this entry's account {account_id}; a role is assumed in"
            f" its own account: write arn:{partition}:iam::{account_id}:role/..."
        )
    problem = role_name_problem(rest)
    return f"{problem}, in {shown(value)}" if problem else None


MIN_EXTERNAL_ID: Final = 2
MAX_EXTERNAL_ID: Final = 1224
_EXTERNAL_ID: Final = re.compile(r"[A-Za-z0-9_+=,.@:/-]*")


def external_id_problem(value: str) -> str | None:
    """Why ``value`` is no ExternalId STS accepts (2 to 1,224 of letters, digits and
    ``_+=,.@:/-``), or None. The value is a secret: the message never shows it."""
    if not MIN_EXTERNAL_ID <= len(value) <= MAX_EXTERNAL_ID:
        return (
            f"is {len(value):,} character{'' if len(value) == 1 else 's'} long; STS takes an ExternalId"
            f" of {MIN_EXTERNAL_ID} to {MAX_EXTERNAL_ID:,} characters"
        )
    if not _EXTERNAL_ID.fullmatch(value):
        return "has a character STS refuses in an ExternalId; it takes letters, digits and _+=,.@:/- only"
    return None


MAX_TAGS: Final = 50
"""Organizations' limit of tags on one account."""
MAX_TAG_KEY: Final = 128
MAX_TAG_VALUE: Final = 256
_TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")


def _tag_characters_ok(text: str) -> bool:
    """Organizations' tag alphabet: letters, numbers, spaces (Unicode's) and ``_.:/=+-@``."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" for c in text)


def tag_problems(tags: Mapping[str, object]) -> list[tuple[str, str]]:
    """Why no account can carry ``tags``, as (key as TOML writes it, or "" for the table;
    message), by Organizations' tag rules: at most 50 tags; keys of 1 to 128 characters not
    beginning with ``aws:``; values of at most 256 characters, strings; letters, numbers,
    spaces and ``_.:/=+-@`` only."""
    found: list[tuple[str, str]] = []
    if len(tags) > MAX_TAGS:
        found.append(("", f"{len(tags)} tags, and Organizations allows at most {MAX_TAGS} on an account"))
    for key, value in tags.items():
        path = toml_key(key)
        if not key or len(key) > MAX_TAG_KEY:
            found.append((path, f"the tag key is {len(key):,} characters; tag keys have 1 to {MAX_TAG_KEY}"))
        elif key[:4].lower() == "aws:":
            found.append((path, "tag keys beginning with 'aws:' are AWS's own; no account can be given one"))
        elif not _tag_characters_ok(key):
            found.append(
                (path, "the tag key has a character Organizations refuses; use letters, digits, spaces and _.:/=+-@")
            )
        if not isinstance(value, str):
            found.append((path, "the tag value must be a string: quote it"))
        elif len(value) > MAX_TAG_VALUE:
            found.append((path, f"the tag value is {len(value):,} characters; tag values have at most {MAX_TAG_VALUE}"))
        elif not _tag_characters_ok(value):
            found.append(
                (path, "the tag value has a character Organizations refuses; use letters, digits, spaces and _.:/=+-@")
            )
    return found


# -- Accounts and AccountTags in a definition ------------------------------------------------


def read_scope(
    file: str, table: Mapping[str, object], *, bucket: str | None, where: str
) -> tuple[AccountScope, list[Problem]]:
    """A definition table's ``Accounts`` and ``AccountTags``, and their problems (which name
    ``bucket`` and begin their field with ``where``, as the definition's other problems do).

    With a problem, the scope holds what could be read; the problem (an error) keeps the
    definition from being used, so what the scope holds then does not matter.
    """
    problems: list[Problem] = []

    def problem(message: str, path: str, *, severity: Severity = Severity.ERROR) -> None:
        problems.append(Problem(file, message, bucket=bucket, field=f"{where}{path}", severity=severity))

    accounts: frozenset[str] | None = None
    raw = table.get("Accounts")
    if raw is not None:
        if not isinstance(raw, list):
            problem('must be an array of account IDs, such as Accounts = ["012345678901"]', "Accounts")
        elif not raw:
            problem(
                "is empty, so the definition would apply in no account; list its accounts,"
                " or remove Accounts to apply it in every account",
                "Accounts",
            )
        seen: dict[str, int] = {}
        for index, value in enumerate(raw if isinstance(raw, list) else ()):
            found = account_id_problem(value)
            if found is not None:
                problem(f"account ID {found}", f"Accounts[{index}]")
            elif value in seen:
                problem(
                    f"account {value} is listed twice (also Accounts[{seen[value]}]); remove one",
                    f"Accounts[{index}]",
                    severity=Severity.WARNING,
                )
            else:
                seen[str(value)] = index
        accounts = frozenset(seen)
    pairs: tuple[tuple[str, str], ...] = ()
    raw_tags = table.get("AccountTags")
    if raw_tags is not None:
        if not isinstance(raw_tags, dict):
            problem('must be a table of tags, such as AccountTags = { env = "prod" }', "AccountTags")
        elif not raw_tags:
            problem(
                "is empty, so it narrows nothing; give the tags an account must carry,"
                " or remove AccountTags to apply the definition in every account",
                "AccountTags",
            )
        else:
            for path, message in tag_problems(raw_tags):
                problem(message, f"AccountTags.{path}" if path else "AccountTags")
            pairs = tuple(sorted((k, v) for k, v in raw_tags.items() if isinstance(v, str)))
    return AccountScope(accounts, pairs), problems
