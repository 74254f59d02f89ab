"""Browsers to run flows in: one Chromium launched here, or several reached over the network.

A campaign of hundreds of sites, or several daemons, may use browsers on other machines:
Playwright's own browser server (`[browser] connect = ["ws://host:3000/"]`, started with
`playwright run-server`) or a Chromium with remote debugging (`cdp = ["http://host:9222"]`, as
browser grids offer). Pages are spread over the endpoints in turn, each with its own limit of
contexts at once. An endpoint that is lost is set aside and tried again later; a flow that was
running on it ends as the engine says (a failure before the final click is transient, anything
after it is `submit_uncertain`), never as a crash.

A submission gets a context the site has never seen (a warm one that never visited its host, or
a new one); polls reuse warm contexts, cleared of cookies between uses: a poll only reads, and
creating a context costs more than the poll itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from contextlib import asynccontextmanager

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from bot.browser.launch import launch_options

# A context lent to submissions is closed after this many hosts (its memory does not grow for ever).
LEND_HOSTS = 50
# A lost endpoint is tried again after this many seconds.
RECONNECT_AFTER_S = 10.0


class NoBrowser(PlaywrightError):
    """No endpoint can be reached now (all lost): like a page that did not load, it may pass."""


class Endpoint:
    """One Chromium, with its contexts: launched here (`address` None), or a browser server
    (`kind` "connect") or a Chromium's DevTools (`kind` "cdp") elsewhere."""

    def __init__(self, kind: str, address: str | None, concurrency: int, launch: dict):
        self.kind, self.address, self.launch = kind, address, launch
        self.slots = asyncio.Semaphore(concurrency)
        self.browser = None
        self.idle: list = []          # warm (context, page) pairs for read-only flows
        self.unvisited: list = []     # warm (context, page, hosts it has visited) for submissions
        self.lost_at: float | None = None
        self.reconnecting = False

    def __str__(self) -> str:
        return self.address or "local Chromium"

    @property
    def up(self) -> bool:
        return self.browser is not None and self.lost_at is None

    async def open(self, pw) -> None:
        if self.kind == "local":
            self.browser = await pw.chromium.launch(**self.launch)
        elif self.kind == "connect":
            headers = {}
            if self.launch.get("remote_executable_path"):
                # A server started with --unsafe launches the Chromium the client names (on a
                # real browser host, the server's own configuration says it instead).
                headers["x-playwright-launch-options"] = json.dumps(
                    {"executablePath": self.launch["remote_executable_path"], "args": self.launch.get("args", [])})
            self.browser = await pw.chromium.connect(self.address, headers=headers, timeout=30_000)
        else:
            self.browser = await pw.chromium.connect_over_cdp(self.address, timeout=30_000)
        # Only the connection in use: an earlier one set aside may report its end late.
        self.browser.on("disconnected", lambda b: self.lost() if b is self.browser else None)
        self.lost_at = None

    def lost(self) -> None:
        if self.lost_at is None:
            self.lost_at = time.monotonic()
        self.idle.clear()
        self.unvisited.clear()

    async def close(self) -> None:
        for ctx, *_ in [*self.idle, *self.unvisited]:
            try:
                await ctx.close()
            except PlaywrightError:
                pass
        self.idle.clear()
        self.unvisited.clear()
        if self.browser is not None and self.up:
            try:
                await self.browser.close()
            except PlaywrightError:
                pass


