"""The ``lakecircle`` executable: catches the daemon's signals before the slow imports.

Importing the command line (click, pydantic, aiobotocore, rich) takes a few hundred
milliseconds; a SIGTERM or SIGHUP in that time would kill a daemon that is meant to
handle it. For ``lakecircle daemon`` the launcher installs the signal inbox first (it
needs only the standard library), and the command takes it over.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def prepare(args: Sequence[str]) -> None:
    """What must happen before the command line is imported, for these arguments."""
    if args[:1] == ["daemon"]:
        from lakecircle.service.signals import install_early

        install_early()


def main() -> None:
    prepare(sys.argv[1:])
    from lakecircle.app.cli import main as cli_main

    cli_main()
