"""Email as a reply channel: from an IMAP account to observations of letters.

`sync_mail(db, reader, evidence, clock, apply=...)` runs one `MailReader.sync` and, for each new
message, in one transaction:

1. deduplicates on (account, Message-ID, INTERNALDATE, size): a message seen again after a
   UIDVALIDITY change or a batch re-delivered after a dropped connection is skipped;
2. keeps the raw message as an ``.eml`` evidence file (content-addressed, an EvidenceFile row);
3. parses it (`bot.mail.decode`) and classifies it (`bot.mail.classify`: ack or reply, and
   whether the rules are sure: the flag ``ack_or_reply_uncertain`` when not);
4. matches it to a letter (`match_letter`): by the token of the per-letter reply address first,
   else by the tracking code or the letter's title in the subject, the text or an attachment's
   file name, else by the site's sender domain within a time window. The window counts from
   the submission, or for a ``submit_uncertain`` letter from its claim (such a letter is matched
   by token, code or title only, never by domain);
5. stores a `MailMessage` row, matched or not: an unmatched message is kept and listed
   (`mailbox-bot mail unmatched`), never dropped;
6. when matched, appends an Observation(channel="email", outcome="found", replied=True,
   displayed_reply_at=INTERNALDATE) (``detail.ack`` for an acknowledgement, ``detail.flags``)
   at the sync time, and re-derives the letter (`apply`, normally `Lifecycle.apply`, which
   resolves a ``submit_uncertain`` letter as sent at its claim: never resubmitted).

A poison message never blocks a folder. One whose fields the database cannot hold as they came
(a Date header in year 9999, NUL characters, a subject of megabytes), or that cannot be parsed,
or that the database refuses anyway, is stored as an unmatched row with what could be stored
(cleaned fields, no date) and its reason in `MailMessage.problem`, its .eml kept; the sync goes
on and the folder's state advances. The inspector can then attach it by hand:
`assign_message` (`mailbox-bot mail assign MESSAGE LETTER`) makes the very observation an
automatic match makes (`attach`), marked as assigned by hand.

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
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.campaign.lifecycle import MAY_HAVE_GONE, claim_time, may_have_gone
from bot.clock import Clock
from bot.errors import UserError
from bot.mail.classify import DEFAULT_RULES, UNCERTAIN_FLAG, Rules, Verdict, classify_message
from bot.mail.decode import MailMessage as ParsedMail
from bot.mail.decode import parse_message
from bot.mail.imap import FetchedMessage, FolderState, MailReader
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore
from bot.vocab import LetterState

log = logging.getLogger(__name__)

EMAIL = "email"
MANUAL = "manual"       # matched_by of a message an inspector attached (`mailbox-bot mail assign`)
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


def sent_at(letter: m.Letter) -> datetime | None:
    """From when a reply to the letter can come: its submission, or for a letter that may have
    been sent (submit_uncertain, submitted_at None) its claim, the last move to submitting."""
    if letter.submitted_at is not None:
        return letter.submitted_at
    if may_have_gone(letter):
        return claim_time(letter)
    return None


def _in_window(letter: m.Letter, when: datetime) -> bool:
    sub = sent_at(letter)
    return sub is not None and sub - MATCH_SKEW <= when <= sub + MATCH_WINDOW


def _pick(candidates: list[m.Letter]) -> m.Letter | None:
    """The one candidate; among several, the most recently sent (an older campaign's letter
    with the same title is the less likely one)."""
    if not candidates:
        return None
    return max(candidates, key=lambda x: (sent_at(x), x.id))


def searchable_text(mail: ParsedMail) -> str:
    """Where a tracking code or a title may stand: the subject, the text, and the attachments'
    file names (a site that answers with "答复GD20240426001.pdf" and no text)."""
    return "\n".join([mail.subject, mail.text, *(a.filename for a in mail.attachments if a.filename)])


def match_letter(s, mail: ParsedMail, internaldate: datetime,
                 catchall_domains: Iterable[str] = ()) -> tuple[m.Letter | None, str | None]:
    """(letter, how) for a parsed mail; (None, None) when nothing matches. See the module doc."""
    # 1. the per-letter reply address
    tokens = {t for a in mail.to_addrs if (t := address_token(a, catchall_domains))}
    if tokens:
        letter = s.scalar(select(m.Letter).where(m.Letter.reply_token.in_(sorted(tokens))))
        if letter is not None:
            return letter, "token"
    letters = [x for x in s.scalars(select(m.Letter).where(or_(m.Letter.submitted_at.is_not(None),
                                                                 m.Letter.state.in_(MAY_HAVE_GONE))))
               if _in_window(x, internaldate)]
    haystack = searchable_text(mail)
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
    # 4. the site's sender domain, within the window: only when one letter fits. Not for a
    # submit_uncertain letter: a mail from the site's domain does not prove that letter arrived.
    sender = mail.from_addr.rsplit("@", 1)[-1].lower() if "@" in mail.from_addr else ""
    if sender:
        hits = [x for x in letters if x.state != LetterState.REPLIED and x.submitted_at is not None
                and _domain_matches(sender, site_mail_domain(x.mailbox.site.base_url))]
        if len(hits) == 1:
            return hits[0], "sender_domain"
    return None, None


# --- what the database can hold ------------------------------------------------------------

# Column sizes (bot.store.models), and a subject no mail system writes: beyond it, it is cut.
MESSAGE_ID_MAX = 500
FROM_MAX = 320
SUBJECT_MAX = 1000
RAW_DATE_MAX = 100
STEP_MAX = 200
# A Date header outside these years is nonsense (9999 is a common "never"), and near the ends of
# the datetime range it cannot even be converted to UTC for storing.
DATE_MIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
DATE_MAX = datetime(2100, 1, 1, tzinfo=timezone.utc)


def clean_text(value: str | None, limit: int | None = None) -> tuple[str, list[str]]:
    """`value` as every database can store it, and what had to change: NUL characters removed
    (PostgreSQL refuses them), characters that are not Unicode text (lone surrogates, which
    no driver can encode) replaced, and the text cut to `limit` characters."""
    text, changes = value or "", []
    if "\x00" in text:
        text = text.replace("\x00", "")
        changes.append("NUL characters removed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
        changes.append("undecodable characters replaced")
    if limit is not None and len(text) > limit:
        changes.append(f"{len(text)} characters cut to {limit}")
        text = text[:limit]
    return text, changes


def storable_date(value: datetime | None) -> datetime | None:
    """The Date header if it is a date a mail could have been written on, else None."""
    if value is None:
        return None
    try:
        return value if DATE_MIN <= value.astimezone(timezone.utc) < DATE_MAX else None
    except (OverflowError, ValueError):     # 9999-12-31 with a negative offset, say
        return None


@dataclass
class Storable:
    """The fields of a message that go into its MailMessage row and observation, cleaned, and
    `problems`: what could not be stored as it came (the message is then kept unmatched)."""

    message_id: str
    subject: str
    from_addr: str
    date_header: datetime | None
    date_raw: str
    text: str
    problems: list[str] = field(default_factory=list)


def storable(message_id: str, parsed: ParsedMail) -> Storable:
    """The cleaned fields of a parsed message, each change named in `problems`."""
    problems: list[str] = []

    def clean(what: str, value: str | None, limit: int | None) -> str:
        text, changes = clean_text(value, limit)
        problems.extend(f"{what}: {c}" for c in changes)
        return text

    out = Storable(message_id=clean("Message-ID", message_id, MESSAGE_ID_MAX),
                   subject=clean("subject", parsed.subject, SUBJECT_MAX),
                   from_addr=clean("sender", parsed.from_addr, FROM_MAX),
                   date_header=storable_date(parsed.date_header),
                   date_raw=clean_text(parsed.header("Date"), RAW_DATE_MAX)[0],
                   text=clean("body", parsed.text, None))
    if parsed.date_header is not None and out.date_header is None:
        problems.append(f"Date header {out.date_raw[:60]!r} is not a date the database can keep "
                        f"(outside {DATE_MIN.year}-{DATE_MAX.year - 1}): stored without it")
    out.problems = problems
    return out


@dataclass
class Reading:
    """A raw message read: parsed, classified, cleaned; `problem` when it could not be read."""

    parsed: ParsedMail
    verdict: Verdict
    fields: Storable
    problem: str | None = None


def read_message(raw: bytes, message_id: str, rules: Rules | None = None) -> Reading:
    """Parse, classify and clean a raw message; never raises (a message that breaks the parser
    or the rules is a `problem`, not a reason to stop reading the folder)."""
    try:
        parsed = parse_message(raw)
        verdict = classify_message(parsed, rules)
    except Exception as e:          # a bug met by one odd message must not block the folder
        log.debug("message %s could not be read", message_id, exc_info=True)
        parsed = ParsedMail()
        verdict = Verdict((rules or DEFAULT_RULES).default, True, "could not be read")
        return Reading(parsed, verdict, storable(message_id, parsed), f"could not be read: {_describe(e)}")
    fields = storable(message_id, parsed)
    return Reading(parsed, verdict, fields, "; ".join(fields.problems) or None)


def _describe(e: BaseException) -> str:
    """One short line for an exception (a database error's own message, without its SQL)."""
    cause = getattr(e, "orig", None) or e
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0][:200]}" if lines else type(cause).__name__


