"""Times as sites show them, read with a template's `time_formats`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.clock import aware, local

EPOCH_UNITS = {"epoch_ms": 1000, "epoch_s": 1}     # JSON services' Unix times
# A site's clock and ours differ by a little: a row time this close to the letter's is not
# "older" than it.
ROW_SKEW = timedelta(minutes=5)


def parse_time(raw: str | None, formats: list[str]) -> tuple[datetime | None, bool]:
    """(time, date_only) from a site's displayed time, trying `formats` in order; naive means
    Asia/Shanghai. (None, False) when no format reads it: the caller says so, never guesses."""
    raw = " ".join((raw or "").split())
    if not raw:
        return None, False
    for fmt in formats:
        if fmt in EPOCH_UNITS:
            if raw.isdigit():
                return datetime.fromtimestamp(int(raw) / EPOCH_UNITS[fmt], tz=timezone.utc), False
            continue
        try:
            value = datetime.strptime(raw, fmt)
        except ValueError:
            continue
        return aware(value), "%H" not in fmt
    return None, False


def before(shown: tuple[datetime | None, bool], since: datetime) -> bool:
    """A list row's time (from `parse_time`) is surely before `since`: by date when the site
    shows a date alone, else beyond the clock-skew tolerance. An unreadable time is not."""
    value, date_only = shown
    if value is None:
        return False
    if date_only:
        return local(value).date() < local(since).date()
    return value < since - ROW_SKEW


def after(shown: tuple[datetime | None, bool], since: datetime) -> bool:
    """A list row's time is surely after `since` (the mirror of `before`)."""
    value, date_only = shown
    if value is None:
        return False
    if date_only:
        return local(value).date() > local(since).date()
    return value > since + ROW_SKEW
