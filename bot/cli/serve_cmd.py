"""`mailbox-bot serve`: the read-only dashboard over the configured database."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import typer

from bot.cli.common import app_state
from bot.errors import UserError

HELP = ("Serve a read-only dashboard of the database: campaigns and their progress, each campaign's table with "
        "charts and filters, each letter's timeline and evidence, the trends. Loopback only unless "
        "$MAILBOX_BOT_DASHBOARD_PASSWORD is set.")


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback requires a login: "
                                                         "set $MAILBOX_BOT_DASHBOARD_PASSWORD."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    evidence_dir: str = typer.Option(None, "--evidence-dir", metavar="DIR",
                                     help="Where the evidence files are (default: the config's paths.evidence_dir; "
                                          "for a demo, DIR/evidence next to DIR/demo.sqlite3)."),
) -> None:
    """Serve the read-only dashboard."""
    from bot.dashboard.app import PASSWORD_ENV, create_app, password_digest

    password = os.environ.get(PASSWORD_ENV, "")
    loopback = is_loopback(host)
    if not loopback and not password:
        raise UserError(f"--host {host} is not a loopback address: set ${PASSWORD_ENV} to require a login "
                        "there, or serve on 127.0.0.1")
    if not app_state.database_exists():
        raise UserError(f"no database at {app_state.config.database.url} (nothing to show; "
                        "run a campaign or `mailbox-bot demo` first, or set $MAILBOX_BOT_DATABASE_URL)")
    evidence = Path(evidence_dir) if evidence_dir else Path(app_state.config.paths.evidence_dir)
    db = app_state.db
    db.require_current()            # read-only: never migrates
    digest = None if loopback else password_digest(password)
    app = create_app(db, app_state.calendar(), app_state.clock, evidence, password_digest=digest)

    # Bind here, so that a busy port is one line, not a server's traceback.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    login = ("no login (loopback only)" if loopback else
             f"login required (any user name, the password in ${PASSWORD_ENV}); plain HTTP: put it behind TLS")
    typer.echo(f"mailbox-bot dashboard (read-only) on http://{url_host}:{bound_port}/ — {login}; "
               f"evidence from {evidence}", err=True)

    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
