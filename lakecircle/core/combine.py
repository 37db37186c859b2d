"""One bucket's desired state from every definition that selects it: its exact definition
(``BucketName``) and the selectors whose patterns and tags pick it.

The rules, in order (ARCHITECTURE.md, "Fleets"):

1. the desired rules are the union of the rules of every definition that selects the bucket;
2. a rule ID the exact definition defines replaces a selector's rule with that ID, for this
   bucket only (an *override*, recorded); two selectors giving one ID different content make
   the bucket invalid, naming both; the same content twice is one rule (compared in
   canonical form, so spellings that mean the same are the same);
3. the bucket is authoritative when its exact definition is (its default) or any selector
   says ``Ownership = "authoritative"``; otherwise shared;
4. the exact definition's TransitionDefaultMinimumObjectSize wins; two selectors with
   different values make the bucket invalid;
5. a bucket nothing selects is unmanaged: :func:`combine` answers None, and the caller
   neither reads nor writes it, only counts it.

Cheap by design: a selector shared by 100,000 buckets gives each of them its very rule
models and :class:`~lakecircle.core.selectors.Source` values (built once by the matcher),
so a bucket costs the merged tuples and nothing more. The rules are kept as written, so
:func:`~lakecircle.core.digest.rules_digest` of the result equals that of an exact
definition holding the same rules, and the engine's in-sync shortcut holds.

Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakecircle.core.digest import Digest, rules_digest
from lakecircle.core.model import BucketDefinition, LifecycleConfig, Rule
from lakecircle.core.normalize import canonical_key, one_form
from lakecircle.core.problems import Problem, has_errors, shown
from lakecircle.core.selectors import Match, Override, Ownership, Source
from lakecircle.core.validate.bucket import MAX_RULES

__all__ = ["TDMOS", "Combined", "Override", "combine"]
"""``Override`` is here too: it was defined here first (it now lives in :mod:`~lakecircle.core.selectors`)."""

TDMOS = "TransitionDefaultMinimumObjectSize"


@dataclass(frozen=True, slots=True)
class Combined:
    """What the definitions want for one bucket, and where each part comes from."""

    bucket: str
    config: LifecycleConfig
    """The merged rules and TransitionDefaultMinimumObjectSize, ready to plan against."""
    shared: bool
    """True: keep other writers' rules, remove only rules LakeCircle applied (rule 3)."""
    sources: tuple[Source, ...]
    """Where each rule comes from, parallel to ``config.rules``."""
    overrides: tuple[Override, ...] = ()
    problems: tuple[Problem, ...] = ()
    """Errors make the bucket invalid: it is reported, never written."""

    @property
    def valid(self) -> bool:
        return not has_errors(self.problems)

    @property
    def digest(self) -> Digest:
        """:func:`~lakecircle.core.digest.rules_digest` of the rules, as for an exact definition."""
        return rules_digest(self.config.rules)


def combine(bucket: str, exact: BucketDefinition | None, selected: Sequence[Match]) -> Combined | None:
    """The desired state of ``bucket`` from its exact definition (None when it has none) and
    the selectors that select it, in definition order (their names matched, and their
    ``BucketTags`` too: :func:`~lakecircle.core.selectors.with_tags`).

    None when nothing selects the bucket (rule 5): it is unmanaged. The exact definition is
    taken as valid (its own problems are :func:`~lakecircle.core.validate.bucket.validate_bucket`'s);
    the problems here are those only the combination has.
    """
    if exact is None and not selected:
        return None
    union = _Union(bucket, exact, bool(selected))
    for match in selected:
        for rule in match.selector.config.rules:
            union.add(rule, match.source)
    problems = union.problems
    tdmos = _tdmos(bucket, exact, selected, problems)
    if len(union.rules) > MAX_RULES:
        problems.append(
            Problem(
                union.sources[-1].file,
                f"the definitions selecting this bucket give it {len(union.rules)} rules together, over S3's"
                f" limit of {MAX_RULES}; select it with fewer selectors or merge rules",
                bucket=bucket,
                field="LifecycleConfiguration.Rules",
            )
        )
    return Combined(
        bucket,
        LifecycleConfig(one_form(union.rules), tdmos),
        _shared(exact, selected),
        tuple(union.sources),
        tuple(union.overrides),
        tuple(problems),
    )


