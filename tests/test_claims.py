"""Never twice, and never burnt for nothing: what can go wrong between the claim and the final
click releases the claim (nothing was sent; the letter is tried again later, the attempt counted),
and what a template can get wrong is refused when it loads, before any letter is claimed.

Through `mailbox-bot replay --submit` as an inspector runs it, against the sandbox.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import SimClock
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState
from conftest import REPO, one_line_error

SITE = "宝鸡市气象局"
ROSTER = {
    "campaign": {"name": "claims", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [{"name": SITE, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"], "slug": "qxj",
              "captcha": True}],
}


@pytest.fixture
def world(tmp_path):
    roster = roster_from_dict(ROSTER)
    with Sandbox(roster, SimClock(roster.campaign.submit_at)) as sandbox:
        scenarios = tmp_path / "scenarios"
        shutil.copytree(REPO / "scenarios" / "platforms", scenarios / "platforms")
        (tmp_path / "mailbox-bot.toml").write_text(f'[paths]\nscenarios_dir = "{scenarios}"\n'
                                                   f'evidence_dir = "{tmp_path / "evidence"}"\n', encoding="utf-8")
        site = tmp_path / "qxj.toml"
        site.write_text(f'name = "{SITE}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(SITE)}"\n'
                        'platform = "legacy"\nmailboxes = ["leader"]\ncaptcha_solver = "solver:solve"\n', encoding="utf-8")
        yield sandbox, site, scenarios


def _solver(tmp_path: Path, body: str) -> None:
    # The inspector's own hook module, in the working directory the command runs in.
    (tmp_path / "solver.py").write_text(body, encoding="utf-8")


def test_a_failing_solver_hook_releases_the_claim_and_the_letter_goes_out_later(world, run_cli, tmp_path, db_url):
    sandbox, site, _ = world
    _solver(tmp_path, "def solve(image, site):\n    raise RuntimeError('solver service down')\n")
    r = run_cli("-c", "mailbox-bot.toml", "replay", str(site), "--submit", "--campaign", "c")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "planned" in r.stdout and "RuntimeError: solver service down" in r.stdout and "nothing was sent" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert sandbox.received() == []
    with Database(db_url).session() as s:
        letter = s.query(m.Letter).one()
        assert (letter.state, letter.attempts, letter.final_click_at) == (LetterState.PLANNED, 1, None)
        assert [e.to_state for e in letter.events] == [LetterState.PLANNED, LetterState.SUBMITTING, LetterState.PLANNED]

    # The hook mended: the same letter is sent, once, at its second attempt.
    _solver(tmp_path, "from bot.sandbox.captcha import solve\n")
    r = run_cli("-c", "mailbox-bot.toml", "replay", str(site), "--submit", "--campaign", "c")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x.site for x in sandbox.received()] == [SITE]
    with Database(db_url).session() as s:
        letter = s.query(m.Letter).one()
        assert (letter.state, letter.attempts) == (LetterState.SUBMITTED, 2)
        assert letter.final_click_at is not None


@pytest.mark.parametrize("edit,key,words", [
    (('value = "{letter.title}"', 'value = "{letter.titel}"'), "flows.submit.steps[3].value", "{letter.titel}"),
    (("success = \"@success\"", "sucess = \"@success\""), "flows.submit.steps.8.outcomes.sucess", "sucess"),
], ids=["unknown-variable", "unknown-outcome"])
def test_a_template_mistake_is_refused_when_it_loads(world, run_cli, tmp_path, db_url, edit, key, words):
    sandbox, site, scenarios = world
    template = scenarios / "platforms" / "legacy.toml"
    text = template.read_text(encoding="utf-8")
    assert edit[0] in text
    template.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    _solver(tmp_path, "from bot.sandbox.captcha import solve\n")
    r = run_cli("-c", "mailbox-bot.toml", "replay", str(site), "--submit", "--campaign", "c")
    line = one_line_error(r, "legacy.toml", key, words)
    assert "Traceback" not in line
    assert sandbox.received() == []
    assert not Path(db_url.removeprefix("sqlite:///")).exists() or Database(db_url).session().query(m.Letter).count() == 0


def test_a_misspelled_override_key_is_refused(world, run_cli, tmp_path):
    sandbox, site, _ = world
    site.write_text(site.read_text(encoding="utf-8") + '\n[overrides.selectors]\ntitel = "#newTitle"\n', encoding="utf-8")
    r = run_cli("-c", "mailbox-bot.toml", "replay", str(site))
    one_line_error(r, "qxj.toml", "overrides.selectors.titel", "title")
    assert sandbox.received() == []


# --- claims between workers, on SQLite and on PostgreSQL ------------------------------------

def test_two_workers_in_two_threads_take_each_letter_once(any_db_url):
    """Two workers (each with its own connection pool, as two daemons have) race for the same
    due letters: every submission claim and every poll claim goes to exactly one of them."""
    import threading
    from datetime import timedelta

    from bot.calendar import WorkCalendar
    from bot.campaign.worker import CampaignWorker

    start = roster_from_dict(ROSTER).campaign.submit_at
    clock = SimClock(start)
    setup = Database(any_db_url)
    with setup.session() as s:
        site = m.Site(key="qxj", name=SITE, group="市级部门网站", base_url="http://127.0.0.1:1/", platform="legacy")
        campaign = m.Campaign(name="race", created_at=start)
        s.add_all([site, campaign])
        s.flush()
        for i in range(30):
            mb = m.Mailbox(site=site, kind=f"k{i}", label="领导信箱")
            s.add(mb)
            s.flush()
            s.add(m.Letter(campaign_id=campaign.id, mailbox_id=mb.id, title=f"t{i}", body="b", state=LetterState.PLANNED,
                           state_changed_at=start, planned_at=start, next_poll_at=start - timedelta(minutes=1)))
        s.commit()
        ids = list(s.scalars(select(m.Letter.id).order_by(m.Letter.id)))
    setup.dispose()

    dbs = [Database(any_db_url) for _ in range(2)]
    workers = [CampaignWorker(db, clock, None, None, WorkCalendar(), {}) for db in dbs]
    barrier = threading.Barrier(2)
    taken: list[dict[str, list[int]]] = [{"submit": [], "poll": []} for _ in workers]
    errors: list[BaseException] = []

    def race(i: int) -> None:
        try:
            barrier.wait()
            order = ids if i == 0 else list(reversed(ids))
            for lid in order:
                if workers[i]._claim(lid):
                    taken[i]["submit"].append(lid)
                if workers[i]._claim_poll(lid):
                    taken[i]["poll"].append(lid)
        except BaseException as e:          # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        for kind in ("submit", "poll"):
            a, b = set(taken[0][kind]), set(taken[1][kind])
            assert not a & b, f"{kind}: taken twice: {sorted(a & b)}"
            assert a | b == set(ids), kind
        with dbs[0].session() as s:
            for letter in s.scalars(select(m.Letter)):
                assert (letter.state, letter.attempts) == (LetterState.SUBMITTING, 1)
                assert [e.to_state for e in letter.events] == [LetterState.SUBMITTING]
    finally:
        for db in dbs:
            db.dispose()


def test_replay_submit_then_report_on_postgres(world, run_cli, tmp_path, postgres_url):
    """The inspector's door with the database in PostgreSQL: `replay --submit` sends the letter
    once and records it (tracking code, evidence step names: page text, unbounded there), and
    `report --json` reads it back."""
    import json

    sandbox, site, _ = world
    env = {"MAILBOX_BOT_DATABASE_URL": postgres_url}
    _solver(tmp_path, "from bot.sandbox.captcha import solve\n")
    r = run_cli("-c", "mailbox-bot.toml", "replay", str(site), "--submit", "--campaign", "c", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x.site for x in sandbox.received()] == [SITE]
    database = Database(postgres_url)
    with database.session() as s:
        letter = s.query(m.Letter).one()
        assert (letter.state, letter.attempts) == (LetterState.SUBMITTED, 1) and letter.tracking_code
    database.dispose()
    r = run_cli("-c", "mailbox-bot.toml", "report", "c", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert [(row["site"], row["letter_id"]) for row in rows] == [(SITE, letter.id)]
    assert rows[0]["submitted_at"] is not None
