"""A site that moves to another platform gets a second record with its own validity (STYLE.md):
the record in force is chosen by date, and the past campaign keeps its letters, its platform
and its table."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import transition
from bot.campaign.results import campaign_rows
from bot.campaign.sites import register_site
from bot.clock import SHANGHAI
from bot.errors import ConfigError
from bot.scenario.loader import valid_on
from bot.scenario.schema import SiteRecord
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import FlowOutcome, LetterState

OLD = SiteRecord(key="bj", name="宝鸡市人民政府", group="政府门户网站", base_url="http://old.example/bj",
                 platform="jact", mailboxes=["leader"], valid_to=date(2024, 6, 30))
NEW = SiteRecord(key="bj", name="宝鸡市人民政府", group="政府门户网站", base_url="http://new.example/bj",
                 platform="igi", mailboxes=["leader"], valid_from=date(2024, 7, 1))


AT = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)


def campaign_with(s, record: SiteRecord, name: str) -> tuple[m.Site, m.Campaign]:
    """The site registered from `record` and an empty campaign, in session `s`."""
    site = register_site(s, record, 0)
    camp = m.Campaign(name=name, created_at=AT, deadline_workdays=5)
    s.add(camp)
    s.flush()
    return site, camp


def letter_in(s, camp: m.Campaign, mailbox: m.Mailbox, **fields) -> m.Letter:
    letter = m.Letter(campaign_id=camp.id, mailbox_id=mailbox.id, state_changed_at=AT,
                      title="关于公积金提取的咨询", body="您好", **{"state": LetterState.PLANNED, **fields})
    s.add(letter)
    s.flush()
    return letter


def test_the_record_in_force_is_chosen_by_date():
    assert [r.platform for r in valid_on([OLD, NEW], date(2024, 6, 30))] == ["jact"]
    assert [r.platform for r in valid_on([OLD, NEW], date(2024, 7, 1))] == ["igi"]


def test_overlapping_records_of_one_site_are_refused():
    overlapping = NEW.model_copy(update={"valid_from": date(2024, 6, 1)})
    with pytest.raises(ConfigError, match="two site records are in force on 2024-06-15"):
        valid_on([OLD, overlapping], date(2024, 6, 15))


def test_the_past_campaign_keeps_its_letters_and_platform_after_the_move(any_db_url):
    db = Database(any_db_url)
    with db.session() as s:
        old, camp = campaign_with(s, OLD, "2024Q2")
        letter = letter_in(s, camp, old.mailboxes[0], submitted_at=AT)
        transition(s, letter, LetterState.SUBMITTED, AT, "tracking code 1")
        s.commit()
    before, _ = campaign_rows(db, "2024Q2", WorkCalendar(), as_of=AT + timedelta(days=60))
    with db.session() as s:
        new = register_site(s, NEW, 0)
        old_again = register_site(s, OLD, 0)          # the old file, loaded again, is the same row
        s.commit()
        assert new.id != old_again.id == old.id
        rows = s.query(m.Site).order_by(m.Site.id).all()
        assert [(r.platform, r.base_url) for r in rows] == [("jact", "http://old.example/bj"),
                                                           ("igi", "http://new.example/bj")]
        letter = s.query(m.Letter).one()
        assert letter.mailbox.site.platform == "jact"
    after, _ = campaign_rows(db, "2024Q2", WorkCalendar(), as_of=AT + timedelta(days=60))
    assert after == before


def test_blocked_and_waiting_letters_are_said_in_the_table_and_not_counted_as_no_reply(any_db_url):
    """A submission a firewall kept stopping, and a letter waiting for the inspector: each row
    says so in its status and 备注, and neither is a "no reply"."""
    from bot.report.rows import remarks
    from bot.vocab import STATUS_TEXT
    from bot.report.summary import summarize

    db = Database(any_db_url)
    with db.session() as s:
        site, camp = campaign_with(s, OLD.model_copy(update={"mailboxes": ["leader", "mayor"]}), "c")
        for mb, state, kind in ((site.mailboxes[0], LetterState.SUBMIT_FAILED, FlowOutcome.BLOCKED),
                                (site.mailboxes[1], LetterState.NEEDS_INSPECTOR, FlowOutcome.NEEDS_INSPECTOR)):
            letter = letter_in(s, camp, mb, failure=f"{kind}: ...", failure_kind=kind)
            transition(s, letter, LetterState.SUBMITTING, AT, "attempt 1")
            transition(s, letter, state, AT, f"{kind}")
        s.commit()
    rows, _ = campaign_rows(db, "c", WorkCalendar(), as_of=AT + timedelta(days=1))
    assert sorted(r.status for r in rows) == ["blocked", "needs_inspector"]
    for r in rows:
        assert STATUS_TEXT[r.status] in remarks(r)
    assert summarize(rows)["no_reply_sites"] == 0


def test_an_email_about_an_uncertain_letter_resolves_it_as_sent(any_db_url):
    """The bot died after the click; the site's acknowledgement email (matched by the letter's
    own reply address) shows the letter arrived: submitted, with the claim's time, and the
    email's answer counts as its reply. Nothing is sent again."""
    from bot.campaign.lifecycle import Lifecycle

    db = Database(any_db_url)
    at, later = AT, datetime(2024, 4, 26, 15, 0, tzinfo=SHANGHAI)
    with db.session() as s:
        site, camp = campaign_with(s, OLD, "c")
        letter = letter_in(s, camp, site.mailboxes[0])
        transition(s, letter, LetterState.SUBMITTING, at, "attempt 1")
        transition(s, letter, LetterState.SUBMIT_UNCERTAIN, at, "claim expired")
        s.commit()
        lifecycle = Lifecycle(WorkCalendar())
        lifecycle.apply(s, letter, later, [], reschedule=False)          # nothing new: stays
        assert letter.state == LetterState.SUBMIT_UNCERTAIN
        s.add(m.Observation(letter_id=letter.id, channel="email", at=later, outcome="found", replied=True,
                            displayed_reply_at=later, detail={}))
        s.flush()
        s.refresh(letter)
        lifecycle.apply(s, letter, later, [], reschedule=False)
        s.commit()
        s.refresh(letter)
        assert letter.submitted_at == at
        assert [e.to_state for e in letter.events][-2:] == [LetterState.SUBMITTED, LetterState.REPLIED]
        assert "resolved from submit_uncertain" in letter.events[-2].reason
