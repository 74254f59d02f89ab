"""Alembic environment: runs on the engine handed over by bot.store.db (never a URL in a file).

SQLite: the migrations that change a table copy it (batch mode: new table, rows copied, old
table dropped, new one renamed). With foreign keys on, dropping the old table would delete, or
refuse to drop, the rows of other tables that refer to it; so they are off while migrating and
checked (PRAGMA foreign_key_check) before they are back on.

PostgreSQL: several processes may bring one database up to date at once (daemons starting
together); an advisory lock held for the migration's transaction makes them take turns, and
each one reads the version only once it holds the lock.
"""

from alembic import context
from sqlalchemy import text

from bot.store.models import Base

target_metadata = Base.metadata
engine = context.config.attributes.get("engine")
if engine is None:  # `alembic` run by hand: use the configured database
    from bot.config import load_config
    from bot.store.db import make_engine

    engine = make_engine(load_config().database.url)


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with connection.begin():
        if connection.dialect.name == "postgresql":
            from bot.store.db import MIGRATION_LOCK_KEY

            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        context.run_migrations()


with engine.connect() as connection:
    if connection.dialect.name != "sqlite":
        run(connection)
    else:
        # The pragma is a no-op inside a transaction: set it on the connection, before one begins.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            run(connection)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.commit()
            if broken:
                raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
