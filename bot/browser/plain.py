"""Read-only flows without a browser: a plain HTTP client and a real HTML parser.

A poll of a server-rendered query page or list needs no JavaScript: fetching the page and
reading it with the template's own selectors (bot.browser.selectors) costs a small fraction of
a browser page. A template allows it per flow (`[flows.query] http = true`); a flow with typing,
clicks, captchas or dialogs, or a page built by a script, keeps the browser. The result is the
same `FlowResult`, with the page's HTML kept as evidence; a screenshot is rendered from that HTML
by the caller only when the observation differs from the previous one.

Cookies live in a jar of the run's own (a saved login is loaded into it), so a session a site
opens for the query (a CSRF token) is carried as a browser would.
"""

from __future__ import annotations

import json
import re
import time
from html import escape as html_escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.browser import lists, selectors
from bot.browser.engine import Blocked, EvidenceSink, FlowResult, NeedsInspector, StepFailed, StepTiming, _first_line, _label, _render_json, json_document, outcome_of, refuse_page, render
from bot.scenario.schema import Expect, Extract, Goto, Request, Scan, Scenario
from bot.vocab import FlowOutcome, Marker

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.I)
_CHARSET = re.compile(r"charset=([\w-]+)", re.I)
_HEAD = re.compile(r"<head[^>]*>", re.I)
# A citizen's browser, as the browser path announces itself (bot.browser.engine.Browser).
DEFAULT_USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/131.0.0.0 Safari/537.36")


class PlainHttp:
    """The connection pool the plain runs share (one per worker)."""

    def __init__(self, user_agent: str | None = None, concurrency: int = 16):
        self.user_agent = user_agent or DEFAULT_USER_AGENT
        self._pool = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency * 2,
                                                                   max_keepalive_connections=concurrency))
        self._transport = _Shared(self._pool)

    def client(self, *, storage_state: str | None = None, proxy: dict | None = None) -> httpx.AsyncClient:
        """A client with a cookie jar of its own (and the saved login's cookies)."""
        headers = {"User-Agent": self.user_agent, "Accept-Language": "zh-CN,zh;q=0.9",
                   "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"}
        if proxy:
            auth = (proxy.get("username"), proxy.get("password")) if proxy.get("username") else None
            url = httpx.URL(proxy["server"])
            if auth:
                url = url.copy_with(username=auth[0], password=auth[1] or "")
            client = httpx.AsyncClient(headers=headers, proxy=str(url), follow_redirects=True)
        else:
            client = httpx.AsyncClient(headers=headers, transport=self._transport, follow_redirects=True)
        if storage_state and Path(storage_state).exists():
            for c in json.loads(Path(storage_state).read_text(encoding="utf-8")).get("cookies", []):
                client.cookies.set(c["name"], c["value"], domain=c.get("domain", "").lstrip("."), path=c.get("path", "/"))
        return client

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Shared(httpx.AsyncBaseTransport):
    """The pool, lent to each run's client: closing a client must not close the pool the
    other runs are using."""

    def __init__(self, pool: httpx.AsyncHTTPTransport):
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        pass


