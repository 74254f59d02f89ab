"""A stop request (SIGTERM, Ctrl-C) that may come at any moment of the daemon's life.

The daemon's event loop handles the signals once it runs; before that (the interpreter still
importing, the database being opened) a signal would kill the process with nothing logged. So
`mailbox-bot run` installs these handlers first thing (bot.entry), and the daemon reads
`requested` when its loop takes over.
"""

from __future__ import annotations

import signal
import threading

requested = threading.Event()
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install() -> None:
    for sig in SIGNALS:
        signal.signal(sig, lambda _signum, _frame: requested.set())


def command_of(argv: list[str]) -> str | None:
    """The sub-command of a `mailbox-bot` command line (the root takes only -c/--config FILE)."""
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--config"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None
