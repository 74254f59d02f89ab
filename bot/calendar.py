"""Chinese working days (DESIGN.md, "Working-day rules").

A working day is (Monday-Friday and not a statutory holiday) or a make-up working day (调休上班).
Holidays and make-up days come from the `holidays` package (China), plus an optional overrides
file for days the package lacks or a local authority changes. Years after the last officially
published schedule are estimates, and every result that touches one says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

import holidays
from holidays.countries.china import ChinaStaticHolidays

from bot.clock import SHANGHAI, aware, local
from bot.config import read_toml
from bot.errors import ConfigError

# The package carries a year's make-up working days only once the State Council has published
# that year's schedule, so the last year with special days is the last official one.
PACKAGE_OFFICIAL_THROUGH = max(ChinaStaticHolidays.special_public_holidays)

END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class DayInfo:
    date: date
    workday: bool
    reason: str
    estimated: bool


@dataclass(frozen=True)
class Between:
    working_days: int
    same_day: bool
    within_deadline: bool
    deadline: datetime
    estimated: bool
    received_on: date


@dataclass(frozen=True)
class Override:
    workday: bool
    reason: str


class WorkCalendar:
    """Answers working-day questions; cheap to query many times (per-year caches)."""

    def __init__(self, overrides: dict[date, Override] | None = None,
                 official_through: int | None = None):
        self.overrides = dict(overrides or {})
        self.official_through = official_through or PACKAGE_OFFICIAL_THROUGH
        # Answers already given: a report asks the same few hundred days and deadlines again
        # for every one of its letters. The calendar does not change once made.
        self._workdays: dict[date, bool] = {}
        self._nth: dict[tuple[date, int], date] = {}
        self._counts: dict[tuple[date, date], int] = {}

    @classmethod
    def from_file(cls, path: Path | str | None) -> "WorkCalendar":
        if path is None:
            return cls()
        return cls(*load_overrides(Path(path)))

    # -- single days -------------------------------------------------------------------
    def is_estimated(self, day: date) -> bool:
        return day.year > self.official_through

    def day(self, day: date) -> DayInfo:
        estimated = self.is_estimated(day)
        if day in self.overrides:
            o = self.overrides[day]
            return DayInfo(day, o.workday, o.reason, estimated)
        names = _holiday_names(day.year)
        if day in names:
            return DayInfo(day, False, names[day], estimated)
        if day in _makeup_days(day.year):
            return DayInfo(day, True, "调休上班", estimated)
        if day.weekday() >= 5:
            return DayInfo(day, False, "周六" if day.weekday() == 5 else "周日", estimated)
        return DayInfo(day, True, "工作日", estimated)

    def is_workday(self, day: date) -> bool:
        known = self._workdays.get(day)
        if known is None:
            known = self._workdays[day] = self.day(day).workday
        return known

    def next_workday(self, day: date) -> date:
        """The first working day strictly after `day`."""
        d = day + timedelta(days=1)
        while not self.is_workday(d):
            d += timedelta(days=1)
        return d

    def nth_workday_after(self, day: date, n: int) -> date:
        """The n-th working day strictly after `day`; n = 0 is `day` itself."""
        if n < 0:
            raise ValueError("n must be >= 0")
        known = self._nth.get((day, n))
        if known is None:
            d = day
            for _ in range(n):
                d = self.next_workday(d)
            known = self._nth[(day, n)] = d
        return known

    def count_workdays(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (0 when end <= start)."""
        known = self._counts.get((start, end))
        if known is None:
            n, d = 0, start + timedelta(days=1)
            while d <= end:
                n += self.is_workday(d)
                d += timedelta(days=1)
            known = self._counts[(start, end)] = n
        return known

    def any_estimated(self, start: date, end: date) -> bool:
        return self.is_estimated(start) or self.is_estimated(end)

    # -- letters -----------------------------------------------------------------------
    def received_on(self, submitted: datetime, cutoff: time | None = None) -> date:
        """The day a letter counts as received. Without a cut-off, the submission day. With
        one, a letter sent after the cut-off or on a non-working day counts from the next
        working day."""
        s = local(submitted)
        day = s.date()
        if cutoff is None:
            return day
        if not self.is_workday(day) or s.time() > cutoff:
            return self.next_workday(day)
        return day

    def deadline(self, submitted: datetime, days: int = 5,
                 cutoff: time | None = None) -> tuple[datetime, bool]:
        """23:59:59 Asia/Shanghai of the `days`-th working day after the day of receipt."""
        if days < 0:
            raise ValueError("the deadline in working days must be >= 0")
        start = self.received_on(submitted, cutoff)
        last = self.nth_workday_after(start, days)
        when = datetime.combine(last, END_OF_DAY, tzinfo=SHANGHAI)
        return when, self.any_estimated(local(submitted).date(), last)

    def between(self, submitted: datetime, replied: datetime | date, days: int = 5,
                cutoff: time | None = None) -> Between:
        """Elapsed working days from submission to reply, and the verdicts derived from it.

        `replied` may be a date alone (a site that shows 回复日期 without a time): it is
        compared by date. A reply dated before the day of receipt (possible only with a
        cut-off) counts as same-day, elapsed 0.
        """
        if days < 0:
            raise ValueError("the deadline in working days must be >= 0")
        submitted = aware(submitted)
        if isinstance(replied, datetime):
            replied = aware(replied)
            if replied < submitted:
                raise ValueError("the reply is before the submission")
            reply_day = local(replied).date()
        else:
            reply_day = replied
            if reply_day < local(submitted).date():
                raise ValueError("the reply is before the submission")
        start = self.received_on(submitted, cutoff)
        elapsed = self.count_workdays(start, reply_day)
        deadline, est = self.deadline(submitted, days, cutoff)
        estimated = est or self.is_estimated(reply_day)
        return Between(
            working_days=elapsed,
            same_day=reply_day <= start,
            within_deadline=elapsed <= days,
            deadline=deadline,
            estimated=estimated,
            received_on=start,
        )


