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

import bisect
import fnmatch
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lakecircle.core.accounts import EVERY_ACCOUNT, AccountScope
from lakecircle.core.bucket_names import PROBE_SCRATCH
from lakecircle.core.directory import is_directory_bucket
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
    scope: AccountScope = EVERY_ACCOUNT
    """Its ``Accounts`` and ``AccountTags``: the accounts in which it selects buckets."""

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


@dataclass(frozen=True, slots=True)
class Override:
    """A selector's rule that the bucket's exact definition replaces (rule 2 of
    :mod:`lakecircle.core.combine`). Here beside :class:`Source` because plans carry it
    too, and :mod:`lakecircle.core.plan` should not depend on the combination."""

    rule: str
    """The rule ID both define."""
    overridden: Source
    """The selector whose rule is not applied to this bucket."""
    by: Source
    """The exact definition's file whose rule is applied instead."""


@dataclass(frozen=True, slots=True)
class Match:
    """A selector whose ``BucketMatch`` selects a bucket's name (and no ``BucketExclude`` does)."""

    index: int
    """The selector's place in the sequence the :class:`Matcher` was built from."""
    selector: Selector
    source: Source
    """Where the selector's rules come from for this bucket, with the pattern that matched:
    one value per selector and pattern, shared by every bucket it selects."""

    @property
    def pattern(self) -> str:
        """The first ``BucketMatch`` pattern (in the order written) that matches the name."""
        return self.source.matched or ""


def tags_match(selector: Selector, tags: Mapping[str, str]) -> bool:
    """True when the bucket carries every one of the selector's ``BucketTags`` with exactly
    that value (a subset: other tags on the bucket do not matter). A selector without
    ``BucketTags`` matches any tags."""
    return all(tags.get(key) == value for key, value in selector.tags)


def needing_tags(matches: Iterable[Match]) -> tuple[Match, ...]:
    """The matches whose selectors also ask for tags: the bucket's tags must be read before
    they can be said to select it. Empty: the bucket's tags need not be read."""
    return tuple(m for m in matches if m.selector.tags)


def with_tags(matches: Iterable[Match], tags: Mapping[str, str] | None) -> tuple[Match, ...]:
    """The matches that select the bucket once its tags are known. ``tags`` None (not read,
    or the read failed) keeps only the selectors without ``BucketTags``; the caller that
    could not read them must then hold the bucket's removals (ARCHITECTURE.md, "Safety", rule 6)."""
    if tags is None:
        return tuple(m for m in matches if not m.selector.tags)
    return tuple(m for m in matches if tags_match(m.selector, tags))


