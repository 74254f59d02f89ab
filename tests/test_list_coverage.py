"""A letter watched on a public list that moves (other citizens write every day: the sandbox's
roster `traffic`), with the real Chromium, the sandbox and a real SQLite file.

The letters here are watched on the list because their submission was interrupted: the site's
success page is one the template does not recognise (a redesign), so the letter is
`submit_uncertain`, found on the public list by its title and watched there from then on.
The list has no search in these templates: it is read page by page (newest first).

- 40 letters a day push the letter to page 2, 3, ...: read back far enough, it is found there,
  its reply seen (2 working days), never "deleted";
- a site that really deletes it: covered misses (rows older than the letter read) prove it;
- a page limit that cannot reach the letter: every look is `not_covered`; never deleted, and
  after the deadline not "no reply" either, but unverified.
"""

from __future__ import annotations

import re
import shutil

import pytest

from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import simulate
from bot.config import load_config
from bot.report import report_dict
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.clock import SimClock
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState
from conftest import REPO, run_async

pytestmark = pytest.mark.slow

MOVED = "宝鸡市挪页局"
DELETER = "宝鸡市删信局"
ROSTER = {
    "campaign": {"name": "moving-list", "submit_at": "2024-05-06T10:00:00+08:00",
                 "end_at": "2024-05-13T18:00:00+08:00", "poll_every": "2h"},
    "site": [
        {"name": MOVED, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "ny",
         "traffic": 40, "reply": {"workdays": 2, "at": "15:00"}},
        {"name": DELETER, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "sx",
         "traffic": 40, "delete": {"workdays": 1, "at": "11:00"}},
    ],
}


def _template(scenarios, max_pages: int) -> None:
    """jact as a new user might have it: a success marker the redesigned site no longer shows,
    and a list without the search, read page by page up to `max_pages`."""
    shutil.copytree(REPO / "scenarios" / "platforms", scenarios / "platforms")
    jact = scenarios / "platforms" / "jact.toml"
    text = jact.read_text(encoding="utf-8")
    text = text.replace('success = "#submitSuccess"', 'success = "#submitSuccessV2"')
    text = text.replace('params = { key = "{letter.title}" }, ', "")
    text = re.sub(r"max_pages = \d+", f"max_pages = {max_pages}", text)
    text = text.replace('version = 1\n', 'version = 1\ntimeout_ms = 4000\n', 1)
    jact.write_text(text, encoding="utf-8")


def play(tmp, max_pages: int):
    scenarios = tmp / "scenarios"
    _template(scenarios, max_pages)
    roster = roster_from_dict(ROSTER)
    clock = SimClock(roster.campaign.submit_at)
    db = Database(f"sqlite:///{tmp / 'list.sqlite3'}")
    base = load_config()
    config = base.model_copy(update={"paths": base.paths.model_copy(update={"scenarios_dir": str(scenarios)})})
    with Sandbox(roster, clock) as sandbox:
        run_async(simulate(roster, clock, sandbox.base_url, db, config, tmp / "evidence", WorkCalendar()))
        received = sandbox.received()
    rows, meta = campaign_rows(db, roster.campaign.name, WorkCalendar(), as_of=roster.campaign.end_at)
    return db, received, {r["site"]: r for r in report_dict(rows, meta)["rows"]}


def letter_of(s, site: str) -> m.Letter:
    return s.query(m.Letter).join(m.Mailbox).join(m.Site).filter(m.Site.name == site).one()


@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    return play(tmp_path_factory.mktemp("paged"), max_pages=20)


def test_the_letters_went_out_once_and_were_found_on_the_list(paged):
    db, received, rows = paged
    assert sorted(x.site for x in received) == sorted([MOVED, DELETER])      # once each
    with db.session() as s:
        for site in (MOVED, DELETER):
            letter = letter_of(s, site)
            path = [e.to_state for e in letter.events]
            assert LetterState.SUBMIT_UNCERTAIN in path and LetterState.SUBMITTED in path, path
            assert letter.tracking_code == next(x.tracking_code for x in received if x.site == site)


def test_a_letter_pushed_down_the_list_is_found_there_and_its_reply_seen(paged):
    db, received, rows = paged
    r = rows[MOVED]
    assert (r["status"], r["working_days"], r["within_deadline"]) == ("replied", 2, True), r
    with db.session() as s:
        letter = letter_of(s, MOVED)
        assert LetterState.DELETED not in [e.to_state for e in letter.events]
        pages = [int(p) for o in letter.observations
                 for p in re.findall(r"found on page (\d+)", (o.detail or {}).get("message", ""))]
    assert pages and max(pages) >= 2, pages            # it had moved, and was read back to
    assert "not_covered_polls" not in r["flags"]


def test_a_letter_the_site_deleted_is_deleted_by_covered_misses(paged):
    db, received, rows = paged
    r = rows[DELETER]
    assert r["status"] == "deleted" and r["within_deadline"] is False
    with db.session() as s:
        letter = letter_of(s, DELETER)
        misses = [o for o in letter.observations if o.outcome == "not_found"]
        assert len(misses) >= 2
        # Each miss read back to a row older than the letter (or to the end): it proves absence.
        assert all("older than the letter" in o.detail["message"] or "to its end" in o.detail["message"]
                   for o in misses), [o.detail for o in misses]


def test_a_list_read_not_far_enough_proves_nothing(tmp_path):
    db, received, rows = play(tmp_path, max_pages=1)
    r = rows[MOVED]
    with db.session() as s:
        outcomes = [o.outcome for o in letter_of(s, MOVED).observations]
    assert "not_covered" in outcomes
    assert r["status"] != "deleted" and "not_covered_polls" in r["flags"]
    # The reply was there, on a page never read: past the deadline that is not "no reply".
    assert r["status"] == "unverified" and r["within_deadline"] is None
