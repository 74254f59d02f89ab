"""`mailbox-bot db ...`: the database schema."""

import typer

from bot.cli.common import app_state

app = typer.Typer(help="Database schema: apply migrations, show the revision.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply all Alembic migrations to the configured database."""
    db = app_state.db
    db.ensure_schema()
    typer.echo(f"database {db.engine.url.render_as_string(hide_password=True)} is up to date")


@app.command()
def current() -> None:
    """Print the schema revision of the configured database."""
    from sqlalchemy import text

    db = app_state.db
    db.ensure_schema()
    with db.engine.connect() as conn:
        rev = conn.execute(text("select version_num from alembic_version")).scalar()
    typer.echo(rev)
