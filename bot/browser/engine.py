"""Runs scenario flows in Chromium through Playwright's async API.

One Chromium, a fresh browser context per flow (no state leaks between letters), at most
`concurrency` contexts at once. No fixed sleeps: Playwright's auto-waiting and the `expect`
step's markers, with timeouts from the scenario. Evidence (HTML and a screenshot) is kept at
the page that shows the outcome of a flow, and at the step where a flow fails; a failure names
its step. Nothing here knows which site it talks to: the scenario says everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from html import escape as html_escape
from urllib.parse import urlencode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bot.browser import lists
from bot.scenario.schema import (Captcha, Check, Click, DialogMarker, Expect, Extract, Fill, Goto, Request,
                                 ResponseMarker, Scan, Scenario, Select, WaitFor)
from bot.vocab import FlowOutcome, Marker


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
    outcome: FlowOutcome
    values: dict[str, str] = field(default_factory=dict)
    message: str = ""
    failed_step: str | None = None
    final_clicked: bool = False
    captcha_by: str | None = None
    # A failure of the connection or the server (no answer, 5xx), which may pass; not a page
    # that no longer matches the scenario, which will not.
    transient: bool = False
    evidence: list[Evidence] = field(default_factory=list)
    timings: list[StepTiming] = field(default_factory=list)
    # (selector, value typed, value read back right after) of each fill, when asked for.
    filled: list[tuple[str, str, str]] = field(default_factory=list)


_CHARSET = re.compile(r"charset=([\w-]+)", re.I)
_SERVER_ERROR = re.compile(r"\s*5\d\d\b")        # "502 Bad Gateway", "503 Service Unavailable"
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
    def __init__(self, step: str, reason: str, transient: bool = False):
        self.step, self.reason, self.transient = step, reason, transient
        super().__init__(f"step {step}: {reason}")


class Blocked(StepFailed):
    """A firewall or challenge page stood between the bot and the site."""


@dataclass
class _Run:
    """Where a flow run is: the step, the captcha retries, the one restart after a 419."""

    flow: str
    steps: list
    i: int = 0
    step: Any = None
    label: str = ""
    captcha_at: int | None = None
    captcha_tries: int = 0
    restarted: bool = False
    # What the page's scripts showed instead of a page: dialogs and answers to their requests,
    # in order; `since` is where the current step's own begin (markers look only at those).
    seen: list["_Event"] = field(default_factory=list)
    since: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests in flight (XHR, fetch, the main frame's navigations), with the number of the
    # step that set them off: a marker on the page is read only once the last step's have
    # ended, never from the page as it was before a click (a stale "验证码错误" would hide
    # that the site took the letter).
    pending: dict = field(default_factory=dict)
    step_no: int = 0


@dataclass(frozen=True)
class _Event:
    kind: str              # dialog | response
    text: str              # the dialog's message, or the response body
    url: str = ""
    status: int = 0


# Outcomes after which the page has nothing more to read.
_STOPS = (FlowOutcome.REJECTED, FlowOutcome.NOT_FOUND, FlowOutcome.NOT_COVERED, FlowOutcome.BLOCKED,
          FlowOutcome.UNCERTAIN, FlowOutcome.FAILED)


def outcome_of(flow: str, marker: "Marker | FlowOutcome", step, result: FlowResult) -> FlowOutcome:
    """What a marker means for this flow. In a list flow, a `not_found` marker proves the
    letter absent only on the site's own search for it; after the final click, the site's
    error page does not say whether the letter was taken."""
    if isinstance(marker, FlowOutcome):           # a scan decides for itself
        return marker
    if marker == Marker.NOT_FOUND and flow == "list" and not getattr(step, "site_search", False):
        result.message = "the list page does not show the letter, and nothing says it reached back to it"
        return FlowOutcome.NOT_COVERED
    if marker == Marker.FAILED and result.final_clicked:
        return FlowOutcome.UNCERTAIN
    return FlowOutcome(marker.value)


def refuse_page(sc: Scenario, title: str, text: str, label: str) -> None:
    """A page that is not the site's answer: a server's error page (may pass), a firewall's or
    a challenge's (recorded as blocked, never as "no reply")."""
    if _SERVER_ERROR.match(title):
        raise StepFailed(label, f"the site answered with an error page ({title.strip()!r})", transient=True)
    if any(t in title for t in sc.blocked_titles) or any(p in text for p in sc.blocked_phrases):
        raise Blocked(label, f"a firewall or challenge page answered (title {title!r})")


