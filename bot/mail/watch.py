"""Watching the inspector's IMAP accounts for the daemon: IDLE, one daemon per account.

A reply by email is recorded within seconds of its arrival: each account is held open and
waits in IDLE (NOOP polling where the server lacks IDLE), and a sync runs as soon as the server
announces new mail. Several daemons may share one database: an account is watched by one of
them at a time, the holder of its lease (`mail:<account>`), renewed at every wake-up; when that
daemon dies, the lease runs out and another takes the account over.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Callable

from bot.clock import Clock
from bot.store import leases
from bot.store.db import Database

# How long one IDLE wait lasts before the lease is renewed (and a stop request is seen).
WAKE_EVERY_S = 10.0
# The lease outlives a few wake-ups: a busy machine must not lose its account to another daemon.
LEASE = timedelta(seconds=WAKE_EVERY_S * 4)
# After an error (the server away, a password refused), the next try.
RETRY_AFTER_S = 30.0


class AccountWatcher(threading.Thread):
    """One IMAP account, synced whenever mail arrives, while this daemon holds its lease."""

    def __init__(self, db: Database, account, holder: str, clock: Clock, sync: Callable,
                 log: Callable[..., None], stop: threading.Event):
        super().__init__(name=f"mail-{account.name}", daemon=True)
        self.db, self.account, self.holder, self.clock = db, account, holder, clock
        self.sync, self.log, self.stop = sync, log, stop
        self.lease = f"mail:{account.name}"

    def _hold(self) -> bool:
        # The lease is counted on the wall clock's pace: a scaled clock (a campaign played at
        # speed) would run it out between two wake-ups.
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        return leases.take(self.db, self.lease, self.holder, LEASE * speed, self.clock.now())

    def run(self) -> None:
        from bot.mail.channel import DbStateStore
        from bot.mail.imap import ImapSettings, MailError, MailReader

        while not self.stop.is_set():
            if not self._hold():                    # another daemon watches it
                self.stop.wait(WAKE_EVERY_S)
                continue
            try:
                with MailReader(ImapSettings.from_account(self.account), DbStateStore(self.db)) as reader:
                    self.log("mail_watch", account=self.account.name, idle=reader.has_idle)
                    while not self.stop.is_set() and self._hold():
                        result = self.sync(reader)
                        if result.fetched:
                            self.log("mail", account=self.account.name, new=result.fetched,
                                     matched=result.matched, problems=result.problems)
                        reader.idle_wait(WAKE_EVERY_S)
            except MailError as e:                   # never holds the password
                self.log("mail_failed", account=self.account.name, error=str(e))
                self.stop.wait(RETRY_AFTER_S)
        leases.give_back(self.db, self.lease, self.holder)
