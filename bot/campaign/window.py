"""When a campaign's letters go out, and when the next campaign starts.

Pure functions of their arguments (the calendar is handed in, the randomness is seeded), so a
plan shown by `campaign plan` is exactly the one `campaign start` stores.

Letters go out only inside the send window of working days (make-up working days are working
days; weekends and statutory holidays are not). A government site is a shared and often small
server: two letters to the same host are at least `rate_per_host` apart, and letters are spread
across the window with a random offset so that a roster's sites are not all hit at one minute.
A day whose window cannot take every letter with that spacing passes the rest to the next
working day.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Hashable, Iterable, Protocol

from bot.calendar import WorkCalendar
from bot.clock import SHANGHAI, local

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3660          # a plan that does not fit in ten years is a mistake, not a plan


class Window(Protocol):
    start: time
    end: time
    jitter: timedelta


class RecurrenceRule(Protocol):
    every: str           # "quarter" | "month"
    month: int | None    # which month of the quarter (1-3), for "quarter"
    weekday: str         # mon..sun
    nth: int             # 1..4


def _ceil_second(t: datetime) -> datetime:
    return t if t.microsecond == 0 else t.replace(microsecond=0) + timedelta(seconds=1)


def send_times(items: Iterable[tuple[Hashable, str]], window: Window, calendar: WorkCalendar,
               start: datetime, rate_per_host: timedelta, seed: object = 0) -> dict[Hashable, datetime]:
    """The send time of every item, a (key, host) pair, from `start` on (Asia/Shanghai times).

    Items to one host keep their order. Each working day takes, per host, as many letters as
    its window holds at `rate_per_host` apart; the day's letters are interleaved (one per host
    in a seeded order, then the hosts' second letters, ...), spread evenly over the window,
    moved by a seeded offset of up to ±`window.jitter` (reflected back inside the window), and then
    pushed later where needed to keep the spacing; a letter pushed past the window's end waits,
    with the host's later ones, for the next working day. The first day's window starts no
    earlier than `start`."""
    items = list(items)
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("send_times: every item needs its own key")
    if window.end <= window.start:
        raise ValueError("send_times: the window's end is not after its start")
    if rate_per_host < timedelta(0):
        raise ValueError("send_times: rate_per_host is negative")
    rng = random.Random(str(seed))
    queues: dict[str, list[Hashable]] = {}
    for key, host in items:
        queues.setdefault(host, []).append(key)
    last: dict[str, datetime] = {}
    out: dict[Hashable, datetime] = {}
    jitter_s = int(window.jitter.total_seconds())
    begin = local(start)
    day = begin.date()
    for _ in range(MAX_DAYS):
        if not any(queues.values()):
            return out
        if calendar.is_workday(day):
            ws = datetime.combine(day, window.start, tzinfo=SHANGHAI)
            we = datetime.combine(day, window.end, tzinfo=SHANGHAI)
            ws = max(ws, _ceil_second(begin))
            if ws <= we:
                _fill_day(ws, we, queues, last, out, rng, jitter_s, rate_per_host)
        day += timedelta(days=1)
    raise ValueError(f"send_times: {sum(map(len, queues.values()))} letters do not fit in {MAX_DAYS} days "
                     "of send windows (is the per-host spacing longer than the window?)")


def _fill_day(ws: datetime, we: datetime, queues: dict[str, list], last: dict[str, datetime],
              out: dict, rng: random.Random, jitter_s: int, rate: timedelta) -> None:
    span = we - ws
    per_host = int(span / rate) + 1 if rate > timedelta(0) else None
    hosts = sorted(h for h, q in queues.items() if q)
    rng.shuffle(hosts)
    today = {h: queues[h][:per_host] for h in hosts}
    rounds = max(len(v) for v in today.values())
    order = [(h, today[h][r]) for r in range(rounds) for h in hosts if r < len(today[h])]
    n = len(order)
    planned: dict[str, list[tuple[Hashable, datetime]]] = {h: [] for h in hosts}
    for i, (host, key) in enumerate(order):
        base = ws + timedelta(seconds=int(span.total_seconds() * i / n))
        t = base + timedelta(seconds=rng.randint(-jitter_s, jitter_s) if jitter_s else 0)
        if t < ws:                       # an offset past an edge is reflected back inside
            t = ws + (ws - t)
        elif t > we:
            t = we - (t - we)
        planned[host].append((key, min(max(t, ws), we)))
    for host in hosts:
        # In the host's order: a letter whose offset put it before the host's previous one is
        # pushed after it, so a host's letters keep their order.
        prev = last.get(host)
        for key, t in planned[host]:
            if prev is not None:
                t = max(t, prev + rate)
            if t > we:
                break        # this one and the host's later ones wait for the next working day
            out[key] = t
            queues[host].remove(key)
            prev = last[host] = t


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    """The `nth` (1..5) `weekday` (0 = Monday) of a month."""
    first = date(year, month, 1)
    d = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    if d.month != month:
        raise ValueError(f"{year}-{month:02d} has no {nth}th {WEEKDAYS[weekday]}")
    return d


def next_occurrence(recurrence: RecurrenceRule, after: date, calendar: WorkCalendar) -> date:
    """The first campaign day strictly after `after`: the `nth` `weekday` of the month (each
    month, or the `month`-th month of each quarter), moved to the next working day when it is
    not one (a holiday, or a weekend day that is not a make-up working day)."""
    weekday = WEEKDAYS.index(recurrence.weekday)
    if recurrence.every == "quarter":
        step, offset = 3, (recurrence.month or 1) - 1
        first = (after.month - 1) // 3 * 3 + 1        # the first month of after's quarter
    elif recurrence.every == "month":
        step, offset, first = 1, 0, after.month
    else:
        raise ValueError(f"unknown recurrence {recurrence.every!r} (expected quarter or month)")
    year, month = after.year, first + offset
    for _ in range(24):
        y, mo = year + (month - 1) // 12, (month - 1) % 12 + 1
        day = nth_weekday(y, mo, weekday, recurrence.nth)
        if not calendar.is_workday(day):
            day = calendar.next_workday(day)
        if day > after:
            return day
        month += step
    raise AssertionError("unreachable: a later month always comes")


__all__ = ["send_times", "next_occurrence", "nth_weekday", "WEEKDAYS"]


def inside(window: Window, calendar: WorkCalendar, when: datetime) -> bool:
    """Is `when` inside the send window of a working day?"""
    t = local(when)
    return calendar.is_workday(t.date()) and window.start <= t.time().replace(tzinfo=None) < window.end


def next_opening(window: Window, calendar: WorkCalendar, after: datetime) -> datetime:
    """The start of the next send window at or after `after` (on a working day)."""
    t = local(after)
    day = t.date()
    for _ in range(400):
        if calendar.is_workday(day):
            opens = datetime.combine(day, window.start, tzinfo=SHANGHAI)
            closes = datetime.combine(day, window.end, tzinfo=SHANGHAI)
            if t < closes:
                return max(opens, t)
        day += timedelta(days=1)
    raise ValueError("no working day within 400 days")
