"""Campaign files: strict validation, send windows on real 2024-2026 calendars, recurrence,
plan / start / status / stop (library and command line). No browser: planning sends nothing."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from conftest import REPO, one_line_error
from sqlalchemy import select

from bot.calendar import WorkCalendar
from bot.campaign.control import (build_targets, campaign_spec, campaign_status, plan_campaign, running_campaigns,
                                  start_campaign, stop_campaign)
from bot.campaign.spec import Recurrence, SendWindow, load_campaign_spec, spec_from_settings
from bot.campaign.window import next_occurrence, send_times
from bot.clock import SHANGHAI, SimClock, local
from bot.config import Config, PathsConfig
from bot.errors import ConfigError, UserError
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

CAL = WorkCalendar()
SANDBOX_SITES = REPO / "scenarios" / "sites"
EXAMPLE = REPO / "campaigns" / "example-quarterly.toml"
FRI_AFTER_WINDOW = datetime(2024, 4, 26, 16, 0, tzinfo=SHANGHAI)   # Friday, after 11:30


def site_file(folder: Path, key: str, name: str, host: str, mailboxes=("leader", "mayor"), extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.toml"
    boxes = ", ".join(f'"{b}"' for b in mailboxes)
    path.write_text(f'name = "{name}"\ngroup = "市级部门网站"\nbase_url = "http://{host}/x"\nplatform = "jact"\n'
                    f'platform_version = 1\nmailboxes = [{boxes}]\n{extra}', encoding="utf-8")
    return path


def campaign_file(folder: Path, body: str, name: str = "c.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def roster_dir(tmp_path) -> Path:
    """Three sites: two on one host, one with a leader mailbox only. Their hosts are reserved test
    names (RFC 6761 .test): these tests are about planning, and a site that may be real is
    planned only with identities that have a phone (tests/test_contact_safety.py)."""
    sites = tmp_path / "sites"
    site_file(sites, "a-portal", "甲市人民政府", "www.a.test")
    site_file(sites, "b-police", "甲市公安局", "shared.test")
    site_file(sites, "c-water", "甲市水务局", "shared.test", mailboxes=("leader",))
    return tmp_path


def config_for(tmp_path: Path, accounts: str | None = None) -> Config:
    path = tmp_path / "accounts.toml"
    if accounts is not None:
        path.write_text(accounts, encoding="utf-8")
    return Config(paths=PathsConfig(accounts_file=str(path)))


ACCOUNTS = """
[[identity]]
name = "inspector-1"
email = "one@example.org"
[[identity]]
name = "inspector-2"
email = "two@example.org"
"""


# --- validation -----------------------------------------------------------------------------

def _error(tmp_path: Path, body: str) -> str:
    path = campaign_file(tmp_path / "bad", body)
    with pytest.raises(ConfigError) as e:
        spec = load_campaign_spec(path)
        spec.site_files()
        spec.site_entries(None, REPO / "scenarios")
    text = str(e.value)
    assert "\n" not in text and str(path) in text, text
    return text


BASE = 'name = "x"\nsites = ["../sites/*.toml"]\n'


@pytest.mark.parametrize("body, needles", [
    (BASE + "deadline_days = 5\n", ["key 'deadline_days'", "unknown key", "deadline_workdays"]),
    (BASE + '[send_window]\nstart = "9h"\n', ["key 'send_window.start'", "HH:MM", "'9h'"]),
    (BASE + '[send_window]\nstart = "25:00"\n', ["key 'send_window.start'", "'25:00'"]),
    (BASE + '[send_window]\nstart = "11:30"\nend = "09:00"\n', ["key 'send_window'", "not after"]),
    (BASE + 'cutoff = "5pm"\n', ["key 'cutoff'", "'5pm'"]),
    (BASE + 'watch_after_deadline = "ten days"\n', ["key 'watch_after_deadline'", "'ten days'"]),
    (BASE + '[rate_limit]\nper_host = "0m"\n', ["key 'rate_limit.per_host'", "'0m'"]),
    (BASE + 'deadline_workdays = "5"\n', ["key 'deadline_workdays'", "whole number", "'5'"]),
    (BASE + 'mailboxes = ["leader", "boss"]\n', ["key 'mailboxes[1]'", "'boss'"]),
    (BASE + 'start = 2026-12-01T09:00:00\n', ["key 'start'", "a date"]),
    ('name = "x"\nsites = ["../nowhere/*.toml"]\n', ["key 'sites[0]'", "'../nowhere/*.toml'", "matches no site file"]),
    ('name = "x"\nsites = ["../sites/missing.toml"]\n', ["key 'sites[0]'", "no site file", "missing.toml"]),
    ('sites = ["../sites/*.toml"]\n', ["key 'name'", "required"]),
    (BASE + '[recurrence]\nevery = "week"\nweekday = "tue"\n', ["key 'recurrence.every'", "'week'", "quarter"]),
    (BASE + '[recurrence]\nevery = "quarter"\nmonth = 4\nweekday = "tue"\n', ["key 'recurrence.month'", "<= 3", "4"]),
    (BASE + '[recurrence]\nevery = "quarter"\nweekday = "tuesday"\n', ["key 'recurrence.weekday'", "'tuesday'"]),
    (BASE + '[recurrence]\nevery = "month"\nmonth = 2\nweekday = "tue"\n', ["key 'recurrence.month'", "quarter"]),
    (BASE + '[recurrence]\nevery = "quarter"\nweekday = "tue"\nnth = 5\n', ["key 'recurrence.nth'", "<= 4"]),
    (BASE + '[proxy]\nserver = "socks5://127.0.0.1:1080"\npassword = "hunter2"\n',
     ["key 'proxy.password'", "password_env"]),
    (BASE + '[proxy]\nserver = "127.0.0.1:1080"\n', ["key 'proxy.server'", "socks5://"]),
    (BASE + '[sites_override."乙市公安局"]\nproxy = { server = "http://10.0.0.1:3128" }\n',
     ['key \'sites_override."乙市公安局"\'', "names no site"]),
    (BASE + '[sites_override."甲市公安局"]\nproxy = { server = "http://10.0.0.1:3128", port = 1 }\n',
     ['key \'sites_override."甲市公安局".proxy.port\'', "unknown key"]),
    (BASE + 'identities = ["a", "a"]\n', ["key 'identities'", "twice"]),
])
def test_validation_errors_are_one_line_with_file_and_key(roster_dir, body, needles):
    text = _error(roster_dir, body)
    for needle in needles:
        assert needle in text, text
    assert "hunter2" not in text


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_campaign_spec(campaign_file(tmp_path, "name = \n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_campaign_spec(tmp_path / "none.toml")


def test_defaults_round_trip_and_relative_globs(roster_dir, monkeypatch):
    path = campaign_file(roster_dir / "campaigns", 'name = "甲-2024Q2"\n'
                         'sites = ["../sites/*.toml", "../sites/a-portal.toml", "../sites/b-*.toml"]\n'
                         'cutoff = "17:30"\n[recurrence]\nevery = "quarter"\nweekday = "tue"\n'
                         '[sites_override.b-police]\nproxy = { server = "http://10.0.0.1:3128", password_env = "P" }\n')
    monkeypatch.chdir(roster_dir.parent)        # globs are relative to the file, not the cwd
    spec = load_campaign_spec(path)
    files = spec.site_files()
    assert [f.name for f in files] == ["a-portal.toml", "b-police.toml", "c-water.toml"]   # sorted, once each
    w = spec.send_window
    assert (w.start, w.end, w.jitter) == (time(9, 0), time(11, 30), timedelta(minutes=10))
    assert spec.rate_limit.per_host == timedelta(minutes=5) and spec.poll.every == timedelta(hours=2)
    assert spec.deadline_workdays == 5 and spec.watch_after_deadline == timedelta(days=10)
    assert spec.recurrence.month == 1 and spec.mailboxes is None
    # Kept as JSON in the campaign row and read back to the same spec.
    data = json.loads(json.dumps(spec.to_settings()))
    assert data["cutoff"] == "17:30" and data["rate_limit"] == {"per_host": "5m"}
    again = spec_from_settings(data, path)
    assert again == spec and again.site_files() == files
    # Per-site proxy by key; the password read from the environment when used, never stored.
    records = {r.key: r for r, _ in spec.records_on(date(2024, 5, 6), REPO / "scenarios")}
    assert spec.proxy_for(records["a-portal"]) is None
    proxy = spec.proxy_for(records["b-police"])
    monkeypatch.setenv("P", "s3cret")
    assert proxy.playwright() == {"server": "http://10.0.0.1:3128", "password": "s3cret"}
    assert "s3cret" not in json.dumps(spec.to_settings())


def test_records_on_follows_validity(tmp_path):
    """A site that moved platform has two records; the one in force on the day is used."""
    sites = tmp_path / "sites"
    site_file(sites, "old", "丙县人民政府", "old.gov.cn", extra='key = "bing"\nvalid_to = 2024-06-30\n')
    site_file(sites, "new", "丙县人民政府", "new.gov.cn", extra='key = "bing"\nvalid_from = 2024-07-01\n')
    spec = load_campaign_spec(campaign_file(tmp_path, 'name = "x"\nsites = ["sites/*.toml"]\n'))
    assert [r.base_url for r, _ in spec.records_on(date(2024, 5, 6), REPO / "scenarios")] == ["http://old.gov.cn/x"]
    (record, scenario), = spec.records_on(date(2024, 7, 1), REPO / "scenarios")
    assert record.base_url == "http://new.gov.cn/x" and scenario.platform == "jact"


def test_example_campaign_file_is_valid():
    spec = load_campaign_spec(EXAMPLE)
    assert spec.site_files() == sorted(p.resolve() for p in SANDBOX_SITES.glob("*.toml"))
    assert spec.recurrence is not None and spec.start == date(2026, 12, 1)


# --- send windows ---------------------------------------------------------------------------

def _check_window(times: dict, window: SendWindow, rate: timedelta, hosts: dict) -> None:
    for key, t in times.items():
        t = local(t)
        assert CAL.is_workday(t.date()), t
        assert window.start <= t.time() <= window.end, t
    by_host: dict[str, list[datetime]] = {}
    for key, t in times.items():
        by_host.setdefault(hosts[key], []).append(t)
    for host, ts in by_host.items():
        ts.sort()
        assert all(b - a >= rate for a, b in zip(ts, ts[1:])), (host, ts)


def test_send_times_after_the_window_go_to_the_make_up_sunday_and_skip_may_day():
    """Friday 2024-04-26 16:00 is after the window: the next working day is Sunday 04-28 (调休上班);
    04-27 (Saturday) and the May Day holiday 05-01..05-05 get nothing."""
    window = SendWindow()
    items = [(f"l{i}", "one.gov.cn") for i in range(12)]      # one host, one letter an hour at most
    times = send_times(items, window, CAL, FRI_AFTER_WINDOW, timedelta(hours=1), seed="2024Q2")
    assert len(times) == 12
    _check_window(times, window, timedelta(hours=1), dict(items))
    days = [local(times[k]).date() for k, _ in items]
    assert days[0] == date(2024, 4, 28)
    assert not {date(2024, 4, 26), date(2024, 4, 27)} & set(days)
    assert not {date(2024, 5, d) for d in range(1, 6)} & set(days)
    per_day = {d: days.count(d) for d in sorted(set(days))}
    # 09:00-11:30 holds three letters an hour apart: 04-28, 04-29, 04-30, then 05-06.
    assert per_day == {date(2024, 4, 28): 3, date(2024, 4, 29): 3, date(2024, 4, 30): 3, date(2024, 5, 6): 3}
    assert [times[k] for k, _ in items] == sorted(times.values())      # a host's letters keep their order


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("start", [FRI_AFTER_WINDOW, datetime(2024, 4, 30, 10, 0, tzinfo=SHANGHAI),
                                   datetime(2025, 1, 24, 8, 0, tzinfo=SHANGHAI),    # before Spring Festival 2025
                                   datetime(2026, 9, 30, 9, 30, tzinfo=SHANGHAI)])  # before National Day 2026
def test_send_times_stay_in_windows_of_working_days_with_spacing(seed, start):
    window = SendWindow(start="09:30", end="11:00", jitter="15m")
    hosts = {}
    items = []
    for i in range(60):
        host = f"h{i % 7}.gov.cn" if i % 3 else "shared.gov.cn"
        items.append((i, host))
        hosts[i] = host
    rate = timedelta(minutes=7)
    times = send_times(items, window, CAL, start, rate, seed=seed)
    assert set(times) == set(hosts)
    _check_window(times, window, rate, hosts)
    assert min(times.values()) >= start
    # Reproducible with the same seed, different with another.
    assert send_times(items, window, CAL, start, rate, seed=seed) == times
    assert send_times(items, window, CAL, start, rate, seed=f"{seed}-other") != times


def test_send_times_inside_the_window_start_now_and_spread():
    window = SendWindow(jitter="0m")
    now = datetime(2024, 5, 6, 10, 0, 30, tzinfo=SHANGHAI)   # Monday, inside 09:00-11:30
    items = [(i, f"h{i}.gov.cn") for i in range(6)]
    times = send_times(items, window, CAL, now, timedelta(minutes=5), seed=1)
    ts = sorted(times.values())
    assert ts[0] == now and ts[-1] < datetime(2024, 5, 6, 11, 30, tzinfo=SHANGHAI)
    assert len(set(ts)) == 6 and all(t.date() == date(2024, 5, 6) for t in ts)
    with pytest.raises(ValueError):
        send_times([(1, "a"), (1, "b")], window, CAL, now, timedelta(minutes=5))


# --- recurrence -----------------------------------------------------------------------------

@pytest.mark.parametrize("rule, after, expected", [
    # First Tuesday of the 2nd month of the next quarter: 2025-02-04 is the last day of the Spring
    # Festival holiday (01-28..02-04), so the campaign moves to Wednesday 02-05.
    (dict(every="quarter", month=2, weekday="tue"), date(2024, 12, 1), date(2025, 2, 5)),
    # Still in the quarter: 2nd month of Q2 2025 is May; 05-06 is the first working Tuesday.
    (dict(every="quarter", month=2, weekday="tue"), date(2025, 2, 5), date(2025, 5, 6)),
    # First Monday of the quarter 2024-10-07 is in the National Day holiday: Tuesday 10-08.
    (dict(every="quarter", weekday="mon"), date(2024, 9, 30), date(2024, 10, 8)),
    (dict(every="month", weekday="thu"), date(2024, 9, 15), date(2024, 10, 8)),
    # Second Saturday of February 2026 is a make-up working day (调休上班): it stays.
    (dict(every="month", weekday="sat", nth=2), date(2026, 2, 1), date(2026, 2, 14)),
    # First Saturday 2026-02-07 is an ordinary weekend day: the next working day, Monday.
    (dict(every="month", weekday="sat", nth=1), date(2026, 2, 1), date(2026, 2, 9)),
])
def test_next_occurrence_on_published_calendars(rule, after, expected):
    assert next_occurrence(Recurrence(**rule), after, CAL) == expected
    assert CAL.is_workday(expected) and not CAL.is_estimated(expected)


def test_next_occurrence_past_the_published_years_is_marked_estimated():
    nxt = next_occurrence(Recurrence(every="quarter", month=2, weekday="tue"), date(2026, 11, 27), CAL)
    assert nxt == date(2027, 2, 2)
    assert CAL.is_estimated(nxt)         # 2027's schedule is not in the holidays package yet


# --- plan, start, status, stop (library) ----------------------------------------------------

def _spec(roster_dir: Path, extra: str = "", name: str = "甲-2024Q2"):
    return load_campaign_spec(campaign_file(roster_dir, f'name = "{name}"\nsites = ["sites/*.toml"]\n{extra}'
                                            'start = 2024-04-26\n[rate_limit]\nper_host = "1h"\n'))


def test_plan_changes_nothing_and_matches_start(roster_dir):
    config = config_for(roster_dir, ACCOUNTS)
    spec = _spec(roster_dir, 'identities = ["inspector-1", "inspector-2"]\n')
    clock = SimClock(FRI_AFTER_WINDOW)
    plan = plan_campaign(spec, clock, CAL, config)
    rows = [(x.site_key, x.mailbox, x.host, x.identity) for x in plan.letters]
    assert rows == [("a-portal", "leader", "www.a.test", "inspector-1"),
                    ("a-portal", "mayor", "www.a.test", "inspector-1"),
                    ("b-police", "leader", "shared.test", "inspector-2"),
                    ("b-police", "mayor", "shared.test", "inspector-2"),
                    ("c-water", "leader", "shared.test", "inspector-1")]   # round-robin per site
    assert min(x.planned_at for x in plan.letters).date() == date(2024, 4, 28)
    assert not (roster_dir / "t.sqlite3").exists()

    db = Database(f"sqlite:///{roster_dir / 't.sqlite3'}")
    cid = start_campaign(db, spec, clock, CAL, config)
    with db.session() as s:
        camp = s.get(m.Campaign, cid)
        assert camp.state == "running" and camp.deadline_workdays == 5
        assert camp.settings["spec_path"] == str(spec.path) and camp.settings["poll_every_s"] == 7200
        assert campaign_spec(camp) == spec
        letters = list(s.scalars(select(m.Letter).where(m.Letter.campaign_id == cid)))
        stored = {(x.mailbox.site.key, x.mailbox.kind): local(x.planned_at) for x in letters}
        assert stored == {(x.site_key, x.mailbox): x.planned_at for x in plan.letters}
        assert {x.state for x in letters} == {LetterState.PLANNED}
        # The form's email is the identity's per-letter reply address.
        by_site = {x.mailbox.site.key: x.writer["email"] for x in letters}
        assert by_site["a-portal"].startswith("one+") and by_site["b-police"].startswith("two+")
        assert [x.source for x in s.scalars(select(m.Site).order_by(m.Site.roster_order))] == \
            [str(p) for p in spec.site_files()]

    # Never planned twice: the second start is refused with one line, and nothing changes.
    with pytest.raises(UserError) as e:
        start_campaign(db, spec, SimClock(FRI_AFTER_WINDOW + timedelta(days=1)), CAL, config)
    assert "already exists" in str(e.value) and "\n" not in str(e.value)
    with db.session() as s:
        assert s.query(m.Letter).count() == 5 and s.query(m.Campaign).count() == 1

    # The daemon's targets: every site with a letter, from the stored site files.
    targets = build_targets(db, spec.name, REPO / "scenarios")
    assert sorted(t.record.key for t in targets.values()) == ["a-portal", "b-police", "c-water"]
    assert all(t.scenario.platform == "jact" for t in targets.values())
    assert running_campaigns(db) == [spec.name]
    with db.session() as s:       # as the daemon calls it: (db, campaign), templates as planned
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == spec.name))
    assert build_targets(db, camp).keys() == targets.keys()
    # A site file removed since the start: the campaign cannot be worked on, and says why.
    (roster_dir / "sites" / "b-police.toml").unlink()
    with pytest.raises(ConfigError, match="甲市公安局 .*b-police.toml is gone"):
        build_targets(db, camp)


def test_mailbox_selection_skips_sites_without_it(roster_dir):
    spec = _spec(roster_dir, 'mailboxes = ["mayor"]\n', name="mayors")
    config = config_for(roster_dir)
    plan = plan_campaign(spec, SimClock(FRI_AFTER_WINDOW), CAL, config)
    assert [(x.site_key, x.mailbox) for x in plan.letters] == [("a-portal", "mayor"), ("b-police", "mayor")]
    assert plan.skipped == ["甲市水务局: no mayor mailbox"]
    db = Database(f"sqlite:///{roster_dir / 't.sqlite3'}")
    # Another campaign registered the sites with both mailboxes first: still only mayors here.
    start_campaign(db, _spec(roster_dir, name="all"), SimClock(FRI_AFTER_WINDOW), CAL, config)
    start_campaign(db, spec, SimClock(FRI_AFTER_WINDOW), CAL, config)
    with db.session() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == "mayors"))
        assert sorted(x.mailbox.kind for x in camp.letters) == ["mayor", "mayor"]


def test_unknown_identity_is_refused_before_anything_is_written(roster_dir):
    spec = _spec(roster_dir, 'identities = ["inspector-9"]\n')
    db = Database(f"sqlite:///{roster_dir / 't.sqlite3'}")
    with pytest.raises(ConfigError, match="key 'identities': 'inspector-9' is no identity"):
        start_campaign(db, spec, SimClock(FRI_AFTER_WINDOW), CAL, config_for(roster_dir, ACCOUNTS))
    with pytest.raises(ConfigError, match="accounts file .* which is not there"):
        plan_campaign(spec, SimClock(FRI_AFTER_WINDOW), CAL, config_for(roster_dir / "no-accounts"))
    with db.session() as s:
        assert s.query(m.Campaign).count() == 0 and s.query(m.Site).count() == 0


def test_status_counts_overdue_and_stop(roster_dir):
    spec = _spec(roster_dir)
    db = Database(f"sqlite:///{roster_dir / 't.sqlite3'}")
    clock = SimClock(FRI_AFTER_WINDOW)
    start_campaign(db, spec, clock, CAL, config_for(roster_dir))
    st, = campaign_status(db, spec.name, clock.now(), CAL)
    assert (st.state, st.letters, st.states["planned"], st.overdue) == ("running", 5, 5, 0)
    assert local(st.next_action_at).date() == date(2024, 4, 28)
    # Two letters submitted Sunday 04-28 10:00: the deadline (5 working days) is 2024-05-08 23:59:59.
    with db.session() as s:
        a, b, c = s.scalars(select(m.Letter).order_by(m.Letter.id).limit(3))
        for x in (a, b):
            x.state, x.submitted_at = LetterState.SUBMITTED, datetime(2024, 4, 28, 10, 0, tzinfo=SHANGHAI)
        c.state, c.submitted_at = LetterState.REPLIED, datetime(2024, 4, 28, 10, 0, tzinfo=SHANGHAI)
        b.state = LetterState.OVERDUE
        s.commit()
    on_time = datetime(2024, 5, 8, 23, 0, tzinfo=SHANGHAI)
    late = datetime(2024, 5, 9, 9, 0, tzinfo=SHANGHAI)
    st, = campaign_status(db, spec.name, on_time, CAL)
    assert st.states == {**dict.fromkeys(tuple(LetterState), 0), "planned": 2, "submitted": 1, "overdue": 1,
                              "replied": 1}
    assert st.overdue == 0
    assert campaign_status(db, spec.name, late, CAL)[0].overdue == 2
    assert [x.name for x in campaign_status(db, None, late, CAL)] == [spec.name]

    assert stop_campaign(db, spec.name, late) == "running"
    st, = campaign_status(db, spec.name, late, CAL)
    assert st.state == "stopped" and st.next_action_at is None
    assert st.states["planned"] == 2 and st.states["overdue"] == 1      # letters keep their states
    assert running_campaigns(db) == []
    assert stop_campaign(db, spec.name, late) == "stopped"
    with pytest.raises(UserError, match="no campaign named 'nope'"):
        stop_campaign(db, "nope", late)


# --- the command line -----------------------------------------------------------------------

def _cli_campaign(tmp_path: Path, name: str) -> Path:
    return campaign_file(tmp_path, f'name = "{name}"\nsites = ["{SANDBOX_SITES}/*.toml"]\nstart = 2026-12-01\n',
                         name=f"{name}.toml")


def _dump(db_file: Path) -> list[str]:
    con = sqlite3.connect(db_file)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_cli_plan_writes_nothing_start_status_stop(run_cli, tmp_path):
    db_file = tmp_path / "test.sqlite3"
    first, second = _cli_campaign(tmp_path, "cli-a"), _cli_campaign(tmp_path, "cli-b")

    proc = run_cli("campaign", "plan", str(first))
    assert proc.returncode == 0, proc.stderr
    assert "宝鸡市人民政府" in proc.stdout and "金台区人民政府" in proc.stdout and "nothing was sent" in proc.stdout
    assert not db_file.exists()                      # not even a database file

    proc = run_cli("campaign", "start", str(first))
    assert proc.returncode == 0 and "4 letters planned" in proc.stdout, proc.stderr
    before = _dump(db_file)
    plan = json.loads(run_cli("campaign", "plan", str(second), "--json", check=True).stdout)
    assert len(plan["letters"]) == 4 and {x["mailbox"] for x in plan["letters"]} == {"leader", "mayor"}
    assert _dump(db_file) == before                  # the plan of another campaign wrote nothing

    one_line_error(run_cli("campaign", "start", str(first)), "already exists", "cli-a", str(first))
    assert _dump(db_file) == before                  # the refused start wrote nothing either

    status = json.loads(run_cli("campaign", "status", "cli-a", "--json", check=True).stdout)
    assert (status["name"], status["state"], status["letters"], status["states"]["planned"]) == \
        ("cli-a", "running", 4, 4)
    assert status["next_action_at"] is not None and status["spec_path"] == str(first.resolve())

    proc = run_cli("campaign", "stop", "cli-a", check=True)
    assert "stopped" in proc.stdout
    every = json.loads(run_cli("campaign", "status", "--json", check=True).stdout)
    assert [(x["name"], x["state"], x["next_action_at"]) for x in every] == [("cli-a", "stopped", None)]
    assert "cli-a" in run_cli("campaign", "status", check=True).stdout
    # A stopped campaign has nothing left to do: the progress bars are drawn once and it returns.
    watched = run_cli("campaign", "status", "cli-a", "--watch", "0.2", check=True)
    assert "sent" in watched.stderr + watched.stdout and "0/4" in watched.stderr + watched.stdout
    one_line_error(run_cli("campaign", "status", "--watch", "1"), "--watch", empty_stdout=True)

    one_line_error(run_cli("campaign", "status", "nope"), "no campaign named 'nope'", empty_stdout=True)


def test_cli_bad_file_is_one_line_exit_2(run_cli, tmp_path):
    bad = campaign_file(tmp_path, f'name = "x"\nsites = ["{SANDBOX_SITES}/*.toml"]\n[send_window]\nend = "8:61"\n')
    one_line_error(run_cli("campaign", "plan", str(bad)), str(bad), "key 'send_window.end'", "'8:61'",
                   empty_stdout=True)
    nothing = campaign_file(tmp_path, 'name = "x"\nsites = ["nowhere/*.toml"]\n', name="n.toml")
    one_line_error(run_cli("campaign", "start", str(nothing)), str(nothing), "key 'sites[0]'", "matches no site file",
                   empty_stdout=True)
    assert not (tmp_path / "test.sqlite3").exists()
