"""The workspace: the working directory (or the config file's folder) holds everything; built-in
platform templates unless the workspace has its own; `mailbox-bot init` writes a starter one.

Through the real command line in a subprocess, with real files and real SQLite databases.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, one_line_error
from sqlalchemy import select

from bot.accounts import load_accounts
from bot.config import Config
from bot.resources import builtin_platforms_dir
from bot.workspace import FILES, STARTER

NO_DB_ENV = {"MAILBOX_BOT_DATABASE_URL": ""}      # run_cli sets one; these tests want the config's
PATH_KEYS = ("evidence_dir", "scenarios_dir", "accounts_file", "sessions_dir", "replay_dir")


def _show(run_cli, *args: str) -> dict:
    return json.loads(run_cli(*args, "config", "show", env=NO_DB_ENV, check=True).stdout)


# --- where things go ------------------------------------------------------------------------

def test_without_a_config_file_everything_is_in_the_working_directory(run_cli, tmp_path):
    shown = _show(run_cli)
    assert shown["source"] == "(defaults)" and shown["workspace"] == str(tmp_path)
    assert {k: shown["paths"][k] for k in PATH_KEYS} == {
        "evidence_dir": str(tmp_path / "evidence"), "scenarios_dir": str(tmp_path / "scenarios"),
        "accounts_file": str(tmp_path / "mailbox_accounts.toml"), "sessions_dir": str(tmp_path / ".sessions"),
        "replay_dir": str(tmp_path / "replay-out")}
    assert shown["database"]["url"] == f"sqlite:///{tmp_path / 'mailbox-bot.sqlite3'}"
    proc = run_cli("db", "upgrade", env=NO_DB_ENV, check=True)
    assert str(tmp_path / "mailbox-bot.sqlite3") in proc.stdout
    with sqlite3.connect(tmp_path / "mailbox-bot.sqlite3") as conn:      # really migrated
        assert conn.execute("select version_num from alembic_version").fetchone()[0]


def test_relative_paths_in_a_config_file_are_relative_to_its_folder(run_cli, tmp_path):
    """Run from another folder with --config (and $MAILBOX_BOT_CONFIG): the config file's
    folder is the workspace, for the defaults and for what the file writes."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "holidays.toml").write_text('[[day]]\ndate = "2024-05-06"\nworkday = false\nreason = "本地调整"\n',
                                      encoding="utf-8")
    (ws / "mailbox-bot.toml").write_text(
        '[database]\nurl = "sqlite:///data/bot.sqlite3"\n'
        '[paths]\nevidence_dir = "proof"\naccounts_file = "/srv/accounts.toml"\n'
        '[calendar]\noverrides_file = "holidays.toml"\n', encoding="utf-8")
    for args, env in ((("--config", "ws/mailbox-bot.toml"), NO_DB_ENV),
                      ((), {**NO_DB_ENV, "MAILBOX_BOT_CONFIG": "ws/mailbox-bot.toml"})):
        shown = json.loads(run_cli(*args, "config", "show", env=env, check=True).stdout)
        assert shown["workspace"] == str(ws)
        assert shown["paths"]["evidence_dir"] == str(ws / "proof")            # written relative
        assert shown["paths"]["scenarios_dir"] == str(ws / "scenarios")       # a default
        assert shown["paths"]["accounts_file"] == "/srv/accounts.toml"        # absolute stays
        assert shown["database"]["url"] == f"sqlite:///{ws / 'data' / 'bot.sqlite3'}"
        # The overrides file is found next to the config, not in the working directory.
        day = json.loads(run_cli(*args, "calendar", "is-workday", "2024-05-06", "--json", env=env,
                                 check=True).stdout)
        assert day["workday"] is False, day
    run_cli("--config", "ws/mailbox-bot.toml", "db", "upgrade", env=NO_DB_ENV, check=True)
    assert (ws / "data" / "bot.sqlite3").is_file()
    assert not (tmp_path / "data").exists() and not (tmp_path / "mailbox-bot.sqlite3").exists()


def test_a_database_url_from_the_environment_is_relative_to_the_working_directory(run_cli, tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "mailbox-bot.toml").write_text("", encoding="utf-8")
    shown = _show(run_cli, "--config", "ws/mailbox-bot.toml")
    assert shown["database"]["url"] == f"sqlite:///{tmp_path / 'ws' / 'mailbox-bot.sqlite3'}"
    proc = run_cli("--config", "ws/mailbox-bot.toml", "config", "show",
                   env={"MAILBOX_BOT_DATABASE_URL": "sqlite:///here.sqlite3"}, check=True)
    assert json.loads(proc.stdout)["database"]["url"] == f"sqlite:///{tmp_path / 'here.sqlite3'}"


