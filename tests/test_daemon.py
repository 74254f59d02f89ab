"""The daemon (`mailbox-bot run`) against the sandbox, on a clock both share that runs 300 times
as fast as the wall clock: letters go out only inside the send window of working days; killed
with SIGKILL at random moments over and over, it never sends a letter twice (the sandbox counts
what it received) and every letter ends submitted or `submit_uncertain`; a restart picks up the
polling where it stopped; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, time as dtime, timedelta

import pytest
from sqlalchemy import func, select

from bot.calendar import WorkCalendar
from bot.clock import SHANGHAI, ScaledClock, local
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

START = datetime(2024, 4, 26, 8, 40, tzinfo=SHANGHAI)   # a Friday, before the send window
SPEED = 300.0                                              # one real second = five minutes
CRASH_ROUNDS = int(os.environ.get("MAILBOX_BOT_CRASH_ROUNDS", "10"))
SITES = [("宝鸡市人民政府", "jact", ["leader", "mayor"], "bj"), ("宝鸡市教育局", "legacy", ["leader"], "jyj"),
         ("宝鸡市统计局", "minimal", ["leader"], "tjj"), ("宝鸡市林业局", "jact", ["leader"], "lyj"),
         ("宝鸡市审计局", "minimal", ["leader"], "sjj"), ("宝鸡市气象局", "legacy", ["leader"], "qxj"),
         ("宝鸡市商务局", "jact", ["leader"], "swj"), ("宝鸡市体育局", "minimal", ["leader"], "tyj")]
ROSTER = {
    "campaign": {"name": "daemon", "submit_at": "2024-04-26T09:00:00+08:00", "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [{"name": n, "group": "政府门户网站" if p == "jact" and len(mb) == 2 else "市级部门网站", "platform": p,
              "mailboxes": mb, "slug": slug, "reply": {"workdays": 2, "at": "10:00"}} for n, p, mb, slug in SITES],
}
LETTERS = sum(len(mb) for _, _, mb, _ in SITES)


@pytest.fixture
def world(tmp_path, db_url):
    clock = ScaledClock(START, time.time(), SPEED)
    roster = roster_from_dict(ROSTER)
    with Sandbox(roster, clock) as sandbox:
        sites = tmp_path / "sites"
        sites.mkdir()
        for name, platform, mailboxes, slug in SITES:
            (sites / f"{slug}.toml").write_text(
                f'name = "{name}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(name)}"\n'
                f'platform = "{platform}"\nmailboxes = {mailboxes!r}\nregion = "宝鸡市"\n'.replace("'", '"'),
                encoding="utf-8")
        campaign = tmp_path / "campaign.toml"
        campaign.write_text('name = "2024Q2-daemon"\nsites = ["sites/*.toml"]\ndeadline_workdays = 5\n'
                            'start = 2024-04-26\n\n[send_window]\nstart = "09:00"\nend = "17:30"\njitter = "5m"\n\n'
                            '[rate_limit]\nper_host = "3m"\n\n[poll]\nevery = "30m"\n', encoding="utf-8")
        config = tmp_path / "mailbox-bot.toml"
        # Unattended: the sandbox's captchas are read by the solver hook (jact always shows one).
        config.write_text(f'[paths]\nevidence_dir = "{tmp_path / "evidence"}"\n'
                          f'sessions_dir = "{tmp_path / "sessions"}"\n\n'
                          '[captcha]\nsolver = "bot.sandbox.captcha:solve"\n', encoding="utf-8")
        env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url, "MAILBOX_BOT_CLOCK": clock.spec()}
        env.pop("MAILBOX_BOT_CONFIG", None)
        try:
            yield sandbox, clock, campaign, config, env, Database(db_url), tmp_path
        finally:
            # A test that failed while a daemon ran must not leave it running (it would go on
            # working through the rest of the suite).
            for proc in _STARTED.pop(id(config), []):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)


_STARTED: dict[int, list] = {}


def cli(world, *args, check=True):
    sandbox, clock, campaign, config, env, db, tmp = world
    r = subprocess.run([sys.executable, "-m", "bot", "-c", str(config), *args], cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def daemon(world, log_json=True):
    sandbox, clock, campaign, config, env, db, tmp = world
    args = [sys.executable, "-m", "bot", "-c", str(config), "run", "--tick", "0.3"] + (["--log-json"] if log_json else [])
    # Its own process group: a SIGKILL takes the browser with it, as a crash of the machine would.
    proc = subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _STARTED.setdefault(id(config), []).append(proc)
    return proc


def crash(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def states(db) -> Counter:
    with db.session() as s:
        return Counter(s.scalars(select(m.Letter.state)))


def wait_until(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def settled(db) -> bool:
    """Every letter out, or known to be uncertain and no longer being looked for."""
    with db.session() as s:
        looking = s.scalar(select(func.count()).select_from(m.Letter).where(
            m.Letter.state == LetterState.SUBMIT_UNCERTAIN, m.Letter.next_poll_at.is_not(None)))
    st = states(db)
    return (sum(st.values()) == LETTERS and not looking
            and not (st[LetterState.PLANNED] or st[LetterState.SUBMITTING] or st[LetterState.SUBMIT_FAILED]))


@pytest.mark.slow
def test_killed_again_and_again_it_never_sends_twice_and_resumes(world):
    sandbox, clock, campaign, config, env, db, tmp = world
    cli(world, "campaign", "start", str(campaign))
    assert states(db) == {LetterState.PLANNED: LETTERS}

    rng = random.Random(os.environ.get("MAILBOX_BOT_CRASH_SEED", "daemon"))
    rounds = 0
    while rounds < CRASH_ROUNDS:               # during submissions, then during polls
        before = _work(db)
        proc = daemon(world)
        # Each kill lands in the middle of work the daemon is doing: after it recorded something
        # (at night or over a weekend the next work may be hours away on the shared clock).
        wait_until(lambda: _work(db) > before, timeout=_until_next_work(db, clock))
        time.sleep(rng.uniform(0.0, 2.0))
        crash(proc)
        rounds += 1
    assert rounds == CRASH_ROUNDS
    # The last run goes on until every letter is out (or known to be uncertain), then SIGTERM.
    proc = daemon(world)
    wait_until(lambda: settled(db), timeout=240)
    if states(db)[LetterState.SUBMITTED]:
        polls_before = _observations(db)
        wait_until(lambda: _observations(db) > polls_before, timeout=_until_next_poll(db, clock))  # it polls on
    proc.send_signal(signal.SIGTERM)            # as a service manager stops it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert '"event": "stopped"' in err and "Traceback" not in err, err[-3000:]

    received = Counter((x.slug, x.mailbox) for x in sandbox.received())
    assert all(n == 1 for n in received.values()), received          # never twice
    st = states(db)
    resolved: list[int] = []
    released = 0
    with db.session() as s:
        letters = s.scalars(select(m.Letter)).all()
        for letter in letters:
            key = (letter.mailbox.site.base_url.rstrip("/").rsplit("/", 1)[1], letter.mailbox.kind)
            submitted_events = [e for e in letter.events if e.to_state == LetterState.SUBMITTED]
            assert len(submitted_events) <= 1
            # A claim that expired before the final click went back to planned: nothing was sent.
            released += sum(1 for e in letter.events if e.to_state == LetterState.PLANNED and "before the final click" in e.reason)
            if letter.state in (LetterState.SUBMITTED, LetterState.REPLIED, LetterState.OVERDUE):
                assert received[key] == 1, (key, letter.state)
                when = local(letter.submitted_at)
                # Inside the send window (09:00-17:30, a few minutes for the form itself) of a working
                # day (a retry that would fall after it waits for the next window).
                assert WorkCalendar().is_workday(when.date()) and dtime(9, 0) <= when.time() <= dtime(17, 45), when
            else:
                assert letter.state == LetterState.SUBMIT_UNCERTAIN, letter.state
                assert "never resubmitted" in letter.events[-1].reason
                # Only a kill after the final click leaves a letter uncertain: the moment was
                # committed before the click.
                assert letter.final_click_at is not None, [e.reason for e in letter.events]
                assert any("after the final click" in e.reason for e in letter.events), [e.reason for e in letter.events]
                if letter.mailbox.site.platform == "jact":
                    # jact has a public list: a letter the site got would have been found there.
                    assert received[key] == 0, (key, [e.reason for e in letter.events])
            if any(e.to_state == LetterState.SUBMIT_UNCERTAIN for e in letter.events) and letter.state != LetterState.SUBMIT_UNCERTAIN:
                resolved.append(letter.id)
    assert st[LetterState.SUBMITTED] + st[LetterState.REPLIED] + st[LetterState.OVERDUE] + st[LetterState.SUBMIT_UNCERTAIN] == LETTERS
    # Progress: every letter whose kill came before its final click was sent in a later run.
    assert st[LetterState.PLANNED] == st[LetterState.SUBMITTING] == 0
    print(f"\n{rounds} crash rounds; final states {dict(st)}; sandbox received {sum(received.values())}; "
          f"{released} claims released before the final click; "
          f"{len(resolved)} uncertain letters resolved from the public list")


def _work(db) -> int:
    """Everything the daemon records as it works: state changes and looks at the sites."""
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(m.LetterEvent)) or 0) + _observations(db)


def _until_next_poll(db, clock) -> float:
    """Real seconds until the next poll is due on the shared clock (a night can lie between),
    with room for the poll itself."""
    with db.session() as s:
        nxt = s.scalar(select(func.min(m.Letter.next_poll_at)).where(m.Letter.next_poll_at.is_not(None)))
    return max(0.0, (nxt - clock.now()).total_seconds() / SPEED) + 60


def _until_next_work(db, clock) -> float:
    """Real seconds until anything is due: a submission, a poll, or a claim's lease running out."""
    with db.session() as s:
        due = [s.scalar(select(func.min(m.Letter.next_poll_at))),
               s.scalar(select(func.min(m.Letter.planned_at)).where(
                   m.Letter.state.in_((LetterState.PLANNED, LetterState.SUBMIT_FAILED)))),
               s.scalar(select(func.min(m.Letter.lease_until)).where(m.Letter.state == LetterState.SUBMITTING))]
    due = [t for t in due if t is not None]
    if not due:
        return 60.0
    return max(0.0, (min(due) - clock.now()).total_seconds() / SPEED) + 60


