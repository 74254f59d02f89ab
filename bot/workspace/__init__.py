"""A starter workspace (`mailbox-bot init`): the files a new user edits rather than writes.

The workspace is the folder the commands are run in (or the config file's folder): the config,
the accounts file, scenarios/sites/, campaigns/, and what the program makes there at run time
(the database, evidence, saved logins, replay output). The starter files are package data in
starter/, laid out as they are written; each loads as written (tests/test_workspace.py).
"""

from __future__ import annotations

from pathlib import Path

from bot.errors import UserError

STARTER = Path(__file__).with_name("starter")
# (file in starter/, path in the workspace). The .gitignore is stored without its dot: a dotfile
# in a package is easy to lose on the way to a wheel.
FILES = (
    ("mailbox-bot.toml", "mailbox-bot.toml"),
    ("mailbox_accounts.toml", "mailbox_accounts.toml"),
    ("scenarios/sites/example.toml", "scenarios/sites/example.toml"),
    ("campaigns/example.toml", "campaigns/example.toml"),
    ("gitignore", ".gitignore"),
)


def init_workspace(folder: Path) -> list[Path]:
    """Writes the starter files into `folder` (made if missing) and returns their paths. Nothing
    that exists is overwritten: when any target exists, nothing at all is written."""
    targets = [(STARTER / src, folder / dst) for src, dst in FILES]
    for _, dst in targets:
        _refuse_existing(folder, dst)
    written: list[Path] = []
    for src, dst in targets:
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            # "x": never replace a file that appeared since the check above.
            with open(dst, "xb") as f:
                f.write(src.read_bytes())
        except OSError as e:      # no permission, a full disk, a file that appeared meanwhile
            done = ", ".join(str(p) for p in written) or "nothing"
            raise UserError(f"cannot write it ({e.strerror or e}); written before it: {done}", where=str(dst)) from None
        written.append(dst)
    return written


def _refuse_existing(folder: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        raise UserError(f"{dst} exists; nothing was written (init never overwrites a file: "
                        "move it away, or init another folder)")
    # A file where a folder must be: DIR itself, scenarios/, campaigns/...
    for parent in dst.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{parent} is a file where init would make a folder; nothing was written")
        if parent == folder:
            break
