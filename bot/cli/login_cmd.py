"""`mailbox-bot login SITE --identity NAME`: log in once at a site's unified identity platform.

The browser's storage state is saved per identity and login host (mode 0600) and reused by
campaigns and replays; when it expires the site shows its login page again and the letter
waits in `mailbox-bot inspect pending`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from bot.cli.common import app_state
from bot.errors import UserError

HELP = "Log in once at a site's unified identity platform (统一身份认证) and keep the session for campaigns."


def login(
    site: str = typer.Argument(..., help="Site file path, or its key or name in scenarios/sites."),
    identity: str = typer.Option(..., "--identity", metavar="NAME", help="The inspector identity (accounts file) to log in as."),
    headed: bool = typer.Option(False, "--headed", help="Log in by hand in a browser window instead of at the terminal."),
) -> None:
    """Log in once at a site's unified identity platform (统一身份认证) and keep the session for campaigns."""
    from bot.accounts import load_accounts
    from bot.browser.captcha import TerminalCaptcha, configured_answerer, site_answerer
    from bot.browser.pool import Browser
    from bot.cli.replay_cmd import find_site_file
    from bot.login import SessionStore, log_in
    from bot.scenario.loader import load_site

    config = app_state.config
    record = load_site(find_site_file(site, Path(config.paths.scenarios_dir)))
    if record.login is None:
        raise UserError(f"SITE: {record.name} needs no login (its site file has no [login] table)")
    accounts = load_accounts(config.paths.accounts_file)
    ident = next((i for i in accounts.identity if i.name == identity), None)
    if ident is None:
        known = ", ".join(i.name for i in accounts.identity) or "none"
        raise UserError(f"--identity: no identity {identity!r} in {config.paths.accounts_file} (defined: {known})")
    if not headed and not ident.login_account:
        raise UserError(f"identity {identity!r} has no login_account in {config.paths.accounts_file}; "
                        "add it, or log in by hand with --headed")
    password = "" if headed else ident.login_password()
    fallback = configured_answerer(config.captcha.solver, TerminalCaptcha(Path(config.paths.sessions_dir) / "captcha"))

    async def sms_code() -> str | None:
        print("an SMS code was sent to the account's phone; type it: ", end="", file=sys.stderr, flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        return line.strip() or None

    async def run() -> None:
        async with Browser(config.browser.executable_path, headless=not headed, concurrency=1) as browser:
            await log_in(browser, record, SessionStore(config.paths.sessions_dir), identity,
                         account=ident.login_account, password=password,
                         captcha=site_answerer(record.captcha_solver, fallback), sms_code=sms_code,
                         by_hand=headed, say=typer.echo)

    asyncio.run(run())
