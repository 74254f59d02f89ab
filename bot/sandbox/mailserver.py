"""A private Dovecot (IMAP + LMTP) on loopback: for the tests, the benchmark and the demo.

`Dovecot` writes a private config under a temporary directory and runs ``dovecot -F -c FILE``
as a child process that it always terminates (`stop()`, `cleanup()`, and an atexit hook).
No system Dovecot is used or needed; only the binaries (Debian: dovecot-imapd dovecot-lmtpd).

- IMAP (plain, no TLS: loopback only) and LMTP listen on free 127.0.0.1 ports, kept across
  `restart()`. base_dir, state_dir, the log and the mail live under the temp dir.
- Users (passwd-file, {PLAIN} passwords): `user` "inspector" and `other_user` "clerk", random
  passwords. Mail is maildir at <root>/mail/<user>/Maildir, owned by the `mail` user (uid/gid
  from the static userdb), with INBOX and an auto-created "Junk" (special-use \\Junk).
  As root (CI), logins run as dovenull and internal services as dovecot; as an ordinary user,
  everything runs as that user (no chroots), which Dovecot also accepts.
- Addressing: `auth_username_format` keeps only the local part, lower-cased, so
  "inspector@example.org", "inspector@anything" and the IMAP login "inspector" are one user;
  `recipient_delimiter = +` with `lmtp_save_to_detail_mailbox = no` puts
  "inspector+token@example.org" in inspector's INBOX; and any local part at the catch-all domain
  ("token@letters.example.org", `CATCHALL_DOMAIN`) is mapped to inspector by an
  ``%{if;%Ld;eq;letters.example.org;inspector;%Ln}`` username format. Unknown users elsewhere
  are refused (550), as a real server would.
- IDLE: inotify on the maildir, plus `mailbox_idle_check_interval = 1 secs`.

Moved here from tests/mailserver.py (which keeps the pytest fixtures) because `mailbox-bot demo`
starts one too, when `dovecot` is installed, to play the email channel.
"""

from __future__ import annotations

import atexit
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
HOST = "127.0.0.1"
PLUS_DOMAIN = "example.org"
CATCHALL_DOMAIN = "letters.example.org"


