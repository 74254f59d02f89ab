"""Alembic environment: runs on the engine handed over by bot.store.db (never a URL in a file)."""

from alembic import context

from bot.store.models import Base

target_metadata = Base.metadata
engine = context.config.attributes.get("engine")
if engine is None:  # `alembic` run by hand: use the configured database
    from bot.config import load_config
    from bot.store.db import make_engine

    engine = make_engine(load_config().database.url)

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