def test_a_stop_signal_at_any_moment_of_the_start_ends_it_cleanly(world):
    """SIGTERM while the daemon is still starting (imports, database, browser): exit 0 and
    `stopped` logged, never killed by the signal."""
    cli(world, "campaign", "start", str(world[2]))
    for delay in (0.2, 0.5, 1.0, 1.6, 2.5):
        proc = daemon(world)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (delay, proc.returncode, err[-2000:])
        assert '"event": "stopped"' in err and "Traceback" not in err, (delay, err[-2000:])


def _observations(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(m.Observation)) or 0


def test_bad_tick_is_one_line(world):
    r = cli(world, "run", "--tick", "0", check=False)
    assert r.returncode == 2 and "--tick" in r.stderr and r.stderr.count("\n") == 1


def test_a_crash_between_the_click_and_the_record_is_resolved_from_the_public_list(world):
    """The site took the letter, the daemon died before writing down the answer: on restart the
    claim expires to `submit_uncertain`, the letter is found on the public list by its title and
    watched from then on; it is not sent again."""
    sandbox, clock, campaign, config, env, db, tmp = world
    # One slow jact site: its answer to the form's POST comes 4 s (20 simulated minutes) late.
    slow = sandbox.roster.by_name("宝鸡市林业局")
    slow.latency_ms = 4000
    campaign.write_text(campaign.read_text().replace('sites = ["sites/*.toml"]', 'sites = ["sites/lyj.toml"]'))
    cli(world, "campaign", "start", str(campaign))
    proc = daemon(world)
    wait_until(lambda: sandbox.received(), timeout=120)      # the site has it; the answer is on its way
    crash(proc)
    assert states(db) == {LetterState.SUBMITTING: 1}
    slow.latency_ms = 0
    proc = daemon(world)
    wait_until(lambda: states(db) == {LetterState.SUBMITTED: 1}, timeout=120)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert len(sandbox.received()) == 1
    with db.session() as s:
        letter = s.scalars(select(m.Letter)).one()
        path = [e.to_state for e in letter.events]
        assert path[-3:] == [LetterState.SUBMITTING, LetterState.SUBMIT_UNCERTAIN, LetterState.SUBMITTED], path
        assert "found on the public list" in letter.events[-1].reason
        assert letter.tracking_code == sandbox.received()[0].tracking_code