def _label(flow: str, i: int, step) -> str:
    """A failure names its step: flow, index, operation and what it acts on."""
    what = step.name or next((getattr(step, a) for a in ("selector", "url", "image", "field", "match")
                              if getattr(step, a, None)), "")
    return f"{flow}[{i}] {step.op}" + (f" {what}" if what else "")


async def save_trace(context, path: str | Path) -> None:
    """Stops the context's tracing into `path`, readable by its owner only (0600).

    A trace holds the session: cookies and local storage, a logged-in inspector's on a site
    behind a unified login. Playwright writes the file itself, with the default mode, so it is
    written into a private (0700) directory beside `path`, made 0600 there and then moved into
    place (a rename on one file system): no other user can read it at any moment."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=".trace-", dir=dest.parent))
    try:
        tmp = private / dest.name
        await context.tracing.stop(path=str(tmp))
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(private, ignore_errors=True)


class FlowRunner:
    """Runs one flow of a scenario on a page."""

    def __init__(self, scenario: Scenario, evidence: EvidenceSink, *,
                 captcha: CaptchaAnswerer | None = None, site_name: str = "",
                 on_step=None, login_marker: str | None = None, login_hint: str = "",
                 before_final_click: Callable[[], Awaitable[None]] | None = None,
                 read_back_fills: bool = False):
        self.scenario = scenario
        self.read_back_fills = read_back_fills
        self.evidence = evidence
        self.captcha = captcha
        self.site_name = site_name
        self.on_step = on_step      # callback(StepTiming) for live display (replay)
        # The element of the site's login page: finding it after a navigation means the saved
        # session is missing or expired, and only the inspector can log in again.
        self.login_marker = login_marker
        self.login_hint = login_hint
        # Awaited just before the click that sends the letter, every time it is made: the
        # worker commits that moment, so that a crash after it is known to be "maybe sent".
        self.before_final_click = before_final_click

    def _sel(self, ref: str, variables: dict) -> str:
        return render(self.scenario.selector(ref), variables)

    def _what(self, step, variables: dict) -> str:
        """" (selector '#bt')": what a step that failed was waiting for, as the page would see it."""
        ref = getattr(step, "selector", None) or getattr(step, "image", None)
        if not ref:
            return ""
        try:
            return f" (selector {self._sel(ref, variables)!r})"
        except ValueError:
            return ""

    async def run(self, page: Page, flow_name: str, variables: dict[str, Any], *,
                  dry_run: bool = False) -> FlowResult:
        """Runs the flow's steps and says how it ended (a FlowOutcome), with the evidence of the
        page that shows it. Never raises for what a site does; after the final click every end
        that is not the site's own answer is `uncertain`."""
        result = FlowResult(flow=flow_name, outcome=FlowOutcome.FAILED)
        # What a flow has read so far is available to its later steps: "{extracted[viewstate]}".
        variables = {**variables, "extracted": result.values}
        page.set_default_timeout(self.scenario.timeout_ms)
        run = _Run(flow_name, self.scenario.flows[flow_name].steps)
        self._run = run
        listeners = self._listeners(run, page)
        for event, fn in listeners.items():
            page.on(event, fn)
        try:
            return await self._run_steps(page, run, variables, result, dry_run)
        finally:
            for event, fn in listeners.items():
                page.remove_listener(event, fn)

    def _listeners(self, run: "_Run", page: Page) -> dict:
        """Dialogs are accepted (as a person clicks OK) and their text kept; the answers to the
        page's own requests (XHR, fetch, a posted form) are kept with their bodies; and the
        requests a step sets off are followed until they end (see `_settled`)."""
        loop = asyncio.get_running_loop()

        def on_dialog(dialog) -> None:
            run.seen.append(_Event("dialog", dialog.message))
            run.arrived.set()
            loop.create_task(_quietly(dialog.accept()))

        async def read(response) -> None:
            try:
                body = (await response.body()).decode("utf-8", errors="replace")
            except PlaywrightError:
                body = ""
            run.seen.append(_Event("response", body, response.url, response.status))
            run.arrived.set()

        def on_response(response) -> None:
            if response.request.resource_type in ("xhr", "fetch", "document"):
                loop.create_task(read(response))

        # A body is read only for flows that look at the answers to requests (a response marker):
        # fetching every page's body again over the protocol costs the browser for nothing.
        wants_bodies = any(isinstance(m, ResponseMarker) for step in run.steps if isinstance(step, Expect)
                           for ms in step.outcomes.values() for m in (ms if isinstance(ms, list) else [ms]))

        def followed(request) -> bool:
            kind = request.resource_type
            return kind in ("xhr", "fetch") or (kind == "document" and request.frame == page.main_frame)

        def on_request(request) -> None:
            if followed(request):
                run.pending[request] = run.step_no

        def on_end(request) -> None:
            if run.pending.pop(request, None) is not None:
                run.arrived.set()

        listeners = {"dialog": on_dialog, "request": on_request, "requestfinished": on_end, "requestfailed": on_end}
        if wants_bodies:
            listeners["response"] = on_response
        return listeners

    async def _run_steps(self, page: Page, run: "_Run", variables: dict, result: FlowResult,
                         dry_run: bool) -> FlowResult:
        try:
            await self._steps(page, run, variables, result, dry_run)
            return result
        except Blocked as e:
            # A firewall or challenge page: not the site's answer to the letter.
            result.outcome, result.message, result.failed_step = FlowOutcome.BLOCKED, e.reason, e.step
        except NeedsInspector as e:
            result.outcome, result.message, result.failed_step = FlowOutcome.NEEDS_INSPECTOR, str(e), run.label
        except StepFailed as e:
            # Whatever an earlier marker said (a preview's "success"), the flow did not get through.
            result.outcome = FlowOutcome.FAILED
            result.message, result.failed_step, result.transient = e.reason, e.step, e.transient
        except (PlaywrightTimeout, PlaywrightError, asyncio.TimeoutError) as e:
            result.outcome = FlowOutcome.FAILED
            result.message, result.failed_step = _first_line(str(e)) + self._what(run.step, variables), run.label
            # A page that did not come (net::ERR_..., a navigation timeout) may come next time;
            # so may a form whose browser went away under it (a remote endpoint lost): the site
            # was not at fault. (TargetClosedError is not public in Playwright: matched by name.)
            result.transient = ("net::ERR_" in result.message or isinstance(run.step, (Goto, Request))
                                or type(e).__name__ == "TargetClosedError" or page.is_closed())
            await self._diagnose_quietly(page, run.label, result)
        if result.final_clicked:
            # Whatever stopped the flow (a login page, a challenge, a timeout), the letter may
            # have reached the site: its fate is unknown, and it is never sent again.
            result.outcome = FlowOutcome.UNCERTAIN
        await self._keep_page(page, result, f"{run.flow}-{result.outcome}", best_effort=True)
        return result

    async def _steps(self, page: Page, run: "_Run", variables: dict, result: FlowResult, dry_run: bool) -> None:
        """The step loop: each step in turn, the site's answers to them acted on."""
        while run.i < len(run.steps):
            step = run.step = run.steps[run.i]
            run.label = _label(run.flow, run.i, step)
            final = isinstance(step, Click) and step.final
            if final and dry_run:
                result.outcome = FlowOutcome.DRY_RUN
                await self._keep_page(page, result, f"{run.flow}-before-final")
                return
            if isinstance(step, Captcha):
                run.captcha_at = run.i
            if final and self.before_final_click is not None:
                await self.before_final_click()
            if isinstance(step, (Goto, Request, Click)):
                run.since = len(run.seen)        # what this step sets off is what the next expects
                run.step_no += 1
            marker = await self._timed(page, step, variables, result, run)
            if isinstance(step, Fill) and self.read_back_fills:
                # Read back where it was filled: a multi-page form (fill, preview, confirm) has
                # no field left on the page of its final click.
                loc = page.locator(self._sel(step.selector, variables)).first
                result.filled.append((step.selector, render(step.value, variables), await loc.input_value()))
            if final:
                result.final_clicked = True
            if isinstance(step, (Goto, Request, Click)):
                await self._diagnose(page, run.label)
            run.i += 1
            if marker == Marker.CAPTCHA_WRONG:
                if await self._captcha_again(page, run, variables, result):
                    continue
                marker = Marker.REJECTED
            elif marker == Marker.EXPIRED:
                await self._start_again(page, run, result)
                continue
            if marker is not None:
                result.outcome = self._outcome(run.flow, marker, step, result)
                if result.outcome in _STOPS:
                    # Nothing more to read on this page: keep it and stop.
                    await self._keep_page(page, result, f"{run.flow}-{result.outcome}")
                    return
        if result.outcome == FlowOutcome.FAILED:      # no expect step decided: the flow ran through
            result.outcome = FlowOutcome.SUCCESS
        await self._keep_page(page, result, f"{run.flow}-{result.outcome}")

    async def _timed(self, page: Page, step, variables: dict, result: FlowResult, run: "_Run"):
        started = time.perf_counter()
        marker = await self._step(page, step, variables, result, step.timeout_ms or self.scenario.timeout_ms, run.label)
        timing = StepTiming(run.i, step.op, step.name or getattr(step, "selector", "") or getattr(step, "url", ""),
                            (time.perf_counter() - started) * 1000)
        result.timings.append(timing)
        if self.on_step:
            self.on_step(timing)
        return marker

    async def _captcha_again(self, page: Page, run: "_Run", variables: dict, result: FlowResult) -> bool:
        """The site refused the captcha answer and took nothing: a new image, a new answer, up to
        the captcha step's `retries`. False when no try is left (the flow ends as rejected)."""
        if run.captcha_at is None:
            return False
        again = run.steps[run.captcha_at]
        if run.captcha_tries >= again.retries:
            return False
        run.captcha_tries += 1
        result.final_clicked = False
        await self._keep_page(page, result, f"{run.flow}-captcha-wrong-{run.captcha_tries}")
        if again.refresh:
            await page.locator(self._sel(again.refresh, variables)).first.click(
                timeout=again.timeout_ms or self.scenario.timeout_ms)
        run.i = (next(k for k, st in enumerate(run.steps) if st.name == again.retry_from)
                 if again.retry_from else run.captcha_at)
        return True

    async def _start_again(self, page: Page, run: "_Run", result: FlowResult) -> None:
        """The site's session expired before the form was sent (HTTP 419): it took nothing, so
        the flow starts again from its first page, once."""
        await self._keep_page(page, result, f"{run.flow}-expired")
        if run.restarted:
            raise StepFailed(run.label, "the site's session expired again after a reload")
        run.restarted = True
        result.final_clicked = False
        result.values.clear()
        run.captcha_at, run.i = None, 0

    _outcome = staticmethod(lambda flow, marker, step, result: outcome_of(flow, marker, step, result))

    async def _diagnose(self, page: Page, label: str) -> None:
        """After a navigation: is this a firewall/challenge page, or the login page?"""
        try:
            title, text = await page.evaluate(
                # textContent, not innerText: the words are all that is needed, and innerText would
                # lay the page out again after every navigation.
                "() => [document.title || '', (document.body && document.body.textContent || '').slice(0, 4000)]")
        except PlaywrightError:
            return      # still navigating (a click that submits): the next step will wait
        if page.url.startswith("chrome-error://"):
            raise StepFailed(label, "the site sent no answer (connection closed or refused)", transient=True)
        refuse_page(self.scenario, title, text, label)
        if self.login_marker and await page.locator(self.login_marker).count():
            raise NeedsInspector("the site shows its login page: the saved session is missing or expired"
                                 + (f"; {self.login_hint}" if self.login_hint else ""))

    async def _diagnose_quietly(self, page: Page, label: str, result: FlowResult) -> None:
        """A step failed: say so precisely when the page is a challenge or the login page."""
        try:
            await self._diagnose(page, label)
        except Blocked as e:
            result.outcome = FlowOutcome.BLOCKED
            result.message = f"{e.reason}; {result.message}"
        except NeedsInspector as e:
            result.outcome, result.message = FlowOutcome.NEEDS_INSPECTOR, str(e)
        except StepFailed as e:         # an error page, or no answer at all: say which
            result.message, result.transient = f"{e.reason}; {result.message}", e.transient

    async def _step(self, page: Page, step, variables, result: FlowResult, timeout: int, label: str):
        if isinstance(step, Goto):
            url = render(step.url, variables)
            if step.params:
                query = urlencode({k: render(v, variables) for k, v in step.params.items()}, encoding=self.scenario.encoding)
                url += ("&" if "?" in url else "?") + query
            response = await page.goto(url, timeout=timeout, wait_until=step.wait_until)
            if response is not None and response.status >= 500:
                raise StepFailed(label, f"HTTP {response.status} from {response.url}", transient=True)
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
            await self._captcha(page, step, variables, result, timeout, label)
        elif isinstance(step, Extract):
            await self._extract(page, step, variables, result, timeout, label)
        elif isinstance(step, Expect):
            return await self._expect(page, step, variables, result, timeout, label)
        elif isinstance(step, Scan):
            return await self._scan(page, step, variables, result, timeout, label)
        return None

    async def _request(self, page: Page, step: Request, variables, timeout: int, label: str):
        url = render(step.url, variables)
        enc = self.scenario.encoding
        kwargs: dict = {"method": step.method, "timeout": timeout, "max_redirects": 5}
        headers = {k: render(v, variables) for k, v in step.headers.items()}
        if step.form:
            kwargs["data"] = urlencode({k: render(v, variables) for k, v in step.form.items()},
                                       encoding=enc).encode("ascii")
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": url, **headers}
        elif step.json_body is not None:
            kwargs["data"] = json.dumps(_render_json(step.json_body, variables), ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json;charset=UTF-8", "Referer": url, **headers}
        if headers:
            kwargs["headers"] = headers
        try:
            response = await page.context.request.fetch(url, **kwargs)
        except PlaywrightError as e:
            raise StepFailed(label, _first_line(str(e)), transient=True) from None
        if response.status >= 500 or response.status == 404:
            raise StepFailed(label, f"HTTP {response.status} from {response.url}", transient=response.status >= 500)
        raw = await response.body()
        content_type = response.headers.get("content-type", "")
        m = _CHARSET.search(content_type)
        text = raw.decode(m.group(1) if m else enc, errors="replace")
        if "json" in content_type.split(";")[0]:
            try:
                text = json_document(json.loads(text), response.url, response.status)
            except ValueError:
                raise StepFailed(label, f"HTTP {response.status} from {response.url}: not JSON: {text[:80]!r}") from None
        # Relative links and styles resolve against the page the answer came from.
        base = f'<base href="{html_escape(response.url, quote=True)}">'
        text = _HEAD.sub(lambda h: h.group(0) + base, text, count=1) if _HEAD.search(text) else base + text
        await page.set_content(text, wait_until="domcontentloaded", timeout=timeout)

    async def _captcha(self, page: Page, step: Captcha, variables, result: FlowResult, timeout: int, label: str):
        img = page.locator(self._sel(step.image, variables)).first
        if step.optional and not await img.count():
            return          # this form shows no captcha today
        if self.captcha is None:
            raise NeedsInspector("the form has a captcha and no one is configured to answer it")
        # The picture must have arrived before it is photographed (a click that opened the
        # form waited only for the navigation, not for its images).
        loaded = await asyncio.wait_for(img.evaluate(
            """el => el.tagName !== 'IMG' || (el.complete ? el.naturalWidth > 0 :
                new Promise(done => { el.addEventListener('load', () => done(true));
                                      el.addEventListener('error', () => done(false)); }))""",
            timeout=timeout), timeout / 1000)
        if not loaded:
            raise StepFailed(label, "the captcha image did not load", transient=True)
        image = await img.screenshot(timeout=timeout)
        answer = await self.captcha.answer(image, self.site_name)
        field = page.locator(self._sel(step.input, variables)).first
        if getattr(self.captcha, "in_page", False) and answer is not None:
            answer = (await field.input_value(timeout=timeout)).strip() or None
        if answer is None:
            raise NeedsInspector(f"captcha not answered ({self.captcha.label})")
        result.captcha_by = self.captcha.label
        if not getattr(self.captcha, "in_page", False):
            await field.fill(answer, timeout=timeout)

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
        """The first marker, in the order written, that the page, a dialog or a request's answer
        shows. Waits for the page (auto-waiting) and for the page's scripts at once."""
        run = self._run
        markers = {name: (m if isinstance(m, list) else [m]) for name, m in step.outcomes.items()}
        selectors = {sel: page.locator(self._sel(sel, variables)) for ms in markers.values() for sel in ms
                     if isinstance(sel, str)}
        combined = None
        for loc in selectors.values():
            combined = loc if combined is None else combined.or_(loc)
        in_page = asyncio.ensure_future(combined.first.wait_for(state="attached", timeout=timeout)) if combined else None
        deadline = time.monotonic() + timeout / 1000
        try:
            while True:
                if self._unsettled(run) and time.monotonic() < deadline:
                    # The page may still show what it showed before the click: wait for the
                    # answers to what the click set off before believing a marker.
                    run.arrived.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(run.arrived.wait(), timeout=max(0.0, deadline - time.monotonic()))
                    continue
                found = await self._first_marker(list(markers.items()), selectors, run)
                if found is not None:
                    name, hit = found
                    if name in (Marker.REJECTED, Marker.BLOCKED, Marker.CAPTCHA_WRONG, Marker.FAILED):
                        result.message = " ".join(hit.split())     # the site's own words are the reason
                    return name
                left = deadline - time.monotonic()
                if left <= 0 or (in_page is not None and in_page.done() and in_page.exception() is not None):
                    raise StepFailed(label, f"none of the expected markers appeared ({', '.join(step.outcomes)}) "
                                            f"within {timeout} ms; page title {await _title(page)!r}")
                run.arrived.clear()
                waits = [asyncio.ensure_future(run.arrived.wait())]
                if in_page is not None and not in_page.done():
                    waits.append(in_page)
                done, _ = await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    if w is not in_page and not w.done():
                        w.cancel()
        finally:
            if in_page is not None and not in_page.done():
                in_page.cancel()
            if in_page is not None:
                with contextlib.suppress(BaseException):
                    await in_page

    async def _first_marker(self, markers: list, selectors: dict, run: "_Run") -> tuple | None:
        """(name, text) of the first marker, in the order written, that the page shows. The page
        changes while it is looked at (a script inserts "1005 验证码错误" between two looks): a
        marker found after others were looked for sends the look back over those, so the
        narrower marker written first wins, as it would on a page that stood still."""
        for i, (name, alternatives) in enumerate(markers):
            hit = await self._any_shown(alternatives, selectors, run)
            if hit is not None:
                for earlier, alts in markers[:i]:
                    again = await self._any_shown(alts, selectors, run)
                    if again is not None:
                        return earlier, again
                return name, hit
        return None

    async def _any_shown(self, alternatives: list, selectors: dict, run: "_Run") -> str | None:
        for marker in alternatives:
            hit = await self._shown(marker, selectors.get(marker) if isinstance(marker, str) else None, run)
            if hit is not None:
                return hit
        return None

    @staticmethod
    def _unsettled(run: "_Run") -> bool:
        """Requests the last navigating step (a click, a goto) set off are still in flight."""
        return any(n >= run.step_no for n in run.pending.values())

    async def _shown(self, marker, locator, run: "_Run") -> str | None:
        """The marker's text when the page, a dialog or a request's answer shows it, else None."""
        if isinstance(marker, str):
            if await locator.count():
                return await locator.first.text_content() or ""
            return None
        events = run.seen[run.since:]
        if isinstance(marker, DialogMarker):
            return next((e.text for e in events if e.kind == "dialog" and re.search(marker.dialog, e.text)), None)
        for e in events:
            if e.kind != "response" or marker.response not in e.url:
                continue
            if marker.status is not None and e.status != marker.status:
                continue
            value = e.text
            doc = None
            if marker.json_path is not None or marker.reason is not None:
                try:
                    doc = json.loads(e.text)
                except ValueError:
                    continue
            if marker.json_path is not None:
                value = _at_path(doc, marker.json_path)
                if value is None:
                    continue
            if marker.equals is not None and value != marker.equals:
                continue
            if marker.matches is not None and not re.search(marker.matches, value):
                continue
            return _at_path(doc, marker.reason) if marker.reason else value
        return None

    async def _scan(self, page: Page, step: Scan, variables, result: FlowResult, timeout: int, label: str):
        """A list read back to the letter (bot.browser.lists): found, proven absent, or not
        covered. Says what it read in `result.message`."""
        since = variables.get("since")
        formats = self.scenario.time_formats.row_time
        current = [1]           # the page shown now: the flow's own goto showed the first

        async def read(n: int) -> lists.ListPage:
            if n != current[0]:
                await self._goto_page(page, render(step.page_url, {**variables, "page": n}), timeout, label)
                current[0] = n
            await self._list_ready(page, step, variables, timeout, label)
            texts = await page.locator(self._sel(step.rows, variables)).locator(
                self._sel(step.row_time, variables)).all_text_contents()
            found = await page.locator(self._sel(step.match, variables)).count() > 0
            last = bool(step.last_page and await page.locator(self._sel(step.last_page, variables)).count())
            if not step.page_url and not last:
                last = not await self._has_next(page, step, variables)
            return lists.read_rows(n, found, texts, formats, since, last) if since is not None else \
                lists.ListPage(n, found, len(texts), None, False, last or not texts)

        async def advance(n: int) -> bool:
            moved = await self._next_page(page, step, variables, n, timeout, label)
            current[0] = n + 1
            return moved

        if step.page_url and since is not None:
            outcome, result.message, at = await lists.by_number(read, step.max_pages)
        else:
            outcome, result.message, at = await lists.in_order(read, advance, step.max_pages)
        if at is not None and at != current[0]:          # the later steps read the row on its page
            await read(at)
        return outcome

    async def _has_next(self, page: Page, step: Scan, variables) -> bool:
        return bool(step.next) and await page.locator(self._sel(step.next, variables)).count() > 0

    async def _goto_page(self, page: Page, url: str, timeout: int, label: str) -> None:
        response = await page.goto(url, timeout=timeout, wait_until="domcontentloaded")
        if response is not None and response.status >= 400:
            raise StepFailed(label, f"HTTP {response.status} from {response.url}", transient=response.status >= 500)
        await self._diagnose(page, label)

    async def _list_ready(self, page: Page, step: Scan, variables, timeout: int, label: str) -> None:
        ready = step.ready or ", ".join(self._sel(x, variables) for x in (step.rows, step.empty) if x)
        try:
            await page.locator(self._sel(ready, variables)).first.wait_for(state="attached", timeout=timeout)
        except PlaywrightTimeout:
            raise StepFailed(label, f"the list did not appear ({ready!r}) within {timeout} ms; "
                                    f"page title {await _title(page)!r}") from None

    async def _next_page(self, page: Page, step: Scan, variables, page_no: int, timeout: int, label: str) -> bool:
        """Goes to page `page_no + 1`; False at the end of the list."""
        if step.page_url:
            if not await page.locator(self._sel(step.rows, variables)).count():
                return False            # an empty page: the list ended
            if step.last_page and await page.locator(self._sel(step.last_page, variables)).count():
                return False
            url = render(step.page_url, {**variables, "page": page_no + 1})
        else:
            if step.last_page and await page.locator(self._sel(step.last_page, variables)).count():
                return False
            nxt = page.locator(self._sel(step.next, variables)) if step.next else None
            if nxt is None or not await nxt.count():
                return False
            href = await nxt.first.get_attribute("href")
            if href and not href.startswith(("#", "javascript:")):
                url = await nxt.first.evaluate("a => a.href")     # resolved against the page
            else:
                # A button drawn by a script: click, and wait for the first row to be redrawn.
                row = page.locator(self._sel(step.rows, variables)).first
                handle, html = await row.element_handle(timeout=timeout), await row.inner_html(timeout=timeout)
                await nxt.first.click(timeout=timeout)
                await page.wait_for_function("([el, html]) => !el.isConnected || el.innerHTML !== html",
                                             arg=[handle, html], timeout=timeout)
                await self._diagnose(page, label)
                return True
        response = await page.goto(url, timeout=timeout, wait_until="domcontentloaded")
        if response is not None and response.status >= 400:
            raise StepFailed(label, f"HTTP {response.status} from {response.url}", transient=response.status >= 500)
        await self._diagnose(page, label)
        return True

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


def _render_json(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, dict):
        return {k: _render_json(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, variables) for v in value]
    return value


def json_document(data: Any, url: str, status: int = 200) -> str:
    """A JSON answer as a page: every value an element with its `data-path` ("data.list.0.title";
    scalars as text, true/false/null as "true"/"false"/""), so that the steps read it with
    selectors like any page, and the evidence shows it readably."""
    parts: list[str] = []

    def node(value: Any, path: str) -> None:
        attr = html_escape(path, quote=True)
        if isinstance(value, dict):
            parts.append(f'<dl data-path="{attr}">')
            for k, v in value.items():
                parts.append(f"<dt>{html_escape(str(k))}</dt><dd>")
                node(v, f"{path}.{k}" if path else str(k))
                parts.append("</dd>")
            parts.append("</dl>")
        elif isinstance(value, list):
            parts.append(f'<ol start="0" data-path="{attr}" data-length="{len(value)}">')
            for i, v in enumerate(value):
                parts.append("<li>")
                node(v, f"{path}.{i}" if path else str(i))
                parts.append("</li>")
            parts.append("</ol>")
        else:
            text = "" if value is None else "true" if value is True else "false" if value is False else str(value)
            parts.append(f'<span data-path="{attr}">{html_escape(text)}</span>')

    node(data, "")
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>JSON</title>'
            '<style>dl{margin:0 0 0 1em}dt{font-weight:bold}dd{margin-left:1em}</style></head>'
            f'<body><p id="json-source">HTTP {status} {html_escape(url)}</p>{"".join(parts)}</body></html>')


async def _title(page: Page) -> str:
    try:
        return await page.title()
    except PlaywrightError:
        return ""


def _at_path(doc: Any, path: str) -> str | None:
    """The text at a dotted JSON path ("data.msg", "list.0.title"); None when absent."""
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    if doc is None or isinstance(doc, (dict, list)):
        return None if doc is None else json.dumps(doc, ensure_ascii=False)
    return "true" if doc is True else "false" if doc is False else str(doc)


async def _quietly(awaitable) -> None:
    with contextlib.suppress(PlaywrightError):
        await awaitable


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
