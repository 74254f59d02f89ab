"""Past one machine: two daemons on one PostgreSQL, browsers on two endpoints (a Playwright
browser server and a Chromium with remote debugging), a campaign of 100 sandbox letters on a
clock 300 times the wall clock, every letter due within the first simulated hour (a send window
round the clock: the daemons go as fast as they can, and a slow machine only carries letters
over into the next day's window). One daemon is killed (SIGKILL) and one browser endpoint is
killed in the middle of it all.

Every mailbox receives at most one letter (the sandbox counts), every letter ends submitted or
`submit_uncertain`, the polls go on after the kills, and both daemons did work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.browser.launch import chromium_executable, launch_args
from bot.clock import SHANGHAI, ScaledClock
from bot.sandbox import Sandbox
from bot.sandbox.roster import roster_from_dict
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

START = datetime(2024, 4, 25, 22, 58, tzinfo=SHANGHAI)     # a Thursday night: every letter due within the hour
SPEED = 300.0
N = 100
PLATFORMS = ("jact", "minimal", "legacy")
ROSTER = {
    "campaign": {"name": "many", "submit_at": "2024-04-25T23:00:00+08:00", "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [{"name": f"宝鸡市多机{i:03d}局", "group": "市级部门网站", "platform": PLATFORMS[i % 3], "mailboxes": ["leader"],
              "slug": f"d{i:03d}", "reply": {"workdays": 1, "at": "10:00"}} for i in range(N)],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, why=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {why()}"
        time.sleep(0.3)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def endpoints(tmp_path):
    """A Playwright browser server (ws) and a Chromium with remote debugging (cdp), on loopback."""
    ws_port, cdp_port = free_port(), free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "playwright"), "run-server", "--host", "127.0.0.1",
                               "--port", str(ws_port), "--unsafe"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    chromium = subprocess.Popen([chromium_executable(), "--headless", f"--remote-debugging-port={cdp_port}",
                                 "--remote-debugging-address=127.0.0.1", f"--user-data-dir={tmp_path / 'cdp-profile'}",
                                 *launch_args(), "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        wait_until(lambda: listening(ws_port) and listening(cdp_port), 60, "the browser endpoints")
        yield f"ws://127.0.0.1:{ws_port}/", f"http://127.0.0.1:{cdp_port}", chromium
    finally:
        for p in (server, chromium):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def states(db) -> Counter:
    with db.session() as s:
        return Counter(s.scalars(select(m.Letter.state)))


def count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_two_daemons_one_database_two_browser_endpoints_killed_halfway(tmp_path, postgres_url, endpoints):
    ws, cdp, cdp_process = endpoints
    clock = ScaledClock(START, time.time(), SPEED)
    with Sandbox(roster_from_dict(ROSTER), clock, hosts_per_site=True) as sandbox:
        sites = tmp_path / "sites"
        sites.mkdir()
        for s in sandbox.roster.site:
            (sites / f"{s.slug}.toml").write_text(
                f'name = "{s.name}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(s.name)}"\n'
                f'platform = "{s.platform}"\nmailboxes = ["leader"]\n', encoding="utf-8")
        (tmp_path / "campaign.toml").write_text(
            'name = "many"\nsites = ["sites/*.toml"]\nstart = 2024-04-25\n\n[send_window]\nstart = "00:00"\n'
            'end = "23:59"\njitter = "2m"\n\n[rate_limit]\nper_host = "5m"\n\n[poll]\nevery = "2h"\n', encoding="utf-8")
        config = tmp_path / "mailbox-bot.toml"
        config.write_text(f'[paths]\nevidence_dir = "{tmp_path / "evidence"}"\nsessions_dir = "{tmp_path / "sessions"}"\n\n'
                          f'[browser]\nconnect = ["{ws}"]\ncdp = ["{cdp}"]\nendpoint_concurrency = 2\n'
                          f'remote_executable_path = "{chromium_executable()}"\n\n'
                          '[captcha]\nsolver = "bot.sandbox.captcha:solve"\n', encoding="utf-8")
        env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": postgres_url, "MAILBOX_BOT_CLOCK": clock.spec()}
        env.pop("MAILBOX_BOT_CONFIG", None)

        def cli(*args):
            return subprocess.run([sys.executable, "-m", "bot", "-c", str(config), *args], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=300)

        def daemon(name: str):
            log = open(tmp_path / f"{name}.log", "w")
            return subprocess.Popen([sys.executable, "-m", "bot", "-c", str(config), "run", "--tick", "0.5", "--log-json"],
                                    cwd=tmp_path, env=env, stdout=log, stderr=log, start_new_session=True)

        start = cli("campaign", "start", "campaign.toml")
        assert start.returncode == 0, start.stderr
        db = Database(postgres_url)
        assert states(db) == {LetterState.PLANNED: N}
        a, b = daemon("a"), daemon("b")
        try:
            # Halfway through the submissions: one daemon dies, and so does one browser endpoint.
            wait_until(lambda: states(db)[LetterState.SUBMITTED] >= N // 3, 300, "a third of the letters out")
            os.killpg(a.pid, signal.SIGKILL)
            a.wait(timeout=30)
            os.killpg(cdp_process.pid, signal.SIGKILL)
            cdp_process.wait(timeout=30)
            killed_at = count(db, m.Observation)

            def settled() -> bool:
                st = states(db)
                with db.session() as s:
                    looking = s.scalar(select(func.count()).select_from(m.Letter).where(
                        m.Letter.state == LetterState.SUBMIT_UNCERTAIN, m.Letter.next_poll_at.is_not(None)))
                return not (st[LetterState.PLANNED] or st[LetterState.SUBMITTING] or st[LetterState.SUBMIT_FAILED]
                            or looking)

            def why() -> str:
                tails = {n: (tmp_path / f"{n}.log").read_text(errors="replace").splitlines()[-15:] for n in "ab"}
                return f"states {dict(states(db))}, clock {clock.now():%a %H:%M}; logs {tails}"

            wait_until(settled, 420, "every letter out or known to be uncertain", why)
            wait_until(lambda: count(db, m.Observation) > killed_at + 20, 240, "the polls going on")
            assert b.poll() is None, "the surviving daemon died"
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            b.wait(timeout=90)
            if a.poll() is None:
                a.wait(timeout=90)
        assert b.returncode == 0, (tmp_path / "b.log").read_text()[-3000:]

        received = Counter((x.slug, x.mailbox) for x in sandbox.received())
        assert received and all(n == 1 for n in received.values()), received          # never twice
        st = states(db)
        assert set(st) <= {LetterState.SUBMITTED, LetterState.REPLIED, LetterState.OVERDUE,
                           LetterState.SUBMIT_UNCERTAIN}, st
        with db.session() as s:
            for letter in s.scalars(select(m.Letter)):
                key = (letter.mailbox.site.key, "leader")
                if letter.state != LetterState.SUBMIT_UNCERTAIN:
                    assert received[key] == 1, (key, letter.state)

        def worked(name: str) -> set[str]:
            events = [json.loads(x) for x in (tmp_path / f"{name}.log").read_text().splitlines() if x.startswith("{")]
            return {e["event"] for e in events if e["event"] in ("submit", "poll")}

        assert worked("a") and worked("b") == {"submit", "poll"}, (worked("a"), worked("b"))
        print(f"\nfinal states {dict(st)}; sandbox received {sum(received.values())}")
