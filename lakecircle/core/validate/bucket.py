"""The checks of a bucket as a whole, and the entry point that runs every check.

What only the merged bucket can tell: its name, its TransitionDefaultMinimumObjectSize,
how many rules it has, IDs repeated across its files, the legacy Prefix beside Filter,
and legacy prefixes that overlap (:mod:`~lakecircle.core.validate.legacy`). Each rule's
own findings (:mod:`~lakecircle.core.validate.rule`) are turned into problems here,
naming the file the rule came from.

A selector's rules (``BucketMatch``) are checked by the same code, as a bucket of their
own: every bucket the selector selects gets them all. Its problems name no bucket (which
buckets it selects is known only against an account): their file and the table their
field path begins with (``Bucket[2].LifecycleConfiguration.Rules[0].Expiration.Days``)
name the selector, and a message says "this selector" where it would say "this bucket".

A directory bucket (``--x-s3``) is checked under its own, narrower grammar as well
(:mod:`~lakecircle.core.validate.directory`). ``storage_classes`` are the transition
targets a server has beside S3's own (``LCC_STORAGE_CLASSES``), given by the caller: this
package reads no setting.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from lakecircle.core.bucket_names import name_problems
from lakecircle.core.directory import is_directory_bucket
from lakecircle.core.model import TDMOS_VALUES, BucketDefinition
from lakecircle.core.problems import Problem, shown, suggest
from lakecircle.core.selectors import Selector
from lakecircle.core.validate.directory import TDMOS_REFUSED, directory_rule_findings
from lakecircle.core.validate.legacy import overlapping_prefixes
from lakecircle.core.validate.rule import rule_findings

MAX_RULES = 1000


@dataclass(frozen=True, slots=True)
class _Scope:
    """Whose rules are checked: a bucket's (problems name it) or a selector's (problems
    name no bucket, and their fields begin with the selector's table)."""

    bucket: str | None
    noun: str
    """How a message calls it: "bucket" or "selector"."""
    rules_at: str | None = None
    """A selector's ``Bucket[2].LifecycleConfiguration.Rules``; None for a bucket, whose
    rule fields are the rule's own key paths (the rule is named beside them)."""

    def field(self, path: str | None, index: int | None = None) -> str | None:
        if self.rules_at is None:
            return path
        if index is None:  # a key of the whole table, written beside the rules
            return self.rules_at.removesuffix("LifecycleConfiguration.Rules") + (path or "")
        return f"{self.rules_at}[{index}]" + (f".{path}" if path else "")


def validate_bucket(bucket: BucketDefinition, storage_classes: Collection[str] = ()) -> list[Problem]:
    """Every problem with one bucket's merged definition: the whole bucket's first, then the
    rules' in rule order (``storage_classes``: the server's own transition targets)."""
    # 0. A name S3 can hold (its naming rules for general purpose buckets), said in every
    # file that names it: which bucket such a file means is unknown (see definitions.py).
    problems = [
        Problem(file, message, bucket=bucket.name, field="BucketName")
        for message in name_problems(bucket.name)
        for file in (bucket.files or ("-",))
    ]
    problems.extend(_problems(bucket, _Scope(bucket.name, "bucket"), storage_classes))
    return problems


def validate_selector(selector: Selector, storage_classes: Collection[str] = ()) -> list[Problem]:
    """Every problem with a selector's rules and TransitionDefaultMinimumObjectSize, as
    :func:`validate_bucket` finds them in a bucket's (its keys that select buckets are
    checked as they are read, in :mod:`lakecircle.core.selector_checks`)."""
    config = selector.config
    stand_in = BucketDefinition(selector.label, config, (selector.file,), (selector.file,) * len(config.rules))
    return _problems(
        stand_in, _Scope(None, "selector", f"{selector.where}LifecycleConfiguration.Rules"), storage_classes
    )


def _problems(bucket: BucketDefinition, scope: _Scope, storage_classes: Collection[str]) -> list[Problem]:
    problems = _header_problems(bucket, scope)
    directory = scope.bucket is not None and is_directory_bucket(scope.bucket)
    # One pass over the rules (each is read from memory once): their own findings, and
    # whether any ID repeats or any rule has the legacy Prefix.
    found_by_rule: list[Problem] = []
    ids: set[str] = set()
    repeated = legacy = False
    for index, rule in enumerate(bucket.config.rules):
        rule_id = rule.id
        if rule_id is not None:
            if rule_id in ids:
                repeated = True
            else:
                ids.add(rule_id)
        if rule.prefix is not None:
            legacy = True
        found = rule_findings(rule, storage_classes)
        if directory:
            found += directory_rule_findings(rule)
        if found:
            label = _label(bucket, index)
            file = bucket.file_of(index)
            found_by_rule.extend(
                Problem(
                    file, message, bucket=scope.bucket, rule=label, field=scope.field(path, index), severity=severity
                )
                for path, message, severity in found
            )
    if repeated:
        problems.extend(_duplicate_ids(bucket, scope))
    # 3. One bucket does not mix the legacy Prefix form with Filter. (A rule holding both
    # is reported by check_rule; it does not count for either form here.)
    if legacy:
        problems.extend(_mixed_forms(bucket, scope))
        problems.extend(_overlaps(bucket, scope))
    problems.extend(found_by_rule)
    return problems


def _header_problems(bucket: BucketDefinition, scope: _Scope) -> list[Problem]:
    """The bucket's TransitionDefaultMinimumObjectSize and its number of rules."""
    config = bucket.config
    first = bucket.files[0] if bucket.files else "-"
    problems = []
    tdmos = config.transition_default_minimum_object_size
    if tdmos is not None and scope.bucket is not None and is_directory_bucket(scope.bucket):
        problems.append(Problem(first, TDMOS_REFUSED, bucket=scope.bucket, field="TransitionDefaultMinimumObjectSize"))
    elif tdmos is not None and tdmos not in TDMOS_VALUES:
        problems.append(
            Problem(
                first,
                f"TransitionDefaultMinimumObjectSize {shown(tdmos)} is not one of {', '.join(TDMOS_VALUES)}"
                f"{suggest(tdmos, TDMOS_VALUES)}",
                bucket=scope.bucket,
                field=scope.field("TransitionDefaultMinimumObjectSize"),
            )
        )
    # 1. At most 1,000 rules; IDs required, 1-255 characters, unique.
    if len(config.rules) > MAX_RULES:
        problems.append(
            Problem(
                first,
                f"{len(config.rules)} rules, over S3's limit of {MAX_RULES} per bucket; merge or drop rules",
                bucket=scope.bucket,
                field=scope.field("LifecycleConfiguration.Rules"),
            )
        )
    return problems


def _duplicate_ids(bucket: BucketDefinition, scope: _Scope) -> list[Problem]:
    problems = []
    files_by_id: dict[str, list[str]] = {}
    last_index: dict[str, int] = {}
    for index, rule in enumerate(bucket.config.rules):
        if rule.id is not None:
            files_by_id.setdefault(rule.id, []).append(bucket.file_of(index))
            last_index[rule.id] = index
    for rule_id, files in files_by_id.items():
        if len(files) > 1:
            where = " and ".join(sorted(set(files))) if len(set(files)) > 1 else f"{files[0]} ({len(files)} times)"
            problems.append(
                Problem(
                    files[-1],
                    f"rule ID {shown(rule_id)} is defined more than once for this {scope.noun}, in {where};"
                    " rule IDs must be unique per bucket",
                    bucket=scope.bucket,
                    rule=rule_id,
                    field=scope.field("ID", last_index[rule_id]),
                )
            )
    return problems


def _mixed_forms(bucket: BucketDefinition, scope: _Scope) -> list[Problem]:
    rules = bucket.config.rules
    legacy = [i for i, r in enumerate(rules) if r.prefix is not None and r.filter is None]
    modern = [i for i, r in enumerate(rules) if r.filter is not None and r.prefix is None]
    if not (legacy and modern):
        return []
    first_legacy, first_modern = legacy[0], modern[0]
    others = f" (as do {len(legacy) - 1} other rules)" if len(legacy) > 1 else ""
    return [
        Problem(
            bucket.file_of(first_legacy),
            f"rule uses the legacy rule-level Prefix{others} while rule {shown(_label(bucket, first_modern))}"
            f" in {bucket.file_of(first_modern)} uses Filter; S3 refuses the two forms in one bucket:"
            " write every rule with Filter = { Prefix = ... }",
            bucket=scope.bucket,
            rule=_label(bucket, first_legacy),
            field=scope.field("Prefix", first_legacy),
        )
    ]


def _overlaps(bucket: BucketDefinition, scope: _Scope) -> list[Problem]:
    """Legacy-form rules whose prefixes overlap for one action type (:mod:`.legacy`)."""
    rules = bucket.config.rules
    return [
        Problem(
            bucket.file_of(o.later),
            f"its legacy rule-level Prefix {shown(rules[o.later].prefix or '')} overlaps Prefix"
            f" {shown(rules[o.earlier].prefix or '')} of rule {shown(_label(bucket, o.earlier))}"
            f" in {bucket.file_of(o.earlier)}, both with action type {o.action}; S3 refuses overlapping"
            " prefixes for the same action type in the legacy form: write both rules with"
            " Filter = { Prefix = ... } (Filter prefixes may overlap), or make the prefixes disjoint",
            bucket=scope.bucket,
            rule=_label(bucket, o.later),
            field=scope.field("Prefix", o.later),
        )
        for o in overlapping_prefixes(rules)
    ]


def _label(bucket: BucketDefinition, index: int) -> str:
    """A rule's ID, or for a rule without one its place in its own file ("rule #2")."""
    rule_id = bucket.config.rules[index].id
    if rule_id:
        return rule_id
    file = bucket.file_of(index)
    place = sum(1 for before in range(index) if bucket.file_of(before) == file)
    return f"rule #{place + 1}"
