"""Browsers on other machines (bot.browser.pool): pages spread over remote endpoints, and a lost
endpoint set aside without failing the pages that another endpoint can take.

Real Chromiums with remote debugging on loopback (what browser grids offer); one is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time

import pytest

from bot.browser import pool
from bot.browser.launch import chromium_executable, launch_args
from bot.browser.pool import Browser, NoBrowser
from conftest import run_async


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def chromiums(tmp_path):
    ports, procs = [free_port(), free_port()], []
    for i, port in enumerate(ports):
        procs.append(subprocess.Popen(
            [chromium_executable(), "--headless", f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={tmp_path / f'profile{i}'}", *launch_args(), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        deadline = time.monotonic() + 60
        while not all(listening(p) for p in ports):
            assert time.monotonic() < deadline, "the Chromiums did not start"
            time.sleep(0.2)
        yield [f"http://127.0.0.1:{p}" for p in ports], procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


async def _read(browser: Browser, i: int) -> str:
    async with browser.page(host=f"site{i}.example") as page:
        await page.set_content(f"<p>letter {i}</p>")
        return await page.text_content("p")


def test_pages_go_on_when_one_endpoint_is_lost(chromiums, monkeypatch):
    (first, second), procs = chromiums
    # Every look at the lost endpoint tries to reconnect it (instead of once in 10 s), so that
    # callers overlap with a reconnect in progress, as they do in a daemon's busy minute.
    monkeypatch.setattr(pool, "RECONNECT_AFTER_S", 0.0)

    async def play():
        async with Browser(cdp=[first, second], endpoint_concurrency=2) as browser:
            assert [await _read(browser, i) for i in range(4)] == [f"letter {i}" for i in range(4)]
            os.killpg(procs[0].pid, signal.SIGKILL)
            procs[0].wait(timeout=30)
            deadline = time.monotonic() + 30
            while browser.endpoints[0].up:
                assert time.monotonic() < deadline, "the lost endpoint was never noticed"
                await asyncio.sleep(0.1)
            got = await asyncio.gather(*(_read(browser, i) for i in range(12)), return_exceptions=True)
            assert got == [f"letter {i}" for i in range(12)], got
            # Both lost: a page is refused as NoBrowser (a transient failure), not a crash.
            os.killpg(procs[1].pid, signal.SIGKILL)
            procs[1].wait(timeout=30)
            while browser.endpoints[1].up:
                assert time.monotonic() < deadline, "the second lost endpoint was never noticed"
                await asyncio.sleep(0.1)
            with pytest.raises(NoBrowser):
                await _read(browser, 99)

    run_async(play())
