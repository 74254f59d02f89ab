"""Properties of the derivation and the as-of verdict (bot.campaign.derive, bot.campaign.verdict),
checked on random observation sequences with Hypothesis: whatever a site, a list, a mailbox and an
inspector show, in whatever order, a verdict is only what the recorded evidence proves.

- never `deleted` without a sighting followed by two consecutive covered misses >= 1 h apart;
- `replied_at` never before the submission nor after the first sighting of a reply;
- an awaiting letter never counts as failed, and "no reply" needs a look after the deadline;
- observations made after `as_of` never change the verdict as of `as_of`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.calendar import WorkCalendar
from bot.campaign.derive import DELETION_MIN_SPAN, Seen
from bot.campaign.verdict import History, judge
from bot.clock import SHANGHAI
from bot.report.rows import ReportRow
from bot.report.summary import failing_sites, summarize
from bot.vocab import SITE_CHANNELS, Channel, LetterState, Outcome, RowStatus

CAL = WorkCalendar()
# Submissions between Friday 2024-04-26 (before the make-up Sunday and May Day) and mid-May.
BASE = datetime(2024, 4, 26, 9, 0, tzinfo=SHANGHAI)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

minutes = st.integers(min_value=1, max_value=20 * 24 * 60)


@st.composite
def observation(draw, submitted: datetime) -> Seen:
    channel = draw(st.sampled_from(list(Channel)))
    at = submitted + timedelta(minutes=draw(minutes))
    if channel in SITE_CHANNELS:
        outcome = draw(st.sampled_from(list(Outcome)))
    else:
        outcome = Outcome.FOUND            # an email or a record by hand is always a sighting
    replied = outcome == Outcome.FOUND and draw(st.booleans()) if channel in SITE_CHANNELS else True
    displayed = None
    date_only = False
    if replied and draw(st.booleans()):
        # A displayed time anywhere from before the submission to after the sighting.
        displayed = at + timedelta(minutes=draw(st.integers(min_value=-30 * 24 * 60, max_value=3 * 24 * 60)))
        date_only = channel in SITE_CHANNELS and draw(st.booleans())
    flags = tuple(draw(st.lists(st.sampled_from(["unparsed_reply_time", "unknown_status",
                                                  "ack_or_reply_uncertain"]), max_size=2)))
    return Seen(channel=channel, at=at, outcome=outcome, replied=replied, displayed_at=displayed,
                date_only=date_only, ack=replied and draw(st.integers(0, 4)) == 0, flags=flags)


@st.composite
def letter(draw):
    submitted = BASE + timedelta(minutes=draw(st.integers(min_value=0, max_value=15 * 24 * 60)))
    obs = draw(st.lists(observation(submitted), max_size=25))
    as_of = submitted + timedelta(minutes=draw(st.integers(min_value=0, max_value=25 * 24 * 60)))
    return submitted, obs, as_of


def verdict(submitted, obs, as_of):
    history = History(events=((submitted, LetterState.SUBMITTED),), submitted_at=submitted)
    return judge(history, obs, as_of, CAL, 5, None)


def _covered_looks(obs, as_of):
    return sorted((o for o in obs if o.channel in SITE_CHANNELS and o.at <= as_of
                   and o.outcome in (Outcome.FOUND, Outcome.NOT_FOUND)), key=lambda o: o.at)


@SETTINGS
@given(letter())
def test_never_deleted_without_a_sighting_and_two_covered_misses_an_hour_apart(case):
    submitted, obs, as_of = case
    v = verdict(submitted, obs, as_of)
    if v.status != RowStatus.DELETED:
        return
    looks = _covered_looks(obs, as_of)
    last_found = max(i for i, o in enumerate(looks) if o.outcome == Outcome.FOUND)   # a sighting exists
    misses = looks[last_found + 1:]
    assert misses and all(o.outcome == Outcome.NOT_FOUND for o in misses)
    assert len(misses) >= 2 and misses[-1].at - misses[0].at >= DELETION_MIN_SPAN
    # Only covered misses count: lists that did not reach back, errors and challenges never do.
    assert not any(o.outcome in (Outcome.NOT_COVERED, Outcome.ERROR, Outcome.BLOCKED) for o in misses)


@SETTINGS
@given(letter())
def test_reply_time_is_between_the_submission_and_the_first_sighting(case):
    submitted, obs, as_of = case
    v = verdict(submitted, obs, as_of)
    answers = [o for o in obs if o.replied and not o.ack and o.at <= as_of]
    if v.status != RowStatus.REPLIED:
        assert not answers
        return
    assert submitted <= v.replied_at <= min(o.at for o in answers)
    assert v.working_days is not None and v.working_days >= 0
    assert v.within_deadline == (v.working_days <= 5)


@SETTINGS
@given(letter())
def test_an_awaiting_letter_never_counts_as_failed(case):
    submitted, obs, as_of = case
    v = verdict(submitted, obs, as_of)
    if v.status != RowStatus.AWAITING:
        if v.status in (RowStatus.NO_REPLY, RowStatus.NEVER_VISIBLE):
            # "no reply" only once the deadline has passed, and a look since then saw it so.
            assert as_of > v.deadline
            assert any(v.deadline < o.at <= as_of and o.channel in SITE_CHANNELS
                       and (o.outcome == Outcome.NOT_FOUND or o.outcome == Outcome.FOUND and (o.ack or not o.replied))
                       for o in obs)
        return
    assert as_of <= v.deadline and v.within_deadline is None and v.replied_at is None
    row = ReportRow(site="甲局", group="市级部门网站", roster_order=0, mailbox="领导信箱", mailbox_order=0,
                    submitted_at=submitted, replied_at=None, working_days=None, within_deadline=None,
                    same_day=v.same_day, status=v.status, flags=v.flags)
    s = summarize([row])
    assert (s["no_reply_sites"], s["deleted_sites"], s["within_deadline_sites"], s["awaiting_sites"]) == (0, 0, 0, 1)
    assert failing_sites([row]) == []


@SETTINGS
@given(letter(), st.data())
def test_what_is_seen_after_as_of_never_changes_the_verdict_as_of_it(case, data):
    submitted, obs, as_of = case
    later = data.draw(st.lists(observation(submitted), max_size=10))
    later = [o for o in later if o.at > as_of]
    assume(later)
    assert verdict(submitted, obs + later, as_of) == verdict(submitted, obs, as_of)


@SETTINGS
@given(letter(), st.data())
def test_looks_that_prove_nothing_never_make_a_deletion(case, data):
    """Adding not_covered, error or blocked looks anywhere never turns a verdict into `deleted`
    (nor takes a deletion away: they neither confirm nor break a run of misses)."""
    submitted, obs, as_of = case
    noise = data.draw(st.lists(st.builds(
        Seen, channel=st.sampled_from(list(SITE_CHANNELS)),
        at=st.builds(lambda m: submitted + timedelta(minutes=m), minutes),
        outcome=st.sampled_from([Outcome.NOT_COVERED, Outcome.ERROR, Outcome.BLOCKED])), min_size=1, max_size=8))
    before = verdict(submitted, obs, as_of)
    after = verdict(submitted, obs + noise, as_of)
    assert (before.status == RowStatus.DELETED) == (after.status == RowStatus.DELETED)
