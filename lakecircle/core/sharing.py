"""How replicas share the accounts: which account leases this replica should want.

With N live replicas and M accounts, each replica wants at most ⌈M/N⌉ leases. Which ones is
decided by rendezvous hashing (highest random weight): every replica ranks the live replicas
for an account by a hash of (account, replica), and the first in that ranking is the account's
preferred holder. Every replica computes the same ranking from the same set of live replicas,
without talking to the others, and when a replica joins or leaves only the accounts it ranks
first for (about M/N of them) move: the rest stay where they are.

A replica wants:

1. the accounts it holds, up to its share, keeping the ones it ranks best for (a holder
   over its share, which happens when a replica joins, gives back the rest once their
   cycles end);
2. free accounts it is the preferred holder of, while under its share;
3. any other free account that has stayed free for a whole lease duration (its preferred
   holder did not take it: it may not see the lease yet, or be at its share), while under
   its share.

So a dead replica's accounts are taken within two lease durations: one for its lease to
expire by the ETag rule (and its heartbeat with it, which removes it from the live set), and
at most one more. The bound in the issue (never more than ⌈M/N⌉ + 1 once every replica has
been seen for a duration) holds because a replica never wants more than its share of the
replicas it sees; the + 1 is a lease taken while a replica that just joined was not yet seen,
given back at the next decision.

Who is live comes from the replicas' heartbeats (``lease/replicas/<replica>.json``, each renewed
every third of a duration like any lease), as :class:`Peers` reads them from listings (key and
ETag) and from the body of each ETag not read yet. A heartbeat left by a pod that crashed is never
renewed again: it must never count, or every live replica would give back leases for a replica
that is not there (at every start, and each time it is looked at again). So a peer counts as live
only once this replica has seen its heartbeat *change* since it started watching it, and only
while it is not released and its ETag has not stood for a whole duration (the ETag rule of every
lease). A heartbeat found free is remembered with the ETag it was found free at, costs nothing
while the listings show that ETag, and is watched again as soon as they show another: its replica
came back (a pause, a partition from S3, a restart under the same name), and a body read at an
ETag other than the one found free, not released, counts it as live at once. A real replica renews
every third of a duration, so it is counted within about that long of being seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from lakecircle.core.lease import Version, decode


def ranking(account: str, replicas: Collection[str]) -> list[str]:
    """The live replicas in the account's order of preference (first: its preferred holder)."""

    def weight(replica: str) -> bytes:
        return hashlib.blake2b(f"{account}\x00{replica}".encode(), digest_size=8).digest()

    return sorted(replicas, key=lambda r: (weight(r), r), reverse=True)


def share(accounts: int, replicas: int) -> int:
    """The most leases a replica wants: ⌈accounts / replicas⌉ (every account, alone)."""
    return math.ceil(accounts / max(replicas, 1))


@dataclass(frozen=True, slots=True)
class Standing:
    """What this replica knows of one account's lease."""

    held: bool
    """This replica holds it."""
    free: bool
    """No one holds it (by the ETag rule, as this replica observes it)."""
    free_for: float = 0.0
    """Seconds it has been free, by this replica's clock (0 when it is not)."""


def wanted(me: str, live: Collection[str], standings: Mapping[str, Standing], duration: float) -> frozenset[str]:
    """The accounts whose lease this replica should want now; see the module docstring."""
    replicas = set(live) | {me}
    limit = share(len(standings), len(replicas))
    rank = {account: ranking(account, replicas).index(me) for account in standings}
    held = sorted((a for a, s in standings.items() if s.held), key=lambda a: (rank[a], a))
    chosen = held[:limit]  # a holder over its share gives back the ones it ranks worst for
    candidates = sorted(
        (a for a, s in standings.items() if s.free and not s.held and (rank[a] == 0 or s.free_for >= duration)),
        key=lambda a: (rank[a], a),
    )
    for account in candidates:
        if len(chosen) >= limit:
            break
        chosen.append(account)
    return frozenset(chosen)


