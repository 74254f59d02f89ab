"""`mailbox-bot run`: the unattended daemon (bot.daemon)."""

from __future__ import annotations

from functools import partial

import typer

from bot.cli.common import app_state

HELP = "Run the campaigns unattended: send due letters, poll open ones; stops cleanly on SIGTERM or Ctrl-C."


def run(
    log_json: bool = typer.Option(False, "--log-json", help="One JSON object a line instead of text."),
    tick: float = typer.Option(30.0, "--tick", metavar="SECONDS", help="How often to look for due work."),
    identity: str = typer.Option("", "--identity", metavar="NAME", help="Inspector identity whose saved logins to use."),
) -> None:
    """Run the campaigns unattended: send due letters, poll open ones; stops cleanly on SIGTERM or Ctrl-C."""
    from bot.campaign.control import build_targets
    from bot.daemon import Daemon, EventLog, run_until_signalled
    from bot.errors import UserError

    if tick <= 0:
        raise UserError(f"--tick: {tick} is not a positive number of seconds")
    clock = app_state.clock
    # Campaigns remember the scenarios folder they were planned with; one without (a replay
    # letter) takes its templates from this workspace.
    targets_for = partial(build_targets, default_scenarios_dir=app_state.config.paths.scenarios_dir)
    daemon = Daemon(app_state.db, app_state.config, clock, app_state.calendar(), targets_for,
                    EventLog(clock, as_json=log_json), tick_seconds=tick, identity=identity)
    run_until_signalled(daemon)
