"""End-to-end: a small campaign played by `simulate` against the sandbox on a simulated clock,
with the real worker, real Chromium and a real SQLite file; then the table derived from it.

The campaign is run once for the module (it is the expensive part) and each test reads one
aspect of what it left: the report rows, the sandbox's letters, the database's history.

Calendar facts used below (2024, mainland China): Friday 04-26 submission; Saturday 04-27 off;
Sunday 04-28 is a make-up working day (working day 1); 04-29 = 2, 04-30 = 3; 05-01..05-05 is
the May Day holiday; 05-06 = 4, 05-07 = 5 (the deadline day).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from types import SimpleNamespace

import pytest
from conftest import run_async
from sqlalchemy import select

from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import simulate
from bot.clock import SHANGHAI, SimClock, local
from bot.config import load_config
from bot.report import report_dict
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

SAME_DAY = "测试县人民政府"            # jact, both mailboxes, replies the same day at 15:30
MAKEUP_SUNDAY = "宝鸡市测试调休局"     # minimal, replies on working day 1 (Sunday 04-28) 10:00
AFTER_HOLIDAY = "宝鸡市测试节后局"     # jact, replies on working day 4 (05-06) 09:30
DATE_ONLY = "宝鸡市测试日期局"         # legacy (date-only 回复日期), replies the same day 15:00
DELETER = "宝鸡市测试删信局"           # jact, never replies, deletes on working day 2 (04-29) 09:00
BACKDATER = "宝鸡市测试倒签局"         # minimal, replies on working day 3 (04-30) 15:00, shows 04-29
SILENT = "宝鸡市测试无回复局"          # legacy, never replies

ROSTER_DATA = {
    "campaign": {"name": "e2e-small", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-08T18:00:00+08:00", "deadline_workdays": 5, "poll_every": "4h"},
    "site": [
        {"name": SAME_DAY, "group": "政府门户网站", "platform": "jact", "mailboxes": ["leader", "mayor"],
         "slug": "xian", "region": "测试县", "reply": {"workdays": 0, "at": "15:30"}},
        {"name": MAKEUP_SUNDAY, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "reply": {"workdays": 1, "at": "10:00"}},
        {"name": AFTER_HOLIDAY, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "reply": {"workdays": 4, "at": "09:30"}},
        {"name": DATE_ONLY, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"],
         "reply": {"workdays": 0, "at": "15:00"}},
        {"name": DELETER, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "delete": {"workdays": 2}},
        {"name": BACKDATER, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "reply": {"workdays": 3, "at": "15:00"}, "backdate": {"workdays": 1}},
        {"name": SILENT, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"]},
    ],
}
SUBMIT_AT = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)




def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("campaign")
    roster = roster_from_dict(ROSTER_DATA)
    clock = SimClock(roster.campaign.submit_at)
    calendar = WorkCalendar()
    config = load_config()
    db = Database(f"sqlite:///{tmp}/t.sqlite3")
    evidence_dir = tmp / "evidence"
    with Sandbox(roster, clock) as sandbox:
        result = run_async(simulate(roster, clock, sandbox.base_url, db, config, evidence_dir, calendar))
        rows, meta = campaign_rows(db, roster.campaign.name, calendar, as_of=roster.campaign.end_at)
        report = report_dict(rows, meta)
        yield SimpleNamespace(roster=roster, clock=clock, calendar=calendar, config=config, db=db,
                              evidence_dir=evidence_dir, sandbox=sandbox, result=result,
                              report=report, tmp=tmp)


def rows_of(report: dict, site: str) -> list[dict]:
    rows = [r for r in report["rows"] if r["site"] == site]
    assert rows, f"no row for {site}"
    return rows


def row_of(report: dict, site: str) -> dict:
    (row,) = rows_of(report, site)
    return row


def when(iso: str | None) -> datetime | None:
    return None if iso is None else local(datetime.fromisoformat(iso))


def letter_of(session, site: str) -> m.Letter:
    return session.scalars(select(m.Letter).join(m.Mailbox).join(m.Site).where(m.Site.name == site)).one()


# -- the table -----------------------------------------------------------------------------------

def test_every_row_was_submitted_at_the_campaign_start(campaign):
    assert len(campaign.report["rows"]) == 8
    for r in campaign.report["rows"]:
        assert when(r["submitted_at"]) == SUBMIT_AT, r
    assert campaign.result.submissions == 8


def test_same_day_reply(campaign):
    rows = rows_of(campaign.report, SAME_DAY)
    assert [r["mailbox"] for r in rows] == ["领导信箱", "县长信箱"]
    for r in rows:
        assert r["status"] == "replied"
        assert when(r["replied_at"]) == at(2024, 4, 26, 15, 30)
        assert (r["working_days"], r["same_day"], r["within_deadline"]) == (0, True, True)
        assert r["flags"] == []


def test_reply_on_the_make_up_sunday_counts_one_working_day(campaign):
    r = row_of(campaign.report, MAKEUP_SUNDAY)
    replied = when(r["replied_at"])
    assert replied == at(2024, 4, 28, 10, 0)
    assert replied.weekday() == 6                            # a Sunday, but a working day
    assert (r["working_days"], r["same_day"], r["within_deadline"]) == (1, False, True)
    assert r["status"] == "replied" and r["flags"] == []


def test_reply_after_the_may_day_holiday_counts_four(campaign):
    r = row_of(campaign.report, AFTER_HOLIDAY)
    assert when(r["replied_at"]) == at(2024, 5, 6, 9, 30)
    assert (r["working_days"], r["same_day"], r["within_deadline"]) == (4, False, True)
    assert r["status"] == "replied" and r["flags"] == []


def test_date_only_reply_time_is_counted_by_date(campaign):
    # legacy shows 回复日期 2024-04-26 only: the reply counts on that date (0 working days, same
    # day), although midnight of that date is before the 10:00 submission.
    r = row_of(campaign.report, DATE_ONLY)
    assert r["status"] == "replied"
    assert "date_only_reply_time" in r["flags"]
    assert "site_time_before_submission" not in r["flags"]
    assert when(r["replied_at"]).date() == date(2024, 4, 26)
    assert (r["working_days"], r["same_day"], r["within_deadline"]) == (0, True, True)
    with campaign.db.session() as s:
        reply = letter_of(s, DATE_ONLY).replies[0]
        assert reply.date_only
        assert local(reply.displayed_at).date() == date(2024, 4, 26)


def test_deleted_letter(campaign):
    r = row_of(campaign.report, DELETER)
    assert r["status"] == "deleted"
    assert (r["replied_at"], r["working_days"], r["within_deadline"], r["same_day"]) == (None, None, False, False)
    with campaign.db.session() as s:
        letter = letter_of(s, DELETER)
        assert letter.state == LetterState.DELETED
        # Still looked at once a day (16:00): a letter that comes back takes the verdict with it.
        assert letter.next_poll_at is not None and local(letter.next_poll_at).hour == 16
        (ev,) = [e for e in letter.events if e.to_state == LetterState.DELETED]
        # Deleted at 04-29 09:00: confirmed by the second miss at least an hour after the first.
        assert local(ev.at).date() == date(2024, 4, 29) and local(ev.at).hour >= 10
        assert ev.evidence_ids, "the deletion event keeps the page that proves it"
        files = [s.get(m.EvidenceFile, i) for i in ev.evidence_ids]
        assert {f.kind for f in files} == {"html", "screenshot"}
        for f in files:
            assert (campaign.evidence_dir / f.path).is_file()
        outcomes = [o.outcome for o in letter.observations]
        assert "found" in outcomes
        last_found = max(i for i, o in enumerate(outcomes) if o == "found")
        after = outcomes[last_found + 1:]
        assert len(after) >= 2 and set(after) == {"not_found"}
        daily = [local(o.at) for o in letter.observations[last_found + 1:] if local(o.at).date() > date(2024, 4, 29)]
        assert daily and all(t.hour == 16 for t in daily) and len({t.date() for t in daily}) == len(daily)


def test_backdated_reply_counts_from_the_poll_that_saw_it(campaign):
    r = row_of(campaign.report, BACKDATER)
    assert "possibly_backdated" in r["flags"]
    with campaign.db.session() as s:
        letter = letter_of(s, BACKDATER)
        first_seen = next(o for o in letter.observations if o.replied)
        # The site shows 2024-04-29 15:00; polls after that time on 04-29 saw no reply.
        assert local(first_seen.displayed_reply_at) == at(2024, 4, 29, 15, 0)
        assert first_seen.displayed_raw == "2024-04-29 15:00"
        assert any(o.outcome == "found" and not o.replied and o.at > first_seen.displayed_reply_at
                   for o in letter.observations)
    replied = when(r["replied_at"])
    assert replied == local(first_seen.at)
    assert replied != at(2024, 4, 29, 15, 0)
    assert at(2024, 4, 30, 15, 0) <= replied < at(2024, 4, 30, 23, 59)   # the real reply: 04-30 15:00
    assert (r["working_days"], r["within_deadline"], r["same_day"]) == (3, True, False)


def test_site_that_never_replies(campaign):
    r = row_of(campaign.report, SILENT)
    assert r["status"] == "no_reply"
    assert (r["replied_at"], r["working_days"], r["within_deadline"], r["same_day"]) == (None, None, False, False)
    with campaign.db.session() as s:
        letter = letter_of(s, SILENT)
        assert letter.state == LetterState.OVERDUE                      # past 05-07 23:59:59, still watched
        assert letter.next_poll_at is not None
        assert all(o.outcome == "found" and not o.replied for o in letter.observations)


def test_summary_and_sentence(campaign):
    assert campaign.report["summary"] == {
        "sites": 7, "letters": 8, "within_deadline_sites": 5, "same_day_sites": 2,
        "deleted_sites": 1, "no_reply_sites": 1, "awaiting_sites": 0, "as_of": "2024-05-08T18:00:00+08:00",
    }
    sentence = campaign.report["sentence"]
    assert sentence.startswith("在互动回应专项检查中，5家网站的测试信件能按要求做到5个工作日内回复，"
                               "其中2家网站均做到当日回复。")
    assert SILENT in sentence and DELETER in sentence


# -- what the sandbox received -------------------------------------------------------------------

def test_sandbox_received_exactly_one_letter_per_mailbox(campaign):
    got = campaign.sandbox.received()
    per_mailbox = Counter((x.site, x.mailbox) for x in got)
    expected = {(s["name"], mb) for s in ROSTER_DATA["site"] for mb in s["mailboxes"]}
    assert set(per_mailbox) == expected
    assert set(per_mailbox.values()) == {1}, per_mailbox
    assert all(x.received_at == SUBMIT_AT for x in got)
    with campaign.db.session() as s:
        letters = s.scalars(select(m.Letter)).all()
        ours = {(x.mailbox.site.name, x.mailbox.kind): (x.tracking_code, x.title, x.body) for x in letters}
    theirs = {(x.site, x.mailbox): (x.tracking_code, x.title, x.body) for x in got}
    assert ours == theirs


# -- the database's history ------------------------------------------------------------------------

def test_every_letter_has_its_lifecycle_events(campaign):
    with campaign.db.session() as s:
        letters = s.scalars(select(m.Letter)).all()
        assert len(letters) == 8
        for letter in letters:
            states = [e.to_state for e in letter.events]
            assert states[:3] == [LetterState.PLANNED, LetterState.SUBMITTING, LetterState.SUBMITTED], (letter.mailbox.site.name, states)
            assert [e.from_state for e in letter.events][:3] == [None, LetterState.PLANNED, LetterState.SUBMITTING]
            assert len(states) == len(set(states)), states          # never twice in a state
            assert letter.attempts == 1
            submitted = letter.events[2]
            assert submitted.evidence_ids and letter.tracking_code in submitted.reason
            assert [e.at for e in letter.events] == sorted(e.at for e in letter.events)
            assert letter.state in (LetterState.REPLIED, LetterState.DELETED, LetterState.OVERDUE)
            assert states[-1] == letter.state


def test_every_observation_keeps_its_page_and_a_picture_of_every_change(campaign):
    """Polls read the query page without a browser (http = true): each keeps the page's HTML; a
    picture is rendered from it whenever what the poll saw differs from the poll before (the
    first poll after the submission, whose page has its picture, only when it changes the
    letter's state), so every change (a status, a reply, a disappearance) has its screenshot."""
    pictures = 0
    with campaign.db.session() as s:
        observations = s.scalars(select(m.Observation).order_by(m.Observation.letter_id, m.Observation.id)).all()
        assert len(observations) >= 30
        assert campaign.result.polls == len(observations)
        previous: dict[int, tuple] = {}
        for o in observations:
            assert o.channel == "site_query"
            assert o.outcome in ("found", "not_found"), (o.outcome, o.detail)
            html = s.get(m.EvidenceFile, o.html_id)
            assert html.kind == "html" and (campaign.evidence_dir / html.path).stat().st_size == html.size
            seen = (o.outcome, o.site_status, o.reply_text, o.displayed_raw)
            if o.letter_id in previous and previous[o.letter_id] != seen:
                assert o.screenshot_id is not None, (o.letter_id, seen)
                shot = s.get(m.EvidenceFile, o.screenshot_id)
                assert shot.kind == "screenshot" and (campaign.evidence_dir / shot.path).is_file()
                pictures += 1
            previous[o.letter_id] = seen
    assert 0 < pictures < len(observations)          # rendered for changes, not for every poll


# -- running it again ------------------------------------------------------------------------------

def test_a_second_run_on_the_same_database_sends_nothing(campaign):
    before = len(campaign.sandbox.received())
    with campaign.db.session() as s:
        events_before = s.query(m.LetterEvent).count()
    again = run_async(simulate(campaign.roster, SimClock(campaign.roster.campaign.submit_at),
                                 campaign.sandbox.base_url, campaign.db, campaign.config,
                                 campaign.evidence_dir, campaign.calendar))
    assert again.submissions == 0
    assert len(campaign.sandbox.received()) == before == 8
    with campaign.db.session() as s:
        assert s.query(m.Letter).count() == 8
        assert s.query(m.Site).count() == 7
        assert s.query(m.LetterEvent).count() == events_before
    rows, meta = campaign_rows(campaign.db, campaign.roster.campaign.name, campaign.calendar,
                               as_of=campaign.roster.campaign.end_at)
    report = report_dict(rows, meta)
    assert report["rows"] == campaign.report["rows"]