class Browser:
    """The endpoints, and pages in contexts on them (see the module's doc)."""

    def __init__(self, executable_path: str = "", headless: bool = True, concurrency: int = 4,
                 slow_mo_ms: float | None = None, proxy: dict | None = None, *,
                 connect: list[str] | tuple = (), cdp: list[str] | tuple = (), endpoint_concurrency: int | None = None,
                 remote_executable_path: str = ""):
        launch = launch_options(executable_path, headless, slow_mo_ms)
        if remote_executable_path:
            launch = {**launch, "remote_executable_path": remote_executable_path}
        each = endpoint_concurrency or concurrency
        remote = [Endpoint("connect", a, each, launch) for a in connect] + [Endpoint("cdp", a, each, launch) for a in cdp]
        self.endpoints = remote or [Endpoint("local", None, concurrency, launch)]
        self._turn = itertools.cycle(range(len(self.endpoints)))
        self._proxy = proxy
        self._pw = None
        self.user_agent: str | None = None
        self.plain = None

    @classmethod
    def from_config(cls, c, **kw) -> "Browser":
        """The browsers the configuration names (`[browser]`): local, or remote endpoints."""
        return cls(c.executable_path, headless=kw.pop("headless", c.headless), concurrency=c.concurrency,
                   connect=c.connect, cdp=c.cdp, endpoint_concurrency=c.endpoint_concurrency,
                   remote_executable_path=c.remote_executable_path, **kw)

    async def __aenter__(self) -> "Browser":
        from bot.browser.plain import PlainHttp

        self._pw = await async_playwright().start()
        errors = []
        for e in self.endpoints:
            try:
                await e.open(self._pw)
            except PlaywrightError as err:
                e.lost()
                errors.append(f"{e}: {str(err).strip().splitlines()[0] if str(err).strip() else err}")
        up = [e for e in self.endpoints if e.up]
        if not up:
            await self._pw.stop()
            raise NoBrowser("no browser could be reached: " + "; ".join(errors))
        probe = await up[0].browser.new_page()
        # A citizen's browser does not announce itself as headless.
        self.user_agent = (await probe.evaluate("navigator.userAgent")).replace("HeadlessChrome", "Chrome")
        await probe.context.close()
        # Read-only flows that need no browser share one plain HTTP pool, as the same citizen.
        self.plain = PlainHttp(self.user_agent)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.plain is not None:
            await self.plain.aclose()
        for e in self.endpoints:
            await e.close()
        if self._pw:
            await self._pw.stop()

    async def _endpoint(self) -> Endpoint:
        """The next endpoint that is up (a lost one is tried again once its pause is over).
        Each caller looks at every endpoint once, from its turn on: the turn is shared by the
        callers of the moment, and stepping it once per look (while another caller's reconnect
        is awaited) could show one caller the same lost endpoint twice and none that is up."""
        n = len(self.endpoints)
        first = next(self._turn)
        for e in (self.endpoints[(first + i) % n] for i in range(n)):
            if (not e.up and e.lost_at is not None and not e.reconnecting
                    and time.monotonic() - e.lost_at >= RECONNECT_AFTER_S):
                e.reconnecting = True       # one caller tries; the others look further
                try:
                    await e.open(self._pw)
                except PlaywrightError:
                    e.lost_at = time.monotonic()
                finally:
                    e.reconnecting = False
            if e.up:
                return e
        raise NoBrowser("every browser endpoint is lost: " + ", ".join(str(e) for e in self.endpoints))

    async def _new_context(self, e: Endpoint, storage_state: str | None = None, proxy: dict | None = None):
        return await e.browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", user_agent=self.user_agent,
            viewport={"width": 1280, "height": 900}, proxy=proxy or self._proxy, storage_state=storage_state)

    @asynccontextmanager
    async def page(self, *, fresh: bool = True, trace_path: str | None = None,
                   storage_state: str | None = None, proxy: dict | None = None, host: str | None = None):
        """A page in its own context. `fresh=False` (read-only flows) may reuse a warm one.
        `host` (a submission): a warm context that has never visited that host, which is, to the
        site, a browser it has never seen (its cookies, storage and cache are all per host); a
        context is not lent twice for one host. `proxy`: this site's own (sites often refuse
        visitors from outside their region)."""
        from bot.browser.engine import save_trace

        e = await self._slot()
        try:
            plain = not trace_path and not storage_state and not proxy
            reuse = not fresh and plain
            lend = fresh and plain and host is not None
            visited: set[str] | None = None
            if reuse and e.idle:
                context, page = e.idle.pop()
            elif lend and (slot := next((x for x in e.unvisited if host not in x[2]), None)):
                e.unvisited.remove(slot)
                context, page, visited = slot
            else:
                try:
                    context = await self._new_context(e, storage_state, proxy)
                except PlaywrightError as err:
                    # A browser that can no longer open a context is gone, though its
                    # `disconnected` may come later (seen: a killed CDP Chromium failed thirty
                    # letters in one second before it did). Set aside now: nothing of the
                    # letter's was opened, so this is NoBrowser (transient), and the next
                    # caller goes elsewhere. (TargetClosedError is not public in Playwright.)
                    if type(err).__name__ != "TargetClosedError" and e.browser.is_connected():
                        raise
                    e.lost()
                    raise NoBrowser(f"{e} was lost: {str(err).strip().splitlines()[0]}") from None
                page = None
            if lend and visited is None:
                visited = set()
            if trace_path:
                await context.tracing.start(screenshots=True, snapshots=True, sources=False)
            if page is None:
                page = await context.new_page()
            healthy = True
            try:
                yield page
            except BaseException:
                healthy = False
                raise
            finally:
                await self._give_back(e, context, page, healthy and e.up, reuse, lend, visited, host,
                                      trace_path, save_trace)
        finally:
            e.slots.release()

    async def _slot(self) -> Endpoint:
        """An endpoint that is up, with one of its slots taken. A caller that waited for a slot
        on an endpoint lost meanwhile looks again instead of failing there."""
        while True:
            e = await self._endpoint()
            await e.slots.acquire()
            if e.up:
                return e
            e.slots.release()

    @staticmethod
    async def _give_back(e: Endpoint, context, page, healthy: bool, reuse: bool, lend: bool, visited, host,
                         trace_path, save_trace) -> None:
        try:
            if trace_path:
                await save_trace(context, trace_path)
            if reuse and healthy:
                await context.clear_cookies()
                e.idle.append((context, page))
                return
            if lend and healthy and len(visited) < LEND_HOSTS:
                visited.add(host)
                await context.clear_cookies()      # the next letter's first page replaces this one
                e.unvisited.append((context, page, visited))
                return
            await context.close()
        except PlaywrightError:
            try:
                await context.close()
            except PlaywrightError:
                pass
