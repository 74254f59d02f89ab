"""Replies, deletions and flags derived from observations (DESIGN.md "Reply and deletion evidence").

Pure functions over what the polls saw, so they can be recomputed at any time and tested
without a browser. Observations are never edited; only this derivation changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bot.clock import SHANGHAI, local

# Polls are made by our clock and the displayed time by the site's: a few minutes either way
# is clock skew, not evidence.
SKEW_TOLERANCE = timedelta(minutes=5)
# Deleted: at least two consecutive polls that could not find a letter seen before, this far apart.
DELETION_MIN_SPAN = timedelta(hours=1)
SITE_CHANNELS = ("site_query", "site_list")
# An email observation: `at` is when the sync read it, `displayed_at` its INTERNALDATE (the
# server's arrival time), so the checks below hold for it as for a site's displayed time.
EMAIL_CHANNEL = "email"


@dataclass(frozen=True)
class Seen:
    """The part of an observation the derivation needs."""

    channel: str
    at: datetime
    outcome: str                     # found | not_found | blocked | error
    replied: bool = False
    displayed_at: datetime | None = None
    date_only: bool = False
    ack: bool = False                # an acknowledgement (受理/自动回复), not an answer
    id: int | None = None
    flags: tuple[str, ...] = ()      # flags the channel itself found (email: email_date_mismatch)


@dataclass
class ReplyFinding:
    channel: str
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
    ever_found: bool
    deleted_at: datetime | None      # the second (confirming) not-found poll
    flags: list[str]


def _shown_day(s: Seen) -> date:
    return local(s.displayed_at).date()


def reply_from(channel_obs: list[Seen], submitted_at: datetime, ack: bool = False) -> ReplyFinding | None:
    """The reply one channel shows, with its flags. `channel_obs` sorted by time."""
    hits = [o for o in channel_obs if o.replied and o.ack == ack]
    if not hits:
        return None
    first = hits[0]
    if first.channel == EMAIL_CHANNEL:
        # Mails read in one sync share the observation time: the earliest arrival is the reply.
        first = min(hits, key=lambda o: (o.displayed_at or o.at, o.at))
    flags: list[str] = list(first.flags)
    shown = first.displayed_at
    credible = first.at
    if shown is not None:
        if first.date_only:
            flags.append("date_only_reply_time")
            before = _shown_day(first) < local(submitted_at).date()
            skew = _shown_day(first) > local(first.at).date()
            # An earlier poll on a later day than the shown date saw the letter unanswered.
            backdated = any(o.outcome == "found" and not o.replied and local(o.at).date() > _shown_day(first)
                            for o in channel_obs if o.at < first.at)
        else:
            before = shown < submitted_at - SKEW_TOLERANCE
            skew = shown > first.at + SKEW_TOLERANCE
            backdated = any(o.outcome == "found" and not o.replied and o.at > shown + SKEW_TOLERANCE
                            for o in channel_obs if o.at < first.at)
        if before:
            flags.append("site_time_before_submission")
        if skew:
            flags.append("clock_skew")
        if backdated:
            flags.append("possibly_backdated")
        if not (before or skew or backdated):
            # A date alone says "some time that day": its start, but never before the letter
            # was sent. A displayed time a little before the submission (within tolerance) is
            # clock skew, and the submission time stands.
            credible = (datetime.combine(_shown_day(first), time(0), tzinfo=SHANGHAI)
                        if first.date_only else shown)
            credible = max(credible, submitted_at)
    return ReplyFinding(channel=first.channel, replied_at=credible, first_seen_at=first.at,
                        displayed_at=shown, date_only=first.date_only and shown is not None,
                        flags=flags, observation_id=first.id)


def deletion_time(obs: list[Seen]) -> datetime | None:
    """When a letter that a site poll once found was confirmed gone: two consecutive site polls
    after the last sighting that answered "not found" (not an error or a challenge page), at
    least DELETION_MIN_SPAN apart. Errors and blocked polls neither confirm nor break a run."""
    site_obs = [o for o in obs if o.channel in SITE_CHANNELS and o.outcome in ("found", "not_found")]
    last_found = max((i for i, o in enumerate(site_obs) if o.outcome == "found"), default=None)
    if last_found is None:
        return None
    misses = site_obs[last_found + 1:]
    if len(misses) >= 2 and misses[-1].at - misses[0].at >= DELETION_MIN_SPAN:
        # The first miss that is at least the span after the first one confirms it.
        for o in misses[1:]:
            if o.at - misses[0].at >= DELETION_MIN_SPAN:
                return o.at
    return None


def derive(obs: list[Seen], submitted_at: datetime) -> Derived:
    obs = sorted(obs, key=lambda o: o.at)
    by_channel: dict[str, list[Seen]] = {}
    for o in obs:
        by_channel.setdefault(o.channel, []).append(o)
    replies = [r for ch in by_channel.values() if (r := reply_from(ch, submitted_at))]
    acks = [r for ch in by_channel.values() if (r := reply_from(ch, submitted_at, ack=True))]
    # The earliest credible time over all channels wins (DESIGN.md).
    reply = min(replies, key=lambda r: r.replied_at) if replies else None
    ack = min(acks, key=lambda r: r.replied_at) if acks else None
    ever_found = any(o.outcome == "found" for o in obs if o.channel in SITE_CHANNELS)
    deleted_at = deletion_time(obs)
    flags = list(reply.flags) if reply else []
    if reply is None and ack is not None:
        flags.append("ack_only")
    if reply is not None and deleted_at is not None and deleted_at > reply.first_seen_at:
        flags.append("deleted_after_reply")
    return Derived(reply=reply, ack=ack, ever_found=ever_found, deleted_at=deleted_at, flags=flags)
