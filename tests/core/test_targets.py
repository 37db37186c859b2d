"""Which buckets a change of the definitions may affect (core/targets.py): a table of every
kind of change, and the property that matters most: every bucket whose desired state (as the
cycle combines it) differs between the old and the new definitions is among those affected."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakecircle.core.combine import combine
from lakecircle.core.definitions import Definitions, FileBrief, definitions_from_briefs, load_definitions
from lakecircle.core.model import BucketDefinition
from lakecircle.core.parse import parse_file
from lakecircle.core.selectors import Matcher, tags_match, with_tags
from lakecircle.core.targets import Changes, Everything, changes
from tests.builders import definition, fleet, rule
from tests.strategies import FLEET_BUCKETS, fleet_changes


def loaded(files: Mapping[str, bytes], etag: str = "v1") -> Definitions:
    """The definitions as the daemon's loader makes them: each file in brief, by key order."""
    return definitions_from_briefs(
        FileBrief.of(parse_file(name, data), data, f"{etag}-{name}") for name, data in sorted(files.items())
    )


PAIR = b"""[[Bucket]]
BucketName = "web-data"
LifecycleConfiguration = { Rules = [{ ID = "keep", Status = "Enabled", Filter = {}, Expiration = { Days = 30 } }] }
[[Bucket]]
BucketName = "web-logs"
LifecycleConfiguration = { Rules = [{ ID = "keep", Status = "Enabled", Filter = {}, Expiration = { Days = 7 } }] }
"""

BASE = {
    "app-data.toml": definition("app-data", rule("keep", 30)),
    "pair.toml": PAIR,
    "fleet.toml": fleet(["*-logs"], rule("expire-logs", 10)),
    "tagged.toml": fleet(["app-*"], rule("class", 5), BucketTags={"team": "x"}),
}
BROKEN = b"BucketName = [\n"

EVERYTHING = "everything"

# (what changed: file -> new bytes, None removes it), the buckets named, the selectors' labels changed
CASES: list[tuple[str, dict[str, bytes | None], set[str] | str, set[str]]] = [
    ("an unchanged reload affects nothing", {}, set(), set()),
    (
        "a file saved again with a comment affects nothing",
        {"app-data.toml": BASE["app-data.toml"] + b"# x\n"},
        set(),
        set(),
    ),
    (
        "a changed rule affects its bucket",
        {"app-data.toml": definition("app-data", rule("keep", 31))},
        {"app-data"},
        set(),
    ),
    ("a new file affects its buckets", {"new.toml": definition("new-bucket", rule())}, {"new-bucket"}, set()),
    ("a removed file affects the buckets it named", {"app-data.toml": None}, {"app-data"}, set()),
    ("a file made unreadable turns the picture partial: everything", {"app-data.toml": BROKEN}, EVERYTHING, set()),
    (
        "one table of several edited affects that table's bucket alone",
        {"pair.toml": PAIR.replace(b"Days = 7", b"Days = 8")},
        {"web-logs"},
        set(),
    ),
    (
        "a bucket moved from one file to another affects it",
        {"app-data.toml": None, "moved.toml": BASE["app-data.toml"]},
        {"app-data"},
        set(),
    ),
    (
        "an ownership change affects its bucket",
        {"app-data.toml": definition("app-data", rule("keep", 30), Ownership="shared")},
        {"app-data"},
        set(),
    ),
    (
        "a minimum object size change affects its bucket",
        {
            "app-data.toml": definition(
                "app-data", rule("keep", 30), TransitionDefaultMinimumObjectSize="varies_by_storage_class"
            )
        },
        {"app-data"},
        set(),
    ),
    (
        "an account scope change affects its bucket",
        {"app-data.toml": definition("app-data", rule("keep", 30), Accounts=["111111111111"])},
        {"app-data"},
        set(),
    ),
    (
        "an override of a selector's rule affects its bucket",
        {"app-data.toml": definition("app-data", rule("keep", 30), rule("class", 9))},
        {"app-data"},
        set(),
    ),
    (
        "a bucket made invalid affects it",
        {"app-data.toml": definition("app-data", rule("keep", 30), rule("keep", 40))},
        {"app-data"},
        set(),
    ),
    (
        "a second file naming a bucket affects it",
        {"more.toml": definition("app-data", rule("more", 3))},
        {"app-data"},
        set(),
    ),
    (
        "a widened pattern: both versions of the selector",
        {"fleet.toml": fleet(["*-logs", "*-data"], rule("expire-logs", 10))},
        set(),
        {"fleet.toml"},
    ),
    (
        "a narrowed pattern: both versions",
        {"fleet.toml": fleet(["web-*"], rule("expire-logs", 10))},
        set(),
        {"fleet.toml"},
    ),
    (
        "a selector's tags changed: both versions",
        {"tagged.toml": fleet(["app-*"], rule("class", 5), BucketTags={"team": "y"})},
        set(),
        {"tagged.toml"},
    ),
    (
        "a selector's ownership changed: both versions",
        {"fleet.toml": fleet(["*-logs"], rule("expire-logs", 10), Ownership="authoritative")},
        set(),
        {"fleet.toml"},
    ),
    (
        "a selector's account scope changed: both versions",
        {"fleet.toml": fleet(["*-logs"], rule("expire-logs", 10), Accounts=["111111111111"])},
        set(),
        {"fleet.toml"},
    ),
    ("a removed selector: its old version", {"tagged.toml": None}, set(), {"tagged.toml"}),
    ("a new selector: its new version", {"a-first.toml": fleet(["*"], rule("base", 3))}, set(), {"a-first.toml"}),
    (
        "a selector made invalid makes its file unreadable: everything",
        {"fleet.toml": fleet(["Logs-*"], rule("expire-logs", 10))},
        EVERYTHING,
        set(),
    ),
]