@dataclass(frozen=True, slots=True)
class _Beat:
    """A peer's heartbeat as this replica watches it."""

    etag: str
    since: float
    """When this replica first saw this ETag (its monotonic time)."""
    changed: bool
    """Seen to change since this replica started watching it: its replica runs."""
    read_etag: str | None = None
    """The ETag the body was last read at (None: not read yet)."""
    released: bool = False
    """The body read at ``read_etag`` says released."""
    duration: float | None = None
    """The body's lease duration (None: not read, or not a lease body)."""


class Peers:
    """The other replicas, as their heartbeats show them (see the module docstring).

    Feed it every listing of the heartbeats (:meth:`listed`), read the bodies it asks for and feed
    them back (:meth:`read`); :meth:`live` says who counts. ``duration`` is this replica's lease
    duration, used for a heartbeat whose body has not been read or is not a lease body.
    """

    def __init__(self, me: str, duration: float) -> None:
        self.me = me
        self.duration = duration
        self._watched: dict[str, _Beat] = {}
        self._gone: dict[str, str] = {}
        """Peers whose heartbeat was found free, and the ETag it was found free at."""

    @property
    def watched(self) -> frozenset[str]:
        """The peers whose heartbeat is watched (live or not yet known to be)."""
        return frozenset(self._watched)

    def live(self, now: float) -> frozenset[str]:
        """The peers that count (this replica not among them)."""
        return frozenset(name for name, beat in self._watched.items() if self._counts(beat, now))

    def listed(self, etags: Mapping[str, str], now: float) -> list[str]:
        """A whole listing of the heartbeats (replica -> ETag) made at ``now``; the replicas whose
        heartbeat's body must be read (an ETag not read yet), to feed to :meth:`read`."""
        for name in [n for n in self._watched if n not in etags]:
            del self._watched[name]  # deleted: one that comes back is new
        for name in [n for n in self._gone if n not in etags]:
            del self._gone[name]
        for name, etag in etags.items():
            if name != self.me:
                self._see(name, _plain(etag), now)
        self._drop_free(now)
        return sorted(name for name, beat in self._watched.items() if beat.read_etag != beat.etag)

    def read(self, name: str, found: Version | None, now: float) -> None:
        """The heartbeat of ``name`` as read at ``now`` (None: there is none)."""
        if name not in self._watched:
            return
        if found is None:
            del self._watched[name]
            return
        etag = _plain(found.etag)
        self._see(name, etag, now)
        body = decode(found.data)
        released = body is not None and body.released
        duration = body.duration if body is not None else None
        self._watched[name] = replace(self._watched[name], read_etag=etag, released=released, duration=duration)
        self._drop_free(now)

    def _see(self, name: str, etag: str, now: float) -> None:
        beat = self._watched.get(name)
        if beat is None:
            free_at = self._gone.get(name)
            if free_at == etag:
                return  # as it was found free: a pod of a past rollout, or one that crashed
            returning = self._gone.pop(name, None) is not None  # written since it was found free: back
            self._watched[name] = _Beat(etag, now, changed=returning)
        elif beat.etag != etag:
            self._watched[name] = replace(beat, etag=etag, since=now, changed=True)

    def _drop_free(self, now: float) -> None:
        """Heartbeats free (released, or the same ETag for a whole duration) are remembered as gone."""
        for name, beat in list(self._watched.items()):
            if (beat.released and beat.read_etag == beat.etag) or now >= self._free_from(beat):
                self._gone[name] = beat.etag
                del self._watched[name]

    def _counts(self, beat: _Beat, now: float) -> bool:
        return beat.changed and beat.read_etag is not None and not beat.released and now < self._free_from(beat)

    def _free_from(self, beat: _Beat) -> float:
        return beat.since + (beat.duration if beat.duration is not None else self.duration)


def _plain(etag: str) -> str:
    """An ETag without its quotes (a listing's and a read's may be spelled apart)."""
    return etag.strip('"')
