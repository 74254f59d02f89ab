"""A letter's row in the table, as of a moment (DESIGN.md "As of", "Responsiveness table").

A pure function of what was recorded up to that moment: the letter's state changes (events)
and the observations of every channel. What is not yet decided is undecided (`None`): a
letter whose deadline has not passed is `awaiting`, never "no reply", and a submission that
failed, may have gone, or waits for the inspector says nothing about the site's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from bot.calendar import END_OF_DAY, WorkCalendar
from bot.campaign.derive import Seen, derive
from bot.clock import SHANGHAI, local
from bot.vocab import SENT_STATES, SITE_CHANNELS, Channel, Flag, FlowOutcome, LetterState, Outcome, RowStatus


@dataclass(frozen=True)
class History:
    """What the letter's own record says, independent of the site's answer."""

    events: tuple[tuple[datetime, LetterState], ...]   # (at, to_state), in the order they happened
    submitted_at: datetime | None
    failure_kind: FlowOutcome | None = None            # how the last failed attempt ended
    retry_pending: bool = False                        # the letter is due again (planned_at set)


@dataclass(frozen=True)
class Verdict:
    status: RowStatus
    submitted_at: datetime | None
    replied_at: datetime | None = None
    reply_channel: Channel | None = None
    reply_date_only: bool = False
    reply_observation_id: int | None = None
    working_days: int | None = None
    within_deadline: bool | None = None
    same_day: bool | None = None
    deadline: datetime | None = None
    flags: tuple[str, ...] = ()
    estimated: bool = False


def state_as_of(history: History, as_of: datetime) -> LetterState | None:
    """The letter's state at `as_of` from its events (None: nothing had happened yet)."""
    state = None
    for at, to_state in history.events:
        if at > as_of:
            break
        state = to_state
    return state


def _failed_for_good(history: History, as_of: datetime) -> bool:
    """A failed attempt is final only when nothing came after it and nothing is due."""
    later = [s for at, s in history.events if at > as_of]
    return not later and not history.retry_pending


def judge(history: History, observations: list[Seen], as_of: datetime, calendar: WorkCalendar,
          deadline_workdays: int = 5, cutoff: time | None = None, moderated: bool = False) -> Verdict:
    """`moderated`: the site publishes letters only after review, so a letter not yet seen
    there is awaiting publication until its deadline."""
    state = state_as_of(history, as_of)
    if state is None or state in (LetterState.PLANNED, LetterState.SUBMITTING):
        return Verdict(RowStatus.NOT_SENT, None)
    if state == LetterState.SUBMIT_FAILED:
        if not _failed_for_good(history, as_of):
            return Verdict(RowStatus.NOT_SENT, None)
        blocked = history.failure_kind == FlowOutcome.BLOCKED
        return Verdict(RowStatus.BLOCKED if blocked else RowStatus.SUBMIT_FAILED, None)
    if state == LetterState.SUBMIT_UNCERTAIN:
        return Verdict(RowStatus.SUBMIT_UNCERTAIN, None)
    if state == LetterState.NEEDS_INSPECTOR:
        return Verdict(RowStatus.NEEDS_INSPECTOR, None)
    assert state in SENT_STATES and history.submitted_at is not None, (state, history.submitted_at)
    return _after_submission(history.submitted_at, observations, as_of, calendar, deadline_workdays, cutoff,
                             moderated)


def _after_submission(submitted: datetime, observations: list[Seen], as_of: datetime,
                      calendar: WorkCalendar, days: int, cutoff: time | None, moderated: bool) -> Verdict:
    d = derive(observations, submitted, as_of)
    deadline, estimated = calendar.deadline(submitted, days, cutoff)
    flags = list(d.flags)
    common = dict(submitted_at=submitted, deadline=deadline)
    if d.reply is not None:
        r = d.reply
        b = calendar.between(submitted, local(r.replied_at).date() if r.date_only else r.replied_at, days, cutoff)
        if b.estimated:
            flags.append(Flag.ESTIMATED_CALENDAR)
        return Verdict(RowStatus.REPLIED, replied_at=r.replied_at, reply_channel=r.channel,
                       reply_date_only=r.date_only, reply_observation_id=r.observation_id,
                       working_days=b.working_days, within_deadline=b.within_deadline, same_day=b.same_day,
                       flags=_flags(flags), estimated=b.estimated, **common)
    if estimated:
        flags.append(Flag.ESTIMATED_CALENDAR)
    if d.deleted_at is not None:
        return Verdict(RowStatus.DELETED, within_deadline=False, same_day=False, flags=_flags(flags),
                       estimated=estimated, **common)
    if as_of <= deadline:
        if moderated and not d.ever_found:
            flags.append(Flag.AWAITING_PUBLICATION)
        receipt_day_ends = datetime.combine(calendar.received_on(submitted, cutoff), END_OF_DAY, tzinfo=SHANGHAI)
        return Verdict(RowStatus.AWAITING, same_day=None if as_of <= receipt_day_ends else False,
                       flags=_flags(flags), estimated=estimated, **common)
    # "No reply" is a finding: a look after the deadline saw the letter unanswered, or saw
    # (covered) that it is not there. Without one, it is not proven.
    after = [o for o in observations if deadline < o.at <= as_of and o.channel in SITE_CHANNELS]
    if not any(o.outcome == Outcome.NOT_FOUND or o.outcome == Outcome.FOUND and (o.ack or not o.replied)
               for o in after):
        # A challenge page stopped the last look: said as such; else the looks proved nothing.
        status = RowStatus.BLOCKED if d.last_site_outcome == Outcome.BLOCKED else RowStatus.UNVERIFIED
        return Verdict(status, flags=_flags(flags), estimated=estimated, **common)
    status = RowStatus.NEVER_VISIBLE if d.never_visible else RowStatus.NO_REPLY
    return Verdict(status, within_deadline=False, same_day=False, flags=_flags(flags), estimated=estimated, **common)


def _flags(flags: list) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(f) for f in flags))
