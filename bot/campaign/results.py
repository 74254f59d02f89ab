"""From the database to report rows: one row per test letter, as of a moment.

Each row is judged afresh (bot.campaign.verdict) from the letter's events and the observations
made up to `as_of`: what was seen later does not exist for it, and a letter whose deadline is
after `as_of` is awaiting, never "no reply".

A campaign may hold a hundred thousand letters and ten times as many observations, so the rows
are read with four plain queries (sites with their mailboxes, letters, events, observations)
instead of loading every object of the campaign through the ORM, and each observation is kept
only as the derivation's small view of it.
"""

from __future__ import annotations

import json
from datetime import datetime
from operator import attrgetter, itemgetter

from sqlalchemy import Text, case, cast, or_, select

from bot.calendar import WorkCalendar
from bot.campaign.derive import Seen
from bot.campaign.verdict import History, judge
from bot.campaign.worker import SUBMITTABLE
from bot.clock import aware
from bot.errors import UserError
from bot.report.rows import ReportMeta, ReportRow
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import Channel

# The keys of an observation's `detail` the report reads: the derivation's (bot.campaign.
# lifecycle.seen_of) and a reply recorded by hand's note (`_note`, which also reads "via" next
# to it). Most details (a poll's message, a mail's headers) name none, and are not parsed.
DETAIL_KEYS = ("ack", "flags", "note")

# The rows' order, made explicit: what the ORM query gave before (SQLite read the campaign's
# letters through its unique index on (campaign_id, mailbox_id, seq)). The table sorts rows by
# group, roster place and mailbox; rows equal in those keep this order.
_LETTER_ORDER = (m.Letter.mailbox_id, m.Letter.seq)
# A mailbox's place within its site (ReportRow.mailbox_order): its place among the site's
# mailboxes in the order they were made (the site file's), as `Site.mailboxes` gives them.
_MAILBOX_ORDER = (m.Mailbox.site_id, m.Mailbox.id)
# Rows fetched from the database at a time (one call instead of one per row).
_BATCH = 10_000


def campaign_rows(db: Database, campaign_name: str, calendar: WorkCalendar, *, as_of: datetime,
                  generated_at: datetime | None = None) -> tuple[list[ReportRow], ReportMeta]:
    as_of = aware(as_of)
    with db.session() as s:
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == campaign_name))
        if campaign is None:
            raise UserError(f"no campaign named {campaign_name!r}")
        cutoff = campaign.cutoff_time
        days = campaign.deadline_workdays
        L, E, O, MB, S = m.Letter, m.LetterEvent, m.Observation, m.Mailbox, m.Site
        mine = L.campaign_id == campaign.id
        conn = s.connection()      # Core rows: no ORM entities, no buffering of the whole result

        # Every mailbox of every site the campaign wrote to: label, site, place within the site.
        used_sites = select(MB.site_id).join(L, L.mailbox_id == MB.id).where(mine)
        mailboxes: dict[int, tuple] = {}
        place: dict[int, int] = {}
        for mb_id, site_id, label, name, group, roster, moderated in conn.execute(
                select(MB.id, MB.site_id, MB.label, S.name, S.group, S.roster_order, S.moderated)
                .join(S, S.id == MB.site_id).where(MB.site_id.in_(used_sites)).order_by(*_MAILBOX_ORDER)):
            order = place[site_id] = place.get(site_id, -1) + 1
            mailboxes[mb_id] = (name, group, roster, label, order, bool(moderated))

        letters = conn.execute(
            select(L.id, L.mailbox_id, L.state, L.submitted_at, L.planned_at, L.failure_kind, L.failure,
                   L.captcha_by).where(mine).order_by(*_LETTER_ORDER)).all()
        # Events and observations read in one pass over their tables (in storage order; a
        # daemon stores them as it goes, so a letter's rows are spread all over), not through
        # the letter_id index: reading a million rows one index look-up at a time costs three
        # times as much. `+ 0` keeps the database from choosing the index.
        in_campaign = select(L.id).where(mine).scalar_subquery()
        events_of: dict[int, list] = {}
        for lid, at, to, eid in conn.execute(
                select(E.letter_id, E.at, E.to_state, E.id).where((E.letter_id + 0).in_(in_campaign))
                .execution_options(yield_per=_BATCH)):
            events_of.setdefault(lid, []).append((eid, at, to))
        seen_of, manual = _observations(conn, in_campaign, as_of)

        rows: list[ReportRow] = []
        for lid, mb_id, state, submitted_at, planned_at, failure_kind, failure, captcha in letters:
            history = History(events=tuple((at, to) for _, at, to in _by_id(events_of.get(lid, []))),
                              submitted_at=submitted_at, failure_kind=failure_kind,
                              retry_pending=state in SUBMITTABLE and planned_at is not None)
            site, group, roster, label, mb_order, moderated = mailboxes[mb_id]
            v = judge(history, seen_of.get(lid, []), as_of, calendar, days, cutoff, moderated=moderated)
            rows.append(ReportRow(
                letter_id=lid, site=site, group=group, roster_order=roster,
                mailbox=label, mailbox_order=mb_order,
                submitted_at=v.submitted_at, replied_at=v.replied_at, reply_date_only=v.reply_date_only,
                working_days=v.working_days, within_deadline=v.within_deadline, same_day=v.same_day,
                status=v.status, flags=v.flags, reply_channel=v.reply_channel,
                note=_note(manual, v, failure), captcha=captcha, estimated=v.estimated))
        meta = ReportMeta(campaign=campaign.name, deadline_workdays=days, cutoff=campaign.cutoff,
                          estimated=any(r.estimated for r in rows), generated_at=generated_at, as_of=as_of)
        return rows, meta


