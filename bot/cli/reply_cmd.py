"""`mailbox-bot reply record`: a reply the inspector received by phone or SMS."""

from __future__ import annotations

import typer

from bot.cli.common import app_state, parse_datetime

app = typer.Typer(help="Replies received outside the sites and mailboxes (phone calls, SMS).",
                  no_args_is_help=True)


@app.command()
def record(
    letter: int = typer.Argument(..., help="The letter's id (see `mailbox-bot report CAMPAIGN --json` or the database)."),
    at: str = typer.Option(..., "--at", metavar="TIME", help="When the site called or texted, ISO 8601 (naive = Asia/Shanghai)."),
    channel: str = typer.Option(..., "--channel", metavar="phone|sms", help="How the reply came."),
    note: str = typer.Option("", "--note", help="What was said, for the table's 备注."),
) -> None:
    """Record a callback or SMS as the letter's reply from that channel."""
    from bot.campaign.lifecycle import Lifecycle
    from bot.campaign.manual import record_manual_reply
    from bot.clock import SystemClock

    result = record_manual_reply(app_state.db, letter, parse_datetime(at, "--at"), channel, note,
                                 SystemClock(), Lifecycle(app_state.calendar()))
    typer.echo(f"letter {result.id}: {result.state}")
