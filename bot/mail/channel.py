"""Email as a reply channel: from an IMAP account to observations of letters.

`sync_mail(db, reader, evidence, clock, apply=...)` runs one `MailReader.sync` and, for each new
message, in one transaction:

1. deduplicates on (account, Message-ID, INTERNALDATE, size): a message seen again after a
   UIDVALIDITY change or a batch re-delivered after a dropped connection is skipped;
2. keeps the raw message as an ``.eml`` evidence file (content-addressed, an EvidenceFile row);
3. parses it (`bot.mail.decode`) and classifies it (`bot.mail.classify`: ack or reply, and
   whether the rules are sure: the flag ``ack_or_reply_uncertain`` when not);
4. matches it to a letter (`match_letter`): by the token of the per-letter reply address first,
   else by the tracking code or the letter's title in the subject or text, else by the site's
   sender domain within a time window;
5. stores a `MailMessage` row, matched or not: an unmatched message is kept and listed
   (`mailbox-bot mail unmatched`), never dropped;
6. when matched, appends an Observation(channel="email", outcome="found", replied=True,
   displayed_reply_at=INTERNALDATE) (``detail.ack`` for an acknowledgement) at the sync time,
   and re-derives the letter (`apply`, normally `Lifecycle.apply`).

Reply time from email = INTERNALDATE (the server's arrival time). The Date header is kept in the
row and in the observation; when it differs from INTERNALDATE by more than `DATE_MISMATCH`, the
observation carries the flag ``email_date_mismatch``.

`DbStateStore` keeps the reader's per-folder progress (UIDVALIDITY, last UID) in the database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.clock import Clock
from bot.mail.classify import UNCERTAIN_FLAG, Rules, classify_message
from bot.mail.decode import MailMessage as ParsedMail
from bot.mail.decode import parse_message
from bot.mail.imap import FetchedMessage, FolderState, MailReader
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore

log = logging.getLogger(__name__)

EMAIL = "email"
DATE_MISMATCH = timedelta(hours=1)
# Content matching (no token): a letter is a candidate from its submission (less a little clock
# skew) until this long after it.
MATCH_WINDOW = timedelta(days=60)
MATCH_SKEW = timedelta(minutes=5)
TOKEN_RE = re.compile(r"^[a-z0-9]{6,40}$")

ApplyFn = Callable[..., None]   # (session, letter, now, evidence, poll_done=..., reschedule=...)


# --- reader state in the database -----------------------------------------------------------

class DbStateStore:
    """`bot.mail.imap.StateStore` on the `mail_folder_state` table."""

    def __init__(self, db: Database):
        self.db = db

    def get(self, account: str, folder: str) -> FolderState:
        with self.db.session() as s:
            row = s.scalar(select(m.MailFolderState).where(m.MailFolderState.account == account,
                                                           m.MailFolderState.folder == folder))
            if row is None:
                return FolderState(folder)
            return FolderState(folder, row.uidvalidity, row.last_uid)

    def put(self, account: str, state: FolderState) -> None:
        with self.db.session() as s:
            row = s.scalar(select(m.MailFolderState).where(m.MailFolderState.account == account,
                                                           m.MailFolderState.folder == state.folder))
            if row is None:
                row = m.MailFolderState(account=account, folder=state.folder)
                s.add(row)
            row.uidvalidity, row.last_uid = state.uidvalidity, state.last_uid
            s.commit()


# --- matching -------------------------------------------------------------------------------

def address_token(address: str, catchall_domains: Iterable[str] = ()) -> str | None:
    """The reply token in a per-letter address: ``local+TOKEN@domain``, or ``TOKEN@domain`` at a
    catch-all domain (any domain when `catchall_domains` is empty: the token lookup decides)."""
    address = address.strip().lower()
    if "@" not in address:
        return None
    local, domain = address.rsplit("@", 1)
    if "+" in local:
        token = local.split("+", 1)[1]
    else:
        domains = {d.lower() for d in catchall_domains}
        if domains and domain not in domains:
            return None
        token = local
    return token if TOKEN_RE.match(token) else None


def site_mail_domain(base_url: str) -> str:
    """The domain a site's mail is expected from: its web host without "www." and the like."""
    host = (urlsplit(base_url).hostname or "").lower()
    if not host or re.fullmatch(r"[\d.]+|\[?[0-9a-f:]+\]?", host):
        return ""
    for prefix in ("www.", "web.", "portal."):
        if host.startswith(prefix):
            return host[len(prefix):]
    return host


