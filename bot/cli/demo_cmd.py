"""`mailbox-bot demo`: the whole job on the built-in sandbox, a quarter in seconds."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import typer

from bot.cli.common import app_state
from bot.errors import UserError

# The bundled quarters, oldest first (bot/sandbox/rosters/).
BUNDLED_ROSTERS = ("baoji-2024q2.toml", "baoji-2024q3.toml")


def bundled_roster_path(name: str) -> Path:
    from bot.sandbox.roster import default_roster_path

    return default_roster_path().parent / name

HELP = "Run a whole campaign on the built-in sandbox portal with a simulated clock and write the table."


def demo(
    roster: list[str] = typer.Option(None, "--roster", metavar="FILE",
                                     help="Roster TOML (default: the bundled Baoji 2024 Q2 check). Repeat it to play "
                                          "several campaigns one after another in one database and write their trend."),
    quarters: int = typer.Option(1, "--quarters", min=1, max=len(BUNDLED_ROSTERS),
                                 help="Without --roster: play this many bundled quarters (2: 2024 Q2 then Q3) and write the trend."),
    out: str = typer.Option("demo-out", "--out", metavar="DIR", help="Where the table files, the demo database and evidence go (regenerated)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the report JSON to stdout (the trend JSON with several campaigns)."),
    no_mail: bool = typer.Option(False, "--no-mail", help="Play without the email channel even when Dovecot is installed."),
) -> None:
    """Run a whole campaign on the built-in sandbox portal with a simulated clock and write the table."""
    from rich.console import Console

    from bot.sandbox.roster import load_roster
    from bot.store.db import Database

    if roster and quarters != 1:
        raise UserError("--quarters plays the bundled rosters; with --roster, name each roster instead")
    paths = [Path(r) for r in roster] if roster else [bundled_roster_path(n) for n in BUNDLED_ROSTERS[:quarters]]
    rosters = [load_roster(p) for p in paths]
    names = [r.campaign.name for r in rosters]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise UserError(f"{paths[i]}: key 'campaign.name': {n!r} is also the campaign of {paths[names.index(n)]}; "
                            "each roster played in one demo needs a campaign name of its own")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The demo has its own database and evidence in DIR, made afresh on each run.
    for stale in ("demo.sqlite3", "demo.sqlite3-wal", "demo.sqlite3-shm"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "evidence", ignore_errors=True)
    shutil.rmtree(out_dir / "sessions", ignore_errors=True)
    db = Database(f"sqlite:///{(out_dir / 'demo.sqlite3').resolve()}")
    console = Console(stderr=True, quiet=as_json)
    several = len(rosters) > 1

    mail_server, reason = (None, "--no-mail") if no_mail else _start_mail_server()
    try:
        played = []
        for roster_obj in rosters:
            # With several campaigns each table goes to a folder of its own, the trend to DIR.
            table_dir = out_dir / _folder_name(roster_obj.campaign.name) if several else out_dir
            played.append(_play_one(roster_obj, db, out_dir, table_dir, console, mail_server, reason,
                                    print_sentence=not as_json))
    finally:
        if mail_server is not None:
            mail_server.cleanup()
    if not several:
        report = played[0]
        if as_json:
            json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        return

    from bot.report.trend import load as load_trend, trend_dict
    from bot.report.trend_writers import write_trend

    trend = load_trend(db, names, app_state.calendar(), as_of={r.campaign.name: r.campaign.end_at for r in rosters},
                       generated_at=max(r.campaign.end_at for r in rosters))
    files = write_trend(trend, out_dir)
    data = trend_dict(trend)
    if as_json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    console.print(f"trend over {', '.join(names)}: failed in two or more: "
                  f"{'、'.join(data['repeat_failures']) or 'none'}; improved {len(data['improved'])}, "
                  f"regressed {len(data['regressed'])}")
    for kind, path in files.items():
        console.print(f"  {kind}: {path}")


def _folder_name(campaign: str) -> str:
    """A campaign name as a folder name (letters, digits, CJK, - and _ kept)."""
    import re

    return re.sub(r"[^\w.-]+", "_", campaign).strip("._") or "campaign"


def _play_one(roster_obj, db, out_dir: Path, table_dir: Path, console, mail_server, reason, *, print_sentence: bool) -> dict:
    """One roster played into `db` on a simulated clock of its own; its table written to
    `table_dir`; returns the report dict."""
    import time as _time

    from bot.campaign.results import campaign_rows
    from bot.clock import SimClock, local
    from bot.login import SessionStore
    from bot.report import report_dict, write_all
    from bot.report.summary import notice_sentence
    from bot.sandbox import Sandbox
    from bot.sandbox.play import sandbox_inspector_login, simulate

    config = app_state.config
    calendar = app_state.calendar()
    clock = SimClock(roster_obj.campaign.submit_at)
    console.print(f"[bold]mailbox-bot demo[/]: campaign {roster_obj.campaign.name}, {len(roster_obj.site)} sandbox sites, "
                  f"{local(roster_obj.campaign.submit_at):%Y-%m-%d %H:%M} → {local(roster_obj.campaign.end_at):%Y-%m-%d %H:%M} (simulated)")

    last_day = [None]
    started = _time.perf_counter()

    def progress(now, subs, polls, open_letters):
        day = local(now).date()
        if day != last_day[0]:
            last_day[0] = day
            console.print(f"  {day} {'一二三四五六日'[day.weekday()]}  submitted {subs:3d}  polls {polls:5d}  "
                          f"still watched {open_letters:3d}  [{_time.perf_counter() - started:5.1f} s]")

    if mail_server is None:
        roster_obj = _without_email_only_sites(roster_obj, reason, console)
        mail_kw: dict = {}
        transport = None
    else:
        mail_kw, transport = _mail_setup(mail_server)
        console.print(f"  email channel on: private Dovecot on {mail_server.host}:{mail_server.imap_port} "
                      f"(replies to {mail_server.user}+<token>@{PLUS_DOMAIN} or <token>@{CATCHALL_DOMAIN})")
    # Every site on a host of its own, as on the real web (per-host politeness acts per site).
    with Sandbox(roster_obj, clock, mail=transport, hosts_per_site=True) as sandbox:
        if transport is not None:
            mail_kw["deliver_mail"] = sandbox.deliver_due_mail
        login_kw: dict = {}
        if any(site.login for site in roster_obj.site):
            # The demo's inspector logs in once; the session stays in DIR, mode 0600.
            sessions = SessionStore(out_dir / "sessions")
            login_kw = {"sessions": sessions, "log_in": sandbox_inspector_login(sandbox, sessions)}
        result = asyncio.run(simulate(roster_obj, clock, sandbox.base_url, db, config,
                                      out_dir / "evidence", calendar, progress=progress, **mail_kw, **login_kw))
    # The report is as of the roster's end: a letter whose deadline is later is still awaiting.
    rows, meta = campaign_rows(db, roster_obj.campaign.name, calendar, as_of=roster_obj.campaign.end_at,
                               generated_at=clock.now())
    files = write_all(rows, meta, table_dir)
    report = report_dict(rows, meta)
    s = report["summary"]
    mail_note = f" (email channel {result.mail_seconds:.1f} s)" if mail_server is not None else ""
    console.print(f"done in {result.wall_seconds:.1f} s{mail_note}: {result.submissions} submission attempts "
                  f"(retries after a fault included), {result.polls} polls")
    console.print(f"as of {local(meta.as_of):%Y-%m-%d %H:%M}: sites {s['sites']}, letters {s['letters']}, replied within "
                  f"{meta.deadline_workdays} working days: {s['within_deadline_sites']}, same day: {s['same_day_sites']}, "
                  f"deleted: {s['deleted_sites']}, no reply: {s['no_reply_sites']}, awaiting: {s['awaiting_sites']}")
    if print_sentence:
        typer.echo(notice_sentence(rows, meta))
    for kind, path in files.items():
        console.print(f"  {kind}: {path}")
    return report


from bot.sandbox.mailserver import CATCHALL_DOMAIN, PLUS_DOMAIN  # noqa: E402


def _start_mail_server():
    """(a private Dovecot, None) when `dovecot` is installed and starts, else (None, why)."""
    import shutil as _shutil

    from bot.sandbox.mailserver import Dovecot, DovecotError

    if not _shutil.which("dovecot") and not Path("/usr/sbin/dovecot").exists():
        return None, "Dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd)"
    server = Dovecot()
    try:
        return server.start(), None
    except (DovecotError, OSError) as e:
        server.cleanup()
        return None, f"Dovecot would not start ({str(e).splitlines()[0]})"


def _mail_setup(server) -> tuple[dict, object]:
    """simulate()'s mail arguments and the sandbox's transport for a private Dovecot: the
    inspector's identity uses plus-addressing, and the catch-all domain on minimal sites."""
    from bot.accounts import Identity
    from bot.mail.imap import ImapSettings
    from bot.sandbox.mail import ImapAppendTransport

    plus = Identity(name="demo", email=f"{server.user}@{PLUS_DOMAIN}", reply_address="plus",
                    catchall_domain=CATCHALL_DOMAIN)
    catchall = Identity(name="demo-catchall", email=f"{server.user}@{PLUS_DOMAIN}",
                        reply_address="catchall", catchall_domain=CATCHALL_DOMAIN)
    settings = ImapSettings(host=server.host, port=server.imap_port, user=server.user,
                            password=server.password, tls=False, folders=["INBOX"], timeout=30,
                            name="demo-inbox")
    transport = ImapAppendTransport(server.host, server.imap_port, server.user, server.password,
                                    domains=(PLUS_DOMAIN, CATCHALL_DOMAIN))
    kw = {"mail": settings, "identity": lambda t: catchall if t.record.platform == "minimal" else plus,
          "catchall_domains": (CATCHALL_DOMAIN,)}
    return kw, transport


def _without_email_only_sites(roster, reason: str, console):
    """The roster without the sites that answer only by email: with the email channel off their
    letters would look unanswered, so they are not written to at all, and the skip is said."""
    skipped = [s for s in roster.site if s.reply is not None and s.reply.channel == "email"]
    console.print(f"  [yellow]email channel off[/]: {reason}")
    if not skipped:
        return roster
    console.print(f"  skipped {len(skipped)} site(s) that answer only by email (no letter sent): "
                  + ", ".join(s.name for s in skipped))
    kept = roster.model_copy(update={"site": [s for s in roster.site if not any(s is k for k in skipped)]})
    kept._source = roster.source
    return kept
