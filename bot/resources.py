"""Where the data shipped with the program lives: found through the installed package.

The Alembic migrations stay in `db/` and the built-in platform templates in
`scenarios/platforms/` at the top of the repository (the layout the design requires);
setup.py installs them as the packages `bot.migrations` and `bot.builtin_scenarios`. Asking the
import system for those packages finds them wherever they are: inside site-packages after
`pip install mailbox-bot`, or in the source tree for an editable install. Nothing here looks
at the repository or the working directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MIGRATIONS_PACKAGE = "bot.migrations"
BUILTIN_SCENARIOS_PACKAGE = "bot.builtin_scenarios"


def package_folder(package: str) -> Path:
    """The folder of an installed package (a regular or a namespace package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        # Only a broken installation gets here: say which part is missing.
        raise ModuleNotFoundError(f"mailbox-bot is installed without its package {package}; reinstall it")
    return Path(next(iter(spec.submodule_search_locations)))


def migrations_dir() -> Path:
    """Alembic's script location: env.py, script.py.mako and versions/."""
    return package_folder(MIGRATIONS_PACKAGE)


def builtin_platforms_dir() -> Path:
    """The platform templates that come with the program (`<name>.toml`)."""
    return package_folder(BUILTIN_SCENARIOS_PACKAGE) / "platforms"
