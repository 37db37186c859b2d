"""The hub's open member accounts: each one's reconciler, with its clients and credentials.

A member is opened when its first cycle starts and stays open between cycles (its clients,
its refreshable credentials), and is closed when it leaves the account list, when its role or
tags change, after a cycle that failed (opened afresh next time: new credentials, new clients)
and when the hub closes. Closing never raises: a failed clean-up is logged, and must not end
the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack

import anyio
import structlog

from lakecircle.core.accounts import Account
from lakecircle.core.report import CycleReport
from lakecircle.engine.cycle import Reconciler

log = structlog.get_logger("lakecircle.engine.hub")

MemberOpener = Callable[[Account], AbstractAsyncContextManager[Reconciler]]
"""Builds a member account's reconciler (its store through its role, its records under
``accounts/<id>/``); raises LakeCircleError when the account cannot be reached."""


class Members:
    """The open members, by account ID; see the module docstring."""

    def __init__(self, open_member: MemberOpener) -> None:
        self.open_member = open_member
        self.closed: Callable[[str], None] = lambda _: None
        """Told of each account whose member was closed (its continuous verification goes with it)."""
        self._held: dict[str, tuple[Account, Reconciler, AsyncExitStack]] = {}

    def reconcilers(self) -> Iterator[Reconciler]:
        return (held[1] for held in self._held.values())

    def get(self, account_id: str) -> Reconciler | None:
        held = self._held.get(account_id)
        return held[1] if held is not None else None

    def cut_short(self, account_id: str) -> CycleReport | None:
        """What the account's cycle had done when it was cut short (None: not open, or not cut)."""
        member = self.get(account_id)
        return None if member is None else member.cut_short

    def stale(self, listed: Mapping[str, Account]) -> list[str]:
        """The members whose account left the list, or whose role or tags changed."""
        return [k for k, held in self._held.items() if listed.get(k) != held[0]]

    async def open(self, account: Account, *, draining: bool) -> Reconciler:
        """The account's reconciler, opened if it is not (or was opened as the account was listed before)."""
        held = self._held.get(account.id)
        if held is not None and held[0] == account:
            return held[1]
        await self.close(account.id)  # its role or tags changed while its last cycle ran
        stack = AsyncExitStack()
        try:
            member = await stack.enter_async_context(self.open_member(account))
        except BaseException:
            await stack.aclose()
            raise
        if draining:
            member.drain()
        self._held[account.id] = (account, member, stack)
        return member

    async def close(self, account_id: str) -> None:
        held = self._held.pop(account_id, None)
        if held is not None:
            self.closed(account_id)
            with anyio.CancelScope(shield=True):
                try:
                    await held[2].aclose()
                except Exception:  # a failed clean-up must not end the daemon
                    log.exception("member_not_closed", account=account_id)

    async def close_all(self) -> None:
        for account_id in list(self._held):
            await self.close(account_id)
