"""bot.calendar against the State Council's published holiday schedules.

The expected data below is typed in from the official notices, not derived from the `holidays`
package that the product uses, so these tests catch the package (or our use of it) being wrong:

- 2024: 国务院办公厅关于2024年部分节假日安排的通知（国办发明电〔2023〕7号）
- 2025: 国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕12号）
- 2026: 国务院办公厅关于2026年部分节假日安排的通知（国办发明电〔2025〕7号）
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from bot.calendar import PACKAGE_OFFICIAL_THROUGH, Override, WorkCalendar, load_overrides
from bot.clock import SHANGHAI
from bot.errors import ConfigError

D = date.fromisoformat


def T(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (holiday, first day off, last day off, make-up working days) -- literally from the notices.
NOTICES: dict[int, list[tuple[str, str, str, tuple[str, ...]]]] = {
    2024: [
        ("元旦", "2024-01-01", "2024-01-01", ()),
        ("春节", "2024-02-10", "2024-02-17", ("2024-02-04", "2024-02-18")),
        ("清明节", "2024-04-04", "2024-04-06", ("2024-04-07",)),
        ("劳动节", "2024-05-01", "2024-05-05", ("2024-04-28", "2024-05-11")),
        ("端午节", "2024-06-10", "2024-06-10", ()),
        ("中秋节", "2024-09-15", "2024-09-17", ("2024-09-14",)),
        ("国庆节", "2024-10-01", "2024-10-07", ("2024-09-29", "2024-10-12")),
    ],
    2025: [
        ("元旦", "2025-01-01", "2025-01-01", ()),
        ("春节", "2025-01-28", "2025-02-04", ("2025-01-26", "2025-02-08")),
        ("清明节", "2025-04-04", "2025-04-06", ()),
        ("劳动节", "2025-05-01", "2025-05-05", ("2025-04-27",)),
        ("端午节", "2025-05-31", "2025-06-02", ()),
        ("国庆节、中秋节", "2025-10-01", "2025-10-08", ("2025-09-28", "2025-10-11")),
    ],
    2026: [
        ("元旦", "2026-01-01", "2026-01-03", ("2026-01-04",)),
        ("春节", "2026-02-15", "2026-02-23", ("2026-02-14", "2026-02-28")),
        ("清明节", "2026-04-04", "2026-04-06", ()),
        ("劳动节", "2026-05-01", "2026-05-05", ("2026-05-09",)),
        ("端午节", "2026-06-19", "2026-06-21", ()),
        ("中秋节", "2026-09-25", "2026-09-27", ()),
        ("国庆节", "2026-10-01", "2026-10-07", ("2026-09-20", "2026-10-10")),
    ],
}

# Working days per year, counted by hand from the notices:
#   2024: 262 weekdays - 19 weekday holidays + 8 make-up days = 251
#   2025: 261 weekdays - 18 weekday holidays + 5 make-up days = 248
#   2026: 261 weekdays - 19 weekday holidays + 6 make-up days = 248
WORKING_DAYS_PER_YEAR = {2024: 251, 2025: 248, 2026: 248}

# A few blocks' length as the notices state it ("共8天", "共9天"), to check the table itself.
STATED_LENGTHS = {(2024, "春节"): 8, (2025, "春节"): 8, (2025, "国庆节、中秋节"): 8, (2026, "春节"): 9}


def _days(first: str, last: str) -> list[date]:
    a, b = D(first), D(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def _all_days(year: int) -> list[date]:
    return _days(f"{year}-01-01", f"{year}-12-31")


def _holiday_days(year: int) -> set[date]:
    return {d for _, a, b, _ in NOTICES[year] for d in _days(a, b)}


def _makeup_days(year: int) -> set[date]:
    return {D(m) for *_, makeup in NOTICES[year] for m in makeup}


HOLIDAY_CASES = [(year, name, d) for year, blocks in NOTICES.items()
                 for name, a, b, _ in blocks for d in _days(a, b)]
MAKEUP_CASES = [(year, name, D(m)) for year, blocks in NOTICES.items()
                for name, _, _, makeup in blocks for m in makeup]


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


# --- the table itself -----------------------------------------------------------------------

def test_notice_table_is_self_consistent():
    for (year, name), length in STATED_LENGTHS.items():
        (_, a, b, _), = [blk for blk in NOTICES[year] if blk[0] == name]
        assert len(_days(a, b)) == length
    for year in NOTICES:
        # The notices give the weekday of every make-up day: all are Saturdays or Sundays.
        assert all(d.weekday() >= 5 for d in _makeup_days(year))
        assert not _holiday_days(year) & _makeup_days(year)
        # Independent count of the working days from the table.
        n = sum(1 for d in _all_days(year)
                if (d.weekday() < 5 and d not in _holiday_days(year)) or d in _makeup_days(year))
        assert n == WORKING_DAYS_PER_YEAR[year]


# --- single days ----------------------------------------------------------------------------

@pytest.mark.parametrize("year,name,day", HOLIDAY_CASES, ids=lambda v: str(v))
def test_every_holiday_day_is_off(cal, year, name, day):
    info = cal.day(day)
    assert info.workday is False
    assert cal.is_workday(day) is False
    assert info.date == day
    assert info.estimated is False


@pytest.mark.parametrize("year,name,day", MAKEUP_CASES, ids=lambda v: str(v))
def test_every_makeup_day_is_a_working_day(cal, year, name, day):
    assert day.weekday() >= 5
    info = cal.day(day)
    assert info.workday is True
    assert info.reason == "调休上班"
    assert cal.is_workday(day) is True


@pytest.mark.parametrize("year", sorted(NOTICES))
def test_whole_year_matches_the_notice_exactly(cal, year):
    holidays_, makeup = _holiday_days(year), _makeup_days(year)
    expected_weekdays_off = {d for d in holidays_ if d.weekday() < 5}
    expected_weekends_on = set(makeup)
    actual_weekdays_off = {d for d in _all_days(year) if d.weekday() < 5 and not cal.is_workday(d)}
    actual_weekends_on = {d for d in _all_days(year) if d.weekday() >= 5 and cal.is_workday(d)}
    assert sorted(actual_weekdays_off) == sorted(expected_weekdays_off)
    assert sorted(actual_weekends_on) == sorted(expected_weekends_on)
    assert sum(cal.is_workday(d) for d in _all_days(year)) == WORKING_DAYS_PER_YEAR[year]
    # count_workdays over the year agrees: Dec 31 of the previous year is excluded.
    assert cal.count_workdays(date(year - 1, 12, 31), date(year, 12, 31)) == WORKING_DAYS_PER_YEAR[year]


def test_reasons(cal):
    assert "春节" in cal.day(D("2024-02-12")).reason
    assert "元旦" in cal.day(D("2025-01-01")).reason
    assert "国庆" in cal.day(D("2024-10-01")).reason
    assert cal.day(D("2024-04-28")).reason == "调休上班"
    assert cal.day(D("2024-04-27")).reason == "周六"
    assert cal.day(D("2024-04-21")).reason == "周日"
    assert cal.day(D("2024-04-26")).reason == "工作日"
    # 2024's 除夕 (Feb 9) was an ordinary working day: the holiday started on Feb 10.
    assert cal.is_workday(D("2024-02-09"))


def test_next_and_nth_workday(cal):
    assert cal.next_workday(D("2024-04-26")) == D("2024-04-28")       # Fri -> make-up Sunday
    assert cal.next_workday(D("2024-09-30")) == D("2024-10-08")       # over 国庆
    assert cal.next_workday(D("2024-02-09")) == D("2024-02-18")       # over 春节, onto make-up Sunday
    assert cal.next_workday(D("2025-12-31")) == D("2026-01-04")       # over 元旦 2026 and the year end
    assert cal.nth_workday_after(D("2024-04-26"), 0) == D("2024-04-26")
    assert cal.nth_workday_after(D("2024-04-27"), 0) == D("2024-04-27")  # n=0 is the day itself
    assert cal.nth_workday_after(D("2024-04-26"), 1) == D("2024-04-28")
    assert cal.nth_workday_after(D("2024-04-26"), 5) == D("2024-05-07")
    assert cal.nth_workday_after(D("2025-09-26"), 6) == D("2025-10-11")
    with pytest.raises(ValueError):
        cal.nth_workday_after(D("2024-04-26"), -1)


def test_count_workdays(cal):
    assert cal.count_workdays(D("2024-04-26"), D("2024-04-26")) == 0
    assert cal.count_workdays(D("2024-04-26"), D("2024-04-25")) == 0
    assert cal.count_workdays(D("2024-04-26"), D("2024-04-28")) == 1
    assert cal.count_workdays(D("2024-04-26"), D("2024-05-07")) == 5
    assert cal.count_workdays(D("2024-12-31"), D("2025-01-02")) == 1


# --- elapsed working days, deadlines --------------------------------------------------------

@pytest.mark.parametrize("submitted,replied,elapsed", [
    # across the year end: 2025-01-01 is a holiday
    ("2024-12-31T10:00:00+08:00", "2025-01-02T10:00:00+08:00", 1),
    ("2024-12-31T10:00:00+08:00", "2025-01-01T10:00:00+08:00", 0),
    # 春节 2024: Feb 9 (除夕) works, Feb 10-17 off, Feb 18 (Sunday) is a make-up day
    ("2024-02-08T10:00:00+08:00", "2024-02-19T10:00:00+08:00", 3),
    ("2024-02-08T10:00:00+08:00", "2024-02-18T10:00:00+08:00", 2),
    # 春节 2025: Jan 26 (Sunday) make-up, Jan 28 - Feb 4 off, Feb 8 (Saturday) make-up
    ("2025-01-24T10:00:00+08:00", "2025-02-08T10:00:00+08:00", 6),
    # 春节 2026: Feb 14 (Saturday) make-up, Feb 15-23 off
    ("2026-02-13T10:00:00+08:00", "2026-02-24T10:00:00+08:00", 2),
    # 劳动节 2024: Apr 28 (Sunday) make-up, May 1-5 off
    ("2024-04-26T10:00:00+08:00", "2024-04-28T09:00:00+08:00", 1),
    ("2024-04-26T10:00:00+08:00", "2024-05-06T09:00:00+08:00", 4),
    # 国庆 2024: Sep 29 (Sunday) make-up, Oct 1-7 off, Oct 12 (Saturday) make-up
    ("2024-09-27T10:00:00+08:00", "2024-10-08T10:00:00+08:00", 3),
    ("2024-09-27T10:00:00+08:00", "2024-10-12T10:00:00+08:00", 7),
    # 国庆中秋 2025: 8 days off
    ("2025-09-30T10:00:00+08:00", "2025-10-09T10:00:00+08:00", 1),
])
def test_elapsed_working_days(cal, submitted, replied, elapsed):
    b = cal.between(T(submitted), T(replied))
    assert b.working_days == elapsed
    assert b.same_day is False
    assert b.within_deadline is (elapsed <= 5)
    assert b.estimated is False


def test_same_day(cal):
    b = cal.between(T("2024-04-26T10:00:00+08:00"), T("2024-04-26T23:59:59+08:00"))
    assert (b.working_days, b.same_day, b.within_deadline) == (0, True, True)
    assert b.received_on == D("2024-04-26")
    # A reply on the next calendar day is not same-day, even if it is not a working day.
    b = cal.between(T("2024-04-26T10:00:00+08:00"), T("2024-04-27T00:00:00+08:00"))
    assert (b.working_days, b.same_day) == (0, False)


@pytest.mark.parametrize("submitted,days,deadline", [
    ("2024-04-26T10:00:00+08:00", 5, "2024-05-07T23:59:59+08:00"),
    ("2024-02-08T10:00:00+08:00", 5, "2024-02-21T23:59:59+08:00"),
    ("2024-09-27T10:00:00+08:00", 5, "2024-10-10T23:59:59+08:00"),
    ("2025-09-26T10:00:00+08:00", 5, "2025-10-10T23:59:59+08:00"),
    ("2025-12-31T10:00:00+08:00", 5, "2026-01-08T23:59:59+08:00"),
    ("2026-02-12T10:00:00+08:00", 5, "2026-02-26T23:59:59+08:00"),
    ("2024-04-26T10:00:00+08:00", 1, "2024-04-28T23:59:59+08:00"),
    ("2024-04-26T10:00:00+08:00", 0, "2024-04-26T23:59:59+08:00"),
    ("2024-04-27T10:00:00+08:00", 0, "2024-04-27T23:59:59+08:00"),
    ("2024-04-26T10:00:00+08:00", 10, "2024-05-13T23:59:59+08:00"),
])
def test_deadline(cal, submitted, days, deadline):
    when, estimated = cal.deadline(T(submitted), days)
    assert when == T(deadline)
    assert when.isoformat() == deadline          # expressed in Asia/Shanghai
    assert estimated is False
    assert cal.between(T(submitted), T(submitted), days).deadline == T(deadline)


def test_deadline_default_is_five(cal):
    assert cal.deadline(T("2024-04-26T10:00:00+08:00"))[0] == T("2024-05-07T23:59:59+08:00")


def test_deadline_boundary(cal):
    s = T("2024-04-26T10:00:00+08:00")
    last = cal.between(s, T("2024-05-07T23:59:59+08:00"))
    assert (last.working_days, last.within_deadline, last.same_day) == (5, True, False)
    late = cal.between(s, T("2024-05-08T00:00:00+08:00"))
    assert (late.working_days, late.within_deadline) == (6, False)
    # The same instants given in UTC.
    assert cal.between(s, T("2024-05-07T15:59:59+00:00")).within_deadline is True
    assert cal.between(s, T("2024-05-07T16:00:00+00:00")).within_deadline is False


def test_days_zero(cal):
    s = T("2024-04-26T10:00:00+08:00")
    same = cal.between(s, T("2024-04-26T18:00:00+08:00"), days=0)
    assert (same.working_days, same.within_deadline, same.same_day) == (0, True, True)
    assert same.deadline == T("2024-04-26T23:59:59+08:00")
    # Saturday is not a working day: still 0 elapsed, still within a 0-day deadline.
    assert cal.between(s, T("2024-04-27T12:00:00+08:00"), days=0).within_deadline is True
    # The make-up Sunday is a working day: 1 elapsed, too late.
    assert cal.between(s, T("2024-04-28T09:00:00+08:00"), days=0).within_deadline is False


def test_negative_days_rejected(cal):
    s = T("2024-04-26T10:00:00+08:00")
    with pytest.raises(ValueError):
        cal.deadline(s, -1)
    with pytest.raises(ValueError):
        cal.between(s, s, days=-1)


def test_reply_before_submission_rejected(cal):
    s = T("2024-04-26T10:00:00+08:00")
    with pytest.raises(ValueError):
        cal.between(s, T("2024-04-26T09:59:59+08:00"))
    with pytest.raises(ValueError):
        cal.between(s, D("2024-04-25"))


def test_date_only_reply(cal):
    s = T("2024-04-26T10:00:00+08:00")
    b = cal.between(s, D("2024-04-26"))            # same date, even though 00:00 < 10:00
    assert (b.working_days, b.same_day, b.within_deadline) == (0, True, True)
    b = cal.between(s, D("2024-04-28"))
    assert (b.working_days, b.same_day) == (1, False)
    b = cal.between(s, D("2024-05-07"))
    assert (b.working_days, b.within_deadline) == (5, True)
    b = cal.between(s, D("2024-05-08"))
    assert (b.working_days, b.within_deadline) == (6, False)


def test_naive_means_shanghai(cal):
    naive = cal.between(datetime(2024, 4, 26, 1, 0), datetime(2024, 5, 7, 23, 59, 59))
    aware = cal.between(T("2024-04-26T01:00:00+08:00"), T("2024-05-07T23:59:59+08:00"))
    assert naive == aware
    assert naive.working_days == 5 and naive.within_deadline
    assert cal.deadline(datetime(2024, 4, 26, 10))[0] == T("2024-05-07T23:59:59+08:00")
    assert cal.received_on(datetime(2024, 4, 26, 23, 30)) == D("2024-04-26")


def test_utc_input_counted_by_shanghai_date(cal):
    # 2024-04-25 17:00 UTC is 2024-04-26 01:00 in Shanghai: a Friday submission, not Thursday.
    s = T("2024-04-25T17:00:00Z")
    assert cal.received_on(s) == D("2024-04-26")
    when, _ = cal.deadline(s)
    assert when == T("2024-05-07T23:59:59+08:00")      # counting from Thursday would give May 6
    b = cal.between(s, T("2024-04-26T09:00:00+08:00"))
    assert (b.working_days, b.same_day) == (0, True)
    # A reply at 2024-04-27 16:30 UTC is Sunday the 28th 00:30 in Shanghai: the make-up day.
    b = cal.between(s, T("2024-04-27T16:30:00Z"))
    assert (b.working_days, b.same_day) == (1, False)
    # Another zone: 2024-04-26 20:00 in New York is Saturday 08:00 in Shanghai.
    from zoneinfo import ZoneInfo
    ny = datetime(2024, 4, 26, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    assert cal.received_on(ny) == D("2024-04-27")


# --- receipt cut-off ------------------------------------------------------------------------

CUTOFF = time(17, 30)


def test_received_on_with_cutoff(cal):
    assert cal.received_on(T("2024-04-26T17:31:00+08:00")) == D("2024-04-26")   # no cut-off
    assert cal.received_on(T("2024-04-26T17:30:00+08:00"), CUTOFF) == D("2024-04-26")
    assert cal.received_on(T("2024-04-26T17:31:00+08:00"), CUTOFF) == D("2024-04-28")  # make-up Sunday
    assert cal.received_on(T("2024-05-17T17:31:00+08:00"), CUTOFF) == D("2024-05-20")  # Fri -> Mon
    assert cal.received_on(T("2024-05-18T09:00:00+08:00"), CUTOFF) == D("2024-05-20")  # Saturday
    assert cal.received_on(T("2024-10-01T09:00:00+08:00"), CUTOFF) == D("2024-10-08")  # holiday
    assert cal.received_on(T("2024-04-28T09:00:00+08:00"), CUTOFF) == D("2024-04-28")  # make-up day
    # The cut-off is in Shanghai time: 09:31 UTC is 17:31 in Shanghai.
    assert cal.received_on(T("2024-05-17T09:31:00Z"), CUTOFF) == D("2024-05-20")


def test_cutoff_after_hours_counts_from_next_working_day(cal):
    s = T("2024-05-17T17:31:00+08:00")                       # Friday after the cut-off
    b = cal.between(s, T("2024-05-20T09:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day, b.received_on) == (0, True, D("2024-05-20"))
    b = cal.between(s, T("2024-05-21T09:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day) == (1, False)
    # A reply the same Friday evening, before the day of receipt: same-day, 0.
    b = cal.between(s, T("2024-05-17T19:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day) == (0, True)
    assert cal.deadline(s, 5, CUTOFF)[0] == T("2024-05-27T23:59:59+08:00")
    assert cal.deadline(s, 5)[0] == T("2024-05-24T23:59:59+08:00")
    # Without the cut-off the Monday reply is 1 working day, not same-day.
    b = cal.between(s, T("2024-05-20T09:00:00+08:00"))
    assert (b.working_days, b.same_day) == (1, False)


def test_cutoff_before_holiday(cal):
    s = T("2024-04-26T17:31:00+08:00")                       # received on make-up Sunday Apr 28
    b = cal.between(s, T("2024-04-28T10:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day) == (0, True)
    assert b.deadline == T("2024-05-08T23:59:59+08:00")
    b = cal.between(s, T("2024-05-08T23:59:59+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.within_deadline) == (5, True)
    b = cal.between(s, T("2024-05-09T00:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.within_deadline) == (6, False)


def test_cutoff_on_saturday(cal):
    s = T("2024-05-18T10:00:00+08:00")                       # any time on a Saturday
    b = cal.between(s, D("2024-05-20"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day) == (0, True)
    b = cal.between(s, T("2024-05-18T11:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day) == (0, True)
    assert cal.deadline(s, 5, CUTOFF)[0] == T("2024-05-27T23:59:59+08:00")
    # Before the cut-off on a working day: unchanged.
    b = cal.between(T("2024-05-17T09:00:00+08:00"), T("2024-05-20T09:00:00+08:00"), cutoff=CUTOFF)
    assert (b.working_days, b.same_day) == (1, False)


# --- estimates ------------------------------------------------------------------------------

def test_official_years_are_not_estimated(cal):
    assert PACKAGE_OFFICIAL_THROUGH >= 2026
    for d in (D("2024-01-01"), D("2025-06-30"), D("2026-12-31")):
        assert cal.day(d).estimated is False
        assert cal.is_estimated(d) is False
    assert cal.between(T("2026-12-21T10:00:00+08:00"), T("2026-12-22T10:00:00+08:00")).estimated is False


def test_years_past_the_schedule_are_estimated():
    if PACKAGE_OFFICIAL_THROUGH >= 2027:
        pytest.skip("the installed `holidays` carries the 2027 schedule: 2027 is official")
    cal = WorkCalendar()
    assert cal.day(D("2027-03-01")).estimated is True
    assert cal.day(D("2027-02-06")).estimated is True
    assert cal.deadline(T("2027-03-01T10:00:00+08:00"))[1] is True


@pytest.mark.parametrize("official", [2026])
def test_estimated_flag_propagates(official):
    cal = WorkCalendar(official_through=official)
    assert cal.official_through == official
    assert cal.day(D("2027-01-04")).estimated is True
    # Submitted in 2026, deadline lands in 2027.
    when, est = cal.deadline(T("2026-12-30T10:00:00+08:00"))
    assert when.year == 2027 and est is True
    # Submitted and deadline in 2026, but the reply is in 2027.
    b = cal.between(T("2026-12-21T10:00:00+08:00"), D("2027-01-04"))
    assert b.estimated is True and b.deadline.year == 2026
    b = cal.between(T("2027-03-01T10:00:00+08:00"), T("2027-03-02T10:00:00+08:00"))
    assert b.estimated is True and b.working_days == 1
    assert WorkCalendar(official_through=2024).day(D("2025-05-06")).estimated is True


# --- overrides ------------------------------------------------------------------------------

def _write(tmp_path: Path, text: str, name: str = "overrides.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD_OVERRIDES = """
official_through = 2027

