"""What does a sync cycle with no new mail cost, for a small and a large mailbox?

Starts a private Dovecot on loopback (tests/mailserver.py), loads N messages into INBOX with
MULTIAPPEND, runs a first full sync, then times idle cycles (no new mail) and prints the IMAP
command count and wall time for each size. The command count must not depend on N.

    .venv/bin/python benchmarks/imap_idle_cycle.py            # 10 and 10,000 messages
    .venv/bin/python benchmarks/imap_idle_cycle.py 10 2000 50000
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mailserver import Dovecot, dovecot_available, make_message  # noqa: E402

from bot.mail.imap import ImapSettings, MailReader, MemoryStateStore  # noqa: E402


def measure(server: Dovecot, n: int, cycles: int = 20) -> dict:
    server.reset()
    t0 = time.perf_counter()
    server.append_many((make_message(i) for i in range(n)), chunk=1000)
    load_s = time.perf_counter() - t0
    settings = ImapSettings(server.host, server.imap_port, server.user, server.password, tls=False,
                            folders=["INBOX", "Junk"], timeout=60)
    with MailReader(settings, MemoryStateStore()) as reader:
        t0 = time.perf_counter()
        first = reader.sync(lambda m: None)
        first_s = time.perf_counter() - t0
        assert first.new_messages == n, first
        times, commands = [], set()
        for _ in range(cycles):
            t0 = time.perf_counter()
            stats = reader.sync(lambda m: None)
            times.append(time.perf_counter() - t0)
            assert stats.new_messages == 0, stats
            commands.add(stats.commands)
    return {"n": n, "load_s": load_s, "first_sync": f"{first_s:.2f} s / {first.commands} commands",
            "idle_commands": sorted(commands), "idle_ms_median": statistics.median(times) * 1000,
            "idle_ms_max": max(times) * 1000}


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10, 10_000]
    if not dovecot_available():
        print("Dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd)", file=sys.stderr)
        return 2
    server = Dovecot().start()
    try:
        print(f"{'messages':>9} {'load':>8} {'first sync':>26} {'idle cycle: commands':>21} "
              f"{'median ms':>10} {'max ms':>8}")
        for n in sizes:
            r = measure(server, n)
            print(f"{r['n']:>9} {r['load_s']:>7.2f}s {r['first_sync']:>26} "
                  f"{','.join(map(str, r['idle_commands'])):>21} {r['idle_ms_median']:>10.2f} "
                  f"{r['idle_ms_max']:>8.2f}")
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