# --- attaching a message to a letter --------------------------------------------------------

def derivable(letter: m.Letter) -> bool:
    """Whether the letter's replies can be derived: it was sent, or may have been
    (submit_uncertain, which an email about it resolves: `Lifecycle.apply`)."""
    return letter.submitted_at is not None or may_have_gone(letter)


def attach(s, row: m.MailMessage, letter: m.Letter, how: str, reading: Reading,
           ev_row: m.EvidenceFile | None, now: datetime, apply: ApplyFn | None,
           extra: dict | None = None) -> m.Observation:
    """Make a stored message the letter's email observation and re-derive the letter: the one
    path for a match `sync_mail` found and one an inspector made (`assign_message`)."""
    f, verdict = reading.fields, reading.verdict
    row.letter_id, row.matched_by, row.kind = letter.id, how, verdict.kind
    if ev_row is not None:
        ev_row.letter_id = letter.id
    flags = []
    # The parsed date, even one too absurd to store, says whether the sender's clock can be trusted.
    sent = reading.parsed.date_header
    if sent is not None and abs(sent - row.internaldate) > DATE_MISMATCH:
        flags.append("email_date_mismatch")
    if verdict.uncertain:
        flags.append(UNCERTAIN_FLAG)
    detail = {"mail_id": row.id, "matched_by": how, "kind": verdict.kind, "classified": verdict.why,
              "date_header": f.date_header.isoformat() if f.date_header else None,
              "from": f.from_addr, "subject": f.subject, **(extra or {})}
    if verdict.kind == "ack":
        detail["ack"] = True
    if row.problem:
        detail["problem"] = row.problem
    if flags:
        detail["flags"] = flags
    obs = m.Observation(letter_id=letter.id, channel=EMAIL, at=now, outcome="found",
                        replied=True, reply_text=f.text[:20000] or None,
                        displayed_reply_at=row.internaldate, displayed_date_only=False,
                        displayed_raw=f.date_raw or None, detail=detail)
    s.add(obs)
    s.flush()
    if apply is not None and derivable(letter):
        was_uncertain = may_have_gone(letter)
        s.refresh(letter, ["observations"])
        # An answer ends the site's polling; a letter just resolved from submit_uncertain starts
        # it (whatever its look-for schedule was); an acknowledgement leaves it where it was.
        reply = verdict.kind == "reply"
        apply(s, letter, now, [ev_row] if ev_row is not None else [], poll_done=reply,
              reschedule=reply or was_uncertain)
    return obs


