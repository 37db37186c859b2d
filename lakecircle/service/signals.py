"""SIGHUP, SIGTERM and SIGINT, caught from the first instant of the daemon to its last.

A service must not die of a signal it handles just because the signal came early (while
the account check retries, while the metrics server binds) or late (while connections
close). ``loop.add_signal_handler`` only covers the time the event loop runs and resets
each signal to its default action when its handler is removed, so a SIGTERM around those
moments killed the process with status 143.

:class:`SignalInbox` is installed once, as the daemon command starts, and keeps every
signal until the service reads it: the Python-level handlers do nothing, and the signal
numbers travel through the wakeup fd (:func:`signal.set_wakeup_fd`) into a socket pair,
which is also what wakes the event loop when the signal lands on another thread. Signals
caught before the loop runs wait in the socket until :meth:`SignalInbox.deliver` reads them.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Final, Self

HANDLED: Final = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: nothing to do, the wakeup fd has the signal's number already."""


class SignalInbox:
    """Catches :data:`HANDLED` from :meth:`install` until :meth:`uninstall`; :meth:`deliver` hands them over.

    Install it from the main thread (as :mod:`signal` requires).
    """

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous: dict[signal.Signals, _Handler] = {}
        self._previous_wakeup: int | None = None

    def install(self) -> Self:
        self._previous_wakeup = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, _noted)
        return self

    def uninstall(self) -> None:
        """Give the signals back to whoever had them before; signals not yet delivered are dropped."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            self._previous_wakeup = None
        self._read.close()
        self._write.close()

    async def deliver(self, handle: Callable[[signal.Signals], None]) -> None:
        """Call ``handle`` with every signal caught, those from before this call first, until cancelled."""
        import asyncio  # here, not at the top: the launcher imports this module before anything slow

        loop = asyncio.get_running_loop()
        wanted = {int(sig) for sig in HANDLED}
        while True:
            data = await loop.sock_recv(self._read, 512)
            for number in data:
                if number in wanted:
                    handle(signal.Signals(number))


_early: SignalInbox | None = None


def install_early() -> None:
    """Install an inbox at the first instant of the process (the launcher calls it for the
    daemon, before importing the command line, which takes a few hundred milliseconds)."""
    global _early  # noqa: PLW0603 -- one inbox per process, handed over once
    if _early is None:
        _early = SignalInbox().install()


def take_early() -> SignalInbox | None:
    """The inbox :func:`install_early` installed, handed over once (None when there is none)."""
    global _early
    inbox, _early = _early, None
    return inbox
