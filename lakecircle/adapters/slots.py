"""How many requests are under way at once across every account of the process, and each account's share.

With many accounts, each has its own S3 adapter, hence its own retries and throttle gate
(one account's SlowDown storm slows that account only), but ``LCC_CONCURRENCY`` still
bounds the whole process: it is the number of HTTP requests under way at once, whatever
account they are for. :class:`RequestSlots` holds that bound; each account goes through it
by its own :class:`AccountSlots`, which first takes one of the account's own slots and then
one of the process's.

The share: one account holds at most ``per_account`` of the process's slots, by default
:func:`default_share` (half of them, at least one). A slow account (its requests stall until
their attempt time limit, its STS hangs) therefore never holds more than half of the
bound, from the first instant, and the other accounts go on with the rest. A share that
followed the number of active accounts (a fair share of those in flight) would use the
whole bound for an account alone, but it cannot take back the slots an account already
holds: an account that had them all when it began to stall would keep every other account
waiting for up to an attempt time limit (70 s by default). The price of the fixed share is
that one account alone uses half of the bound: the engine runs two or more accounts at once,
which isolation needs anyway (a long account must not delay the others' cycles).

A slot is held for one attempt (the request and the reading of its answer), never during a
retry's backoff or a throttle gate's hold, which the account's adapter waits out first.
Single-account mode uses no slots: its adapter bounds its requests by its readers and
writers, as it always has. This module knows no AWS SDK.
"""

from __future__ import annotations

import math
from types import TracebackType

import anyio


def default_share(total: int) -> int:
    """The most of ``total`` slots one account may hold: half of them, rounded up, at least one."""
    return max(1, math.ceil(total / 2))


class RequestSlots:
    """At most ``total`` requests under way at once in the process, at most ``per_account`` of them for one account.

    :meth:`account` gives an account's way through (the same object for the same account,
    for the life of the process). ``per_account`` defaults to :func:`default_share`; giving
    ``total`` turns the share off.
    """

    def __init__(self, total: int, *, per_account: int | None = None) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, not {total}")
        share = default_share(total) if per_account is None else per_account
        if not 1 <= share <= total:
            raise ValueError(f"per_account must be between 1 and {total}, not {share}")
        self.total = total
        self.per_account = share
        self._process = anyio.Semaphore(total)
        self._accounts: dict[str, AccountSlots] = {}

    def account(self, account_id: str) -> AccountSlots:
        """``account_id``'s slots: its own share, then the process's bound."""
        slots = self._accounts.get(account_id)
        if slots is None:
            slots = self._accounts[account_id] = AccountSlots(account_id, self.per_account, self._process)
        return slots

    @property
    def in_use(self) -> int:
        """Requests under way now, across every account."""
        return self.total - self._process.value


class AccountSlots:
    """One account's way through the process's slots: ``async with slots:`` around one attempt.

    Takes one of the account's own ``share`` slots first, then one of the process's, so an
    account at its share waits without holding one of the process's slots.
    """

    def __init__(self, account_id: str, share: int, process: anyio.Semaphore) -> None:
        self.account_id = account_id
        self.share = share
        self._own = anyio.Semaphore(share)
        self._process = process

    @property
    def in_use(self) -> int:
        """This account's requests holding its own slots: under way, or waiting for one of the process's."""
        return self.share - self._own.value

    async def __aenter__(self) -> None:
        await self._own.acquire()
        try:
            await self._process.acquire()
        except BaseException:
            self._own.release()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._process.release()
        self._own.release()
