"""The sandbox roster: which simulated sites exist and how each one behaves.

A roster is a TOML file with one `[campaign]` table and one `[[site]]` table per site, in the
order the inspection notice lists them (government portals first, then city departments). It is
a contract shared by the sandbox, the demo and the tests, so it is validated strictly: unknown
keys are refused, and every mistake is a one-line `ConfigError` naming the file, the key path
(`site[3].platform`, sites counted from 1 as in the default slugs `site-03`) and what was
expected. See docs/sandbox.md for the format.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      PrivateAttr, ValidationError, field_validator, model_validator)

from bot.values import ClockTime, Duration, Timestamp, parse_duration  # noqa: F401 (parse_duration: re-exported)
from bot.config import read_toml
from bot.errors import ConfigError

PLATFORMS = ("jact", "legacy", "minimal", "igi", "hdjlpt", "board", "confirm")
EMAIL_PLATFORMS = ("jact", "minimal", "igi", "hdjlpt", "confirm")   # the forms with an email field (legacy, board have none)
DRIFT_ROLES = ("title", "body", "name", "phone", "email")
BOARD_DRIFT_ROLES = ("body", "name", "phone")            # the board's form has no title or email
MAILBOXES = ("leader", "mayor", "board")
BOARD_ONLY = ("moderated", "closed", "edit")              # keys only a message board (`board`) reads
MAX_TRAFFIC = 1000          # other citizens' letters a working day, per mailbox
# The daily letter numbers each platform's tracking code has room for (docs/sandbox.md); the
# other citizens' letters of all its sites share them with the test letters. A board hands out
# no code at all.
CODE_ROOM = {"jact": 99_999, "legacy": 999_999, "minimal": 9_999, "igi": 999_999, "hdjlpt": 999_999,
             "confirm": 9_999}
RESERVED_SLUGS = ("sso",)
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def default_roster_path() -> Path:
    """The bundled roster: the Baoji city 2024 Q2 check (54 sites)."""
    return Path(__file__).resolve().parent / "rosters" / "baoji-2024q2.toml"


def _nonneg(n: int) -> int:
    if n < 0:
        raise ValueError(f"expected a number of working days >= 0, got {n}")
    return n


Workdays = Annotated[int, Field(strict=True), AfterValidator(_nonneg)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RosterCampaign(_Strict):
    name: str = Field(min_length=1)
    submit_at: Timestamp
    end_at: Timestamp
    deadline_workdays: Workdays = 5
    poll_every: Duration = timedelta(hours=2)


REPLY_CHANNELS = ("site", "email", "both")


class ReplyRule(_Strict):
    """Reply on the `workdays`-th working day after the day of receipt (0 = that day), at `at`,
    on the site's query page ("site"), by email to the address typed in the form ("email": the
    page keeps showing 办理中), or both."""
    workdays: Workdays
    at: ClockTime = time(16, 0)
    channel: Literal["site", "email", "both"] = "site"


class DeleteRule(_Strict):
    """The letter disappears on the `workdays`-th working day after the day of receipt, at `at`."""
    workdays: Workdays
    at: ClockTime = time(9, 0)


class BackdateRule(_Strict):
    """The displayed reply time is `workdays` working days earlier than the real one."""
    workdays: Workdays


class ReviewRule(_Strict):
    """A moderated board (留言审核): staff review a letter and publish it on the `workdays`-th
    working day after the day of receipt, at `at`; answering it publishes it too, if sooner."""
    workdays: Workdays = 1
    at: ClockTime = time(9, 0)


def _review_rule(value: Any) -> Any:
    """`moderated = true` (the default review rule), `false`, or a table of its own."""
    if value is True:
        return {}
    if value is False or value is None:
        return None
    if isinstance(value, dict):
        return value
    raise ValueError('expected true, false or a table such as { workdays = 1, at = "09:00" }')


class EditRule(_Strict):
    """Staff edit an answered board letter again on the `workdays`-th working day after the day
    of the reply, at `at` (0 = that day; not after the reply: half an hour after it). A board
    shows the row's last-modified time as its reply time, so that time moves here."""
    workdays: Workdays
    at: ClockTime = time(10, 0)


