"""The hub's account list: read again at start and every resync, kept when a read fails.

A list that cannot be read keeps the last one, since dropping every account is no answer to
a read that failed; a poll then waits before it reads again (60 s, doubling up to 15 minutes),
or a poll every 30 s would repeat ListAccounts and a tag read per account while the cause (a
permission, throttling) stands. Resyncs and SIGHUP always read. An entry with an error is left
out, but an account it named that was managed until now stays, so that a typo never quietly
stops managing an account (ARCHITECTURE.md, "Many accounts").
"""

from __future__ import annotations

from typing import Final

import structlog

from lakecircle.clocks import WallClock
from lakecircle.core.accounts import Account
from lakecircle.core.report import Trigger
from lakecircle.errors import LakeCircleError
from lakecircle.ports import AccountSource

log = structlog.get_logger("lakecircle.engine.hub")

READ_BACKOFF_FIRST: Final = 60.0
READ_BACKOFF_MAX: Final = 900.0
"""Seconds before a poll's cycle reads an account list that failed again: doubling, at most this."""


class Roster:
    """The accounts as the hub last read them; see the module docstring."""

    def __init__(self, source: AccountSource, clock: WallClock) -> None:
        self.source = source
        self.clock = clock
        self.accounts: tuple[Account, ...] = ()
        self.problems: tuple[str, ...] = ()
        """The errors of the last read (an accounts file's bad entries, left out)."""
        self.unread: str | None = None
        """Why the list could not be read last time (None: it was read)."""
        self.with_tags = False
        """The accounts were listed with their tags (``AccountTags`` can be decided)."""
        self._failed_reads = 0
        self._retry_at = 0.0

    def due(self, trigger: str, needs_tags: bool) -> bool:
        """Whether a cycle with ``trigger`` reads the list: at start, every resync and SIGHUP; on a
        poll only when none was read yet or definitions came to need tags, and not during a backoff."""
        if trigger != Trigger.POLL:
            return True
        wanted = not self.accounts or (needs_tags and not self.with_tags)
        return wanted and self.clock() >= self._retry_at

    async def read(self, with_tags: bool) -> bool:
        """Read the list again (with tags when definitions need them); False when it could not
        be, and the last one stands."""
        location = self.source.location
        try:
            found = await self.source.accounts(with_tags=with_tags)
        except LakeCircleError as exc:
            log.warning("accounts_unreadable", source=location, error=str(exc), kept=len(self.accounts))
            self._failed_reads += 1
            self._retry_at = self.clock() + min(READ_BACKOFF_MAX, READ_BACKOFF_FIRST * 2 ** (self._failed_reads - 1))
            self.unread = str(exc)
            return False
        self._failed_reads, self._retry_at = 0, 0.0
        for problem in found.problems:
            log.warning("accounts_problem", source=location, problem=str(problem))
        self.problems = tuple(str(p) for p in found.problems if p.is_error)
        if not found.readable:
            log.warning("accounts_unreadable", source=location, kept=len(self.accounts))
            self.unread = "; ".join(str(p) for p in found.problems) or "unreadable"
            return False
        self.unread = None
        self.with_tags = with_tags
        accounts = found.accounts
        if self.problems:
            now = {a.id for a in accounts}
            kept = tuple(a for a in self.accounts if a.id not in now)
            for account in kept:
                log.warning(
                    "account_kept", account=account.id, reason="the account list has errors; fix them to drop it"
                )
            accounts += kept
        self.accounts = accounts
        log.info("accounts_listed", source=location, accounts=len(self.accounts))
        return True
