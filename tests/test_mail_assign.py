"""`mailbox-bot mail assign MESSAGE LETTER`: an inspector attaches a stored, unmatched email to
its letter by hand. A real Dovecot (tests/mailserver.py), a real SQLite file, the CLI."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from conftest import one_line_error
from mailserver import write_accounts, write_cli_config
from sqlalchemy import func, select
from test_mail_channel import ANSWER, PLUS, World, at, mail

from bot.store import models as m
from bot.vocab import LetterState

YEAR_9999 = "Fri, 31 Dec 9999 23:59:59 -0800"


@pytest.fixture
def world(db_url, tmp_path, dovecot):
    w = World(db_url, tmp_path, dovecot)
    yield w
    w.close()


@pytest.fixture
def cli(run_cli, tmp_path, dovecot):
    """`mailbox-bot` with the test's evidence directory and an accounts file for the server."""
    write_cli_config(tmp_path)
    accounts = str(write_accounts(tmp_path / "accounts.toml", dovecot))
    env = {"MB_TEST_IMAP_PASSWORD": dovecot.password}

    def run(*args: str):
        if args[:2] == ("mail", "sync"):
            args = (*args, "--accounts", accounts)
        return run_cli(*args, env=env)

    return run


def snapshot(world: World) -> tuple:
    """Everything an assignment could change."""
    with world.db.session() as s:
        mails = [(r.id, r.letter_id, r.matched_by, r.kind) for r in s.scalars(select(m.MailMessage))]
        letters = [(x.id, x.state, x.submitted_at, x.next_poll_at) for x in s.scalars(select(m.Letter))]
        counts = [s.scalar(select(func.count()).select_from(t)) for t in (m.Observation, m.Reply, m.LetterEvent)]
        owners = [e.letter_id for e in s.scalars(select(m.EvidenceFile))]
    return mails, letters, counts, owners


def test_assign_by_hand_makes_the_observation_an_automatic_match_makes(world, dovecot, cli):
    auto = world.letter("关于社区养老服务的咨询", site="宝鸡市自动局")
    by_hand = world.letter("关于公交线路调整的建议", site="宝鸡市手动局")
    # the same answer: once to the letter's own address, once from a site that wrote to the
    # inspector's plain address and named nothing the rules could match
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(auto.reply_token), date=at(28, 9)), internaldate=at(28, 9))
    dovecot.append(mail("答复", ANSWER, sender="bgs@unknown.example.cn", date=at(28, 9)), internaldate=at(28, 9))
    proc = cli("mail", "sync")
    assert proc.returncode == 0 and "2 stored (1 matched, 1 unmatched" in proc.stdout, proc.stderr
    [loose] = [r for r in world.mails() if r.letter_id is None]
    listed = cli("mail", "unmatched").stdout
    assert f"#{loose.id}  " in listed and "bgs@unknown.example.cn" in listed and "problem" not in listed

    proc = cli("mail", "assign", str(loose.id), str(by_hand.id))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (f"mail message {loose.id} attached to letter {by_hand.id} by hand; "
                                   f"letter {by_hand.id}: replied")
    row = next(r for r in world.mails() if r.id == loose.id)
    assert (row.letter_id, row.matched_by, row.kind) == (by_hand.id, "manual", "reply")
    a, h = world.get(auto.id), world.get(by_hand.id)
    [oa], [oh] = a.observations, h.observations
    assert oh.detail["assigned_by_hand"] is True and oh.detail["matched_by"] == "manual"
    assert oh.detail["mail_id"] == loose.id and oh.detail["assigned_at"]
    same = ("channel", "outcome", "replied", "reply_text", "displayed_reply_at", "displayed_date_only", "displayed_raw")
    assert [getattr(oh, k) for k in same] == [getattr(oa, k) for k in same]
    drop = {"mail_id", "matched_by", "assigned_by_hand", "assigned_at", "from"}
    assert {k: v for k, v in oh.detail.items() if k not in drop} == {k: v for k, v in oa.detail.items() if k not in drop}
    assert h.state == a.state == LetterState.REPLIED and h.next_poll_at is None
    assert [(r.kind, r.channel, r.replied_at) for r in h.replies] == [("answer", "email", at(28, 9))]
    with world.db.session() as s:
        assert s.get(m.EvidenceFile, row.eml_evidence_id).letter_id == by_hand.id   # the proof goes with it
    rows = world.rows(as_of=datetime.now(timezone.utc))       # the commands read at the wall clock's time
    assert rows["宝鸡市手动局"].replied_at == rows["宝鸡市自动局"].replied_at == at(28, 9)

    assert "no mail unmatched" in cli("mail", "unmatched").stdout
    assigned = cli("mail", "unmatched", "--assigned").stdout
    assert f"#{loose.id}  " in assigned and f"-> letter {by_hand.id}" in assigned and "1 message(s) assigned by hand" in assigned
    before = snapshot(world)
    again = cli("mail", "assign", str(loose.id), str(by_hand.id))
    assert again.returncode == 0 and "already attached" in again.stdout and snapshot(world) == before


