"""`mailbox-bot report CAMPAIGN`: the responsiveness table of a campaign in the database."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import app_state, print_json

HELP = "Write a campaign's responsiveness table (XLSX, CSV, HTML, Markdown, JSON) and print the notice's sentence."


def report(
    campaign: str = typer.Argument(..., help="Campaign name."),
    out: str = typer.Option(None, "--out", metavar="DIR", help="Write the table files here."),
    as_json: bool = typer.Option(False, "--json", help="Print the report JSON to stdout."),
    as_of: str = typer.Option(None, "--as-of", metavar="TIME",
                              help="Verdicts as of this moment (ISO 8601; a date alone = the end of that day; "
                                   "default now). A letter whose deadline is later is 'awaiting', not 'no reply'."),
) -> None:
    """Write a campaign's responsiveness table (XLSX, CSV, HTML, Markdown, JSON) and print the notice's sentence."""
    from bot.campaign.results import campaign_rows
    from bot.cli.common import parse_as_of
    from bot.report import report_dict, write_all
    from bot.report.summary import notice_sentence

    now = app_state.clock.now()
    moment = parse_as_of(as_of, "--as-of") if as_of else now
    rows, meta = campaign_rows(app_state.db, campaign, app_state.calendar(), as_of=moment, generated_at=now)
    if out:
        for kind, path in write_all(rows, meta, Path(out)).items():
            typer.echo(f"{kind}: {path}", err=True)
    if as_json:
        print_json(report_dict(rows, meta))
    else:
        typer.echo(notice_sentence(rows, meta))
