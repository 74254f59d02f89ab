"""Campaign files: which sites, which mailboxes, when and how gently, written down once.

A campaign file is TOML, validated strictly like every other file the bot reads: an unknown
key, a bad time or duration, a glob that matches no site file is a one-line `ConfigError`
naming the file, the key and the value. Site paths and globs are relative to the campaign
file, so a campaign directory can be moved with its site files. Passwords are never written
in it: a proxy names the environment variable that holds its password (`password_env`).

The spec round-trips through JSON (`to_settings` / `spec_from_settings`): a started campaign
keeps it in `Campaign.settings`, and the daemon works from that, not from a file edited since.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, PrivateAttr,
                      ValidationError, model_validator)

from bot.config import read_toml
from bot.errors import ConfigError
from bot.values import ClockTime, parse_duration
from bot.scenario.loader import load_site, scenario_for, valid_on
from bot.scenario.schema import Scenario, SiteRecord
from bot.vocab import MailboxKind

MAILBOXES = tuple(MailboxKind)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GLOB_CHARS = re.compile(r"[*?\[]")


# -- value types that read a human spelling and write it back the same way --------------------

def format_duration(value: timedelta) -> str:
    """timedelta -> "1d2h30m" (the spelling parse_duration reads); zero -> "0m"."""
    total = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or "0m"


def _duration_or_zero(value: Any) -> timedelta:
    if isinstance(value, str) and re.fullmatch(r"\s*0+\s*[smhd]?\s*", value):
        return timedelta(0)
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError("expected a duration such as \"10m\", \"1h\" or \"0m\"") from None


def _parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("expected a date such as 2026-12-01 (a day, without a time)")


_hhmm = PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json")
_dur = PlainSerializer(format_duration, return_type=str, when_used="json")
Time = Annotated[ClockTime, _hhmm]
Duration = Annotated[timedelta, BeforeValidator(parse_duration), _dur]
DurationOrZero = Annotated[timedelta, BeforeValidator(_duration_or_zero), _dur]
Day = Annotated[date, BeforeValidator(_parse_date)]
Int = Annotated[int, Field(strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendWindow(_Strict):
    """Letters go out on working days only, between `start` and `end` (Asia/Shanghai)."""
    start: Time = time(9, 0)
    end: Time = time(11, 30)
    jitter: DurationOrZero = timedelta(minutes=10)

    @model_validator(mode="after")
    def _order(self):
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} is not after start {self.start:%H:%M}")
        return self

    @property
    def span(self) -> timedelta:
        return datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)


class RateLimit(_Strict):
    per_host: Duration = timedelta(minutes=5)


class ProxySettings(_Strict):
    """Playwright's proxy settings; the password only through an environment variable."""
    server: str = Field(pattern=r"^(https?|socks5?)://[^\s/]+")
    username: str = ""
    password_env: str = ""
    bypass: str = ""

    def playwright(self) -> dict[str, str]:
        """The dict Playwright takes, the password read from the environment now (never kept)."""
        out = {"server": self.server}
        if self.username:
            out["username"] = self.username
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"environment variable {self.password_env} (proxy password_env) is not set")
            out["password"] = value
        if self.bypass:
            out["bypass"] = self.bypass
        return out


class PollSettings(_Strict):
    every: Duration = timedelta(hours=2)


class Recurrence(_Strict):
    """The next campaign: the `nth` `weekday` of a month (of each month, or of the `month`-th
    month of each quarter); a day that is not a working day moves to the next working day."""
    every: Literal["quarter", "month"]
    month: Int | None = Field(None, ge=1, le=3)
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    nth: Int = Field(1, ge=1, le=4)

    @model_validator(mode="after")
    def _month_for_quarter(self):
        if self.every == "month" and self.month is not None:
            raise ValueError("key 'recurrence.month': only for every = \"quarter\" (which month of the quarter)")
        if self.every == "quarter" and self.month is None:
            self.month = 1
        return self


