"""Hypothesis strategies for lifecycle configurations that S3 accepts, in every spelling.

A rule is drawn in two steps: first its *meaning* (:class:`RuleSpec`: which objects it
selects, which actions it takes), then a *spelling* of that meaning. A definition may
spell "the whole bucket" as no filter, ``Filter {}``, ``Filter {Prefix = ""}`` or a legacy
``Prefix = ""``; a date as a TOML date, a datetime or an ISO string; and S3 reads it all
back in shapes of its own. Two spellings of one meaning must plan as NOOP, which is how
the properties check that canonical comparison does not flap.

Everything drawn by :func:`lifecycle_configs` passes :func:`lakecircle.core.validate.bucket.validate_bucket`
without a single problem, warnings included (a test checks that, so the strategies
cannot drift into invalid ground unnoticed).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from dateutil.tz import tzutc  # type: ignore[import-untyped]  # boto3's own UTC
from hypothesis import strategies as st

from lakecircle.core.model import TDMOS_VALUES, LifecycleConfig, Rule

WATERFALL = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
"""S3's supported transition order (the "waterfall"), written out here independently of validate."""

IA_CLASSES = frozenset({"STANDARD_IA", "ONEZONE_IA"})
"""Classes S3 wants objects to reach no earlier than day 30 and stay in for 30 days."""

MAX_OBJECT_SIZE = 1_099_511_627_776_000
FIRST_DATE = dt.date(2000, 1, 1)
LAST_BASE_DATE = dt.date(2080, 12, 31)

Form = Literal["v2", "legacy", "any", "s3-v2", "s3-legacy"]
"""How a rule is spelled: a definition in the V2 (Filter) or legacy (Prefix) form, any
equivalent spelling at all (for planning, not for S3), or S3's GET answer in either form."""


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """Which objects a rule selects; ``prefix`` is None or non-empty."""

    prefix: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    greater: int | None = None
    less: int | None = None

    @property
    def predicates(self) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        if self.prefix is not None:
            found.append(("Prefix", self.prefix))
        found.extend(("Tag", {"Key": k, "Value": v}) for k, v in self.tags)
        if self.greater is not None:
            found.append(("ObjectSizeGreaterThan", self.greater))
        if self.less is not None:
            found.append(("ObjectSizeLessThan", self.less))
        return found

    @property
    def tags_or_size(self) -> bool:
        return bool(self.tags) or self.greater is not None or self.less is not None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a rule means, with dates as plain dates; spelled by :func:`spell_rule`."""

    id: str | None
    status: str
    filter: FilterSpec
    expiration: dict[str, Any] | None
    transitions: tuple[dict[str, Any], ...]
    noncurrent_expiration: dict[str, Any] | None
    noncurrent_transitions: tuple[dict[str, Any], ...]
    abort: dict[str, Any] | None


# --- meanings ---------------------------------------------------------------------------

sendable = st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="\ufffe\uffff")
"""Any character S3's XML carries: validation refuses control characters in IDs, prefixes and tags."""
short_text = st.text(sendable, min_size=1, max_size=12)
rule_ids = st.one_of(short_text, st.text(sendable, min_size=1, max_size=255), st.just("r" * 255))
prefixes = st.one_of(st.text(sendable, min_size=1, max_size=20), st.sampled_from(["logs/", "raw/2024/", "tmp/", "a"]))
tag_keys = st.one_of(short_text, st.just("k" * 128))
tag_values = st.one_of(st.text(sendable, max_size=12), st.just("v" * 256))
tdmos_values = st.one_of(st.none(), st.sampled_from(TDMOS_VALUES))


@st.composite
def filter_specs(draw: st.DrawFn, *, legacy: bool = False) -> FilterSpec:
    """A filter S3 accepts; with ``legacy`` only what a rule-level Prefix can say."""
    prefix = draw(st.none() | prefixes)
    if legacy:
        return FilterSpec(prefix=prefix)
    tags = tuple(draw(st.lists(st.tuples(tag_keys, tag_values), max_size=4, unique_by=lambda t: t[0])))
    greater = draw(st.none() | st.integers(0, MAX_OBJECT_SIZE - 1) | st.just(0))
    if greater is None:
        less = draw(st.none() | st.integers(1, MAX_OBJECT_SIZE) | st.just(1))
    else:
        less = draw(st.none() | st.integers(greater + 1, MAX_OBJECT_SIZE))
    return FilterSpec(prefix, tags, greater, less)