def _domain_matches(sender_domain: str, site_domain: str) -> bool:
    return bool(site_domain) and (sender_domain == site_domain or sender_domain.endswith("." + site_domain))


def _in_window(letter: m.Letter, when: datetime) -> bool:
    sub = letter.submitted_at
    return sub is not None and sub - MATCH_SKEW <= when <= sub + MATCH_WINDOW


def _pick(candidates: list[m.Letter]) -> m.Letter | None:
    """The one candidate; among several, the most recently submitted (an older campaign's
    letter with the same title is the less likely one)."""
    if not candidates:
        return None
    return max(candidates, key=lambda x: (x.submitted_at, x.id))


def match_letter(s, mail: ParsedMail, internaldate: datetime,
                 catchall_domains: Iterable[str] = ()) -> tuple[m.Letter | None, str | None]:
    """(letter, how) for a parsed mail; (None, None) when nothing matches. See the module doc."""
    # 1. the per-letter reply address
    tokens = {t for a in mail.to_addrs if (t := address_token(a, catchall_domains))}
    if tokens:
        letter = s.scalar(select(m.Letter).where(m.Letter.reply_token.in_(sorted(tokens))))
        if letter is not None:
            return letter, "token"
    letters = [x for x in s.scalars(select(m.Letter).where(m.Letter.submitted_at.is_not(None)))
               if _in_window(x, internaldate)]
    haystack = f"{mail.subject}\n{mail.text}"
    squashed = re.sub(r"\s+", "", haystack)
    # 2. the tracking code
    hits = [x for x in letters if x.tracking_code and len(x.tracking_code) >= 6
            and re.search(rf"(?<![0-9A-Za-z]){re.escape(x.tracking_code)}(?![0-9A-Za-z])", haystack)]
    if hits:
        return _pick(hits), "tracking_code"
    # 3. the letter's title
    hits = [x for x in letters if len(x.title) >= 6 and re.sub(r"\s+", "", x.title) in squashed]
    if hits:
        return _pick(hits), "title"
    # 4. the site's sender domain, within the window: only when one letter fits
    sender = mail.from_addr.rsplit("@", 1)[-1].lower() if "@" in mail.from_addr else ""
    if sender:
        hits = [x for x in letters if x.state not in (m.REPLIED,)
                and _domain_matches(sender, site_mail_domain(x.mailbox.site.base_url))]
        if len(hits) == 1:
            return hits[0], "sender_domain"
    return None, None


# --- one sync -------------------------------------------------------------------------------

@dataclass
class MailSyncResult:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    matched: int = 0
    unmatched: int = 0
    acks: int = 0
    letters: list[int] = field(default_factory=list)
    """Letters that got an email observation."""


