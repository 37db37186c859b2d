"""The selector matcher and the tag filter, table by table, and the matcher against fnmatch."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecircle.core.selectors import Matcher, Selector, Source, needing_tags, tags_match, with_tags
from tests.builders import selector

# --- names and patterns --------------------------------------------------------------------

MatchCase = tuple[list[Selector], str, list[tuple[int, str]]]
"""The selectors, a bucket name, and the (index, pattern) of each selector that selects it."""

MATCH_CASES = [
    pytest.param([selector("logs")], "logs", [(0, "logs")], id="a pattern equal to the name matches it"),
    pytest.param([selector("logs")], "logs-1", [], id="a pattern without wildcards matches only the whole name"),
    pytest.param([selector("logs-*")], "logs-", [(0, "logs-*")], id="a star matches nothing at all too"),
    pytest.param([selector("*-logs")], "a-logs-1", [], id="a suffix pattern must reach the end of the name"),
    pytest.param([selector("*")], "any-bucket", [(0, "*")], id="a lone star matches every name"),
    pytest.param([selector("*", exclude=("legal-*",))], "legal-1", [], id="a star with an exclusion leaves it out"),
    pytest.param(
        [selector("*", exclude=("legal-*",))], "logs-1", [(0, "*")], id="a star with an exclusion keeps the rest"
    ),
    pytest.param(
        [selector("*-logs", exclude=("prod-*",))], "prod-logs", [], id="an exclusion wins over a match of the same name"
    ),
    pytest.param(
        [selector("*-logs", exclude=("prod-logs",)), selector("prod-*")],
        "prod-logs",
        [(1, "prod-*")],
        id="an exclusion leaves out its own selector only",
    ),
    pytest.param([selector("log?")], "logs", [(0, "log?")], id="a question mark matches one character"),
    pytest.param([selector("log?")], "log", [], id="a question mark does not match no character"),
    pytest.param([selector("log?")], "logss", [], id="a question mark does not match two characters"),
    pytest.param([selector("shard-[0-9]")], "shard-7", [(0, "shard-[0-9]")], id="a set matches a character in it"),
    pytest.param([selector("shard-[0-9]")], "shard-x", [], id="a set does not match a character outside it"),
    pytest.param([selector("[!a]*")], "abc", [], id="a negated set does not match a character in it"),
    pytest.param([selector("[!a]*")], "bcd", [(0, "[!a]*")], id="a negated set matches a character outside it"),
    pytest.param([selector("a.b")], "axb", [], id="a dot is a literal dot"),
    pytest.param([selector("a.b")], "a.b", [(0, "a.b")], id="a dot matches a dot"),
    pytest.param([selector("a[b")], "a[b", [(0, "a[b")], id="an unclosed bracket is a literal bracket"),
    pytest.param([selector("logs-*")], "LOGS-1", [], id="matching is case-sensitive"),
    pytest.param([selector("*-logs-*")], "team-logs-eu", [(0, "*-logs-*")], id="an inner literal matches inside"),
    pytest.param([selector("*-logs-*")], "team-logs", [], id="an inner literal pattern still needs its stars' sides"),
    pytest.param([selector("*-[0-9]")], "team-7", [(0, "*-[0-9]")], id="a set at the end after a star matches"),
    pytest.param([selector("?*")], "a", [(0, "?*")], id="a pattern without literal text is tried on every name"),
    pytest.param(
        [selector("team-?-*.log")], "team-a-x.log", [(0, "team-?-*.log")], id="a prefix with wildcards after it matches"
    ),
    pytest.param([selector("team-?-*.log")], "team-ab-x.log", [], id="a prefix pattern is confirmed whole"),
    pytest.param(
        [selector("x-*", "*-y")], "x-y", [(0, "x-*")], id="the first pattern that matches is the one reported"
    ),
    pytest.param([selector("x-*", "*-y")], "z-y", [(0, "*-y")], id="a later pattern is reported when it alone matches"),
    pytest.param(
        [selector("b-*"), selector("*"), selector("b-1")],
        "b-1",
        [(0, "b-*"), (1, "*"), (2, "b-1")],
        id="every selector that matches is reported once in the order given",
    ),
    pytest.param([selector("ab*ba")], "aba", [], id="a prefix and a suffix may not overlap in the name"),
    pytest.param(
        [selector("a*"), selector("ab*"), selector("abc*"), selector("abd*")],
        "abcz",
        [(0, "a*"), (1, "ab*"), (2, "abc*")],
        id="nested prefixes all match a name that begins with each",
    ),
    pytest.param(
        [selector("a*"), selector("ab*"), selector("abz*")],
        "abx",
        [(0, "a*"), (1, "ab*")],
        id="a prefix sorted between the name and its own prefixes does not hide them",
    ),
    pytest.param(
        [selector("*s"), selector("*gs"), selector("*logs"), selector("*ogz")],
        "web-logs",
        [(0, "*s"), (1, "*gs"), (2, "*logs")],
        id="nested suffixes all match a name that ends with each",
    ),
    pytest.param(
        [selector("*"), selector("lcc-*")], "lcc-probe-0123456789ab", [], id="the server probe's scratch bucket: none"
    ),
    pytest.param([selector("lcc-*")], "lcc-probe-data", [(0, "lcc-*")], id="a bucket only named like it is selected"),
]


@pytest.mark.parametrize(("selectors", "name", "expected"), MATCH_CASES)
def test_matcher_selects_by_name(selectors: list[Selector], name: str, expected: list[tuple[int, str]]) -> None:
    found = Matcher(selectors).match(name)
    assert [(m.index, m.pattern) for m in found] == expected
    for m in found:
        assert m.selector is selectors[m.index]
        assert m.source == Source(selectors[m.index].file, selectors[m.index].label, m.pattern)


def test_a_selector_s_source_is_one_value_for_every_bucket_it_selects() -> None:
    matcher = Matcher([selector("team-*", file="fleet/teams.toml", where="Bucket[2].")])
    first, second = matcher.match("team-a"), matcher.match("team-b")
    assert first[0].source is second[0].source
    assert first[0].source == Source("fleet/teams.toml", "fleet/teams.toml Bucket[2]", "team-*")


def test_a_matcher_without_tag_selectors_says_so() -> None:
    assert not Matcher([selector("*")]).uses_tags
    assert Matcher([selector("*"), selector("*", tags={"a": "1"})]).uses_tags


# --- tags --------------------------------------------------------------------------------------

TAG_CASES = [
    pytest.param({}, {}, True, id="a selector without tags matches a bucket without tags"),
    pytest.param({}, {"team": "a"}, True, id="a selector without tags matches a bucket with tags"),
    pytest.param({"retention": "1y"}, {"retention": "1y"}, True, id="the same tags match"),
    pytest.param({"retention": "1y"}, {"retention": "1y", "team": "a"}, True, id="extra tags on the bucket match"),
    pytest.param({"retention": "1y"}, {"retention": "2y"}, False, id="a different value does not match"),
    pytest.param({"retention": "1y"}, {"Retention": "1y"}, False, id="tag keys are case-sensitive"),
    pytest.param({"retention": "1y"}, {}, False, id="a missing tag does not match"),
    pytest.param({"a": "1", "b": "2"}, {"a": "1"}, False, id="every one of the selector's tags is needed"),
    pytest.param({"a": ""}, {"a": ""}, True, id="an empty value matches an empty value"),
]


@pytest.mark.parametrize(("wanted", "tags", "expected"), TAG_CASES)
def test_tags_match_needs_every_tag_of_the_selector(
    wanted: dict[str, str], tags: dict[str, str], expected: bool
) -> None:
    assert tags_match(selector("*", tags=wanted), tags) is expected


def test_tags_are_needed_only_for_name_matches_of_tag_selectors() -> None:
    matcher = Matcher([selector("*"), selector("*-logs", tags={"r": "1y"}), selector("*-data", tags={"r": "2y"})])
    assert [m.index for m in needing_tags(matcher.match("a-logs"))] == [1]
    assert needing_tags(matcher.match("a-other")) == ()


WITH_TAGS_CASES = [
    pytest.param({"r": "1y"}, [0, 1], id="known tags keep the plain selectors and the tag selectors they satisfy"),
    pytest.param({"r": "2y"}, [0], id="known tags leave out the tag selectors they do not satisfy"),
    pytest.param(None, [0], id="unknown tags keep only the selectors without tags"),
]


@pytest.mark.parametrize(("tags", "expected"), WITH_TAGS_CASES)
def test_with_tags_filters_the_name_matches(tags: dict[str, str] | None, expected: list[int]) -> None:
    matcher = Matcher([selector("*"), selector("*", tags={"r": "1y"})])
    assert [m.index for m in with_tags(matcher.match("b"), tags)] == expected


# --- the index agrees with fnmatch -------------------------------------------------------

GLOB_PARTS = st.sampled_from(["a", "b", "-", ".", "*", "?", "[", "]", "!", "[ab]", "[!a]", "[]a]", "[a-b]", "ab"])
patterns = st.lists(GLOB_PARTS, max_size=6).map("".join)
names = st.text(st.sampled_from("ab-.]["), max_size=7)
selector_specs = st.lists(
    st.tuples(st.lists(patterns, min_size=1, max_size=3), st.lists(patterns, max_size=2)), min_size=1, max_size=6
)


@given(selector_specs, st.lists(names, min_size=1, max_size=10))
def test_the_indexed_matcher_agrees_with_fnmatchcase(
    specs: list[tuple[list[str], list[str]]], bucket_names: list[str]
) -> None:
    selectors = [selector(*match, exclude=tuple(exclude)) for match, exclude in specs]
    matcher = Matcher(selectors)
    for name in bucket_names:
        expected = []
        for index, (match, exclude) in enumerate(specs):
            first = next((p for p in match if fnmatch.fnmatchcase(name, p)), None)
            if first is not None and not any(fnmatch.fnmatchcase(name, p) for p in exclude):
                expected.append((index, first))
        assert [(m.index, m.pattern) for m in matcher.match(name)] == expected, name
