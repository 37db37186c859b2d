"""``LCC_ACCOUNT_FILTER``: which of an organization's accounts are managed.

With ``LCC_ACCOUNTS=organization`` every ACTIVE account of the organization is managed,
unless a filter narrows them. The filter is a comma-separated list of items, each one
either a tag (``key=value``) or a parent: an OU ID (``ou-ab12-cd34ef56``) or the
organization's root ID (``r-ab12``)::

    LCC_ACCOUNT_FILTER=env=prod,team=media,ou-ab12-cd34ef56,ou-ab12-99aa88bb

An account passes when it carries **every** tag (Organizations' tags, exact values; other
tags do not matter) **and**, when parents are given, sits in **one** of them or anywhere
below it. Spaces around an item, a key and a value are ignored (Organizations allows a
tag to begin or end with a space; such a tag cannot be written here).

Parsing returns the filter and its problems as sentences, for the settings to put the
setting's name before them; nothing here raises or does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from lakecircle.core.accounts import tag_problems

OU_ID: Final = re.compile(r"ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}")
"""Organizations' OU IDs: ``ou-`` and the root's 4 to 32 characters, ``-``, 8 to 32 more."""
ROOT_ID: Final = re.compile(r"r-[0-9a-z]{4,32}")


@dataclass(frozen=True, slots=True)
class AccountFilter:
    """The accounts of an organization to manage: by tags, by OU (or root), or both."""

    tags: tuple[tuple[str, str], ...] = ()
    """Sorted (key, value) pairs: an account must carry every one."""
    parents: tuple[str, ...] = ()
    """OU and root IDs, as written: an account must sit in one of them or below it."""

    @property
    def needs_tags(self) -> bool:
        """Whether the accounts' tags must be read to apply the filter (ListTagsForResource)."""
        return bool(self.tags)

    def admits(self, tags: Mapping[str, str], ancestors: Collection[str]) -> bool:
        """Whether an account with ``tags`` passes; ``ancestors`` are the IDs of every OU it
        sits in, from its own parent up to the root (ignored when no parent is given)."""
        if any(tags.get(key) != value for key, value in self.tags):
            return False
        return not self.parents or any(parent in ancestors for parent in self.parents)


def parse_account_filter(text: str) -> tuple[AccountFilter, list[str]]:
    """The filter ``text`` says, and why any of it is wrong. Each message names its item by
    place (``item 2``) and shows none of it: the setting may hold a secret pasted there."""
    problems: list[str] = []
    tags: dict[str, str] = {}
    tag_item: dict[str, int] = {}
    parents: list[str] = []
    for number, raw in enumerate(text.split(","), start=1):
        item = raw.strip()
        if not item:
            problems.append(f"item {number} is empty (two commas in a row, or one at an end); remove the comma")
            continue
        if "=" in item:
            key, _, value = (part.strip() for part in item.partition("="))
            found = _tag_problem(key, value)
            if found is not None:
                problems.append(f"item {number} (a tag): {found}")
            elif key in tags and tags[key] != value:
                problems.append(
                    f"item {number} gives the tag key of item {tag_item[key]} another value, and an account"
                    " carries one value per key; keep one of them"
                )
            else:
                tags[key] = value
                tag_item.setdefault(key, number)
            continue
        found = _parent_problem(item)
        if found is not None:
            problems.append(f"item {number} {found}")
        elif item not in parents:
            parents.append(item)
    return AccountFilter(tuple(sorted(tags.items())), tuple(parents)), problems


def _tag_problem(key: str, value: str) -> str | None:
    if not key:
        return "has no key before '='; write key=value"
    found = tag_problems({key: value})
    return "; ".join(message for _, message in found) if found else None


_PARENTS: Final = ((OU_ID, "an OU ID", "OU IDs", "ou-ab12-cd34ef56"), (ROOT_ID, "a root ID", "root IDs", "r-ab12"))


def _parent_problem(item: str) -> str | None:
    lowered = item.lower()
    for pattern, one, many, example in _PARENTS:
        if pattern.fullmatch(item):
            return None
        if pattern.fullmatch(lowered):
            return f"is {one} in upper case; Organizations' IDs are lower case: write it so"
        if lowered.startswith(example.split("-")[0] + "-"):
            return f"is not {one}; {many} look like {example}"
    return (
        "is neither a tag (key=value) nor an OU ID (ou-ab12-cd34ef56) nor a root ID (r-ab12);"
        " separate items with commas"
    )
