"""Replies an inspector records by hand: a phone call or an SMS from the site.

Recorded as an observation of channel `manual` (who said it, when, the note), so the reply is
derived like any other: the earliest credible reply over all channels wins.
"""

from __future__ import annotations

from datetime import datetime

from bot.campaign.lifecycle import Lifecycle
from bot.clock import Clock, aware
from bot.errors import UserError
from bot.store import models as m
from bot.store.db import Database

MANUAL_CHANNELS = ("phone", "sms")


def record_manual_reply(db: Database, letter_id: int, at: datetime, via: str, note: str,
                        clock: Clock, lifecycle: Lifecycle) -> m.Letter:
    """Adds the callback as an observation and re-derives the letter; polling stops."""
    if via not in MANUAL_CHANNELS:
        raise UserError(f"--channel: {via!r} is not one of {', '.join(MANUAL_CHANNELS)}")
    at = aware(at)
    now = clock.now()
    with db.session() as s:
        letter = s.get(m.Letter, letter_id)
        if letter is None:
            raise UserError(f"LETTER: no letter with id {letter_id}")
        if letter.submitted_at is None:
            raise UserError(f"LETTER: letter {letter_id} was never submitted (state {letter.state})")
        if at < letter.submitted_at:
            raise UserError(f"--at: {at.isoformat()} is before the letter was submitted ({letter.submitted_at.isoformat()})")
        if at > now:
            raise UserError(f"--at: {at.isoformat()} is in the future")
        s.add(m.Observation(letter_id=letter.id, channel="manual", at=now, outcome="found", replied=True,
                            displayed_reply_at=at, reply_text=note or None,
                            detail={"via": via, "note": note, "recorded_at": now.isoformat()}))
        s.flush()
        s.refresh(letter)
        lifecycle.apply(s, letter, now, [], poll_done=True, reschedule=False)
        reply = next((r for r in letter.replies if r.channel == "manual" and r.kind == "answer"), None)
        if reply is not None and note:
            reply.note = f"{'电话' if via == 'phone' else '短信'}回复：{note}"
        s.commit()
        return letter
