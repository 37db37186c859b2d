"""Every bucket the account's last listing held, with its region: continuous verification's index.

A slice verifies buckets without listing the account, so it takes each bucket's region from here
(never asking S3 where a bucket is), and a definition change is matched against these names
(``engine/targets.py``). The index follows the passes' listings as they stream; between them an
event may name a bucket created since, which joins it *unconfirmed* until a listing holds it, and
leaves again when no definition selects it (it may not be this account's at all). One string
per region is kept for a million buckets, not one each.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

__all__ = ["BucketIndex"]


class BucketIndex:
    """The listed buckets and their regions; see the module docstring."""

    def __init__(self) -> None:
        self.regions: dict[str, str | None] = {}
        """Every bucket the last listing held (managed or not), with its region."""
        self._unconfirmed: set[str] = set()
        """Names an event put here that no listing has held yet."""
        self._during: set[str] | None = None
        """While a pass lists: names an event added meanwhile (the pass's end keeps them)."""
        self._unseen: set[str] = set()
        """While a pass lists: the names it has not listed yet (the index is updated in place, so
        no name is held twice, however large the account)."""
        self._interned: dict[str, str] = {}

    def listing_begins(self) -> None:
        self._unseen, self._during = set(self.regions), set()

    def listed(self, name: str, region: str | None) -> None:
        """The listing under way holds ``name`` in ``region``."""
        self.regions[name] = None if region is None else self._interned.setdefault(region, sys.intern(region))
        self._unseen.discard(name)
        self._unconfirmed.discard(name)

    def listing_ended(self, *, whole: bool) -> tuple[list[str], set[str]]:
        """The listing is over: when ``whole``, the names it did not hold leave (returned, with the
        names events added during it); else it only adds what it saw."""
        unseen, during = self._unseen, self._during or set()
        self._unseen, self._during = set(), None
        gone: list[str] = []
        if whole:
            gone = [n for n in unseen if n not in during]
            for name in gone:
                del self.regions[name]
            self._unconfirmed &= during
        return gone, during

    def announced(self, names: Iterable[str]) -> None:
        """An event named these buckets: those not known join, unconfirmed."""
        for name in names:
            if name not in self.regions:
                self.regions[name] = None
                self._unconfirmed.add(name)
            if self._during is not None:
                self._during.add(name)

    def unconfirmed(self, name: str) -> bool:
        return name in self._unconfirmed

    def drop(self, name: str) -> None:
        """``name`` is not in the account (deleted, or an event's name no definition selects)."""
        self.regions.pop(name, None)
        self._unconfirmed.discard(name)
