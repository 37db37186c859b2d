"""What a bucket that selectors match wants: its tags read where needed, then the combination.

A listed bucket goes to a reader when an exact definition names it or a selector's
``BucketMatch`` matches its name (ARCHITECTURE.md, "Fleets"). For the second kind, before its
lifecycle is read, the reader needs to know which selectors select it: those without
``BucketTags`` do, those with ``BucketTags`` only when its tags (read once per resync,
:mod:`~lakecircle.engine.tags`) carry theirs. Then :func:`~lakecircle.core.combine.combine`
merges its exact definition and those selectors into one desired state.

A bucket whose tags could not be read is planned with the selectors that do not need them,
and all its removals are held (ARCHITECTURE.md, "Safety", rule 6): a tag selector's rules
already in it stay. When nothing else selects it, it fails at the read stage.

The cycle matches every listed name once; :class:`CycleMatcher` counts, as it matches, which
selectors select some bucket, so that one which selects none is warned about without a
second pass over a listing that may hold a million names.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import structlog

from lakecircle.core.accounts import Account
from lakecircle.core.combine import Combined, combine, exact_sources
from lakecircle.core.definitions import Definitions, Desired
from lakecircle.core.fleet_warnings import SelectorWarning
from lakecircle.core.model import LifecycleConfig
from lakecircle.core.report import BucketResult, BucketState, Stage
from lakecircle.core.selectors import Match, Matcher, Override, Selector, Source, needing_tags, with_tags
from lakecircle.engine.tags import TagCache, TagUnread
from lakecircle.errors import TransientError
from lakecircle.ports import BucketRef

log = structlog.get_logger("lakecircle.engine.cycle")


@dataclass(frozen=True, slots=True)
class Target:
    """A bucket's desired configuration as a plan takes it."""

    config: LifecycleConfig
    shared: bool
    """Only rules LakeCircle applied itself may be removed."""
    sources: tuple[Source, ...]
    """Where each rule of ``config`` comes from, parallel to its rules: provenance in every plan."""
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, slots=True)
class Wanted:
    """A bucket's desired state, or why it has none to plan against."""

    selected: tuple[Match, ...] = ()
    """The selectors that select it (empty: its exact definition alone, planned as before
    selectors, with each rule's file as its source)."""
    brief: Desired | None = None
    """Its combined desired state in brief, for the in-sync shortcut (set when ``selected`` is)."""
    combined: Combined | None = None
    """The combination itself when it was made for this bucket now (not remembered in brief):
    a plan uses it rather than combining again."""
    result: BucketResult | None = None
    """Set when the bucket is not to be read: unmanaged, invalid, or its tags unread."""
    tags_unread: TagUnread | None = None
    """Its tags could not be read: every removal of the bucket is held."""

    def desired(self, definitions: Definitions, name: str) -> Desired | None:
        """The bucket's desired state in brief, for the in-sync shortcut (None: plan it the long way)."""
        if not self.selected:
            return definitions.desired.get(name)
        return self.brief

    def target(self, definitions: Definitions, name: str) -> Target:
        """What to plan against, with where its rules come from (models built now, off the in-sync path)."""
        if self.selected:
            combined = self.combined or combine(name, definitions.buckets.get(name), self.selected)
            if combined is not None:  # always: selectors select it
                return Target(combined.config, combined.shared, combined.sources, combined.overrides)
        definition = definitions.buckets[name]
        return Target(definition.config, definition.shared, exact_sources(definition))

    @property
    def unknown_total(self) -> bool:
        """The tag read failed for a reason that may pass: the cycle's total of removals is unknown."""
        return self.tags_unread is not None and isinstance(self.tags_unread.cause, TransientError)


_Key = tuple[Desired | None, tuple[tuple[int, str | None], ...]]


