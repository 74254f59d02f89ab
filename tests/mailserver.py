"""A real Dovecot (IMAP + LMTP) on loopback for the tests, and pytest fixtures around it.

The server itself is `bot.sandbox.mailserver.Dovecot` (product code: the demo starts one too); see
its docstring for the configuration (users, plus-addressing, the catch-all domain, IDLE).

The session fixture `dovecot_server` starts one server (skipping the tests with a reason when
/usr/sbin/dovecot is missing); the function fixture `dovecot` gives each test empty mailboxes
(sessions kicked, maildirs removed; Dovecot recreates them on next use, with new UIDVALIDITYs).
"""

from __future__ import annotations

import secrets

import pytest

from bot.sandbox.mailserver import (CATCHALL_DOMAIN, DOVEADM, DOVECOT, HOST, PLUS_DOMAIN,  # noqa: F401
                                Dovecot, DovecotError, dovecot_available, free_port)


def make_message(n: int = 0, subject: str | None = None, body: str | None = None,
                 to: str = f"inspector+t0@{PLUS_DOMAIN}", message_id: str | None = None,
                 pad: int = 0) -> bytes:
    """A small well-formed UTF-8 message for the IMAP tests."""
    subject = subject if subject is not None else f"测试信件 {n}"
    body = body if body is not None else f"您好，这是第 {n} 封测试邮件。\n" + "x" * pad
    mid = message_id or f"<msg-{n}-{secrets.token_hex(4)}@site.gov.cn>"
    from email.header import Header
    head = (f"From: site{n}@site.gov.cn\r\nTo: {to}\r\n"
            f"Subject: {Header(subject, 'utf-8').encode()}\r\n"
            f"Message-ID: {mid}\r\nDate: Mon, 3 Jun 2024 10:00:00 +0800\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode("ascii") + body.replace("\n", "\r\n").encode("utf-8")


# --- pytest fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dovecot_server():
    """One Dovecot for the session (skips when the binary is missing)."""
    if not dovecot_available():
        pytest.skip(f"Dovecot not installed ({DOVECOT} missing): apt-get install dovecot-imapd "
                    "dovecot-lmtpd (make test does it)")
    server = Dovecot()
    try:
        server.start()
    except DovecotError:
        server.cleanup()
        raise
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def dovecot(dovecot_server):
    """The session Dovecot with empty mailboxes (and running, even if the last test stopped it)."""
    if not dovecot_server.running:
        dovecot_server.start()
    dovecot_server.reset()
    offset = dovecot_server.log_path.stat().st_size if dovecot_server.log_path.exists() else 0
    yield dovecot_server
    # pytest shows this only when the test failed: the server's side of the story
    if dovecot_server.log_path.exists():
        with open(dovecot_server.log_path, "rb") as f:
            f.seek(offset)
            print("--- dovecot log during the test ---\n" + f.read()[-20000:].decode("utf-8", "replace"))
    if not dovecot_server.running:
        dovecot_server.start()



def write_accounts(path, server, *, folders=("INBOX",), password_env: str = "MB_TEST_IMAP_PASSWORD"):
    """An accounts file for `mailbox-bot mail sync` with one identity and the server's account
    "box" (the password through `password_env`, never in the file). Returns the path."""
    folder_list = ", ".join(f'"{f}"' for f in folders)
    path.write_text(f"""
[[identity]]
name = "i"
email = "inspector@{PLUS_DOMAIN}"
imap_account = "box"

[[imap]]
name = "box"
host = "{server.host}"
port = {server.imap_port}
user = "{server.user}"
password_env = "{password_env}"
tls = false
folders = [{folder_list}]
""", encoding="utf-8")
    return path


def write_cli_config(directory) -> None:
    """A `mailbox-bot.toml` in `directory` (the `run_cli` working directory) that keeps the
    evidence there too (`directory`/evidence, where the `World` helpers keep theirs), not in
    the repository's default evidence directory."""
    (directory / "mailbox-bot.toml").write_text(f'[paths]\nevidence_dir = "{directory / "evidence"}"\n',
                                               encoding="utf-8")
