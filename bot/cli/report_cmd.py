"""`mailbox-bot report CAMPAIGN`: the responsiveness table of a campaign in the database;
`mailbox-bot report --trend CAMPAIGN...`: how the sites did quarter after quarter."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import app_state, print_json
from bot.errors import UserError

HELP = ("Write a campaign's responsiveness table (XLSX, CSV, HTML, Markdown, JSON) and print the notice's sentence; "
        "with --trend, the trend over several campaigns.")


def report(
    campaigns: list[str] = typer.Argument(..., metavar="CAMPAIGN...", help="Campaign name (several, oldest first, with --trend)."),
    out: str = typer.Option(None, "--out", metavar="DIR", help="Write the table files here (trend.json/.xlsx/.html with --trend)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report JSON (the trend JSON with --trend) to stdout."),
    as_of: str = typer.Option(None, "--as-of", metavar="TIME",
                              help="Verdicts as of this moment (ISO 8601; a date alone = the end of that day; "
                                   "default now). A letter whose deadline is later is 'awaiting', not 'no reply'."),
    trend: bool = typer.Option(False, "--trend", help="Compare the campaigns named, in the order given: per site, per group "
                                                      "and overall; sites that failed twice or more; who improved or regressed."),
) -> None:
    """Write a campaign's responsiveness table (XLSX, CSV, HTML, Markdown, JSON) and print the notice's sentence."""
    from bot.cli.common import parse_as_of

    now = app_state.clock.now()
    moment = parse_as_of(as_of, "--as-of") if as_of else now
    if trend:
        return _trend(campaigns, out, as_json, moment, now)
    if len(campaigns) != 1:
        raise UserError(f"report takes one campaign, got {len(campaigns)} ({', '.join(campaigns)}); "
                        "to compare campaigns use --trend")
    from bot.campaign.results import campaign_rows
    from bot.report import report_dict, write_all
    from bot.report.summary import notice_sentence

    rows, meta = campaign_rows(app_state.db, campaigns[0], app_state.calendar(), as_of=moment, generated_at=now)
    if out:
        for kind, path in write_all(rows, meta, Path(out)).items():
            typer.echo(f"{kind}: {path}", err=True)
    if as_json:
        print_json(report_dict(rows, meta))
    else:
        typer.echo(notice_sentence(rows, meta))


def _trend(names: list[str], out: str | None, as_json: bool, moment, now) -> None:
    from bot.report.trend import load, trend_dict
    from bot.report.trend_writers import write_trend

    trend = load(app_state.db, names, app_state.calendar(), as_of=moment, generated_at=now)
    if out:
        for kind, path in write_trend(trend, Path(out)).items():
            typer.echo(f"{kind}: {path}", err=True)
    data = trend_dict(trend)
    if as_json:
        print_json(data)
        return
    for s in data["overall"]:
        rate = "—" if s["within_deadline_rate"] is None else f"{s['within_deadline_rate'] * 100:.1f}%"
        same = "—" if s["same_day_rate"] is None else f"{s['same_day_rate'] * 100:.1f}%"
        typer.echo(f"{s['campaign']}: sites {s['sites']} (decided {s['decided_sites']}), within deadline {rate}, "
                   f"same day {same}, median {s['median_working_days']} / p90 {s['p90_working_days']} working days, "
                   f"deleted {s['deleted_sites']}, no reply {s['no_reply_sites']}")
    typer.echo("failed in two or more campaigns: " + ("、".join(data["repeat_failures"]) or "none"))
    for word, items in (("improved", data["improved"]), ("regressed", data["regressed"])):
        for it in items:
            typer.echo(f"{word}: {it['site']} ({it['from_campaign']} {it['from']} → {it['to_campaign']} {it['to']})")
    typer.echo("(rates are over decided sites; undecided sites are left out of the denominator)")
