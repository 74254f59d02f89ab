"""Never twice, the mail side: an email from the site about a letter whose submission is
uncertain (the bot clicked, then lost track; submitted_at None) resolves it as sent at its
claim, through `mailbox-bot mail sync` and a real Dovecot; the letter is never resubmitted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from mailserver import PLUS_DOMAIN, write_accounts, write_cli_config
from sqlalchemy import select, update
from test_mail_channel import ACK, ANSWER, PLUS, World, at, mail

from bot.campaign.lifecycle import transition
from bot.store import models as m
from bot.vocab import LetterState
from bot.store.db import Database


def uncertain_letter(db: Database, title: str, claim: datetime, *, token: str, name: str,
                     base_url: str = "http://www.zjj.baoji.gov.cn/") -> int:
    """A letter as the worker leaves it when its claim expired after the final click: planned,
    claimed (submitting, attempt 1), then submit_uncertain; no submitted_at, no tracking code,
    next_poll_at set for looking it up on the site's list (bot.daemon, bot.campaign.worker)."""
    with db.session() as s:
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == "2024Q2"))
        if campaign is None:
            campaign = m.Campaign(name="2024Q2", created_at=claim - timedelta(days=1))
            s.add(campaign)
            s.flush()
        site = m.Site(key=f"site-{token}", name=name, group="市级部门网站", base_url=base_url, platform="jact")
        s.add(site)
        s.flush()
        mailbox = m.Mailbox(site_id=site.id, kind="leader", label="领导信箱")
        s.add(mailbox)
        s.flush()
        letter = m.Letter(campaign_id=campaign.id, mailbox_id=mailbox.id, state=LetterState.PLANNED,
                          state_changed_at=claim - timedelta(hours=1), title=title, body="您好，……",
                          writer={"name": "王晓明", "email": PLUS.address_for(token)}, reply_token=token,
                          planned_at=claim - timedelta(hours=1))
        s.add(letter)
        s.flush()
        s.add(m.LetterEvent(letter_id=letter.id, at=claim - timedelta(hours=1), from_state=None,
                            to_state=LetterState.PLANNED, reason="planned"))
        transition(s, letter, LetterState.SUBMITTING, claim, "attempt 1")
        letter.attempts, letter.lease_until = 1, claim + timedelta(minutes=10)
        letter.final_click_at = claim + timedelta(minutes=1)
        expired = claim + timedelta(minutes=10)
        transition(s, letter, LetterState.SUBMIT_UNCERTAIN, expired, "claim expired: the bot stopped while this letter "
                   "was being submitted; it may have reached the site (never resubmitted)")
        letter.lease_until, letter.failure = None, "the bot stopped while this letter was being submitted"
        letter.next_poll_at = expired
        s.commit()
        return letter.id


def load(db: Database, letter_id: int) -> m.Letter:
    with db.session() as s:
        letter = s.get(m.Letter, letter_id)
        _ = letter.events, letter.replies, letter.observations
        return letter


def test_cli_sync_resolves_an_uncertain_letter_by_its_reply_address(tmp_path, db_url, dovecot, run_cli):
    db = Database(db_url)
    claim = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
    letter_id = uncertain_letter(db, "关于老旧小区加装电梯的咨询", claim, token="u7k2p9q4m1", name="宝鸡市住建局")
    to = f"inspector+u7k2p9q4m1@{PLUS_DOMAIN}"
    dovecot.deliver(mail("来信答复", ANSWER, to=to, sender="bgs@zjj.baoji.gov.cn"), rcpt=to)
    write_cli_config(tmp_path)
    proc = run_cli("mail", "sync", "--accounts", str(write_accounts(tmp_path / "accounts.toml", dovecot)),
                   env={"MB_TEST_IMAP_PASSWORD": dovecot.password})
    assert proc.returncode == 0, proc.stderr
    assert "box: 1 new, 1 stored (1 matched, 0 unmatched" in proc.stdout

    letter = load(db, letter_id)
    assert letter.state == LetterState.REPLIED and letter.submitted_at == claim and letter.failure is None
    assert [(e.from_state, e.to_state) for e in letter.events] == [
        (None, LetterState.PLANNED), (LetterState.PLANNED, LetterState.SUBMITTING), (LetterState.SUBMITTING, LetterState.SUBMIT_UNCERTAIN),
        (LetterState.SUBMIT_UNCERTAIN, LetterState.SUBMITTED), (LetterState.SUBMITTED, LetterState.REPLIED)]
    resolved = letter.events[3]
    assert "an email from the site" in resolved.reason and "resolved from submit_uncertain" in resolved.reason
    assert resolved.evidence_ids                                # the .eml that proves it
    [reply] = letter.replies
    assert reply.kind == "answer" and reply.channel == "email" and reply.replied_at > claim
    # never resubmitted: one claim, one attempt, and the worker's claim (planned or
    # submit_failed only) can no longer take it
    assert letter.attempts == 1 and sum(e.to_state == LetterState.SUBMITTING for e in letter.events) == 1
    with db.session() as s:
        claimed = s.execute(update(m.Letter).where(m.Letter.id == letter_id,
                                                   m.Letter.state.in_((LetterState.PLANNED, LetterState.SUBMIT_FAILED)))
                            .values(state=LetterState.SUBMITTING)).rowcount
        s.rollback()
    assert claimed == 0
    db.dispose()


