"""`mailbox-bot mail ...`: the email channel (IMAP accounts of the accounts file)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import app_state, print_json
from bot.errors import UserError

app = typer.Typer(help="The email channel: read the inspector's IMAP accounts, list unmatched mail, "
                       "attach a message to a letter by hand.",
                  no_args_is_help=True)

# `mail sync` exit status when everything was read but some messages need the inspector.
EXIT_PROBLEMS = 3


@app.command()
def unmatched(
    assigned: bool = typer.Option(False, "--assigned",
                                  help="List instead the messages attached to a letter by hand (`mail assign`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the stored emails that matched no letter: id (for `mail assign`), time of arrival,
    sender, subject, and the problem that kept a message from being read or stored as it came."""
    from bot.clock import local
    from bot.mail.channel import unmatched_messages

    rows = unmatched_messages(app_state.db, assigned=assigned)
    if as_json:
        print_json([{"id": r.id, "account": r.account, "folder": r.folder,
                     "internaldate": local(r.internaldate).isoformat(), "from": r.from_addr,
                     "subject": r.subject, "kind": r.kind, "problem": r.problem,
                     "letter_id": r.letter_id, "matched_by": r.matched_by} for r in rows])
        return
    what = "assigned by hand" if assigned else "unmatched"
    if not rows:
        typer.echo(f"no mail {what}")
        return
    for r in rows:
        letter = f"  -> letter {r.letter_id}" if assigned else ""
        typer.echo(f"#{r.id}  {local(r.internaldate):%Y-%m-%d %H:%M:%S}  {r.from_addr or '(no sender)'}  "
                   f"{(r.subject or '(no subject)')[:200]}{letter}")
        if r.problem:
            typer.echo(f"    problem: {r.problem}")
    typer.echo(f"{len(rows)} message(s) assigned by hand" if assigned else f"{len(rows)} unmatched message(s)")
    if not assigned:
        typer.echo("attach one to its letter with: mailbox-bot mail assign MESSAGE LETTER")


@app.command()
def assign(
    message: str = typer.Argument(..., help="The mail message's id (the #N of `mailbox-bot mail unmatched`)."),
    letter: str = typer.Argument(..., help="The letter's id (see `mailbox-bot report CAMPAIGN --json`)."),
) -> None:
    """Attach a stored, unmatched email to a letter by hand: it counts as that letter's email
    (reply or acknowledgement, read again from its .eml evidence) exactly as an automatic match
    would, marked as assigned by hand, and the letter is re-derived. A message already matched
    to another letter, an unknown id, or a letter never sent is refused and nothing changes.
    `mailbox-bot mail unmatched --assigned` lists what was attached by hand."""
    from bot.campaign.lifecycle import Lifecycle
    from bot.clock import SystemClock
    from bot.mail.channel import assign_message
    from bot.store.evidence import EvidenceStore

    evidence = EvidenceStore(app_state.config.paths.evidence_dir)
    r = assign_message(app_state.db, evidence, SystemClock(), _id(message, "MESSAGE"), _id(letter, "LETTER"),
                       apply=Lifecycle(app_state.calendar()).apply)
    if r.already:
        typer.echo(f"mail message {r.mail_id} is already attached to letter {r.letter_id}: nothing changed")
    else:
        typer.echo(f"mail message {r.mail_id} attached to letter {r.letter_id} by hand; letter {r.letter_id}: {r.state}")


def _id(value: str, what: str) -> int:
    """An id argument; "#5" (as `mail unmatched` shows it) is 5."""
    try:
        return int(value.strip().removeprefix("#"))
    except ValueError:
        raise UserError(f"{what}: {value!r} is not an id (a number, as `mailbox-bot mail unmatched` shows)") from None


@app.command()
def sync(accounts: str = typer.Option(None, "--accounts", metavar="FILE",
                                      help="Accounts TOML (default: paths.accounts_file of the config).")) -> None:
    """One sync cycle of every IMAP account of the accounts file (passwords from the environment
    variables they name): store new mail, match it to letters, update the letters.

    A message that cannot be read or stored as it came (a Date header in year 9999, NUL
    characters, a gigantic subject) is kept unmatched with its problem, and the sync goes on:
    see `mailbox-bot mail unmatched`.

    Exit status: 0 all read and stored; 1 an account could not be read (the others were);
    3 all read, but some messages had a problem and wait for the inspector."""
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
    problems = 0

    def on_result(acct, r) -> None:
        nonlocal problems
        problems += r.problems
        typer.echo(f"{acct.name}: {r.fetched} new, {r.stored} stored ({r.matched} matched, "
                   f"{r.unmatched} unmatched, {r.acks} acknowledgements), {r.duplicates} duplicates")
        if r.problems:
            ids = ", ".join(f"#{i}" for i in r.problem_ids)
            typer.echo(f"mailbox-bot: {acct.name}: {r.problems} message(s) had a problem and were kept "
                       f"unmatched ({ids}): see mailbox-bot mail unmatched", err=True)

    failed = sync_accounts(
        db, accts, evidence, clock, lifecycle.apply, on_result=on_result,
        on_error=lambda acct, e: typer.echo(f"mailbox-bot: {acct.name}: {e}", err=True))
    if failed:
        raise typer.Exit(1)
    if problems:
        raise typer.Exit(EXIT_PROBLEMS)
