"""`mailbox-bot reply record`: a callback counts as a reply from that channel (real SQLite)."""

import json
from datetime import datetime

from bot.clock import SHANGHAI
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

SUBMITTED = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)


def _letter(db_url, site="宝鸡市统计局", state=LetterState.SUBMITTED, submitted=SUBMITTED) -> int:
    db = Database(db_url)
    with db.session() as s:
        camp = m.Campaign(name="Q", created_at=SUBMITTED, deadline_workdays=5)
        st = m.Site(key="tj", name=site, group="市级部门网站", base_url="http://h/", platform="jact")
        s.add_all([camp, st])
        s.flush()
        mb = m.Mailbox(site_id=st.id, kind="leader", label="领导信箱")
        s.add(mb)
        s.flush()
        letter = m.Letter(campaign_id=camp.id, mailbox_id=mb.id, state=state, state_changed_at=SUBMITTED,
                          title="关于统计数据查询的咨询", body="您好", submitted_at=submitted,
                          next_poll_at=SUBMITTED)
        s.add(letter)
        s.commit()
        return letter.id


def test_a_phone_callback_is_the_reply_with_its_working_days(run_cli, db_url):
    lid = _letter(db_url)
    r = run_cli("reply", "record", str(lid), "--at", "2024-04-28T09:15", "--channel", "phone",
                "--note", "统计局王科长来电答复")
    assert r.returncode == 0, r.stderr
    report = json.loads(run_cli("report", "Q", "--json", check=True).stdout)
    row = report["rows"][0]
    assert row["status"] == "replied"
    assert row["replied_at"] == "2024-04-28T09:15:00+08:00"
    assert row["working_days"] == 1              # 2024-04-28 is a make-up working Sunday
    assert row["within_deadline"] and not row["same_day"]
    with Database(db_url).session() as s:
        letter = s.get(m.Letter, lid)
        assert letter.state == LetterState.REPLIED and letter.next_poll_at is None
        assert [r.channel for r in letter.replies] == ["manual"]
        assert "王科长" in letter.replies[0].note
        assert letter.observations[0].detail["via"] == "phone"


def test_bad_input_is_one_line_and_nothing_is_recorded(run_cli, db_url):
    lid = _letter(db_url)
    cases = [
        ("--at", "2024-04-25T09:00", "--channel", "phone"),    # before the submission
        ("--at", "2999-01-01T09:00", "--channel", "sms"),      # in the future
        ("--at", "2024-04-28T09:00", "--channel", "fax"),
        ("--at", "2024-13-01", "--channel", "sms"),
    ]
    for args in cases:
        r = run_cli("reply", "record", str(lid), *args)
        assert r.returncode == 2, (args, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    r = run_cli("reply", "record", "999", "--at", "2024-04-28T09:00", "--channel", "sms")
    assert r.returncode == 2 and "no letter with id 999" in r.stderr
    with Database(db_url).session() as s:
        assert s.get(m.Letter, lid).observations == []
        assert s.get(m.Letter, lid).state == LetterState.SUBMITTED
