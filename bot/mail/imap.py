"""Reading an IMAP account incrementally, losing nothing, at a constant cost when idle.

One `MailReader` holds one connection to one account. `sync(handle)` walks the configured
folders; for each it:

1. EXAMINEs the folder (SELECT read-only: nothing is ever marked \\Seen, bodies are fetched with
   BODY.PEEK[]), which returns UIDVALIDITY, UIDNEXT and EXISTS;
2. compares UIDVALIDITY with the stored `FolderState`. On the first run, or when it changed (the
   server renumbered the folder), it does a full resync: every message is fetched again and the
   caller deduplicates with `FetchedMessage.dedup_key()` (Message-ID, INTERNALDATE, size);
3. otherwise, when UIDNEXT - 1 <= last_uid there is nothing new and the folder cost one command;
   else ``UID SEARCH UID last+1:*`` and only UIDs > last_uid are kept (``n:*`` always matches
   the highest message, even an old one);
4. fetches the new messages in batches (`batch_size`, 200) of ``RFC822.SIZE INTERNALDATE
   BODY.PEEK[]`` and calls `handle` for each in UID order. `last_uid` is stored after a batch
   only once `handle` has returned for every message in it, so a dropped connection or a crash
   loses nothing and a retry re-delivers at most the unfinished batch.

A cycle with no new mail therefore costs exactly one command per folder, whatever the size of the
mailbox. `SyncStats.commands` counts the tagged commands actually sent on the wire.

Errors: a dropped connection, timeout or TLS failure raises `MailConnectionError` (host, port
and user in the message, never the password); the reader forgets the broken connection, and the
next `sync` (or `with_retry`) reconnects. A failed login raises `MailAuthError`. Exceptions raised
by `handle` propagate unchanged and the batch being handled is not recorded.

`idle_wait(timeout_s)` waits for new mail in the first configured folder with IDLE (RFC 2177;
re-issued every 29 minutes), or by polling NOOP when the server lacks IDLE. Other folders are
only seen by the next `sync`, so a caller loops ``sync(); idle_wait(some minutes)``. Before
IDLE it sends one NOOP: Dovecot does not announce, when IDLE starts, mail that arrived since
the previous command (seen in tests: such a message was only reported 90 s later).

A missing folder (EXAMINE answered NO) is skipped, logged and listed in
`SyncStats.missing_folders`; the other folders are still read.

The password lives only in `ImapSettings.password` (excluded from repr/str; note that
`dataclasses.asdict` would include it) and is redacted from every error message.
"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Protocol, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

log = logging.getLogger(__name__)

BATCH_SIZE = 200
IDLE_REISSUE_S = 29 * 60  # RFC 2177: re-issue IDLE at least every 29 minutes
FETCH_ITEMS = ["RFC822.SIZE", "INTERNALDATE", "BODY.PEEK[]"]

T = TypeVar("T")


# --- settings and state ---------------------------------------------------------------------

@dataclass
class ImapSettings:
    """How to reach one IMAP account. `password` is a plain string, kept out of repr/str."""

    host: str
    port: int = 993
    user: str = ""
    password: str = field(default="", repr=False)
    tls: bool = True
    """Implicit TLS (IMAPS) with certificate verification; False only for loopback/tests."""
    folders: list[str] = field(default_factory=lambda: ["INBOX"])
    timeout: float = 30.0
    """Seconds for connecting and for any single network read."""
    name: str = ""
    """Account key for the state store; defaults to "user@host:port"."""

    @property
    def account(self) -> str:
        return self.name or f"{self.user}@{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @classmethod
    def from_account(cls, account, **overrides) -> "ImapSettings":
        """From a `bot.accounts.ImapAccount` (the password is read from its environment variable)."""
        values = dict(host=account.host, port=account.port, user=account.user,
                      password=account.password(), tls=account.tls, folders=list(account.folders),
                      name=account.name)
        values.update(overrides)
        return cls(**values)


@dataclass
class FolderState:
    folder: str
    uidvalidity: int | None = None
    last_uid: int = 0


class StateStore(Protocol):
    """Where the reader keeps per-folder progress (the database in production)."""

    def get(self, account: str, folder: str) -> FolderState:
        """The stored state, or FolderState(folder) (uidvalidity None, last_uid 0) if none."""

    def put(self, account: str, state: FolderState) -> None:
        """Store (insert or replace) the state of state.folder."""


class MemoryStateStore:
    """A `StateStore` in a dict; thread-safe. Returns copies, as a database would."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], FolderState] = {}
        self._lock = threading.Lock()
        self.puts = 0

    def get(self, account: str, folder: str) -> FolderState:
        with self._lock:
            s = self._data.get((account, folder))
            return FolderState(folder, s.uidvalidity, s.last_uid) if s else FolderState(folder)

    def put(self, account: str, state: FolderState) -> None:
        with self._lock:
            self._data[(account, state.folder)] = FolderState(state.folder, state.uidvalidity,
                                                              state.last_uid)
            self.puts += 1