def dovecot_available() -> bool:
    return Path(DOVECOT).exists() and os.access(DOVECOT, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class DovecotError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM the master if the test process dies without cleaning
    up (killed by a CI timeout, say). Linux only; elsewhere fixture teardown and atexit do it."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Dovecot:
    """A private Dovecot. Attributes: host, imap_port, lmtp_port, user, password, other_user,
    other_password, root, config_path, log_path."""

    def __init__(self, root: Path | str | None = None):
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="mailbox-bot-dovecot-"))
        self.root.chmod(0o755)  # the mail user must traverse it
        self.host = HOST
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.user, self.password = "inspector", secrets.token_urlsafe(12)
        self.other_user, self.other_password = "clerk", secrets.token_urlsafe(12)
        self.config_path = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.mail_root = self.root / "mail"
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        if os.geteuid() == 0:
            mail = pwd.getpwnam("mail")
            self.uid, self.gid = mail.pw_uid, mail.pw_gid
            self.login_user, self.internal_user = "dovenull", "dovecot"
        else:  # an ordinary developer account: everything runs as that user
            self.uid, self.gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(self.uid).pw_name
            self.login_user = self.internal_user = me
        self._write_config()
        atexit.register(self.stop)

    # config

    def _write_config(self) -> None:
        for d in ("run", "state"):
            (self.root / d).mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        os.chown(self.mail_root, self.uid, self.gid)
        users = self.root / "users"
        users.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n"
                         f"{self.other_user}:{{PLAIN}}{self.other_password}::::::\n")
        users.chmod(0o644)
        root = os.geteuid() == 0
        nonroot = "" if root else f"default_internal_group = {grp.getgrgid(self.gid).gr_name}\n"
        no_chroot = "" if root else "  chroot =\n"  # only root can chroot
        self.config_path.write_text(f"""# written by bot/sandbox/mailserver.py: loopback only, for tests and the demo
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log_path}
instance_name = mailbox-bot-test-{self.imap_port}
protocols = imap lmtp
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {self.login_user}
default_internal_user = {self.internal_user}
first_valid_uid = 1
first_valid_gid = 1
mail_fsync = never
auth_failure_delay = 0
mailbox_idle_check_interval = 1 secs
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
auth_username_format = %{{if;%Ld;eq;{CATCHALL_DOMAIN};{self.user};%Ln}}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.mail_root}/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    auto = create
    special_use = \\Junk
  }}
}}
# No auth penalty (anvil delays the next logins from an IP after a failed one, 2 s and up):
# a test of a wrong password must not slow down the following tests. With mode 0 the auth
# process cannot reach anvil's penalty socket, so no penalty is applied.
service anvil {{
{no_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{no_chroot}  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {self.lmtp_port}
  }}
}}
{nonroot}""")

    # process

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> "Dovecot":
        if self.running:
            return self
        self._stderr = open(self.root / "dovecot.stderr", "ab")
        self._proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config_path)],
                                      stdin=subprocess.DEVNULL, stdout=self._stderr,
                                      stderr=self._stderr, start_new_session=True,
                                      preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        pending = {self.imap_port, self.lmtp_port}
        while pending:
            if self._proc.poll() is not None:
                raise DovecotError(f"dovecot exited with {self._proc.returncode}:\n{self.diagnostics()}")
            for port in list(pending):
                try:
                    with socket.create_connection((HOST, port), timeout=0.5):
                        pending.discard(port)
                except OSError:
                    pass
            if pending:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DovecotError(f"dovecot ports {sorted(pending)} not ready after {timeout}s:\n"
                                       f"{self.diagnostics()}")
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # The master alone would leave running mail sessions (imap, log, stats) behind:
            # they are all in the process group created for the master (start_new_session),
            # so the whole group is terminated, and killed if it lingers.
            self._end_group(proc, timeout)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @staticmethod
    def _end_group(proc: subprocess.Popen, timeout: float) -> None:
        pgid = proc.pid

        def alive() -> bool:
            proc.poll()  # reap the master, or its zombie keeps the group "alive"
            try:
                os.killpg(pgid, 0)
                return True
            except (ProcessLookupError, PermissionError):
                return False

        if not alive():
            return
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            return
        deadline = time.monotonic() + timeout
        while alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop and remove the temporary directory (when this object created it)."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def diagnostics(self, lines: int = 40) -> str:
        out = []
        for p in (self.root / "dovecot.stderr", self.log_path):
            if p.exists():
                text = p.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {p.name}\n" + "\n".join(text))
        return "\n".join(out)

    # administration

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([DOVEADM, "-c", str(self.config_path), *args],
                              capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} exited {proc.returncode}: "
                               f"{proc.stderr.strip()}")
        return proc

    def kill_connections(self, user: str | None = None, timeout: float = 5.0) -> None:
        """Drop every IMAP session of the user (``doveadm kick``) and wait until they are gone,
        so that the client's next command fails (BYE or EOF)."""
        user = user or self.user
        self.doveadm("kick", user, check=False)
        deadline = time.monotonic() + timeout
        while self.sessions(user) and time.monotonic() < deadline:
            time.sleep(0.02)

    def sessions(self, user: str | None = None) -> int:
        proc = self.doveadm("who", "-1", user or self.user, check=False)
        return sum(1 for ln in proc.stdout.splitlines()[1:] if ln.strip())

    def set_uidvalidity(self, folder: str, value: int, user: str | None = None) -> None:
        """Give the folder a new UIDVALIDITY, keeping its messages (as a server migration does)."""
        self.doveadm("mailbox", "update", "-u", user or self.user, "--uid-validity", str(value), folder)

    def reset(self) -> None:
        """Empty every mailbox: kick the sessions, remove the maildirs (recreated on next use)."""
        for user in (self.user, self.other_user):
            self.kill_connections(user)
        for d in self.mail_root.iterdir():
            shutil.rmtree(d, ignore_errors=True)

    # mail in

    def deliver(self, raw: bytes, rcpt: str | None = None, sender: str = "noreply@site.gov.cn") -> None:
        """Deliver through LMTP, as a mail server would (INTERNALDATE = now)."""
        rcpt = rcpt or f"{self.user}@{PLUS_DOMAIN}"
        with smtplib.LMTP(HOST, self.lmtp_port) as lmtp:
            refused = lmtp.sendmail(sender, [rcpt], raw)
        if refused:
            raise DovecotError(f"LMTP refused {refused}")

    @contextmanager
    def imap(self, user: str | None = None):
        """A logged-in imaplib-based IMAPClient for set-up and checks."""
        from imapclient import IMAPClient
        client = IMAPClient(HOST, self.imap_port, ssl=False, timeout=30)
        user = user or self.user
        client.login(user, self.password if user == self.user else self.other_password)
        try:
            yield client
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def append(self, raw: bytes, folder: str = "INBOX", internaldate: datetime | None = None,
               user: str | None = None, flags: tuple = ()) -> int:
        """IMAP APPEND one message (with an exact INTERNALDATE if given); returns its UID."""
        with self.imap(user) as c:
            resp = c.append(folder, raw, flags=flags, msg_time=internaldate)
        m = re.search(rb"APPENDUID \d+ (\d+)", resp if isinstance(resp, bytes) else str(resp).encode())
        return int(m.group(1)) if m else 0

    def append_many(self, raws, folder: str = "INBOX", internaldate: datetime | None = None,
                    user: str | None = None, chunk: int = 500) -> None:
        """Bulk-load with MULTIAPPEND (one command per `chunk` messages)."""
        raws = list(raws)
        with self.imap(user) as c:
            for i in range(0, len(raws), chunk):
                msgs = [{"msg": r, "date": internaldate} if internaldate else r for r in raws[i:i + chunk]]
                c.multiappend(folder, msgs)
