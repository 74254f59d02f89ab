"""The report of a big campaign is read and written fast, and says exactly what the plain way
says: on a generated campaign of 2,000 letters (benchmarks/report_data.py), `campaign_rows`
gives the rows a letter-by-letter reading through the ORM and `judge()` gives, in the same
order, at three moments; the writers' output is the plain rendering's (json.dumps, the Jinja
table, openpyxl cell by cell)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import seen_of
from bot.campaign.results import campaign_rows
from bot.campaign.verdict import History, judge
from bot.campaign.worker import SUBMITTABLE
from bot.report.rows import ReportRow
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import Channel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import report_data  # noqa: E402

LETTERS = 2000
MOMENTS = (datetime(2024, 4, 24, 6, 30, tzinfo=timezone.utc), report_data.AS_OF,
           report_data.POLLS_UNTIL + timedelta(days=1))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('scale') / 'bench.sqlite3'}"
    report_data.build(url, LETTERS, seed=7)
    d = Database(url)
    yield d
    d.dispose()


def reference_rows(db: Database, name: str, calendar: WorkCalendar, as_of: datetime) -> list[ReportRow]:
    """The plain way: every letter through the ORM with its events and observations, judged
    one by one; letters in the order of their unique index, a mailbox's place among its site's
    mailboxes by kind."""
    with db.session() as s:
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == name))
        letters = s.scalars(select(m.Letter).where(m.Letter.campaign_id == campaign.id)
                            .order_by(m.Letter.mailbox_id, m.Letter.seq).options(
            selectinload(m.Letter.events), selectinload(m.Letter.observations),
            selectinload(m.Letter.mailbox).selectinload(m.Mailbox.site).selectinload(m.Site.mailboxes))).all()
        out = []
        for letter in letters:
            history = History(events=tuple((e.at, e.to_state) for e in letter.events),
                              submitted_at=letter.submitted_at, failure_kind=letter.failure_kind,
                              retry_pending=letter.state in SUBMITTABLE and letter.planned_at is not None)
            site = letter.mailbox.site
            v = judge(history, seen_of(letter.observations), as_of, calendar, campaign.deadline_workdays,
                      campaign.cutoff_time, moderated=site.moderated)
            kinds = sorted(mb.kind for mb in site.mailboxes)
            note = "" if v.submitted_at is not None else (letter.failure or "")
            if v.reply_channel == Channel.MANUAL:
                o = next(o for o in letter.observations if o.id == v.reply_observation_id)
                note = (f"{'电话' if o.detail['via'] == 'phone' else '短信'}回复：{o.detail['note']}"
                        if o.detail.get("note") else "")
            out.append(ReportRow(
                letter_id=letter.id, site=site.name, group=site.group, roster_order=site.roster_order,
                mailbox=letter.mailbox.label, mailbox_order=kinds.index(letter.mailbox.kind),
                submitted_at=v.submitted_at, replied_at=v.replied_at, reply_date_only=v.reply_date_only,
                working_days=v.working_days, within_deadline=v.within_deadline, same_day=v.same_day,
                status=v.status, flags=v.flags, reply_channel=v.reply_channel, note=note,
                captcha=letter.captcha_by, estimated=v.estimated))
        return out


@pytest.mark.parametrize("as_of", MOMENTS, ids=["mid-campaign", "as-of", "after-everything"])
def test_rows_are_the_letter_by_letter_verdicts_in_the_same_order(db, as_of):
    calendar = WorkCalendar()
    fast, meta = campaign_rows(db, report_data.CAMPAIGN, calendar, as_of=as_of)
    slow = reference_rows(db, report_data.CAMPAIGN, calendar, as_of)
    assert len(fast) == len(slow) == LETTERS
    for a, b in zip(fast, slow):
        assert a == b, a.letter_id
    # The campaign has what the comparison needs to mean something.
    statuses = {r.status for r in fast}
    if as_of == report_data.AS_OF:
        assert {"replied", "awaiting", "deleted", "submit_failed", "not_sent"} <= statuses, statuses
        assert any(r.note for r in fast if r.reply_channel == "manual")
        assert any(r.flags for r in fast)
        assert len({(r.site, r.mailbox) for r in fast}) < LETTERS        # a mailbox written to twice
    assert meta.as_of == as_of
