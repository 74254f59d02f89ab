"""Runs scenario flows in Chromium through Playwright's async API.

One Chromium, a fresh browser context per flow (no state leaks between letters), at most
`concurrency` contexts at once. No fixed sleeps: Playwright's auto-waiting and the `expect`
step's markers, with timeouts from the scenario. Evidence (HTML and a screenshot) is kept at
the page that shows the outcome of a flow, and at the step where a flow fails; a failure names
its step. Nothing here knows which site it talks to: the scenario says everything.
"""

from __future__ import annotations

import asyncio
import re
import time
from html import escape as html_escape
from urllib.parse import urlencode
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bot.browser.launch import launch_options
from bot.scenario.schema import (Captcha, Check, Click, Expect, Extract, Fill, Goto, Request,
                                 Scenario, Select, WaitFor)


@dataclass(frozen=True)
class Evidence:
    kind: str           # html | screenshot | trace
    step: str
    path: str           # relative to the evidence directory
    sha256: str
    size: int


class EvidenceSink(Protocol):
    def save(self, kind: str, step: str, data: bytes, ext: str) -> Evidence: ...
    def screenshot_for(self, html_sha256: str) -> Evidence | None: ...
    def remember_screenshot(self, html_sha256: str, shot: Evidence) -> None: ...


class CaptchaAnswerer(Protocol):
    """Answers an image captcha. `label` says who answered (recorded on the letter).
    Returns None when it cannot answer: the letter then needs an inspector."""

    label: str

    async def answer(self, image: bytes, site: str) -> str | None: ...


class NeedsInspector(Exception):
    """The flow cannot go on without a person (a captcha with no answerer, a login)."""


@dataclass
class StepTiming:
    index: int
    op: str
    name: str
    ms: float


@dataclass
class FlowResult:
    flow: str
    # success | rejected | found | not_found | blocked | dry_run | failed | uncertain | needs_inspector
    outcome: str
    values: dict[str, str] = field(default_factory=dict)
    message: str = ""
    failed_step: str | None = None
    final_clicked: bool = False
    captcha_by: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    timings: list[StepTiming] = field(default_factory=list)


_CHARSET = re.compile(r"charset=([\w-]+)", re.I)
_HEAD = re.compile(r"<head[^>]*>", re.I)


class _Namespace(dict):
    """format_map namespace: `{letter.title}` reads attributes or keys of nested values."""

    def __missing__(self, key):
        raise KeyError(key)


def render(template: str, variables: dict[str, Any]) -> str:
    try:
        return template.format_map(_Namespace(variables))
    except (KeyError, AttributeError) as e:
        raise ValueError(f"template {template!r} uses an unknown variable {e}") from None


class StepFailed(Exception):
    def __init__(self, step: str, reason: str):
        self.step, self.reason = step, reason
        super().__init__(f"step {step}: {reason}")


class Browser:
    """One Chromium and a bounded pool of contexts.

    A submission gets a brand-new context (nothing from another letter can leak into a form).
    Polls reuse warm contexts, cleared of cookies between uses: a poll only reads, and
    creating a context costs more than the poll itself.
    """

    def __init__(self, executable_path: str = "", headless: bool = True, concurrency: int = 4,
                 slow_mo_ms: float | None = None, proxy: dict | None = None):
        self._launch = launch_options(executable_path, headless, slow_mo_ms)
        self._slots = asyncio.Semaphore(concurrency)
        self._proxy = proxy
        self._pw = None
        self._browser = None
        self._idle: list = []          # warm (context, page) pairs for read-only flows
        self.user_agent: str | None = None

    async def __aenter__(self) -> "Browser":
        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(**self._launch)
        probe = await self._browser.new_page()
        # A citizen's browser does not announce itself as headless.
        self.user_agent = (await probe.evaluate("navigator.userAgent")).replace("HeadlessChrome", "Chrome")
        await probe.context.close()
        return self

    async def __aexit__(self, *exc) -> None:
        for ctx, _page in self._idle:
            await ctx.close()
        self._idle.clear()
        if self._browser:
            await self._browser.close()
        if self._pw:
            await self._pw.stop()

    async def _new_context(self, storage_state: str | None = None):
        return await self._browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", user_agent=self.user_agent,
            viewport={"width": 1280, "height": 900}, proxy=self._proxy, storage_state=storage_state)

    @asynccontextmanager
    async def page(self, *, fresh: bool = True, trace_path: str | None = None,
                   storage_state: str | None = None):
        """A page in its own context. `fresh=False` (read-only flows) may reuse a warm one."""
        async with self._slots:
            reuse = not fresh and not trace_path and not storage_state
            if reuse and self._idle:
                context, page = self._idle.pop()
            else:
                context = await self._new_context(storage_state)
                page = None
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
                if trace_path:
                    await context.tracing.stop(path=trace_path)
                if reuse and healthy:
                    try:
                        await context.clear_cookies()
                        self._idle.append((context, page))
                    except PlaywrightError:
                        await context.close()
                else:
                    await context.close()


