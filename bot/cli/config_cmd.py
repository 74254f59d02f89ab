"""`mailbox-bot config ...`: check and show the configuration and the workspace it points at."""

import json
from pathlib import Path

import typer

from bot.cli.common import app_state

app = typer.Typer(help="Check and show the configuration, the accounts file and the workspace's scenarios.",
                  no_args_is_help=True)


@app.command()
def check(accounts: str = typer.Option(None, "--accounts", metavar="FILE",
                                       help="Accounts file (default: paths.accounts_file).")) -> None:
    """Validate the config, the accounts file, every platform template and every site file of the
    workspace; one line per file kind, exit 2 on the first problem (named with file and key)."""
    from bot.accounts import load_accounts
    from bot.scenario.loader import load_platform, load_sites, platform_sources

    cfg = app_state.config
    typer.echo(f"config: {cfg.source}: ok (workspace {cfg.workspace})")
    path = accounts or cfg.paths.accounts_file
    if accounts or Path(path).exists():
        acc = load_accounts(path)
        typer.echo(f"accounts: {path}: ok ({len(acc.identity)} identities, {len(acc.imap)} IMAP accounts)")
    else:
        typer.echo(f"accounts: {path}: not present (copy mailbox_accounts.example.toml, or `mailbox-bot init`)")
    if cfg.calendar.overrides_file:
        app_state.calendar()
        typer.echo(f"calendar overrides: {cfg.calendar.overrides_file}: ok")
    scenarios = Path(cfg.paths.scenarios_dir)
    sources = platform_sources(scenarios)
    for name in sources:
        load_platform(name, scenarios)
    typer.echo(f"platform templates: ok ({_by_origin(sources)})")
    sites_dir = scenarios / "sites"
    files = sorted(sites_dir.glob("*.toml"))
    load_sites(files, scenarios)
    typer.echo(f"sites: {sites_dir}: " + (f"ok ({len(files)} site files)" if files else "none yet"))


def _by_origin(sources) -> str:
    parts = []
    for origin in ("workspace", "built-in"):
        names = [s.name for s in sources.values() if s.origin == origin]
        if names:
            parts.append(f"{origin}: {', '.join(names)}")
    return "; ".join(parts) or "none"


@app.command()
def show() -> None:
    """Print the effective configuration as JSON: defaults filled in, every path resolved against
    the workspace, the database password masked, and for each platform template the file it
    comes from (the workspace's own or the built-in one)."""
    from bot.scenario.loader import platform_sources

    config = app_state.config
    cfg = config.model_dump()
    cfg["database"]["url"] = _hide_password(cfg["database"]["url"])
    cfg["platform_templates"] = {name: {"origin": s.origin, "file": str(s.path)}
                                 for name, s in platform_sources(Path(config.paths.scenarios_dir)).items()}
    typer.echo(json.dumps(cfg, ensure_ascii=False, indent=2))


def _hide_password(url: str) -> str:
    """A database URL may carry a password (postgresql://user:secret@host/db): never print it."""
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(not a valid database URL)" if "@" in url else url