def test_the_recurrence_starts_the_next_campaign_on_its_working_day(world):
    """Every quarter, on the first Tuesday of its first month: Q4 2024 begins with the National
    Day holiday (Tuesday 10-01 is off), so the next campaign starts on Tuesday 10-08; once."""
    from bot.campaign.control import start_campaign
    from bot.campaign.spec import load_campaign_spec
    from bot.clock import SimClock
    from bot.config import load_config
    from bot.daemon import Daemon, EventLog

    sandbox, _clock, campaign, config, env, db, tmp = world
    campaign.write_text(campaign.read_text().replace("start = 2024-04-26", "start = 2024-07-10")
                        + '\n[recurrence]\nevery = "quarter"\nmonth = 1\nweekday = "tue"\nnth = 1\n')
    clock = SimClock(datetime(2024, 7, 10, 8, 0, tzinfo=SHANGHAI))
    cfg = load_config(config)
    start_campaign(db, load_campaign_spec(campaign), clock, WorkCalendar(), cfg)
    lines = []
    d = Daemon(db, cfg, clock, WorkCalendar(), targets_for=lambda *_: {}, log=EventLog(clock, stream=_Lines(lines)))
    clock.set(datetime(2024, 10, 7, 23, 59, tzinfo=SHANGHAI))
    assert d.start_recurring() == []
    clock.set(datetime(2024, 10, 8, 7, 0, tzinfo=SHANGHAI))
    assert d.start_recurring() == ["2024Q2-daemon-20241008"]
    assert d.start_recurring() == []                                   # once
    with db.session() as s:
        new = s.scalar(select(m.Campaign).where(m.Campaign.name == "2024Q2-daemon-20241008"))
        planned = [local(x.planned_at) for x in new.letters]
    assert len(planned) == LETTERS
    assert all(p.date() == date(2024, 10, 8) and dtime(9, 0) <= p.time() <= dtime(17, 30) for p in planned), planned
    assert any('campaign_started campaign=2024Q2-daemon-20241008' in line for line in lines)


