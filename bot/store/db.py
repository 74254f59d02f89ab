"""The database connection and its migrations.

SQLite by default (`mailbox-bot.sqlite3` in the workspace, WAL mode, foreign keys on); any
SQLAlchemy URL through the config or $MAILBOX_BOT_DATABASE_URL. The schema is created and changed
only by the Alembic migrations (db/ in the repository, installed as bot.migrations), which every
command that needs the database applies on first use.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import UserError
from bot.resources import migrations_dir


# PostgreSQL advisory lock taken by every migration run (db/env.py): processes that bring one
# database up to date at once take turns instead of racing to create the same tables.
MIGRATION_LOCK_KEY = 0x6D62_0001          # "mb" 1: any constant no other program of the database uses

# Alembic keeps its running migration in module globals (alembic.context, alembic.op): two
# threads of one process migrating at once would tread on each other, so they take turns too.
_alembic_lock = threading.Lock()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"database URL {url!r} is not a SQLAlchemy URL (e.g. sqlite:///path or postgresql+psycopg://...)") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError as e:
        raise UserError(f"database URL {parsed.render_as_string(hide_password=True)}: driver not installed ({e.name})") from None


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        with _alembic_lock:
            command.upgrade(alembic_config(engine), revision)
    except OperationalError as e:
        raise unreachable(engine, e) from None


def unreachable(engine: Engine, e: OperationalError) -> UserError:
    # One line: PostgreSQL's messages span several ("...failed: Connection refused\n\tIs the server running...").
    reason = " ".join(str(e.orig).split())
    return UserError(f"database {engine.url.render_as_string(hide_password=True)}: {reason}")


class Database:
    """An engine whose schema is brought up to date the first time it is used."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._ready = False
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def ensure_schema(self) -> None:
        if not self._ready:
            upgrade(self.engine)
            self._ready = True

    def require_current(self) -> None:
        """For readers that must write nothing (the dashboard): the schema is checked, never
        changed; a database that needs migrating is one line saying so."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()
        try:
            with self.engine.connect() as conn:
                at = MigrationContext.configure(conn).get_current_revision()
        except OperationalError as e:
            raise unreachable(self.engine, e) from None
        if at != head:
            raise UserError(f"database {self.engine.url.render_as_string(hide_password=True)} is at schema revision "
                            f"{at or 'none'}, this program needs {head}: run `mailbox-bot db upgrade` first")
        self._ready = True

    def session(self) -> Session:
        self.ensure_schema()
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()
