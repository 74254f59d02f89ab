"""CMS message boards (the sandbox's `board`, PbootCMS-like) through `mailbox-bot demo` as a user
runs it: no title, no tracking code, an XHR answered by JSON and shown only in an alert, letters
published after review (`moderated`), lists that move (`traffic = 40`), reply times that are the
row's last-modified time. The letter is found on the public list by the title the scenario
writes at the head of its content.
"""

from __future__ import annotations

import json

import pytest

REPLIES = "宝鸡市留言答复局"      # replies on the 2nd working day
DELETES = "宝鸡市留言删信局"      # deletes it on the 3rd
SILENT = "宝鸡市留言无回复局"     # never replies
EDITED = "宝鸡市留言改时局"       # replies the same day, edits the reply the next working day
CLOSED = "宝鸡市留言关闭局"       # the board is closed: the site refuses in its own words
ROSTER = """
[campaign]
name = "boards"
submit_at = "2024-05-06T10:00:00+08:00"
end_at = "2024-05-20T18:00:00+08:00"
poll_every = "2h"
""" + "".join(f"""
[[site]]
name = "{name}"
group = "市级部门网站"
platform = "board"
mailboxes = ["board"]
moderated = true
traffic = 40
{extra}
""" for name, extra in [(REPLIES, 'reply = { workdays = 2, at = "15:00" }'), (DELETES, "delete = { workdays = 3 }"),
                         (SILENT, ""), (EDITED, 'reply = { workdays = 0, at = "16:00" }\nedit = { workdays = 1 }'),
                         (CLOSED, "closed = true")])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import os
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("boards")
    (tmp / "boards.toml").write_text(ROSTER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("MAILBOX_BOT_CONFIG", "MAILBOX_BOT_DATABASE_URL")}
    proc = subprocess.run([sys.executable, "-m", "bot", "demo", "--roster", "boards.toml", "--out", "out",
                           "--json", "--no-mail"], cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    return {r["site"]: r for r in data["rows"]}, data, tmp


def test_a_reply_at_two_working_days_on_a_moving_moderated_board(report):
    rows, data, tmp = report
    r = rows[REPLIES]
    assert (r["status"], r["working_days"], r["within_deadline"]) == ("replied", 2, True), r
    assert r["mailbox"] == "在线留言" and "not_covered_polls" not in r["flags"]


def test_a_deleting_board_is_deleted_and_a_silent_one_no_reply(report):
    rows, data, tmp = report
    assert (rows[DELETES]["status"], rows[DELETES]["within_deadline"]) == ("deleted", False)
    assert (rows[SILENT]["status"], rows[SILENT]["within_deadline"]) == ("no_reply", False)
    assert data["summary"]["deleted_sites"] == 1 and data["summary"]["no_reply_sites"] == 1


def test_a_reply_time_moved_by_an_edit_is_said_and_the_first_shown_stands(report):
    rows, data, tmp = report
    r = rows[EDITED]
    assert (r["status"], r["working_days"], r["same_day"]) == ("replied", 0, True), r
    assert "reply_time_moved" in r["flags"]
    assert r["replied_at"].startswith("2024-05-06T16:00")


def test_a_closed_board_refuses_in_its_own_words(report):
    rows, data, tmp = report
    r = rows[CLOSED]
    assert (r["status"], r["within_deadline"]) == ("submit_failed", None)
    table = (tmp / "out" / "report.md").read_text(encoding="utf-8")
    assert "系统已经关闭留言功能" in table
    assert f"{CLOSED}测试信件提交失败" in data["sentence"]


def test_a_moderated_letter_not_yet_published_is_awaiting_publication(run_cli, tmp_path):
    """As of the next morning the board has not published the letter (its review is on the 2nd
    working day): awaiting, and said to wait for publication, not "never visible"."""
    roster = ROSTER.replace('end_at = "2024-05-20T18:00:00+08:00"', 'end_at = "2024-05-07T12:00:00+08:00"')
    roster = roster[:roster.index("[[site]]")] + f"""
[[site]]
name = "{SILENT}"
group = "市级部门网站"
platform = "board"
mailboxes = ["board"]
moderated = {{ workdays = 2 }}
"""
    (tmp_path / "late.toml").write_text(roster, encoding="utf-8")
    proc = run_cli("demo", "--roster", "late.toml", "--out", "out", "--json", "--no-mail")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [r] = json.loads(proc.stdout)["rows"]
    assert (r["status"], r["within_deadline"]) == ("awaiting", None) and "awaiting_publication" in r["flags"]
