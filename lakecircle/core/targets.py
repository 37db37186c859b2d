"""What a change of the definitions may change: the buckets to verify at once (issue 18,
targeted reconcile).

When a poll finds the definitions changed, the daemon verifies at once only the buckets
whose desired state may differ; the others keep their schedule. A bucket's desired state
(what the cycle plans against, :mod:`~lakecircle.engine.fleet`) is made of:

- its exact ``BucketName`` definitions, merged across every file that names it, their
  problems (a bucket with an error is invalid, never written), their ``Ownership``, their
  TransitionDefaultMinimumObjectSize and their ``Accounts`` and ``AccountTags``;
- the selectors whose patterns and tags select it, in definition order (the union of their
  rules, overrides by the exact definition's IDs, conflicts, ownership, the minimum object
  size: :func:`~lakecircle.core.combine.combine`);
- whether the picture is whole (:attr:`Definitions.partial`): a partial picture holds every
  bucket's removals and selector changes (:func:`~lakecircle.core.decide.decide`).

So :func:`changes` answers with the buckets named (by ``BucketName``, or by a problem) in
a file whose content changed, was added or removed, in its old or its new version; the
selectors whose old or new version differs, whose matches the engine evaluates against
the known bucket names; or *everything* when a change cannot be attributed: the picture
turned partial or whole, or the selectors that did not change came in another order. The
definition format has nothing else that applies to all buckets (no defaults, no shared
rules outside selectors, no format version): a ``"*"`` selector is a selector like any
other, whose matches are every bucket. The answer is a superset: a bucket outside it has
the same desired state in both (tests/core/test_targets.py holds that as a property).

Files are compared by content, not by (key, ETag): the loader's briefs keep each file's
bytes compressed, so a file saved again unchanged under a new ETag (an upload of the same
bytes, a copy) costs nothing, while a changed file costs one parse of each version, to
tell which of its buckets changed (one of a file's ten thousand ``[[Bucket]]`` tables
edited affects that one bucket). Definitions the commands build from parsed files carry
no briefs; they are compared bucket by bucket, by their models.

Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import compress, count
from operator import is_not

from lakecircle.core.definitions import Definitions, FileBrief
from lakecircle.core.selectors import Selector

__all__ = ["Changes", "Everything", "changes"]


class Everything(StrEnum):
    """Why a change cannot be narrowed to some buckets: every bucket is affected."""

    PICTURE = "picture_partial_or_whole"
    """The picture turned partial or whole: every bucket's held removals go, or wait."""
    SELECTOR_ORDER = "selector_order"
    """The selectors that did not change come in another order, or two share a label: which
    selector's rule a bucket keeps first is not attributable (loaded files never do this)."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What differs between two sets of definitions, in terms of bucket names."""

    buckets: frozenset[str] = frozenset()
    """The buckets named in a changed part of the definitions, valid or not, old or new."""
    selectors: tuple[Selector, ...] = ()
    """The versions (old and new) of every selector that changed, was added or removed: the
    buckets any of them selects may have another desired state."""
    everything: Everything | None = None
    """Set when the change is not attributable: every bucket is affected."""

    @property
    def nothing(self) -> bool:
        """True when no bucket's desired state may differ (an unchanged reload)."""
        return self.everything is None and not self.buckets and not self.selectors


def changes(old: Definitions, new: Definitions) -> Changes:
    """What may differ between the desired states ``old`` and ``new`` give (see the module docstring)."""
    if old is new:
        return Changes()
    if old.partial != new.partial:
        return Changes(everything=Everything.PICTURE)
    selectors = _changed_selectors(old.selectors, new.selectors)
    if selectors is None:
        return Changes(everything=Everything.SELECTOR_ORDER)
    if old.briefs is not None and new.briefs is not None:
        named = _changed_in_files(old.briefs, new.briefs)
    else:
        named = _differing(old.buckets, new.buckets)
    named |= _differing(old.invalid, new.invalid)  # said by the files already; cheap, and sure
    return Changes(frozenset(named), selectors)


def _changed_selectors(old: tuple[Selector, ...], new: tuple[Selector, ...]) -> tuple[Selector, ...] | None:
    """Every version of a selector that is not the same in both, by label; None when the
    selectors kept are not in the same order in both (or a label is not unique)."""
    old_by = {s.label: s for s in old}
    new_by = {s.label: s for s in new}
    if len(old_by) != len(old) or len(new_by) != len(new):
        return None
    kept_old = [s.label for s in old if new_by.get(s.label) == s]
    kept_new = [s.label for s in new if old_by.get(s.label) == s]
    if kept_old != kept_new:
        return None
    gone = tuple(s for s in old if new_by.get(s.label) != s)
    came = tuple(s for s in new if old_by.get(s.label) != s)
    return gone + came


def _differing(old: Mapping[str, object], new: Mapping[str, object]) -> set[str]:
    """The keys whose values differ, or that one side lacks."""
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def _changed_in_files(old: Sequence[FileBrief], new: Sequence[FileBrief]) -> set[str]:
    """The buckets whose part of some file differs between the two listings."""
    old, new = _unshared(old, new)
    old_by = {b.name: b for b in old}
    new_by = {b.name: b for b in new}
    named: set[str] = set()
    for key in old_by.keys() | new_by.keys():
        before, after = old_by.get(key), new_by.get(key)
        if before is after or (before is not None and after is not None and _same_content(before, after)):
            continue  # the loader's cached brief, or the same bytes under another ETag
        named |= _differing(_parts(before), _parts(after))
    return named


def _unshared(old: Sequence[FileBrief], new: Sequence[FileBrief]) -> tuple[Sequence[FileBrief], Sequence[FileBrief]]:
    """The two listings without the runs at their beginning and end where they hold the very
    same briefs (the loader hands the same object for a file whose ETag did not change).

    Both are in key order, so one file changed, added or removed among a million leaves a
    middle of one or two briefs; the runs are found in C (:func:`map` of ``is not``), about
    0.05 s for a million files, where a loop in Python would take several times that."""
    shortest = min(len(old), len(new))
    head = next(compress(count(), map(is_not, old, new)), shortest)
    tail = next(compress(count(), map(is_not, reversed(old), reversed(new))), shortest)
    tail = min(tail, shortest - head)  # the two runs never overlap, even were a brief listed twice
    return old[head : len(old) - tail], new[head : len(new) - tail]


def _same_content(a: FileBrief, b: FileBrief) -> bool:
    """The same file read to the same result (its ETag aside)."""
    return (
        a.readable == b.readable
        and a.packed == b.packed
        and a.buckets == b.buckets
        and a.problems == b.problems
        and a.selectors == b.selectors
        and a.invalid_selectors == b.invalid_selectors
    )


def _parts(brief: FileBrief | None) -> dict[str, tuple[object, ...]]:
    """Each bucket the file names (defines, or names in a problem) with everything the file
    says of it: its definitions as parsed (rules, ownership, minimum object size, scope), its
    briefs (their validation) and the problems that name it."""
    if brief is None:
        return {}
    parts: dict[str, list[object]] = {}
    if brief.buckets:
        parsed = brief.parse()
        for definition in (*parsed.buckets, *parsed.incomplete):
            parts.setdefault(definition.name, []).append(definition)
    for bucket in brief.buckets:
        parts.setdefault(bucket.name, []).append(bucket)
    for problem in brief.problems:
        if problem.bucket is not None:
            parts.setdefault(problem.bucket, []).append(problem)
    return {name: tuple(found) for name, found in parts.items()}
