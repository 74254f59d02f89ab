"""The `mailbox-bot` program: the daemon's stop signals are caught before anything is imported."""

from __future__ import annotations

import sys


def main() -> None:
    from bot import shutdown

    if shutdown.command_of(sys.argv[1:]) == "run":
        shutdown.install()
    from bot.cli import main as cli_main

    cli_main()