class SiteOverride(_Strict):
    proxy: ProxySettings | None = None


class CampaignSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    sites: list[str] = Field(min_length=1)
    mailboxes: list[MailboxKind] | None = Field(None, min_length=1)
    deadline_workdays: Int = Field(5, ge=0, le=60)
    cutoff: Time | None = None
    identities: list[str] = []
    start: Day | None = None
    watch_after_deadline: DurationOrZero = timedelta(days=10)
    send_window: SendWindow = SendWindow()
    rate_limit: RateLimit = RateLimit()
    proxy: ProxySettings | None = None
    poll: PollSettings = PollSettings()
    recurrence: Recurrence | None = None
    sites_override: dict[str, SiteOverride] = {}

    _source: str = PrivateAttr("(in memory)")
    _path: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _no_twice(self):
        for key in ("mailboxes", "identities", "sites"):
            values = getattr(self, key) or []
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(f"key '{key}': {twice[0]!r} is listed twice")
        return self

    # -- where it came from ------------------------------------------------------------
    @property
    def source(self) -> str:
        """The file as the user named it (for messages)."""
        return self._source

    @property
    def path(self) -> Path | None:
        """The file, absolute; site paths and globs are relative to its folder."""
        return self._path

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._path is not None else Path.cwd()

    # -- sites -------------------------------------------------------------------------
    def site_files(self) -> list[Path]:
        """Every site file the `sites` entries name, sorted and each once."""
        found: set[Path] = set()
        for i, entry in enumerate(self.sites):
            pattern = Path(entry).expanduser()
            full = pattern if pattern.is_absolute() else self.base_dir / pattern
            if _GLOB_CHARS.search(entry):
                matches = [Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file()]
                if not matches:
                    raise ConfigError(f"key 'sites[{i}]': {entry!r} matches no site file "
                                      f"(looked for {full})", where=self.source)
            else:
                if not full.is_file():
                    raise ConfigError(f"key 'sites[{i}]': no site file {entry!r} (looked for {full})",
                                      where=self.source)
                matches = [full]
            found.update(p.resolve() for p in matches)
        return sorted(found)

    def site_entries(self, day: date | None, scenarios_dir: Path | str) -> list["SiteEntry"]:
        """The site files' records (those in force on `day`; all when None), each with its merged
        scenario and its file; a `sites_override` naming no site is an error."""
        loaded = []
        for path in self.site_files():
            record = load_site(path)
            loaded.append(SiteEntry(path, record, None))
        names = {e.record.name for e in loaded} | {e.record.key for e in loaded}
        for key in self.sites_override:
            if key not in names:
                raise ConfigError(f"key 'sites_override.{_quoted(key)}': names no site of this campaign "
                                  f"(by name or key; {len(loaded)} site files)", where=self.source)
        if day is not None:
            current = valid_on([e.record for e in loaded], day)
            loaded = [e for e in loaded if any(e.record is r for r in current)]
        return [SiteEntry(e.path, e.record, scenario_for(e.record, Path(scenarios_dir), where=str(e.path)))
                for e in loaded]

    def records_on(self, day: date, scenarios_dir: Path | str) -> list[tuple[SiteRecord, Scenario]]:
        """The site records in force on `day` (`valid_on`), each with its merged scenario."""
        return [(e.record, e.scenario) for e in self.site_entries(day, scenarios_dir)]

    def mailboxes_of(self, record: SiteRecord) -> list[str]:
        """The mailboxes of this site the campaign writes to, in the site file's order."""
        return [k for k in record.mailboxes if self.mailboxes is None or k in self.mailboxes]

    def proxy_for(self, record: SiteRecord) -> ProxySettings | None:
        """The site's own proxy (`sites_override` by name, then by key), else the campaign's."""
        for key in (record.name, record.key):
            override = self.sites_override.get(key)
            if override is not None and override.proxy is not None:
                return override.proxy
        return self.proxy

    # -- keeping it --------------------------------------------------------------------
    def to_settings(self) -> dict[str, Any]:
        """JSON-able data that `spec_from_settings` reads back to the same spec."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class SiteEntry:
    path: Path
    record: SiteRecord
    scenario: Scenario | None


def _quoted(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


# -- loading ---------------------------------------------------------------------------------

def load_campaign_spec(path: str | Path) -> CampaignSpec:
    """Reads and validates a campaign file; any mistake is a one-line ConfigError."""
    shown = str(path)
    path = Path(path)
    return _validated(read_toml(path), shown, path.resolve())


def spec_from_settings(data: dict[str, Any], path: str | Path | None = None) -> CampaignSpec:
    """A spec kept in a campaign's settings (`to_settings`), its file remembered for globs."""
    shown = str(path) if path is not None else "(campaign settings)"
    return _validated(dict(data), shown, Path(path).resolve() if path is not None else None)


