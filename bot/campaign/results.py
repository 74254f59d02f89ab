"""From the database to report rows: one row per test letter, as of a moment.

Each row is judged afresh (bot.campaign.verdict) from the letter's events and the observations
made up to `as_of`: what was seen later does not exist for it, and a letter whose deadline is
after `as_of` is awaiting, never "no reply".

A campaign may hold a hundred thousand letters and ten times as many observations, so the rows
are read with four plain queries (sites with their mailboxes, letters, events, observations),
the last two streamed in the table's order (letters by mailbox, see `_LETTER_ORDER`), one letter
held at a time, instead of loading every object of the campaign through the ORM.
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Text, cast, select

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

# The keys of an observation's `detail` the derivation reads (bot.campaign.lifecycle.seen_of).
# Most details (a poll's message, a mail's headers) name neither, and are not parsed at all.
SEEN_DETAIL_KEYS = ("ack", "flags")
_SEEN_KEY_TEXTS = tuple(f'"{k}"' for k in SEEN_DETAIL_KEYS)

# The rows' order, made explicit: what the ORM query gave before (SQLite read the campaign's
# letters through its unique index on (campaign_id, mailbox_id, seq)). The table sorts rows by
# group, roster place and mailbox; rows equal in those keep this order.
_LETTER_ORDER = (m.Letter.mailbox_id, m.Letter.seq)
# A mailbox's place within its site (ReportRow.mailbox_order): its place among the site's
# mailboxes by kind, as SQLite gave `site.mailboxes` (through the unique (site_id, kind) index).
_MAILBOX_ORDER = (m.Mailbox.site_id, m.Mailbox.kind)


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

        # Every mailbox of every site the campaign wrote to: label, site, place within the site.
        used_sites = select(MB.site_id).join(L, L.mailbox_id == MB.id).where(mine)
        mailboxes: dict[int, tuple] = {}
        place: dict[int, int] = {}
        for mb_id, site_id, label, name, group, roster, moderated in s.execute(
                select(MB.id, MB.site_id, MB.label, S.name, S.group, S.roster_order, S.moderated)
                .join(S, S.id == MB.site_id).where(MB.site_id.in_(used_sites)).order_by(*_MAILBOX_ORDER)):
            order = place[site_id] = place.get(site_id, -1) + 1
            mailboxes[mb_id] = (name, group, roster, label, order, bool(moderated))

        letters = s.execute(
            select(L.id, L.mailbox_id, L.seq, L.state, L.submitted_at, L.planned_at, L.failure_kind, L.failure,
                   L.captcha_by).where(mine).order_by(*_LETTER_ORDER)).all()
        # Events and observations in the letters' order: the join walks the letters in that
        # order and each letter's rows through the letter_id index (no sort of the whole table).
        events = s.execute(
            select(L.mailbox_id, L.seq, E.at, E.to_state).join(L, L.id == E.letter_id).where(mine)
            .order_by(*_LETTER_ORDER, E.id))
        observations = s.execute(
            select(L.mailbox_id, L.seq, O.channel, O.at, O.outcome, O.replied, O.displayed_reply_at,
                   O.displayed_date_only, O.id, cast(O.detail, Text))
            .join(L, L.id == O.letter_id).where(mine, O.at <= as_of)
            .order_by(*_LETTER_ORDER, O.id))
        events_of = _per_letter(events)
        observations_of = _per_letter(observations)

        rows: list[ReportRow] = []
        for lid, mb_id, seq, state, submitted_at, planned_at, failure_kind, failure, captcha in letters:
            history = History(events=tuple((at, to) for _, _, at, to in events_of((mb_id, seq))),
                              submitted_at=submitted_at, failure_kind=failure_kind,
                              retry_pending=state in SUBMITTABLE and planned_at is not None)
            obs = observations_of((mb_id, seq))
            site, group, roster, label, mb_order, moderated = mailboxes[mb_id]
            v = judge(history, _seen(obs), as_of, calendar, days, cutoff, moderated=moderated)
            rows.append(ReportRow(
                letter_id=lid, site=site, group=group, roster_order=roster,
                mailbox=label, mailbox_order=mb_order,
                submitted_at=v.submitted_at, replied_at=v.replied_at, reply_date_only=v.reply_date_only,
                working_days=v.working_days, within_deadline=v.within_deadline, same_day=v.same_day,
                status=v.status, flags=v.flags, reply_channel=v.reply_channel,
                note=_note(obs, v, failure), captcha=captcha, estimated=v.estimated))
        meta = ReportMeta(campaign=campaign.name, deadline_workdays=days, cutoff=campaign.cutoff,
                          estimated=any(r.estimated for r in rows), generated_at=generated_at, as_of=as_of)
        return rows, meta


def _per_letter(result):
    """`take(mailbox_id, seq)` -> that letter's rows of `result`, whose rows start with the
    letter's (mailbox_id, seq) and come in the letters' order; asked for in that order. Rows of
    a letter not asked for (one added while the report was read) are passed over."""
    groups = groupby(result, key=itemgetter(0, 1))
    ahead = next(groups, None)

    def take(key: tuple[int, int]) -> list:
        nonlocal ahead
        while ahead is not None and ahead[0] < key:
            ahead = next(groups, None)
        if ahead is None or ahead[0] != key:
            return []
        rows = list(ahead[1])
        ahead = next(groups, None)
        return rows

    return take


def _seen(obs: list) -> list[Seen]:
    """The derivation's view of the stored observations (as bot.campaign.lifecycle.seen_of)."""
    out = []
    for _, _, channel, at, outcome, replied, shown, date_only, oid, detail in obs:
        ack, flags = False, ()
        if detail is not None and any(k in detail for k in _SEEN_KEY_TEXTS):
            d = json.loads(detail) or {}
            ack, flags = bool(d.get("ack")), tuple(d.get("flags", ()))
        out.append(Seen(channel, at, outcome, replied, shown, date_only, ack, oid, flags))
    return out


def _note(obs: list, v, failure: str | None) -> str:
    """备注's free text: the inspector's words for a reply recorded by hand, or why a
    submission did not go through."""
    if v.reply_channel == Channel.MANUAL:
        raw = next((o[9] for o in obs if o[8] == v.reply_observation_id), None)
        detail = (json.loads(raw) or {}) if raw is not None else {}
        if detail.get("note"):
            return f"{'电话' if detail.get('via') == 'phone' else '短信'}回复：{detail['note']}"
        return ""
    return "" if v.submitted_at is not None else (failure or "")
