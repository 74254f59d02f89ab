"""A letter's life after submission: when to look again, and what the observations mean.

Every state change is an event row with its time, reason and evidence (`transition`). The
state and the replies are re-derived from all observations (`Lifecycle.apply`) after anything
new is seen: a poll of the site, an email, a callback recorded by hand. Nothing here needs a
browser, so the mail sync and the inspector's commands use it as the campaign worker does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.orm import Session

from bot.calendar import WorkCalendar
from bot.campaign.derive import ReplyFinding, Seen, derive
from bot.clock import SHANGHAI, local
from bot.store import models as m
from bot.vocab import SENT_STATES, Channel, LetterState, ReplyKind


def deadline_of(calendar: WorkCalendar, submitted_at: datetime, campaign: m.Campaign) -> datetime:
    """The end of the letter's last working day to reply (with the campaign's cut-off rule)."""
    deadline, _ = calendar.deadline(submitted_at, campaign.deadline_workdays, campaign.cutoff_time)
    return deadline


def transition(session: Session, letter: m.Letter, to_state: str, at: datetime, reason: str = "",
               evidence: list[m.EvidenceFile] | None = None) -> m.LetterEvent:
    ev = m.LetterEvent(letter_id=letter.id, at=at, from_state=letter.state, to_state=to_state,
                       reason=reason, evidence_ids=[e.id for e in (evidence or [])])
    letter.state = to_state
    letter.state_changed_at = at
    session.add(ev)
    return ev


@dataclass
class PollPolicy:
    """When to look again at an open letter.

    Every `every` during working hours of working days (Asia/Shanghai), and outside them only at
    a few fixed moments: once in the evening of a working day, twice on a day off. Replies are
    mostly written in office hours, and this keeps the load on a site (and the timing evidence)
    where it matters: a reply shown with an office-hours time is checked within `every`.
    """

    calendar: WorkCalendar
    every: timedelta = timedelta(hours=2)
    day_start: time = time(8, 0)
    day_end: time = time(18, 0)
    evening: tuple[time, ...] = (time(21, 0),)
    day_off: tuple[time, ...] = (time(10, 0), time(16, 0))
    overdue: tuple[time, ...] = (time(16, 0),)

    def next_after(self, now: datetime, overdue: bool = False) -> datetime:
        """The next poll. Past the deadline the verdict is fixed and the letter is only watched
        for a late reply, once a day."""
        if overdue:
            return self._next_slot(now, lambda day: self.overdue)
        return min(self._next_in_hours(now + self.every), self._next_off_hours_slot(now))

    def _next_in_hours(self, t: datetime) -> datetime:
        t = local(t)
        for _ in range(60):
            day = t.date()
            if self.calendar.is_workday(day):
                start = datetime.combine(day, self.day_start, tzinfo=SHANGHAI)
                end = datetime.combine(day, self.day_end, tzinfo=SHANGHAI)
                if t <= end:
                    return max(t, start)
            t = datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        return t

    def _next_off_hours_slot(self, now: datetime) -> datetime:
        return self._next_slot(now, lambda day: self.evening if self.calendar.is_workday(day) else self.day_off)

    def _next_slot(self, now: datetime, slots_of) -> datetime:
        day = local(now).date()
        for _ in range(60):
            for slot in slots_of(day):
                when = datetime.combine(day, slot, tzinfo=SHANGHAI)
                if when > now:
                    return when
            day += timedelta(days=1)
        raise RuntimeError("no poll slot within 60 days")


class Lifecycle:
    """Applies the derivation rules (bot.campaign.derive) to a letter in the database."""

    def __init__(self, calendar: WorkCalendar, poll: PollPolicy | None = None):
        self.calendar = calendar
        self.poll_policy = poll or PollPolicy(calendar)

    def apply(self, s: Session, letter: m.Letter, now: datetime, evidence: list[m.EvidenceFile],
              poll_done: bool = False, reschedule: bool = True) -> None:
        """Re-derive the letter's replies and state from all its observations (after a poll, an
        email, a record by hand). `poll_done`: a reply was seen, stop polling.
        `reschedule=False` keeps the letter's next poll where it was (an observation that did
        not come from a poll of the site).

        The state follows the evidence both ways: a letter confirmed deleted, or never visible,
        that is seen again becomes submitted again (the earlier misses stay in the record)."""
        if may_have_gone(letter):
            if not any(o.channel == Channel.EMAIL for o in letter.observations):
                return
            # An email from the site about this very letter (matched by its own reply address,
            # code or title, which only the form gave the site) proves it arrived: the
            # submission is resolved, and never repeated (a retry pending is called off).
            was = letter.state
            letter.submitted_at = claim_time(letter) or now
            letter.failure = letter.failure_kind = None
            letter.planned_at = None
            transition(s, letter, LetterState.SUBMITTED, now, "an email from the site about this letter shows it "
                       f"arrived (resolved from {was})", evidence)
        if letter.state not in SENT_STATES:
            return
        d = derive(seen_of(letter.observations), letter.submitted_at)
        if d.ack is not None:
            # Kept as a Reply of kind "ack": the report flags ack_only with it.
            _keep_reply(s, letter, d.ack, ReplyKind.ACK, list(d.ack.flags))
        if d.reply is not None:
            _keep_reply(s, letter, d.reply, ReplyKind.ANSWER, d.flags)
        deadline = deadline_of(self.calendar, letter.submitted_at, letter.campaign)
        target, why = self._state(d, now, deadline, letter.mailbox.site.moderated)
        if target != letter.state:
            transition(s, letter, target, now, why, evidence)
        if target == LetterState.REPLIED and poll_done and not (d.reply.channel == Channel.SITE_LIST and now <= deadline):
            letter.next_poll_at = None
        elif target == LetterState.REPLIED and poll_done:
            # A list's reply time may be the row's last-modified time: looked at once a day until
            # the deadline, so that a move of it is seen (and said), never silently taken.
            letter.next_poll_at = self.poll_policy.next_after(now, overdue=True)
        elif reschedule:
            # Past the deadline, or confirmed deleted, a letter is still looked at once a day: a
            # late reply is a reply, and a letter that comes back takes the verdict with it.
            slow = target == LetterState.DELETED or now > deadline
            letter.next_poll_at = self.poll_policy.next_after(now, overdue=slow)

    @staticmethod
    def _state(d, now: datetime, deadline: datetime, moderated: bool = False) -> tuple[LetterState, str]:
        if d.reply is not None:
            return LetterState.REPLIED, f"reply seen on {d.reply.channel}"
        if d.deleted_at is not None:
            return LetterState.DELETED, ("the letter, seen before, was not found by two consecutive covered "
                                         "looks at least 1 hour apart")
        if d.never_visible and not (moderated and now <= deadline):
            # A moderated site may not have published it yet: only past its deadline is it "never".
            return LetterState.NEVER_VISIBLE, "never found by the site's query or list after submission"
        if now > deadline:
            return LetterState.OVERDUE, f"no reply by the deadline {local(deadline):%Y-%m-%d %H:%M}"
        return LetterState.SUBMITTED, "seen again" if d.ever_found else "watched again"


def may_have_gone(letter: m.Letter) -> bool:
    """Not known to be sent, but tried at least once and not being tried right now: an email
    about it is the proof that it arrived (submit_uncertain; a failed or waiting attempt)."""
    return (letter.submitted_at is None and letter.state in MAY_HAVE_GONE
            and any(e.to_state == LetterState.SUBMITTING for e in letter.events))


# States in which a letter tried before may have reached the site unbeknown to us.
MAY_HAVE_GONE = (LetterState.SUBMIT_UNCERTAIN, LetterState.SUBMIT_FAILED, LetterState.NEEDS_INSPECTOR,
                 LetterState.PLANNED)


def claim_time(letter: m.Letter) -> datetime | None:
    """When the letter was last claimed for submission: the best bound of when it was sent."""
    return next((e.at for e in reversed(letter.events) if e.to_state == LetterState.SUBMITTING), None)


def seen_of(observations) -> list[Seen]:
    """The derivation's view of stored observations."""
    return [Seen(channel=o.channel, at=o.at, outcome=o.outcome, replied=o.replied,
                 displayed_at=o.displayed_reply_at, date_only=o.displayed_date_only,
                 ack=bool((o.detail or {}).get("ack")), id=o.id, flags=tuple((o.detail or {}).get("flags", ())))
            for o in observations]


def _keep_reply(s: Session, letter: m.Letter, found: ReplyFinding, kind: ReplyKind, flags: list) -> m.Reply:
    """The letter's one Reply row for this channel and kind, brought up to date."""
    row = next((r for r in letter.replies if r.channel == found.channel and r.kind == kind), None)
    if row is None:
        row = m.Reply(letter_id=letter.id, channel=found.channel, kind=kind,
                      replied_at=found.replied_at, first_seen_at=found.first_seen_at)
        s.add(row)
        letter.replies.append(row)
    source = s.get(m.Observation, found.observation_id) if found.observation_id else None
    row.replied_at, row.first_seen_at = found.replied_at, found.first_seen_at
    row.displayed_at, row.date_only = found.displayed_at, found.date_only
    row.flags, row.observation_id = flags, found.observation_id
    if source is not None:
        row.text, row.unit = source.reply_text, source.reply_unit
    return row