def sync_mail(db: Database, reader: MailReader, evidence: EvidenceStore, clock: Clock, *,
              apply: ApplyFn | None = None, rules: Rules | None = None,
              catchall_domains: Iterable[str] = (),
              on_letter: Callable[[m.Letter], None] | None = None) -> MailSyncResult:
    """One cycle: read what is new in the reader's folders and record it (see the module doc).

    `apply(session, letter, now, evidence_rows, poll_done=..., reschedule=...)` re-derives a
    letter after its new observation (`Lifecycle.apply`); without it the observation is
    only stored and a later derivation picks it up. Errors of the connection propagate
    (`MailConnectionError`); nothing of a message is committed unless all of it is."""
    result = MailSyncResult()
    account = reader.settings.account
    domains = list(catchall_domains)

    def handle(msg: FetchedMessage) -> None:
        result.fetched += 1
        now = clock.now()
        with db.session() as s:
            mid = msg.message_id
            dup = s.scalar(select(m.MailMessage.id).where(
                m.MailMessage.account == account, m.MailMessage.message_id == mid,
                m.MailMessage.internaldate == msg.internaldate, m.MailMessage.size == msg.size))
            if dup is not None:
                result.duplicates += 1
                return
            parsed = parse_message(msg.raw)
            verdict = classify_message(parsed, rules)
            kind = verdict.kind
            letter, how = match_letter(s, parsed, msg.internaldate, domains)
            ev = evidence.save(kind="eml", step=f"mail {msg.folder} uid {msg.uid}", data=msg.raw, ext="eml")
            ev_row = m.EvidenceFile.of(ev, letter.id if letter else None, now)
            s.add(ev_row)
            s.flush()
            row = m.MailMessage(account=account, folder=msg.folder, uidvalidity=msg.uidvalidity,
                                uid=msg.uid, message_id=mid, internaldate=msg.internaldate,
                                date_header=parsed.date_header, from_addr=parsed.from_addr or "",
                                subject=parsed.subject or "", size=msg.size, kind=kind,
                                letter_id=letter.id if letter else None, matched_by=how,
                                eml_evidence_id=ev_row.id, created_at=now)
            s.add(row)
            s.flush()
            if letter is not None:
                flags = []
                if parsed.date_header is not None and abs(parsed.date_header - msg.internaldate) > DATE_MISMATCH:
                    flags.append("email_date_mismatch")
                if verdict.uncertain:
                    flags.append(UNCERTAIN_FLAG)
                detail = {"mail_id": row.id, "matched_by": how, "kind": kind, "classified": verdict.why,
                          "date_header": parsed.date_header.isoformat() if parsed.date_header else None,
                          "from": parsed.from_addr, "subject": parsed.subject}
                if kind == "ack":
                    detail["ack"] = True
                if flags:
                    detail["flags"] = flags
                obs = m.Observation(letter_id=letter.id, channel=EMAIL, at=now, outcome="found",
                                    replied=True, reply_text=parsed.text[:20000] or None,
                                    displayed_reply_at=msg.internaldate, displayed_date_only=False,
                                    displayed_raw=parsed.header("Date"), detail=detail)
                s.add(obs)
                s.flush()
                if apply is not None and letter.submitted_at is not None:
                    s.refresh(letter, ["observations"])
                    apply(s, letter, now, [ev_row], poll_done=kind == "reply", reschedule=kind == "reply")
                result.matched += 1
                result.letters.append(letter.id)
            else:
                result.unmatched += 1
                log.info("unmatched mail from %s: %s", parsed.from_addr, parsed.subject)
            result.acks += kind == "ack"
            try:
                s.commit()
            except IntegrityError:      # stored meanwhile by another process: it is a duplicate
                s.rollback()
                result.duplicates += 1
                return
            result.stored += 1
            if letter is not None and on_letter is not None:
                on_letter(letter)

    reader.sync(handle)
    return result


def unmatched_messages(db: Database) -> list[m.MailMessage]:
    """Stored messages that matched no letter, oldest first."""
    with db.session() as s:
        return list(s.scalars(select(m.MailMessage).where(m.MailMessage.letter_id.is_(None))
                              .order_by(m.MailMessage.internaldate, m.MailMessage.id)))


def sync_accounts(db, accounts, evidence, clock, apply, on_result, on_error) -> int:
    """One sync cycle of every IMAP account (passwords read from the environment at login):
    `on_result(account, SyncResult)` / `on_error(account, MailError)`; returns how many failed.
    Used by `mailbox-bot mail sync` and by the daemon's mail job."""
    from bot.mail.imap import ImapSettings, MailError, MailReader, with_retry

    catchall = sorted({i.catchall_domain for i in accounts.identity if i.catchall_domain})
    failed = 0
    for acct in accounts.imap:
        try:
            with MailReader(ImapSettings.from_account(acct), DbStateStore(db)) as reader:
                r = with_retry(lambda: sync_mail(db, reader, evidence, clock, apply=apply,
                                                 catchall_domains=catchall))
        except MailError as e:      # never contains the password
            failed += 1
            on_error(acct, e)
            continue
        on_result(acct, r)
    return failed
