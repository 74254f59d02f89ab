"""The question bank: one file per field (bank/<field>.toml) and shared phrases (bank/_common.toml).

A field is the line of work of a department (education, social insurance, ...), matched to a
site by keywords in the site's name; `government` is the field of the people's governments and
zone committees (人民政府, 管理委员会), whose mailboxes take questions of any local matter, so
their letters also draw on every field marked `portal = true`.

Template syntax, in titles, bodies and slot values:
  {slot}      a value from the field's [slots], else the common [slots], else the letter's own
              (area, county, town, city, resident, unit); drawn once per letter,
              so a slot used in the title and the body says the same thing in both;
  {a|b|c}     one of the alternatives, drawn at each use; an alternative may be empty ({|，麻烦了})
              and may hold slots ({我家住在{area}|本人住{area}}).
A template whose wording speaks of villages or going into town (`RURAL`) is written from a town
(镇), never from an urban sub-district (街道); `rural = true|false` in a question overrides that.
Braces nest; the innermost are expanded first. `load_bank` refuses a template that names an
unknown slot, so a typo fails the tests, not a campaign.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from bot.config import read_toml
from bot.letters.similarity import stock_shingles

BANK_DIR = Path(__file__).with_name("bank")
COMMON_FILE = "_common.toml"
CATEGORIES = ("咨询", "投诉", "建议", "求助")
GOVERNMENT = "government"
# What the writer supplies for each letter (see LetterWriter.write). Not the writer's name, phone
# or email: those go in the form's fields, never in a body (bodies show in evidence packs).
BUILTIN_SLOTS = frozenset({"area", "county", "town", "city", "resident", "unit"})

_TOKEN = re.compile(r"\{([^{}]*)\}")
# A template that speaks of a village, of going into town or of farm work is written from a town
# (镇): "离城区远" from an urban sub-district (街道) would give the writer away.
RURAL = re.compile(r"村|进城|城里|城区远|离城|农户|庄稼|种地|浇地|地里|果园|大棚|山里|山上|后山")
_SLOT_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class BankError(ValueError):
    pass


@dataclass(frozen=True)
class Template:
    key: str            # field/number, e.g. "education/07"
    field: str
    category: str
    title: str
    body: str
    rural: bool = False  # written by someone from a town (镇), not an urban sub-district (街道)


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    keywords: tuple[str, ...]
    portal: bool
    slots: Mapping[str, tuple[str, ...]]
    questions: tuple[Template, ...] = field(repr=False)


@dataclass(frozen=True)
class Bank:
    fields: tuple[Field, ...]
    common: Mapping[str, tuple[str, ...]]
    stock: frozenset[str] = frozenset()    # shingles of the common phrases (similarity.stock_shingles)

    def by_key(self, key: str) -> Field:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)

    def field_for(self, site_name: str) -> Field:
        """The field whose keyword matches the site's name; the longest keyword wins (国有资产监督管理
        beats 管理委员会, 住房公积金 beats nothing shorter), then the one nearer the end of the
        name, where a department says what it is. No match: the general government field."""
        best: tuple[int, int] | None = None
        found = None
        for f in self.fields:
            for k in f.keywords:
                at = site_name.rfind(k)
                if at >= 0:
                    score = (len(k), at + len(k))
                    if best is None or score > best:
                        best, found = score, f
        return found or self.by_key(GOVERNMENT)

    def topics_for(self, f: Field) -> tuple[Field, ...]:
        """Fields a site of field `f` may write about: its own; for a government, every portal field."""
        if f.key != GOVERNMENT:
            return (f,)
        return (f,) + tuple(x for x in self.fields if x.portal and x.key != GOVERNMENT)


def _slots(data: dict, where: str) -> dict[str, tuple[str, ...]]:
    out = {}
    for name, values in (data or {}).items():
        if not _SLOT_NAME.match(name):
            raise BankError(f"{where}: slot name {name!r} must be lower-case ascii (a-z, 0-9, _)")
        if isinstance(values, str):
            values = [values]
        if not values or not all(isinstance(v, str) for v in values):
            raise BankError(f"{where}: slot {name!r} must be a non-empty list of strings")
        out[name] = tuple(values)
    return out


def _names(text: str) -> set[str]:
    """Slot names used in `text` (alternatives are looked into)."""
    names = set()
    while True:
        found = False
        for m in _TOKEN.finditer(text):
            found = True
            inner = m.group(1)
            if "|" not in inner:
                names.add(inner)
        if not found:
            break
        text = _TOKEN.sub(lambda m: m.group(1).replace("|", " "), text)
    if "{" in text or "}" in text:
        raise BankError(f"unbalanced braces in {text!r}")
    return names


def _check(text: str, known: set[str], where: str) -> None:
    try:
        unknown = _names(text) - known
    except BankError as e:
        raise BankError(f"{where}: {e}") from None
    if unknown:
        raise BankError(f"{where}: unknown slot(s) {', '.join(sorted(unknown))} in {text!r}")


@lru_cache(maxsize=4)
def load_bank(directory: Path = BANK_DIR) -> Bank:
    common_path = directory / COMMON_FILE
    common = _slots(read_toml(common_path).get("slots", {}), str(common_path))
    fields = []
    for path in sorted(directory.glob("*.toml")):
        if path.name == COMMON_FILE:
            continue
        data = read_toml(path)
        key = data.get("key", path.stem)
        slots = _slots(data.get("slots", {}), str(path))
        known = set(slots) | set(common) | BUILTIN_SLOTS
        questions = []
        for i, q in enumerate(data.get("question", []), start=1):
            where = f"{path.name} question {i}"
            if q.get("category") not in CATEGORIES:
                raise BankError(f"{where}: category must be one of {', '.join(CATEGORIES)}, got {q.get('category')!r}")
            for part in ("title", "body"):
                if not isinstance(q.get(part), str) or not q[part].strip():
                    raise BankError(f"{where}: {part} is required")
                _check(q[part], known, f"{where} {part}")
            if set(q["title"]) & set("'\"\\\n"):
                # A public list is searched by title inside a CSS :text-is('...') selector.
                raise BankError(f"{where}: a title may not hold quotes, backslashes or line breaks")
            used = _names(q["title"]) | _names(q["body"])
            wording = " ".join([q["title"], q["body"], *(v for n in used for v in slots.get(n, ()))])
            rural = bool(q.get("rural", RURAL.search(wording)))
            questions.append(Template(key=f"{key}/{i:02d}", field=key, category=q["category"],
                                      title=q["title"].strip(), body=" ".join(q["body"].split()),
                                      rural=rural))
        for name, values in slots.items():
            for v in values:
                _check(v, known, f"{path.name} slot {name}")
        if not questions:
            raise BankError(f"{path}: no [[question]]")
        fields.append(Field(key=key, label=data.get("label", key), keywords=tuple(data.get("keywords", ())),
                            portal=bool(data.get("portal", False)), slots=slots, questions=tuple(questions)))
    for name, values in common.items():
        for v in values:
            _check(v, set(common) | BUILTIN_SLOTS, f"{COMMON_FILE} slot {name}")
    if not any(f.key == GOVERNMENT for f in fields):
        raise BankError(f"{directory}: the {GOVERNMENT!r} field is missing")
    return Bank(fields=tuple(fields), common=common,
                stock=stock_shingles(literal_pieces(common) + place_names()))


def place_names() -> list[str]:
    """Every district, county and township name: where a writer lives does not make a letter new."""
    from bot.letters.places import cities

    return [name for c in cities() for name in (c.province, c.name, *(x for county in c.counties
            for x in (county.name, *county.aliases, *county.townships)))]


def literal_pieces(slots: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The fixed wording inside slot values: every run of text between braces and bars."""
    return [piece for values in slots.values() for v in values for piece in re.split(r"[{}|]", v)
            if piece and not _SLOT_NAME.match(piece)]


