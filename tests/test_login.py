"""A mailbox behind the unified identity platform (统一身份认证), through the command line as an
inspector uses it: `mailbox-bot login` once (captcha by the configured solver hook, the SMS
code typed at the terminal), then letters sent with the saved session; after the session
expires the letter goes to `needs_inspector` and `inspect pending` lists it; nothing is sent
without a login.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from bot.clock import SimClock
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox

SITE = "宝鸡市测试登录局"
ACCOUNT = {"account": "inspector01", "password": "Sandbox#2024", "phone": "13800001111"}
ROSTER = {
    "campaign": {"name": "login", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "account": [ACCOUNT],
    "site": [{"name": SITE, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
              "slug": "dl", "login": True, "reply": {"workdays": 0, "at": "16:00"}}],
}


@pytest.fixture
def env(tmp_path):
    roster = roster_from_dict(ROSTER)
    clock = SimClock(roster.campaign.submit_at)
    with Sandbox(roster, clock) as sandbox:
        site = tmp_path / "dl.toml"
        site.write_text(
            f'name = "{SITE}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(SITE)}"\n'
            'platform = "minimal"\nmailboxes = ["leader"]\ncaptcha_solver = "bot.sandbox.captcha:solve"\n\n'
            f'[login]\nurl = "{sandbox.url}/sso/login"\nmarker = "#ssoLoginForm"\naccount = "#account"\n'
            'password = "#password"\ncaptcha_image = "#captchaImg"\ncaptcha_input = "#captcha"\n'
            'sms_button = "#btnSms"\nsms_input = "#smsCode"\nsubmit = "#btnLogin"\n', encoding="utf-8")
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            '[[identity]]\nname = "zhang"\nemail = "zhang@example.org"\nlogin_account = "inspector01"\n'
            'login_password_env = "TEST_SSO_PASSWORD"\n\n'
            '[[identity]]\nname = "li"\nemail = "li@example.org"\n', encoding="utf-8")
        config = tmp_path / "mailbox-bot.toml"
        config.write_text(f'[paths]\nsessions_dir = "{tmp_path / "sessions"}"\naccounts_file = "{accounts}"\n'
                          f'evidence_dir = "{tmp_path / "evidence"}"\n', encoding="utf-8")
        yield sandbox, clock, site, config, tmp_path


def cli(tmp_path, db_url, config, *args, input: str | None = None):
    env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url, "TEST_SSO_PASSWORD": ACCOUNT["password"]}
    env.pop("MAILBOX_BOT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bot", "-c", str(config), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, input=input, timeout=300)


def login(sandbox, tmp_path, db_url, config, site, identity="zhang"):
    """Runs `mailbox-bot login`, typing the SMS code when the sandbox has 'sent' it."""
    env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url, "TEST_SSO_PASSWORD": ACCOUNT["password"]}
    env.pop("MAILBOX_BOT_CONFIG", None)
    before = len(sandbox.sms_outbox())
    proc = subprocess.Popen([sys.executable, "-m", "bot", "-c", str(config), "login", str(site), "--identity", identity],
                            cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(sandbox.sms_outbox()) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    code = sandbox.sms_outbox()[-1]["code"] if len(sandbox.sms_outbox()) > before else ""
    out, err = proc.communicate(code + "\n", timeout=120)
    return proc.returncode, out, err


def test_login_once_then_letters_use_the_session_until_it_expires(env, db_url):
    sandbox, clock, site, config, tmp = env
    rc, out, err = login(sandbox, tmp, db_url, config, site)
    assert rc == 0, out + err
    session = tmp / "sessions" / "zhang" / f"127.0.0.1_{sandbox.port}.json"
    assert session.exists() and f"session saved to {session}" in out
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert stat.S_IMODE(session.parent.stat().st_mode) == 0o700
    assert "an SMS code was sent" in err
    assert ACCOUNT["password"] not in out + err

    # A letter sent with the saved session: the site takes it, no second login.
    r = cli(tmp, db_url, config, "replay", str(site), "--submit", "--campaign", "c1", "--identity", "zhang")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitted" in r.stdout
    assert [x.site for x in sandbox.received()] == [SITE]
    assert len(sandbox.sms_outbox()) == 1

    # Nine hours later the identity platform has forgotten the session.
    clock.advance(timedelta(hours=9))
    r = cli(tmp, db_url, config, "replay", str(site), "--submit", "--campaign", "c2", "--identity", "zhang")
    assert r.returncode == 1
    assert "needs_inspector" in r.stdout and "login" in r.stdout
    assert len(sandbox.received()) == 1                      # nothing was sent
    pending = cli(tmp, db_url, config, "inspect", "pending", "--list")
    assert pending.returncode == 0, pending.stderr
    (line,) = [x for x in pending.stdout.splitlines() if x.startswith("letter ")]
    assert "c2" in line and SITE in line and "mailbox-bot login" in line

    # The inspector logs in again; the waiting letter is tried again and goes through.
    rc, out, err = login(sandbox, tmp, db_url, config, site)
    assert rc == 0, out + err
    again = cli(tmp, db_url, config, "inspect", "pending", "--identity", "zhang", input="y\n")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().endswith("submitted"), again.stdout
    assert len(sandbox.received()) == 2
    assert "no letter is waiting" in cli(tmp, db_url, config, "inspect", "pending", "--list").stdout


def test_without_a_login_nothing_is_sent_and_the_letter_waits(env, db_url):
    sandbox, clock, site, config, tmp = env
    r = cli(tmp, db_url, config, "replay", str(site), "--submit", "--campaign", "c1", "--identity", "li")
    assert r.returncode == 1
    assert "needs_inspector" in r.stdout
    assert sandbox.received() == []


def test_login_errors_are_one_line(env, db_url):
    sandbox, clock, site, config, tmp = env
    r = cli(tmp, db_url, config, "login", str(site), "--identity", "wang")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no identity 'wang'" in r.stderr and "zhang, li" in r.stderr
    r = cli(tmp, db_url, config, "login", str(site), "--identity", "li")
    assert r.returncode == 2 and "no login_account" in r.stderr and r.stderr.count("\n") == 1


def test_the_login_page_after_the_final_click_is_uncertain_and_never_sent_again(env, db_url):
    """The session runs out between the form and its sending: the site answers the final click
    with its login page. The letter may or may not have gone as far as the bot can tell, so it
    is `submit_uncertain`, and `inspect pending` never sends it again."""
    sandbox, clock, site, config, tmp = env
    rc, out, err = login(sandbox, tmp, db_url, config, site)
    assert rc == 0, out + err
    expired = []

    def expire_after_the_form(line: str) -> None:
        # The identity platform forgets the session once the form has been served.
        if '"GET /dl/leader/index.php' in line and not expired:
            expired.append(line)
            clock.advance(timedelta(hours=9))

    sandbox.log = expire_after_the_form
    r = cli(tmp, db_url, config, "replay", str(site), "--submit", "--campaign", "c1", "--identity", "zhang")
    assert expired, "the form was never served"
    assert r.returncode == 1, r.stdout + r.stderr
    assert "submit_uncertain" in r.stdout and "needs_inspector" not in r.stdout, r.stdout
    assert sandbox.received() == []                          # the site took nothing ...
    pending = cli(tmp, db_url, config, "inspect", "pending", "--list")
    (line,) = [x for x in pending.stdout.splitlines() if x.startswith("letter ")]
    assert "submit_uncertain" in line and "login page" in line, line
    # ... but the bot cannot know that: the inspector's walk never sends it again.
    rc, out, err = login(sandbox, tmp, db_url, config, site)
    assert rc == 0, out + err
    again = cli(tmp, db_url, config, "inspect", "pending", "--identity", "zhang", input="y\ny\n")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "may have been sent" in again.stderr
    assert sandbox.received() == []
    still = cli(tmp, db_url, config, "inspect", "pending", "--list")
    assert "submit_uncertain" in still.stdout