@st.composite
def _timeline(draw: st.DrawFn, classes: list[str], *, first_low: int) -> list[int]:
    """Strictly increasing day numbers down the waterfall, 30 days after an IA class and
    never before day 30 into one: the ground where validate raises neither error nor warning."""
    days: list[int] = []
    previous: str | None = None
    for cls in classes:
        low = first_low if not days else days[-1] + (30 if previous in IA_CLASSES else 1)
        if cls in IA_CLASSES:
            low = max(low, 30)
        days.append(draw(st.integers(low, low + 400)))
        previous = cls
    return days


def _sorted_subset(max_size: int) -> st.SearchStrategy[list[str]]:
    """Classes in waterfall order; never ONEZONE_IA then GLACIER_IR, which the User Guide
    lists as an unsupported transition."""
    return (
        st.lists(st.sampled_from(WATERFALL), unique=True, max_size=max_size)
        .filter(lambda picked: not {"ONEZONE_IA", "GLACIER_IR"} <= set(picked))
        .map(lambda picked: sorted(picked, key=WATERFALL.index))
    )


@st.composite
def rule_specs(draw: st.DrawFn, *, legacy: bool = False, rule_id: str | None = None) -> RuleSpec:
    flt = draw(filter_specs(legacy=legacy))
    by_date = draw(st.booleans())

    classes = draw(_sorted_subset(4))
    transitions: list[dict[str, Any]]
    if by_date:
        base = draw(st.dates(FIRST_DATE, LAST_BASE_DATE))
        offsets = draw(_timeline(classes, first_low=0))
        transitions = [
            {"Date": base + dt.timedelta(days=o), "StorageClass": c} for o, c in zip(offsets, classes, strict=True)
        ]
        last: int | dt.date | None = transitions[-1]["Date"] if transitions else None
    else:
        days = draw(_timeline(classes, first_low=0))
        transitions = [{"Days": d, "StorageClass": c} for d, c in zip(days, classes, strict=True)]
        last = days[-1] if days else None

    kinds = ["none", "days-or-date"] + ([] if flt.tags_or_size else ["marker"])
    kind = draw(st.sampled_from(kinds))
    expiration: dict[str, Any] | None = None
    if kind == "marker":
        expiration = {"ExpiredObjectDeleteMarker": True}
    elif kind == "days-or-date":
        if by_date:
            start = (
                last + dt.timedelta(days=1) if isinstance(last, dt.date) else draw(st.dates(FIRST_DATE, LAST_BASE_DATE))
            )
            expiration = {"Date": start + dt.timedelta(days=draw(st.integers(0, 400)))}
        else:
            low = last + 1 if isinstance(last, int) else 1
            expiration = {"Days": draw(st.integers(low, low + 3650))}

    nc_classes = draw(_sorted_subset(3))
    nc_days = draw(_timeline(nc_classes, first_low=0))
    newer = st.none() | st.integers(1, 100)
    noncurrent_transitions = []
    for d, c in zip(nc_days, nc_classes, strict=True):
        step: dict[str, Any] = {"NoncurrentDays": d, "StorageClass": c}
        n = draw(newer)
        if n is not None:
            step["NewerNoncurrentVersions"] = n
        noncurrent_transitions.append(step)
    noncurrent_expiration: dict[str, Any] | None = None
    if draw(st.booleans()):
        low = nc_days[-1] + 1 if nc_days else 1
        noncurrent_expiration = {"NoncurrentDays": draw(st.integers(low, low + 1000))}
        n = draw(newer)
        if n is not None:
            noncurrent_expiration["NewerNoncurrentVersions"] = n

    abort: dict[str, Any] | None = None
    if not flt.tags_or_size and draw(st.booleans()):
        abort = {"DaysAfterInitiation": draw(st.integers(1, 365))}

    if not (expiration or transitions or noncurrent_expiration or noncurrent_transitions or abort):
        # Every rule takes at least one action.
        expiration = {"Days": draw(st.integers(1, 3650))}

    return RuleSpec(
        id=rule_id,
        status=draw(st.sampled_from(["Enabled", "Disabled"])),
        filter=flt,
        expiration=expiration,
        transitions=tuple(transitions),
        noncurrent_expiration=noncurrent_expiration,
        noncurrent_transitions=tuple(noncurrent_transitions),
        abort=abort,
    )