@pytest.mark.parametrize("key", ["source", "workspace"])
def test_what_the_program_fills_in_is_not_a_key_of_the_file(run_cli, tmp_path, key):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'{key} = "/elsewhere"\n', encoding="utf-8")
    one_line_error(run_cli("--config", str(cfg), "config", "show"), str(cfg), f"'{key}'", "unknown key")


# --- platform templates: the workspace's own, else built in ---------------------------------

SITE = ('name = "某市人民政府"\ngroup = "政府门户网站"\nbase_url = "http://127.0.0.1:9/x"\n'
        'platform = "{platform}"\nplatform_version = 1\nmailboxes = ["leader"]\n')


def _jact_copy(ws: Path, version: int = 1, title: str | None = None) -> Path:
    text = (builtin_platforms_dir() / "jact.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^version = \d+", f"version = {version}", text)
    assert f"version = {version}" in text
    if title is not None:
        text = re.sub(r'(?m)^title = "[^"]*"', f'title = "{title}"', text, count=1)
        assert f'title = "{title}"' in text
    dst = ws / "scenarios" / "platforms" / "jact.toml"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text, encoding="utf-8")
    return dst


def test_built_in_templates_unless_the_workspace_has_its_own(run_cli, tmp_path):
    builtin = {p.stem for p in builtin_platforms_dir().glob("*.toml")}
    assert {"jact", "legacy", "minimal", "igi", "hdjlpt"} <= builtin
    shown = _show(run_cli)["platform_templates"]
    assert set(shown) == builtin
    assert all(t["origin"] == "built-in" and Path(t["file"]).parent == builtin_platforms_dir() for t in shown.values())

    # A site on jact loads from a workspace without templates: the built-in one is used.
    (tmp_path / "scenarios" / "sites").mkdir(parents=True)
    (tmp_path / "scenarios" / "sites" / "s.toml").write_text(SITE.format(platform="jact"), encoding="utf-8")
    check = run_cli("config", "check", check=True).stdout
    assert "built-in: board, hdjlpt, igi, jact, legacy, minimal" in check and "1 site files" in check

    # The workspace's jact wins: this copy is version 2, so the site (written for v1) no longer fits.
    own = _jact_copy(tmp_path, version=2)
    shown = _show(run_cli)["platform_templates"]
    assert shown["jact"] == {"origin": "workspace", "file": str(own)}
    assert shown["legacy"]["origin"] == "built-in"
    one_line_error(run_cli("config", "check"), "s.toml", "platform_version", "template is v2")
    assert "workspace: jact; built-in: board, hdjlpt, igi, legacy, minimal" in \
        run_cli("config", "check", check=False).stdout

    # A template only the workspace has is usable by name; an unknown name lists what exists.
    shutil.copy(own, own.with_name("mycms.toml"))
    (tmp_path / "scenarios" / "sites" / "s.toml").write_text(SITE.format(platform="mycms"), encoding="utf-8")
    one_line_error(run_cli("config", "check"), "s.toml", "template is v2")     # mycms is the v2 copy
    (tmp_path / "scenarios" / "sites" / "s.toml").write_text(SITE.format(platform="../sites/s"), encoding="utf-8")
    line = one_line_error(run_cli("config", "check"), "s.toml", "key 'platform'", "no platform template '../sites/s'")
    assert "mycms" in line and "jact" in line


def test_a_campaign_keeps_the_scenarios_folder_it_was_planned_with(run_cli, tmp_path, monkeypatch):
    """`campaign start` in a workspace with its own jact: the daemon's targets, built later from
    another working directory, still come from that workspace's template."""
    from bot.campaign.control import build_targets
    from bot.store import models as m
    from bot.store.db import Database

    ws = tmp_path / "ws"
    (ws / "scenarios" / "sites").mkdir(parents=True)
    (ws / "mailbox-bot.toml").write_text("", encoding="utf-8")
    (ws / "scenarios" / "sites" / "s.toml").write_text(SITE.format(platform="jact"), encoding="utf-8")
    _jact_copy(ws, title="#workspaceTitle")
    (ws / "c.toml").write_text('name = "c1"\nsites = ["scenarios/sites/*.toml"]\n', encoding="utf-8")
    run_cli("--config", "ws/mailbox-bot.toml", "campaign", "start", "ws/c.toml", env=NO_DB_ENV, check=True)
    db = Database(f"sqlite:///{ws / 'mailbox-bot.sqlite3'}")
    with db.session() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == "c1"))
    assert camp.settings["scenarios_dir"] == str(ws / "scenarios")
    monkeypatch.chdir(tmp_path)                      # no scenarios/ here: only the stored folder can say
    (target,) = build_targets(db, camp).values()
    assert target.scenario.selectors["title"] == "#workspaceTitle"
    db.dispose()