# --- one sync -------------------------------------------------------------------------------

@dataclass
class MailSyncResult:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    matched: int = 0
    unmatched: int = 0
    """Stored without a letter, problems included."""
    acks: int = 0
    problems: int = 0
    """Stored unmatched with a `problem` (they need the inspector: `mailbox-bot mail unmatched`)."""
    letters: list[int] = field(default_factory=list)
    """Letters that got an email observation."""
    problem_ids: list[int] = field(default_factory=list)
    """MailMessage ids of the problems."""


def sync_mail(db: Database, reader: MailReader, evidence: EvidenceStore, clock: Clock, *,
              apply: ApplyFn | None = None, rules: Rules | None = None,
              catchall_domains: Iterable[str] = (),
              on_letter: Callable[[m.Letter], None] | None = None) -> MailSyncResult:
    """One cycle: read what is new in the reader's folders and record it (see the module doc).

    `apply(session, letter, now, evidence_rows, poll_done=..., reschedule=...)` re-derives a
    letter after its new observation (`Lifecycle.apply`); without it the observation is
    only stored and a later derivation picks it up. Errors of the connection propagate
    (`MailConnectionError`), and so do those of an unavailable database; nothing of a message
    is committed unless all of it is. A message that cannot be read or stored as it came is
    kept unmatched with its `problem` and the sync goes on: one message never blocks a folder."""
    result = MailSyncResult()
    account = reader.settings.account
    domains = list(catchall_domains)

    def handle(msg: FetchedMessage) -> None:
        result.fetched += 1
        now = clock.now()
        mid = clean_text(msg.message_id, MESSAGE_ID_MAX)[0]      # as it is stored
        with db.session() as s:
            if _stored_already(s, account, mid, msg):
                result.duplicates += 1
                return
        # The .eml is kept first: whatever happens next, the message itself is evidence.
        ev = evidence.save(kind="eml", step=clean_text(f"mail {msg.folder} uid {msg.uid}", STEP_MAX)[0],
                           data=msg.raw, ext="eml")
        reading = read_message(msg.raw, msg.message_id, rules)
        outcome, row_id, letter = _store(db, account, msg, reading, ev, now, apply, domains)
        if outcome == "duplicate":
            result.duplicates += 1
            return
        result.stored += 1
        result.acks += reading.verdict.kind == "ack"
        if outcome == "problem":
            result.problems += 1
            result.problem_ids.append(row_id)
        if letter is None:
            result.unmatched += 1
            return
        result.matched += 1
        result.letters.append(letter.id)
        if on_letter is not None:
            on_letter(letter)

    reader.sync(handle)
    return result


