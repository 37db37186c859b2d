"""The buckets of an account a change of the definitions may affect (issue 18, targeted
reconcile): the daemon verifies those at once, and the others keep their schedule.

:func:`~lakecircle.core.targets.changes` says what changed: bucket names, selectors, or
everything. Here the changed selectors meet the account's bucket names (a million, maybe).
Each name a changed selector's old or new version selects is affected; a tag selector
selects a name only when the bucket's tags, where known (:meth:`TagCache.known`, read this
resync), carry its tags; tags not known leave the bucket affected.

The names are matched as the cycle matches them: one regular expression made of every
changed version's ``BucketMatch`` patterns (:func:`fnmatch.translate`, which the cycle's
:class:`~lakecircle.core.selectors.Matcher` compiles too) runs over the names in C and can
only let through more than the cycle would select; each name it lets through is then
matched by the cycle's own :class:`~lakecircle.core.selectors.Matcher` over the changed
versions (its ``BucketExclude`` included). A million names cost about 0.2 s for a pattern
with a literal part (``python bench/targets_bench.py``). A changed version that selects every
name by its patterns alone (``"*"``, no ``BucketExclude``, no ``BucketTags``) makes the
answer *everything* at once, without a pass. Exact bucket names are looked up in the
names, never scanned.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Sequence

from lakecircle.core.definitions import Definitions
from lakecircle.core.selectors import Matcher, Selector, tags_match
from lakecircle.core.targets import changes
from lakecircle.engine.tags import TagCache

__all__ = ["affected", "selected_by"]


def affected(
    old: Definitions, new: Definitions, names: Collection[str], tags: TagCache | None = None
) -> set[str] | None:
    """The names among ``names`` (every bucket the account listed, managed or not) whose
    desired state may differ between ``old`` and ``new``; None: every bucket's may.

    ``names`` is a collection (a set, a dict's keys such as the verifier's regions): a change
    of ``BucketName`` definitions only looks its names up in it. A defined bucket the account
    does not hold is left out (the listing pass reports it missing)."""
    found = changes(old, new)
    if found.everything is not None:
        return None
    hit = {name for name in found.buckets if name in names}
    if found.selectors:
        selected = selected_by(found.selectors, names, tags)
        if selected is None:
            return None
        hit |= selected
    return hit


def selected_by(selectors: Sequence[Selector], names: Collection[str], tags: TagCache | None) -> set[str] | None:
    """The names any of ``selectors`` may select (their tags where known); None when one of
    them selects every name by its patterns alone."""
    if any(_selects_every_name(s) for s in selectors):
        return None
    patterns = dict.fromkeys(p for s in selectors for p in s.match)
    through = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    matcher = Matcher(selectors)
    found: set[str] = set()
    for name in filter(through, names):
        for match in matcher.match(name):
            if not match.selector.tags:
                found.add(name)
                break
            known = tags.known(name) if tags is not None else None
            if known is None or tags_match(match.selector, known):
                found.add(name)
                break
    return found


def _selects_every_name(selector: Selector) -> bool:
    return not selector.exclude and not selector.tags and any(set(p) == {"*"} for p in selector.match)