def _validated(data: dict[str, Any], shown: str, resolved: Path | None) -> CampaignSpec:
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as e:
        raise _describe(e, shown) from None
    spec._source, spec._path = shown, resolved
    return spec


_TABLES: dict[str, type[BaseModel]] = {"": CampaignSpec, "send_window": SendWindow, "rate_limit": RateLimit,
                                       "proxy": ProxySettings, "poll": PollSettings, "recurrence": Recurrence}


def _allowed(parent: tuple) -> str:
    if parent and parent[0] == "sites_override":
        model = SiteOverride if len(parent) == 2 else ProxySettings
    else:
        model = _TABLES.get(".".join(str(p) for p in parent))
    return ", ".join(model.model_fields) if model else ""


def _key(loc: tuple) -> str:
    out = ""
    for i, p in enumerate(loc):
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).startswith(("function-", "nullable")):
            continue
        elif i > 0 and loc[0] == "sites_override" and i == 1:
            out += "." + _quoted(str(p))
        else:
            out += ("." if out else "") + str(p)
    return out or "(top level)"


def _describe(err: ValidationError, where: str) -> ConfigError:
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not str(p).startswith(("function-", "nullable")))
    kind, value, ctx = e["type"], e.get("input"), e.get("ctx", {})
    if kind == "value_error" and (not loc or str(ctx.get("error", "")).startswith("key '")):
        return ConfigError(str(ctx.get("error")), where=where)
    key = _key(loc)
    if kind == "extra_forbidden":
        if loc[-1] == "password":
            msg = ("passwords are not written in campaign files: put it in an environment variable "
                   "and name that with password_env")
        else:
            allowed = _allowed(loc[:-1])
            msg = "unknown key" + (f" (expected one of: {allowed})" if allowed else "")
        value = None
    elif kind == "missing":
        msg, value = "required key is missing", None
    elif kind == "value_error":
        msg = str(ctx.get("error") or e["msg"])
        if "got" in msg:
            value = None
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        msg = "expected a whole number"
    elif kind in ("greater_than_equal", "less_than_equal"):
        msg = "expected a number" + (f" >= {ctx['ge']}" if "ge" in ctx else "") + (f" <= {ctx['le']}" if "le" in ctx else "")
    elif kind == "literal_error":
        msg = f"expected one of: {ctx.get('expected', '')}"
    elif kind == "string_pattern_mismatch":
        msg = "expected a proxy URL such as socks5://127.0.0.1:1080 or http://10.0.0.1:3128"
    elif kind in ("string_type",):
        msg = "expected a string in quotes"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "expected a table"
        value = None if isinstance(value, dict) else value
    elif kind == "list_type":
        msg = "expected a list, e.g. [\"...\"]"
    elif kind in ("too_short", "string_too_short"):
        msg, value = "must not be empty", None
    elif kind == "string_too_long":
        msg = f"longer than {ctx.get('max_length')} characters"
    else:
        msg = e["msg"]
    shown = "" if value is None or isinstance(value, dict) else f", got {value!r}"
    return ConfigError(f"key '{key}': {msg}{shown}", where=where)