[[day]]
date = "2027-02-20"     # a Saturday made a working day
workday = true

[[day]]
date = 2024-05-06       # a TOML date: a local holiday on a Monday
workday = false
reason = "地方假日"
"""


def test_load_overrides(tmp_path):
    overrides, official = load_overrides(_write(tmp_path, GOOD_OVERRIDES))
    assert official == 2027
    assert overrides == {D("2027-02-20"): Override(True, "调休上班"),
                         D("2024-05-06"): Override(False, "地方假日")}


def test_calendar_from_file(tmp_path):
    path = _write(tmp_path, GOOD_OVERRIDES)
    cal = WorkCalendar.from_file(path)
    assert cal.official_through == 2027
    info = cal.day(D("2027-02-20"))
    assert (info.workday, info.reason, info.estimated) == (True, "调休上班", False)
    info = cal.day(D("2024-05-06"))
    assert (info.workday, info.reason) == (False, "地方假日")
    # The local holiday moves the deadline by one working day.
    assert cal.deadline(T("2024-04-26T10:00:00+08:00"))[0] == T("2024-05-08T23:59:59+08:00")
    assert cal.between(T("2024-04-26T10:00:00+08:00"), D("2024-05-07")).working_days == 4
    # Days not overridden still follow the package.
    assert cal.day(D("2024-04-28")).reason == "调休上班"
    assert cal.is_workday(D("2027-02-27")) is False
    # A path given as a string works too; None means no overrides.
    assert WorkCalendar.from_file(str(path)).is_workday(D("2027-02-20"))
    plain = WorkCalendar.from_file(None)
    assert plain.is_workday(D("2027-02-20")) is False
    assert plain.is_workday(D("2024-05-06")) is True


def test_overrides_without_official_through_keep_package_default(tmp_path):
    cal = WorkCalendar.from_file(_write(tmp_path, '[[day]]\ndate = "2024-05-06"\nworkday = false\n'))
    assert cal.official_through == PACKAGE_OFFICIAL_THROUGH
    assert cal.day(D("2024-05-06")).reason == "休息日"


@pytest.mark.parametrize("text,key", [
    ('holiday = 1\n', "holiday"),
    ('official_through = "2027"\n', "official_through"),
    ('official_through = true\n', "official_through"),
    ('[[day]]\ndate = "2024-02-30"\nworkday = true\n', "day[0].date"),
    ('[[day]]\nworkday = true\n', "day[0].date"),
    ('[[day]]\ndate = "2024-05-06"\nworkday = "yes"\n', "day[0].workday"),
    ('[[day]]\ndate = "2024-05-06"\n', "day[0].workday"),
    ('[[day]]\ndate = "2024-05-06"\nworkday = true\n[[day]]\ndate = "2024-05-07"\nworkday = false\nnote = "x"\n',
     "day[1]"),
    ('[[day]]\ndate = "2024-05-06"\nworkdy = true\n', "day[0]': unknown key 'workdy"),
    ('day = 5\n', "day"),
    ('[day]\ndate = "2024-05-06"\nworkday = true\n', "day"),
    ('day = [1]\n', "day[0]"),
])
def test_bad_overrides_name_file_and_key(tmp_path, text, key):
    path = _write(tmp_path, text, "bad-overrides.toml")
    with pytest.raises(ConfigError) as exc:
        load_overrides(path)
    message = str(exc.value)
    assert str(path) in message
    assert f"'{key}" in message
    assert "\n" not in message
    with pytest.raises(ConfigError):
        WorkCalendar.from_file(path)


@pytest.mark.parametrize("content", [b"[[day]\n", b"\xff\xfe not utf-8"])
def test_unreadable_overrides(tmp_path, content):
    path = tmp_path / "broken.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        load_overrides(path)
    assert str(path) in str(exc.value)


def test_missing_overrides_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as exc:
        WorkCalendar.from_file(path)
    assert str(path) in str(exc.value) and "not found" in str(exc.value)
