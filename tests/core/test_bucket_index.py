"""Continuous verification's index of the listed buckets: listings, events, and what leaves it."""

from __future__ import annotations

from lakecircle.core.bucket_index import BucketIndex


def listed(index: BucketIndex, *names: str, whole: bool = True) -> tuple[list[str], set[str]]:
    index.listing_begins()
    for name in names:
        index.listed(name, "eu-west-1")
    return index.listing_ended(whole=whole)


def test_a_whole_listing_replaces_the_index_and_says_what_left() -> None:
    index = BucketIndex()
    listed(index, "a", "b")
    gone, _ = listed(index, "b", "c")
    assert gone == ["a"]
    assert sorted(index.regions) == ["b", "c"]
    assert index.regions["b"] is index.regions["c"]  # one string per region


def test_a_listing_cut_short_only_adds() -> None:
    index = BucketIndex()
    listed(index, "a", "b")
    gone, _ = listed(index, "c", whole=False)
    assert gone == []
    assert sorted(index.regions) == ["a", "b", "c"]


def test_an_events_bucket_is_unconfirmed_until_a_listing_holds_it_and_kept_if_it_came_during_one() -> None:
    index = BucketIndex()
    listed(index, "a")
    index.announced(["new"])
    assert index.unconfirmed("new")
    index.listing_begins()
    index.listed("a", None)
    index.announced(["newer"])  # created after the listing passed its page
    gone, during = index.listing_ended(whole=True)
    assert gone == ["new"]
    assert during == {"newer"}
    assert sorted(index.regions) == ["a", "newer"]
    assert index.unconfirmed("newer")
    index.drop("newer")
    assert not index.unconfirmed("newer")
    assert "newer" not in index.regions
