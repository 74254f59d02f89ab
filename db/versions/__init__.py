"""Migration scripts (Alembic skips this file); installed as `bot.migrations.versions`."""
