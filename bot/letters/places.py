"""Real place names by city (data in places/*.toml), so that a letter's address lies inside the
site's own region: a county site's letters come from its own towns, a city-level site's from any
of the city's districts and counties.

A region the data does not know (another city, an empty region) still gets a letter: its
address is then the region's name alone, never a made-up street.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.config import read_toml

PLACES_DIR = Path(__file__).with_name("places")


@dataclass(frozen=True)
class County:
    name: str
    aliases: tuple[str, ...]
    streets: tuple[str, ...]      # 街道: urban sub-districts
    towns: tuple[str, ...]        # 镇
    weight: int

    @property
    def townships(self) -> tuple[str, ...]:
        return self.streets + self.towns


@dataclass(frozen=True)
class City:
    province: str
    name: str
    aliases: tuple[str, ...]
    counties: tuple[County, ...]

    def county(self, name: str) -> County | None:
        for c in self.counties:
            if name == c.name or name in c.aliases:
                return c
        return None


@dataclass(frozen=True)
class Place:
    """Where a letter's writer lives."""
    province: str
    city: str
    county: str       # 渭滨区; the region itself for an unknown region
    township: str     # 清姜街道 / 蔡家坡镇; "" for an unknown region
    urban: bool       # a 街道 (residents) rather than a 镇 (residents and villagers)

    @property
    def area(self) -> str:
        """As a citizen writes it in a letter: 渭滨区清姜街道."""
        return f"{self.county}{self.township}"

    @property
    def address(self) -> str:
        """As a form's address field takes it: 陕西省宝鸡市渭滨区清姜街道."""
        return f"{self.province}{self.city}{self.county}{self.township}"


@dataclass(frozen=True)
class Region:
    """A site's region resolved against the place data."""
    name: str
    city: City | None
    counties: tuple[County, ...]      # one for a county site, all of them for a city site

    @property
    def known(self) -> bool:
        return bool(self.counties)

    def pick(self, rng: random.Random, rural: bool = False) -> Place:
        """A township of the region, by weight for a city; `rural`: a town (镇), where it has one."""
        if not self.counties:
            name = self.name or "本地"
            return Place(province="", city="", county=name, township="", urban=True)
        counties = [c for c in self.counties if c.towns] if rural else list(self.counties)
        counties = counties or list(self.counties)
        county = (counties[0] if len(counties) == 1
                  else rng.choices(counties, weights=[c.weight for c in counties])[0])
        township = rng.choice(county.towns if rural and county.towns else county.townships)
        return Place(province=self.city.province, city=self.city.name, county=county.name,
                     township=township, urban=township in county.streets)

    def contains(self, address: str) -> bool:
        """True when `address` (a `Place.address` or `.area`) is a township of this region."""
        if not self.counties:
            return address == (self.name or "本地")
        prefix = self.city.province + self.city.name
        return any(address in (f"{c.name}{t}", f"{prefix}{c.name}{t}")
                   for c in self.counties for t in c.townships)


@lru_cache(maxsize=1)
def cities() -> tuple[City, ...]:
    out = []
    for path in sorted(PLACES_DIR.glob("*.toml")):
        data = read_toml(path)
        counties = tuple(County(name=c["name"], aliases=tuple(c.get("aliases", ())),
                                streets=tuple(c.get("streets", ())), towns=tuple(c.get("towns", ())),
                                weight=int(c.get("weight", 1)))
                         for c in data["county"])
        out.append(City(province=data["province"], name=data["city"], aliases=tuple(data.get("aliases", ())),
                        counties=counties))
    return tuple(out)


def region(name: str | None) -> Region:
    """Resolves a site's `region` (宝鸡市, 渭滨区, 宝鸡市渭滨区, 高新区, 凤翔县...)."""
    name = (name or "").strip()
    for city in cities():
        if name == city.name or name in city.aliases:
            return Region(name, city, city.counties)
        local = name
        for prefix in (city.province + city.name, city.name, *city.aliases):
            if prefix and local.startswith(prefix) and local != prefix:
                local = local[len(prefix):]
                break
        c = city.county(local)
        if c is not None:
            return Region(name, city, (c,))
    return Region(name, None, ())
