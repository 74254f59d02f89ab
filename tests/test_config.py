"""The config file, the accounts file and `mailbox-bot config ...`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import one_line_error

from bot.accounts import Accounts, ImapAccount, load_accounts
from bot.config import Config, load_config
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ACCOUNTS = REPO / "mailbox_accounts.example.toml"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- the config file ------------------------------------------------------------------------

@pytest.mark.parametrize("text,needles", [
    ('foo = 1\n', ("'foo'", "unknown key")),
    ('[browser]\nheadles = false\n', ("'browser.headles'", "unknown key")),
    ('[browser]\nconcurrency = "four"\n', ("'browser.concurrency'", "'four'")),
    ('[browser]\nconcurrency = 0\n', ("'browser.concurrency'",)),
    ('[browser]\nconcurrency = 65\n', ("'browser.concurrency'",)),
    ('[browser]\ntimeout_ms = 1.5\n', ("'browser.timeout_ms'",)),
    ('[database]\nurl = 5\n', ("'database.url'",)),
    ('browser = "chromium"\n', ("'browser'",)),
    ('[browser\nconcurrency = 2\n', ("not valid TOML",)),
    ('[browser]\nconcurrency = \n', ("not valid TOML",)),
])
def test_bad_config_file(run_cli, tmp_path, text, needles):
    cfg = _write(tmp_path / "bad-config.toml", text)
    proc = run_cli("--config", str(cfg), "config", "show")
    one_line_error(proc, str(cfg), *needles)
    assert proc.stdout.strip() == ""


def test_bad_config_file_found_in_working_directory(run_cli, tmp_path):
    _write(tmp_path / "mailbox-bot.toml", '[browser]\nconcurrency = "four"\n')
    one_line_error(run_cli("config", "check"), "mailbox-bot.toml", "browser.concurrency")
    # Every command that needs the config reports it the same way.
    one_line_error(run_cli("calendar", "is-workday", "2024-05-06"), "mailbox-bot.toml", "browser.concurrency")


@pytest.mark.parametrize("make", [
    lambda tmp: tmp / "no-such-config.toml",      # missing file
    lambda tmp: tmp,                              # a directory
])
def test_unreadable_config_file(run_cli, tmp_path, make):
    path = make(tmp_path)
    one_line_error(run_cli("--config", str(path), "config", "show"), str(path))


def test_not_utf8_config(run_cli, tmp_path):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('[paths]\nevidence_dir = "café"\n'.encode("latin-1"))
    one_line_error(run_cli("--config", str(cfg), "config", "show"), str(cfg), "UTF-8")


def test_good_config_and_defaults(run_cli, tmp_path):
    cfg = _write(tmp_path / "good.toml", '[browser]\nconcurrency = 2\nheadless = false\n'
                                          '[paths]\nevidence_dir = "/srv/evidence"\n')
    proc = run_cli("--config", str(cfg), "config", "show")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["browser"]["concurrency"] == 2
    assert shown["browser"]["headless"] is False
    assert shown["browser"]["timeout_ms"] == 15000           # default filled in
    assert shown["paths"]["evidence_dir"] == "/srv/evidence"
    assert shown["source"] == str(cfg)
    proc = run_cli("--config", str(cfg), "config", "check")
    assert proc.returncode == 0, proc.stderr
    assert f"config: {cfg}: ok" in proc.stdout


def test_database_url_env_overrides_config(run_cli, tmp_path, db_url):
    cfg = _write(tmp_path / "db.toml", f'[database]\nurl = "sqlite:///{tmp_path / "from-file.sqlite3"}"\n')
    shown = json.loads(run_cli("--config", str(cfg), "config", "show", check=True).stdout)
    assert shown["database"]["url"] == db_url                 # run_cli sets MAILBOX_BOT_DATABASE_URL
    other = f"sqlite:///{tmp_path / 'from-env.sqlite3'}"
    shown = json.loads(run_cli("--config", str(cfg), "config", "show",
                               env={"MAILBOX_BOT_DATABASE_URL": other}, check=True).stdout)
    assert shown["database"]["url"] == other
    # Unset (empty): the file's value stands.
    shown = json.loads(run_cli("--config", str(cfg), "config", "show",
                               env={"MAILBOX_BOT_DATABASE_URL": ""}, check=True).stdout)
    assert shown["database"]["url"] == f"sqlite:///{tmp_path / 'from-file.sqlite3'}"
    # And the database commands use it.
    proc = run_cli("db", "upgrade", env={"MAILBOX_BOT_DATABASE_URL": other}, check=True)
    assert (tmp_path / "from-env.sqlite3").exists()
    assert not (tmp_path / "from-file.sqlite3").exists()
    assert "from-env.sqlite3" in proc.stdout


def test_load_config_lookup_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOX_BOT_CONFIG", raising=False)
    monkeypatch.delenv("MAILBOX_BOT_DATABASE_URL", raising=False)
    assert load_config().source == "(defaults)"
    assert load_config().browser.concurrency == Config().browser.concurrency == 4
    _write(tmp_path / "mailbox-bot.toml", "[browser]\nconcurrency = 3\n")
    assert load_config().browser.concurrency == 3
    env_cfg = _write(tmp_path / "env.toml", "[browser]\nconcurrency = 5\n")
    monkeypatch.setenv("MAILBOX_BOT_CONFIG", str(env_cfg))
    assert load_config().browser.concurrency == 5
    explicit = _write(tmp_path / "explicit.toml", "[browser]\nconcurrency = 6\n")
    cfg = load_config(explicit)
    assert cfg.browser.concurrency == 6 and cfg.source == str(explicit)
    monkeypatch.setenv("MAILBOX_BOT_DATABASE_URL", "sqlite:///elsewhere.sqlite3")
    # A relative SQLite path in the environment is the working directory's, said in full.
    assert load_config(explicit).database.url == f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"


def test_load_config_error_is_config_error(tmp_path):
    path = _write(tmp_path / "x.toml", "[calendar]\noverrides = 'a.toml'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value) and "calendar.overrides" in str(exc.value)


def test_config_show_hides_database_password(run_cli, tmp_path):
    proc = run_cli("config", "show",
                   env={"MAILBOX_BOT_DATABASE_URL": "postgresql+psycopg://bot:hunter2@db.example.org/mailbox"})
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["database"]["url"].startswith("postgresql+psycopg://bot:")


# --- the accounts file ----------------------------------------------------------------------

GOOD_ACCOUNTS = """
[[identity]]
name = "inspector-1"
real_name = "王晓明"
phone = "13800000000"
email = "inspector@example.org"
imap_account = "inbox-1"

