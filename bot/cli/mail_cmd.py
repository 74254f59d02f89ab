"""`mailbox-bot mail ...`: the email channel (IMAP accounts of the accounts file)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import app_state, print_json
from bot.errors import UserError

app = typer.Typer(help="The email channel: read the inspector's IMAP accounts, list unmatched mail.",
                  no_args_is_help=True)


@app.command()
def unmatched(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the stored emails that matched no letter (time of arrival, sender, subject)."""
    from bot.clock import local
    from bot.mail.channel import unmatched_messages

    rows = unmatched_messages(app_state.db)
    if as_json:
        print_json([{"id": r.id, "account": r.account, "folder": r.folder,
                     "internaldate": local(r.internaldate).isoformat(), "from": r.from_addr,
                     "subject": r.subject, "kind": r.kind} for r in rows])
        return
    if not rows:
        typer.echo("no unmatched mail")
        return
    for r in rows:
        typer.echo(f"{local(r.internaldate):%Y-%m-%d %H:%M:%S}  {r.from_addr or '(no sender)'}  "
                   f"{r.subject or '(no subject)'}")
    typer.echo(f"{len(rows)} unmatched message(s)")


@app.command()
def sync(accounts: str = typer.Option(None, "--accounts", metavar="FILE",
                                      help="Accounts TOML (default: paths.accounts_file of the config).")) -> None:
    """One sync cycle of every IMAP account of the accounts file (passwords from the environment
    variables they name): store new mail, match it to letters, update the letters."""
    from bot.accounts import load_accounts
    from bot.campaign.lifecycle import Lifecycle
    from bot.clock import SystemClock
    from bot.mail.channel import sync_accounts
    from bot.store.evidence import EvidenceStore

    config = app_state.config
    path = Path(accounts or config.paths.accounts_file)
    if not path.exists():
        raise UserError(f"accounts file {path} does not exist (see mailbox_accounts.example.toml)")
    accts = load_accounts(path)
    if not accts.imap:
        raise UserError(f"accounts file {path} has no [[imap]] account")
    db = app_state.db
    clock = SystemClock()
    evidence = EvidenceStore(config.paths.evidence_dir)
    lifecycle = Lifecycle(app_state.calendar())
    failed = sync_accounts(
        db, accts, evidence, clock, lifecycle.apply,
        on_result=lambda acct, r: typer.echo(
            f"{acct.name}: {r.fetched} new, {r.stored} stored ({r.matched} matched, "
            f"{r.unmatched} unmatched, {r.acks} acknowledgements), {r.duplicates} duplicates"),
        on_error=lambda acct, e: typer.echo(f"mailbox-bot: {acct.name}: {e}", err=True))
    if failed:
        raise typer.Exit(1)
