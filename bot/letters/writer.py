"""The letter writer: a citizen's letter for one site, from the question bank and Faker (zh_CN).

What a letter must be, and how this module makes sure of it:
- about the site's own line of work: the bank field matched by the site's name (a government
  portal takes any local matter, so its letters draw on every portal field);
- from someone who lives in the site's region: the address comes from real place names
  (bot.letters.places), in the form's address and, where natural, in the body;
- within the platform's limits (`Limits`): candidates outside them are not used;
- never the same letter twice, to two sites of a campaign or again in a later one: each
  candidate is compared (character-shingle Jaccard, bot.letters.similarity) with every letter
  this writer wrote and every earlier letter it was given (`previous=`, `avoid()`), and refused
  at THRESHOLD or above; titles are also unique, since a public list is searched by title;
- reproducible: the same seed and the same calls give the same letters.
Templates are drawn least-used first, so a campaign spreads over the whole bank.

Measured on the shared development machine (tests/test_letters.py does the same): 1,000 letters
for the 54 sites of the Baoji roster in 0.5 s idle, 2-3 s under load; the most similar pair
among them 0.15-0.20 (THRESHOLD is 0.2); the bank's 1,137 templates give 1,090-1,110 letters
for those 54 sites before a department's field runs dry (then BankExhausted: add questions).
"""

from __future__ import annotations

import random
import secrets
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from faker import Faker

from bot.contact import RESERVED_EMAIL_DOMAINS
from bot.letters import places
from bot.letters.bank import Bank, Expander, Field, Template, load_bank
from bot.letters.similarity import THRESHOLD, ShingleIndex
from bot.scenario.schema import Limits

# Mobile prefixes in everyday use (no data-only 14x or virtual-operator 17x blocks).
MOBILE_PREFIXES = ("130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
                   "166 173 175 176 177 180 181 182 183 184 185 186 187 188 189 191 193 198 199").split()
# Made-up addresses only at domains reserved for examples (RFC 2606): a site writes back to the
# letter's address, and one at a real provider may be a stranger's (bot.contact).
MAIL_DOMAINS = RESERVED_EMAIL_DOMAINS
# Tries per letter before giving up: each is a template, expanded again if its title misses
# the limits. A few hundred is far more than a bank with room needs.
MAX_TRIES = 400
TITLE_TRIES = 8
# Share of titles put in the formal form even when the short one fits, as citizens do.
FORMAL_TITLE_SHARE = 0.15


class BankExhausted(ValueError):
    """No candidate fits the limits and differs enough from every earlier letter."""


@dataclass(frozen=True)
class LetterContent:
    category: str
    title: str
    body: str
    name: str
    phone: str
    email: str
    password: str
    address: str = ""         # inside the site's region: 陕西省宝鸡市渭滨区清姜街道
    field: str = ""           # the site's field (bank key): education, government, ...
    topic: str = ""           # the field the question came from (a government's may differ)
    template: str = ""        # bank template key, e.g. education/07

    @property
    def text(self) -> str:
        """What the similarity check compares: title and body."""
        return letter_text(self.title, self.body)


def letter_text(title: str, body: str) -> str:
    return f"{title}\n{body}"


_LEAD = ("关于", "咨询", "请问", "反映", "投诉", "举报", "建议")
_TAIL = ("的咨询", "的问题", "的建议", "的反映", "的求助", "咨询", "问题", "求助", "反映", "建议", "事宜", "一事")
_KIND = {"咨询": "咨询", "投诉": "反映", "建议": "建议", "求助": "求助"}


def formal_title(title: str, category: str, county: str = "", minimum: int = 0) -> str:
    """The formal form a mailbox title often takes, "关于…的咨询/反映/建议/求助", for a title
    too short for a form's minimum (some require 10 characters): 人防应急包配备 -> 关于人防
    应急包配备的咨询; with the writer's county when still too short."""
    if title.startswith("关于") and title.endswith(_TAIL[:5]):
        return title
    core = title
    for lead in _LEAD:
        if core.startswith(lead) and len(core) > len(lead) + 3:
            core = core[len(lead):]
            break
    for tail in _TAIL:
        if core.endswith(tail) and len(core) > len(tail) + 3:
            core = core[:-len(tail)]
            break
    out = f"关于{core}的{_KIND.get(category, '咨询')}"
    if len(out) < minimum and county and county not in core:
        out = f"关于{county}{core}的{_KIND.get(category, '咨询')}"
    return out


def unit_for(site_name: str) -> str:
    """How a citizen addresses the site in the body: 贵局, 贵委, 贵中心..."""
    for suffix, unit in (("人民政府", "政府"), ("管理委员会", "管委会"), ("委员会", "贵委"),
                         ("联合会", "贵会"), ("办公室", "贵办"), ("中心", "贵中心"), ("局", "贵局")):
        if site_name.endswith(suffix):
            return unit
    return "有关部门"


