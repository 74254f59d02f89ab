"""Which folders the package is made of. Everything else about the project is in pyproject.toml.

The design keeps the Alembic migrations in `db/` and the platform templates in
`scenarios/platforms/` at the top of the repository, yet both must be installed with the program
(a `pip install mailbox-bot` has no repository). `package_dir` maps them to sub-packages of `bot`
(`bot.migrations`, `bot.builtin_scenarios`), for the wheel and the editable install alike.
pyproject.toml cannot say this: its package discovery does not find mapped folders, so the
list of packages is computed here.
"""

from setuptools import find_namespace_packages, setup

MAPPED = {
    "bot.migrations": "db",
    "bot.migrations.versions": "db/versions",
    "bot.builtin_scenarios": "scenarios",
    "bot.builtin_scenarios.platforms": "scenarios/platforms",
}

setup(
    # Namespace discovery, so that data folders inside bot/ (templates, letter banks) are
    # packages too and their files are installed.
    packages=find_namespace_packages(include=["bot", "bot.*"]) + list(MAPPED),
    package_dir=MAPPED,
    package_data={
        "bot": ["**/*.html", "**/*.toml", "**/*.json", "**/*.txt", "**/*.js", "workspace/starter/gitignore"],
        "bot.migrations": ["script.py.mako"],
        # Only the templates: scenarios/sites holds the repository's sandbox practice sites.
        "bot.builtin_scenarios.platforms": ["*.toml"],
    },
)