# --- mailbox-bot init ------------------------------------------------------------------------

def test_init_writes_a_workspace_that_loads(run_cli, tmp_path):
    proc = run_cli("init", "ws", check=True)
    ws = tmp_path / "ws"
    written = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file())
    assert written == sorted(dst for _, dst in FILES)
    assert all(f"wrote ws/{dst}" in proc.stdout for _, dst in FILES)
    cfg = ("--config", "ws/mailbox-bot.toml")
    check = run_cli(*cfg, "config", "check", env=NO_DB_ENV, check=True).stdout
    assert f"workspace {ws}" in check
    assert "1 identities, 1 IMAP accounts" in check and "ok (1 site files)" in check
    shown = _show(run_cli, *cfg)
    assert shown["paths"]["accounts_file"] == str(ws / "mailbox_accounts.toml")
    assert shown["database"]["url"] == f"sqlite:///{ws / 'mailbox-bot.sqlite3'}"
    # The example campaign plans (its example site is the sandbox's practice site on loopback).
    plan = json.loads(run_cli(*cfg, "campaign", "plan", "ws/campaigns/example.toml", "--json",
                              env=NO_DB_ENV, check=True).stdout)
    assert plan["campaign"] == "example-campaign"
    assert [(x["site"], x["mailbox"]) for x in plan["letters"]] == [("宝鸡市人民政府", "leader"),
                                                                    ("宝鸡市人民政府", "mayor")]
    assert not (ws / "mailbox-bot.sqlite3").exists()                 # planning stores nothing
    # What .gitignore keeps out is what the program makes there.
    ignored = (ws / ".gitignore").read_text(encoding="utf-8").split()
    for entry in ("/mailbox-bot.sqlite3*", "/evidence/", "/.sessions/", "/replay-out/"):
        assert entry in ignored


def test_init_in_the_working_directory(run_cli, tmp_path):
    run_cli("init", check=True)
    assert (tmp_path / "mailbox-bot.toml").is_file() and (tmp_path / "scenarios" / "sites" / "example.toml").is_file()
    check = run_cli("config", "check", env=NO_DB_ENV, check=True).stdout
    assert "config: mailbox-bot.toml: ok" in check and "1 site files" in check


def test_init_overwrites_nothing(run_cli, tmp_path):
    ws = tmp_path / "ws"
    (ws / "campaigns").mkdir(parents=True)
    (ws / "campaigns" / "example.toml").write_text("mine", encoding="utf-8")
    one_line_error(run_cli("init", "ws"), "ws/campaigns/example.toml", "exists", "nothing was written",
                   empty_stdout=True)
    assert [p.name for p in ws.rglob("*")] == ["campaigns", "example.toml"]
    assert (ws / "campaigns" / "example.toml").read_text(encoding="utf-8") == "mine"
    # A file where a folder must be.
    (tmp_path / "file").write_text("x", encoding="utf-8")
    one_line_error(run_cli("init", "file"), "file", "is a file", empty_stdout=True)
    (tmp_path / "ws2").mkdir()
    (tmp_path / "ws2" / "scenarios").write_text("x", encoding="utf-8")
    one_line_error(run_cli("init", "ws2"), "ws2/scenarios", "is a file", empty_stdout=True)
    assert [p.name for p in (tmp_path / "ws2").iterdir()] == ["scenarios"]


def _defaults() -> dict:
    data = Config().model_dump()
    del data["source"], data["workspace"]
    return data


def test_starter_config_has_every_key_with_its_default():
    """So that a new key cannot be forgotten in the file users start from."""
    starter = tomllib.loads((STARTER / "mailbox-bot.toml").read_text(encoding="utf-8"))
    assert starter == _defaults()


def test_readme_config_example_lists_every_key():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration"):]
    block = section[section.index("```toml") + len("```toml"):section.index("```", section.index("```toml") + 7)]
    example = tomllib.loads(block)
    defaults = _defaults()
    assert {t: set(v) for t, v in example.items()} == {t: set(v) for t, v in defaults.items()}
    assert example == defaults, "the README's example shows the defaults"


def test_starter_accounts_file_is_the_example():
    assert load_accounts(STARTER / "mailbox_accounts.toml") == load_accounts(REPO / "mailbox_accounts.example.toml")