def _by_id(items: list) -> list:
    """A letter's rows in id order (as the ORM relationships give them): storage order
    already is, almost always."""
    if any(items[i][0] > items[i + 1][0] for i in range(len(items) - 1)):
        items.sort(key=itemgetter(0))
    return items


def _observations(conn, in_campaign, as_of: datetime) -> tuple[dict[int, list[Seen]], dict[int, dict]]:
    """The derivation's view (as bot.campaign.lifecycle.seen_of) of every observation of the
    campaign made up to `as_of`, by letter in id order; and the details of the replies recorded
    by hand, by observation id. A detail is read only when its text names a key the report
    reads: the database hands back the others as null."""
    O = m.Observation
    text = cast(O.detail, Text)
    detail = case((or_(*(text.like(f'%"{k}"%') for k in DETAIL_KEYS)), text), else_=None)
    by_letter: dict[int, list[Seen]] = {}
    manual: dict[int, dict] = {}
    unsorted: set[int] = set()
    last_id: dict[int, int] = {}
    for lid, channel, at, outcome, replied, shown, date_only, oid, raw in conn.execute(
            select(O.letter_id, O.channel, O.at, O.outcome, O.replied, O.displayed_reply_at,
                   O.displayed_date_only, O.id, detail).where((O.letter_id + 0).in_(in_campaign), O.at <= as_of)
            .execution_options(yield_per=_BATCH)):
        ack, flags = False, ()
        if raw is not None:
            d = json.loads(raw) or {}
            ack, flags = bool(d.get("ack")), tuple(d.get("flags", ()))
            if channel == Channel.MANUAL:
                manual[oid] = d
        seen = by_letter.get(lid)
        if seen is None:
            seen = by_letter[lid] = []
        elif oid < last_id[lid]:
            unsorted.add(lid)
        last_id[lid] = oid
        seen.append(Seen(channel, at, outcome, replied, shown, date_only, ack, oid, flags))
    for lid in unsorted:
        by_letter[lid].sort(key=attrgetter("id"))
    return by_letter, manual


def _note(manual: dict[int, dict], v, failure: str | None) -> str:
    """备注's free text: the inspector's words for a reply recorded by hand, or why a
    submission did not go through."""
    if v.reply_channel == Channel.MANUAL:
        detail = manual.get(v.reply_observation_id, {})
        if detail.get("note"):
            return f"{'电话' if detail.get('via') == 'phone' else '短信'}回复：{detail['note']}"
        return ""
    return "" if v.submitted_at is not None else (failure or "")
