"""The email channel end to end against a real Dovecot (tests/mailserver.py) and a real SQLite:
per-letter addresses, matching, decoding into the database, deduplication, acknowledgements,
reply times from INTERNALDATE, and a short simulated campaign whose sandbox answers by email."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime

import pytest
from conftest import run_async
from mailserver import CATCHALL_DOMAIN, PLUS_DOMAIN, make_message, write_cli_config
from sqlalchemy import func, select

from bot.accounts import Identity
from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.campaign.worker import CampaignWorker
from bot.clock import SHANGHAI, SimClock
from bot.errors import ConfigError
from bot.mail.channel import DbStateStore, address_token, sync_mail
from bot.mail.imap import ImapSettings, MailConnectionError, MailReader, with_retry
from bot.sandbox.roster import roster_from_dict
from bot.sandbox.mail import STYLES, compose, reply_mail
from bot.sandbox.store import ReceivedLetter
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore
from bot.vocab import LetterState

SUBMITTED = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)     # Friday; 04-28 is a make-up workday
CAL = WorkCalendar()
PLUS = Identity(name="i", email=f"inspector@{PLUS_DOMAIN}", reply_address="plus",
                catchall_domain=CATCHALL_DOMAIN)
CATCHALL = Identity(name="c", email=f"inspector@{PLUS_DOMAIN}", reply_address="catchall",
                    catchall_domain=CATCHALL_DOMAIN)


# --- helpers --------------------------------------------------------------------------------

class World:
    """A database with one campaign, letters made on demand, and the channel around it."""

    def __init__(self, db_url, tmp_path, dovecot):
        self.db = Database(db_url)
        self.dovecot = dovecot
        self.clock = SimClock(SUBMITTED)
        self.evidence = EvidenceStore(tmp_path / "evidence")
        self.worker = CampaignWorker(self.db, self.clock, None, self.evidence, CAL, {})
        self.settings = ImapSettings(host=dovecot.host, port=dovecot.imap_port, user=dovecot.user,
                                     password=dovecot.password, tls=False, folders=["INBOX", "Junk"],
                                     timeout=10, name="test-inbox")
        self.readers: list[MailReader] = []
        with self.db.session() as s:
            c = m.Campaign(name="2024Q2", created_at=SUBMITTED)
            s.add(c)
            s.commit()
            self.campaign_id = c.id
        self.n = 0

    def letter(self, title: str, *, code: str | None = None, token: str | None = None,
               base_url: str = "http://127.0.0.1/x", site: str | None = None) -> m.Letter:
        self.n += 1
        n = self.n
        with self.db.session() as s:
            st = m.Site(key=f"site-{n}", name=site or f"宝鸡市测试{n}局", group="市级部门网站",
                        base_url=base_url, platform="jact")
            s.add(st)
            s.flush()
            mb = m.Mailbox(site_id=st.id, kind="leader", label="领导信箱")
            s.add(mb)
            s.flush()
            letter = m.Letter(campaign_id=self.campaign_id, mailbox_id=mb.id, state=LetterState.SUBMITTED,
                              state_changed_at=SUBMITTED, title=title, body="正文", writer={},
                              reply_token=token or f"tok{n:03d}abcd", tracking_code=code or f"2024042600{n:03d}",
                              submitted_at=SUBMITTED, next_poll_at=SUBMITTED + timedelta(hours=4))
            s.add(letter)
            s.flush()
            s.add(m.LetterEvent(letter_id=letter.id, at=SUBMITTED, from_state=LetterState.SUBMITTING,
                                to_state=LetterState.SUBMITTED, reason="tracking code"))
            s.commit()
            return letter

    def reader(self, **kw) -> MailReader:
        r = MailReader(self.settings, DbStateStore(self.db), **kw)
        self.readers.append(r)
        return r

    def sync(self, reader: MailReader | None = None, **kw):
        reader = reader or (self.readers[0] if self.readers else self.reader())
        return sync_mail(self.db, reader, self.evidence, self.clock, apply=self.worker.apply,
                         catchall_domains=(CATCHALL_DOMAIN,), **kw)

    def count(self, model, *where) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where))

    def mails(self) -> list[m.MailMessage]:
        with self.db.session() as s:
            return list(s.scalars(select(m.MailMessage).order_by(m.MailMessage.id)))

    def get(self, letter_id: int) -> m.Letter:
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            _ = letter.replies, letter.observations
            return letter

    def rows(self, as_of=None):
        """As of the world's clock; as of now (the wall clock) after a `mailbox-bot` command,
        which records what it reads at the time it runs."""
        rows, _meta = campaign_rows(self.db, "2024Q2", CAL, as_of=as_of or self.clock.now())
        return {r.site: r for r in rows}

    def close(self):
        for r in self.readers:
            r.close()
        self.db.dispose()


@pytest.fixture
def world(db_url, tmp_path, dovecot):
    w = World(db_url, tmp_path, dovecot)
    yield w
    w.close()


def mail(subject: str, body: str, *, to: str = f"inspector@{PLUS_DOMAIN}", sender: str = "xxgk@site.gov.cn",
         date: datetime | None = None, mid: str | None = None) -> bytes:
    raw = make_message(0, subject=subject, body=body, to=to, message_id=mid)
    raw = raw.replace(b"From: site0@site.gov.cn", f"From: {sender}".encode())
    if date is not None:
        raw = raw.replace(b"Date: Mon, 3 Jun 2024 10:00:00 +0800", f"Date: {format_datetime(date)}".encode())
    return raw


ANSWER = "您好！经核实，您反映的问题已安排专人办理，现答复如下：可到政务服务中心窗口办理，请携带身份证件。"
ACK = "您好！您的来信已收到，我们将在5个工作日内答复您。本邮件由系统自动发送，请勿直接回复。"


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2024, 4 if day > 20 else 5, day, hh, mm, tzinfo=SHANGHAI)


# --- addresses and matching -----------------------------------------------------------------

def test_per_letter_addresses():
    assert PLUS.address_for("a1b2c3d4e5") == f"inspector+a1b2c3d4e5@{PLUS_DOMAIN}"
    assert CATCHALL.address_for("a1b2c3d4e5") == f"a1b2c3d4e5@{CATCHALL_DOMAIN}"
    # a form that refuses "+": the catch-all form when there is one, else the plain address
    assert PLUS.address_for("a1b2c3d4e5", forbidden="+") == f"a1b2c3d4e5@{CATCHALL_DOMAIN}"
    plain_only = Identity(name="p", email=f"inspector@{PLUS_DOMAIN}", reply_address="plus")
    assert plain_only.address_for("a1b2c3d4e5", forbidden="+") == f"inspector@{PLUS_DOMAIN}"
    assert address_token(f"inspector+a1b2c3d4e5@{PLUS_DOMAIN}") == "a1b2c3d4e5"
    assert address_token(f"a1b2c3d4e5@{CATCHALL_DOMAIN}", [CATCHALL_DOMAIN]) == "a1b2c3d4e5"
    assert address_token(f"inspector@{PLUS_DOMAIN}", [CATCHALL_DOMAIN]) is None


def test_plus_address_and_catch_all_match_by_token(world, dovecot):
    a = world.letter("关于社区养老服务的咨询", token="a1b2c3d4e5")
    b = world.letter("关于公交线路调整的建议", token="f6a7b8c9d0")
    dovecot.deliver(mail("答复", ANSWER), rcpt=PLUS.address_for(a.reply_token))
    dovecot.deliver(mail("答复", ANSWER, to=CATCHALL.address_for(b.reply_token)),
                    rcpt=CATCHALL.address_for(b.reply_token))
    world.clock.set(at(26, 16))
    r = world.sync()
    assert (r.fetched, r.stored, r.matched, r.unmatched) == (2, 2, 2, 0)
    got = {x.letter_id: x.matched_by for x in world.mails()}
    assert got == {a.id: "token", b.id: "token"}
    for x in world.mails():
        assert x.eml_evidence_id is not None
        assert world.evidence.path(world.db.session().get(m.EvidenceFile, x.eml_evidence_id).path).read_bytes().count(b"Message-ID: <msg-") == 1
    assert world.get(a.id).state == LetterState.REPLIED and world.get(b.id).state == LetterState.REPLIED
    # the folder state is in the database: a second reader starts where the first stopped
    assert world.reader().sync(lambda msg: pytest.fail("seen twice")).new_messages == 0


def test_content_matching_without_a_token(world, dovecot):
    by_code = world.letter("关于居住证办理的求助", code="C202404260007")
    by_title = world.letter("关于宝鸡市便民服务热线的咨询")
    by_domain = world.letter("关于河道治理的建议", base_url="http://www.slj.baoji.gov.cn/szx")
    plain = f"inspector@{PLUS_DOMAIN}"
    # the content-only rules need a time window: the mails arrive two days after the letters
    dovecot.append(mail("来信答复", f"{ANSWER}\n信件编号：C202404260007"), internaldate=at(28, 9))
    dovecot.append(mail("回复：关于宝鸡市便民服务热线的咨询", ANSWER), internaldate=at(28, 9))
    dovecot.append(mail("答复意见", ANSWER, sender="bgs@slj.baoji.gov.cn"), internaldate=at(28, 9))
    # the same sender domain, but before the letter was sent: outside the window
    dovecot.append(mail("答复意见", ANSWER, sender="bgs@slj.baoji.gov.cn"),
                   internaldate=SUBMITTED - timedelta(days=3))
    world.clock.set(at(28, 12))
    world.sync()
    got = {x.letter_id: x.matched_by for x in world.mails() if x.letter_id}
    assert got == {by_code.id: "tracking_code", by_title.id: "title", by_domain.id: "sender_domain"}
    assert [x.letter_id for x in world.mails()].count(None) == 1
    assert plain  # all went to the plain address: matching relied on content


def test_unmatched_mail_is_kept_and_listed(world, dovecot, run_cli, db_url):
    world.letter("关于社区养老服务的咨询")
    dovecot.deliver(mail("发票已开具，请查收", "这是一封与信件无关的邮件。", sender="billing@shop.example.com"))
    world.sync()
    [row] = world.mails()
    assert row.letter_id is None and row.matched_by is None and row.eml_evidence_id is not None
    assert world.count(m.Observation) == 0
    out = run_cli("mail", "unmatched", check=True).stdout
    assert "billing@shop.example.com" in out and "发票已开具，请查收" in out and "1 unmatched" in out


@pytest.mark.parametrize("style", STYLES, ids=lambda s: f"{s.charset}-{s.header_encoding}-{s.body_encoding}"
                         + ("-html" if s.html_only else ""))
def test_each_encoding_reaches_the_database_decoded(world, dovecot, style, monkeypatch):
    import bot.sandbox.mail as sandbox_mail

    monkeypatch.setattr(sandbox_mail, "style_for", lambda slug: style)
    letter = world.letter("关于镕喆堃社区老旧小区改造的咨询", token="c0ffee1234")
    received = ReceivedLetter(site="宝鸡市测试局", slug="t", platform="jact", mailbox="leader",
                              title=letter.title, body="b", name="王喆", phone="13800000000",
                              email=PLUS.address_for(letter.reply_token), tracking_code="2024042600001",
                              secret="X", kind="咨询", target="", public=False, received_at=SUBMITTED)
    subject, text = reply_mail(received, ANSWER)
    raw, sender = compose(site_name="宝鸡市测试局", slug="t", kind="reply", letter=received, body=text,
                          subject=subject, when=at(26, 15))
    assert f"charset=\"{style.charset}\"".encode() in raw
    dovecot.deliver(raw, rcpt=received.email, sender=sender)
    world.sync()
    [row] = world.mails()
    assert row.subject == f"来信答复：{letter.title}" and row.kind == "reply" and row.matched_by == "token"
    assert row.from_addr == sender
    with world.db.session() as s:
        obs = s.scalar(select(m.Observation).where(m.Observation.channel == "email"))
        assert obs.reply_text.startswith("王喆：") and ANSWER in obs.reply_text
        assert "<p>" not in obs.reply_text      # an HTML-only body is stored as text


def test_uidvalidity_change_stores_no_duplicates(world, dovecot):
    letter = world.letter("关于社区养老服务的咨询")
    for i in range(3):
        dovecot.deliver(mail(f"答复 {i}", ANSWER), rcpt=PLUS.address_for(letter.reply_token))
    world.sync()
    assert world.count(m.MailMessage) == 3
    dovecot.kill_connections()
    dovecot.set_uidvalidity("INBOX", 4242)
    r = with_retry(lambda: world.sync(), attempts=3, delay=0)
    assert r.fetched == 3 and r.duplicates == 3 and r.stored == 0
    assert world.count(m.MailMessage) == 3
    assert world.count(m.Observation, m.Observation.channel == "email") == 3
    with world.db.session() as s:
        state = s.scalar(select(m.MailFolderState).where(m.MailFolderState.folder == "INBOX"))
        assert state.uidvalidity == 4242 and state.last_uid == 3


def test_dropped_connection_and_crash_mid_fetch_lose_nothing_and_count_nothing_twice(world, dovecot):
    letter = world.letter("关于社区养老服务的咨询")
    for i in range(12):
        dovecot.deliver(mail(f"答复 {i}", ANSWER), rcpt=PLUS.address_for(letter.reply_token))
    reader = world.reader(batch_size=5)
    seen = []

    def kick(letter_row):
        seen.append(letter_row.id)
        if len(seen) == 2:
            dovecot.kill_connections()       # the server drops the session while we work

    with pytest.raises(MailConnectionError):
        world.sync(reader, on_letter=kick)
    stored_before = world.count(m.MailMessage)
    assert stored_before == 5                  # the first batch was fetched before the drop

    def crash(letter_row):
        seen.append(letter_row.id)
        if len(seen) == 8:                     # after the commit, before the batch is recorded
            raise RuntimeError("the process dies here")

    with pytest.raises(RuntimeError):
        world.sync(reader, on_letter=crash)
    r = with_retry(lambda: world.sync(reader), attempts=3, delay=0)
    assert r.duplicates >= 1                   # the unfinished batch came again
    assert world.count(m.MailMessage) == 12
    assert world.count(m.Observation, m.Observation.letter_id == letter.id) == 12
    keys = [(x.message_id, x.internaldate, x.size) for x in world.mails()]
    assert len(set(keys)) == 12


# --- what the report makes of it ------------------------------------------------------------

def test_an_acknowledgement_alone_is_not_a_reply(world, dovecot):
    letter = world.letter("关于社区养老服务的咨询", site="宝鸡市回执局")
    raw = mail("来信已收到（自动回复）", ACK)
    raw = raw.replace(b"MIME-Version", b"Auto-Submitted: auto-replied\r\nMIME-Version")
    dovecot.append(raw, internaldate=at(26, 10, 3))
    dovecot.deliver(mail("x", ACK, to=PLUS.address_for(letter.reply_token)), rcpt=PLUS.address_for(letter.reply_token))
    world.clock.set(at(26, 12))
    next_poll = world.get(letter.id).next_poll_at
    world.sync()
    assert {x.kind for x in world.mails()} == {"ack"}
    got = world.get(letter.id)
    assert got.state == LetterState.SUBMITTED
    assert got.next_poll_at == next_poll            # an ack does not move the site's polling
    assert [r.kind for r in got.replies] == ["ack"]
    row = world.rows()["宝鸡市回执局"]
    assert row.status == "awaiting" and "ack_only" in row.flags and row.replied_at is None


def test_a_reply_by_email_only_uses_internaldate(world, dovecot):
    letter = world.letter("关于社区养老服务的咨询", site="宝鸡市邮件局")
    to = PLUS.address_for(letter.reply_token)
    dovecot.append(mail("答复", ANSWER, to=to, date=at(29, 10)), internaldate=at(29, 10))
    world.clock.set(at(29, 14))
    world.sync()
    got = world.get(letter.id)
    assert got.state == LetterState.REPLIED and got.next_poll_at is None
    [obs] = got.observations
    assert obs.at == at(29, 14) and obs.displayed_reply_at == at(29, 10)
    row = world.rows()["宝鸡市邮件局"]
    assert row.status == "replied" and row.reply_channel == "email"
    assert row.replied_at == at(29, 10)
    assert row.working_days == 2 and row.within_deadline and not row.same_day   # 04-28, 04-29
    assert row.flags == ()                                                       # no skew, no backdating


def _site_reply(world, letter_id: int, seen_at: datetime, shown: datetime) -> None:
    with world.db.session() as s:
        letter = s.get(m.Letter, letter_id)
        s.add(m.Observation(letter_id=letter_id, channel="site_query", at=seen_at, outcome="found",
                            site_status="已办结", replied=True, displayed_reply_at=shown, detail={}))
        s.flush()
        s.refresh(letter, ["observations"])
        world.worker.apply(s, letter, seen_at, [], poll_done=True)
        s.commit()


def test_both_channels_the_earlier_credible_time_wins(world, dovecot):
    first_email = world.letter("关于公交线路调整的建议", site="宝鸡市邮件先到局")
    first_site = world.letter("关于社区养老服务的咨询", site="宝鸡市网站先到局")
    # email at 04-28 09:00, site shows 04-29 11:00
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(first_email.reply_token), date=at(28, 9)),
                   internaldate=at(28, 9))
    # site shows 04-28 10:00, email at 04-29 16:00
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(first_site.reply_token), date=at(29, 16)),
                   internaldate=at(29, 16))
    world.clock.set(at(28, 12))
    _site_reply(world, first_site.id, at(28, 12), at(28, 10))
    world.clock.set(at(29, 18))
    world.sync()
    _site_reply(world, first_email.id, at(29, 18), at(29, 11))
    rows = world.rows()
    a, b = rows["宝鸡市邮件先到局"], rows["宝鸡市网站先到局"]
    assert (a.replied_at, a.reply_channel, a.working_days) == (at(28, 9), "email", 1)
    assert (b.replied_at, b.reply_channel, b.working_days) == (at(28, 10), "site_query", 1)
    assert {o.channel for o in world.get(first_email.id).observations} == {"email", "site_query"}


def test_email_date_mismatch_is_flagged(world, dovecot):
    letter = world.letter("关于社区养老服务的咨询", site="宝鸡市时差局")
    to = PLUS.address_for(letter.reply_token)
    dovecot.append(mail("答复", ANSWER, to=to, date=at(28, 7)), internaldate=at(28, 10, 30))
    world.clock.set(at(28, 12))
    world.sync()
    [row] = world.mails()
    assert row.date_header == at(28, 7) and row.internaldate == at(28, 10, 30)
    r = world.rows()["宝鸡市时差局"]
    assert r.replied_at == at(28, 10, 30) and "email_date_mismatch" in r.flags
    # within the hour: no flag
    other = world.letter("关于公交线路调整的建议", site="宝鸡市准时局")
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(other.reply_token), date=at(28, 10, 20)),
                   internaldate=at(28, 10, 30))
    world.sync()
    assert world.rows()["宝鸡市准时局"].flags == ()


# --- the roster and the sandbox -------------------------------------------------------------

def _roster(sites, end="2024-04-29T18:00:00+08:00"):
    return roster_from_dict({"campaign": {"name": "2024Q2", "submit_at": "2024-04-26T10:00:00+08:00",
                                          "end_at": end, "poll_every": "4h"}, "site": sites})


def test_roster_refuses_email_on_legacy():
    base = {"name": "宝鸡市测试局", "group": "g", "platform": "legacy", "mailboxes": ["leader"]}
    with pytest.raises(ConfigError, match=r"site\[1\]\.reply\.channel.*legacy platform has no"):
        _roster([{**base, "reply": {"workdays": 1, "channel": "email"}}])
    with pytest.raises(ConfigError, match=r"site\[1\]\.ack.*email field"):
        _roster([{**base, "ack": True}])
    with pytest.raises(ConfigError, match="expected: workdays, at, channel"):
        _roster([{**base, "reply": {"workdays": 1, "chanel": "site"}}])
    r = _roster([{**base, "platform": "minimal", "ack": True, "reply": {"workdays": 1, "channel": "both"}}])
    assert r.site[0].reply.channel == "both" and r.emails()


def test_simulated_campaign_answers_by_email(tmp_path, db_url, dovecot):
    """Three sandbox sites in real Chromium, the sites' mail through Dovecot: one answers only by
    email (its page stays 办理中) and acknowledges, one answers on both channels, one only
    acknowledges and never answers."""
    from bot.sandbox.play import simulate
    from bot.config import load_config
    from bot.sandbox import Sandbox
    from bot.sandbox.mail import ImapAppendTransport

    roster = _roster([
        {"name": "宝鸡市邮件答复局", "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "ack": True, "reply": {"workdays": 1, "at": "10:00", "channel": "email"}},
        {"name": "宝鸡市双渠道局", "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "reply": {"workdays": 0, "at": "15:00", "channel": "both"}},
        {"name": "宝鸡市只回执局", "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "ack": True},
    ])
    db = Database(db_url)
    clock = SimClock(roster.campaign.submit_at)
    transport = ImapAppendTransport(dovecot.host, dovecot.imap_port, dovecot.user, dovecot.password,
                                    domains=(PLUS_DOMAIN, CATCHALL_DOMAIN))
    settings = ImapSettings(host=dovecot.host, port=dovecot.imap_port, user=dovecot.user,
                            password=dovecot.password, tls=False, folders=["INBOX"], timeout=10, name="sim")
    with Sandbox(roster, clock, calendar=CAL, mail=transport) as sandbox:
        run_async(simulate(roster, clock, sandbox.base_url, db, load_config(None), tmp_path / "evidence",
                             CAL, mail=settings, deliver_mail=sandbox.deliver_due_mail,
                             identity=lambda t: CATCHALL if t.record.platform == "minimal" else PLUS,
                             catchall_domains=(CATCHALL_DOMAIN,)))
        sent = sandbox.sent_mail()
    assert len(sent) == 4 and {(x.letter.site, x.kind, x.status) for x in sent} == {
        ("宝鸡市只回执局", "ack", "sent"), ("宝鸡市双渠道局", "reply", "sent"),
        ("宝鸡市邮件答复局", "ack", "sent"), ("宝鸡市邮件答复局", "reply", "sent")}
    # each address was the letter's own
    with db.session() as s:
        letters = {x.mailbox.site.name: x for x in s.scalars(select(m.Letter))}
        assert letters["宝鸡市双渠道局"].writer["email"] == f"{letters['宝鸡市双渠道局'].reply_token}@{CATCHALL_DOMAIN}"
        assert letters["宝鸡市邮件答复局"].writer["email"] == f"inspector+{letters['宝鸡市邮件答复局'].reply_token}@{PLUS_DOMAIN}"
        email_only = letters["宝鸡市邮件答复局"]
        statuses = {o.site_status for o in email_only.observations if o.channel == "site_query"}
        assert statuses and statuses <= {"待处理", "办理中"}      # the page never showed the answer
        assert s.scalar(select(func.count()).select_from(m.MailMessage)) == 4
        assert s.scalar(select(func.count()).select_from(m.MailMessage).where(m.MailMessage.letter_id.is_(None))) == 0
    rows = {r.site: r for r in campaign_rows(db, "2024Q2", CAL, as_of=roster.campaign.end_at)[0]}
    a, b, c = rows["宝鸡市邮件答复局"], rows["宝鸡市双渠道局"], rows["宝鸡市只回执局"]
    assert (a.status, a.reply_channel, a.replied_at, a.working_days) == ("replied", "email", at(28, 10), 1)
    assert (b.status, b.replied_at, b.same_day) == ("replied", at(26, 15), True)
    # Only an acknowledgement, and its deadline (after May Day) not yet passed: awaiting, not failed.
    assert (c.status, c.within_deadline) == ("awaiting", None) and "ack_only" in c.flags
    for r in (a, b):
        assert not {"clock_skew", "possibly_backdated", "site_time_before_submission"} & set(r.flags)
    db.dispose()


def test_a_late_acknowledgement_does_not_restart_polling_of_a_replied_letter(world, dovecot):
    letter = world.letter("关于社区养老服务的咨询", site="宝鸡市迟到回执局")
    _site_reply(world, letter.id, at(26, 16), at(26, 15))
    assert world.get(letter.id).next_poll_at is None
    raw = mail("来信已收到（自动回复）", ACK, to=PLUS.address_for(letter.reply_token))
    dovecot.append(raw, internaldate=at(26, 17))
    world.clock.set(at(26, 18))
    world.sync()
    got = world.get(letter.id)
    assert got.state == LetterState.REPLIED and got.next_poll_at is None
    assert sorted(r.kind for r in got.replies) == ["ack", "answer"]
    assert world.rows()["宝鸡市迟到回执局"].replied_at == at(26, 15)


def test_cli_mail_sync_reads_the_accounts_file(world, dovecot, run_cli, tmp_path):
    letter = world.letter("关于社区养老服务的咨询")
    dovecot.deliver(mail("答复", ANSWER, to=PLUS.address_for(letter.reply_token)),
                    rcpt=PLUS.address_for(letter.reply_token))
    dovecot.deliver(mail("广告", "与信件无关。", sender="ads@example.com"))
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f"""
[[identity]]
name = "i"
email = "inspector@{PLUS_DOMAIN}"
imap_account = "box"

