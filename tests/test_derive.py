"""Replies, deletions and flags derived from observations (no browser needed: pure rules)."""

from datetime import datetime, timedelta

from bot.campaign.derive import Seen, deletion_time, derive
from bot.clock import SHANGHAI

S = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)


def at(day, hh, mm=0):
    return datetime(2024, 4, day, hh, mm, tzinfo=SHANGHAI) if day > 20 else datetime(2024, 5, day, hh, mm, tzinfo=SHANGHAI)


def found(t, replied=False, shown=None, date_only=False, channel="site_query"):
    return Seen(channel=channel, at=t, outcome="found", replied=replied, displayed_at=shown, date_only=date_only)


def missing(t, channel="site_query"):
    return Seen(channel=channel, at=t, outcome="not_found")


def test_displayed_time_is_the_reply_time_and_first_seen_is_kept():
    d = derive([found(at(26, 12)), found(at(26, 16), True, at(26, 14, 30))], S)
    assert d.reply.replied_at == at(26, 14, 30)
    assert d.reply.first_seen_at == at(26, 16)
    assert d.reply.flags == []


def test_backdated_when_an_earlier_poll_after_the_shown_time_saw_no_reply():
    polls = [found(at(28, 10)), found(at(28, 12)), found(at(29, 10)), found(at(29, 12), True, at(28, 10, 30))]
    d = derive(polls, S)
    assert "possibly_backdated" in d.reply.flags
    # The shown time cannot be true: the credible time is when we first saw the reply.
    assert d.reply.replied_at == at(29, 12)


def test_a_gap_between_polls_alone_is_not_backdating():
    polls = [found(at(26, 18)), found(at(27, 8), True, at(26, 22))]
    assert derive(polls, S).reply.flags == []


def test_poll_within_skew_tolerance_of_shown_time_is_not_backdating():
    polls = [found(at(26, 14, 32)), found(at(26, 16), True, at(26, 14, 30))]
    assert derive(polls, S).reply.flags == []


def test_site_time_before_submission_and_clock_skew():
    d = derive([found(at(26, 12), True, at(25, 9))], S)
    assert "site_time_before_submission" in d.reply.flags
    assert d.reply.replied_at == at(26, 12)
    d = derive([found(at(26, 12), True, at(26, 15))], S)
    assert "clock_skew" in d.reply.flags
    assert d.reply.replied_at == at(26, 12)


def test_date_only_time_is_compared_by_date():
    d = derive([found(at(26, 12)), found(at(29, 9), True, at(28, 0), date_only=True)], S)
    assert d.reply.flags == ["date_only_reply_time"]
    assert d.reply.replied_at.date() == at(28, 0).date()
    # A found-without-reply poll later on the shown date is not evidence against a date.
    d = derive([found(at(28, 18)), found(at(29, 9), True, at(28, 0), date_only=True)], S)
    assert "possibly_backdated" not in d.reply.flags
    d = derive([found(at(29, 8)), found(at(29, 9), True, at(28, 0), date_only=True)], S)
    assert "possibly_backdated" in d.reply.flags


def test_earliest_credible_reply_over_channels():
    d = derive([found(at(29, 10), True, at(29, 9)), found(at(28, 10), True, at(28, 9), channel="site_list")], S)
    assert d.reply.channel == "site_list" and d.reply.replied_at == at(28, 9)


def test_deleted_needs_two_misses_an_hour_apart_after_a_sighting():
    assert deletion_time([found(at(26, 12)), missing(at(26, 14))]) is None
    assert deletion_time([found(at(26, 12)), missing(at(26, 14)), missing(at(26, 14, 30))]) is None
    assert deletion_time([found(at(26, 12)), missing(at(26, 14)), missing(at(26, 16))]) == at(26, 16)
    # A sighting in between breaks the run.
    assert deletion_time([found(at(26, 12)), missing(at(26, 14)), found(at(26, 15)), missing(at(26, 16))]) is None
    # Errors and challenge pages neither confirm nor break it.
    err = Seen(channel="site_query", at=at(26, 15), outcome="error")
    assert deletion_time([found(at(26, 12)), missing(at(26, 14)), err, missing(at(26, 16))]) == at(26, 16)


def test_never_seen_letter_is_not_deleted():
    d = derive([missing(at(26, 12)), missing(at(26, 14)), missing(at(26, 18))], S)
    assert d.deleted_at is None and not d.ever_found and d.reply is None


def test_acknowledgement_alone_is_not_a_reply():
    ack = Seen(channel="email", at=at(26, 11), outcome="found", replied=True, displayed_at=at(26, 10, 5), ack=True)
    d = derive([ack], S)
    assert d.reply is None and d.ack is not None and d.flags == ["ack_only"]