@pytest.fixture
def world(any_db_url, tmp_path, dovecot):
    """On a SQLite file, then on PostgreSQL."""
    w = World(any_db_url, tmp_path, dovecot)
    yield w
    w.close()


def test_an_acknowledgement_resolves_it_and_starts_the_watch(world, dovecot):
    claim = at(26, 10)
    letter_id = uncertain_letter(world.db, "关于社区养老服务的咨询", claim, token="a5c8e2g4k6", name="宝鸡市民政局")
    to = f"inspector+a5c8e2g4k6@{PLUS_DOMAIN}"
    dovecot.append(mail("来信已收到（自动回复）", ACK, to=to), internaldate=at(26, 10, 20))
    world.clock.set(at(26, 11))
    world.sync()
    letter = load(world.db, letter_id)
    assert letter.state == LetterState.SUBMITTED and letter.submitted_at == claim
    assert [r.kind for r in letter.replies] == ["ack"]
    # watched from now on as a sent letter: its next poll is a normal one, in the future
    assert letter.next_poll_at is not None and letter.next_poll_at > at(26, 11)
    row = world.rows()["宝鸡市民政局"]
    # An hour after the claim: awaiting its deadline, acknowledged only.
    assert row.submitted_at == claim and row.status == "awaiting" and "ack_only" in row.flags


def test_matched_by_title_or_code_counted_from_the_claim_never_by_domain_alone(world, dovecot):
    claim = at(26, 10)
    by_title = uncertain_letter(world.db, "关于宝鸡市便民服务热线的咨询", claim, token="t1t2t3t4t5", name="宝鸡市热线办",
                                base_url="http://www.rx.baoji.gov.cn/")
    by_domain = uncertain_letter(world.db, "关于河道治理的建议", claim, token="d1d2d3d4d5", name="宝鸡市水利局",
                                 base_url="http://www.slj.baoji.gov.cn/")
    plain = f"inspector@{PLUS_DOMAIN}"
    # a mail naming the title that arrived before the claim is about something else
    dovecot.append(mail("回复：关于宝鸡市便民服务热线的咨询", ANSWER, to=plain), internaldate=claim - timedelta(hours=1))
    # from the site's domain, but naming nothing: not proof that this letter arrived
    dovecot.append(mail("答复意见", ANSWER, to=plain, sender="bgs@slj.baoji.gov.cn"), internaldate=at(28, 9))
    # the title, after the claim: this letter
    dovecot.append(mail("回复：关于宝鸡市便民服务热线的咨询", ANSWER, to=plain), internaldate=at(28, 10))
    world.clock.set(at(28, 12))
    r = world.sync()
    assert (r.matched, r.unmatched) == (1, 2)
    assert [x.letter_id for x in world.mails()] == [None, None, by_title]
    t, d = load(world.db, by_title), load(world.db, by_domain)
    assert t.state == LetterState.REPLIED and t.submitted_at == claim and t.replies[0].replied_at == at(28, 10)
    assert d.state == LetterState.SUBMIT_UNCERTAIN and d.submitted_at is None and d.observations == []
    assert world.rows()["宝鸡市热线办"].working_days == 1                        # 04-28 counted from the claim


def test_an_uncertain_letter_with_a_tracking_code_is_matched_by_it(world, dovecot):
    """The tracking-code rule counts from the claim too (a site can show the code on its
    result page before the bot lost track, and the worker keep it)."""
    claim = at(26, 10)
    letter_id = uncertain_letter(world.db, "关于公交线路调整的建议", claim, token="c9c8c7c6c5", name="宝鸡市交通局")
    with world.db.session() as s:
        s.get(m.Letter, letter_id).tracking_code = "JT202404260042"
        s.commit()
    dovecot.append(mail("来信答复", f"{ANSWER}\n信件编号：JT202404260042"), internaldate=at(29, 9))
    world.clock.set(at(29, 12))
    world.sync()
    [row] = world.mails()
    assert (row.letter_id, row.matched_by) == (letter_id, "tracking_code")
    assert load(world.db, letter_id).state == LetterState.REPLIED

