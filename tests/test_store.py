"""The database: migrations, SQLite settings, timezone-aware datetimes, the never-twice constraint."""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from bot.store.db import Database, alembic_config, make_engine
from bot.store.models import Campaign, Letter, Mailbox, Observation, Site
from conftest import one_line_error

TABLES = {"sites", "mailboxes", "campaigns", "letters", "letter_events", "evidence_files",
          "observations", "replies", "alembic_version"}
UTC = timezone.utc
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def _head_revision(engine) -> str:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _sqlite_path(url: str) -> Path:
    assert url.startswith("sqlite:///")
    return Path(url[len("sqlite:///"):])


@pytest.fixture
def db(db_url):
    """A SQLite file (the SQLite-only tests)."""
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def any_db(any_db_url):
    """A SQLite file, then a PostgreSQL database (server in America/New_York): the same test on both."""
    database = Database(any_db_url)
    yield database
    database.dispose()


def _site_and_mailbox(session, key: str = "baoji-gov") -> Mailbox:
    site = Site(key=key, name="宝鸡市人民政府", group="政府门户网站", base_url="http://127.0.0.1:1/",
                platform="generic")
    mailbox = Mailbox(site=site, kind="mayor", label="市长信箱")
    session.add_all([site, mailbox])
    session.flush()
    return mailbox


def _campaign(session, name: str | None = None) -> Campaign:
    c = Campaign(name=name or f"2024Q2-{uuid.uuid4().hex[:8]}", created_at=datetime(2024, 4, 1, 9, 0, tzinfo=UTC))
    session.add(c)
    session.flush()
    return c


def _letter(campaign: Campaign, mailbox: Mailbox, **kw) -> Letter:
    values = dict(campaign=campaign, mailbox=mailbox, title="咨询办事流程", body="您好……",
                  state_changed_at=datetime(2024, 4, 26, 10, 0, tzinfo=UTC))
    values.update(kw)
    return Letter(**values)


# --- migrations -----------------------------------------------------------------------------

def test_db_upgrade_creates_all_tables(run_cli, db_url):
    path = _sqlite_path(db_url)
    assert not path.exists()
    proc = run_cli("db", "upgrade")
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout
    assert path.exists()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        version = conn.execute("select version_num from alembic_version").fetchall()
    assert TABLES <= tables
    assert version == [(_head_revision(make_engine(db_url)),)]

    # Twice is fine: nothing changes, still one version row.
    proc = run_cli("db", "upgrade")
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("select version_num from alembic_version").fetchall() == version
    proc = run_cli("db", "current")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == version[0][0]


def test_schema_matches_models(any_db):
    """The migrations create every column the models declare (a model change without a
    migration would fail here)."""
    from bot.store.models import Base

    db = any_db
    db.ensure_schema()
    insp = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in insp.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("letters")}
    assert ("campaign_id", "mailbox_id", "seq") in uniques


