"""Which Chromium to drive, and how to start it.

Order: the configured executable, $MAILBOX_BOT_CHROMIUM, a system Chromium on PATH, else
Playwright's own build (`playwright install chromium`, the normal route on a desktop machine).
"""

from __future__ import annotations

import os
import shutil

SYSTEM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Without these Chromium keeps trying to reach update and sync hosts; on machines with no
# general internet that is noise at best and slow start-up at worst.
QUIET_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    # Headless pages need no GPU process; software compositing is cheaper on small machines.
    "--disable-gpu",
    # The bot never goes back: keeping old pages alive for the back button only costs CPU.
    # Site isolation puts every site in a renderer process of its own: on a campaign that visits
    # a new site for every letter, starting those processes costs more than the pages. The bot's
    # contexts hold no one's secrets across sites (a context is lent to a site it has never
    # visited, bot.browser.engine.Browser.page), so the processes are shared instead.
    "--disable-features=BackForwardCache,IsolateOrigins,site-per-process",
    "--disable-site-isolation-trials",
]


def chromium_executable(configured: str = "") -> str | None:
    """A Chromium binary path, or None to let Playwright use its own download."""
    for candidate in (configured, os.environ.get("MAILBOX_BOT_CHROMIUM", "")):
        if candidate:
            return candidate
    for name in SYSTEM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def launch_args() -> list[str]:
    # As many renderer processes as the machine has cores: more only take turns on them.
    args = [*QUIET_ARGS, f"--renderer-process-limit={max(2, os.cpu_count() or 2)}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
    return args


def launch_options(configured_executable: str = "", headless: bool = True,
                   slow_mo_ms: float | None = None) -> dict:
    """Keyword arguments for `playwright.chromium.launch(...)`."""
    opts: dict = {"headless": headless, "args": launch_args()}
    exe = chromium_executable(configured_executable)
    if exe:
        opts["executable_path"] = exe
    if slow_mo_ms:
        opts["slow_mo"] = slow_mo_ms
    return opts
