"""Replies, deletions and flags derived from observations (DESIGN.md "Reply and deletion evidence").

Pure functions over what the polls saw, so they can be recomputed at any time and tested
without a browser. Observations are never edited; only this derivation changes. Everything is
"as of" a moment: an observation made after it does not exist for the derivation, so a verdict
as of a moment never changes when more is seen later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bot.clock import SHANGHAI, local
from bot.vocab import SITE_CHANNELS, Channel, Flag, Outcome

# Polls are made by our clock and the displayed time by the site's: a few minutes either way
# is clock skew, not evidence.
SKEW_TOLERANCE = timedelta(minutes=5)
# Deleted: at least two consecutive covered misses of a letter seen before, this far apart.
DELETION_MIN_SPAN = timedelta(hours=1)
# Flags an observation may carry that stay doubts of the row even when it is not the reply.
DOUBTS = (Flag.UNKNOWN_STATUS, Flag.ACK_OR_REPLY_UNCERTAIN)


@dataclass(slots=True)
class Seen:
    """The part of an observation the derivation needs. Not frozen, slotted: a report makes one
    for every observation of the campaign, and a frozen dataclass is several times slower to
    build; nothing changes one once made."""

    channel: Channel
    at: datetime                     # when we saw it (the poll, the mail sync, the record)
    outcome: Outcome
    replied: bool = False
    displayed_at: datetime | None = None   # the site's 回复时间, the mail's INTERNALDATE
    date_only: bool = False
    ack: bool = False                # an acknowledgement (受理/自动回复), not an answer
    id: int | None = None
    flags: tuple[str, ...] = ()      # what the channel itself found (unparsed_reply_time, ...)


@dataclass
class ReplyFinding:
    channel: Channel
    replied_at: datetime             # the credible reply time
    first_seen_at: datetime
    displayed_at: datetime | None
    date_only: bool
    flags: list[str] = field(default_factory=list)
    observation_id: int | None = None

    @property
    def reply_day(self) -> date:
        return local(self.replied_at).date()


@dataclass
class Derived:
    reply: ReplyFinding | None
    ack: ReplyFinding | None
    ever_found: bool                 # a site channel found the letter at least once
    deleted_at: datetime | None      # the covered miss that confirmed the deletion
    never_visible: bool              # never found, and covered misses say it is not there
    last_site_outcome: Outcome | None
    flags: list[str]


def _shown_day(s: Seen) -> date:
    return local(s.displayed_at).date()


def reply_from(channel_obs: list[Seen], submitted_at: datetime, ack: bool = False) -> ReplyFinding | None:
    """The reply one channel shows, with its flags. `channel_obs` sorted by time.

    The credible time is the displayed one unless something contradicts it (before the
    submission, after we first saw the reply, or an earlier poll after it saw none), else the
    first poll that saw it; it is never before the submission nor after the first sighting."""
    hits = [o for o in channel_obs if o.replied and o.ack == ack]
    if not hits:
        return None
    first = hits[0]
    seen_at = first.at                # the channel's first sighting of a reply bounds it
    if first.channel == Channel.EMAIL:
        # Mails read in one sync share the observation time: the earliest arrival is the reply.
        first = min(hits, key=lambda o: (o.displayed_at or o.at, o.at))
    flags: list[str] = list(first.flags)
    shown = first.displayed_at
    credible = first.at
    if shown is not None:
        if first.date_only:
            flags.append(Flag.DATE_ONLY_REPLY_TIME)
            before = _shown_day(first) < local(submitted_at).date()
            skew = _shown_day(first) > local(first.at).date()
            # An earlier poll on a later day than the shown date saw the letter unanswered.
            backdated = any(o.outcome == Outcome.FOUND and not o.replied and local(o.at).date() > _shown_day(first)
                            for o in channel_obs if o.at < first.at)
        else:
            before = shown < submitted_at - SKEW_TOLERANCE
            skew = shown > first.at + SKEW_TOLERANCE
            backdated = any(o.outcome == Outcome.FOUND and not o.replied and o.at > shown + SKEW_TOLERANCE
                            for o in channel_obs if o.at < first.at)
        if before:
            flags.append(Flag.SITE_TIME_BEFORE_SUBMISSION)
        if skew:
            flags.append(Flag.CLOCK_SKEW)
        if backdated:
            flags.append(Flag.POSSIBLY_BACKDATED)
        # A site that shows a row's last-modified time as its reply time moves it with every
        # edit: what it showed when we first saw the reply stands, and the move is said.
        if any(o.displayed_at is not None and o.displayed_at != shown for o in hits if o.at > first.at):
            flags.append(Flag.REPLY_TIME_MOVED)
        if not (before or skew or backdated):
            # A date alone says "some time that day": its start, but never before the letter
            # was sent. A displayed time a little off (within the tolerance) is clock skew:
            # the submission and the first sighting bound it.
            credible = (datetime.combine(_shown_day(first), time(0), tzinfo=SHANGHAI)
                        if first.date_only else shown)
            credible = max(credible, submitted_at)
    credible = min(credible, seen_at)
    return ReplyFinding(channel=first.channel, replied_at=credible, first_seen_at=seen_at,
                        displayed_at=shown, date_only=first.date_only and shown is not None,
                        flags=flags, observation_id=first.id)


def _site_looks(obs: list[Seen]) -> list[Seen]:
    """The site polls that say something about the letter's presence: found, or a covered miss.
    Errors, challenge pages and lists that did not reach back far enough prove nothing, so they
    neither confirm nor break a run of misses."""
    return [o for o in obs if o.channel in SITE_CHANNELS and o.outcome in (Outcome.FOUND, Outcome.NOT_FOUND)]


def _confirmed(misses: list[Seen]) -> datetime | None:
    """The miss that makes a run of covered misses a proof: at least two, DELETION_MIN_SPAN apart."""
    for o in misses[1:]:
        if o.at - misses[0].at >= DELETION_MIN_SPAN:
            return o.at
    return None


def deletion_time(obs: list[Seen]) -> datetime | None:
    """When a letter that a site poll once found was confirmed gone: two consecutive covered
    misses after its last sighting, at least DELETION_MIN_SPAN apart. A sighting after them
    starts again (the state is not sticky)."""
    looks = _site_looks(obs)
    last_found = max((i for i, o in enumerate(looks) if o.outcome == Outcome.FOUND), default=None)
    if last_found is None:
        return None
    return _confirmed(looks[last_found + 1:])


def derive(obs: list[Seen], submitted_at: datetime, as_of: datetime | None = None) -> Derived:
    """Everything the observations made up to `as_of` (all of them when None) say."""
    obs = sorted((o for o in obs if as_of is None or o.at <= as_of), key=lambda o: o.at)
    by_channel: dict[Channel, list[Seen]] = {}
    for o in obs:
        by_channel.setdefault(o.channel, []).append(o)
    replies = [r for ch in by_channel.values() if (r := reply_from(ch, submitted_at))]
    acks = [r for ch in by_channel.values() if (r := reply_from(ch, submitted_at, ack=True))]
    # The earliest credible time over all channels wins (DESIGN.md).
    reply = min(replies, key=lambda r: r.replied_at) if replies else None
    ack = min(acks, key=lambda r: r.replied_at) if acks else None
    looks = _site_looks(obs)
    ever_found = any(o.outcome == Outcome.FOUND for o in looks)
    deleted_at = deletion_time(obs)
    never_visible = not ever_found and _confirmed(looks) is not None
    site = [o for o in obs if o.channel in SITE_CHANNELS]
    flags = list(reply.flags) if reply else []
    if reply is None and ack is not None:
        flags.append(Flag.ACK_ONLY)
        flags += [f for f in ack.flags if f in DOUBTS]
    if reply is not None and deleted_at is not None and deleted_at > reply.first_seen_at:
        flags.append(Flag.DELETED_AFTER_REPLY)
    flags += [f for o in obs for f in o.flags if f in DOUBTS]
    if any(o.outcome == Outcome.BLOCKED for o in site):
        flags.append(Flag.BLOCKED_POLLS)
    if any(o.outcome == Outcome.NOT_COVERED for o in site):
        flags.append(Flag.NOT_COVERED_POLLS)
    if _seen_again(looks):
        flags.append(Flag.SEEN_AGAIN)
    return Derived(reply=reply, ack=ack, ever_found=ever_found, deleted_at=deleted_at,
                   never_visible=never_visible, last_site_outcome=site[-1].outcome if site else None,
                   flags=list(dict.fromkeys(flags)))


def _seen_again(looks: list[Seen]) -> bool:
    """Found, then confirmed gone, then found again: worth saying in the remarks."""
    first = next((i for i, o in enumerate(looks) if o.outcome == Outcome.FOUND), None)
    if first is None:
        return False
    run: list[Seen] = []
    for o in looks[first + 1:]:
        if o.outcome == Outcome.NOT_FOUND:
            run.append(o)
        else:
            if _confirmed(run) is not None:
                return True
            run = []
    return False