@st.composite
def config_specs(
    draw: st.DrawFn, *, legacy: bool | None = None, max_rules: int = 6, min_rules: int = 0
) -> tuple[list[RuleSpec], bool]:
    """The meanings of a bucket's rules (unique IDs), and whether they use the legacy form.

    Legacy rules of a bucket with several get disjoint prefixes (``0/...``, ``1/...``): S3
    refuses legacy prefixes that overlap for one action type (core/validate/legacy.py)."""
    if legacy is None:
        legacy = draw(st.booleans())
    ids = draw(st.lists(rule_ids, min_size=min_rules, max_size=max_rules, unique=True))
    specs = [draw(rule_specs(legacy=legacy, rule_id=i)) for i in ids]
    if legacy and len(specs) > 1:
        specs = [
            replace(spec, filter=replace(spec.filter, prefix=f"{n}/{spec.filter.prefix or ''}"))
            for n, spec in enumerate(specs)
        ]
    return specs, legacy


# --- spellings --------------------------------------------------------------------------


def _midnight(day: dt.date, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz)


@st.composite
def spell_date(draw: st.DrawFn, day: dt.date, form: Form) -> Any:
    """``day`` at midnight UTC in one of the ways a definition or S3 may write it."""
    if form.startswith("s3"):
        return _midnight(day, tzutc())
    offset = dt.timezone(dt.timedelta(hours=2))
    same_instant = _midnight(day).astimezone(offset)
    return draw(
        st.sampled_from(
            [
                day,
                _midnight(day),
                _midnight(day).replace(tzinfo=None),
                day.isoformat(),
                f"{day.isoformat()}T00:00:00Z",
                f"{day.isoformat()}T00:00:00+00:00",
                same_instant,
                same_instant.isoformat(),
            ]
        )
    )


@st.composite
def spell_filter(draw: st.DrawFn, flt: FilterSpec, form: Form) -> dict[str, Any]:
    """The filter part of a rule (``Filter`` and/or ``Prefix`` keys, or nothing)."""
    predicates = flt.predicates
    legacy_able = not flt.tags_or_size
    if form in ("legacy", "s3-legacy"):
        assert legacy_able, "the legacy form can only say a prefix"
        if form == "legacy" and flt.prefix is None and draw(st.booleans()):
            return {}
        return {"Prefix": flt.prefix or ""}

    choices: list[dict[str, Any]] = []
    if not predicates:
        choices += [{"Filter": {}}, {"Filter": {"Prefix": ""}}]
        if form in ("v2", "any"):
            choices.append({})  # no filter at all: the whole bucket
    elif len(predicates) == 1:
        name, value = predicates[0]
        choices.append({"Filter": {name: value}})
        if form == "any":
            lone = {"Tags": [value]} if name == "Tag" else {name: value}
            choices.append({"Filter": {"And": lone}})  # S3 refuses it, but it means the same
    else:
        tags = [v for n, v in predicates if n == "Tag"]
        op: dict[str, Any] = {n: v for n, v in predicates if n != "Tag"}
        if tags:
            op["Tags"] = draw(st.permutations(tags))
        choices.append({"Filter": {"And": op}})
    if form == "any" and legacy_able:
        choices.append({"Prefix": flt.prefix or ""})
    return draw(st.sampled_from(choices))


@st.composite
def spell_rule(draw: st.DrawFn, spec: RuleSpec, form: Form) -> dict[str, Any]:
    """One rule's wire dict (TOML or boto3 shape) for ``spec``; lists come in any order."""
    wire: dict[str, Any] = {"Status": spec.status}
    if spec.id is not None:
        wire["ID"] = spec.id
    wire.update(draw(spell_filter(spec.filter, form)))

    def dated(item: dict[str, Any]) -> dict[str, Any]:
        return {k: draw(spell_date(v, form)) if k == "Date" else v for k, v in item.items()}

    if spec.expiration is not None:
        wire["Expiration"] = dated(spec.expiration)
    elif form in ("v2", "legacy", "any") and draw(st.integers(0, 4)) == 0:
        wire["Expiration"] = {"ExpiredObjectDeleteMarker": False}  # says nothing
    if spec.transitions:
        wire["Transitions"] = draw(st.permutations([dated(t) for t in spec.transitions]))
    if spec.noncurrent_expiration is not None:
        wire["NoncurrentVersionExpiration"] = dict(spec.noncurrent_expiration)
    if spec.noncurrent_transitions:
        wire["NoncurrentVersionTransitions"] = draw(st.permutations([dict(t) for t in spec.noncurrent_transitions]))
    if spec.abort is not None:
        wire["AbortIncompleteMultipartUpload"] = dict(spec.abort)
    return wire


