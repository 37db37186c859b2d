"""The buckets of an account a definition change may affect (engine/targets.py): changed
selectors evaluated against the listed names as the cycle evaluates them, tag selectors
narrowed by the tags known, BucketName changes looked up without a scan."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from lakecircle.core.definitions import Definitions
from lakecircle.core.selectors import Matcher
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.tags import TagCache
from lakecircle.engine.targets import affected, selected_by
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, fleet, rule, selector
from tests.core.test_targets import BASE, BROKEN, TAG_SETS, desired_state, loaded
from tests.strategies import FLEET_BUCKETS, fleet_changes

NAMES = frozenset({"app-data", "app-logs", "web-data", "web-logs", "legal-logs", "db-logs", "other"})


def with_files(change: Mapping[str, bytes | None]) -> Definitions:
    files = dict(BASE)
    for name, data in change.items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    return loaded(files, etag="v2")


def load_twice(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> tuple[Definitions, Definitions]:
    """The definitions the daemon's loader gives for ``old``, then for ``new`` (unchanged files
    from its cache: the very same briefs)."""
    s3 = MemoryS3()
    loader = DefinitionLoader(s3)

    async def load(files: Mapping[str, bytes]) -> Definitions:
        s3.objects = {f"definition/{name}": data for name, data in files.items()}
        return (await loader.load()).definitions

    async def both() -> tuple[Definitions, Definitions]:
        return await load(old), await load(new)

    return anyio.run(both)


def tag_cache(tags: Mapping[str, dict[str, str]]) -> TagCache:
    """A tag cache that has read the tags of the buckets ``tags`` holds (the others unread)."""
    s3 = MemoryS3()
    for name, found in tags.items():
        s3.add_bucket(name, tags=found)
    cache = TagCache(s3)

    async def read() -> None:
        for name in tags:
            await cache.get(BucketRef(name))

    anyio.run(read)
    return cache


class Unscannable(frozenset[str]):
    """Names that may be looked up but not walked through."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the names were scanned")


def test_an_unchanged_reload_affects_no_bucket() -> None:
    assert affected(loaded(BASE), loaded(BASE, etag="v2"), NAMES) == set()
    assert affected(*load_twice(BASE, BASE), Unscannable(NAMES)) == set()


def test_one_file_changed_among_the_loaders_cached_files_affects_its_buckets() -> None:
    many = dict(BASE) | {f"b{i:03}.toml": definition(f"bucket-{i:03}", rule()) for i in range(200)}
    changed = many | {"b100.toml": definition("bucket-100", rule(days=31))}
    assert affected(*load_twice(many, changed), NAMES | {"bucket-100"}) == {"bucket-100"}
    fewer = {name: data for name, data in many.items() if name not in ("app-data.toml", "tagged.toml")}
    assert affected(*load_twice(many, fewer), NAMES) == {"app-data", "app-logs"}


def test_a_bucket_name_change_is_looked_up_without_scanning_the_names() -> None:
    new = with_files({"app-data.toml": definition("app-data", rule("keep", 31))})
    assert affected(loaded(BASE), new, Unscannable(NAMES)) == {"app-data"}


def test_a_defined_bucket_the_account_does_not_hold_is_left_out() -> None:
    new = with_files({"new.toml": definition("not-listed", rule())})
    assert affected(loaded(BASE), new, NAMES) == set()


def test_a_widened_pattern_affects_what_either_version_selects() -> None:
    new = with_files({"fleet.toml": fleet(["web-*"], rule("expire-logs", 10))})
    assert affected(loaded(BASE), new, NAMES) == {"app-logs", "web-logs", "legal-logs", "db-logs", "web-data"}


def test_a_bucket_exclude_leaves_out_what_the_cycle_leaves_out() -> None:
    new = with_files({"fleet.toml": fleet(["*-logs"], rule("expire-logs", 10), BucketExclude=["legal-*"])})
    assert affected(loaded(BASE), new, NAMES) == {"app-logs", "web-logs", "legal-logs", "db-logs"}
    newer = fleet(["*-logs"], rule("expire-logs", 11), BucketExclude=["legal-*"])
    assert affected(new, with_files({"fleet.toml": newer}), NAMES) == {"app-logs", "web-logs", "db-logs"}


