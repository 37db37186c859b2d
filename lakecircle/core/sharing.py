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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass


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
