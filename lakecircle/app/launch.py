"""The ``lakecircle`` executable: catches the daemon's signals before the slow imports.

Importing the command line (click, pydantic, aiobotocore, rich) takes a few hundred
milliseconds; a SIGTERM or SIGHUP in that time would kill a daemon that is meant to
handle it. For ``lakecircle daemon`` the launcher installs the signal inbox first (it
needs only the standard library), and the command takes it over.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence


def prepare(args: Sequence[str]) -> None:
    """What must happen before the command line is imported, for these arguments."""
    if args[:1] == ["daemon"]:
        from lakecircle.service.signals import install_early

        install_early()


def main() -> None:
    prepare(sys.argv[1:])
    run_command_line()


_CANNOT_WRITE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
"""What a full disk or a failing device answers a write (``lakecircle schema > file`` among them)."""


def run_command_line() -> None:
    """The command line; output that cannot be written is one line and exit 1, never a traceback."""
    from lakecircle.app.cli import main as cli_main

    try:
        cli_main()
    except OSError as exc:
        if exc.errno not in _CANNOT_WRITE:
            raise
        where = f" {exc.filename}" if exc.filename else " the output"
        sys.stderr.write(f"Error: could not write{where}: {exc.strerror}; free some space or write elsewhere\n")
        # Python flushes standard output again at exit: it must not fail a second time, aloud.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
