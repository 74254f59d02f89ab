"""`pip install` of the wheel, not the editable install: the program runs without the repository.

A wheel is built from a copy of the sources and installed into a fresh virtual environment made
here; the commands then run from an empty folder. Offline and fast: the wheel is built with
this environment's setuptools (no build isolation, nothing downloaded), and the fresh
environment gets the already-installed dependencies through a .pth file naming this
environment's site-packages. Python adds such a path to sys.path but does not process the .pth
files inside it, so the editable install's import hook does not leak in: `bot` can only come
from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import REPO
from test_demo import TABLE_FILES, write_roster

pytestmark = pytest.mark.slow

# What the wheel is built from: the inputs of setup.py and pyproject.toml.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "bot", "db", "scenarios")


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(fresh venv's bin folder, its site-packages, the wheel's file names), the wheel installed."""
    setuptools = tuple(int(x) for x in version("setuptools").split(".")[:1])
    assert setuptools >= (77,), "the test extras bring setuptools>=77: run scripts/setup.sh --test"
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(REPO / name, src / name)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist, src], cwd=tmp)
    (wheel,) = dist.glob("mailbox_bot-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    (site / "mailbox_bot_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    return venv / "bin", site, names


@pytest.fixture
def user(installed, tmp_path):
    """Runs a command of the fresh environment, as a user would, in an empty folder."""
    bindir, _, _ = installed
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAILBOX_BOT_CONFIG", "MAILBOX_BOT_DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return _run([bindir / args[0], *args[1:]], cwd=work, env=env, timeout=timeout)

    run.work = work
    return run


def test_the_package_and_its_data_come_from_the_wheel(installed, user):
    _, site, names = installed
    where = json.loads(user("python", "-c", """if True:
        import json, bot, bot.resources as r
        print(json.dumps({"bot": bot.__file__, "migrations": str(r.migrations_dir()),
                          "platforms": str(r.builtin_platforms_dir())}))""").stdout)
    for path in where.values():
        assert Path(path).is_relative_to(site), where
        assert not Path(path).is_relative_to(REPO), where
    migrations = Path(where["migrations"])
    assert (migrations / "env.py").is_file() and (migrations / "script.py.mako").is_file()
    assert sorted(p.name for p in (migrations / "versions").glob("0*.py")) == \
        sorted(p.name for p in (REPO / "db" / "versions").glob("0*.py"))
    assert sorted(p.name for p in Path(where["platforms"]).glob("*.toml")) == \
        sorted(p.name for p in (REPO / "scenarios" / "platforms").glob("*.toml"))
    # The starter workspace and the sandbox's data are in; the repository's practice sites and
    # bytecode caches are not.
    assert "bot/workspace/starter/gitignore" in names and "bot/sandbox/rosters/baoji-2024q2.toml" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("bot/builtin_scenarios/sites/")]


def test_commands_run_from_an_empty_folder(installed, user):
    from alembic.script import ScriptDirectory

    _, site, _ = installed
    assert "init" in user("mailbox-bot", "--help").stdout
    proc = user("mailbox-bot", "db", "upgrade")
    db_file = user.work / "mailbox-bot.sqlite3"
    assert str(db_file) in proc.stdout and db_file.is_file()
    with sqlite3.connect(db_file) as conn:
        head = ScriptDirectory(str(REPO / "db")).get_current_head()
        assert conn.execute("select version_num from alembic_version").fetchone()[0] == head
    between = json.loads(user("mailbox-bot", "calendar", "between", "2024-04-26T10:00", "2024-05-07T15:00",
                              "--json").stdout)
    assert between["working_days"] == 5            # the make-up Sunday counts, May Day does not
    # A starter workspace from the installed files, whose templates are the built-in ones.
    user("mailbox-bot", "init", "ws")
    assert "ok (1 site files)" in user("mailbox-bot", "--config", "ws/mailbox-bot.toml", "config", "check").stdout
    shown = json.loads(user("mailbox-bot", "--config", "ws/mailbox-bot.toml", "config", "show").stdout)
    assert shown["platform_templates"]["jact"]["origin"] == "built-in"
    assert Path(shown["platform_templates"]["jact"]["file"]).is_relative_to(site)


def test_demo_runs_from_an_empty_folder(user):
    """A tiny roster, saved with a BOM as Notepad would, played with the real Chromium."""
    roster = write_roster(user.work / "tiny.toml")
    roster.write_text("\ufeff" + roster.read_text(encoding="utf-8"), encoding="utf-8")
    user("mailbox-bot", "demo", "--no-mail", "--roster", "tiny.toml", "--out", "out", timeout=600)
    out = user.work / "out"
    for name in TABLE_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["sites"] == 2 and report["summary"]["within_deadline_sites"] == 2
    assert sorted(p.name for p in user.work.iterdir()) == ["out", "tiny.toml"]     # all of it in --out
