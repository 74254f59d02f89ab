"""Clocks, injected everywhere the time matters.

Production code never reads the wall clock directly: it is handed a `Clock`. The sandbox and
the bot share one `SimClock` in the demo and the tests, so a quarter plays in seconds.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimClock:
    """A simulated clock that only moves when told to; thread-safe (the sandbox reads it
    from its server threads while the campaign moves it)."""

    def __init__(self, start: datetime):
        self._now = aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        when = aware(when)
        with self._lock:
            if when < self._now:
                raise ValueError(f"simulated clock cannot go back from {self._now} to {when}")
            self._now = when

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now = self._now + delta


def aware(value: datetime) -> datetime:
    """Naive times mean Asia/Shanghai (DESIGN.md: working-day rules)."""
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


def local(value: datetime) -> datetime:
    return aware(value).astimezone(SHANGHAI)


def utc(value: datetime) -> datetime:
    return aware(value).astimezone(timezone.utc)
