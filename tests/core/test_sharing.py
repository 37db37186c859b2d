"""Sharing the accounts among replicas (core/sharing.py): shares, stability, takeover."""

from __future__ import annotations

import math

import pytest

from lakecircle.core.sharing import Standing, ranking, share, wanted

ACCOUNTS = [f"{n:012d}" for n in range(1, 11)]
D = 30.0


def free(accounts: list[str], free_for: float = 0.0) -> dict[str, Standing]:
    return {a: Standing(held=False, free=True, free_for=free_for) for a in accounts}


def test_every_replica_ranks_an_accounts_replicas_alike_whatever_order_it_sees_them_in() -> None:
    assert ranking("111111111111", ["a", "b", "c"]) == ranking("111111111111", ["c", "a", "b"])


@pytest.mark.parametrize(
    ("accounts", "replicas", "expected"), [(10, 2, 5), (10, 3, 4), (1, 2, 1), (0, 2, 0), (5, 0, 5)]
)
def test_a_share_is_the_accounts_over_the_replicas_rounded_up(accounts: int, replicas: int, expected: int) -> None:
    assert share(accounts, replicas) == expected


def test_two_replicas_starting_together_split_ten_accounts_five_and_five_without_talking() -> None:
    live = ["pod-a", "pod-b"]
    a = wanted("pod-a", live, free(ACCOUNTS), D)
    b = wanted("pod-b", live, free(ACCOUNTS), D)
    assert not a & b
    assert abs(len(a) - len(b)) <= 2
    assert len(a) + len(b) <= 10


def test_free_accounts_another_replica_prefers_are_left_to_it_for_a_duration_then_taken() -> None:
    live = ["pod-a", "pod-b"]
    theirs = [a for a in ACCOUNTS if ranking(a, live)[0] == "pod-b"]
    assert not wanted("pod-a", live, free(theirs), D)
    assert wanted("pod-a", live, free(theirs, free_for=D), D) == frozenset(theirs[: share(len(theirs), 2)])


def test_a_replica_never_wants_more_than_its_share() -> None:
    standings = free(ACCOUNTS, free_for=D)
    for replicas in (1, 2, 3, 4):
        live = [f"pod-{n}" for n in range(replicas)]
        assert len(wanted("pod-0", live, standings, D)) <= math.ceil(10 / replicas)


def test_a_holder_over_its_share_when_a_replica_joins_gives_back_the_accounts_the_newcomer_prefers() -> None:
    held = {a: Standing(held=True, free=False) for a in ACCOUNTS}
    kept = wanted("pod-a", ["pod-a", "pod-b"], held, D)
    assert len(kept) == 5
    given_back = set(ACCOUNTS) - kept
    preferred_by_b = {a for a in ACCOUNTS if ranking(a, ["pod-a", "pod-b"])[0] == "pod-b"}
    assert given_back <= preferred_by_b or preferred_by_b <= given_back


def test_a_dead_replicas_accounts_are_taken_by_the_survivor() -> None:
    standings = free(ACCOUNTS[:5]) | {a: Standing(held=True, free=False) for a in ACCOUNTS[5:]}
    assert wanted("pod-a", ["pod-a"], standings, D) == frozenset(ACCOUNTS)


def test_when_a_replica_leaves_only_its_accounts_move() -> None:
    three = ["pod-a", "pod-b", "pod-c"]
    before = {a: ranking(a, three)[0] for a in ACCOUNTS}
    after = {a: ranking(a, ["pod-a", "pod-b"])[0] for a in ACCOUNTS}
    moved = {a for a in ACCOUNTS if before[a] != after[a]}
    assert moved == {a for a in ACCOUNTS if before[a] == "pod-c"}