[[identity]]
name = "inspector-2"
email = "letters@example.org"
reply_address = "catchall"

[[identity]]
name = "inspector-3"
email = "plain@example.org"
reply_address = "plain"

[[imap]]
name = "inbox-1"
host = "imap.example.org"
user = "inspector@example.org"
password_env = "MAILBOX_BOT_TEST_IMAP_PASSWORD"
"""


def test_accounts_check_good(run_cli, tmp_path):
    path = _write(tmp_path / "accounts.toml", GOOD_ACCOUNTS)
    proc = run_cli("config", "check", "--accounts", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "3 identities" in proc.stdout and "1 IMAP account" in proc.stdout
    acc = load_accounts(path)
    assert [i.name for i in acc.identity] == ["inspector-1", "inspector-2", "inspector-3"]
    assert acc.identity[1].catchall_domain == "example.org"     # derived from the email
    assert acc.imap[0].port == 993 and acc.imap[0].tls is True and acc.imap[0].folders == ["INBOX"]


def test_example_accounts_file_validates(run_cli):
    proc = run_cli("config", "check", "--accounts", str(EXAMPLE_ACCOUNTS))
    assert proc.returncode == 0, proc.stderr
    assert "1 identities" in proc.stdout and "1 IMAP account" in proc.stdout
    acc = load_accounts(EXAMPLE_ACCOUNTS)
    assert acc.identity[0].imap_account == acc.imap[0].name
    assert acc.imap[0].password_env == "MAILBOX_BOT_IMAP_PASSWORD"


def test_accounts_file_from_config(run_cli, tmp_path):
    cfg = _write(tmp_path / "cfg.toml", f'[paths]\naccounts_file = "{EXAMPLE_ACCOUNTS}"\n')
    proc = run_cli("--config", str(cfg), "config", "check")
    assert proc.returncode == 0, proc.stderr
    assert str(EXAMPLE_ACCOUNTS) in proc.stdout and "ok" in proc.stdout
    # Not present (and not asked for explicitly): a note, not an error.
    cfg = _write(tmp_path / "cfg2.toml", f'[paths]\naccounts_file = "{tmp_path / "none.toml"}"\n')
    proc = run_cli("--config", str(cfg), "config", "check")
    assert proc.returncode == 0 and "not present" in proc.stdout


def _bad(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("text,needles", [
    (_bad(GOOD_ACCOUNTS, 'email = "inspector@example.org"', 'email = "inspector.example.org"'),
     ("identity.0.email", "inspector.example.org")),
    (_bad(GOOD_ACCOUNTS, 'imap_account = "inbox-1"', 'imap_account = "inbox-9"'),
     ("identity.0.imap_account", "inbox-9")),
    (_bad(GOOD_ACCOUNTS, 'phone = "13800000000"', 'phone = "12345"'), ("identity.0.phone",)),
    (_bad(GOOD_ACCOUNTS, 'reply_address = "plain"', 'reply_address = "smtp"'), ("identity.2.reply_address",)),
    (_bad(GOOD_ACCOUNTS, 'host = "imap.example.org"', 'host = "imap.example.org"\nport = 99999'), ("imap.0.port",)),
    (_bad(GOOD_ACCOUNTS, 'host = "imap.example.org"', 'host = "imap.example.org"\npassword = "x"'),
     ("imap.0.password", "unknown key")),
    (_bad(GOOD_ACCOUNTS, 'name = "inspector-3"\n', ''), ("identity.2.name",)),
    ('identity = 5\n', ("'identity'",)),
    ('[[identity]\n', ("not valid TOML",)),
])
def test_accounts_check_bad(run_cli, tmp_path, text, needles):
    path = _write(tmp_path / "bad-accounts.toml", text)
    proc = run_cli("config", "check", "--accounts", str(path))
    one_line_error(proc, str(path), *needles)
    with pytest.raises(ConfigError) as exc:
        load_accounts(path)
    assert str(path) in str(exc.value)


def test_accounts_check_missing_file_explicit(run_cli, tmp_path):
    path = tmp_path / "absent.toml"
    one_line_error(run_cli("config", "check", "--accounts", str(path)), str(path), "not found")


# --- secrets --------------------------------------------------------------------------------

SECRET = "s3cret-Pa55w0rd-7f2c"


def test_imap_password_comes_from_env_and_is_never_shown(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MAILBOX_BOT_IMAP_PASSWORD", SECRET)
    acc = load_accounts(EXAMPLE_ACCOUNTS)
    account = acc.imap[0]
    assert account.password() == SECRET                      # really read from the environment
    assert SECRET not in repr(acc) + str(acc) + account.model_dump_json() + repr(account.model_dump())

    cfg = _write(tmp_path / "cfg.toml", f'[paths]\naccounts_file = "{EXAMPLE_ACCOUNTS}"\n')
    env = {"MAILBOX_BOT_IMAP_PASSWORD": SECRET}
    for args in (("config", "show"), ("config", "check"), ("config", "check", "--accounts", str(EXAMPLE_ACCOUNTS))):
        proc = run_cli("--config", str(cfg), *args, env=env)
        assert proc.returncode == 0, proc.stderr
        assert SECRET not in proc.stdout and SECRET not in proc.stderr


def test_imap_password_errors(monkeypatch):
    monkeypatch.delenv("MAILBOX_BOT_NO_SUCH_PASSWORD", raising=False)
    account = ImapAccount(name="x", host="h", user="u", password_env="MAILBOX_BOT_NO_SUCH_PASSWORD")
    with pytest.raises(ConfigError) as exc:
        account.password()
    assert "MAILBOX_BOT_NO_SUCH_PASSWORD" in str(exc.value)
    with pytest.raises(ConfigError):
        ImapAccount(name="x", host="h", user="u").password()


def test_accounts_model_rejects_dangling_link():
    with pytest.raises(ValueError):
        Accounts.model_validate({"identity": [{"name": "a", "email": "a@b.cn", "imap_account": "nope"}]})
