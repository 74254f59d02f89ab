"""`mailbox-bot init [DIR]`: a starter workspace (bot.workspace)."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = ("Write a starter workspace in DIR (default: this folder): mailbox-bot.toml, the accounts file, "
        "an example site and campaign, .gitignore. Never overwrites a file.")


def init(folder: Path = typer.Argument(Path("."), metavar="DIR", show_default=False,
                                       help="The workspace folder (made if missing; default: this folder).")) -> None:
    from bot.workspace import init_workspace

    written = init_workspace(folder)
    for path in written:
        typer.echo(f"wrote {path}")
    here = "" if folder == Path(".") else f"cd {folder} && "
    typer.echo(f"next: {here}mailbox-bot config check   (then edit the files: each one says what its keys mean)")
