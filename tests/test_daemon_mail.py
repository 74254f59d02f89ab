"""The daemon's mail: an answer by email is recorded within seconds of its arrival (the account
is held in IDLE, not polled every minute), by the one daemon that holds the account's lease.

A real daemon process, a real Dovecot (the site's mail delivered by LMTP), the sandbox on a clock
the daemon shares (300 times the wall clock), a real SQLite file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from sqlalchemy import select

from bot.clock import SHANGHAI, ScaledClock
from bot.sandbox import Sandbox
from bot.sandbox.mail import LmtpTransport
from bot.sandbox.roster import roster_from_dict
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState
from mailserver import write_accounts

START = datetime(2024, 4, 26, 9, 20, tzinfo=SHANGHAI)      # a Friday, in the send window
SITE = "宝鸡市邮件答复局"
ROSTER = {
    "campaign": {"name": "mail-idle", "submit_at": "2024-04-26T09:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [{"name": SITE, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "yj",
              "reply": {"workdays": 0, "at": "11:00", "channel": "email"}}],
}


def test_an_answer_by_email_is_recorded_within_seconds(tmp_path, dovecot, db_url):
    clock = ScaledClock(START, time.time(), 300.0)
    with Sandbox(roster_from_dict(ROSTER), clock, mail=LmtpTransport(dovecot.host, dovecot.lmtp_port)) as sandbox:
        (tmp_path / "sites").mkdir()
        (tmp_path / "sites" / "yj.toml").write_text(
            f'name = "{SITE}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(SITE)}"\nplatform = "jact"\n'
            'mailboxes = ["leader"]\n', encoding="utf-8")
        accounts = write_accounts(tmp_path / "accounts.toml", dovecot)
        text = accounts.read_text(encoding="utf-8").replace('imap_account = "box"', 'imap_account = "box"\nreply_address = "plus"')
        accounts.write_text(text, encoding="utf-8")
        (tmp_path / "campaign.toml").write_text(
            'name = "idle"\nsites = ["sites/*.toml"]\nidentities = ["i"]\nstart = 2024-04-26\n\n'
            '[send_window]\nstart = "09:00"\nend = "17:30"\njitter = "1m"\n', encoding="utf-8")
        config = tmp_path / "mailbox-bot.toml"
        config.write_text(f'[paths]\nevidence_dir = "{tmp_path / "evidence"}"\naccounts_file = "{accounts}"\n\n'
                          '[captcha]\nsolver = "bot.sandbox.captcha:solve"\n', encoding="utf-8")
        env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url, "MAILBOX_BOT_CLOCK": clock.spec(),
               "MB_TEST_IMAP_PASSWORD": dovecot.password}
        env.pop("MAILBOX_BOT_CONFIG", None)
        start = subprocess.run([sys.executable, "-m", "bot", "-c", str(config), "campaign", "start", "campaign.toml"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert start.returncode == 0, start.stderr
        daemon = subprocess.Popen([sys.executable, "-m", "bot", "-c", str(config), "run", "--tick", "0.3", "--log-json"],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db = Database(db_url)
        try:
            sent_at = recorded_at = None
            deadline = time.monotonic() + 180
            while recorded_at is None:
                assert time.monotonic() < deadline, "no answer recorded"
                sandbox.deliver_due_mail()           # the site's mail whose time has come
                if sent_at is None and any(x.kind == "reply" and x.status == "sent" for x in sandbox.sent_mail()):
                    sent_at = time.monotonic()
                with db.session() as s:
                    letter = s.scalars(select(m.Letter)).one()
                    if letter.state == LetterState.REPLIED:
                        recorded_at = time.monotonic()
                        channel = letter.replies[0].channel
                time.sleep(0.1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, err[-2000:]
        assert sent_at is not None and channel == "email"
        latency = recorded_at - sent_at
        print(f"\nanswer by email recorded {latency:.1f} s after its arrival")
        # IDLE wakes the daemon when the mail arrives; polling every minute would take up to 60 s.
        assert latency < 10, latency
        assert '"event": "mail_watch"' in err and '"idle": true' in err, err[-2000:]
