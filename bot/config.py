"""The TOML configuration, with defaults built in, and where the workspace is.

Looked up in this order: `--config FILE`, `$MAILBOX_BOT_CONFIG`, `./mailbox-bot.toml` if it
exists, else the defaults alone. `$MAILBOX_BOT_DATABASE_URL` overrides `database.url`.
A mistake is a `ConfigError` naming the file, the key and what was expected.

The workspace is the folder of the config file, or the working directory when there is none:
every relative path of the config (the defaults included: `scenarios/`, `evidence/`,
`mailbox-bot.sqlite3`, ...) is made absolute against it when the config is loaded, so a command
run from another folder with `--config` finds the same files, and nothing is looked for in the
folder the program is installed in.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError

CONFIG_FILE = "mailbox-bot.toml"
DEFAULT_DATABASE_FILE = "mailbox-bot.sqlite3"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatabaseConfig(_Strict):
    # Any SQLAlchemy URL; PostgreSQL as postgresql+psycopg://user@host/db
    # (a relative SQLite path is relative to the workspace).
    url: str = f"sqlite:///{DEFAULT_DATABASE_FILE}"


class BrowserConfig(_Strict):
    # A Chromium binary. Empty: $MAILBOX_BOT_CHROMIUM, then a system Chromium, then
    # Playwright's own build.
    executable_path: str = ""
    headless: bool = True
    concurrency: int = Field(4, ge=1, le=64)
    timeout_ms: int = Field(15_000, ge=100)
    # Browsers on other machines instead of a local launch (bot.browser.pool): Playwright
    # browser servers ("ws://host:3000/", `playwright run-server`) and Chromiums with remote
    # debugging ("http://host:9222"); pages go to them in turn.
    connect: list[str] = []
    cdp: list[str] = []
    # Contexts at once per endpoint; 0: `concurrency`, per endpoint.
    endpoint_concurrency: int = Field(0, ge=0, le=64)
    # For a browser server started with --unsafe: the Chromium it should launch.
    remote_executable_path: str = ""


class PathsConfig(_Strict):
    # Relative to the workspace. Every field here is a path (`_anchor` relies on that).
    evidence_dir: str = "evidence"
    # Site files in <scenarios_dir>/sites; platform templates in <scenarios_dir>/platforms,
    # else the built-in template of that name (bot.scenario.loader.find_platform).
    scenarios_dir: str = "scenarios"
    accounts_file: str = "mailbox_accounts.toml"
    # Saved logins (browser storage state per identity and login host, mode 0600). Never in
    # evidence or reports.
    sessions_dir: str = ".sessions"
    # What `replay` keeps of a dry run (screenshots, HTML, captcha images).
    replay_dir: str = "replay-out"


class CaptchaConfig(_Strict):
    # A solver hook "package.module:function" (image bytes, site name -> answer or None) for
    # every site without its own; empty: a person answers (or the letter waits for one).
    solver: str = ""


class CalendarConfig(_Strict):
    # TOML file of extra holidays / make-up working days (see bot.calendar.load_overrides).
    overrides_file: str = ""


class Config(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    browser: BrowserConfig = BrowserConfig()
    paths: PathsConfig = PathsConfig()
    calendar: CalendarConfig = CalendarConfig()
    captcha: CaptchaConfig = CaptchaConfig()
    # Not keys of the file: where the config came from and the folder its paths are relative to.
    source: str = "(defaults)"
    workspace: str = ""


NOT_IN_FILE = ("source", "workspace")


def dotted_key(loc: tuple) -> str:
    """A pydantic location as the dotted key a user reads: `flows.submit.steps.8.outcomes.sucess`
    (pydantic's own `[key]` marker left out)."""
    return ".".join(str(p) for p in loc if p != "[key]")


def describe_validation_error(err: ValidationError, where: str) -> ConfigError:
    """The first pydantic error as one line: file, dotted key, what was expected, the value."""
    e = err.errors()[0]
    if e["type"] == "value_error" and not e["loc"]:
        # A whole-model check (e.g. a cross reference): its message names the key itself.
        return ConfigError(str(e["ctx"]["error"]), where=where)
    key = dotted_key(e["loc"]) or "(top level)"
    msg = e["msg"]
    if e["loc"] and e["loc"][-1] == "[key]":
        msg = f"the name is not one of the allowed ones: {msg}"
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif e["type"] == "missing":
        msg = "required key is missing"
    value = e.get("input")
    shown = "" if e["type"] in ("missing", "model_type") or isinstance(value, dict) else f", got {value!r}"
    return ConfigError(f"key '{key}': {msg}{shown}", where=where)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; every TOML file the program reads goes through here.

    "utf-8-sig": Windows Notepad saves "UTF-8 with BOM", and tomllib refuses the BOM."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError("file not found", where=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", where=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML ({e})", where=str(path)) from None
    except OSError as e:  # a directory, no permission, ...
        raise ConfigError(f"cannot read the file ({e.strerror or e})", where=str(path)) from None


def load_config(path: str | Path | None = None) -> Config:
    if path is None:
        path = os.environ.get("MAILBOX_BOT_CONFIG") or None
    if path is None and Path(CONFIG_FILE).exists():
        path = CONFIG_FILE
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(Path(path))
        for key in NOT_IN_FILE:
            if key in data:
                raise ConfigError(f"key '{key}': unknown key", where=str(path))
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise describe_validation_error(e, str(path)) from None
    # The folder as the user sees it (absolute, symlinks not followed).
    workspace = Path(path).absolute().parent if path is not None else Path.cwd()
    _anchor(config, workspace)
    if path is not None:
        config.source = str(path)
    url = os.environ.get("MAILBOX_BOT_DATABASE_URL")
    if url:
        # Not written in a file: a relative SQLite path means the working directory.
        config.database.url = anchored_database_url(url, Path.cwd())
    return config


def anchored_path(value: str, base: Path) -> str:
    """`value` made absolute against `base` (`~` expanded); empty stays empty."""
    if not value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


# sqlite:///relative.db, sqlite+pysqlite:////abs.db?timeout=5; parsed here rather than with
# SQLAlchemy's make_url so that commands without a database do not import SQLAlchemy.
_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$")


def anchored_database_url(url: str, base: Path) -> str:
    """A SQLite URL whose file path is relative, made absolute against `base`; others as is."""
    m = _SQLITE_URL.match(url)
    if not m or not m.group(2) or m.group(2) == ":memory:" or m.group(2).startswith("file:"):
        return url
    return m.group(1) + anchored_path(m.group(2), base) + (m.group(3) or "")


def _anchor(config: Config, workspace: Path) -> None:
    """Every relative path of the config made absolute against the workspace."""
    config.workspace = str(workspace)
    for name in PathsConfig.model_fields:
        setattr(config.paths, name, anchored_path(getattr(config.paths, name), workspace))
    config.calendar.overrides_file = anchored_path(config.calendar.overrides_file, workspace)
    config.browser.executable_path = anchored_path(config.browser.executable_path, workspace)
    config.database.url = anchored_database_url(config.database.url, workspace)
