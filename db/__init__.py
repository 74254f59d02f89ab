"""The Alembic migrations, installed as the package `bot.migrations` (see setup.py).

Alembic reads this folder itself (bot.store.db); the package exists so that the migrations are
installed with the program and found through it (bot.resources), not through the repository.
"""
