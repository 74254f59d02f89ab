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
    database = Database(db_url)
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


def test_schema_matches_models(db):
    """The migrations create every column the models declare (a model change without a
    migration would fail here)."""
    from bot.store.models import Base

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


def test_datetime_roundtrip_sqlite(db):
    _roundtrip(db)


def test_sqlite_stores_utc(db):
    with db.session() as s:
        mailbox = _site_and_mailbox(s)
        campaign = _campaign(s)
        letter = _letter(campaign, mailbox, submitted_at=datetime(2024, 4, 26, 9, 0, tzinfo=TOKYO))
        s.add(letter)
        s.commit()
        raw = s.execute(text("select submitted_at from letters where id = :i"), {"i": letter.id}).scalar()
    assert str(raw).startswith("2024-04-26 00:00:00")


def test_other_models_use_aware_datetimes(db):
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

def test_one_letter_per_mailbox_per_campaign(db):
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


# --- PostgreSQL -----------------------------------------------------------------------------

POSTGRES_URL = os.environ.get("MAILBOX_BOT_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="set MAILBOX_BOT_TEST_POSTGRES_URL (postgresql+psycopg://...) to run")
def test_postgres_upgrade_and_roundtrip():
    from sqlalchemy import event

    database = Database(POSTGRES_URL)

    @event.listens_for(database.engine, "connect")
    def _session_zone(dbapi_conn, _record):
        # A session time zone other than UTC must not change what comes back.
        cur = dbapi_conn.cursor()
        cur.execute("SET TIME ZONE 'America/New_York'")
        cur.close()
        dbapi_conn.commit()

    try:
        database.ensure_schema()
        database._ready = False
        database.ensure_schema()                      # twice is fine
        insp = inspect(database.engine)
        assert TABLES <= set(insp.get_table_names())
        with database.engine.connect() as conn:
            assert conn.execute(text("select version_num from alembic_version")).scalars().all() == [
                _head_revision(database.engine)]
            assert conn.execute(text("SHOW TIME ZONE")).scalar() == "America/New_York"
        _roundtrip(database)
        with database.session() as s:
            mailbox = _site_and_mailbox(s, key=f"site-{uuid.uuid4().hex[:8]}")
            campaign = _campaign(s)
            s.add(_letter(campaign, mailbox))
            s.commit()
            s.add(_letter(campaign, mailbox))
            with pytest.raises(IntegrityError):
                s.commit()
            s.rollback()
            site = mailbox.site
            for letter in s.scalars(select(Letter).where(Letter.campaign_id == campaign.id)).all():
                s.delete(letter)
            s.delete(campaign)
            s.delete(mailbox)
            s.delete(site)
            s.commit()
    finally:
        database.dispose()