class FlowRunner:
    """Runs one flow of a scenario on a page."""

    def __init__(self, scenario: Scenario, evidence: EvidenceSink, *,
                 captcha: CaptchaAnswerer | None = None, site_name: str = "",
                 on_step=None):
        self.scenario = scenario
        self.evidence = evidence
        self.captcha = captcha
        self.site_name = site_name
        self.on_step = on_step      # callback(StepTiming) for live display (replay)

    def _sel(self, ref: str, variables: dict) -> str:
        return render(self.scenario.selector(ref), variables)

    async def run(self, page: Page, flow_name: str, variables: dict[str, Any], *,
                  dry_run: bool = False) -> FlowResult:
        flow = self.scenario.flows[flow_name]
        result = FlowResult(flow=flow_name, outcome="failed")
        # What a flow has read so far is available to its later steps: "{extracted[viewstate]}".
        variables = {**variables, "extracted": result.values}
        default_timeout = self.scenario.timeout_ms
        page.set_default_timeout(default_timeout)
        label = ""
        try:
            for i, step in enumerate(flow.steps):
                # A failure names its step: flow, index, operation and what it acts on.
                what = step.name or next((getattr(step, a) for a in ("selector", "url", "image", "field")
                                          if getattr(step, a, None)), "")
                label = f"{flow_name}[{i}] {step.op}" + (f" {what}" if what else "")
                if dry_run and isinstance(step, Click) and step.final:
                    result.outcome = "dry_run"
                    await self._keep_page(page, result, f"{flow_name}-before-final")
                    return result
                started = time.perf_counter()
                timeout = step.timeout_ms or default_timeout
                outcome = await self._step(page, step, variables, result, timeout, label)
                timing = StepTiming(i, step.op, step.name or getattr(step, "selector", "") or getattr(step, "url", ""),
                                    (time.perf_counter() - started) * 1000)
                result.timings.append(timing)
                if self.on_step:
                    self.on_step(timing)
                if isinstance(step, Click) and step.final:
                    result.final_clicked = True
                if outcome is not None:
                    result.outcome = outcome
                    if outcome in ("rejected", "not_found", "blocked"):
                        # Nothing more to read on this page: keep it and stop.
                        await self._keep_page(page, result, f"{flow_name}-{outcome}")
                        return result
            if result.outcome == "failed":      # no expect step decided: the flow ran through
                result.outcome = "success"
            await self._keep_page(page, result, f"{flow_name}-{result.outcome}")
            return result
        except NeedsInspector as e:
            result.outcome, result.message, result.failed_step = "needs_inspector", str(e), label
        except StepFailed as e:
            result.outcome = "uncertain" if result.final_clicked else "failed"
            result.message, result.failed_step = e.reason, e.step
        except (PlaywrightTimeout, PlaywrightError) as e:
            result.outcome = "uncertain" if result.final_clicked else "failed"
            result.message = _first_line(str(e))
            result.failed_step = label
        await self._keep_page(page, result, f"{flow_name}-failed", best_effort=True)
        return result

    async def _step(self, page: Page, step, variables, result: FlowResult, timeout: int, label: str):
        if isinstance(step, Goto):
            response = await page.goto(render(step.url, variables), timeout=timeout, wait_until=step.wait_until)
            if response is not None and response.status >= 500:
                raise StepFailed(label, f"HTTP {response.status} from {response.url}")
            if response is not None and response.status == 404:
                raise StepFailed(label, f"HTTP 404: {response.url} not found")
        elif isinstance(step, Request):
            await self._request(page, step, variables, timeout, label)
        elif isinstance(step, Fill):
            await page.locator(self._sel(step.selector, variables)).first.fill(render(step.value, variables), timeout=timeout)
        elif isinstance(step, Select):
            loc = page.locator(self._sel(step.selector, variables)).first
            if step.value is not None:
                await loc.select_option(value=render(step.value, variables), timeout=timeout)
            elif step.label is not None:
                await loc.select_option(label=render(step.label, variables), timeout=timeout)
            else:
                await loc.select_option(index=step.index, timeout=timeout)
        elif isinstance(step, Check):
            await page.locator(self._sel(step.selector, variables)).first.check(timeout=timeout)
        elif isinstance(step, Click):
            await page.locator(self._sel(step.selector, variables)).first.click(timeout=timeout)
        elif isinstance(step, WaitFor):
            await page.locator(self._sel(step.selector, variables)).first.wait_for(state=step.state, timeout=timeout)
        elif isinstance(step, Captcha):
            await self._captcha(page, step, variables, result, timeout)
        elif isinstance(step, Extract):
            await self._extract(page, step, variables, result, timeout, label)
        elif isinstance(step, Expect):
            return await self._expect(page, step, variables, result, timeout, label)
        return None

    async def _request(self, page: Page, step: Request, variables, timeout: int, label: str):
        url = render(step.url, variables)
        enc = self.scenario.encoding
        kwargs: dict = {"method": step.method, "timeout": timeout, "max_redirects": 5}
        if step.form:
            kwargs["data"] = urlencode({k: render(v, variables) for k, v in step.form.items()},
                                       encoding=enc).encode("ascii")
            kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded", "Referer": url}
        response = await page.context.request.fetch(url, **kwargs)
        if response.status >= 500 or response.status == 404:
            raise StepFailed(label, f"HTTP {response.status} from {response.url}")
        raw = await response.body()
        m = _CHARSET.search(response.headers.get("content-type", ""))
        text = raw.decode(m.group(1) if m else enc, errors="replace")
        # Relative links and styles resolve against the page the answer came from.
        base = f'<base href="{html_escape(response.url, quote=True)}">'
        text = _HEAD.sub(lambda h: h.group(0) + base, text, count=1) if _HEAD.search(text) else base + text
        await page.set_content(text, wait_until="domcontentloaded", timeout=timeout)

    async def _captcha(self, page: Page, step: Captcha, variables, result: FlowResult, timeout: int):
        if self.captcha is None:
            raise NeedsInspector("the form has a captcha and no one is configured to answer it")
        img = page.locator(self._sel(step.image, variables)).first
        # The picture must have arrived before it is photographed (a click that opened the
        # form waited only for the navigation, not for its images).
        await img.evaluate("""el => el.tagName !== 'IMG' || (el.complete && el.naturalWidth > 0) ||
            new Promise((ok, fail) => { el.addEventListener('load', ok); el.addEventListener('error', fail); })""",
                           timeout=timeout)
        image = await img.screenshot(timeout=timeout)
        answer = await self.captcha.answer(image, self.site_name)
        if answer is None:
            raise NeedsInspector(f"captcha not answered ({self.captcha.label})")
        result.captcha_by = self.captcha.label
        await page.locator(self._sel(step.input, variables)).first.fill(answer, timeout=timeout)

    async def _extract(self, page: Page, step: Extract, variables, result: FlowResult, timeout: int, label: str):
        loc = page.locator(self._sel(step.selector, variables)).first
        value = None
        if await loc.count():
            value = await (loc.get_attribute(step.attribute) if step.attribute else loc.text_content())
        if value is not None:
            value = " ".join(value.split())
            if step.pattern:
                m = re.search(step.pattern, value)
                value = (m.group(1) if m and m.groups() else m.group(0)) if m else None
        if value in (None, ""):
            if step.required:
                raise StepFailed(label, f"could not read {step.field} from {self.scenario.selector(step.selector)!r}")
            return
        result.values[step.field] = value

    async def _expect(self, page: Page, step: Expect, variables, result: FlowResult, timeout: int, label: str):
        locators = {name: page.locator(self._sel(sel, variables)) for name, sel in step.outcomes.items()}
        combined = None
        for loc in locators.values():
            combined = loc if combined is None else combined.or_(loc)
        try:
            await combined.first.wait_for(state="attached", timeout=timeout)
        except PlaywrightTimeout:
            raise StepFailed(label, f"none of the expected markers appeared ({', '.join(step.outcomes)}) "
                                    f"within {timeout} ms; page title {await _title(page)!r}") from None
        for name, loc in locators.items():
            if await loc.count():
                if name in ("rejected", "blocked"):
                    text = await loc.first.text_content() or ""
                    result.message = " ".join(text.split())
                return name
        raise StepFailed(label, "a marker appeared and vanished")

    async def _keep_page(self, page: Page, result: FlowResult, step: str, best_effort: bool = False) -> None:
        """HTML always; the screenshot only when this exact HTML has not been photographed
        before (polls of an unchanged page would otherwise store the same picture again)."""
        try:
            html = (await page.content()).encode("utf-8")
            h = self.evidence.save("html", step, html, "html")
            result.evidence.append(h)
            shot = self.evidence.screenshot_for(h.sha256)
            if shot is None:
                shot = self.evidence.save("screenshot", step, await page.screenshot(full_page=True), "png")
                self.evidence.remember_screenshot(h.sha256, shot)
            result.evidence.append(shot)
        except PlaywrightError:
            if not best_effort:
                raise


async def _title(page: Page) -> str:
    try:
        return await page.title()
    except PlaywrightError:
        return ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