class RosterSite(_Strict):
    name: str = Field(min_length=1)
    group: str = Field(min_length=1)
    platform: str
    mailboxes: list[str]
    slug: str | None = None
    region: str | None = None
    captcha: Annotated[bool, Field(strict=True)] = False
    ack: Annotated[bool, Field(strict=True)] = False
    """A same-day automatic acknowledgement email (受理回执) to the address typed in the form."""
    reply: ReplyRule | None = None
    delete: DeleteRule | None = None
    backdate: BackdateRule | None = None
    # Faults, as real sites have them (docs/sandbox.md "Faults"):
    challenge: Annotated[float, Field(ge=0, le=1)] = 0.0
    """The share of page views answered by a firewall's challenge page instead."""
    flaky: Annotated[float, Field(ge=0, le=1)] = 0.0
    """The share of requests answered 502 Bad Gateway or dropped without an answer."""
    latency_ms: Annotated[int, Field(strict=True, ge=0, le=60_000)] = 0
    drift: Literal["title", "body", "name", "phone", "email"] | None = None
    """A form field renamed since the platform template was written."""
    login: Annotated[bool, Field(strict=True)] = False
    """Writing needs a login at the unified identity platform (`/sso/`)."""
    traffic: Annotated[int, Field(strict=True, ge=0, le=MAX_TRAFFIC)] = 0
    """Other citizens' letters a working day, per mailbox (`bot.sandbox.traffic`)."""
    # A message board's own settings (platform `board` only):
    moderated: Annotated[ReviewRule | None, BeforeValidator(_review_rule)] = None
    """Letters wait for staff to publish them (PbootCMS 留言审核) before the public list shows them."""
    closed: Annotated[bool, Field(strict=True)] = False
    """The board's posting is switched off (PbootCMS 留言开关): the form stays, posts are refused."""
    edit: EditRule | None = None
    """Staff edit the answered letter again later, moving its last-modified (shown reply) time."""

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, v: str) -> str:
        if v not in PLATFORMS:
            raise ValueError(f"unknown platform; expected one of: {', '.join(PLATFORMS)}")
        return v

    @field_validator("mailboxes")
    @classmethod
    def _known_mailboxes(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"expected a non-empty list of: {', '.join(MAILBOXES)}")
        for m in v:
            if m not in MAILBOXES:
                raise ValueError(f"unknown mailbox {m!r}; expected some of: {', '.join(MAILBOXES)}")
        if len(set(v)) != len(v):
            raise ValueError("a mailbox is listed twice")
        return v

    @field_validator("slug")
    @classmethod
    def _url_safe(cls, v: str | None) -> str | None:
        if v is not None and not SLUG_RE.match(v):
            raise ValueError("expected a URL-safe key: lower-case letters, digits, '-' or '_', "
                             f"starting with a letter or digit, got {v!r}")
        if v in RESERVED_SLUGS:
            raise ValueError(f"{v!r} is taken by the sandbox itself (the identity platform at /{v}/)")
        return v


class RosterAccount(_Strict):
    """A citizen account on the sandbox's unified identity platform (统一身份认证)."""
    account: str = Field(min_length=1)
    password: str = Field(min_length=1)
    phone: str = Field(pattern=r"^1[3-9][0-9]{9}$")


class Roster(_Strict):
    campaign: RosterCampaign
    site: list[RosterSite] = Field(min_length=1)
    account: list[RosterAccount] = []
    _source: str = PrivateAttr("(in memory)")

    @property
    def source(self) -> str:
        """The file the roster came from."""
        return self._source

    @model_validator(mode="after")
    def _default_slugs(self) -> "Roster":
        for i, s in enumerate(self.site, start=1):
            if s.slug is None:
                s.slug = f"site-{i:02d}"
        return self

    @property
    def sites(self) -> list[RosterSite]:
        return self.site

    def emails(self) -> bool:
        """True when some site answers or acknowledges by email."""
        return any(s.ack or (s.reply is not None and s.reply.channel != "site") for s in self.site)

    def by_name(self, name: str) -> RosterSite:
        for s in self.site:
            if s.name == name:
                return s
        raise KeyError(f"no site named {name!r} in roster {self.source}")


# -- loading ---------------------------------------------------------------------------------

def load_roster(path: str | Path) -> Roster:
    """Reads and validates a roster file; any mistake is a one-line ConfigError."""
    path = Path(path)
    return roster_from_dict(read_toml(path), where=str(path))


def roster_from_dict(data: dict[str, Any], where: str = "(in memory)") -> Roster:
    """Validates roster data already parsed (used by `load_roster`, handy for tests and demos)."""
    try:
        roster = Roster.model_validate(data)
    except ValidationError as e:
        raise _describe(e, data, where) from None
    roster._source = where
    _check_whole(roster, where)
    return roster


