"""A message the database cannot hold as it came never blocks a folder: it is kept unmatched
with its reason (`MailMessage.problem`), its .eml kept, and the sync goes on. A real Dovecot
(tests/mailserver.py) and a real SQLite file; `mailbox-bot mail sync` as the user runs it."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from mailserver import write_accounts, write_cli_config
from sqlalchemy import select, text
from test_mail_channel import ANSWER, PLUS, World, at, mail

from bot.mail.channel import MESSAGE_ID_MAX, SUBJECT_MAX, clean_text, storable_date
from bot.store import models as m
from bot.vocab import LetterState

YEAR_9999 = "Fri, 31 Dec 9999 23:59:59 -0800"      # in UTC, past the end of datetime


@pytest.fixture
def world(db_url, tmp_path, dovecot):
    w = World(db_url, tmp_path, dovecot)
    yield w
    w.close()


@pytest.fixture
def any_world(any_db_url, tmp_path, dovecot):
    """The same world on a SQLite file, then on PostgreSQL (which, unlike SQLite, refuses a NUL
    in text and a value longer than its VARCHAR)."""
    w = World(any_db_url, tmp_path, dovecot)
    yield w
    w.close()


def dated(raw: bytes, date: str) -> bytes:
    return raw.replace(b"Date: Mon, 3 Jun 2024 10:00:00 +0800", f"Date: {date}".encode())


def test_cli_sync_goes_past_a_year_9999_message(world, dovecot, run_cli, tmp_path, db_url):
    first = world.letter("关于社区养老服务的咨询", site="宝鸡市前局")
    poisoned = world.letter("关于公交线路调整的建议", site="宝鸡市毒局")
    last = world.letter("关于河道治理的建议", site="宝鸡市后局")
    for letter, date in ((first, None), (poisoned, YEAR_9999), (last, None)):
        to = PLUS.address_for(letter.reply_token)
        raw = mail("答复", ANSWER, to=to)
        dovecot.deliver(dated(raw, date) if date else raw, rcpt=to)
    accounts = str(write_accounts(tmp_path / "accounts.toml", dovecot))
    env = {"MB_TEST_IMAP_PASSWORD": dovecot.password}
    write_cli_config(tmp_path)

    proc = run_cli("mail", "sync", "--accounts", accounts, env=env)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and dovecot.password not in proc.stdout + proc.stderr
    assert "box: 3 new, 3 stored (2 matched, 1 unmatched" in proc.stdout
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert re.fullmatch(r"mailbox-bot: box: 1 message\(s\) had a problem and were kept unmatched \(#\d+\): "
                        r"see mailbox-bot mail unmatched", line), line
    # all three stored, the good ones matched, the folder's state past the poison
    rows = world.mails()
    assert [(r.letter_id, r.problem is None) for r in rows] == [(first.id, True), (None, False), (last.id, True)]
    bad = rows[1]
    assert bad.date_header is None and "9999" in bad.problem and bad.subject == "答复"
    assert world.get(first.id).state == world.get(last.id).state == LetterState.REPLIED
    assert world.get(poisoned.id).state == LetterState.SUBMITTED and world.get(poisoned.id).observations == []
    with world.db.session() as s:
        assert s.scalar(select(m.MailFolderState.last_uid).where(m.MailFolderState.folder == "INBOX")) == 3
        eml = s.get(m.EvidenceFile, bad.eml_evidence_id)
    assert YEAR_9999.encode() in world.evidence.path(eml.path).read_bytes()

    listed = run_cli("mail", "unmatched", check=True).stdout
    assert f"#{bad.id}  " in listed and "1 unmatched message(s)" in listed
    assert f"problem: Date header '{YEAR_9999}' is not a date the database can keep" in listed
    again = run_cli("mail", "sync", "--accounts", accounts, env=env)
    assert again.returncode == 0 and "box: 0 new" in again.stdout and again.stderr == ""


def _subject(words: str):
    """Replaces the Subject header with `words`."""
    return lambda raw: re.sub(rb"Subject: [^\r]*", f"Subject: {words}".encode(), raw, count=1)


GIANT = "长" * 300_000
# (what to do to a good message, what the problem says, a check of the stored row)
POISONS = [
    pytest.param(lambda raw: dated(raw, "Sat, 1 Jan 9999 10:00:00 +0800"), "is not a date the database can keep",
                 lambda row: row.date_header is None, id="year-9999-east"),
    pytest.param(_subject("=?utf-8?Q?=E7=AD=94=00=E5=A4=8D?="), "subject: NUL characters removed",
                 lambda row: row.subject == "答复" and row.date_header is not None, id="NUL-in-subject"),
    pytest.param(lambda raw: raw.replace(b"Content-Transfer-Encoding: 8bit", b"Content-Transfer-Encoding: quoted-printable")
                 .replace(b"\r\n\r\n", b"\r\n\r\n=00", 1), "body: NUL characters removed",
                 lambda row: row.subject == "答复" and row.date_header is not None, id="NUL-in-body"),
    pytest.param(_subject("\r\n ".join(f"=?utf-8?B?{base64.b64encode(GIANT[i:i + 15].encode()).decode()}?="
                                       for i in range(0, len(GIANT), 15))),
                 f"subject: {len(GIANT)} characters cut to {SUBJECT_MAX}",
                 lambda row: row.subject == GIANT[:SUBJECT_MAX], id="gigantic-subject"),
    pytest.param(lambda raw: re.sub(rb"Message-ID: <[^>]*>", b"Message-ID: <" + b"x" * 3000 + b"@site.gov.cn>", raw),
                 f"Message-ID: 3014 characters cut to {MESSAGE_ID_MAX}",
                 lambda row: row.message_id == "<" + "x" * (MESSAGE_ID_MAX - 1), id="gigantic-message-id"),
    pytest.param(lambda raw: raw.replace(b"From: xxgk@site.gov.cn", b"From: " + b"a" * 400 + b"@site.gov.cn"),
                 "sender: 412 characters cut to 320", lambda row: len(row.from_addr) == 320, id="gigantic-sender"),
]


@pytest.mark.parametrize("poison,reason,check", POISONS)
def test_unstorable_values_are_cleaned_kept_unmatched_and_the_folder_goes_on(any_world, dovecot, poison, reason, check):
    world = any_world
    bad_letter = world.letter("关于社区养老服务的咨询")
    good_letter = world.letter("关于公交线路调整的建议")
    raw = poison(mail("答复", ANSWER, to=PLUS.address_for(bad_letter.reply_token)))
    dovecot.append(raw, internaldate=at(28, 9))
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(good_letter.reply_token)), internaldate=at(28, 10))
    world.clock.set(at(28, 12))
    r = world.sync()
    assert (r.fetched, r.stored, r.matched, r.unmatched, r.problems) == (2, 2, 1, 1, 1)
    bad, good = world.mails()
    assert bad.letter_id is None and bad.matched_by is None and reason in bad.problem, bad.problem
    assert check(bad)
    assert r.problem_ids == [bad.id]
    assert good.letter_id == good_letter.id and good.problem is None
    assert world.get(good_letter.id).state == LetterState.REPLIED and world.get(bad_letter.id).observations == []
    # the .eml is the message byte for byte, whatever could not be stored of it
    with world.db.session() as s:
        eml = s.get(m.EvidenceFile, bad.eml_evidence_id)
        assert eml.sha256 == hashlib.sha256(raw).hexdigest()
        assert s.scalar(select(m.MailFolderState.last_uid).where(m.MailFolderState.folder == "INBOX")) == 2
    # read again (a new UIDVALIDITY): recognised as the same message, not stored twice
    dovecot.kill_connections()
    dovecot.set_uidvalidity("INBOX", 777)
    world.readers.clear()
    assert world.sync().duplicates == 2 and len(world.mails()) == 2


def test_a_message_the_database_refuses_is_kept_with_what_it_said(world, dovecot):
    """A stricter database (PostgreSQL refusing a value, say) is played by a real SQLite
    trigger: the full record of the message fails, the message is stored again unmatched with
    the database's words, and the next message is matched as usual."""
    with world.db.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON observations WHEN NEW.reply_text LIKE '%拒收%' "
                          "BEGIN SELECT RAISE(ABORT, 'value too long for type character varying(20)'); END"))
    refused = world.letter("关于社区养老服务的咨询")
    fine = world.letter("关于公交线路调整的建议")
    dovecot.append(mail("答复", ANSWER + "拒收", to=PLUS.address_for(refused.reply_token)), internaldate=at(28, 9))
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(fine.reply_token)), internaldate=at(28, 10))
    world.clock.set(at(28, 12))
    r = world.sync()
    assert (r.stored, r.matched, r.problems, r.duplicates) == (2, 1, 1, 0)
    bad, good = world.mails()
    assert bad.letter_id is None and bad.date_header is None and bad.eml_evidence_id is not None
    assert bad.problem == "could not be stored: IntegrityError: value too long for type character varying(20)"
    assert good.letter_id == fine.id
    got = world.get(refused.id)
    assert got.state == LetterState.SUBMITTED and got.observations == [] and got.replies == []   # nothing half-done


def test_clean_text_and_storable_dates():
    assert clean_text("答\x00复") == ("答复", ["NUL characters removed"])
    assert clean_text("a\ud800b") == ("a?b", ["undecodable characters replaced"])
    assert clean_text("长" * 5, 3) == ("长" * 3, ["5 characters cut to 3"])
    assert clean_text(None) == ("", [])
    from datetime import datetime, timedelta, timezone

    east, west = timezone(timedelta(hours=8)), timezone(timedelta(hours=-8))
    assert storable_date(datetime(9999, 12, 31, 23, 59, tzinfo=west)) is None     # would overflow
    assert storable_date(datetime(9999, 1, 1, tzinfo=east)) is None
    assert storable_date(datetime(1969, 12, 31, tzinfo=timezone.utc)) is None
    ok = datetime(2024, 4, 28, 9, tzinfo=east)
    assert storable_date(ok) == ok and storable_date(None) is None