class Combinations:
    """:func:`~lakecircle.core.combine.combine` in brief, remembered while the definitions stay
    the same (a daemon's poll and resync cycles reuse them).

    A ``"*"`` baseline sends every bucket down the combination; without this, each cycle would
    build every exact definition's models again (from its file's bytes) and digest the merged
    rules of every bucket, only to find them in sync. The digest, the minimum object size and
    the validity of a combination follow from the exact definition's own brief (its rules'
    digest and size: IDs and content are in it) and from which selectors select the bucket,
    with which pattern: that is the key, so every bucket a baseline alone selects shares one
    entry. Invalid combinations are not kept: their problems name the bucket, and they are rare.
    """

    def __init__(self) -> None:
        self._definitions: Definitions | None = None
        self._briefs: dict[_Key, Desired] = {}

    def brief(self, definitions: Definitions, name: str, selected: tuple[Match, ...]) -> Desired | Combined | None:
        """The combination's brief when remembered, else the combination made now (remembered in
        brief when valid), or None when nothing selects the bucket."""
        if definitions is not self._definitions:
            self._definitions, self._briefs = definitions, {}
        key: _Key | None = None
        defined = name in definitions.buckets  # a lookup builds its models: not on the cached path
        if not defined or name in definitions.desired:
            key = (definitions.desired.get(name), tuple((m.index, m.source.matched) for m in selected))
            known = self._briefs.get(key)
            if known is not None:
                return known
        combined = combine(name, definitions.buckets[name] if defined else None, selected)
        if combined is not None and combined.valid and key is not None:
            self._briefs[key] = in_brief(combined)
        return combined


async def wanted(
    ref: BucketRef,
    definitions: Definitions,
    matches: Sequence[Match],
    *,
    tags: TagCache,
    combinations: Combinations,
    seen: CycleMatcher,
) -> Wanted:
    """The desired state of a listed bucket from its exact definition and ``matches``, the
    selectors whose patterns match its name (empty: the exact definition alone). The tag
    selectors its tags decide for are told to ``seen``."""
    if not matches:
        return Wanted()
    name = ref.name
    unread: TagUnread | None = None
    selected = tuple(matches)
    if needing_tags(matches):
        try:
            found: dict[str, str] | None = await tags.get(ref)
        except TagUnread as exc:
            found, unread = None, exc
            log.warning("bucket_tags_unread", bucket=name, error=str(exc))
        selected = with_tags(matches, found)
        if found is not None:
            seen.tags_read(matches, selected)
        if unread is not None and not selected and name not in definitions.buckets:
            failed = BucketResult(name, BucketState.FAILED, error=str(unread), stage=Stage.READ)
            return Wanted(result=failed, tags_unread=unread)
    if not selected:
        if name in definitions.buckets:
            return Wanted(tags_unread=unread)  # its exact definition alone, removals held if unread
        return Wanted(result=BucketResult(name, BucketState.UNMANAGED))  # tag selectors that do not select it
    brief = combinations.brief(definitions, name, selected)
    if brief is None:  # pragma: no cover - combine answers None only when nothing selects
        return Wanted(result=BucketResult(name, BucketState.UNMANAGED))
    if isinstance(brief, Desired):
        return Wanted(selected, brief, tags_unread=unread)
    if not brief.valid:
        errors = [p for p in brief.problems if p.is_error]
        invalid = BucketResult(
            name, BucketState.INVALID, error=f"{len(errors)} problem(s) in its definitions, first: {errors[0]}"
        )
        return Wanted(result=invalid, tags_unread=unread)
    return Wanted(selected, in_brief(brief), brief, tags_unread=unread)


def in_brief(combined: Combined) -> Desired:
    """A combination as the in-sync shortcut takes it: its rules' digest and minimum object size."""
    return Desired(combined.digest, combined.config.transition_default_minimum_object_size)


class Coverage:
    """A cycle's unmanaged buckets: how many, and their names when asked for (an account
    may hold a million; ``plan --show-unmanaged`` wants the names)."""

    def __init__(self, *, keep_names: bool) -> None:
        self.count = 0
        self._names: list[str] | None = [] if keep_names else None

    def note(self, name: str) -> None:
        self.count += 1
        if self._names is not None:
            self._names.append(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._names or ()))


