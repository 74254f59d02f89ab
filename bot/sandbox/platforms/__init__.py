"""The platform archetypes the sandbox can play (see docs/sandbox.md for their pages)."""

from __future__ import annotations

import jinja2

from bot.sandbox.platforms.base import Platform
from bot.sandbox.platforms.board import Board
from bot.sandbox.platforms.confirm import Confirm
from bot.sandbox.platforms.hdjlpt import Hdjlpt
from bot.sandbox.platforms.igi import Igi
from bot.sandbox.platforms.jact import Jact
from bot.sandbox.platforms.legacy import Legacy
from bot.sandbox.platforms.minimal import Minimal

ARCHETYPES: dict[str, type[Platform]] = {"jact": Jact, "legacy": Legacy, "minimal": Minimal, "igi": Igi, "hdjlpt": Hdjlpt,
                                     "board": Board, "confirm": Confirm}


def make_platforms(env: jinja2.Environment) -> dict[str, Platform]:
    return {name: cls(env) for name, cls in ARCHETYPES.items()}