class Expander:
    """Expands one letter's templates: slots drawn once (memo), alternatives at each use."""

    def __init__(self, rng: random.Random, slots: Mapping[str, tuple[str, ...]],
                 common: Mapping[str, tuple[str, ...]], builtins: Mapping[str, str]):
        self.rng = rng
        self.slots = slots
        self.common = common
        self.memo: dict[str, str] = dict(builtins)
        self.prefer = ""

    def _slot(self, name: str) -> str:
        if name not in self.memo:
            values = self.slots.get(name) or self.common.get(name)
            if values is None:
                raise BankError(f"unknown slot {name!r}")
            self.memo[name] = self._expand(self.rng.choice(values))
        return self.memo[name]

    def _token(self, m: re.Match) -> str:
        inner = m.group(1)
        if "|" in inner:
            options = inner.split("|")
            said = [o for o in options if o and o in self.prefer]
            return self.rng.choice(said or options)
        return self._slot(inner)

    def expand(self, text: str, prefer: str = "") -> str:
        """`prefer`: text already written (a title is expanded after its body): an alternative
        that it contains is chosen, so that a title says 高铁站 when the body does."""
        self.prefer = prefer
        try:
            return self._expand(text)
        finally:
            self.prefer = ""

    def _expand(self, text: str) -> str:
        for _ in range(32):
            new = _TOKEN.sub(self._token, text)
            if new == text:
                return new
            text = new
        raise BankError(f"templates nest too deep: {text!r}")