class _Lines:
    def __init__(self, lines):
        self.lines = lines

    def write(self, text):
        if text.strip():
            self.lines.append(text.strip())

    def flush(self):
        pass


def test_a_site_reachable_only_through_its_proxy_is_written_to_through_it(world):
    """The campaign file's proxy is set on the browser context: the site's host name resolves
    nowhere, and the sandbox, acting as the proxy, serves it."""
    sandbox, clock, campaign, config, env, db, tmp = world
    site = tmp / "sites" / "lyj.toml"
    site.write_text(site.read_text().replace(sandbox.url, "http://lyj.mailbox-bot.invalid"), encoding="utf-8")
    campaign.write_text(campaign.read_text().replace('sites = ["sites/*.toml"]', 'sites = ["sites/lyj.toml"]')
                        + f'\n[proxy]\nserver = "{sandbox.url}"\n')
    cli(world, "campaign", "start", str(campaign))
    proc = daemon(world)
    try:
        wait_until(lambda: states(db) == {LetterState.SUBMITTED: 1}, timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert [x.site for x in sandbox.received()] == ["宝鸡市林业局"]


def test_letters_due_while_the_daemon_was_down_wait_for_the_next_window_of_a_working_day(world):
    """Down from Friday's window to Saturday noon: nothing goes out on Saturday (a day off); the
    backlog waits for Sunday 04-28 09:00, a make-up working day, the host spacing apart; and
    May Day (05-01..05-05) is skipped likewise."""
    from bot.campaign.control import start_campaign
    from bot.campaign.spec import load_campaign_spec
    from bot.clock import SimClock
    from bot.config import load_config
    from bot.daemon import Daemon, EventLog

    sandbox, _clock, campaign, config, env, db, tmp = world
    clock = SimClock(datetime(2024, 4, 26, 8, 0, tzinfo=SHANGHAI))
    cfg = load_config(config)
    cid = start_campaign(db, load_campaign_spec(campaign), clock, WorkCalendar(), cfg)
    d = Daemon(db, cfg, clock, WorkCalendar(), targets_for=lambda *_: {}, log=EventLog(clock, stream=_Lines([])))
    clock.set(datetime(2024, 4, 27, 12, 0, tzinfo=SHANGHAI))          # Saturday
    with db.session() as s:
        assert d.hold_outside_window(s.get(m.Campaign, cid)) == LETTERS
        planned = sorted(local(x.planned_at) for x in s.get(m.Campaign, cid).letters)
    assert planned[0] == datetime(2024, 4, 28, 9, 0, tzinfo=SHANGHAI)
    assert all(b - a == timedelta(minutes=3) for a, b in zip(planned, planned[1:]))
    clock.set(datetime(2024, 4, 30, 18, 0, tzinfo=SHANGHAI))          # Tuesday evening, May Day ahead
    with db.session() as s:
        d.hold_outside_window(s.get(m.Campaign, cid))
        assert min(local(x.planned_at) for x in s.get(m.Campaign, cid).letters) == \
            datetime(2024, 5, 6, 9, 0, tzinfo=SHANGHAI)
        clock.set(datetime(2024, 5, 6, 10, 0, tzinfo=SHANGHAI))      # inside the window: nothing moves
        assert d.hold_outside_window(s.get(m.Campaign, cid)) == 0


def test_a_second_daemon_on_one_sqlite_database_is_refused_in_one_line(world):
    """SQLite has one writer at a time: several daemons need PostgreSQL. The first runs; the
    second says why it will not, in one line; once the first is gone (even killed), one starts."""
    first = daemon(world)
    try:
        wait_until(lambda: first.pid in _present(world[5]), timeout=60)
        second = cli(world, "run", "--tick", "0.3", check=False)
        assert second.returncode == 2, second.stderr
        lines = [x for x in second.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and "another daemon" in lines[0] and "PostgreSQL" in lines[0], second.stderr
    finally:
        crash(first)
    again = daemon(world)
    try:
        wait_until(lambda: again.pid in _present(world[5]), timeout=60)
        assert again.poll() is None
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    assert again.returncode == 0


def _present(db) -> set[int]:
    """The process ids of the daemons whose presence is in the database."""
    with db.session() as s:
        return {(x.detail or {}).get("pid") for x in s.scalars(select(m.Lease).where(m.Lease.name.startswith("daemon:")))}