def exact_sources(definition: BucketDefinition) -> tuple[Source, ...]:
    """The source of each rule of an exact ``BucketName`` definition, parallel to its rules:
    the file that defines it. A plan of a bucket no selector selects carries these too."""
    return tuple(Source(definition.file_of(index)) for index in range(len(definition.config.rules)))


class _Union:
    """Rules 1 and 2 for one bucket: the exact definition's rules, then each selector's
    rule unless the exact definition overrides its ID or it repeats a rule already given."""

    def __init__(self, bucket: str, exact: BucketDefinition | None, any_selected: bool) -> None:
        self.bucket = bucket
        self.rules: list[Rule] = []
        self.sources: list[Source] = []
        self.overrides: list[Override] = []
        self.problems: list[Problem] = []
        self.exact_ids: dict[str, Source] = {}
        if exact is not None:
            self.rules.extend(exact.config.rules)
            for rule, source in zip(exact.config.rules, exact_sources(exact), strict=True):
                self.sources.append(source)
                if rule.id is not None:
                    self.exact_ids.setdefault(rule.id, source)
        self.given: dict[str, tuple[int, tuple[object, ...] | None]] = {}
        """A selector-given rule ID: its place in ``rules``, and its canonical key once needed."""
        self.anonymous = {canonical_key(r) for r in self.rules if r.id is None} if any_selected else set()

    def add(self, rule: Rule, source: Source) -> None:
        """A selector's rule: kept, recorded as overridden, folded into its twin, or a conflict."""
        rule_id = rule.id
        if rule_id is None:
            key = canonical_key(rule)
            if key not in self.anonymous:  # the same rule without an ID twice is one rule
                self.anonymous.add(key)
                self._keep(rule, source)
            return
        by = self.exact_ids.get(rule_id)
        if by is not None:
            self.overrides.append(Override(rule_id, source, by))
            return
        seen = self.given.get(rule_id)
        if seen is None:
            self.given[rule_id] = (len(self.rules), None)
            self._keep(rule, source)
            return
        place, kept_key = seen
        if kept_key is None:
            kept_key = canonical_key(self.rules[place])
            self.given[rule_id] = (place, kept_key)
        if canonical_key(rule) != kept_key:
            self.problems.append(_conflict(self.bucket, rule_id, self.sources[place], source))

    def _keep(self, rule: Rule, source: Source) -> None:
        self.rules.append(rule)
        self.sources.append(source)


def _conflict(bucket: str, rule_id: str, kept: Source, other: Source) -> Problem:
    return Problem(
        other.file,
        f"rule ID {shown(rule_id)} is given to this bucket by {_named(kept)} and by {_named(other)}"
        " with different content; give the rule one content in both, rename one of them, or"
        " define the rule in the bucket's own BucketName definition, which overrides both",
        bucket=bucket,
        rule=rule_id,
        field="LifecycleConfiguration.Rules",
    )


def _named(source: Source) -> str:
    if source.selector is None:
        return source.file
    return f"{source.selector} (pattern {shown(source.matched or '')})"


def _tdmos(
    bucket: str, exact: BucketDefinition | None, selected: Sequence[Match], problems: list[Problem]
) -> str | None:
    """Rule 4: the exact definition's value, else the one value the selectors agree on."""
    if exact is not None and exact.config.transition_default_minimum_object_size is not None:
        return exact.config.transition_default_minimum_object_size
    value: str | None = None
    first: Match | None = None
    for match in selected:
        theirs = match.selector.config.transition_default_minimum_object_size
        if theirs is None:
            continue
        if first is None:
            value, first = theirs, match
        elif theirs != value:
            problems.append(
                Problem(
                    match.source.file,
                    f"{TDMOS} is {shown(theirs)} in {_named(match.source)} but {shown(value or '')} in"
                    f" {_named(first.source)}, and both select this bucket; give them one value, or set"
                    f" {TDMOS} in the bucket's own BucketName definition, which wins",
                    bucket=bucket,
                    field=TDMOS,
                )
            )
    return value


def _shared(exact: BucketDefinition | None, selected: Sequence[Match]) -> bool:
    """Rule 3: authoritative when the exact definition is (by default) or any selector says so."""
    if exact is not None and not exact.shared:
        return False
    return not any(m.selector.ownership is Ownership.AUTHORITATIVE for m in selected)
