"""`mailbox-bot demo`: the whole job on the built-in sandbox, a quarter in seconds."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import typer

from bot.cli.common import app_state

HELP = "Run a whole campaign on the built-in sandbox portal with a simulated clock and write the table."


def demo(
    roster: str = typer.Option(None, "--roster", metavar="FILE", help="Roster TOML (default: the bundled Baoji 2024 Q2 check)."),
    out: str = typer.Option("demo-out", "--out", metavar="DIR", help="Where the table files, the demo database and evidence go (regenerated)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the report JSON to stdout."),
) -> None:
    """Run a whole campaign on the built-in sandbox portal with a simulated clock and write the table."""
    from rich.console import Console

    from bot.campaign.results import campaign_rows
    from bot.campaign.simulate import simulate
    from bot.clock import SimClock, local
    from bot.report import report_dict, write_all
    from bot.report.summary import notice_sentence
    from bot.roster import default_roster_path, load_roster
    from bot.sandbox import Sandbox
    from bot.store.db import Database

    roster_obj = load_roster(Path(roster) if roster else default_roster_path())
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The demo has its own database and evidence in DIR, made afresh on each run.
    for stale in ("demo.sqlite3", "demo.sqlite3-wal", "demo.sqlite3-shm"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "evidence", ignore_errors=True)
    db = Database(f"sqlite:///{(out_dir / 'demo.sqlite3').resolve()}")
    config = app_state.config
    calendar = app_state.calendar()
    console = Console(stderr=True, quiet=as_json)
    clock = SimClock(roster_obj.campaign.submit_at)
    console.print(f"[bold]mailbox-bot demo[/]: campaign {roster_obj.campaign.name}, {len(roster_obj.site)} sandbox sites, "
                  f"{local(roster_obj.campaign.submit_at):%Y-%m-%d %H:%M} → {local(roster_obj.campaign.end_at):%Y-%m-%d %H:%M} (simulated)")

    last_day = [None]
    import time as _time

    started = _time.perf_counter()

    def progress(now, subs, polls, open_letters):
        day = local(now).date()
        if day != last_day[0]:
            last_day[0] = day
            console.print(f"  {day} {'一二三四五六日'[day.weekday()]}  submitted {subs:3d}  polls {polls:5d}  "
                          f"still watched {open_letters:3d}  [{_time.perf_counter() - started:5.1f} s]")

    with Sandbox(roster_obj, clock) as sandbox:
        result = asyncio.run(simulate(roster_obj, clock, sandbox.base_url, db, config,
                                      out_dir / "evidence", calendar, progress=progress))
    rows, meta = campaign_rows(db, roster_obj.campaign.name, calendar, generated_at=clock.now())
    files = write_all(rows, meta, out_dir)
    report = report_dict(rows, meta)
    if as_json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    s = report["summary"]
    console.print(f"done in {result.wall_seconds:.1f} s: {result.submissions} letters submitted, {result.polls} polls")
    console.print(f"sites {s['sites']}, letters {s['letters']}, replied within {meta.deadline_workdays} working days: "
                  f"{s['within_deadline_sites']}, same day: {s['same_day_sites']}, deleted: {s['deleted_sites']}, "
                  f"no reply: {s['no_reply_sites']}")
    typer.echo(notice_sentence(rows, meta))
    for kind, path in files.items():
        console.print(f"  {kind}: {path}")
