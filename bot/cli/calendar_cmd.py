"""`mailbox-bot calendar ...`: Chinese working days, as the report counts them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import typer

from bot.cli.common import (app_state, check_days, parse_cutoff, parse_datetime, parse_when,
                            print_json, warn)
from bot.clock import local
from bot.errors import UserError

app = typer.Typer(help="Chinese working days: elapsed days, deadlines, holidays and make-up days.",
                  no_args_is_help=True)

ESTIMATE_WARNING = ("{year} is past the last officially published holiday schedule "
                    "({official}): the result is an estimate")


def _warn_estimated(cal, *days: date) -> None:
    for year in sorted({d.year for d in days if cal.is_estimated(d)}):
        warn(ESTIMATE_WARNING.format(year=year, official=cal.official_through))


@app.command()
def between(
    submitted: str = typer.Argument(..., help="Submission time, ISO 8601 (naive = Asia/Shanghai)."),
    replied: str = typer.Argument(..., help="Reply time or date, ISO 8601."),
    days: int = typer.Option(5, "--days", help="Deadline in working days."),
    cutoff: str = typer.Option(None, "--cutoff", metavar="HH:MM", help="Receipt cut-off: later letters count from the next working day."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Working days from submission to reply, same-day and within-deadline verdicts."""
    s = parse_datetime(submitted, "SUBMITTED")
    r = parse_when(replied, "REPLIED")
    cal = app_state.calendar()
    try:
        b = cal.between(s, r, check_days(days), parse_cutoff(cutoff))
    except ValueError as e:
        raise UserError(f"{e} (SUBMITTED {submitted}, REPLIED {replied})") from None
    r_day = local(r).date() if isinstance(r, datetime) else r
    _warn_estimated(cal, local(s).date(), r_day, b.deadline.date())
    out = {"working_days": b.working_days, "same_day": b.same_day,
           "within_deadline": b.within_deadline, "deadline": b.deadline.isoformat(),
           "estimated": b.estimated}
    if as_json:
        print_json(out)
    else:
        typer.echo(f"{b.working_days} working day(s); same day: {'yes' if b.same_day else 'no'}; "
                   f"within {days}: {'yes' if b.within_deadline else 'no'} (deadline {b.deadline:%Y-%m-%d %H:%M:%S %z})"
                   + (" [estimated]" if b.estimated else ""))


@app.command()
def deadline(
    submitted: str = typer.Argument(..., help="Submission time, ISO 8601 (naive = Asia/Shanghai)."),
    days: int = typer.Option(5, "--days", help="Deadline in working days."),
    cutoff: str = typer.Option(None, "--cutoff", metavar="HH:MM", help="Receipt cut-off."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The reply deadline: 23:59:59 of the N-th working day after submission."""
    s = parse_datetime(submitted, "SUBMITTED")
    cal = app_state.calendar()
    when, estimated = cal.deadline(s, check_days(days), parse_cutoff(cutoff))
    _warn_estimated(cal, local(s).date(), when.date())
    if as_json:
        print_json({"deadline": when.isoformat(), "estimated": estimated})
    else:
        typer.echo(f"{when:%Y-%m-%d %H:%M:%S %z}" + (" [estimated]" if estimated else ""))


@app.command("is-workday")
def is_workday(
    day: str = typer.Argument(..., metavar="DATE", help="A date, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Whether a date is a working day, and why (holiday name, 调休上班, weekend)."""
    value = parse_when(day, "DATE")
    if isinstance(value, datetime):
        value = local(value).date()
    cal = app_state.calendar()
    info = cal.day(value)
    _warn_estimated(cal, value)
    if as_json:
        print_json({"date": value.isoformat(), "workday": info.workday, "reason": info.reason,
                    "estimated": info.estimated})
    else:
        typer.echo(f"{value} {'working day' if info.workday else 'day off'}: {info.reason}"
                   + (" [estimated]" if info.estimated else ""))


@app.command()
def month(
    month: str = typer.Argument(None, metavar="YYYY-MM", help="Month to show (default: this month, Asia/Shanghai)."),
    quarter: bool = typer.Option(False, "--quarter", help="Show the whole quarter the month is in."),
) -> None:
    """Print a month (or quarter) of days with their working-day status."""
    if month is None:
        from bot.clock import SystemClock

        today = local(SystemClock().now()).date()
        first = today.replace(day=1)
    else:
        try:
            first = date.fromisoformat(month + "-01")
        except ValueError:
            raise UserError(f"YYYY-MM: {month!r} is not a month (expected e.g. 2024-05)") from None
    months = [first]
    if quarter:
        start = (first.month - 1) // 3 * 3 + 1
        months = [first.replace(month=start + i) for i in range(3)]
    cal = app_state.calendar()
    for m in months:
        typer.echo(f"{m:%Y-%m}")
        d = m
        while d.month == m.month:
            info = cal.day(d)
            mark = "上班" if info.workday else "休息"
            if info.reason not in ("工作日", "周六", "周日"):
                typer.echo(f"  {d} {'一二三四五六日'[d.weekday()]} {mark} {info.reason}")
            d += timedelta(days=1)
        workdays = sum(cal.is_workday(m + timedelta(days=i)) for i in range((d - m).days))
        typer.echo(f"  {workdays} working days" + (" [estimated]" if cal.is_estimated(m) else ""))
