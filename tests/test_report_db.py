"""One recorded campaign, the same `mailbox-bot report --json` whether it lives in SQLite or in
PostgreSQL (whose server here runs in America/New_York, and which returns an updated row last
when a query does not say an order)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState as S

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 4, day, hour, minute, tzinfo=SH)


def record(url: str) -> None:
    """A campaign as the daemon would have left it: a portal with two mailboxes (one renamed
    after it was made), a department that answered late, one whose letter disappeared."""
    database = Database(url)
    try:
        with database.session() as s:
            campaign = m.Campaign(name="2024年第二季度", created_at=at(22, 8), cutoff="17:30")
            portal = m.Site(key="gov", name="宝鸡市人民政府", group="政府门户网站", base_url="http://a/",
                            platform="igi", roster_order=0)
            late = m.Site(key="yjj", name="宝鸡市应急管理局", group="市级部门网站", base_url="http://b/",
                          platform="legacy", roster_order=1)
            gone = m.Site(key="wlj", name="宝鸡市文化和旅游局", group="市级部门网站", base_url="http://c/",
                          platform="legacy", roster_order=2, moderated=True)
            # The site file lists the mayor's mailbox first (its kind sorts last in an index).
            boxes = [m.Mailbox(site=portal, kind="mayor", label="市长信箱"),
                     m.Mailbox(site=portal, kind="leader", label="领导信箱"),
                     m.Mailbox(site=late, kind="leader", label="局长信箱"),
                     m.Mailbox(site=gone, kind="leader", label="局长信箱")]
            s.add_all([campaign, *boxes])
            s.flush()
            boxes[0].label = "县长信箱"            # renamed: PostgreSQL now returns this row last
            s.flush()

            def letter(box, submitted, *looks):
                row = m.Letter(campaign=campaign, mailbox=box, title=f"咨询 {box.id}", body="您好", state=S.SUBMITTED,
                               state_changed_at=submitted, submitted_at=submitted, tracking_code=f"C{box.id:04d}")
                s.add(row)
                s.flush()
                s.add_all([m.LetterEvent(letter_id=row.id, at=submitted - timedelta(minutes=1), from_state=S.PLANNED,
                                         to_state=S.SUBMITTING),
                           m.LetterEvent(letter_id=row.id, at=submitted, from_state=S.SUBMITTING, to_state=S.SUBMITTED)])
                for when, outcome, shown in looks:
                    s.add(m.Observation(letter_id=row.id, channel="site_query", at=when, outcome=outcome,
                                        replied=shown is not None, displayed_reply_at=shown,
                                        reply_text="已答复" if shown else None, site_status="已办结" if shown else "办理中",
                                        detail={}))
                return row

            letter(boxes[0], at(22, 10), (at(22, 16), "found", at(22, 15)))                    # same day
            letter(boxes[1], at(22, 10, 5), (at(23, 9), "found", None), (at(25, 9), "found", at(24, 17)))
            letter(boxes[2], at(22, 11), (at(26, 9), "found", None), (at(30, 10), "found", at(30, 9)))  # late
            letter(boxes[3], at(22, 11), (at(23, 9), "found", None), (at(24, 10), "not_found", None),
                   (at(25, 10), "not_found", None), (at(26, 10), "not_found", None))             # deleted
            s.commit()
    finally:
        database.dispose()


def test_one_campaign_same_report_on_both_backends(run_cli, tmp_path, postgres_url):
    reports = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'r.sqlite3'}"), ("postgres", postgres_url)):
        record(url)
        proc = run_cli("report", "2024年第二季度", "--json", "--as-of", "2024-05-20",
                       env={"MAILBOX_BOT_DATABASE_URL": url})
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        report["summary"].pop("generated_at", None)
        report["meta"].pop("generated_at", None)      # the moment the command ran
        reports[name] = report
    assert reports["postgres"] == reports["sqlite"]
    rows = reports["postgres"]["rows"]
    # The portal's mailboxes in the order they were made, whatever the database returns first.
    assert [(r["site"], r["mailbox"]) for r in rows[:2]] == [("宝鸡市人民政府", "县长信箱"), ("宝鸡市人民政府", "领导信箱")]
    assert rows[0]["same_day"] is True and rows[0]["replied_at"].startswith("2024-04-22T15:00")
    assert reports["postgres"]["summary"]["sites"] == 3
