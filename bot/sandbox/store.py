"""The sandbox's memory: letters received, and captcha answers handed out. Thread-safe.

Letters are never removed: a deleted letter is hidden by its site's behaviour at request time,
but it still counts as received (tests use `received()` to prove what the bot sent).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from bot.clock import local

SECRET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
MAX_CAPTCHAS = 20_000


@dataclass(frozen=True)
class ReceivedLetter:
    site: str            # site name, as in the roster
    slug: str
    platform: str        # jact | legacy | minimal | igi | hdjlpt
    mailbox: str         # leader | mayor
    title: str
    body: str
    name: str
    phone: str
    email: str           # "" where the platform has no e-mail field (legacy)
    tracking_code: str   # 办件编号 / 受理编号 / 信件编号
    secret: str          # 查询码 (jact) / 查询密码 chosen by the writer (legacy) / "" (minimal)
    kind: str            # 信件类型 ("" where the platform has none)
    target: str          # 提交对象 (jact only)
    public: bool         # 是否公开 (jact; the other platforms publish nothing)
    received_at: datetime


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._letters: list[ReceivedLetter] = []
        self._sequence: dict[tuple[str, str], int] = {}   # (platform, yyyymmdd) -> last number
        self._captchas: OrderedDict[str, str] = OrderedDict()

    # -- letters --------------------------------------------------------------------------
    def add(self, *, site: str, slug: str, platform: str, mailbox: str, title: str, body: str,
            name: str, phone: str, email: str = "", secret: str | None = None, kind: str = "",
            target: str = "", public: bool = False, received_at: datetime) -> ReceivedLetter:
        """Stores a letter and gives it its platform's tracking code (and 查询码 when `secret`
        is None on jact)."""
        day = local(received_at)
        with self._lock:
            key = (platform, f"{day:%Y%m%d}")
            n = self._sequence.get(key, 0) + 1
            self._sequence[key] = n
            code = _tracking_code(platform, day, n)
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


def _tracking_code(platform: str, day: datetime, n: int) -> str:
    if platform == "jact":
        return f"{day:%Y%m%d}{n:05d}"          # 办件编号, e.g. 2024042600001
    if platform == "legacy":
        return f"{day:%y%m%d}{n:06d}"          # 受理编号, e.g. 240426000001
    if platform == "igi":
        return f"{day:%Y%m%d}{n:06d}"          # 查询编号, e.g. 20240426000001
    if platform == "hdjlpt":
        return f"GD{day:%Y%m%d}{n:06d}"        # 信件编号, e.g. GD20240426000001
    return f"C{day:%Y%m%d}{n:04d}"             # 信件编号, e.g. C202404260001
