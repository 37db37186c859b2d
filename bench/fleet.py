"""A generated fleet for the benchmark endpoint: up to a million buckets that cost nothing each.

The ``million`` section (bench/million.py) needs an account of 1,000,000 buckets in the
endpoint's process without a million objects there. A :class:`Fleet` is bucket *names*
``fleet-0000000`` … made from their index on demand (ListBuckets pages are rendered a page at a
time), and each bucket's lifecycle configuration is *generated from its name* until something
writes it: the configuration its definitions want (so every bucket starts in sync), or, for
the buckets a ``BucketName`` file names, that file's rules too. Only written (or drifted)
buckets are held, in the endpoint's ``lifecycle`` dict.

The definitions (:func:`definitions`) are a selector for every ``fleet-*`` bucket but those whose
name ends in 9 (a tenth of the fleet is unmanaged: listed, never read) and ``groups`` files of
``GROUP`` exact ``[[Bucket]]`` tables each, spread over the fleet. Changing one group file
(:func:`changed_group`) changes the desired state of exactly its ``GROUP`` buckets: the
definition change the section measures.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from bench import workload as wl

PREFIX = "fleet-"
DIGITS = 7
GROUP = 10
"""Buckets named by one exact definition file (the definition change affects this many)."""
SELECTOR_KEY = f"{wl.DEFINITION_PREFIX}fleet.toml"
KEEP_DAYS, CHANGED_DAYS = 365, 400
DRIFT_DAYS = 31

_SELECTOR_RULES = """
ID = "abort-incomplete-uploads"
Status = "Enabled"
Filter = {}
AbortIncompleteMultipartUpload = { DaysAfterInitiation = 7 }
"""
_TMP_RULE = """
ID = "expire-tmp"
Status = "Enabled"
Filter = { Prefix = "tmp/" }
Expiration = { Days = %d }
"""
_KEEP_RULE = """
ID = "keep-logs"
Status = "Enabled"
Filter = { Prefix = "logs/" }
Expiration = { Days = %d }
"""


def name(index: int) -> str:
    return f"{PREFIX}{index:0{DIGITS}d}"


def index_of(bucket: str, size: int) -> int | None:
    """The index of a fleet bucket's name, or None when the name is not one of the fleet's."""
    digits = bucket[len(PREFIX) :]
    if not bucket.startswith(PREFIX) or len(digits) != DIGITS or not digits.isdigit():
        return None
    index = int(digits)
    return index if index < size else None


def managed(index: int) -> bool:
    """Whether the selector selects bucket ``index`` (names ending in 9 are left out)."""
    return index % 10 != 9


def exact_indexes(size: int, groups: int) -> list[list[int]]:
    """The buckets each group file names: ``GROUP`` managed buckets each, spread over the fleet."""
    count = groups * GROUP
    if count == 0:
        return []
    step = max(size // count, 1)
    picked = [i * step for i in range(count) if i * step < size]
    picked = [i if managed(i) else i - 1 for i in picked]
    return [picked[g * GROUP : (g + 1) * GROUP] for g in range(groups)]


def group_key(group: int) -> str:
    return f"{wl.DEFINITION_PREFIX}exact/group-{group:03d}.toml"


def selector_file() -> bytes:
    text = (
        '# Every fleet bucket but those ending in 9.\nBucketMatch = ["fleet-*"]\nBucketExclude = ["*9"]\n'
        f"\n[[LifecycleConfiguration.Rules]]{_SELECTOR_RULES}"
        f"\n[[LifecycleConfiguration.Rules]]{_TMP_RULE % 30}"
    )
    return text.encode()


def group_file(indexes: Sequence[int], days: int = KEEP_DAYS) -> bytes:
    tables = [
        f'[[Bucket]]\nBucketName = "{name(i)}"\n\n[[Bucket.LifecycleConfiguration.Rules]]{_KEEP_RULE % days}'
        for i in indexes
    ]
    return "\n".join(tables).encode()


def definitions(size: int, groups: int) -> dict[str, bytes]:
    """The fleet's definition files by key."""
    files = {SELECTOR_KEY: selector_file()}
    for group, indexes in enumerate(exact_indexes(size, groups)):
        files[group_key(group)] = group_file(indexes)
    return files


def changed_group(size: int, groups: int, group: int = 0) -> tuple[str, bytes, list[str]]:
    """A new version of one group file (``keep-logs`` kept longer): its key, bytes and buckets."""
    indexes = exact_indexes(size, groups)[group]
    return group_key(group), group_file(indexes, CHANGED_DAYS), [name(i) for i in indexes]


def bodies() -> dict[str, bytes]:
    """The stored XML of each kind of bucket: ``selected`` (the selector's rules), ``exact``
    (those and ``keep-logs``) and ``drifted`` (the selector's rules, ``expire-tmp`` changed)."""
    from lakecircle.core.parse import parse_file

    def render(rules_text: str) -> bytes:
        parsed = parse_file("fleet.toml", f'BucketName = "{name(0)}"\n{rules_text}'.encode())
        assert not parsed.problems, parsed.problems
        return wl._XmlRenderer().render(name(0), list(parsed.buckets[0].config.rules))

    rules = "[[LifecycleConfiguration.Rules]]"
    selected = f"{rules}{_SELECTOR_RULES}\n{rules}{_TMP_RULE % 30}"
    return {
        "selected": render(selected),
        "exact": render(f"{selected}\n{rules}{_KEEP_RULE % KEEP_DAYS}"),
        "drifted": render(f"{rules}{_SELECTOR_RULES}\n{rules}{_TMP_RULE % DRIFT_DAYS}"),
    }


@dataclass
class Fleet:
    """``size`` generated buckets and what each holds until written."""

    size: int
    groups: int
    region: str

    def __post_init__(self) -> None:
        self.exact = frozenset(name(i) for group in exact_indexes(self.size, self.groups) for i in group)
        self.bodies = bodies()
        self.managed = sum(1 for i in range(self.size) if managed(i))

    def __contains__(self, bucket: object) -> bool:
        return isinstance(bucket, str) and index_of(bucket, self.size) is not None

    def generated(self, bucket: str) -> bytes:
        """The configuration a fleet bucket holds until it is written."""
        return self.bodies["exact" if bucket in self.exact else "selected"]

    def xml(self, bucket: str) -> str:
        return (
            f"<Bucket><Name>{bucket}</Name><CreationDate>2024-01-02T03:04:05.000Z</CreationDate>"
            f"<BucketRegion>{self.region}</BucketRegion></Bucket>"
        )


class Names(Sequence[str]):
    """The fleet's names then ``extra`` (sorted, all after ``fleet-…``), as one sorted sequence
    that :mod:`bisect` can search, without holding the fleet's names."""

    def __init__(self, fleet: Fleet, extra: Sequence[str]) -> None:
        self.fleet = fleet
        self.extra = list(extra)
        assert all(e > name(fleet.size) for e in self.extra), "extra names must sort after the fleet's"

    def __len__(self) -> int:
        return self.fleet.size + len(self.extra)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return name(index) if index < self.fleet.size else self.extra[index - self.fleet.size]

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def after(self, last: str) -> int:
        """The index of the first name after ``last``."""
        return bisect.bisect_right(self, last)


class Xml(Sequence[str]):
    """Each name's ``<Bucket>`` element, rendered when a page asks for it."""

    def __init__(self, names: Names) -> None:
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self.names.fleet.xml(n) for n in self.names[index]]
        return self.names.fleet.xml(self.names[index])