def _stored_already(s, account: str, mid: str, msg: FetchedMessage) -> bool:
    return s.scalar(select(m.MailMessage.id).where(
        m.MailMessage.account == account, m.MailMessage.message_id == mid,
        m.MailMessage.internaldate == msg.internaldate, m.MailMessage.size == msg.size)) is not None


def _new_row(account: str, msg: FetchedMessage, reading: Reading, ev_row: m.EvidenceFile,
             now: datetime, problem: str | None) -> m.MailMessage:
    f = reading.fields
    return m.MailMessage(account=account, folder=msg.folder, uidvalidity=msg.uidvalidity, uid=msg.uid,
                         message_id=f.message_id, internaldate=msg.internaldate,
                         date_header=f.date_header, from_addr=f.from_addr,
                         subject=f.subject, size=msg.size, kind=reading.verdict.kind,
                         eml_evidence_id=ev_row.id, created_at=now, problem=problem)


def _store(db: Database, account: str, msg: FetchedMessage, reading: Reading, ev, now: datetime,
           apply: ApplyFn | None, domains: list[str]) -> tuple[str, int | None, m.Letter | None]:
    """("matched" | "unmatched" | "problem" | "duplicate", MailMessage id, letter) for one
    message, stored in one transaction; a message the database refuses is stored again as
    a problem, with what the database said."""
    try:
        with db.session() as s:
            outcome = _record(s, account, msg, reading, ev, now, apply, domains)
            s.commit()
            return outcome
    except OperationalError:
        raise       # the database itself is unavailable: no fault of this message
    except Exception as e:
        if isinstance(e, IntegrityError):
            with db.session() as s:
                if _stored_already(s, account, reading.fields.message_id, msg):
                    return "duplicate", None, None      # stored meanwhile by another process
        log.debug("mail %s uid %s could not be stored", msg.folder, msg.uid, exc_info=True)
        return _store_problem(db, account, msg, reading, ev, now, f"could not be stored: {_describe(e)}")