def _site_label(data: dict[str, Any], index: int) -> str:
    sites = data.get("site")
    name = None
    if isinstance(sites, list) and 0 <= index < len(sites) and isinstance(sites[index], dict):
        name = sites[index].get("name")
    return f"site {index + 1} {name!r}" if isinstance(name, str) else f"site {index + 1}"


def _key_path(loc: tuple) -> tuple[str, int | None]:
    """('site', 2, 'reply', 'at') -> ('site[3].reply.at', 2); pydantic's union tags dropped."""
    parts: list[str] = []
    site_index = None
    for i, p in enumerate(loc):
        if isinstance(p, int):
            if i == 1 and loc[0] == "site":
                site_index = p
                parts[-1] += f"[{p + 1}]"
            else:
                parts[-1] += f"[{p}]"
        elif str(p).startswith(("function-", "nullable")):  # pydantic's validator tags
            continue
        else:
            parts.append(str(p))
    return ".".join(parts) or "(top level)", site_index


def _describe(err: ValidationError, data: dict[str, Any], where: str) -> ConfigError:
    e = err.errors()[0]
    key, site_index = _key_path(tuple(e["loc"]))
    kind = e["type"]
    value = e.get("input")
    if kind == "extra_forbidden":
        msg = "unknown key"
        if re.fullmatch(r"site\[\d+\]\.[^.]+", key):
            msg += (" (expected: name, group, platform, mailboxes, slug, region, captcha, ack, "
                    "reply, delete, backdate, challenge, flaky, latency_ms, drift, login, traffic, "
                    "moderated, closed, edit)")
        elif re.fullmatch(r"site\[\d+\]\.reply\.[^.]+", key):
            msg += " (expected: workdays, at, channel)"
        elif re.fullmatch(r"site\[\d+\]\.delete\.[^.]+", key):
            msg += " (expected: workdays, at)"
        elif re.fullmatch(r"site\[\d+\]\.backdate\.[^.]+", key):
            msg += " (expected: workdays)"
        elif re.fullmatch(r"site\[\d+\]\.(moderated|edit)\.[^.]+", key):
            msg += " (expected: workdays, at)"
        elif key.startswith("campaign."):
            msg += " (expected: name, submit_at, end_at, deadline_workdays, poll_every)"
        elif "." not in key:
            msg += " (expected: campaign, site, account)"
        value = None
    elif kind == "missing":
        msg = "required key is missing"
        value = None
    elif kind == "value_error":
        msg = str(e.get("ctx", {}).get("error") or e["msg"]).removeprefix("Value error, ")
        if "got" in msg:
            value = None
    elif key.endswith(".traffic") and kind in ("int_type", "int_parsing", "int_from_float",
                                               "greater_than_equal", "less_than_equal"):
        msg = f"expected a whole number of other citizens' letters a day, 0 to {MAX_TRAFFIC}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        msg = "expected a whole number"
    elif kind in ("bool_type", "bool_parsing"):
        msg = "expected true or false"
    elif kind in ("greater_than_equal", "less_than_equal", "float_type", "float_parsing"):
        ctx = e.get("ctx", {})
        msg = ("expected a number" + (f" >= {ctx['ge']}" if "ge" in ctx else "")
               + (f" <= {ctx['le']}" if "le" in ctx else ""))
        if key.endswith((".challenge", ".flaky")):
            msg = "expected a share between 0 and 1, e.g. 0.2"
    elif kind == "literal_error":
        msg = f"expected one of: {e.get('ctx', {}).get('expected', '')}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "expected a table"
        value = None if isinstance(value, dict) else value
    elif kind == "list_type":
        msg = "expected a list" if key != "site" else "expected [[site]] tables"
    elif kind == "too_short":
        msg = "expected at least one [[site]]" if key == "site" else "must not be empty"
        value = None
    else:
        msg = e["msg"]
    shown = "" if value is None or isinstance(value, (dict, list)) and kind != "list_type" else f", got {value!r}"
    label = f" ({_site_label(data, site_index)})" if site_index is not None else ""
    return ConfigError(f"key '{key}'{label}: {msg}{shown}", where=where)