class CycleMatcher:
    """The selectors of one cycle, compiled once (:class:`~lakecircle.core.selectors.Matcher`),
    counting as it matches which of them select a listed bucket: a selector that selects none
    is warned about (:class:`~lakecircle.core.fleet_warnings.SelectorWarning`), without a
    second pass over the listing.

    A selector without ``BucketTags`` selects a bucket when its patterns match the name. A
    tag selector does when, besides, the bucket's tags carry its tags; it is said to select
    nothing only when every bucket its patterns matched had its tags read and none carried
    them: a failed tag read, or a bucket left unread, leaves it unknown, and unknown is not
    nothing. A run that ``LCC_BUCKETS`` limits (``only``) matches only those buckets, and a
    cycle cut short sees part of the listing: neither warns (:meth:`unmatched`).
    """

    def __init__(self, selectors: Sequence[Selector], *, only: Collection[str] | None = None) -> None:
        self._matcher = Matcher(selectors)
        self.selectors = self._matcher.selectors
        self.uses_tags = self._matcher.uses_tags
        self._only = only
        count = len(self.selectors)
        self._selected = [False] * count
        self._named = [0] * count
        """Tag selectors: the listed buckets their patterns matched."""
        self._decided = [0] * count
        """Tag selectors: of those, the buckets whose tags were read."""

    def match(self, name: str) -> tuple[Match, ...]:
        """The selectors whose patterns select ``name`` (none for a bucket outside ``only``), counted."""
        if not self.selectors or (self._only is not None and name not in self._only):
            return ()
        matches = self._matcher.match(name)
        for match in matches:
            if match.selector.tags:
                self._named[match.index] += 1
            else:
                self._selected[match.index] = True
        return matches

    def tags_read(self, matches: Sequence[Match], selected: Sequence[Match]) -> None:
        """A bucket's tags were read: its tag selectors are decided, and ``selected`` select it."""
        for match in needing_tags(matches):
            self._decided[match.index] += 1
        for match in selected:
            self._selected[match.index] = True

    def unmatched(self, *, complete: bool) -> tuple[SelectorWarning, ...]:
        """A warning for each selector that selected no bucket; none unless the cycle saw the
        whole listing (``complete``) and no ``LCC_BUCKETS`` limited it."""
        if not complete or self._only is not None:
            return ()
        return tuple(
            SelectorWarning.unmatched(selector)
            for index, selector in enumerate(self.selectors)
            if not self._selected[index] and self._named[index] == self._decided[index]
        )


def in_scope(selectors: Sequence[Selector], account: Account | None) -> Sequence[Selector]:
    """The selectors that apply in ``account`` by their ``Accounts`` and ``AccountTags`` (all
    of them with one account)."""
    if account is None or all(s.scope.everywhere for s in selectors):
        return selectors
    return tuple(s for s in selectors if s.scope.admits(account))


def outside_scope(definitions: Definitions, name: str, account: Account | None) -> BucketResult | None:
    """A listed bucket whose own ``BucketName`` definition does not apply in ``account``: it
    is reported missing there and never written (bucket names are global: the definition
    meant the bucket in another account). None when it applies (always, with one account)."""
    if account is None:
        return None
    brief = definitions.desired.get(name)
    scope = brief.scope if brief is not None else definitions.buckets[name].scope
    if scope.admits(account):
        return None
    return BucketResult(
        name,
        BucketState.MISSING,
        error=f"found in account {account.id}, where its definition ({scope.describe()}) does not apply; not written",
    )


def needs_account_tags(definitions: Definitions) -> bool:
    """Whether a definition's ``AccountTags`` decides where it applies."""
    briefs = definitions.desired
    return (
        any(s.scope.tags for s in definitions.selectors)
        or any(d.scope.tags for d in briefs.values())
        or any(definitions.buckets[n].scope.tags for n in definitions.buckets if n not in briefs)
    )