@st.composite
def spell_config(draw: st.DrawFn, specs: list[RuleSpec], legacy: bool, form: Form) -> list[dict[str, Any]]:
    if form == "v2" and legacy:
        form = "legacy"
    elif form == "s3-v2" and legacy:
        form = "s3-legacy"
    return [draw(spell_rule(s, form)) for s in specs]


def to_config(wire_rules: list[dict[str, Any]], tdmos: str | None) -> LifecycleConfig:
    return LifecycleConfig(tuple(Rule.model_validate(r) for r in wire_rules), tdmos)


# --- what the tests draw ----------------------------------------------------------------


@st.composite
def definition_rules(draw: st.DrawFn, *, max_rules: int = 6, min_rules: int = 0) -> list[dict[str, Any]]:
    """The rules of a valid definition, as TOML-shaped dicts, in one form (V2 or legacy)."""
    specs, legacy = draw(config_specs(max_rules=max_rules, min_rules=min_rules))
    return draw(spell_config(specs, legacy, "v2"))


@st.composite
def lifecycle_configs(draw: st.DrawFn, *, max_rules: int = 6, min_rules: int = 0) -> LifecycleConfig:
    """A valid definition's configuration: every feature, dates in every spelling."""
    return to_config(draw(definition_rules(max_rules=max_rules, min_rules=min_rules)), draw(tdmos_values))


@st.composite
def equivalent_configs(draw: st.DrawFn, *, max_rules: int = 6) -> tuple[LifecycleConfig, LifecycleConfig]:
    """Two configurations that say the same thing in different words and orders."""
    specs, legacy = draw(config_specs(max_rules=max_rules))
    tdmos = draw(tdmos_values)
    first = draw(spell_config(specs, legacy, "any"))
    second = draw(st.permutations(draw(spell_config(specs, legacy, "any"))))
    return to_config(first, tdmos), to_config(list(second), tdmos)


@st.composite
def definition_and_response(draw: st.DrawFn, *, max_rules: int = 6) -> tuple[LifecycleConfig, dict[str, Any]]:
    """A valid definition and S3's GET answer for a bucket that holds exactly it."""
    specs, legacy = draw(config_specs(max_rules=max_rules, min_rules=1))
    tdmos = draw(tdmos_values)
    desired = to_config(draw(spell_config(specs, legacy, "v2")), tdmos)
    live = draw(st.permutations(draw(spell_config(specs, legacy, "s3-v2"))))
    response = _response(list(live), tdmos if tdmos is not None else "all_storage_classes_128K")
    return desired, response


def _response(rules: list[dict[str, Any]], tdmos: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "ResponseMetadata": {
            "RequestId": "4442587FB7D0A2F9",
            "HostId": "",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {"content-type": "application/xml"},
            "RetryAttempts": 0,
        },
        "Rules": rules,
    }
    if tdmos is not None:
        response["TransitionDefaultMinimumObjectSize"] = tdmos
    return response


@st.composite
def lifecycle_responses(draw: st.DrawFn, *, max_rules: int = 6) -> dict[str, Any]:
    """A GetBucketLifecycleConfiguration response as boto3 returns it.

    Every rule has a Filter (``{}`` for the whole bucket) or, in a legacy configuration, a
    rule-level Prefix; dates are tz-aware datetimes; a rule may lack an ID (servers other
    than S3) and TransitionDefaultMinimumObjectSize may be missing (likewise).
    """
    specs, legacy = draw(config_specs(max_rules=max_rules, min_rules=1))
    specs = [s if draw(st.integers(0, 9)) else _without_id(s) for s in specs]
    rules = draw(spell_config(specs, legacy, "s3-v2"))
    return _response(rules, draw(tdmos_values))


def _without_id(spec: RuleSpec) -> RuleSpec:
    return RuleSpec(
        None,
        spec.status,
        spec.filter,
        spec.expiration,
        spec.transitions,
        spec.noncurrent_expiration,
        spec.noncurrent_transitions,
        spec.abort,
    )


# -- fleets of definition files, for the targeted reconcile's properties ---------------------