def test_bad_database_url_is_a_user_error(run_cli, tmp_path):
    proc = run_cli("db", "upgrade", env={"MAILBOX_BOT_DATABASE_URL": "not a url"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


# --- SQLite settings ------------------------------------------------------------------------

def test_sqlite_wal_and_foreign_keys(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        # Every new connection, not only the first.
        engine.dispose()
        with engine.connect() as a, engine.connect() as b:
            assert a.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert b.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(_sqlite_path(db_url)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


def test_sqlite_foreign_keys_enforced_in_sessions(db):
    with db.session() as s:
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        campaign = _campaign(s)
        s.add(Letter(campaign_id=campaign.id, mailbox_id=424242, title="t", body="b",
                     state_changed_at=datetime(2024, 4, 26, tzinfo=UTC)))
        with pytest.raises(IntegrityError):
            s.flush()


def test_sqlite_parent_directory_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.sqlite3'}"
    database = Database(url)
    try:
        database.ensure_schema()
        assert (tmp_path / "nested" / "dir" / "x.sqlite3").exists()
    finally:
        database.dispose()


# --- datetimes ------------------------------------------------------------------------------

def _roundtrip(database: Database) -> None:
    """Aware times in any zone come back as the same instant, aware, in UTC; naive = Shanghai."""
    tokyo = datetime(2024, 4, 26, 9, 30, 15, 123456, tzinfo=TOKYO)           # 00:30:15 UTC
    new_york = datetime(2024, 12, 31, 20, 0, tzinfo=NEW_YORK)                 # 2025-01-01 01:00 UTC
    naive = datetime(2024, 4, 26, 10, 0)                                      # Shanghai: 02:00 UTC
    with database.session() as s:
        mailbox = _site_and_mailbox(s, key=f"site-{uuid.uuid4().hex[:8]}")
        campaign = _campaign(s)
        letter = _letter(campaign, mailbox, submitted_at=tokyo, planned_at=naive, next_poll_at=new_york)
        s.add(letter)
        s.commit()
        letter_id = letter.id

    with database.session() as s:                                              # a fresh session
        got = s.get(Letter, letter_id)
        for value in (got.submitted_at, got.planned_at, got.next_poll_at, got.state_changed_at):
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert got.submitted_at == tokyo
        assert got.submitted_at == datetime(2024, 4, 26, 0, 30, 15, 123456, tzinfo=UTC)
        assert got.next_poll_at == datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
        assert got.planned_at == datetime(2024, 4, 26, 2, 0, tzinfo=UTC)
        assert got.planned_at == naive.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
        assert got.lease_until is None

        # Comparisons in queries use the same conversion, whatever zone the bound value has.
        found = s.scalars(select(Letter.id).where(
            Letter.id == letter_id,
            Letter.submitted_at > datetime(2024, 4, 26, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")),  # 00:30 UTC
            Letter.submitted_at < datetime(2024, 4, 25, 20, 31, tzinfo=NEW_YORK),                  # 00:31 UTC
        )).all()
        assert found == [letter_id]
        assert s.scalars(select(Letter.id).where(
            Letter.id == letter_id, Letter.planned_at == datetime(2024, 4, 26, 10, 0))).all() == [letter_id]

        # Cleanup (matters on a shared PostgreSQL database).
        s.delete(got)
        s.delete(s.get(Campaign, got.campaign_id))
        mailbox = s.get(Mailbox, got.mailbox_id)
        site = mailbox.site
        s.delete(mailbox)
        s.delete(site)
        s.commit()


def test_datetime_roundtrip(any_db):
    _roundtrip(any_db)


def test_sqlite_stores_utc(db):
    with db.session() as s:
        mailbox = _site_and_mailbox(s)
        campaign = _campaign(s)
        letter = _letter(campaign, mailbox, submitted_at=datetime(2024, 4, 26, 9, 0, tzinfo=TOKYO))
        s.add(letter)
        s.commit()
        raw = s.execute(text("select submitted_at from letters where id = :i"), {"i": letter.id}).scalar()
    assert str(raw).startswith("2024-04-26 00:00:00")


def test_other_models_use_aware_datetimes(any_db):
    db = any_db
    with db.session() as s:
        mailbox = _site_and_mailbox(s)
        letter = _letter(_campaign(s), mailbox)
        s.add(letter)
        s.flush()
        obs = Observation(letter=letter, channel="site_query", outcome="found",
                          at=datetime(2024, 4, 26, 12, 0), displayed_reply_at=datetime(2024, 4, 26, 11, 0, tzinfo=TOKYO))
        s.add(obs)
        s.commit()
        oid = obs.id
    with db.session() as s:
        got = s.get(Observation, oid)
        assert got.at == datetime(2024, 4, 26, 4, 0, tzinfo=UTC)
        assert got.displayed_reply_at == datetime(2024, 4, 26, 2, 0, tzinfo=UTC)
        assert got.displayed_reply_at.tzinfo is not None and got.detail == {}


# --- never twice ----------------------------------------------------------------------------

def test_one_letter_per_mailbox_per_campaign(any_db):
    db = any_db
    with db.session() as s:
        mailbox = _site_and_mailbox(s)
        campaign = _campaign(s, "2024Q2")
        s.add(_letter(campaign, mailbox))
        s.commit()
        s.add(_letter(campaign, mailbox))            # same campaign, mailbox, seq 0
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert s.scalar(select(Letter.id).where(Letter.campaign_id == campaign.id).limit(2)) is not None
        assert len(s.scalars(select(Letter)).all()) == 1

    with db.session() as s:
        campaign = s.scalar(select(Campaign).where(Campaign.name == "2024Q2"))
        mailbox = s.scalar(select(Mailbox))
        # An explicit second letter (seq 1) is allowed, and so is the same mailbox in another campaign.
        s.add(_letter(campaign, mailbox, seq=1))
        s.add(_letter(_campaign(s, "2024Q3"), mailbox))
        s.commit()
        assert len(s.scalars(select(Letter)).all()) == 3
        s.add(_letter(campaign, mailbox, seq=1))
        with pytest.raises(IntegrityError):
            s.flush()


# --- migrations on both backends --------------------------------------------------------------

ROW_TABLES = ("sites", "mailboxes", "campaigns", "letters", "letter_events", "evidence_files",
              "observations", "replies")


def _revisions(engine) -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _counts(engine, tables=ROW_TABLES) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"select count(*) from {t}")).scalar() for t in tables}


def _full_rows(database: Database) -> int:
    """One of everything, linked the way the product links them; returns the letter's id."""
    from bot.store import models as m

    at = datetime(2024, 4, 26, 10, 0, tzinfo=UTC)
    with database.session() as s:
        mailbox = _site_and_mailbox(s)
        s.add(Mailbox(site=mailbox.site, kind="leader", label="领导信箱"))
        letter = _letter(_campaign(s, "2024Q2"), mailbox, state="submitted", submitted_at=at,
                         tracking_code="BJ2024-0001", writer={"name": "王小明", "phone": "13800000000"})
        s.add(letter)
        s.flush()
        html = m.EvidenceFile(letter_id=letter.id, kind="html", step="查询", path="a/b.html", sha256="0" * 64,
                              size=10, created_at=at)
        s.add_all([html, m.LetterEvent(letter_id=letter.id, at=at, from_state="planned", to_state="submitting"),
                   m.LetterEvent(letter_id=letter.id, at=at, from_state="submitting", to_state="submitted",
                                 evidence_ids=[1])])
        s.flush()
        obs = Observation(letter_id=letter.id, channel="site_query", outcome="found", at=at, replied=True,
                          html_id=html.id, detail={"flags": ["ack_or_reply_uncertain"], "行": 1})
        s.add(obs)
        s.flush()
        s.add(m.Reply(letter_id=letter.id, channel="site_query", replied_at=at, first_seen_at=at,
                      observation_id=obs.id, flags=["site_time_before_submission"]))
        s.add(m.MailMessage(account="box", folder="INBOX", uidvalidity=2**32 - 1, uid=7, message_id="<m@x>",
                            internaldate=at, size=100, kind="reply", letter_id=letter.id,
                            eml_evidence_id=html.id, created_at=at))
        s.add(m.MailFolderState(account="box", folder="INBOX", uidvalidity=2**32 - 1, last_uid=7))
        s.add(m.Lease(name="daemon:a", holder="a", until=at, detail={"pid": 1}))
        s.commit()
        return letter.id


def test_migrations_empty_to_head_to_base_and_back(any_db):
    """Empty -> head -> base -> head, on SQLite and on PostgreSQL, and the same version row."""
    from alembic import command

    engine = any_db.engine
    cfg = alembic_config(engine)
    command.upgrade(cfg, "head")
    assert TABLES | {"mail_messages", "mail_folder_state", "apscheduler_jobs", "leases"} <= set(inspect(engine).get_table_names())
    command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from alembic_version")).scalar() == 0
    command.upgrade(cfg, "head")
    any_db.ensure_schema()                            # twice is fine
    with engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalars().all() == [_head_revision(engine)]


def test_migrations_down_and_up_keep_the_rows(any_db):
    """Every downgrade and upgrade, one step at a time, with rows present: nothing is lost on the
    way (a table copied by SQLite's batch mode must not cascade-delete the rows that refer to it)."""
    from alembic import command

    letter_id = _full_rows(any_db)
    engine = any_db.engine
    cfg = alembic_config(engine)
    before = _counts(engine)
    assert all(before.values()), before
    revisions = _revisions(engine)
    for rev in reversed(revisions[:-1]):            # head-1 ... 0001
        command.downgrade(cfg, rev)
        assert _counts(engine) == before, f"downgrade to {rev}"
    for rev in revisions[1:]:
        command.upgrade(cfg, rev)
        assert _counts(engine) == before, f"upgrade to {rev}"
    with any_db.session() as s:
        letter = s.get(Letter, letter_id)
        assert (letter.tracking_code, letter.writer["name"]) == ("BJ2024-0001", "王小明")
        assert [e.to_state for e in letter.events] == ["submitting", "submitted"]
        assert letter.observations[0].detail == {"flags": ["ack_or_reply_uncertain"], "行": 1}
        assert letter.mailbox.site.moderated is False      # 0006's server default, after the round trip
        # the sequences go on past the rows that survived
        new = _letter(letter.campaign, s.scalar(select(Mailbox).where(Mailbox.kind == "leader")))
        s.add(new)
        s.commit()
        assert new.id > letter_id


def test_schema_is_what_the_models_say(any_db):
    """Alembic's own comparison of the migrated database with the models finds nothing to do,
    on either backend (types and lengths included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.store.models import Base

    any_db.ensure_schema()

    def ours(obj, name, type_, reflected, compare_to):
        # APScheduler's job store (0004) is APScheduler's table, not a model of ours.
        return not (type_ == "table" and name == "apscheduler_jobs") and not (
            type_ == "index" and name == "ix_apscheduler_jobs_next_run_time")

    with any_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True,
                                                     "include_object": ours})
        assert compare_metadata(ctx, Base.metadata) == []


def test_json_booleans_and_server_defaults(any_db):
    """JSON comes back as it went in (CJK, nesting, empty), booleans as booleans, and a column
    with a server default is filled by the database for a row written without it."""
    any_db.ensure_schema()
    value = {"flags": ["unknown_status"], "原文": "已受理", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    with any_db.session() as s:
        mailbox = _site_and_mailbox(s)
        letter = _letter(_campaign(s), mailbox, writer=value)
        s.add(letter)
        s.commit()
        lid = letter.id
        s.execute(text("insert into sites (key, name, \"group\", host_unit, base_url, platform, platform_version, "
                       "region, roster_order, source) values ('raw', 'r', 'g', '', 'u', 'p', 1, '', 0, '')"))
        s.commit()
    with any_db.session() as s:
        assert s.get(Letter, lid).writer == value
        assert s.get(Letter, lid).events == []
        raw = s.scalar(select(Site).where(Site.key == "raw"))
        assert raw.moderated is False and isinstance(raw.moderated, bool)
        raw.moderated = True
        s.commit()
    with any_db.session() as s:
        assert s.scalar(select(Site.moderated).where(Site.key == "raw")) is True
        assert s.scalars(select(Site.key).where(Site.moderated.is_(False))).all() == ["baoji-gov"]


def _first_use(url: str, go, results) -> None:
    """A forked process's first use of the database (migrate on first use, as a daemon does)."""
    go.wait(30)
    try:
        database = Database(url)
        database.ensure_schema()
        database.dispose()
        results.put("ok")
    except BaseException as e:           # noqa: BLE001 - reported by the parent
        results.put(f"{type(e).__name__}: {e}")


def test_several_processes_bring_one_empty_database_up_at_once(postgres_url):
    """Daemons started together on an empty PostgreSQL database: each one migrates on first use;
    they take turns (an advisory lock), so every one of them starts, and the schema is made once.
    Forked processes (cheap: the product is imported already) released at the same moment."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(postgres_url, go, results)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    assert outcomes == ["ok"] * 4, outcomes
    database = Database(postgres_url)
    try:
        with database.engine.connect() as conn:
            assert conn.execute(text("select version_num from alembic_version")).scalars().all() == [
                _head_revision(database.engine)]
    finally:
        database.dispose()


def test_two_threads_first_sessions_at_once(any_db_url):
    """Two threads of one process (two workers, each with its own Database) open their first
    session at the same moment: both migrate-on-first-use calls succeed (Alembic's module-level
    state is not shared between them mid-run)."""
    import threading

    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def first_session():
        database = Database(any_db_url)
        try:
            barrier.wait()
            with database.session() as s:
                s.execute(select(Letter.id)).all()
        except BaseException as e:          # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            database.dispose()

    threads = [threading.Thread(target=first_session) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def test_long_text_from_site_pages_is_kept(any_db):
    """What a site writes in a status cell, a unit, a displayed time, a tracking code or a
    password, and a template's step name, can be longer than any VARCHAR: stored whole, on both
    backends (PostgreSQL refused it before migration 0008)."""
    from bot.store import models as m

    long = "已办结（" + "该信件已由相关部门依法依规办理并答复，" * 30 + "）"
    at = datetime(2024, 4, 26, 10, 0, tzinfo=UTC)
    with any_db.session() as s:
        letter = _letter(_campaign(s), _site_and_mailbox(s), tracking_code="BJ" + "0" * 300, password="密" * 150)
        s.add(letter)
        s.flush()
        s.add(m.EvidenceFile(letter_id=letter.id, kind="html", step="点击“" + "提交" * 150 + "”", path="p",
                             sha256="0" * 64, size=1, created_at=at))
        s.add(Observation(letter_id=letter.id, channel="site_query", outcome="found", at=at, site_status=long,
                          reply_unit="宝鸡市" + "某某局" * 100, displayed_raw="回复时间：" + "2024年5月6日 " * 20))
        s.add(m.Reply(letter_id=letter.id, channel="site_query", replied_at=at, first_seen_at=at, unit="局" * 300))
        s.commit()
        lid = letter.id
    with any_db.session() as s:
        letter = s.get(Letter, lid)
        assert letter.tracking_code == "BJ" + "0" * 300 and letter.password == "密" * 150
        assert letter.observations[0].site_status == long
        assert len(letter.observations[0].reply_unit) == 303 and letter.replies[0].unit == "局" * 300
        assert s.scalar(select(m.EvidenceFile.step)).startswith("点击“提交")


@pytest.mark.postgres
def test_unreachable_postgres_is_one_line(run_cli):
    """PostgreSQL's connection errors span two lines; the CLI says them in one."""
    from bot.sandbox.mailserver import free_port

    url = f"postgresql+psycopg://bot:secret@127.0.0.1:{free_port()}/nowhere"
    proc = run_cli("db", "upgrade", env={"MAILBOX_BOT_DATABASE_URL": url})
    line = one_line_error(proc, "127.0.0.1", "refused")
    assert "secret" not in line
