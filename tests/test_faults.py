"""Sites that misbehave as real ones do (roster faults), played as one campaign by `simulate`
with the real worker, real Chromium and a real SQLite file; and a login-gated site.

What must hold: a firewall's challenge page is recorded as `blocked` (never "not found", never
"no reply") and a submission it stopped is tried again; a 502 or a dropped connection before
the final click is tried again with nothing sent twice; a slow site still works; a captcha that
the site checks is answered by the configured solver hook and the report says so; a mailbox
behind the unified login is written to with the inspector's saved session.
"""

from __future__ import annotations

import os
import stat
import time
import urllib.request
from collections import Counter
from types import SimpleNamespace

import pytest
from conftest import run_async
from sqlalchemy import select

from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import SANDBOX_SOLVER, sandbox_inspector_login, simulate
from bot.clock import SimClock
from bot.config import load_config
from bot.login import SessionStore
from bot.report import report_dict
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

CHALLENGED = "宝鸡市测试拦截局"     # minimal, a challenge page for a quarter of the requests
FLAKY = "宝鸡市测试故障局"          # minimal, 502 or a dropped connection for 30% of requests
SLOW = "宝鸡市测试慢速局"           # legacy, every answer 400 ms late
CAPTCHA = "宝鸡市测试验证码局"      # jact, checks its captcha
LOGIN = "宝鸡市测试登录局"          # minimal, writing needs the unified login
ACCOUNT = {"account": "inspector01", "password": "Sandbox#2024", "phone": "13800001111"}

