"""The buckets of an account a change of the definitions may affect (issue 18, targeted
reconcile): the daemon verifies those at once, and the others keep their schedule.

:func:`~lakecircle.core.targets.changes` says what changed: bucket names, selectors, or
everything. Here the changed selectors meet the account's bucket names (a million, maybe).
Each name a changed selector's old or new version selects is affected; a tag selector
selects a name only when the bucket's tags, where known (:meth:`TagCache.known`, read this
resync), carry its tags; tags not known leave the bucket affected.

The names are matched as the cycle matches them, in two steps. First a literal search
finds the candidates: the names are written one a line into one text (once per call, about
30 MB for a million names, dropped at the end), and each changed ``BucketMatch`` pattern's
longest literal part (its beginning after a line's start, its end before a line's end, or
a run inside) is searched for in it with :meth:`str.find`, in C, so a million names cost a
join and a few searches (about 0.1 s; ``python bench/targets_bench.py``). Every name a
pattern matches holds that text, so no match is lost. Then each candidate is matched by the
cycle's own :class:`~lakecircle.core.selectors.Matcher` over the changed versions, its
``BucketExclude`` included: the answer is the cycle's. A pattern that is a name is looked up;
one without any literal (``?*``, ``[ab]*``) makes every name a candidate (about a second for
a million); one that selects every name by its patterns alone (``"*"``, no ``BucketExclude``,
no ``BucketTags``) makes the answer *everything* at once, without a pass. Exact bucket names
(``BucketName`` changes) are looked up in the names, never scanned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

from lakecircle.core.definitions import Definitions
from lakecircle.core.selectors import Matcher, Selector, glob_tokens, literal_runs, tags_match
from lakecircle.core.targets import changes
from lakecircle.engine.tags import TagCache

__all__ = ["Targets", "affected", "selected_by", "targets"]


def affected(
    old: Definitions, new: Definitions, names: Collection[str], tags: TagCache | None = None
) -> set[str] | None:
    """The names among ``names`` (every bucket the account listed, managed or not) whose
    desired state may differ between ``old`` and ``new``; None: every bucket's may.

    ``names`` is a collection (a set, a dict's keys such as the verifier's regions): a change
    of ``BucketName`` definitions only looks its names up in it. A defined bucket the account
    does not hold is left out (the listing pass reports it missing)."""
    return targets(old, new, names, tags).buckets


class Targets(NamedTuple):
    buckets: set[str] | None
    """:func:`affected`'s answer."""
    unlisted: frozenset[str]
    """Names the change defines by ``BucketName`` that ``names`` does not hold: created since the
    last listing, or missing (only a listing tells which)."""


def targets(old: Definitions, new: Definitions, names: Collection[str], tags: TagCache | None = None) -> Targets:
    """:func:`affected`, and the names the change defines that were not listed."""
    found = changes(old, new)
    if found.everything is not None:
        return Targets(None, frozenset())
    hit = {name for name in found.buckets if name in names}
    unlisted = frozenset(name for name in found.buckets if name not in names and name in new.buckets)
    if found.selectors:
        selected = selected_by(found.selectors, names, tags)
        if selected is None:
            return Targets(None, unlisted)
        hit |= selected
    return Targets(hit, unlisted)


def selected_by(selectors: Sequence[Selector], names: Collection[str], tags: TagCache | None) -> set[str] | None:
    """The names any of ``selectors`` may select (their tags where known); None when one of
    them selects every name by its patterns alone."""
    if any(_selects_every_name(s) for s in selectors):
        return None
    candidates: set[str] = set()
    text: str | None = None
    for pattern in dict.fromkeys(p for s in selectors for p in s.match):
        needle = _needle(pattern)
        if needle is None:  # a name: looked up
            if pattern in names:
                candidates.add(pattern)
        elif not needle.strip(SEPARATOR):  # no literal at all ("?*"): every name is a candidate
            candidates.update(names)
        else:
            if text is None:
                text = SEPARATOR + SEPARATOR.join(names) + SEPARATOR
            candidates.update(_lines_holding(text, needle))
    matcher = Matcher(selectors)
    found: set[str] = set()
    for name in candidates:
        if name in names and any(_may_select(match.selector, name, tags) for match in matcher.match(name)):
            found.add(name)
    return found


SEPARATOR = "\n"
"""Between the names in the text searched: no bucket name can hold it."""


def _needle(pattern: str) -> str | None:
    """The longest text every name ``pattern`` matches holds, once the names are written one a
    line: its literal beginning after a line's start, its literal end before a line's end, or
    its longest literal run. None when the pattern has no wildcard (it is a name)."""
    runs = literal_runs(glob_tokens(pattern))
    if len(runs) == 1:
        return None
    options = (SEPARATOR + runs[0] if runs[0] else "", runs[-1] + SEPARATOR if runs[-1] else "", max(runs, key=len))
    return max(options, key=len)


def _lines_holding(text: str, needle: str) -> Iterator[str]:
    """Each line of ``text`` that holds ``needle`` (the separators of its own line included)."""
    inside = 1 if needle.startswith(SEPARATOR) else 0
    found = text.find(needle)
    while found >= 0:
        place = found + inside
        start = text.rfind(SEPARATOR, 0, place) + 1
        end = text.find(SEPARATOR, place)
        yield text[start:end]
        found = text.find(needle, end)


def _may_select(selector: Selector, name: str, tags: TagCache | None) -> bool:
    """A selector whose patterns select ``name`` selects it unless its ``BucketTags`` are known
    not to be the bucket's."""
    if not selector.tags:
        return True
    known = tags.known(name) if tags is not None else None
    return known is None or tags_match(selector, known)


def _selects_every_name(selector: Selector) -> bool:
    return not selector.exclude and not selector.tags and any(set(p) == {"*"} for p in selector.match)
