"""A doubt is data (STYLE.md 14): what the rules cannot read is recorded, flagged and said, never
resolved silently. Real Chromium, the sandbox, a real SQLite file; templates as a new user
might write them for sites whose words and time formats the bundled ones do not know.

- a reply time that matches none of the template's `time_formats`: the first-seen time stands
  in, flagged `unparsed_reply_time` in the JSON and in 备注; `campaign status` warns; `check`
  tries every format on the live query page and says which read it;
- a status word the template's `status_map` lacks: flagged `unknown_status`; it is a reply
  only when the page also shows a reply text and a readable time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import simulate
from bot.clock import SHANGHAI, SimClock
from bot.config import load_config
from bot.report import remarks, report_dict
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.store import models as m
from bot.store.db import Database
from conftest import REPO, run_async

SLASHES = "宝鸡市斜杠时间局"        # its template expects 2024/04/29 10:00, the site shows 2024-04-28 10:00:00
WORDS = "宝鸡市新状态局"           # its template does not know the word 已回复
TAKEN_IN = "宝鸡市只受理局"         # its template reads 办理中 as "acknowledged"; it never answers
ROSTER = {
    "campaign": {"name": "doubts", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [
        {"name": SLASHES, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "xg",
         "reply": {"workdays": 1, "at": "10:00"}},
        {"name": WORDS, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"], "slug": "zt",
         "reply": {"workdays": 2, "at": "15:00"}},
        {"name": TAKEN_IN, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "sl"},
    ],
}


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doubts")
    scenarios = tmp / "scenarios"
    (scenarios / "sites").mkdir(parents=True)
    shutil.copytree(REPO / "scenarios" / "platforms", scenarios / "platforms")
    jact = scenarios / "platforms" / "jact.toml"
    text = jact.read_text(encoding="utf-8")
    text = re.sub(r'reply_time = \[.*\]', 'reply_time = ["%Y/%m/%d %H:%M"]', text)
    text = text.replace('"办理中" = "pending"', '"办理中" = "acknowledged"')
    jact.write_text(text, encoding="utf-8")
    legacy = scenarios / "platforms" / "legacy.toml"
    legacy.write_text(legacy.read_text(encoding="utf-8").replace('"已回复" = "replied"\n', ""), encoding="utf-8")

    roster = roster_from_dict(ROSTER)
    clock = SimClock(roster.campaign.submit_at)
    db_url = f"sqlite:///{tmp / 'doubts.sqlite3'}"
    db = Database(db_url)
    base = load_config()
    config = base.model_copy(update={"paths": base.paths.model_copy(update={"scenarios_dir": str(scenarios)})})
    sandbox = Sandbox(roster, clock).start()
    run_async(simulate(roster, clock, sandbox.base_url, db, config, tmp / "evidence", WorkCalendar()))
    for s in roster.site:
        (scenarios / "sites" / f"{s.slug}.toml").write_text(
            f'name = "{s.name}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(s.name)}"\n'
            f'platform = "{s.platform}"\nmailboxes = ["leader"]\n', encoding="utf-8")
    (tmp / "mailbox-bot.toml").write_text(f'[paths]\nscenarios_dir = "{scenarios}"\n'
                                          f'evidence_dir = "{tmp / "evidence"}"\n', encoding="utf-8")
    rows, meta = campaign_rows(db, "doubts", WorkCalendar(), as_of=roster.campaign.end_at)
    yield sandbox, db, db_url, tmp, {r.site: r for r in rows}, report_dict(rows, meta)
    sandbox.stop()


def cli(tmp: Path, db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url}
    env.pop("MAILBOX_BOT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bot", "-c", str(tmp / "mailbox-bot.toml"), *args], cwd=tmp,
                          env=env, capture_output=True, text=True, timeout=300)


def test_an_unreadable_reply_time_is_flagged_and_the_first_sighting_stands_in(played):
    sandbox, db, db_url, tmp, rows, report = played
    r = rows[SLASHES]
    assert r.status == "replied" and "unparsed_reply_time" in r.flags
    assert "网站回复时间无法识别" in remarks(r)
    row = next(x for x in report["rows"] if x["site"] == SLASHES)
    assert "unparsed_reply_time" in row["flags"]
    with db.session() as s:
        letter = s.query(m.Letter).join(m.Mailbox).join(m.Site).filter(m.Site.name == SLASHES).one()
        first = next(o for o in letter.observations if o.replied and not o.detail.get("ack"))
        # The site's own 2024-04-28 10:00:00 was kept as it was shown, never guessed at.
        assert first.displayed_reply_at is None and first.displayed_raw == "2024-04-28 10:00:00"
        assert r.replied_at == first.at
        assert first.at >= datetime(2024, 4, 28, 10, 0, tzinfo=SHANGHAI)


def test_an_unknown_status_word_is_flagged_and_still_needs_text_and_time(played):
    sandbox, db, db_url, tmp, rows, report = played
    r = rows[WORDS]
    assert "unknown_status" in r.flags and "网站显示的办理状态无法识别" in remarks(r)
    # The page shows a reply text and a date it can read: a reply, dated by the site.
    assert r.status == "replied" and r.working_days == 2
    with db.session() as s:
        letter = s.query(m.Letter).join(m.Mailbox).join(m.Site).filter(m.Site.name == WORDS).one()
        words = {o.site_status for o in letter.observations if o.outcome == "found"}
        unanswered = [o for o in letter.observations if o.site_status == "办理中"]
    assert "已回复" in words
    assert unanswered and not any(o.replied for o in unanswered)   # a known pending word stays pending


def test_campaign_status_warns_about_the_doubts(played):
    sandbox, db, db_url, tmp, rows, report = played
    r = cli(tmp, db_url, "campaign", "status", "doubts")
    assert r.returncode == 0, r.stderr
    warnings = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert any("unparsed_reply_time" in w and "1 letter" in w and "check" in w for w in warnings), r.stderr
    assert any("unknown_status" in w for w in warnings), r.stderr


def test_check_tries_every_time_format_on_the_live_query_page(played):
    sandbox, db, db_url, tmp, rows, report = played
    r = cli(tmp, db_url, "check", "xg")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "time format '%Y/%m/%d %H:%M' does not read '2024-04-28 10:00:00'" in r.stdout
    assert re.search(r"BROKEN .*time_formats: none of .* reads the reply time '2024-04-28 10:00:00'", r.stdout)
    site = tmp / "scenarios" / "sites" / "xg.toml"
    site.write_text(site.read_text(encoding="utf-8") + '\n[overrides.time_formats]\n'
                    'reply_time = ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S"]\n', encoding="utf-8")
    r = cli(tmp, db_url, "check", "xg")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "time format '%Y-%m-%d %H:%M:%S' reads '2024-04-28 10:00:00'" in r.stdout
    # A site with no replied letter to look at: said, not silently passed.
    other = cli(tmp, Path(tmp / "empty.sqlite3").as_uri().replace("file://", "sqlite://"), "check", "xg")
    assert "time_formats not checked" in other.stdout


def test_a_site_status_that_only_acknowledges_is_not_a_reply(played):
    """status_map's `acknowledged` (已受理/已转办, here 办理中): the site took the letter in and
    never answered; past the deadline that is "no reply", flagged ack_only, not a reply."""
    sandbox, db, db_url, tmp, rows, report = played
    r = rows[TAKEN_IN]
    assert (r.status, r.replied_at, r.within_deadline) == ("no_reply", None, False)
    assert "ack_only" in r.flags and "仅收到受理/自动回复" in remarks(r)
    # The replying site's own acknowledgement was followed by its answer: a reply, not ack_only.
    assert rows[SLASHES].status == "replied" and "ack_only" not in rows[SLASHES].flags