def glob_tokens(pattern: str) -> list[str]:
    """The pattern as fnmatch reads it: ``"*"``, ``"?"``, a set (``"[a-z]"``, ``"[!]x]"``) or a
    literal character each; an unclosed ``[`` is itself (:func:`fnmatch.translate`'s rule:
    a set's first character, after an optional ``!``, may be ``]``)."""
    tokens = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            j = pattern.find("]", j)
            if j >= 0:
                tokens.append(pattern[i : j + 1])
                i = j + 1
                continue
        tokens.append(char)
        i += 1
    return tokens


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the index needs to know of a pattern: the literal text every match starts with,
    ends with and contains, and whether finding that text is the whole match."""

    prefix: str
    suffix: str
    infix: str
    """The longest run of literal characters (between wildcards)."""
    simple: bool
    """``lit``, ``lit*``, ``*lit``, ``*lit*`` or ``*``: the index lookup alone decides, no regex."""
    exact: bool
    """No wildcard at all: the pattern is a name."""


def literal_runs(tokens: list[str]) -> list[str]:
    """The literal text between the wildcards of a pattern's :func:`glob_tokens` (one run when it
    has none; an empty run where two wildcards meet or the pattern starts or ends with one)."""
    runs = [""]
    for part in tokens:
        if len(part) == 1 and part not in "*?":
            runs[-1] += part
        else:
            runs.append("")
    return runs


def _shape(pattern: str) -> _Shape:
    tokens = glob_tokens(pattern)
    runs = literal_runs(tokens)
    wild = [part for part in tokens if len(part) > 1 or part in "*?"]
    prefix = runs[0]
    suffix = runs[-1] if wild else pattern
    infix = max(runs, key=len)
    # Stars only, at most two, around at most one literal run: "lit", "lit*", "*lit", "*lit*",
    # or "*" and "**" (every name). Finding the run where the index looks for it is the match.
    simple = len(wild) <= 2 and set(wild) <= {"*"} and sum(map(bool, runs)) <= 1
    return _Shape(prefix, suffix, infix, simple, not wild)


@dataclass(frozen=True, slots=True)
class _Pattern:
    """One ``BucketMatch`` pattern of one selector, compiled, with the answer it gives."""

    order: tuple[int, int]
    """Its selector's index and its place in ``BucketMatch``: sorted, a selector's first
    matching pattern comes first."""
    match: Callable[[str], object] | None
    """The compiled regex's ``match`` (``fnmatch.translate`` anchors the end); None when
    the index lookup that found the pattern is the whole match (``logs-*``, ``*-logs``)."""
    excludes: tuple[Callable[[str], object], ...]
    """The selector's ``BucketExclude``, compiled."""
    found: Match


_ORDER = operator.attrgetter("order")


class _Prefixes:
    """Patterns filed under literal texts; :meth:`of` finds those whose text begins a name.

    The texts are sorted, each linked to the longest other text it begins with. Among the
    texts that begin a name, the longest sorts at or before the name, and so does every text
    between the two, which begins with it: one :func:`bisect.bisect_right` and a walk up the
    links from the text just before the name find them all. A name costs one binary search
    whatever the number and lengths of the texts (a dict per text length costs a slice and
    a lookup per length present: 45 lengths in the benchmark, six times slower).
    """

    def __init__(self, table: Mapping[str, list[_Pattern]]) -> None:
        self._texts = sorted(table)
        self._patterns = [table[text] for text in self._texts]
        self._parent: list[int] = []
        chain: list[int] = []  # the texts that begin the current one, shortest first
        for index, text in enumerate(self._texts):
            while chain and not text.startswith(self._texts[chain[-1]]):
                chain.pop()
            self._parent.append(chain[-1] if chain else -1)
            chain.append(index)

    def of(self, name: str) -> list[_Pattern]:
        """The patterns filed under a text that ``name`` begins with."""
        texts, parent = self._texts, self._parent
        index = bisect.bisect_right(texts, name) - 1
        while index >= 0 and not name.startswith(texts[index]):
            index = parent[index]
        found: list[_Pattern] = []
        while index >= 0:
            found += self._patterns[index]
            index = parent[index]
        return found


