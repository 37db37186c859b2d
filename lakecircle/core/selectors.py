"""Definitions that name their buckets by pattern and tag: the selector values.

A definition names one bucket (``BucketName``) or many: ``BucketMatch`` (glob patterns on
bucket names, ``* ? [seq] [!seq]``, case-sensitive, matching the whole name), an optional
``BucketExclude`` (names to leave out, same patterns) and optional ``BucketTags`` (the
bucket must carry every one of these tags, exact values). A bucket's desired rules are
the union of every definition that selects it; an exact definition overrides a
selector's rule with the same ID (ARCHITECTURE.md, "Fleets").

This module holds the values the parser produces and the matcher and the combination
consume; it does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lakecircle.core.model import LifecycleConfig


class Ownership(StrEnum):
    """Whether the definitions are the whole truth for a bucket."""

    AUTHORITATIVE = "authoritative"
    """Rules the definitions do not name are removed (exact definitions' default)."""
    SHARED = "shared"
    """Only rules LakeCircle applied itself may be removed (selectors' default)."""


@dataclass(frozen=True, slots=True)
class Selector:
    """One selector definition: which buckets it selects, and the rules it gives them."""

    file: str
    """The definition file it stands in."""
    where: str
    """Its table in the file, for messages: ``""`` for a whole-file definition, else ``Bucket[2].``."""
    match: tuple[str, ...]
    """``BucketMatch``: glob patterns on bucket names (at least one)."""
    exclude: tuple[str, ...]
    """``BucketExclude``: names to leave out, same patterns."""
    tags: tuple[tuple[str, str], ...]
    """``BucketTags`` as sorted ``(key, value)`` pairs: the bucket must carry each one."""
    ownership: Ownership
    """As written, else :attr:`Ownership.SHARED`."""
    config: LifecycleConfig
    """Its rules and TransitionDefaultMinimumObjectSize."""

    @property
    def label(self) -> str:
        """``file`` or ``file Bucket[2]``: how plans and messages name it."""
        return f"{self.file} {self.where.rstrip('.')}" if self.where else self.file

    @property
    def uses_tags(self) -> bool:
        return bool(self.tags)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a desired rule comes from: a file's exact definition, or a selector."""

    file: str
    selector: str | None = None
    """The selector's label (:attr:`Selector.label`); None for an exact ``BucketName`` definition."""
    matched: str | None = None
    """The ``BucketMatch`` pattern that selected the bucket (selectors only)."""