# --- results --------------------------------------------------------------------------------

_HEADER_PARSER = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True)
class FetchedMessage:
    folder: str
    uid: int
    uidvalidity: int
    internaldate: datetime
    """The server's arrival time (INTERNALDATE), timezone-aware UTC."""
    raw: bytes = field(repr=False)
    size: int

    @property
    def message_id(self) -> str:
        """The Message-ID header ("" if none), whitespace removed."""
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            end = self.raw.find(b"\n\n")
        head = self.raw if end < 0 else self.raw[: end + 2]
        try:
            value = _HEADER_PARSER.parsebytes(head).get("Message-ID")
        except Exception:
            return ""
        return re.sub(r"\s+", "", str(value)) if value else ""

    def dedup_key(self) -> tuple[str, datetime, int]:
        """(Message-ID, INTERNALDATE, size): the same message seen again after a UIDVALIDITY
        change or a retried batch has the same key."""
        return (self.message_id, self.internaldate, self.size)


@dataclass
class SyncStats:
    folders: int = 0
    """Folders examined."""
    new_messages: int = 0
    """Messages passed to `handle`."""
    commands: int = 0
    """IMAP commands sent during this sync (a reconnection's LOGIN/CAPABILITY excluded)."""
    per_folder: dict[str, int] = field(default_factory=dict)
    full_resyncs: list[str] = field(default_factory=list)
    """Folders fetched from the start (first run or UIDVALIDITY changed)."""
    missing_folders: list[str] = field(default_factory=list)
    """Configured folders the server does not have (skipped, logged)."""


# --- errors ---------------------------------------------------------------------------------

class MailError(Exception):
    """Base of the errors of this module; messages never contain the password."""

    def __init__(self, settings: ImapSettings, message: str):
        self.host, self.port, self.user = settings.host, settings.port, settings.user
        if settings.password:
            message = message.replace(settings.password, "***")
        super().__init__(message)


class MailConnectionError(MailError):
    """The connection could not be made, or was lost (reconnect and sync again)."""

    def __init__(self, settings: ImapSettings, action: str, cause: BaseException | str):
        reason = cause if isinstance(cause, str) else (f"{type(cause).__name__}: {cause}".rstrip(": "))
        self.action = action
        super().__init__(settings, f"IMAP connection to {settings.user}@{settings.host}:"
                                   f"{settings.port} failed during {action}: {reason}")


class MailAuthError(MailError):
    """The server refused the user name or password (retrying will not help)."""

    def __init__(self, settings: ImapSettings, detail: str):
        super().__init__(settings, f"IMAP login of {settings.user}@{settings.host}:{settings.port} "
                                   f"refused: {detail}")


class MailProtocolError(MailError):
    """The server answered NO/BAD to a command the reader needs."""


_CONNECTION_ERRORS = (imaplib.IMAP4.abort, OSError, EOFError, ssl.SSLError, socket.timeout)


# --- the reader -----------------------------------------------------------------------------