class Matcher:
    """The selectors of one listing, compiled once; :meth:`match` says which select a name.

    Patterns are shell globs (``* ? [seq] [!seq]``) with :func:`fnmatch.fnmatchcase`'s
    meaning: case-sensitive, over the whole name. Each is compiled once with
    :func:`fnmatch.translate`. The index below decides which patterns are worth trying for
    a name; it may only leave out a pattern that cannot match, and every candidate is
    confirmed by its regex unless the lookup that found it is already the whole match.

    The index (matching 100,000 names against 500 selectors is 50 million regex calls the
    naive way, about 20 s here; this way about 0.6 s, see ``bench/selector_bench.py``):

    - ``"*"`` matches every name: no lookup, no regex;
    - a pattern without a wildcard is a name: one dict lookup for all of them;
    - a pattern that begins or ends with literal text (``logs-*``, ``*-logs``,
      ``team-?-*.log``) is filed under the longer of the two, among the prefixes (or the
      suffixes, reversed); a name costs one binary search in each (:class:`_Prefixes`),
      however many patterns and lengths there are;
    - a pattern with literal text only inside (``*-logs-*``, ``*-[0-9]``) is filed under
      its longest literal run, tested with ``in`` once per distinct run (the one cost that
      grows with the number of such patterns: about 5 ms per 100,000 names and run);
    - a pattern without any literal (``?*``) is tried on every name.

    ``logs``, ``logs-*``, ``*-logs`` and ``*logs*`` need no regex: the lookup is the match.
    ``BucketExclude`` is checked with each exclude pattern's regex, only for selectors
    whose ``BucketMatch`` matched. Tags are not looked at here (see :func:`with_tags`).
    """

    def __init__(self, selectors: Sequence[Selector]) -> None:
        self.selectors = tuple(selectors)
        self.uses_tags = any(s.tags for s in self.selectors)
        """Whether any selector has ``BucketTags``: without one, no bucket's tags are read."""
        self._everything: list[_Pattern] = []
        self._exact: dict[str, list[_Pattern]] = {}
        prefixes: dict[str, list[_Pattern]] = {}
        suffixes: dict[str, list[_Pattern]] = {}
        """Filed under the suffix reversed: a suffix of a name is a prefix of it reversed."""
        infixes: dict[str, list[_Pattern]] = {}
        for index, selector in enumerate(self.selectors):
            excludes = tuple(_compiled(p) for p in selector.exclude)
            for position, pattern in enumerate(dict.fromkeys(selector.match)):
                shape = _shape(pattern)
                compiled = _Pattern(
                    (index, position),
                    None if shape.simple else _compiled(pattern),
                    excludes,
                    Match(index, selector, Source(selector.file, selector.label, pattern)),
                )
                if pattern == "*":
                    self._everything.append(compiled)
                elif shape.exact:
                    self._exact.setdefault(pattern, []).append(compiled)
                elif shape.prefix and len(shape.prefix) >= len(shape.suffix):
                    prefixes.setdefault(shape.prefix, []).append(compiled)
                elif shape.suffix:
                    suffixes.setdefault(shape.suffix[::-1], []).append(compiled)
                else:
                    infixes.setdefault(shape.infix, []).append(compiled)
        self._prefixes = _Prefixes(prefixes)
        self._suffixes = _Prefixes(suffixes)
        self._anywhere = infixes.pop("", [])
        self._infixes = tuple(infixes.items())

    def match(self, name: str) -> tuple[Match, ...]:
        """The selectors whose ``BucketMatch`` matches ``name`` and whose ``BucketExclude``
        does not, in the order of the sequence, each with the first of its patterns that
        matched. Tags are not checked (see :func:`needing_tags` and :func:`with_tags`).

        A directory bucket (``--x-s3``) is selected by none: its lifecycle grammar is narrower
        than a selector's rules are checked for, so it is defined by its ``BucketName`` alone.
        Nor is the server probe's scratch bucket (:data:`PROBE_SCRATCH`)."""
        if is_directory_bucket(name) or PROBE_SCRATCH.fullmatch(name):
            return ()
        candidates = [*self._everything, *self._anywhere]
        found = self._exact.get(name)
        if found is not None:
            candidates += found
        candidates += self._prefixes.of(name)
        candidates += self._suffixes.of(name[::-1])
        for infix, found in self._infixes:
            if infix in name:
                candidates += found
        hits = [c for c in candidates if c.match is None or c.match(name)]
        if len(hits) > 1:
            hits.sort(key=_ORDER)
        selected: list[Match] = []
        last = -1
        for hit in hits:
            match = hit.found
            if match.index == last:
                continue  # a later pattern of a selector that already matched
            last = match.index
            if not hit.excludes or not any(exclude(name) for exclude in hit.excludes):
                selected.append(match)
        return tuple(selected)


def _compiled(pattern: str) -> Callable[[str], object]:
    return re.compile(fnmatch.translate(pattern)).match