FLEET_BUCKETS = ("app-logs", "app-data", "web-logs", "web-data", "legal-logs", "other")
"""The bucket names fleet files name and select (``other`` no pattern but ``*`` selects)."""
FLEET_PATTERNS = ("*", "app-*", "*-logs", "web-data", "*-d*", "?eb-*", "[aw]*-logs", "Logs-*")
"""``Logs-*`` can never match a bucket name: a selector with it is an error (its file unreadable)."""
FLEET_EXCLUDES = ("legal-*", "*-data")
FLEET_FILES = ("f1.toml", "f2.toml", "f3.toml", "f4.toml")
FLEET_TWEAKS = (
    b'Ownership = "shared"\n',
    b'Ownership = "authoritative"\n',
    b'TransitionDefaultMinimumObjectSize = "varies_by_storage_class"\n',
    b'Accounts = ["111111111111"]\n',
    b'BucketExclude = ["legal-*"]\n',
    b'BucketTags = { team = "y" }\n',
)
"""One line more at the end of a file: a key of its last table."""


@st.composite
def fleet_table(draw: st.DrawFn) -> str:
    """One definition's keys as TOML lines: an exact definition or a selector, with rules
    from a small pool (IDs ``a`` to ``c``; 0 days is an error, so the bucket or selector is invalid)."""
    lines = []
    if draw(st.booleans()):
        lines.append(f"BucketName = {json.dumps(draw(st.sampled_from(FLEET_BUCKETS)))}")
    else:
        match = draw(st.lists(st.sampled_from(FLEET_PATTERNS), min_size=1, max_size=2))
        lines.append(f"BucketMatch = {json.dumps(match)}")
        if draw(st.booleans()):
            lines.append(f"BucketExclude = {json.dumps(draw(st.lists(st.sampled_from(FLEET_EXCLUDES), min_size=1)))}")
        if draw(st.booleans()):
            lines.append(f'BucketTags = {{ team = "{draw(st.sampled_from("xy"))}" }}')
    if draw(st.integers(0, 3)) == 0:
        lines.append(f'Ownership = "{draw(st.sampled_from(("shared", "authoritative")))}"')
    if draw(st.integers(0, 3)) == 0:
        lines.append(f'TransitionDefaultMinimumObjectSize = "{draw(st.sampled_from(TDMOS_VALUES))}"')
    if draw(st.integers(0, 4)) == 0:
        lines.append(f'Accounts = ["{draw(st.sampled_from(("111111111111", "222222222222")))}"]')
    rules = draw(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2)), max_size=3))
    spelled = ", ".join(
        f'{{ ID = "{rule_id}", Status = "Enabled", Filter = {{}}, Expiration = {{ Days = {days} }} }}'
        for rule_id, days in rules
    )
    lines.append(f"LifecycleConfiguration = {{ Rules = [{spelled}] }}")
    return "".join(f"{line}\n" for line in lines)


@st.composite
def fleet_file(draw: st.DrawFn) -> bytes:
    """A definition file: one definition, several ``[[Bucket]]`` tables, or not TOML at all."""
    kind = draw(st.sampled_from(("one", "one", "tables", "broken")))
    if kind == "broken":
        return b"BucketName = [\n"
    if kind == "one":
        return draw(fleet_table()).encode()
    tables = draw(st.lists(fleet_table(), min_size=1, max_size=3))
    return "".join(f"[[Bucket]]\n{table}" for table in tables).encode()


@st.composite
def fleet_changes(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Two versions of a few definition files: each file kept, rewritten, added or removed,
    saved again with a comment, or given one more key (its last table: an ownership, a
    minimum object size, an account scope, tags; a key it has already breaks it)."""
    old = {name: draw(fleet_file()) for name in FLEET_FILES if draw(st.booleans())}
    new: dict[str, bytes] = {}
    for name in FLEET_FILES:
        fate = draw(st.sampled_from(("keep", "keep", "comment", "tweak", "tweak", "change", "drop")))
        if fate in ("keep", "comment", "tweak") and name in old:
            extra = {"keep": b"", "comment": b"# saved again\n"}.get(fate) or draw(st.sampled_from(FLEET_TWEAKS))
            new[name] = old[name] + extra
        elif fate == "change" or (fate != "drop" and name not in old and draw(st.booleans())):
            new[name] = draw(fleet_file())
    return old, new
