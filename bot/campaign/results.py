"""From the database to report rows: one row per test letter, as of a moment.

Each row is judged afresh (bot.campaign.verdict) from the letter's events and the observations
made up to `as_of`: what was seen later does not exist for it, and a letter whose deadline is
after `as_of` is awaiting, never "no reply".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import seen_of
from bot.campaign.verdict import History, judge
from bot.campaign.worker import SUBMITTABLE
from bot.clock import aware
from bot.errors import UserError
from bot.report.rows import ReportMeta, ReportRow
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import Channel


def campaign_rows(db: Database, campaign_name: str, calendar: WorkCalendar, *, as_of: datetime,
                  generated_at: datetime | None = None) -> tuple[list[ReportRow], ReportMeta]:
    as_of = aware(as_of)
    with db.session() as s:
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == campaign_name))
        if campaign is None:
            raise UserError(f"no campaign named {campaign_name!r}")
        cutoff = campaign.cutoff_time
        days = campaign.deadline_workdays
        letters = s.scalars(select(m.Letter).where(m.Letter.campaign_id == campaign.id).options(
            selectinload(m.Letter.events), selectinload(m.Letter.observations),
            selectinload(m.Letter.mailbox).selectinload(m.Mailbox.site))).all()
        rows: list[ReportRow] = []
        for letter in letters:
            history = History(events=tuple((e.at, e.to_state) for e in letter.events),
                              submitted_at=letter.submitted_at, failure_kind=letter.failure_kind,
                              retry_pending=letter.state in SUBMITTABLE and letter.planned_at is not None)
            v = judge(history, seen_of(letter.observations), as_of, calendar, days, cutoff,
                      moderated=letter.mailbox.site.moderated)
            mb, site = letter.mailbox, letter.mailbox.site
            rows.append(ReportRow(
                letter_id=letter.id, site=site.name, group=site.group, roster_order=site.roster_order,
                mailbox=mb.label, mailbox_order=site.mailboxes.index(mb) if mb in site.mailboxes else 0,
                submitted_at=v.submitted_at, replied_at=v.replied_at, reply_date_only=v.reply_date_only,
                working_days=v.working_days, within_deadline=v.within_deadline, same_day=v.same_day,
                status=v.status, flags=v.flags, reply_channel=v.reply_channel,
                note=_note(letter, v), captcha=letter.captcha_by, estimated=v.estimated))
        meta = ReportMeta(campaign=campaign.name, deadline_workdays=days, cutoff=campaign.cutoff,
                          estimated=any(r.estimated for r in rows), generated_at=generated_at, as_of=as_of)
        return rows, meta


def _note(letter: m.Letter, v) -> str:
    """备注's free text: the inspector's words for a reply recorded by hand, or why a
    submission did not go through."""
    if v.reply_channel == Channel.MANUAL:
        o = next((o for o in letter.observations if o.id == v.reply_observation_id), None)
        detail = (o.detail or {}) if o is not None else {}
        if detail.get("note"):
            return f"{'电话' if detail.get('via') == 'phone' else '短信'}回复：{detail['note']}"
        return ""
    return "" if v.submitted_at is not None else (letter.failure or "")
