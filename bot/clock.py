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
    # How many clock seconds pass in one real second: 1 for the wall clock, 0 for a clock that
    # moves only when told (SimClock). Work that must keep a lease alive while it runs (a
    # submission) renews it at a real-time pace derived from this.
    speed: float

    def now(self) -> datetime:
        """Current time, timezone-aware."""


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimClock:
    """A simulated clock that only moves when told to; thread-safe (the sandbox reads it
    from its server threads while the campaign moves it)."""

    speed = 0.0        # it moves only when told

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


class ScaledClock:
    """Time that starts at `start` when the wall clock reads `anchor` (Unix seconds) and runs
    `speed` times as fast. Two processes given the same three values agree on the time: a
    daemon and a sandbox playing a week of a campaign in minutes, each in its own process."""

    def __init__(self, start: datetime, anchor: float, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start, self.anchor, self.speed = aware(start), anchor, speed

    def now(self) -> datetime:
        import time

        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)

    def spec(self) -> str:
        return f"{self.start.isoformat()}@{self.anchor}x{self.speed}"

    @classmethod
    def parse(cls, text: str) -> "ScaledClock":
        """"START@ANCHORxSPEED", e.g. "2024-04-26T09:00:00+08:00@1764280000.0x600"."""
        try:
            start, rest = text.split("@", 1)
            anchor, speed = rest.split("x", 1)
            return cls(datetime.fromisoformat(start), float(anchor), float(speed))
        except ValueError:
            raise ValueError(f"expected START@ANCHORxSPEED, e.g. 2024-04-26T09:00:00+08:00@1764280000x600, "
                             f"got {text!r}") from None


def aware(value: datetime) -> datetime:
    """Naive times mean Asia/Shanghai (DESIGN.md: working-day rules)."""
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


def local(value: datetime) -> datetime:
    return aware(value).astimezone(SHANGHAI)


def utc(value: datetime) -> datetime:
    return aware(value).astimezone(timezone.utc)