ROSTER = {
    "campaign": {"name": "faults", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-08T18:00:00+08:00", "poll_every": "2h"},
    "account": [ACCOUNT],
    "site": [
        {"name": CHALLENGED, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "waf", "challenge": 0.25, "reply": {"workdays": 1, "at": "15:00"}},
        {"name": FLAKY, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "flaky", "flaky": 0.3, "reply": {"workdays": 0, "at": "15:30"}},
        {"name": SLOW, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"],
         "slug": "slow", "latency_ms": 400, "reply": {"workdays": 0, "at": "16:00"}},
        {"name": CAPTCHA, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "slug": "yzm", "captcha": True, "reply": {"workdays": 2, "at": "10:00"}},
        {"name": LOGIN, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "dl", "login": True, "reply": {"workdays": 0, "at": "17:00"}},
    ],
}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    roster = roster_from_dict(ROSTER)
    clock = SimClock(roster.campaign.submit_at)
    calendar = WorkCalendar()
    db = Database(f"sqlite:///{tmp}/t.sqlite3")
    sessions = SessionStore(tmp / "sessions")
    with Sandbox(roster, clock) as sandbox:
        result = run_async(simulate(roster, clock, sandbox.base_url, db, load_config(), tmp / "evidence",
                                    calendar, sessions=sessions,
                                    log_in=sandbox_inspector_login(sandbox, sessions)))
        rows, meta = campaign_rows(db, roster.campaign.name, calendar, as_of=roster.campaign.end_at)
        yield SimpleNamespace(sandbox=sandbox, db=db, result=result, report=report_dict(rows, meta),
                              sessions=sessions, tmp=tmp)


def row(campaign, site: str) -> dict:
    (r,) = [r for r in campaign.report["rows"] if r["site"] == site]
    return r


def letter(session, site: str) -> m.Letter:
    return session.scalars(select(m.Letter).join(m.Mailbox).join(m.Site).where(m.Site.name == site)).one()


def test_every_faulty_site_still_gets_exactly_one_letter_and_the_right_verdict(campaign):
    received = Counter(x.site for x in campaign.sandbox.received())
    assert received == {CHALLENGED: 1, FLAKY: 1, SLOW: 1, CAPTCHA: 1, LOGIN: 1}
    expected = {CHALLENGED: (1, False), FLAKY: (0, True), SLOW: (0, True), CAPTCHA: (2, False), LOGIN: (0, True)}
    for site, (days, same_day) in expected.items():
        r = row(campaign, site)
        assert r["status"] == "replied", r
        assert (r["working_days"], r["same_day"], r["within_deadline"]) == (days, same_day, True), r
    s = campaign.report["summary"]
    assert (s["sites"], s["within_deadline_sites"], s["same_day_sites"], s["no_reply_sites"]) == (5, 5, 3, 0)


def test_challenge_pages_are_recorded_as_blocked_and_the_submission_retried(campaign):
    with campaign.db.session() as s:
        x = letter(s, CHALLENGED)
        outcomes = Counter(o.outcome for o in x.observations)
        events = [(e.to_state, e.reason) for e in x.events]
        blocked_attempts = [r for st, r in events if st == LetterState.SUBMIT_FAILED and r.startswith("blocked")]
    # A quarter of the requests are challenged: over a dozen polls, some met the firewall ...
    assert outcomes["blocked"] >= 1, outcomes
    # ... and none of them counted as "not found" (the letter was never declared deleted).
    assert outcomes["not_found"] == 0
    assert "blocked_polls" in row(campaign, CHALLENGED)["flags"]
    for reason in blocked_attempts:
        assert "firewall or challenge page" in reason and "nothing was sent, tried again" in reason


def test_a_flaky_site_is_retried_before_the_final_click_and_polls_survive_errors(campaign):
    with campaign.db.session() as s:
        x = letter(s, FLAKY)
        outcomes = Counter(o.outcome for o in x.observations)
        failed = [e.reason for e in x.events if e.to_state == LetterState.SUBMIT_FAILED]
        assert x.attempts == len(failed) + 1
    assert outcomes["found"] >= 1
    for reason in failed:
        assert "nothing was sent" in reason
    # The errors of a flaky site are errors, not evidence of deletion.
    assert row(campaign, FLAKY)["status"] == "replied"


def test_a_slow_site_answers_late_and_still_works(campaign):
    url = campaign.sandbox.mailbox_url(SLOW, "leader")
    started = time.perf_counter()
    urllib.request.urlopen(url).read()
    assert time.perf_counter() - started >= 0.4
    assert row(campaign, SLOW)["status"] == "replied"


def test_the_captcha_is_answered_by_the_solver_hook_and_the_report_says_so(campaign):
    assert row(campaign, CAPTCHA)["captcha"] == f"solver {SANDBOX_SOLVER}"
    assert row(campaign, FLAKY)["captcha"] is None          # minimal has no captcha


def test_the_login_gated_site_was_written_to_with_the_saved_session(campaign):
    path = campaign.sessions.path("inspector", campaign.sandbox.url + "/sso/login")
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    # One login, one SMS; the letter went through without asking again.
    assert len(campaign.sandbox.sms_outbox()) == 1
    with campaign.db.session() as s:
        assert letter(s, LOGIN).attempts == 1


def test_no_session_secret_reaches_the_report_or_the_evidence(campaign):
    import json

    state = json.loads(campaign.sessions.path("inspector", campaign.sandbox.url + "/sso/login").read_text())
    token = next(c["value"] for c in state["cookies"] if c["name"] == "SSO_TGC")
    assert token not in json.dumps(campaign.report, ensure_ascii=False)
    for f in (campaign.tmp / "evidence").rglob("*"):
        if f.is_file():
            assert token.encode() not in f.read_bytes(), f
    assert ACCOUNT["password"] not in json.dumps(campaign.report, ensure_ascii=False)


# -- each fault at the HTTP level (no browser) ---------------------------------------------------

def test_each_fault_as_a_client_sees_it():
    from http.client import RemoteDisconnected
    from urllib.error import HTTPError, URLError
    from urllib.parse import urlencode

    roster = roster_from_dict({
        "campaign": ROSTER["campaign"], "account": [ACCOUNT],
        "site": [
            {"name": "挑战", "group": "g", "platform": "legacy", "mailboxes": ["leader"], "slug": "c", "challenge": 1.0},
            {"name": "故障", "group": "g", "platform": "legacy", "mailboxes": ["leader"], "slug": "f", "flaky": 1.0},
            {"name": "改版", "group": "g", "platform": "minimal", "mailboxes": ["leader"], "slug": "d", "drift": "title"},
            {"name": "登录", "group": "g", "platform": "jact", "mailboxes": ["leader"], "slug": "l", "login": True},
        ]})
    with Sandbox(roster, SimClock(roster.campaign.submit_at)) as sb:
        with pytest.raises(HTTPError) as e:
            urllib.request.urlopen(sb.mailbox_url("挑战", "leader"))
        page = e.value.read().decode()
        assert e.value.code == 403 and "<title>安全验证</title>" in page and 'id="wafChallenge"' in page

        outcomes = set()
        for _ in range(30):
            try:
                urllib.request.urlopen(sb.mailbox_url("故障", "leader") + "Default.aspx")
                outcomes.add(200)
            except HTTPError as err:
                outcomes.add(err.code)
            except (URLError, RemoteDisconnected, ConnectionError):
                outcomes.add("dropped")
        assert outcomes == {502, "dropped"}

        form = urllib.request.urlopen(sb.mailbox_url("改版", "leader") + "index.php").read().decode()
        assert 'name="title_v2" id="title_v2"' in form and 'name="title"' not in form
        fields = {"type": "咨询", "name": "王晓明", "mobile": "13812345678", "email": "a@example.org",
                  "content": "内容"}
        old = urllib.request.urlopen(sb.mailbox_url("改版", "leader") + "save.php",
                                     urlencode({**fields, "title": "旧字段名的标题"}).encode()).read().decode()
        assert "主题不能为空！" in old and sb.received() == []
        new = urllib.request.urlopen(sb.mailbox_url("改版", "leader") + "save.php",
                                     urlencode({**fields, "title_v2": "新字段名的标题"}).encode()).read().decode()
        assert 'id="ok"' in new and [x.title for x in sb.received()] == ["新字段名的标题"]

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        with pytest.raises(HTTPError) as e:
            urllib.request.build_opener(NoRedirect).open(sb.mailbox_url("登录", "leader"))
        assert e.value.code == 302 and e.value.headers["Location"].startswith("/sso/login?service=")
        # The query page stays public.
        assert urllib.request.urlopen(sb.mailbox_url("登录", "leader") + "query").status == 200
