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


class LoopThread:
    """One event loop in a thread of its own, for a module's long-lived Playwright objects
    (they belong to the loop that made them); `run(coro)` waits for the result."""

    def __init__(self):
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="engine-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def engine_browser(loop):
    """One Chromium for a module's engine tests (pytest-playwright's `browser` is the sync one)."""
    from bot.browser.pool import Browser
    from bot.config import load_config

    b = Browser(load_config().browser.executable_path, headless=True, concurrency=2)
    loop.run(b.__aenter__())
    yield b
    loop.run(b.__aexit__(None, None, None))


@pytest.fixture
def clock(request):
    """A simulated clock at the test module's START, for a test to move."""
    from bot.clock import SimClock

    return SimClock(request.module.START)


@pytest.fixture
def evidence(tmp_path):
    from bot.store.evidence import EvidenceStore

    return EvidenceStore(tmp_path / "evidence")


def letter_variables(sc, base_url: str, mailbox: str, site_name: str, fields: dict, *,
                     tracking_code: str = "", secret: str | None = None) -> dict:
    """The product's own flow variables (bot.campaign.worker.flow_variables) for a letter row
    that is never stored; `fields`: title, body, category, name, phone, email[, password]."""
    from bot.campaign.worker import Target, flow_variables
    from bot.scenario.schema import SiteRecord
    from bot.store import models as m

    row = m.Letter(title=fields["title"], body=fields["body"], category=fields["category"],
                   tracking_code=tracking_code, password=secret,
                   writer={k: fields.get(k, "") for k in ("name", "phone", "email", "password")})
    row.mailbox = m.Mailbox(kind=mailbox)
    record = SiteRecord(name=site_name, group="g", host_unit=site_name, base_url=base_url,
                        platform=sc.platform, mailboxes=[mailbox])
    return flow_variables(row, Target(record=record, scenario=sc, site_id=0))


def run_flow(loop, browser, evidence, sc, flow: str, variables: dict, *, site_name: str, answerer,
             dry_run: bool = False, on_step=None):
    """One flow through the product's engine in a fresh context (a poll may reuse a warm one);
    an answerer with a `page` attribute is given the page (to peek at the form's captcha key)."""
    from bot.browser.engine import FlowRunner

    async def go():
        runner = FlowRunner(sc, evidence, captcha=answerer, site_name=site_name, on_step=on_step)
        async with browser.page(fresh=flow == "submit") as page:
            if hasattr(answerer, "page"):
                answerer.page = page
            return await runner.run(page, flow, variables, dry_run=dry_run)

    return loop.run(go())


def one_line_error(proc, *needles: str, empty_stdout: bool = False) -> str:
    """Exit 2, exactly one non-empty line on stderr naming every needle, no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    if empty_stdout:
        assert proc.stdout.strip() == ""
    return lines[0]


@pytest.fixture(scope="module")
def sandbox(request):
    """A sandbox serving the test module's ROSTER from its START, for tests that never move the
    clock (a module may define its own `sandbox` instead)."""
    from bot.clock import SimClock
    from bot.sandbox.roster import roster_from_dict
    from bot.sandbox import Sandbox

    with Sandbox(roster_from_dict(request.module.ROSTER), SimClock(request.module.START)) as sb:
        yield sb


@pytest.fixture
def timed(request):
    """A private sandbox of the module's ROSTER whose clock (`.test_clock`) a test moves."""
    from bot.clock import SimClock
    from bot.sandbox.roster import roster_from_dict
    from bot.sandbox import Sandbox

    clock = SimClock(request.module.START)
    with Sandbox(roster_from_dict(request.module.ROSTER), clock) as sb:
        sb.test_clock = clock
        yield sb


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def run_cli(tmp_path, db_url):
    """Runs the installed `mailbox-bot` as a user would, in a private directory and database."""

    def run(*args: str, env: dict | None = None, input: str | None = None, check: bool = False):
        # The caller's environment never leaks a config in; a test may set one.
        inherited = {k: v for k, v in os.environ.items() if k != "MAILBOX_BOT_CONFIG"}
        full_env = {**inherited, "MAILBOX_BOT_DATABASE_URL": db_url, **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=full_env,
                              capture_output=True, text=True, input=input, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"mailbox-bot {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    return run


# -- two small campaigns played one after the other (tests/test_trend.py, tests/test_dashboard.py)

TREND_ROSTER = """\
[campaign]
name = "{name}"
submit_at = "{submit}"
end_at = "{end}"
poll_every = "6h"

[[site]]
name = "测试县人民政府"
group = "政府门户网站"
platform = "jact"
mailboxes = ["leader"]
slug = "jia"
reply = {{ workdays = {jia}, at = "15:00" }}

[[site]]
name = "宝鸡市测试乙局"
group = "市级部门网站"
platform = "minimal"
mailboxes = ["leader"]
slug = "yi"
reply = {{ workdays = {yi}, at = "10:00" }}

[[site]]
name = "{bing_name}"
group = "市级部门网站"
platform = "minimal"
mailboxes = ["leader"]
slug = "bing"
"""

# QA: 甲 same day, 乙 late (7 working days: May Day in between), 丙 never replies.
# QB: 甲 late (6), 乙 within (2), 丙 (renamed, same site key) never replies again.
TREND_QA = dict(name="QA", submit="2024-04-26T10:00:00+08:00", end="2024-05-10T18:00:00+08:00", jia=0, yi=7,
          bing_name="宝鸡市测试丙局")
TREND_QB = dict(name="QB", submit="2024-07-12T10:00:00+08:00", end="2024-07-23T18:00:00+08:00", jia=6, yi=2,
          bing_name="宝鸡市测试丙中心")


@pytest.fixture(scope="session")
def trend_demo(tmp_path_factory):
    """`mailbox-bot demo --roster QA.toml --roster QB.toml --out out --no-mail`, as a user runs it,
    once for the session: (folder, out folder, the process). Treat its database as read-only
    (copy it to change it)."""
    root = tmp_path_factory.mktemp("trend")
    for spec in (TREND_QA, TREND_QB):
        (root / f"{spec['name']}.toml").write_text(TREND_ROSTER.format(**spec), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MAILBOX_BOT_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "bot", "demo", "--roster", "QA.toml", "--roster", "QB.toml",
                           "--out", "out", "--no-mail"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, root / "out", proc


# A real Dovecot (IMAP + LMTP on loopback) for the mail tests: see tests/mailserver.py.
sys.path.insert(0, str(Path(__file__).parent))
from mailserver import dovecot, dovecot_server  # noqa: E402, F401

# A private PostgreSQL cluster on loopback for the `postgres` tests: see tests/pgserver.py.
from pgserver import any_db_url, mark_postgres_tests, postgres_server, postgres_url  # noqa: E402, F401


@pytest.hookimpl(tryfirst=True)     # before `-m postgres` selects by marker
def pytest_collection_modifyitems(config, items):
    mark_postgres_tests(items)
    # The files with `slow` tests first: pytest-xdist hands files to its workers in this order,
    # and a long file handed out last runs on alone at the end.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)      # stable: the order within stays