def _record(s, account: str, msg: FetchedMessage, reading: Reading, ev, now: datetime,
            apply: ApplyFn | None, domains: list[str]) -> tuple[str, int, m.Letter | None]:
    """The message's rows in session `s` (not committed): evidence, MailMessage, and when it
    matches a letter its observation. A message with a problem is not matched: the inspector
    decides (`assign_message`)."""
    ev_row = m.EvidenceFile.of(ev, None, now)
    s.add(ev_row)
    s.flush()
    if reading.problem:
        row = _new_row(account, msg, reading, ev_row, now, reading.problem)
        s.add(row)
        s.flush()
        log.info("mail %s uid %s kept unmatched: %s", msg.folder, msg.uid, reading.problem)
        return "problem", row.id, None
    letter, how = match_letter(s, reading.parsed, msg.internaldate, domains)
    row = _new_row(account, msg, reading, ev_row, now, None)
    s.add(row)
    s.flush()
    if letter is None:
        log.info("unmatched mail from %s: %s", reading.fields.from_addr, reading.fields.subject[:200])
        return "unmatched", row.id, None
    attach(s, row, letter, how, reading, ev_row, now, apply)
    return "matched", row.id, letter


def _store_problem(db: Database, account: str, msg: FetchedMessage, reading: Reading, ev,
                   now: datetime, problem: str) -> tuple[str, int | None, None]:
    """The message as an unmatched row with `problem`, with as little as can go wrong: cleaned
    fields only, no date header. If even this fails the database is at fault, and it raises."""
    if reading.problem:
        problem = f"{reading.problem}; {problem}"
    log.info("mail %s uid %s kept unmatched: %s", msg.folder, msg.uid, problem)
    with db.session() as s:
        ev_row = m.EvidenceFile.of(ev, None, now)
        s.add(ev_row)
        s.flush()
        row = _new_row(account, msg, reading, ev_row, now, problem)
        row.date_header = None
        s.add(row)
        s.commit()
        return "problem", row.id, None


# --- by hand --------------------------------------------------------------------------------

@dataclass
class AssignResult:
    mail_id: int
    letter_id: int
    state: str
    """The letter's state after re-derivation."""
    already: bool = False
    """The message was attached to this letter before: nothing changed."""


def assign_message(db: Database, evidence: EvidenceStore, clock: Clock, mail_id: int, letter_id: int, *,
                   apply: ApplyFn | None = None, rules: Rules | None = None) -> AssignResult:
    """Attach a stored message to a letter by hand (`mailbox-bot mail assign`): matched_by
    "manual", the same observation an automatic match makes (`attach`, with ``detail.
    assigned_by_hand``), read again from its .eml evidence, and the letter re-derived.
    `UserError` (nothing changed) for an unknown message or letter, a message already
    matched to another letter, a letter never sent, or a missing .eml."""
    now = clock.now()
    with db.session() as s:
        row = s.get(m.MailMessage, mail_id)
        if row is None:
            raise UserError(f"MESSAGE: no stored mail message with id {mail_id} (see: mailbox-bot mail unmatched)")
        letter = s.get(m.Letter, letter_id)
        if letter is None:
            raise UserError(f"LETTER: no letter with id {letter_id}")
        if row.letter_id == letter.id:
            return AssignResult(mail_id, letter.id, letter.state, already=True)
        if row.letter_id is not None:
            raise UserError(f"MESSAGE: mail message {mail_id} is already matched to letter {row.letter_id} "
                            f"(by {row.matched_by}), not to letter {letter_id}")
        if not derivable(letter):
            raise UserError(f"LETTER: letter {letter_id} was never sent (state {letter.state}): "
                            "no email can answer it")
        ev_row = s.get(m.EvidenceFile, row.eml_evidence_id) if row.eml_evidence_id else None
        path = evidence.path(ev_row.path) if ev_row is not None else None
        if path is None or not path.is_file():
            raise UserError(f"MESSAGE: the .eml of mail message {mail_id} is not in the evidence directory "
                            f"{evidence.root} (run where `mail sync` ran, or set paths.evidence_dir)")
        reading = read_message(path.read_bytes(), row.message_id, rules)
        attach(s, row, letter, MANUAL, reading, ev_row, now, apply,
               extra={"assigned_by_hand": True, "assigned_at": now.isoformat()})
        s.commit()
        return AssignResult(mail_id, letter.id, letter.state)


def unmatched_messages(db: Database, assigned: bool = False) -> list[m.MailMessage]:
    """Stored messages that matched no letter, oldest first; with `assigned`, instead those an
    inspector attached to a letter by hand."""
    where = m.MailMessage.matched_by == MANUAL if assigned else m.MailMessage.letter_id.is_(None)
    with db.session() as s:
        return list(s.scalars(select(m.MailMessage).where(where)
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