[[imap]]
name = "box"
host = "{dovecot.host}"
port = {dovecot.imap_port}
user = "{dovecot.user}"
password_env = "MB_TEST_IMAP_PASSWORD"
tls = false
folders = ["INBOX", "Junk"]
""", encoding="utf-8")
    env = {"MB_TEST_IMAP_PASSWORD": dovecot.password}
    write_cli_config(tmp_path)       # the evidence in the test's directory, not the repository's
    proc = run_cli("mail", "sync", "--accounts", str(accounts), env=env, check=True)
    assert "box: 2 new, 2 stored (1 matched, 1 unmatched" in proc.stdout
    assert dovecot.password not in proc.stdout + proc.stderr
    assert world.get(letter.id).state == LetterState.REPLIED
    again = run_cli("mail", "sync", "--accounts", str(accounts), env=env, check=True)
    assert "box: 0 new" in again.stdout
    bad = run_cli("mail", "sync", "--accounts", str(accounts), env={"MB_TEST_IMAP_PASSWORD": "wrong"})
    assert bad.returncode == 1 and "refused" in bad.stderr and "Traceback" not in bad.stderr


# --- tracking codes and titles in attachment file names -------------------------------------

def webmail_reply(*, attachment: str, form: str, subject: str = "来信答复", text: str = "您好，答复意见见附件。",
                  to: str = f"inspector@{PLUS_DOMAIN}") -> bytes:
    """A reply as a Chinese webmail (Coremail, Foxmail) writes it: multipart/mixed, GBK text
    labelled GB2312 in base64, the answer as an attachment whose file name is RFC 2231
    (``filename*=GBK''%B4%F0...``) or RFC 2047 (``filename="=?GBK?B?...?="``) encoded."""
    import base64
    import secrets

    gbk = attachment.encode("gbk")
    if form == "rfc2231":
        disposition = "attachment; filename*=GBK''" + "".join(f"%{b:02X}" for b in gbk)
    else:
        disposition = f'attachment; filename="=?GBK?B?{base64.b64encode(gbk).decode()}?="'
    body = base64.encodebytes(text.encode("gbk")).decode()
    pdf = base64.encodebytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n").decode()
    return (f"From: =?GBK?B?{base64.b64encode('宝鸡市住房和城乡建设局'.encode('gbk')).decode()}?= <zjj@zjj.baoji.gov.cn>\r\n"
            f"To: {to}\r\nSubject: =?GBK?B?{base64.b64encode(subject.encode('gbk')).decode()}?=\r\n"
            f"Date: Mon, 29 Apr 2024 10:00:00 +0800\r\nMessage-ID: <{secrets.token_hex(6)}@coremail.baoji.gov.cn>\r\n"
            "X-Mailer: Coremail Webmail Server Version XT5.0.13\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="----=_Part_1_2088.1714356000"\r\n\r\n'
            "------=_Part_1_2088.1714356000\r\nContent-Type: text/plain; charset=GB2312\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n"
            "------=_Part_1_2088.1714356000\r\nContent-Type: application/pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\nContent-Disposition: {disposition}\r\n\r\n{pdf}\r\n"
            "------=_Part_1_2088.1714356000--\r\n").encode("ascii")


def test_code_and_title_in_attachment_names_match_through_mail_sync(world, dovecot, run_cli, tmp_path):
    from mailserver import write_accounts

    write_cli_config(tmp_path)
    by_code = world.letter("关于老旧小区加装电梯的咨询", code="GD20240426001", site="宝鸡市住建局")
    by_title = world.letter("关于宝鸡市便民服务热线的咨询", site="宝鸡市热线办")
    # to the plain address, nothing in the subject or the text: only the file names say which
    dovecot.append(webmail_reply(attachment="答复意见（GD20240426001）.pdf", form="rfc2231"),
                   internaldate=at(29, 10))
    dovecot.append(webmail_reply(attachment="关于宝鸡市便民服务热线的咨询的答复.pdf", form="rfc2047"),
                   internaldate=at(29, 11))
    env = {"MB_TEST_IMAP_PASSWORD": dovecot.password}
    proc = run_cli("mail", "sync", "--accounts", str(write_accounts(tmp_path / "a.toml", dovecot)), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "box: 2 new, 2 stored (2 matched, 0 unmatched" in proc.stdout
    got = {x.letter_id: x.matched_by for x in world.mails()}
    assert got == {by_code.id: "tracking_code", by_title.id: "title"}
    rows = world.rows(as_of=datetime.now(timezone.utc))
    assert rows["宝鸡市住建局"].replied_at == at(29, 10) and rows["宝鸡市热线办"].replied_at == at(29, 11)
    # "答复意见见附件" says the answer is in the file, which no rule reads: a doubt, shown
    assert "ack_or_reply_uncertain" in rows["宝鸡市住建局"].flags
