"""The captcha with a human in the loop, on every archetype that can show one.

The inspector at the terminal (the image saved, its path shown, the answer read from standard
input); a configured solver hook; a wrong answer then a right one (the site refuses, a new image,
exactly one letter arrives); an unattended run where no one answers (the letter waits for the
inspector, the others go on). Never a silent skip: every letter records who answered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_async
from sqlalchemy import select

from bot.browser.pool import Browser
from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import roster_site_records
from bot.campaign.sites import register_site
from bot.campaign.worker import CampaignWorker, Target, flow_variables
from bot.clock import SimClock
from bot.letters import LetterWriter
from bot.report import report_dict
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.sandbox.captcha import solve
from bot.scenario.loader import scenario_for
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore
from bot.vocab import LetterState

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
SITES = {"jact": "宝鸡市验证码甲局", "legacy": "宝鸡市验证码乙局", "minimal": "宝鸡市验证码丙局", "igi": "宝鸡市验证码丁局"}
PLAIN = "宝鸡市无验证码局"
ROSTER = {
    "campaign": {"name": "captcha", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [{"name": name, "group": "市级部门网站", "platform": platform, "mailboxes": ["leader"],
              "slug": f"yzm-{platform}", "captcha": True} for platform, name in SITES.items()]
            + [{"name": PLAIN, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"], "slug": "plain"}],
}


@pytest.fixture
def sandbox():
    roster = roster_from_dict(ROSTER)
    with Sandbox(roster, SimClock(roster.campaign.submit_at)) as sb:
        yield sb


class WrongFirst:
    """Reads the picture (as a person would) but types a wrong answer the first time."""

    label = "test: wrong, then right"

    def __init__(self):
        self.calls = 0

    async def answer(self, image: bytes, site: str) -> str | None:
        self.calls += 1
        right = solve(image)
        assert right is not None, "the picture could not be read"
        return right if self.calls > 1 else f"{(int(right) + 1) % 10000:04d}"


def setup_campaign(sandbox, tmp_path, names):
    db = Database(f"sqlite:///{tmp_path}/t.sqlite3")
    records = [r for r in roster_site_records(sandbox.roster, sandbox.base_url) if r.name in names]
    targets = {}
    with db.session() as s:
        for order, record in enumerate(records):
            # A site file without a solver: only the worker's answerer can help.
            record = record.model_copy(update={"captcha_solver": ""})
            site = register_site(s, record, order, source="test")
            targets[site.id] = Target(record=record, scenario=scenario_for(record, SCENARIOS), site_id=site.id)
        camp = m.Campaign(name="captcha", created_at=sandbox.clock.now(), deadline_workdays=5)
        s.add(camp)
        s.commit()
        camp_id = camp.id
    return db, targets, camp_id


def run_campaign_round(sandbox, tmp_path, names, captcha):
    db, targets, camp_id = setup_campaign(sandbox, tmp_path, names)
    calendar = WorkCalendar()

    async def go():
        async with Browser() as browser:
            worker = CampaignWorker(db, sandbox.clock, browser, EvidenceStore(tmp_path / "ev"), calendar,
                                    targets, captcha=captcha)
            with db.session() as s:
                worker.plan(s.get(m.Campaign, camp_id), LetterWriter("captcha"), at=sandbox.clock.now())
            await worker.run_due(camp_id)

    run_async(go())
    return db


@pytest.mark.parametrize("platform,slow", [("jact", 0), ("legacy", 0), ("minimal", 0), ("igi", 0), ("jact", 1500),
                                           ("igi", 1500)])
def test_a_wrong_answer_gets_a_new_image_and_the_right_one_sends_exactly_one_letter(sandbox, tmp_path, platform, slow):
    """`slow`: the site takes 1.5 s to answer each request: while the second try is on its way
    (igi posts it by XHR, the page stays), the page still shows the first try's "验证码错误".
    That stale message must not be taken for the answer to the second try: the site took that
    one, and the letter would be filled in and sent again."""
    sandbox.roster.by_name(SITES[platform]).latency_ms = slow
    answerer = WrongFirst()
    db = run_campaign_round(sandbox, tmp_path, {SITES[platform]}, answerer)
    assert answerer.calls == 2
    (received,) = sandbox.received()
    assert received.site == SITES[platform]
    with db.session() as s:
        letter = s.scalars(select(m.Letter)).one()
        assert letter.state == LetterState.SUBMITTED and letter.attempts == 1
        assert letter.captcha_by == answerer.label
        # The refused try is kept as evidence.
        assert any("captcha-wrong" in e.step for e in s.scalars(select(m.EvidenceFile)))


def test_an_unattended_run_sends_the_captcha_letters_to_the_inspector_and_goes_on(sandbox, tmp_path):
    db = run_campaign_round(sandbox, tmp_path, set(SITES.values()) | {PLAIN}, captcha=None)
    assert [x.site for x in sandbox.received()] == [PLAIN]     # the others were not sent
    with db.session() as s:
        states = {x.mailbox.site.name: (x.state, x.captcha_by) for x in s.scalars(select(m.Letter))}
    assert states == {**{n: (LetterState.NEEDS_INSPECTOR, None) for n in SITES.values()}, PLAIN: (LetterState.SUBMITTED, None)}
    rows, meta = campaign_rows(db, "captcha", WorkCalendar(), as_of=sandbox.clock.now())
    report = report_dict(rows, meta)
    assert {r["site"]: r["status"] for r in report["rows"]} == {
        **{n: "needs_inspector" for n in SITES.values()}, PLAIN: "awaiting"}
    # Waiting for the inspector is not "no reply"; a letter just sent is awaiting its deadline.
    assert report["summary"]["no_reply_sites"] == 0 and report["summary"]["awaiting_sites"] == 1
    assert all(r["within_deadline"] is None for r in report["rows"])


def test_the_inspector_answers_at_the_terminal(sandbox, tmp_path, db_url):
    name = SITES["legacy"]
    site = tmp_path / "site.toml"
    site.write_text(f'name = "{name}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(name)}"\n'
                    'platform = "legacy"\nmailboxes = ["leader"]\n', encoding="utf-8")
    env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url}
    env.pop("MAILBOX_BOT_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "replay", str(site), "--submit", "--campaign", "c"],
                            cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    prompt = ""
    while not prompt.endswith("type what it shows: "):
        ch = proc.stderr.read(1)
        assert ch, f"no captcha prompt; stderr so far: {prompt!r}"
        prompt += ch
    path = Path(re.search(r"open (\S+\.png) and type", prompt).group(1))
    image = (path if path.is_absolute() else tmp_path / path).read_bytes()
    out, err = proc.communicate(solve(image) + "\n", timeout=120)   # the inspector reads the picture
    assert proc.returncode == 0, out + err
    assert "submitted" in out
    assert [x.site for x in sandbox.received()] == [name]
    report = subprocess.run([sys.executable, "-m", "bot", "report", "c", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert '"captcha": "inspector at the terminal"' in report.stdout, report.stdout + report.stderr


def test_a_site_without_a_captcha_shows_none_and_none_is_claimed(sandbox, tmp_path):
    db = run_campaign_round(sandbox, tmp_path, {PLAIN}, captcha=WrongFirst())
    with db.session() as s:
        letter = s.scalars(select(m.Letter)).one()
        assert (letter.state, letter.captcha_by) == (LetterState.SUBMITTED, None)