def _check_whole(roster: Roster, where: str) -> None:
    c = roster.campaign
    if c.end_at <= c.submit_at:
        raise ConfigError(f"key 'campaign.end_at': {c.end_at.isoformat()} is not after "
                          f"campaign.submit_at {c.submit_at.isoformat()}", where=where)
    names: dict[str, int] = {}
    slugs: dict[str, int] = {}
    for i, s in enumerate(roster.site, start=1):
        if s.name in names:
            raise ConfigError(f"key 'site[{i}].name' (site {i} {s.name!r}): duplicate site name, "
                              f"already used by site[{names[s.name]}]", where=where)
        names[s.name] = i
        if s.backdate is not None and s.reply is None:
            raise ConfigError(f"key 'site[{i}].backdate' (site {i} {s.name!r}): needs a 'reply' "
                              "rule (a site that never replies shows no reply time)", where=where)
        emails = (s.reply is not None and s.reply.channel != "site") or s.ack
        if emails and s.platform not in EMAIL_PLATFORMS:
            what = "'ack = true'" if s.reply is None or s.reply.channel == "site" else \
                f"'reply.channel = \"{s.reply.channel}\"'"
            key = "ack" if what.startswith("'ack") else "reply.channel"
            raise ConfigError(f"key 'site[{i}].{key}' (site {i} {s.name!r}): {what} needs an email "
                              f"field in the form, and the {s.platform} platform has none (platforms "
                              f"with one: {', '.join(EMAIL_PLATFORMS)})", where=where)
        _check_board(s, i, where)
        if s.slug in slugs:
            raise ConfigError(f"key 'site[{i}].slug' (site {i} {s.name!r}): duplicate slug "
                              f"{s.slug!r}, already used by site[{slugs[s.slug]}]", where=where)
        slugs[s.slug] = i
    _check_traffic_room(roster, where)


def _check_board(s: RosterSite, i: int, where: str) -> None:
    """A message board (`board`) has one mailbox of its own and settings no other platform
    reads; what a board cannot do is refused rather than ignored."""
    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"key 'site[{i}].{key}' (site {i} {s.name!r}): {msg}", where=where)

    if s.platform != "board":
        if "board" in s.mailboxes:
            fail("mailboxes", "mailbox 'board' (在线留言) is the message board's, for platform = "
                              f"\"board\" only; the {s.platform} platform has: leader, mayor")
        for key in BOARD_ONLY:
            if getattr(s, key) not in (None, False):
                fail(key, f"a message board setting (platform = \"board\"); the {s.platform} "
                          "platform has no such thing")
        return
    if s.mailboxes != ["board"]:
        fail("mailboxes", f"a board site has the one mailbox \"board\" (在线留言), got {s.mailboxes!r}")
    if s.edit is not None and s.reply is None:
        fail("edit", "needs a 'reply' rule (an edit moves the shown reply time of an answered letter)")
    if s.backdate is not None:
        fail("backdate", "a board shows the row's last-modified time, which staff cannot set back; "
                         "'edit' moves it later")
    if s.login:
        fail("login", "a board's writing is not behind the unified login (its own member login "
                      "is not simulated)")
    if s.drift is not None and s.drift not in BOARD_DRIFT_ROLES:
        fail("drift", f"the board form has no {s.drift} field; expected one of: "
                      f"{', '.join(BOARD_DRIFT_ROLES)}")


def _check_traffic_room(roster: Roster, where: str) -> None:
    """Every site of a platform draws its letter numbers from one daily counter; its traffic
    may use at most half of it, leaving the rest for the test letters."""
    used: dict[str, int] = {}
    for i, s in enumerate(roster.site, start=1):
        if s.platform not in CODE_ROOM:         # a board numbers nothing
            continue
        used[s.platform] = used.get(s.platform, 0) + s.traffic * len(s.mailboxes)
        room = CODE_ROOM[s.platform] // 2
        if s.traffic and used[s.platform] > room:
            raise ConfigError(f"key 'site[{i}].traffic' (site {i} {s.name!r}): the {s.platform} "
                              f"sites' traffic adds up to {used[s.platform]} letters a day (each "
                              f"mailbox counts), more than the {room} its daily tracking codes "
                              "leave room for", where=where)


__all__ = ["PLATFORMS", "EMAIL_PLATFORMS", "DRIFT_ROLES", "BOARD_DRIFT_ROLES", "BOARD_ONLY",
           "RosterAccount", "REPLY_CHANNELS", "MAILBOXES", "Roster", "RosterCampaign", "RosterSite", "ReplyRule",
           "DeleteRule", "BackdateRule", "ReviewRule", "EditRule", "MAX_TRAFFIC", "CODE_ROOM", "load_roster", "roster_from_dict", "default_roster_path",
           "parse_duration"]
