"""`mailbox-bot campaign ...`: unattended campaigns from a campaign file.

`plan` shows what would be sent, to whom and when (it writes nothing anywhere); `start` stores
the campaign and its planned letters for the daemon (`mailbox-bot run`) to send in the send
windows; `status` counts letters per state; `stop` stops the daemon working on one.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bot.errors import UserError
from bot.cli.common import app_state, print_json, warn

app = typer.Typer(help="Unattended campaigns from a campaign file: plan, start, status, stop.",
                  no_args_is_help=True)

WEEKDAY = "一二三四五六日"


def _clock():
    # `app_state.clock` ($MAILBOX_BOT_CLOCK: a scaled clock shared with the sandbox) comes with
    # the daemon; without it, the system clock.
    clock = getattr(app_state, "clock", None)
    if clock is None:
        from bot.clock import SystemClock

        clock = SystemClock()
    return clock


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:          # piped: do not cut site names at 80 columns
        console = Console(width=160)
    return console


def _when(t) -> str:
    from bot.clock import local

    t = local(t)
    return f"{t:%Y-%m-%d} {WEEKDAY[t.weekday()]} {t:%H:%M}"


@app.command()
def plan(
    file: Path = typer.Argument(..., metavar="FILE", help="Campaign file (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Show what the campaign would send, to which site and mailbox, when and as whom.

    Nothing is sent and nothing is written (not even the database)."""
    from rich.table import Table

    from bot.campaign.control import plan_campaign
    from bot.campaign.spec import load_campaign_spec

    spec = load_campaign_spec(file)
    calendar = app_state.calendar()
    p = plan_campaign(spec, _clock(), calendar, app_state.config)
    if p.estimated:
        warn("letters are planned in a year past the last published holiday schedule: "
             "their working days are estimated")
    if as_json:
        print_json(p.to_json())
        return
    table = Table(title=f"campaign {spec.name}: {len(p.letters)} letters to {len(p.entries)} sites")
    for col in ("#", "site", "mailbox", "host", "planned (Asia/Shanghai)", "identity"):
        table.add_column(col, no_wrap=col != "site")
    for i, x in enumerate(p.letters, start=1):
        table.add_row(str(i), x.site, x.label, x.host, _when(x.planned_at), x.identity or "-")
    console = _console()
    console.print(table)
    for line in p.skipped:
        console.print(f"skipped: {line}")
    if p.letters:
        first, last = min(x.planned_at for x in p.letters), max(x.planned_at for x in p.letters)
        days = len({x.planned_at.date() for x in p.letters})
        console.print(f"send windows: {_when(first)} → {_when(last)} on {days} working day(s); "
                      f"deadline {spec.deadline_workdays} working days"
                      + (f", cut-off {spec.cutoff:%H:%M}" if spec.cutoff else ""))
    if p.next_campaign:
        console.print(f"next campaign: {p.next_campaign} ({spec.recurrence.every}ly"
                      + (", estimated: that year's holidays are not published yet)" if p.next_campaign_estimated else ")"))
    console.print(f"nothing was sent or stored. To start it: mailbox-bot campaign start {file}")


@app.command()
def start(
    file: Path = typer.Argument(..., metavar="FILE", help="Campaign file (TOML)."),
) -> None:
    """Store the campaign and plan one letter per mailbox in its send windows.

    The daemon (`mailbox-bot run`) sends them when due. A campaign name is started only once."""
    from sqlalchemy import select

    from bot.campaign.control import start_campaign
    from bot.campaign.spec import load_campaign_spec
    from bot.store import models as m

    spec = load_campaign_spec(file)
    db = app_state.db
    cid = start_campaign(db, spec, _clock(), app_state.calendar(), app_state.config)
    with db.session() as s:
        times = list(s.scalars(select(m.Letter.planned_at).where(m.Letter.campaign_id == cid)))
    line = f"campaign {spec.name} started: {len(times)} letters planned"
    if times:
        line += f", {_when(min(times))} → {_when(max(times))}"
    typer.echo(line + "; `mailbox-bot run` sends them when due, `mailbox-bot campaign status "
               f"{spec.name}` follows them")


@app.command()
def status(
    name: str = typer.Argument(None, metavar="[NAME]", help="Campaign name (default: every campaign)."),
    as_json: bool = typer.Option(False, "--json", help="JSON: an object for NAME, else a list of them."),
    watch: float = typer.Option(0.0, "--watch", metavar="SECONDS",
                                help="With NAME: progress bars refreshed every SECONDS while the daemon works, until nothing is left to do or Ctrl-C."),
) -> None:
    """Letters per state, letters past their deadline without a reply, and the next action time."""
    from rich.table import Table

    from bot.campaign.control import campaign_status

    if watch:
        if not name or watch < 0:
            raise UserError("--watch: give a campaign NAME and a positive number of seconds")
        _watch(name, watch)
        return
    rows = campaign_status(app_state.db, name, _clock().now(), app_state.calendar())
    if as_json:
        data = [r.to_json() for r in rows]
        print_json(data[0] if name else data)
        return
    if not rows:
        typer.echo("no campaigns yet (start one with: mailbox-bot campaign start FILE)")
        return
    table = Table()
    for col in ("campaign", "state", "letters", "per state", "overdue", "next action"):
        table.add_column(col, no_wrap=col != "per state")
    for r in rows:
        per_state = ", ".join(f"{k} {v}" for k, v in r.states.items() if v) or "-"
        table.add_row(r.name, r.state, str(r.letters), per_state, str(r.overdue),
                      _when(r.next_action_at) if r.next_action_at else "-")
    _console().print(table)
    from bot.campaign.control import DOUBT_FLAGS

    for r in rows:
        for flag, n in r.doubts.items():
            typer.echo(f"warning: {r.name}: {n} letter(s) {flag}: {DOUBT_FLAGS[flag]}", err=True)


@app.command()
def stop(
    name: str = typer.Argument(..., metavar="NAME", help="Campaign name."),
) -> None:
    """Stop a campaign: the daemon no longer sends or polls its letters (they keep their states)."""
    from bot.campaign.control import campaign_status, stop_campaign

    before = stop_campaign(app_state.db, name, _clock().now())
    if before == "stopped":
        typer.echo(f"campaign {name} was already stopped")
        return
    planned = campaign_status(app_state.db, name, _clock().now(), app_state.calendar())[0].states.get("planned", 0)
    typer.echo(f"campaign {name} stopped (was {before})"
               + (f"; {planned} planned letters will not be sent" if planned else ""))


SENT_STATES = ("submitted", "replied", "deleted", "never_visible", "overdue")


def _watch(name: str, every: float) -> None:
    """Two bars: letters sent (of all), letters answered or deleted (of those sent)."""
    import time as _time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.campaign.control import campaign_status

    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[note]}"), console=_console()) as bars:
        sent = bars.add_task("sent", total=None, note="")
        answered = bars.add_task("answered", total=None, note="")
        while True:
            (r,) = campaign_status(app_state.db, name, _clock().now(), app_state.calendar())
            n_sent = sum(r.states.get(k, 0) for k in SENT_STATES)
            n_answered = r.states.get("replied", 0) + r.states.get("deleted", 0)
            waiting = r.states.get("submit_uncertain", 0) + r.states.get("needs_inspector", 0)
            bars.update(sent, total=r.letters, completed=n_sent,
                        note=f"{waiting} waiting for the inspector" if waiting else "")
            bars.update(answered, total=max(n_sent, 1), completed=n_answered,
                        note=f"{r.overdue} overdue" if r.overdue else "")
            if r.next_action_at is None:
                break
            _time.sleep(every)
