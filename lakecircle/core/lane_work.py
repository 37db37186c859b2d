"""What one account's lane is asked to do in a hub (issue 18), and what a pending request becomes
when another comes before it started.

A lane runs one account's cycles one at a time and keeps at most one request waiting
(:mod:`lakecircle.engine.lanes`). With continuous verification the requests are not all alike:
a slice of the buckets due must never push out a pass or a definition change waiting its turn
(the slice's buckets are due again at the next tick; a lost pass would not come back), while a
pass over the account covers a slice, a listing pass and a change alike. Two requests merge into
the work that leaves nothing owed; this module says which, as a table, without I/O.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Work", "merged"]


class Work(StrEnum):
    """What a request asks of an account."""

    CYCLE = "cycle"
    """A whole cycle (the commands; a hub without continuous verification)."""
    FULL = "full"
    """A full pass: list the account and read every managed bucket (start-up, SIGHUP)."""
    LISTING = "listing"
    """A listing pass: list the account, read no bucket (a resync)."""
    CHANGED = "changed"
    """Changed definitions: verify the buckets the change may affect (targeted reconcile)."""
    CHANGED_LISTING = "changed_listing"
    """A change and a listing owed together: the affected buckets made due at once, then a listing pass."""
    SLICE = "slice"
    """A slice of the buckets due (every tick)."""


_RANK = {Work.SLICE: 0, Work.LISTING: 1, Work.CHANGED: 1, Work.CHANGED_LISTING: 2, Work.FULL: 3, Work.CYCLE: 3}


def merged(pending: Work | None, new: Work) -> Work | None:
    """The work a lane keeps when ``new`` comes while ``pending`` waits (None: nothing waits).

    None means ``new`` is refused and ``pending`` stays as it is (a slice never replaces a
    pass, a listing pass or a change). Otherwise the request kept is the newest (its definitions
    are the newest) with the returned work: the larger of the two, a change and a listing pass
    owed together becoming :attr:`Work.CHANGED_LISTING`.
    """
    if pending is None or pending is Work.SLICE:
        return new
    if new is Work.SLICE:
        return None
    if {pending, new} == {Work.CHANGED, Work.LISTING}:
        return Work.CHANGED_LISTING
    return pending if _RANK[pending] > _RANK[new] else new
