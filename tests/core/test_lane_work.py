"""What a hub's lane keeps when a request comes while another waits (core/lane_work.py): a slice
never replaces a pass or a change, a pass covers everything, a change and a listing owed together
are both kept."""

from __future__ import annotations

import pytest

from lakecircle.core.lane_work import Work, merged

W = Work

TABLE = [
    # (pending, new, kept); None kept: the new request is refused, the pending one stays
    (None, W.SLICE, W.SLICE),
    (None, W.FULL, W.FULL),
    (W.SLICE, W.SLICE, W.SLICE),
    (W.SLICE, W.LISTING, W.LISTING),
    (W.SLICE, W.CHANGED, W.CHANGED),
    (W.SLICE, W.FULL, W.FULL),
    (W.FULL, W.SLICE, None),
    (W.LISTING, W.SLICE, None),
    (W.CHANGED, W.SLICE, None),
    (W.CHANGED_LISTING, W.SLICE, None),
    (W.CYCLE, W.SLICE, None),
    (W.FULL, W.LISTING, W.FULL),
    (W.FULL, W.CHANGED, W.FULL),
    (W.LISTING, W.FULL, W.FULL),
    (W.CHANGED, W.FULL, W.FULL),
    (W.CHANGED, W.LISTING, W.CHANGED_LISTING),
    (W.LISTING, W.CHANGED, W.CHANGED_LISTING),
    (W.CHANGED_LISTING, W.LISTING, W.CHANGED_LISTING),
    (W.CHANGED_LISTING, W.CHANGED, W.CHANGED_LISTING),
    (W.CHANGED_LISTING, W.FULL, W.FULL),
    (W.LISTING, W.LISTING, W.LISTING),
    (W.CHANGED, W.CHANGED, W.CHANGED),
    (W.CYCLE, W.CYCLE, W.CYCLE),
]


@pytest.mark.parametrize(("pending", "new", "kept"), TABLE)
def test_a_request_merges_with_the_one_waiting_into_the_work_that_leaves_nothing_owed(
    pending: Work | None, new: Work, kept: Work | None
) -> None:
    assert merged(pending, new) is kept


def test_every_pair_of_works_has_an_answer_and_a_slice_is_never_kept_over_other_work() -> None:
    for pending in Work:
        for new in Work:
            kept = merged(pending, new)
            if Work.SLICE in (pending, new) and {pending, new} != {Work.SLICE}:
                assert kept is not Work.SLICE