def test_known_tags_narrow_a_tag_selector_and_unknown_tags_do_not() -> None:
    new = with_files({"tagged.toml": fleet(["app-*"], rule("class", 6), BucketTags={"team": "x"})})
    tags = tag_cache({"app-data": {"team": "y"}})  # app-logs: not read
    assert affected(loaded(BASE), new, NAMES, tags) == {"app-logs"}
    assert affected(loaded(BASE), new, NAMES) == {"app-data", "app-logs"}


def test_a_tag_change_affects_buckets_carrying_the_old_or_the_new_tags() -> None:
    new = with_files({"tagged.toml": fleet(["app-*"], rule("class", 5), BucketTags={"team": "y"})})
    tags = tag_cache({"app-data": {"team": "y"}, "app-logs": {"team": "z"}})
    assert affected(loaded(BASE), new, NAMES, tags) == {"app-data"}


def test_a_changed_selector_of_every_name_is_everything() -> None:
    new = with_files({"base.toml": fleet(["*"], rule("base", 3))})
    assert affected(loaded(BASE), new, Unscannable(NAMES)) is None


def test_a_changed_selector_of_exact_names_looks_them_up_without_a_scan() -> None:
    new = with_files({"exact.toml": fleet(["web-data", "nowhere"], rule("base", 3))})
    assert affected(loaded(BASE), new, Unscannable(NAMES)) == {"web-data"}


def test_a_pattern_without_a_literal_tries_every_name() -> None:
    new = with_files({"short.toml": fleet(["?????"], rule("base", 3))})
    assert affected(loaded(BASE), new, NAMES) == {"other"}


def test_a_selector_of_every_name_but_some_is_matched_name_by_name() -> None:
    new = with_files({"base.toml": fleet(["*"], rule("base", 3), BucketExclude=["*-logs"])})
    assert affected(loaded(BASE), new, NAMES) == {"app-data", "web-data", "other"}


def test_the_picture_turning_partial_is_everything() -> None:
    assert affected(loaded(BASE), with_files({"broken.toml": BROKEN}), NAMES) is None


PATTERN = st.text(alphabet="ab-*?", min_size=1, max_size=5) | st.sampled_from(("[ab]*", "*[!a]", "a[b-]?*", "[*", "*]"))


@given(
    st.lists(st.tuples(st.lists(PATTERN, min_size=1, max_size=3), st.lists(PATTERN, max_size=2)), min_size=1),
    st.lists(st.text(alphabet="ab-", min_size=1, max_size=6), max_size=30),
)
@settings(max_examples=300, deadline=None)
def test_names_are_selected_as_the_cycles_matcher_selects_them(
    drawn: list[tuple[list[str], list[str]]], names: list[str]
) -> None:
    selectors = [
        selector(*match, exclude=tuple(exclude), file=f"f{i}.toml") for i, (match, exclude) in enumerate(drawn)
    ]
    found = selected_by(selectors, set(names), None)
    expected = {name for name in names if Matcher(selectors).match(name)}
    assert found is None or found == expected
    if found is None:
        assert expected == set(names)


@given(
    fleet_changes(), st.lists(st.sampled_from(TAG_SETS[1:]), min_size=len(FLEET_BUCKETS), max_size=len(FLEET_BUCKETS))
)
@settings(max_examples=200, deadline=None)
def test_every_listed_bucket_whose_desired_state_differs_is_affected(
    files: tuple[dict[str, bytes], dict[str, bytes]], tags: list[dict[str, str]]
) -> None:
    """Half the buckets' tags known (the others may carry any), the names those listed."""
    old, new = load_twice(*files)
    known = {name: found for name, found in zip(FLEET_BUCKETS[::2], tags, strict=False) if found is not None}
    result = affected(old, new, frozenset(FLEET_BUCKETS), tag_cache(known))
    for name in FLEET_BUCKETS:
        for maybe in (known[name],) if name in known else TAG_SETS:
            if desired_state(old, name, maybe) != desired_state(new, name, maybe):
                assert result is None or name in result, (name, maybe, result)
