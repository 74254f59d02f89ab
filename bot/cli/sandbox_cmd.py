"""`mailbox-bot sandbox ...`: serve the simulated portal for practice and scenario writing."""

from __future__ import annotations

import threading
from pathlib import Path

import typer

from bot.cli.common import app_state, parse_datetime
from bot.errors import UserError

app = typer.Typer(
    help="The sandbox: simulated government sites (three platform archetypes) on loopback, "
         "for trying the bot and writing scenarios. Page contract: docs/sandbox.md.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """The simulated portal (keeps `serve` a sub-command even while it is the only one)."""


@app.command()
def serve(
    roster: Path = typer.Option(None, "--roster", metavar="FILE",
                                help="Roster TOML of sites and behaviours (default: the bundled Baoji 2024 Q2 roster)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8710, "--port", help="Port to listen on (0 = any free port)."),
    start: str = typer.Option(None, "--start", metavar="ISO",
                              help="Freeze the sandbox's clock at this time (e.g. 2024-04-26T10:00:00+08:00; "
                                   "naive = Asia/Shanghai). Default: the system clock."),
    log: bool = typer.Option(False, "--log", help="Print every request."),
    hosts_per_site: bool = typer.Option(False, "--hosts-per-site",
                                        help="Each site on a loopback address of its own (127.0.1.N), as real "
                                             "sites are on servers of their own."),
    lmtp: str = typer.Option(None, "--lmtp", metavar="HOST:PORT",
                             help="Send the sites' emails (reply.channel email/both, ack = true) by LMTP "
                                  "to this server. Without it the sites send no email."),
) -> None:
    """Serve every roster site until Ctrl-C, printing each site's URL."""
    from bot.clock import SimClock, SystemClock, local
    from bot.sandbox.roster import default_roster_path, load_roster
    from bot.sandbox import Sandbox

    loaded = load_roster(roster or default_roster_path())
    if start is not None:
        clock = SimClock(parse_datetime(start, "--start"))
        clock_note = f"simulated, frozen at {local(clock.now()):%Y-%m-%d %H:%M:%S %z}"
    else:
        clock = app_state.clock        # the system clock, or $MAILBOX_BOT_CLOCK shared with a daemon
        clock_note = "system clock" if isinstance(clock, SystemClock) else f"scaled clock {clock.spec()}"
    transport = None
    if lmtp is not None:
        from bot.sandbox.mail import LmtpTransport

        lhost, _, lport = lmtp.rpartition(":")
        if not lhost or not lport.isdigit():
            raise UserError(f"--lmtp: {lmtp!r} is not HOST:PORT (e.g. 127.0.0.1:24)")
        transport = LmtpTransport(lhost, int(lport))
    sandbox = Sandbox(loaded, clock, host=host, port=port, calendar=app_state.calendar(),
                      log=typer.echo if log else None, mail=transport, hosts_per_site=hosts_per_site)
    try:
        sandbox.start()
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                        "choose another with --port (0 = any free port)") from None
    try:
        typer.echo(f"sandbox: roster {loaded.source} ({len(loaded.site)} sites), {clock_note}")
        typer.echo(f"index: {sandbox.url}/")
        width = max(len(s.name) for s in loaded.site)
        for s in loaded.site:
            boxes = "  ".join(f"{sandbox.mailbox_label(s.name, m)} {sandbox.base_url(s.name)}/{m}/"
                              for m in s.mailboxes)
            typer.echo(f"  {s.name:\u3000<{width}} {'[' + s.platform + ']':<9} {boxes}")
        if transport is not None:
            typer.echo(f"email: by {transport}, checked every 10 s of wall time")
        elif loaded.emails():
            typer.echo("email: off (no --lmtp): sites that answer by email send nothing")
        typer.echo("Press Ctrl-C to stop.")
        stop = threading.Event()
        while not stop.wait(10 if transport is not None else 3600):
            sandbox.deliver_due_mail()
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        sandbox.stop()
