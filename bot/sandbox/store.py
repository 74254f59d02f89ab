"""The sandbox's memory: letters received, and captcha answers handed out. Thread-safe.

Letters are never removed: a deleted letter is hidden by its site's behaviour at request time,
but it still counts as received (tests use `received()` to prove what the bot sent).

Only letters that came through a site's form are stored. Other citizens' letters (roster
`traffic`, `bot.sandbox.traffic`) are computed from the clock, but they take their numbers
from the same daily counter, as on a real site: a letter's number is one more than the letters
of its platform that arrived before it that day, stored or computed.
"""

from __future__ import annotations

import bisect
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

from bot.clock import local

SECRET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
MAX_CAPTCHAS = 20_000


@dataclass(frozen=True)
class ReceivedLetter:
    site: str            # site name, as in the roster
    slug: str
    platform: str        # jact | legacy | minimal | igi | hdjlpt | board | confirm
    mailbox: str         # leader | mayor | board
    title: str           # "" on a board (its form has none)
    body: str
    name: str
    phone: str
    email: str           # "" where the platform has no e-mail field (legacy, board)
    tracking_code: str   # 办件编号 / 受理编号 / 信件编号; "" on a board (it gives none)
    secret: str          # 查询码 (jact) / 查询密码 chosen by the writer (legacy) / "" (minimal, confirm)
    kind: str            # 信件类型 ("" where the platform has none)
    target: str          # 提交对象 (jact only)
    public: bool         # 是否公开 (jact, igi, hdjlpt, confirm; legacy and minimal publish nothing)
    received_at: datetime


# How many other citizens' letters of a platform arrived on a day up to a moment (inclusive).
TrafficCount = Callable[[str, date, datetime], int]


class Store:
    def __init__(self, traffic_until: TrafficCount | None = None) -> None:
        self._lock = threading.Lock()
        self._letters: list[ReceivedLetter] = []
        # (platform, day) -> the receipt times of the stored letters, in order
        self._arrivals: dict[tuple[str, date], list[datetime]] = {}
        self._traffic_until = traffic_until
        self._captchas: OrderedDict[str, str] = OrderedDict()

    # -- letters --------------------------------------------------------------------------
    def add(self, *, site: str, slug: str, platform: str, mailbox: str, title: str, body: str,
            name: str, phone: str, email: str = "", secret: str | None = None, kind: str = "",
            target: str = "", public: bool = False, received_at: datetime) -> ReceivedLetter:
        """Stores a letter and gives it its platform's tracking code (and 查询码 when `secret`
        is None on jact)."""
        day = local(received_at)
        with self._lock:
            arrivals = self._arrivals.setdefault((platform, day.date()), [])
            n = len(arrivals) + 1
            if self._traffic_until is not None:
                n += self._traffic_until(platform, day.date(), received_at)
            bisect.insort(arrivals, received_at)
            code = tracking_code(platform, day, n)
            if secret is None:
                secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(6))
            letter = ReceivedLetter(site=site, slug=slug, platform=platform, mailbox=mailbox,
                                    title=title, body=body, name=name, phone=phone, email=email,
                                    tracking_code=code, secret=secret, kind=kind, target=target,
                                    public=public, received_at=received_at)
            self._letters.append(letter)
            return letter

    def letters(self, slug: str | None = None, mailbox: str | None = None) -> list[ReceivedLetter]:
        with self._lock:
            return [x for x in self._letters
                    if (slug is None or x.slug == slug) and (mailbox is None or x.mailbox == mailbox)]

    def arrived_before(self, platform: str, day: date, when: datetime) -> int:
        """How many stored letters of the platform arrived on `day` strictly before `when`."""
        with self._lock:
            return bisect.bisect_left(self._arrivals.get((platform, day), []), when)

    def find(self, slug: str, mailbox: str, code: str) -> ReceivedLetter | None:
        """A letter is found only through the mailbox it was sent to."""
        code = code.strip().upper()
        with self._lock:
            for x in self._letters:
                if x.slug == slug and x.mailbox == mailbox and x.tracking_code == code:
                    return x
        return None

    # -- captchas -------------------------------------------------------------------------
    def new_captcha(self) -> tuple[str, str]:
        token = secrets.token_urlsafe(12)
        answer = "".join(secrets.choice("0123456789") for _ in range(4))
        with self._lock:
            self._captchas[token] = answer
            while len(self._captchas) > MAX_CAPTCHAS:
                self._captchas.popitem(last=False)
        return token, answer

    def captcha_answer(self, token: str) -> str | None:
        with self._lock:
            return self._captchas.get(token)

    def take_captcha(self, token: str) -> str | None:
        """The answer, and the token is spent (one try per image, as real sites do)."""
        with self._lock:
            return self._captchas.pop(token, None)


def tracking_code(platform: str, day: datetime | date, n: int) -> str:
    """The n-th letter of the day on the platform (the width is in bot.sandbox.roster.CODE_ROOM); a
    board gives the writer no code at all ("")."""
    if platform == "board":
        return ""
    if platform == "jact":
        return f"{day:%Y%m%d}{n:05d}"          # 办件编号, e.g. 2024042600001
    if platform == "legacy":
        return f"{day:%y%m%d}{n:06d}"          # 受理编号, e.g. 240426000001
    if platform == "igi":
        return f"{day:%Y%m%d}{n:06d}"          # 查询编号, e.g. 20240426000001
    if platform == "hdjlpt":
        return f"GD{day:%Y%m%d}{n:06d}"        # 信件编号, e.g. GD20240426000001
    if platform == "confirm":
        return f"LX{day:%y%m%d}{n:04d}"        # 信件编号, e.g. LX2404260001
    return f"C{day:%Y%m%d}{n:04d}"             # 信件编号, e.g. C202404260001


_CODE_RE = {
    "jact": re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{5})$"),
    "legacy": re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{6})$"),
    "igi": re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{6})$"),
    "hdjlpt": re.compile(r"^GD(\d{4})(\d{2})(\d{2})(\d{6})$"),
    "minimal": re.compile(r"^C(\d{4})(\d{2})(\d{2})(\d{4})$"),
    "confirm": re.compile(r"^LX(\d{2})(\d{2})(\d{2})(\d{4})$"),
}


def parse_code(platform: str, code: str) -> tuple[date, int] | None:
    """(day, number) of a tracking code of the platform's format; None if it is not one (and
    always on a board, which gives no code)."""
    pattern = _CODE_RE.get(platform)
    m = None if pattern is None else pattern.match(code.strip().upper())
    if m is None:
        return None
    year = int(m[1]) + (2000 if platform in ("legacy", "confirm") else 0)
    try:
        return date(year, int(m[2]), int(m[3])), int(m[4])
    except ValueError:
        return None
