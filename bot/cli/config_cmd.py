"""`mailbox-bot config ...`: check and show the configuration."""

import json
from pathlib import Path

import typer

from bot.cli.common import app_state

app = typer.Typer(help="Check and show the configuration and the accounts file.", no_args_is_help=True)


@app.command()
def check(accounts: str = typer.Option(None, "--accounts", metavar="FILE",
                                       help="Accounts file (default: paths.accounts_file).")) -> None:
    """Validate the config and the accounts file; one line per problem, exit 2 on the first."""
    from bot.accounts import load_accounts

    cfg = app_state.config
    typer.echo(f"config: {cfg.source}: ok")
    path = accounts or cfg.paths.accounts_file
    if accounts or Path(path).exists():
        acc = load_accounts(path)
        typer.echo(f"accounts: {path}: ok ({len(acc.identity)} identities, {len(acc.imap)} IMAP accounts)")
    else:
        typer.echo(f"accounts: {path}: not present (copy mailbox_accounts.example.toml)")


@app.command()
def show() -> None:
    """Print the effective configuration (defaults filled in) as JSON; passwords masked."""
    cfg = app_state.config.model_dump()
    cfg["database"]["url"] = _hide_password(cfg["database"]["url"])
    typer.echo(json.dumps(cfg, ensure_ascii=False, indent=2))


def _hide_password(url: str) -> str:
    """A database URL may carry a password (postgresql://user:secret@host/db): never print it."""
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(not a valid database URL)" if "@" in url else url
