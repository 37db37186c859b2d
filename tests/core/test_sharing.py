"""Sharing the accounts among replicas (core/sharing.py): shares, stability, takeover."""

from __future__ import annotations

import math

import pytest

from lakecircle.core.lease_body import LeaseBody, encode
from lakecircle.core.sharing import Peers, Standing, ranking, share, wanted
from lakecircle.ports import Versioned

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


# -- who is live: the peers' heartbeats (Peers) ---------------------------------------------------

Step = tuple[str, ...]
"""``("list", "b=e1 c=e2")``: a listing of the heartbeats (replica=ETag); ``("read", "b=e1")``: pod-b's
body read at that ETag, not released; ``("read", "b=e1 released")``: released. Each step is
D / 3 after the one before it, as the replicas list every third of a duration."""


def peers_after(steps: list[Step], *, reads_answered: bool = True) -> tuple[Peers, float]:
    """pod-a's view after ``steps``; with ``reads_answered`` every body a listing asks for is read
    (not released) before the next step. Returns the view and the time of the last step."""
    peers, now = Peers("pod-a", D), 0.0
    for kind, what in steps:
        now += D / 3
        if kind == "list":
            listing = dict(pair.split("=") for pair in what.split())
            unread = peers.listed(listing, now)
            if reads_answered:
                for name in unread:
                    peers.read(name, Versioned(beat(name), listing[name]), now)
        else:
            name_etag, *released = what.split()
            name, etag = name_etag.split("=")
            peers.read(name, Versioned(beat(name, released=bool(released)), etag), now)
    return peers, now


def beat(name: str, *, released: bool = False, duration: float = D) -> bytes:
    return encode(LeaseBody(name, 1, 1.0, 2.0, duration, released=released))


@pytest.mark.parametrize(
    ("case", "steps", "live"),
    [
        ("a heartbeat seen once does not count yet", [("list", "b=e1")], set()),
        ("a heartbeat seen to change counts", [("list", "b=e1"), ("list", "b=e2")], {"b"}),
        ("this replica's own heartbeat is no peer", [("list", "pod-a=e1"), ("list", "pod-a=e2")], set()),
        (
            "a crashed pod's heartbeat never counts, at start or later",
            [("list", "old=e0 b=e1"), ("list", "old=e0 b=e2"), ("list", "old=e0 b=e3"), ("list", "old=e0 b=e4")],
            {"b"},
        ),
        (
            "a heartbeat that stood still a whole duration stops counting",
            [("list", "b=e1"), ("list", "b=e2"), ("list", "b=e2"), ("list", "b=e2"), ("list", "b=e2")],
            set(),
        ),
        ("a released heartbeat never counts", [("list", "b=e1"), ("list", "b=e2"), ("read", "b=e2 released")], set()),
        (
            "a replica back after its heartbeat was found free counts at the first listing that shows it written",
            [("list", "b=e1"), ("list", "b=e2"), *[("list", "b=e2")] * 6, ("list", "b=e3")],
            {"b"},
        ),
        (
            "a heartbeat found released and written again counts at once",
            [("list", "b=e1"), ("read", "b=e1 released"), ("list", "b=e2")],
            {"b"},
        ),
        (
            "a heartbeat deleted and created again is new: it must change to count",
            [("list", "b=e1"), ("list", "b=e2"), ("list", ""), ("list", "b=e3")],
            set(),
        ),
        ("a listing and a read that spell one ETag apart agree", [("list", 'b="e1"'), ("read", "b=e1")], set()),
        ("a read at an ETag newer than the listing's is a change", [("list", "b=e1"), ("read", "b=e2")], {"b"}),
    ],
)
def test_who_counts_as_a_live_replica(case: str, steps: list[Step], live: set[str]) -> None:
    peers, now = peers_after(steps)
    assert peers.live(now) == live, case


def test_a_heartbeat_found_free_is_not_read_again_while_its_etag_stays() -> None:
    peers, now = peers_after([("list", "old=e0"), *[("list", "old=e0")] * 4])
    assert peers.watched == frozenset()  # free by the ETag rule: remembered at e0, not watched
    assert peers.listed({"old": "e0"}, now + D) == []
    assert peers.listed({"old": "e1"}, now + D) == ["old"]  # written anew: read, to know whether it runs


def test_a_heartbeat_is_read_once_per_etag() -> None:
    peers = Peers("pod-a", D)
    assert peers.listed({"b": "e1"}, 0.0) == ["b"]
    peers.read("b", Versioned(beat("b"), "e1"), 0.0)
    assert peers.listed({"b": "e1"}, D / 3) == []
    assert peers.listed({"b": "e2"}, 2 * D / 3) == ["b"]


def test_a_changed_heartbeat_whose_new_body_could_not_be_read_still_counts_as_before() -> None:
    peers, now = peers_after([("list", "b=e1"), ("list", "b=e2")])
    assert peers.listed({"b": "e3"}, now + D / 3) == ["b"]  # the read of e3 fails: nothing fed back
    assert peers.live(now + D / 3) == {"b"}


def test_a_heartbeat_lasts_its_own_duration_not_this_replicas() -> None:
    peers = Peers("pod-a", D)
    peers.listed({"b": "e1"}, 0.0)
    peers.read("b", Versioned(beat("b", duration=10 * D), "e2"), 0.0)
    assert peers.live(5 * D) == {"b"}
    assert peers.live(10 * D) == frozenset()


def test_a_live_replica_is_counted_at_the_first_listing_after_its_first_renewal_and_dropped_when_it_releases() -> None:
    peers = Peers("pod-a", D)
    peers.read("b", None, 0.0)  # nothing known yet: nothing happens
    assert peers.listed({"b": "e1"}, 0.0) == ["b"]
    peers.read("b", Versioned(beat("b"), "e1"), 0.01)
    assert peers.live(0.01) == frozenset()
    assert peers.listed({"b": "e2"}, D / 3) == ["b"]
    assert peers.live(D / 3) == {"b"}  # renewed (its body is read to know it is not a release)
    peers.read("b", Versioned(beat("b", released=True), "e2"), D / 3)
    assert peers.live(D / 3) == frozenset()
