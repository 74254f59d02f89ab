"""The `mailbox-bot` command line.

Every command that fails for a reason the user can fix prints one line to stderr and exits 2;
no traceback reaches the user for bad input.
"""

from __future__ import annotations

import sys

import typer

from bot.cli import (calendar_cmd, check_cmd, config_cmd, db_cmd, inspect_cmd, login_cmd, mail_cmd, replay_cmd,
                     reply_cmd, report_cmd)
from bot.cli import evidence_cmd, scaffold_cmd
from bot.cli import campaign_cmd, poll_cmd, run_cmd
from bot.cli import letters_cmd
from bot.cli import serve_cmd
from bot.cli import init_cmd
from bot.cli.common import app_state
from bot.errors import UserError

app = typer.Typer(
    name="mailbox-bot",
    help="Check how government websites answer letters sent through their leadership and mayor's mailboxes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    config: str = typer.Option(None, "--config", "-c", metavar="FILE",
                               help="Config TOML (default: $MAILBOX_BOT_CONFIG, ./mailbox-bot.toml, else built-in defaults). "
                                    "Its folder is the workspace (without one: this folder); `mailbox-bot init` writes one."),
) -> None:
    app_state.config_path = config


app.command("init", help=init_cmd.HELP)(init_cmd.init)
app.add_typer(calendar_cmd.app, name="calendar")
app.add_typer(db_cmd.app, name="db")
app.add_typer(config_cmd.app, name="config")
app.add_typer(mail_cmd.app, name="mail")
app.add_typer(reply_cmd.app, name="reply")
app.add_typer(inspect_cmd.app, name="inspect")
app.command("login", help=login_cmd.HELP)(login_cmd.login)
app.add_typer(evidence_cmd.app, name="evidence")
app.add_typer(campaign_cmd.app, name="campaign")
app.add_typer(letters_cmd.app, name="letters")
app.command("replay", help=replay_cmd.HELP)(replay_cmd.replay)
app.command("check", help=check_cmd.HELP)(check_cmd.check)
app.command("report", help=report_cmd.HELP)(report_cmd.report)
app.command("scaffold", help=scaffold_cmd.HELP)(scaffold_cmd.scaffold)
app.command("run", help=run_cmd.HELP)(run_cmd.run)
app.command("poll", help=poll_cmd.HELP)(poll_cmd.poll)
app.command("serve", help=serve_cmd.HELP)(serve_cmd.serve)


def _register_optional() -> None:
    # Imported here so that `calendar` keeps working even while a heavier part is broken.
    from bot.cli import demo_cmd, sandbox_cmd

    app.command("demo", help=demo_cmd.HELP)(demo_cmd.demo)
    app.add_typer(sandbox_cmd.app, name="sandbox")


try:
    _register_optional()
except ImportError:  # the modules arrive with the first end-to-end slice
    pass


def main() -> None:
    # Usage mistakes (Click's, inside Typer) and everything the user can fix that our code finds
    # (UserError) come out as one line on stderr with exit code 2; never a traceback.
    try:
        code = app(standalone_mode=False)
    except UserError as e:
        print(f"mailbox-bot: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("mailbox-bot: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
            raise
        ctx = getattr(e, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        message = " ".join(e.format_message().split())
        if not message:       # no arguments: the help was shown, nothing went wrong
            sys.exit(0)
        print(f"mailbox-bot: error: {message}{hint}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