def _applied(base: Mapping[str, bytes], change: Mapping[str, bytes | None]) -> dict[str, bytes]:
    files = dict(base)
    for name, data in change.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return files


@pytest.mark.parametrize(("change", "buckets", "labels"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_kind_of_change_affects_what_it_may_change(
    change: dict[str, bytes | None], buckets: set[str] | str, labels: set[str]
) -> None:
    old = loaded(BASE)
    found = changes(old, loaded(_applied(BASE, change), etag="v2"))
    if buckets == EVERYTHING:
        assert found.everything is Everything.PICTURE
        return
    assert found.everything is None
    assert set(found.buckets) == buckets
    assert {s.label for s in found.selectors} == labels
    assert found.nothing == (not buckets and not labels)


def test_a_changed_selector_is_given_in_its_old_and_its_new_version() -> None:
    new = _applied(BASE, {"fleet.toml": fleet(["web-*"], rule("expire-logs", 10))})
    found = changes(loaded(BASE), loaded(new))
    assert sorted(s.match for s in found.selectors) == [("*-logs",), ("web-*",)]


def test_the_picture_turning_whole_again_is_everything() -> None:
    partial = loaded(_applied(BASE, {"broken.toml": BROKEN}))
    assert changes(partial, loaded(BASE)).everything is Everything.PICTURE


def test_a_file_made_unreadable_in_a_partial_picture_affects_the_buckets_it_named() -> None:
    partial = _applied(BASE, {"broken.toml": BROKEN})
    found = changes(loaded(partial), loaded(_applied(partial, {"pair.toml": BROKEN})))
    assert found.everything is None
    assert found.buckets == {"web-data", "web-logs"}


def test_a_file_read_again_in_a_partial_picture_affects_the_buckets_it_names() -> None:
    partial = _applied(BASE, {"broken.toml": BROKEN, "pair.toml": BROKEN})
    found = changes(loaded(partial), loaded(_applied(partial, {"pair.toml": PAIR})))
    assert found.buckets == {"web-data", "web-logs"}


def test_the_same_definitions_affect_nothing() -> None:
    same = loaded(BASE)
    assert changes(same, same) == Changes()


class Untouchable(Mapping[str, BucketDefinition]):
    """Buckets whose models may not be built, nor their names walked."""

    def __getitem__(self, name: str) -> BucketDefinition:
        raise AssertionError("a bucket's models were built")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the buckets were walked")

    def __len__(self) -> int:
        raise AssertionError("the buckets were counted")


def test_definitions_in_brief_are_compared_file_by_file_without_building_models() -> None:
    old = loaded(BASE)
    new = loaded(_applied(BASE, {"app-data.toml": definition("app-data", rule("keep", 31))}), etag="v2")
    assert old.briefs is not None
    assert [b.name for b in old.briefs] == sorted(BASE)
    found = changes(replace(old, buckets=Untouchable()), replace(new, buckets=Untouchable()))
    assert found.buckets == {"app-data"}


def test_selectors_kept_in_another_order_are_everything() -> None:
    first = load_definitions([("b.toml", BASE["fleet.toml"]), ("a.toml", BASE["tagged.toml"])])
    second = load_definitions([("a.toml", BASE["tagged.toml"]), ("b.toml", BASE["fleet.toml"])])
    assert changes(first, second).everything is Everything.SELECTOR_ORDER


@pytest.mark.parametrize(
    ("change", "buckets"),
    [
        ({}, set()),
        ({"app-data.toml": definition("app-data", rule("keep", 31))}, {"app-data"}),
        ({"app-data.toml": None, "moved.toml": BASE["app-data.toml"]}, {"app-data"}),
        ({"app-data.toml": definition("app-data", rule("keep", 30), rule("keep", 40))}, {"app-data"}),
    ],
    ids=["unchanged", "a changed rule", "a moved bucket", "made invalid"],
)
def test_definitions_without_briefs_are_compared_bucket_by_bucket(
    change: dict[str, bytes | None], buckets: set[str]
) -> None:
    """The commands' definitions (build_definitions) hold models, not briefs."""
    assert changes(load_definitions(BASE), load_definitions(_applied(BASE, change))).buckets == buckets


# -- the property ----------------------------------------------------------------------------

TAG_SETS: tuple[dict[str, str] | None, ...] = (None, {}, {"team": "x"}, {"team": "y"})
"""What a bucket's tags may be: unread (None), none, or one of the fleet's two teams."""


def desired_state(definitions: Definitions, name: str, tags: dict[str, str] | None) -> object:
    """What the cycle plans ``name`` against (engine/fleet.wanted and engine/candidates), as a
    comparable value: invalid with its problems, unmanaged, or the combination with the picture."""
    if name in definitions.invalid:
        return ("invalid", definitions.invalid[name])
    exact = definitions.buckets.get(name)
    selected = with_tags(Matcher(definitions.selectors).match(name), tags)
    combined = combine(name, exact, selected)
    if combined is None:
        return ("unmanaged",)
    scopes = (exact.scope if exact is not None else None, tuple(m.selector.scope for m in selected))
    return (definitions.partial, combined, scopes)


def may_differ(found: Changes, name: str, tags: dict[str, str] | None) -> bool:
    """What changes() says of ``name``: named, or selected by a changed selector's version
    (its tags checked when known, as engine/targets does)."""
    if found.everything is not None or name in found.buckets:
        return True
    matches = Matcher(found.selectors).match(name)
    return any(tags is None or tags_match(m.selector, tags) for m in matches)


@given(fleet_changes())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_bucket_whose_desired_state_differs_is_affected(files: tuple[dict[str, bytes], dict[str, bytes]]) -> None:
    old_files, new_files = files
    old, new = loaded(old_files), loaded(new_files, etag="v2")
    found = changes(old, new)
    for name in FLEET_BUCKETS:
        for tags in TAG_SETS:
            if desired_state(old, name, tags) != desired_state(new, name, tags):
                assert may_differ(found, name, tags), (name, tags, found)


@given(fleet_changes())
@settings(max_examples=150, deadline=None)
def test_without_briefs_every_bucket_whose_desired_state_differs_is_affected(
    files: tuple[dict[str, bytes], dict[str, bytes]],
) -> None:
    old, new = load_definitions(files[0]), load_definitions(files[1])
    found = changes(old, new)
    for name in FLEET_BUCKETS:
        for tags in TAG_SETS:
            if desired_state(old, name, tags) != desired_state(new, name, tags):
                assert may_differ(found, name, tags), (name, tags, found)


@given(st.dictionaries(st.sampled_from(("f1.toml", "f2.toml")), st.sampled_from(tuple(BASE.values()))))
@settings(max_examples=50, deadline=None)
def test_a_reload_of_the_same_files_affects_nothing(files: dict[str, bytes]) -> None:
    assert changes(loaded(files), loaded(files, etag="v2")).nothing
