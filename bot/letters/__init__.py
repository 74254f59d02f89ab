"""Letters that read like a citizen's: a question bank by field and Faker (zh_CN) identities.

Seeded and reproducible; titles are unique within a writer (one campaign) so a letter can be
recognised by its title; titles and bodies respect each platform's limits.
"""

from __future__ import annotations

import random
import secrets
import string
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from faker import Faker

from bot.scenario.schema import Limits

BANK_PATH = Path(__file__).with_name("questions.toml")


@dataclass(frozen=True)
class LetterContent:
    category: str
    title: str
    body: str
    name: str
    phone: str
    email: str
    password: str


@lru_cache(maxsize=1)
def question_bank() -> list[dict]:
    return tomllib.loads(BANK_PATH.read_text(encoding="utf-8"))["field"]


def field_for(site_name: str) -> dict:
    for f in question_bank():
        if any(k in site_name for k in f["keywords"]):
            return f
    return next(f for f in question_bank() if f["name"] == "general")


class LetterWriter:
    def __init__(self, seed: int | str = 0):
        self.rng = random.Random(str(seed))
        self.faker = Faker("zh_CN")
        self.faker.seed_instance(str(seed))
        self.used_titles: set[str] = set()

    def write(self, site_name: str, region: str, limits: Limits) -> LetterContent:
        field = field_for(site_name)
        region = region or "本地"
        for _ in range(200):
            q = self.rng.choice(field["question"])
            values = {"region": region, "place": self._place(), "detail": self.rng.choice(field["details"])}
            title = q["title"].format(**values)
            if not (limits.title_min <= len(title) <= limits.title_max) or title in self.used_titles:
                continue
            body = q["body"].format(**values)
            if len(body) > limits.body_max:
                continue
            self.used_titles.add(title)
            return LetterContent(category=q["category"], title=title, body=body,
                                 name=self.faker.name(), phone=self.faker.phone_number(),
                                 email=self.faker.free_email(), password=self._password())
        raise ValueError(f"the question bank has no unused title within {limits.title_min}-"
                         f"{limits.title_max} characters for {site_name}")

    def _place(self) -> str:
        return self.rng.choice([self.faker.street_name(), self.faker.street_name() + "社区",
                                self.faker.street_name() + "小区"])

    def _password(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self.rng.choice(alphabet) for _ in range(8))


def reply_token() -> str:
    """Short and unguessable: identifies a letter in a reply address."""
    return secrets.token_hex(5)
