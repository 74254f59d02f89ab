"""What the commands share: the loaded config, the database, time parsing, JSON output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cached_property

from bot.config import Config, load_config
from bot.errors import UserError


@dataclass
class AppState:
    config_path: str | None = None

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def db(self):
        from bot.store.db import Database

        return Database(self.config.database.url)

    @cached_property
    def clock(self):
        """The system clock, or `$MAILBOX_BOT_CLOCK` = START@ANCHORxSPEED: a scaled clock for
        playing a campaign against the sandbox at speed (the same value for `sandbox serve`)."""
        import os

        from bot.clock import ScaledClock, SystemClock

        spec = os.environ.get("MAILBOX_BOT_CLOCK", "")
        if not spec:
            return SystemClock()
        try:
            return ScaledClock.parse(spec)
        except ValueError as e:
            raise UserError(f"$MAILBOX_BOT_CLOCK: {e}") from None

    def database_exists(self) -> bool:
        """Whether there is a database to read (a read-only look must not create one)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.config.database.url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return True
        from pathlib import Path

        return Path(url.database).exists()

    def calendar(self):
        from bot.calendar import WorkCalendar

        path = self.config.calendar.overrides_file or None
        return WorkCalendar.from_file(path)


app_state = AppState()


def parse_when(text: str, what: str) -> datetime | date:
    """ISO 8601 date or date-time, with or without an offset (naive = Asia/Shanghai)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not a valid ISO 8601 date or time "
                        "(expected e.g. 2024-04-26 or 2024-04-26T10:00:00+08:00)") from None


def parse_datetime(text: str, what: str) -> datetime:
    value = parse_when(text, what)
    return value if isinstance(value, datetime) else datetime.combine(value, time())


def parse_as_of(text: str, what: str) -> datetime:
    """A report's moment: a date-time, or a date alone meaning the end of that day."""
    from bot.calendar import END_OF_DAY
    from bot.clock import aware

    value = parse_when(text, what)
    return aware(value if isinstance(value, datetime) else datetime.combine(value, END_OF_DAY))


def parse_cutoff(text: str | None) -> time | None:
    if text is None:
        return None
    try:
        hh, mm = text.split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise UserError(f"--cutoff: {text!r} is not a time of day (expected HH:MM, e.g. 17:30)") from None


def check_days(days: int) -> int:
    if days < 0:
        raise UserError(f"--days: {days} is negative (expected a number of working days >= 0)")
    return days


def print_json(data) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def warn(message: str) -> None:
    print(f"mailbox-bot: warning: {message}", file=sys.stderr)
