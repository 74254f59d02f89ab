"""Shared fixtures: a private database file, the real Chromium, a loopback HTTP server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.browser.launch import launch_options

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches through this: use the same Chromium as the product."""
    return {**browser_type_launch_args, **launch_options()}


def run_async(coro):
    """asyncio.run in a thread of its own: pytest-playwright's sync fixtures, once a module has
    used them, leave a loop marked as running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def run_cli(tmp_path, db_url):
    """Runs the installed `mailbox-bot` as a user would, in a private directory and database."""

    def run(*args: str, env: dict | None = None, input: str | None = None, check: bool = False):
        full_env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": db_url, **(env or {})}
        full_env.pop("MAILBOX_BOT_CONFIG", None)
        proc = subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=full_env,
                              capture_output=True, text=True, input=input, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"mailbox-bot {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    return run


# A real Dovecot (IMAP + LMTP on loopback) for the mail tests: see tests/mailserver.py.
sys.path.insert(0, str(Path(__file__).parent))
from mailserver import dovecot, dovecot_server  # noqa: E402, F401