@lru_cache(maxsize=None)
def _holiday_names(year: int) -> dict[date, str]:
    return dict(holidays.China(years=year, language="zh_CN").items())


@lru_cache(maxsize=None)
def _makeup_days(year: int) -> frozenset[date]:
    cn = holidays.China(years=year)
    return frozenset(d for d in cn.weekend_workdays if d.year == year)


def load_overrides(path: Path) -> tuple[dict[date, Override], int | None]:
    """Reads a calendar overrides file:

        official_through = 2027          # optional: schedules published through this year
        [[day]]
        date = "2027-02-06"
        workday = true
        reason = "调休上班"
    """
    where = str(path)
    data = read_toml(path)
    allowed = {"official_through", "day"}
    for key in data:
        if key not in allowed:
            raise ConfigError(f"unknown key '{key}' (expected one of: {', '.join(sorted(allowed))})", where=where)
    official = data.get("official_through")
    if official is not None and (not isinstance(official, int) or isinstance(official, bool)):
        raise ConfigError(f"key 'official_through': expected a year, got {official!r}", where=where)
    days = data.get("day", [])
    if not isinstance(days, list):
        raise ConfigError(f"key 'day': expected an array of tables ([[day]]), got {days!r}", where=where)
    result: dict[date, Override] = {}
    for i, entry in enumerate(days):
        key = f"day[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"key '{key}': expected a table", where=where)
        # Unknown keys first: a misspelt `workday` should be reported as such, not as missing.
        extra = set(entry) - {"date", "workday", "reason"}
        if extra:
            raise ConfigError(f"key '{key}': unknown key '{sorted(extra)[0]}'", where=where)
        raw = entry.get("date")
        if isinstance(raw, date) and not isinstance(raw, datetime):
            day = raw
        else:
            try:
                day = date.fromisoformat(str(raw))
            except ValueError:
                raise ConfigError(f"key '{key}.date': expected a date YYYY-MM-DD, got {raw!r}", where=where) from None
        workday = entry.get("workday")
        if not isinstance(workday, bool):
            raise ConfigError(f"key '{key}.workday': expected true or false, got {workday!r}", where=where)
        reason = entry.get("reason") or ("调休上班" if workday else "休息日")
        result[day] = Override(workday, str(reason))
    return result, official