class LetterWriter:
    """Writes one campaign's letters (one writer per campaign).

    `previous`: earlier letters not to repeat, each a (title, body) pair or a "title\\nbody"
    string; more can be given later with `avoid()`. `threshold`: the similarity at which a
    candidate is refused (default THRESHOLD)."""

    def __init__(self, seed: int | str = 0, *, previous: Iterable[Any] = (),
                 threshold: float = THRESHOLD, bank: Bank | None = None):
        self.seed = seed
        self.rng = random.Random(f"letters:{seed}")
        self.faker = Faker("zh_CN")
        self.faker.seed_instance(f"letters:{seed}")
        self.bank = bank or load_bank()
        self.threshold = threshold
        self.index = ShingleIndex(self.bank.stock)
        self.used_titles: set[str] = set()
        self.uses: Counter[str] = Counter()          # template key -> letters written
        self.topic_uses: Counter[str] = Counter()    # field key -> letters written
        self.written: list[LetterContent] = []
        self._known: set[str] = set()                # texts in the index, each once
        self.avoid(previous)

    # -- what not to repeat -------------------------------------------------------------
    def avoid(self, letters: Iterable[Any]) -> int:
        """Adds earlier letters, (title, body) pairs (database rows will do) or "title\\nbody"
        strings, to what is never repeated; a letter already known is skipped, so a caller may
        pass all letters in its database each time. Returns how many were new."""
        n = 0
        for item in letters:
            if isinstance(item, str):
                title, _, body = item.partition("\n")
            else:
                title, body = item
                title, body = title or "", body or ""
            text = letter_text(title, body)
            if not (title or body) or text in self._known:
                continue
            self._known.add(text)
            self.index.add(text, label=f"earlier: {title}")
            if title:
                self.used_titles.add(title)
            n += 1
        return n

    def similarity(self, title: str, body: str) -> float:
        """The highest similarity of this text to any letter known to the writer."""
        m = self.index.nearest(letter_text(title, body))
        return m.similarity if m else 0.0

    # -- writing --------------------------------------------------------------------------
    def write(self, site_name: str, region: str, limits: Limits | None = None, *,
              identity: Any = None) -> LetterContent:
        """A new letter for `site_name` in `region` within `limits`.

        `identity`: the inspector (an `Identity` or anything with `real_name` and `phone`); a
        site calls back, so a given real name and phone are the letter's, else made-up ones (a
        site that may be real is never written to without them: bot.contact)."""
        limits = limits or Limits()
        field = self.bank.field_for(site_name)
        where = places.region(region)
        name, phone = self._person(identity)
        email, password = self._email(), self._password()
        nearest = None
        for tries, template in enumerate(self._candidates(field)):
            if tries >= MAX_TRIES:
                break
            place = where.pick(self.rng, rural=template.rural)
            builtins = {"area": place.area, "county": place.county, "town": place.township,
                        "city": place.city or place.county, "resident": self._resident(place),
                        "unit": unit_for(site_name)}
            exp = Expander(self.rng, self.bank.by_key(template.field).slots, self.bank.common, builtins)
            core = exp.expand(template.body)
            title = ""
            for _ in range(TITLE_TRIES):
                title = exp.expand(template.title, prefer=core)
                if len(title) < limits.title_min or self.rng.random() < FORMAL_TITLE_SHARE:
                    title = formal_title(title, template.category, place.county if region else "",
                                         limits.title_min)
                if limits.title_min <= len(title) <= limits.title_max and title not in self.used_titles:
                    break
            else:
                continue
            body = exp.expand("{greeting}") + core + exp.expand("{closing}")
            if not (limits.body_min <= len(body) <= limits.body_max):
                continue
            text = letter_text(title, body)
            m = self.index.nearest(text)
            if m is not None and m.similarity >= self.threshold:
                nearest = m if nearest is None or m.similarity < nearest.similarity else nearest
                continue
            content = LetterContent(category=template.category, title=title, body=body, name=name,
                                    phone=phone, email=email, password=password, address=place.address,
                                    field=field.key, topic=template.field, template=template.key)
            self.index.add(text, label=f"{site_name}: {title}")
            self._known.add(text)
            self.used_titles.add(title)
            self.uses[template.key] += 1
            self.topic_uses[template.field] += 1
            self.written.append(content)
            return content
        why = (f"every candidate is too close to an earlier letter (nearest {nearest.similarity:.2f}: "
               f"{nearest.label})" if nearest else "no template fits the limits "
               f"(title {limits.title_min}-{limits.title_max}, body {limits.body_min}-{limits.body_max} characters)")
        raise BankExhausted(f"no new letter for {site_name} (field {field.key}): {why}; "
                            "add questions to bot/letters/bank/")

    def _candidates(self, field: Field) -> Iterable[Template]:
        """The site's templates, least-used first, then of the least-used topic (random among equals);
        each twice, since a second expansion may differ enough where the first did not."""
        topics = self.bank.topics_for(field)
        ranked = sorted(((self.uses[q.key], self.topic_uses[t.key], self.rng.random(), q)
                         for t in topics for q in t.questions), key=lambda x: x[:3])
        order = [q for *_, q in ranked]
        yield from order
        yield from order

    # -- the person -------------------------------------------------------------------------
    def _person(self, identity: Any) -> tuple[str, str]:
        name = self.faker.name()
        phone = self.rng.choice(MOBILE_PREFIXES) + "".join(self.rng.choice(string.digits) for _ in range(8))
        real_name = getattr(identity, "real_name", "") if identity is not None else ""
        real_phone = getattr(identity, "phone", "") if identity is not None else ""
        return real_name or name, real_phone or phone

    def _resident(self, place: places.Place) -> str:
        return "居民" if place.urban else self.rng.choice(("居民", "村民", "村民"))

    def _email(self) -> str:
        """Made up, so never at a real mail provider: a QQ-number-like or a user-name local part
        (as citizens' addresses look) at a reserved domain."""
        if self.rng.random() < 0.35:
            local = str(self.rng.randint(10_000_000, 3_999_999_999))
        else:
            local = self.faker.user_name()
        return f"{local}@{self.rng.choice(MAIL_DOMAINS)}"

    def _password(self) -> str:
        letters = string.ascii_letters
        chars = [self.rng.choice(letters) for _ in range(5)] + [self.rng.choice(string.digits) for _ in range(3)]
        self.rng.shuffle(chars)
        return "".join(chars)


def reply_token() -> str:
    """Short and unguessable: identifies a letter in a reply address."""
    return secrets.token_hex(5)