class PlainRunner:
    """Runs one `http = true` flow of a scenario with a plain HTTP client."""

    def __init__(self, scenario: Scenario, evidence: EvidenceSink, http: PlainHttp, *, site_name: str = "",
                 login_marker: str | None = None, login_hint: str = ""):
        self.scenario, self.evidence, self.http = scenario, evidence, http
        self.site_name = site_name
        self.login_marker, self.login_hint = login_marker, login_hint
        self._doc = None
        self._html = ""

    def _sel(self, ref: str, variables: dict) -> str:
        return render(self.scenario.selector(ref), variables)

    async def run(self, flow_name: str, variables: dict[str, Any], *, storage_state: str | None = None,
                  proxy: dict | None = None) -> FlowResult:
        flow = self.scenario.flows[flow_name]
        result = FlowResult(flow=flow_name, outcome=FlowOutcome.FAILED)
        variables = {**variables, "extracted": result.values}
        label = ""
        async with self.http.client(storage_state=storage_state, proxy=proxy) as client:
            self._client = client
            restarted = False
            i = 0
            try:
                while i < len(flow.steps):
                    step = flow.steps[i]
                    label = _label(flow_name, i, step)
                    started = time.perf_counter()
                    marker = await self._step(step, variables, result, flow_name, label)
                    result.timings.append(StepTiming(i, step.op, step.name or getattr(step, "url", ""),
                                                     (time.perf_counter() - started) * 1000))
                    i += 1
                    if marker == Marker.EXPIRED:
                        # The site's session expired (419): it took nothing; the flow once more.
                        if restarted:
                            raise StepFailed(label, "the site's session expired again after a reload")
                        restarted, i = True, 0
                        result.values.clear()
                        continue
                    if marker is not None:
                        result.outcome = outcome_of(flow_name, marker, step, result)
                        if result.outcome in (FlowOutcome.REJECTED, FlowOutcome.NOT_FOUND, FlowOutcome.NOT_COVERED,
                                              FlowOutcome.BLOCKED, FlowOutcome.FAILED):
                            self._keep(result, f"{flow_name}-{result.outcome}")
                            return result
                if result.outcome == FlowOutcome.FAILED:
                    result.outcome = FlowOutcome.SUCCESS
                self._keep(result, f"{flow_name}-{result.outcome}")
                return result
            except Blocked as e:
                result.outcome, result.message, result.failed_step = FlowOutcome.BLOCKED, e.reason, e.step
            except NeedsInspector as e:
                result.outcome, result.message, result.failed_step = FlowOutcome.NEEDS_INSPECTOR, str(e), label
            except StepFailed as e:
                result.outcome = FlowOutcome.FAILED
                result.message, result.failed_step, result.transient = e.reason, e.step, e.transient
            except httpx.HTTPError as e:
                result.outcome = FlowOutcome.FAILED
                result.message, result.failed_step, result.transient = _first_line(str(e) or type(e).__name__), label, True
            self._keep(result, f"{flow_name}-{result.outcome}")
            return result

    # -- steps -----------------------------------------------------------------------------------
    async def _step(self, step, variables: dict, result: FlowResult, flow_name: str, label: str):
        timeout = (step.timeout_ms or self.scenario.timeout_ms) / 1000
        if isinstance(step, Goto):
            url = render(step.url, variables)
            if step.params:
                url += ("&" if "?" in url else "?") + urlencode(
                    {k: render(v, variables) for k, v in step.params.items()}, encoding=self.scenario.encoding)
            await self._fetch("GET", url, {}, None, timeout, label)
        elif isinstance(step, Request):
            headers = {k: render(v, variables) for k, v in step.headers.items()}
            url = render(step.url, variables)
            body = None
            if step.form:
                body = urlencode({k: render(v, variables) for k, v in step.form.items()},
                                 encoding=self.scenario.encoding).encode("ascii")
                headers = {"Content-Type": "application/x-www-form-urlencoded", "Referer": url, **headers}
            elif step.json_body is not None:
                body = json.dumps(_render_json(step.json_body, variables), ensure_ascii=False).encode("utf-8")
                headers = {"Content-Type": "application/json;charset=UTF-8", "Referer": url, **headers}
            await self._fetch(step.method, url, headers, body, timeout, label)
        elif isinstance(step, Extract):
            self._extract(step, variables, result, label)
        elif isinstance(step, Expect):
            return self._expect(step, variables, result, label)
        elif isinstance(step, Scan):
            return await self._scan(step, variables, result, timeout, label)
        else:       # refused at load for an http flow (bot.scenario.schema.Flow)
            raise StepFailed(label, f"a {step.op} step needs a browser")
        return None

    async def _fetch(self, method: str, url: str, headers: dict, body: bytes | None, timeout: float, label: str) -> None:
        for attempt in (1, 2):
            try:
                response = await self._client.request(method, url, headers=headers, content=body, timeout=timeout)
                break
            except httpx.TransportError as e:
                # A connection the server dropped (a read-only flow may ask again, once).
                if attempt == 2 or isinstance(e, httpx.TimeoutException):
                    raise StepFailed(label, f"{type(e).__name__}: {_first_line(str(e) or url)}", transient=True) from None
        if response.status_code >= 500 or response.status_code == 404:
            raise StepFailed(label, f"HTTP {response.status_code} from {response.url}",
                             transient=response.status_code >= 500)
        raw = response.content
        content_type = response.headers.get("content-type", "")
        m = _CHARSET.search(content_type) or _META_CHARSET.search(raw[:2048])
        charset = m.group(1) if m else self.scenario.encoding
        if isinstance(charset, bytes):
            charset = charset.decode("ascii", "replace")
        text = raw.decode(_codec(charset, self.scenario.encoding), errors="replace")
        if "json" in content_type.split(";")[0]:
            try:
                text = json_document(json.loads(text), str(response.url), response.status_code)
            except ValueError:
                raise StepFailed(label, f"HTTP {response.status_code} from {response.url}: not JSON: {text[:80]!r}") from None
        base = f'<base href="{html_escape(str(response.url), quote=True)}">'
        self._html = _HEAD.sub(lambda h: h.group(0) + base, text, count=1) if _HEAD.search(text) else base + text
        self._doc = selectors.parse(self._html)
        self._diagnose(label)

    def _diagnose(self, label: str) -> None:
        title = " ".join((self._doc.findtext(".//title") or "").split())
        body = self._doc.find(".//body")
        text = (body.text_content() if body is not None else "")[:4000]
        refuse_page(self.scenario, title, text, label)
        if self.login_marker and selectors.select(self._doc, self.login_marker):
            raise NeedsInspector("the site shows its login page: the saved session is missing or expired"
                                 + (f"; {self.login_hint}" if self.login_hint else ""))

    def _extract(self, step: Extract, variables: dict, result: FlowResult, label: str) -> None:
        found = selectors.select(self._doc, self._sel(step.selector, variables))
        value = None
        if found:
            el = found[0]
            value = el.get(step.attribute) if step.attribute else selectors.text_of(el)
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

    def _expect(self, step: Expect, variables: dict, result: FlowResult, label: str):
        """The first marker, in the order written, the page shows (it stands still: no waiting)."""
        for name, markers in step.outcomes.items():
            for marker in (markers if isinstance(markers, list) else [markers]):
                found = selectors.select(self._doc, self._sel(marker, variables))
                if found:
                    if name in (Marker.REJECTED, Marker.BLOCKED, Marker.CAPTCHA_WRONG, Marker.FAILED):
                        result.message = " ".join(selectors.text_of(found[0]).split())
                    return name
        title = " ".join((self._doc.findtext(".//title") or "").split())
        raise StepFailed(label, f"none of the expected markers appeared ({', '.join(step.outcomes)}); page title {title!r}")

    async def _scan(self, step: Scan, variables: dict, result: FlowResult, timeout: float, label: str):
        since = variables.get("since")
        formats = self.scenario.time_formats.row_time
        pages: dict[int, tuple[str, Any]] = {1: (self._html, self._doc)}

        async def read(n: int) -> lists.ListPage:
            if n not in pages:
                if step.page_url:
                    await self._fetch("GET", render(step.page_url, {**variables, "page": n}), {}, None, timeout, label)
                pages[n] = (self._html, self._doc)
            self._html, self._doc = pages[n]
            doc = self._doc
            rows = selectors.select(doc, self._sel(step.rows, variables))
            texts = [selectors.text_of(e) for e in selectors.select_in(rows, self._sel(step.row_time, variables))]
            found = bool(selectors.select(doc, self._sel(step.match, variables)))
            last = bool(step.last_page and selectors.select(doc, self._sel(step.last_page, variables)))
            if not step.page_url and not last:
                last = not (step.next and selectors.select(doc, self._sel(step.next, variables)))
            if since is None:
                return lists.ListPage(n, found, len(texts), None, False, last or not texts)
            return lists.read_rows(n, found, texts, formats, since, last)

        async def advance(n: int) -> bool:
            if step.page_url:
                await self._fetch("GET", render(step.page_url, {**variables, "page": n + 1}), {}, None, timeout, label)
            else:
                links = selectors.select(self._doc, self._sel(step.next, variables)) if step.next else []
                href = links[0].get("href") if links else None
                if not href or href.startswith(("#", "javascript:")):
                    return False
                base = self._doc.find(".//base")
                await self._fetch("GET", str(httpx.URL(base.get("href") if base is not None else "").join(href)),
                                  {}, None, timeout, label)
            pages[n + 1] = (self._html, self._doc)
            return True

        if step.page_url and since is not None:
            outcome, result.message, at = await lists.by_number(read, step.max_pages)
        else:
            outcome, result.message, at = await lists.in_order(read, advance, step.max_pages)
        if at is not None:                      # the later steps read the row on its page
            self._html, self._doc = pages[at]
        return outcome

    def _keep(self, result: FlowResult, step: str) -> None:
        """The page as it came, kept as evidence (the caller renders a screenshot when it matters)."""
        if self._html:
            result.evidence.append(self.evidence.save("html", step, self._html.encode("utf-8"), "html"))


def _codec(charset: str, fallback: str) -> str:
    import codecs

    name = charset.lower()
    if name in ("gb2312", "gbk"):
        name = "gb18030"            # the superset: what real GB2312 pages hold
    try:
        codecs.lookup(name)
        return name
    except LookupError:
        return fallback
