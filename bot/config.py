"""The TOML configuration, with defaults built in.

Looked up in this order: `--config FILE`, `$MAILBOX_BOT_CONFIG`, `./mailbox-bot.toml` if it
exists, else the defaults alone. `$MAILBOX_BOT_DATABASE_URL` overrides `database.url`.
A mistake is a `ConfigError` naming the file, the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = REPO_ROOT / "db" / "mailbox-bot.sqlite3"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatabaseConfig(_Strict):
    # Any SQLAlchemy URL; PostgreSQL as postgresql+psycopg://user@host/db
    url: str = f"sqlite:///{DEFAULT_DB_PATH}"


class BrowserConfig(_Strict):
    # A Chromium binary. Empty: $MAILBOX_BOT_CHROMIUM, then a system Chromium, then
    # Playwright's own build.
    executable_path: str = ""
    headless: bool = True
    concurrency: int = Field(4, ge=1, le=64)
    timeout_ms: int = Field(15_000, ge=100)


class PathsConfig(_Strict):
    evidence_dir: str = str(REPO_ROOT / "evidence")
    scenarios_dir: str = str(REPO_ROOT / "scenarios")
    accounts_file: str = str(REPO_ROOT / "mailbox_accounts.toml")
    # Saved logins (browser storage state per identity and login host, mode 0600). Never in
    # evidence or reports.
    sessions_dir: str = str(REPO_ROOT / ".sessions")


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
    source: str = "(defaults)"


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
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
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
    if path is None and Path("mailbox-bot.toml").exists():
        path = "mailbox-bot.toml"
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(Path(path))
        data.pop("source", None)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise describe_validation_error(e, str(path)) from None
    if path is not None:
        config.source = str(path)
    url = os.environ.get("MAILBOX_BOT_DATABASE_URL")
    if url:
        config.database.url = url
    return config