class MailReader:
    """One connection to one account; see the module docstring.

    `store` keeps per-folder progress (a `MemoryStateStore` if not given). `use_idle=False`
    forces NOOP polling even where IDLE exists; `poll_interval` is the polling period then.
    """

    def __init__(self, settings: ImapSettings, store: StateStore | None = None, *,
                 batch_size: int = BATCH_SIZE, use_idle: bool = True,
                 poll_interval: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not settings.folders:
            raise ValueError("ImapSettings.folders is empty")
        self.settings = settings
        self.store: StateStore = store if store is not None else MemoryStateStore()
        self.batch_size = batch_size
        self.use_idle = use_idle
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._client: IMAPClient | None = None
        self._selected: str | None = None
        self._has_idle = False
        self._uidnext_seen: dict[str, int] = {}
        self._exists_seen: dict[str, int] = {}
        self.commands = 0
        """Tagged IMAP commands sent over the reader's lifetime (all connections)."""

    def __repr__(self) -> str:
        state = "connected" if self._client is not None else "closed"
        return f"<MailReader {self.settings} {state}>"

    # connection

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def has_idle(self) -> bool:
        return self._has_idle

    def connect(self) -> "MailReader":
        """Open and log in (no-op when already connected)."""
        if self._client is not None:
            return self
        s = self.settings
        try:
            if s.tls:
                client = IMAPClient(s.host, s.port, ssl=True, ssl_context=ssl.create_default_context(),
                                    timeout=s.timeout)
            else:
                client = IMAPClient(s.host, s.port, ssl=False, timeout=s.timeout)
        except _CONNECTION_ERRORS as e:
            raise MailConnectionError(s, "connect", e) from e
        except imaplib.IMAP4.error as e:
            raise MailConnectionError(s, "connect", e) from e
        client.normalise_times = False  # aware datetimes for INTERNALDATE
        self._count_commands(client)
        try:
            client.login(s.user, s.password)
        except LoginError as e:
            self._shutdown(client)
            raise MailAuthError(s, str(e) or "authentication failed") from None
        except _CONNECTION_ERRORS as e:
            self._shutdown(client)
            raise MailConnectionError(s, "login", e) from e
        except imaplib.IMAP4.error as e:
            self._shutdown(client)
            raise MailAuthError(s, str(e)) from None
        try:
            # Cache now: capabilities sent with the LOGIN reply are lost after the first SELECT,
            # and imapclient would then issue CAPABILITY in the middle of other commands.
            caps = client.capabilities()
        except _CONNECTION_ERRORS as e:
            self._shutdown(client)
            raise MailConnectionError(s, "CAPABILITY", e) from e
        self._has_idle = b"IDLE" in caps
        self._client = client
        self._selected = None
        log.debug("IMAP connected to %s (IDLE %s)", s, "yes" if self._has_idle else "no")
        return self

    def close(self) -> None:
        """Log out and close; never raises."""
        client, self._client, self._selected = self._client, None, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            self._shutdown(client)

    def __enter__(self) -> "MailReader":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    def _count_commands(self, client: IMAPClient) -> None:
        """Count tagged commands at the wire: every command (imaplib's and imapclient's own
        raw commands) takes a new tag."""
        imap = getattr(client, "_imap", None)
        new_tag = getattr(imap, "_new_tag", None)
        if new_tag is None:  # pragma: no cover - imaplib internals changed
            return

        def counting_new_tag(*a, **kw):
            self.commands += 1
            return new_tag(*a, **kw)

        imap._new_tag = counting_new_tag

    @staticmethod
    def _shutdown(client: IMAPClient) -> None:
        try:
            client.shutdown()
        except Exception:
            pass

    def _drop(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            self._shutdown(client)

    def _call(self, action: str, fn: Callable[..., T], *args) -> T:
        """Run one imapclient call, turning a lost connection into MailConnectionError."""
        if self._client is None:
            raise MailConnectionError(self.settings, action, "not connected")
        try:
            return fn(*args)
        except _CONNECTION_ERRORS as e:
            self._drop()
            raise MailConnectionError(self.settings, action, e) from e
        except imaplib.IMAP4.error as e:
            if self._client is not None and getattr(self._client._imap, "state", "") == "LOGOUT":
                self._drop()
                raise MailConnectionError(self.settings, action, e) from e
            raise MailProtocolError(self.settings, f"IMAP {action} on {self.settings}: {e}") from e

    # sync

    def sync(self, handle: Callable[[FetchedMessage], None]) -> SyncStats:
        """Fetch what is new in every configured folder and pass it to `handle`."""
        self.connect()
        stats = SyncStats()
        start = self.commands
        try:
            for folder in self.settings.folders:
                self._sync_folder(folder, handle, stats)
        finally:
            stats.commands = self.commands - start
        return stats

    def _select(self, folder: str) -> dict | None:
        """EXAMINE the folder; None if it does not exist."""
        try:
            info = self._call(f"EXAMINE {folder}", self._client.select_folder, folder, True)
        except MailProtocolError as e:
            log.warning("IMAP folder %r on %s cannot be examined: %s", folder, self.settings, e)
            self._selected = None
            return None
        self._selected = folder
        return info

    def _sync_folder(self, folder: str, handle: Callable[[FetchedMessage], None],
                     stats: SyncStats) -> None:
        client = self._client
        info = self._select(folder)
        if info is None:
            stats.missing_folders.append(folder)
            return
        stats.folders += 1
        stats.per_folder.setdefault(folder, 0)
        uidvalidity = int(info.get(b"UIDVALIDITY") or 0)
        uidnext = info.get(b"UIDNEXT")
        uidnext = int(uidnext) if uidnext is not None else None
        exists = int(info.get(b"EXISTS") or 0)
        if uidnext is not None:
            self._uidnext_seen[folder] = uidnext
        self._exists_seen[folder] = exists

        account = self.settings.account
        state = self.store.get(account, folder)
        if state.uidvalidity != uidvalidity:
            if state.uidvalidity is not None:
                log.info("IMAP %s %s: UIDVALIDITY %s -> %s, full resync", self.settings, folder,
                         state.uidvalidity, uidvalidity)
            state = FolderState(folder, uidvalidity, 0)
            self.store.put(account, state)
            stats.full_resyncs.append(folder)

        if exists == 0 or (uidnext is not None and uidnext - 1 <= state.last_uid):
            uids: list[int] = []
        elif state.last_uid == 0:
            uids = self._call(f"SEARCH {folder}", client.search, ["ALL"])
        else:
            found = self._call(f"SEARCH {folder}", client.search, ["UID", f"{state.last_uid + 1}:*"])
            uids = [u for u in found if u > state.last_uid]
        uids = sorted(set(int(u) for u in uids))

        for i in range(0, len(uids), self.batch_size):
            batch = uids[i:i + self.batch_size]
            data = self._call(f"FETCH {folder}", client.fetch, batch, FETCH_ITEMS)
            for uid in batch:
                item = data.get(uid)
                if item is None:  # expunged between SEARCH and FETCH
                    continue
                handle(_fetched(folder, uid, uidvalidity, item))
                stats.new_messages += 1
                stats.per_folder[folder] += 1
            state.last_uid = max(state.last_uid, batch[-1])
            self.store.put(account, state)

        # Every UID below UIDNEXT (as of EXAMINE) was either returned by SEARCH or is gone:
        # remember that, so that the next idle cycle costs no SEARCH even after expunges.
        if uidnext is not None and uidnext - 1 > state.last_uid:
            state.last_uid = uidnext - 1
            self.store.put(account, state)

    # waiting

    def idle_wait(self, timeout_s: float, folder: str | None = None) -> bool:
        """Wait until new mail arrives in `folder` (default: the first configured folder):
        True as soon as the server reports it (EXISTS), False after `timeout_s` without."""
        self.connect()
        folder = folder or self.settings.folders[0]
        if self._selected == folder and self._pending_exists():
            return True  # announced during the last sync's commands, after its EXAMINE
        if self._selected != folder:
            info = self._select(folder)
            if info is None:
                raise MailProtocolError(self.settings, f"IMAP folder {folder!r} does not exist on "
                                                       f"{self.settings}")
            seen = self._uidnext_seen.get(folder)
            uidnext = info.get(b"UIDNEXT")
            if seen is not None and uidnext is not None and int(uidnext) > seen:
                return True  # arrived between the last sync and now
        if self._has_idle and self.use_idle:
            # Dovecot (at least) does not announce at the start of IDLE what changed since the
            # last command: a NOOP first reports mail that arrived in between.
            _text, responses = self._call("NOOP", self._client.noop)
            self._raise_on_bye(responses, "NOOP")
            if _has_exists(responses):
                return True
            return self._idle(timeout_s)
        return self._poll(timeout_s)

    def _pending_exists(self) -> bool:
        """True when an EXISTS response came with an earlier command (imaplib keeps them) and
        announces more messages than EXAMINE reported: such mail is not announced again."""
        imap = getattr(self._client, "_imap", None)
        pending = getattr(imap, "untagged_responses", {}) if imap is not None else {}
        values = pending.pop("EXISTS", None) or []
        known = self._exists_seen.get(self._selected or "", 0)
        for v in values:
            try:
                if int(v) > known:
                    return True
            except (TypeError, ValueError):
                continue
        return False

    def _idle(self, timeout_s: float) -> bool:
        client = self._client
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            window_end = min(deadline, now + IDLE_REISSUE_S)
            self._call("IDLE", client.idle)
            found = False
            while not found:
                left = window_end - time.monotonic()
                if left <= 0:
                    break
                t0 = time.monotonic()
                responses = self._call("IDLE", client.idle_check, left)
                self._raise_on_bye(responses, "IDLE")
                found = _has_exists(responses)
                if not responses and time.monotonic() - t0 < left * 0.5:
                    break  # woken without a response (e.g. EOF): DONE below tells which
            _text, responses = self._call("IDLE DONE", client.idle_done)
            self._raise_on_bye(responses, "IDLE DONE")
            if found or _has_exists(responses):
                return True

    def _poll(self, timeout_s: float) -> bool:
        client = self._client
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            _text, responses = self._call("NOOP", client.noop)
            self._raise_on_bye(responses, "NOOP")
            if _has_exists(responses):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._sleep(min(self.poll_interval, left))

    def _raise_on_bye(self, responses, action: str) -> None:
        for r in responses or ():
            if len(r) >= 1 and r[0] == b"BYE":
                self._drop()
                detail = r[1].decode("utf-8", "replace") if len(r) > 1 and isinstance(r[1], bytes) else "BYE"
                raise MailConnectionError(self.settings, action, f"server said BYE: {detail}")


def _has_exists(responses) -> bool:
    return any(len(r) >= 2 and r[1] == b"EXISTS" for r in responses or ())


def _fetched(folder: str, uid: int, uidvalidity: int, item: dict) -> FetchedMessage:
    raw = item.get(b"BODY[]") or b""
    when = item.get(b"INTERNALDATE")
    if isinstance(when, datetime):
        when = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    else:  # pragma: no cover - every server sends INTERNALDATE when asked
        when = datetime.fromtimestamp(0, timezone.utc)
    size = item.get(b"RFC822.SIZE")
    return FetchedMessage(folder=folder, uid=uid, uidvalidity=uidvalidity, internaldate=when,
                          raw=bytes(raw), size=int(size) if size is not None else len(raw))


def with_retry(fn: Callable[[], T], *, attempts: int = 3, delay: float = 1.0, backoff: float = 2.0,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn` (e.g. ``lambda: reader.sync(handle)``), retrying after a `MailConnectionError`
    up to `attempts` times in all, waiting delay, delay*backoff, ... between tries. The reader
    reconnects by itself on the next call. Other errors propagate at once."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except MailConnectionError as e:
            if attempt >= attempts:
                raise
            wait = delay * backoff ** (attempt - 1)
            log.warning("%s; retrying in %.1f s (attempt %d of %d)", e, wait, attempt + 1, attempts)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