def test_a_poison_message_can_be_assigned_with_its_problem_shown(world, dovecot, cli):
    letter = world.letter("关于河道治理的建议", site="宝鸡市毒局")
    to = PLUS.address_for(letter.reply_token)
    raw = mail("答复", ANSWER, to=to).replace(b"Date: Mon, 3 Jun 2024 10:00:00 +0800", f"Date: {YEAR_9999}".encode())
    dovecot.deliver(raw, rcpt=to)
    assert cli("mail", "sync").returncode == 3
    [row] = world.mails()
    listed = cli("mail", "unmatched", "--json").stdout
    assert f'"id": {row.id}' in listed and "9999" in listed and '"letter_id": null' in listed
    proc = cli("mail", "assign", str(row.id), str(letter.id))
    assert proc.returncode == 0, proc.stderr
    got = world.get(letter.id)
    [obs] = got.observations
    assert got.state == LetterState.REPLIED and obs.detail["problem"] == row.problem
    assert obs.detail["date_header"] is None and obs.displayed_raw == YEAR_9999
    assert "email_date_mismatch" in obs.detail["flags"]       # the sender's clock is not to be trusted
    [r] = [x for x in world.rows(as_of=datetime.now(timezone.utc)).values()]
    assert "email_date_mismatch" in r.flags


def test_assign_errors_are_one_line_and_change_nothing(world, dovecot, cli):
    matched_to = world.letter("关于社区养老服务的咨询")
    other = world.letter("关于公交线路调整的建议")
    planned = world.letter("关于河道治理的建议")
    with world.db.session() as s:
        x = s.get(m.Letter, planned.id)
        x.state, x.submitted_at = LetterState.PLANNED, None
        s.commit()
    dovecot.append(mail("答复", ANSWER, to=PLUS.address_for(matched_to.reply_token)), internaldate=at(28, 9))
    dovecot.append(mail("广告", "与信件无关。", sender="ads@example.com"), internaldate=at(28, 10))
    assert cli("mail", "sync").returncode == 0
    matched, loose = world.mails()
    before = snapshot(world)

    one_line_error(cli("mail", "assign", "999", str(other.id)), "MESSAGE", "999", empty_stdout=True)
    one_line_error(cli("mail", "assign", str(loose.id), "999"), "LETTER", "999", empty_stdout=True)
    line = one_line_error(cli("mail", "assign", str(matched.id), str(other.id)), "MESSAGE", str(matched.id),
                          f"already matched to letter {matched_to.id}", "(by token)", empty_stdout=True)
    assert line.startswith("mailbox-bot: error: ")
    one_line_error(cli("mail", "assign", str(loose.id), str(planned.id)), "LETTER", str(planned.id),
                   "never sent", "planned", empty_stdout=True)
    one_line_error(cli("mail", "assign", "x", str(other.id)), "MESSAGE", "'x'")
    assert snapshot(world) == before
