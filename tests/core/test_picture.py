"""The picture of an account's buckets by state, as continuous verification keeps it."""

from __future__ import annotations

from collections import Counter

import pytest

from lakecircle.core.picture import StatePicture
from lakecircle.core.report import BucketState as S


@pytest.mark.parametrize(
    ("steps", "scheduled", "expected", "dropped"),
    [
        ([], 10, {S.IN_SYNC: 10}, 0),
        ([("a", S.FAILED, False)], 10, {S.IN_SYNC: 9, S.FAILED: 1}, 0),
        ([("a", S.FAILED, False), ("a", S.IN_SYNC, False)], 10, {S.IN_SYNC: 10}, 0),
        ([("a", S.CHANGED, True)], 3, {S.IN_SYNC: 2, S.CHANGED: 1}, 1),
        ([("a", S.CHANGED, True), ("a", S.FAILED, False)], 3, {S.IN_SYNC: 2, S.FAILED: 1}, 1),  # a failure says nothing
        ([("a", S.CHANGED, True), ("a", S.IN_SYNC, False)], 3, {S.IN_SYNC: 3}, 0),
        ([("a", S.DRIFTED, False), ("b", S.DRIFTED, False)], 2, {S.DRIFTED: 2}, 0),
    ],
)
def test_each_bucket_counts_by_its_last_state(
    steps: list[tuple[str, S, bool]], scheduled: int, expected: dict[S, int], dropped: int
) -> None:
    picture = StatePicture()
    for name, state, lost in steps:
        picture.set(name, state, dropped=lost)
    assert picture.of(scheduled).counts == expected
    assert picture.of(scheduled).dropped == dropped


def test_a_forgotten_bucket_counts_no_more_and_the_last_pass_judges_the_others() -> None:
    picture = StatePicture()
    picture.set("a", S.FAILED, dropped=True)
    picture.forget("a")
    picture.judged(Counter({S.MISSING: 2, S.UNMANAGED: 5, S.IN_SYNC: 99}))
    assert picture.of(4).counts == {S.IN_SYNC: 4, S.MISSING: 2, S.UNMANAGED: 5}
    assert picture.of(4).dropped == 0
