"""From the database to report rows: one row per test letter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.calendar import WorkCalendar
from bot.clock import local
from bot.report.rows import ReportMeta, ReportRow
from bot.store import models as m
from bot.store.db import Database

STATUS_FOR_STATE = {
    m.REPLIED: "replied",
    m.DELETED: "deleted",
    m.SUBMIT_FAILED: "submit_failed",
    m.PLANNED: "submit_failed",
    m.SUBMITTING: "submit_uncertain",
    m.SUBMIT_UNCERTAIN: "submit_uncertain",
    m.NEVER_VISIBLE: "never_visible",
    m.NEEDS_INSPECTOR: "needs_inspector",
    m.SUBMITTED: "no_reply",
    m.OVERDUE: "no_reply",
}



def campaign_rows(db: Database, campaign_name: str, calendar: WorkCalendar,
                  generated_at: datetime | None = None) -> tuple[list[ReportRow], ReportMeta]:
    with db.session() as s:
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == campaign_name))
        if campaign is None:
            from bot.errors import UserError

            raise UserError(f"no campaign named {campaign_name!r}")
        cutoff = campaign.cutoff_time
        days = campaign.deadline_workdays
        rows: list[ReportRow] = []
        estimated = False
        letters = s.scalars(select(m.Letter).where(m.Letter.campaign_id == campaign.id)).all()
        for letter in letters:
            mb = letter.mailbox
            site = mb.site
            answers = [r for r in letter.replies if r.kind == "answer"]
            reply = min(answers, key=lambda r: r.replied_at) if answers else None
            flags = list(reply.flags) if reply else []
            if reply is None and any(r.kind == "ack" for r in letter.replies):
                flags.append("ack_only")
            working_days, within, same_day = None, False, False
            if reply is not None and letter.submitted_at is not None:
                replied_on = local(reply.replied_at).date() if reply.date_only else reply.replied_at
                b = calendar.between(letter.submitted_at, replied_on, days, cutoff)
                working_days, within, same_day = b.working_days, b.within_deadline, b.same_day
                if b.estimated:
                    estimated = True
                    flags.append("estimated_calendar")
            status = STATUS_FOR_STATE.get(letter.state, letter.state)
            if letter.state == m.SUBMIT_FAILED and (letter.failure or "").startswith("blocked"):
                status = "blocked"      # a firewall stood in the way: not the site's refusal
            site_polls = [o for o in letter.observations if o.channel in ("site_query", "site_list")]
            if any(o.outcome == "blocked" for o in site_polls):
                flags.append("blocked_polls")
                if reply is None and letter.state in (m.SUBMITTED, m.OVERDUE) and site_polls[-1].outcome == "blocked":
                    # The last look was stopped by a challenge page: no reply was seen, but
                    # "no reply" was not seen either.
                    status = "blocked"
            if reply is not None and letter.state != m.REPLIED:
                status = "replied"
            order = site.mailboxes.index(mb) if mb in site.mailboxes else 0
            rows.append(ReportRow(
                site=site.name, group=site.group, roster_order=site.roster_order,
                mailbox=mb.label, mailbox_order=order,
                submitted_at=letter.submitted_at, replied_at=reply.replied_at if reply else None,
                working_days=working_days, within_deadline=within, same_day=same_day,
                status=status, flags=tuple(dict.fromkeys(flags)),
                reply_channel=reply.channel if reply else None,
                note=reply.note or "" if reply else (letter.failure or ""),
                captcha=letter.captcha_by))
        meta = ReportMeta(campaign=campaign.name, deadline_workdays=days, cutoff=campaign.cutoff,
                          estimated=estimated, generated_at=generated_at)
        return rows, meta
