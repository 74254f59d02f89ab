"""Values people write in TOML files (campaign files, rosters): times, times of day, durations.

Each parser raises ValueError saying what was expected; the loader adds the file and the key.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from bot.clock import aware

_DURATION_RE = re.compile(r"(\d+)\s*([smhd])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, str):
        try:
            return aware(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ValueError("expected an ISO 8601 date-time such as 2024-04-26T10:00:00+08:00 "
                     "(naive = Asia/Shanghai)")


def _parse_at(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if m and int(m[1]) < 24 and int(m[2]) < 60:
            return time(int(m[1]), int(m[2]))
    raise ValueError("expected a time of day HH:MM, e.g. \"14:30\"")


def parse_duration(value: Any) -> timedelta:
    """"30m", "2h", "1d", "1h30m" -> timedelta (positive)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_RE.findall(text)
        if parts and _DURATION_RE.sub("", text).strip() == "":
            delta = timedelta(0)
            for number, unit in parts:
                delta += timedelta(**{_UNIT[unit]: int(number)})
            if delta > timedelta(0):
                return delta
    raise ValueError("expected a positive duration such as \"30m\", \"2h\" or \"1d\"")


Timestamp = Annotated[datetime, BeforeValidator(_parse_time)]
ClockTime = Annotated[time, BeforeValidator(_parse_at)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


