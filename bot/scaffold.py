"""Starting a new site: its site file, and the saved pages its test replays (STYLE.md, point 10).

A site file is data (name, group, base URL, platform template and version, mailboxes). Whether
the template really fits the site is found out the only safe way: the submit flow is run as a
dry run (every field filled, stopped before the final click, nothing sent) with a made-up
letter, while Playwright records every request and response into a HAR file. The generic test
`tests/test_saved_sites.py` replays that HAR offline (`route_from_har`, anything not recorded is
aborted), so a change to a platform template that would break a known site fails in CI, without
the site and without a network.

The made-up letter is fixed (not random): a replay must ask for exactly what was recorded.
A saved HAR is kept without cookies and credential headers (`scrub_har`): it goes into the
repository, and a session cookie is a login.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.browser.engine import EvidenceSink, FlowResult, FlowRunner
from bot.browser.launch import launch_options
from bot.errors import UserError
from bot.scenario.schema import Scenario, SiteRecord

PROBE_CODE = "0000000000"
DEFAULT_GROUP = "政府门户网站"
# The same browser settings the campaign's contexts use (bot.browser.engine.Browser).
CONTEXT_OPTIONS = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai", "viewport": {"width": 1280, "height": 900}}
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
# Headers that carry a session or a credential (lower case).
SECRET_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})


class LooksOnly:
    """A dry run needs the captcha image and input to exist, not an answer."""

    label = "dry run (no answer typed)"

    async def answer(self, image: bytes, site: str) -> str | None:
        return "" if image else None


def probe_variables(record: SiteRecord, scenario: Scenario, kind: str) -> dict:
    """The flow variables of a made-up letter that is never stored or sent, with a code no
    site has issued (as `mailbox-bot check` uses)."""
    from bot.campaign.worker import Target, flow_variables
    from bot.store import models as m

    letter = m.Letter(title="关于政务服务事项办理的咨询", body="您好，请问相关事项如何办理？谢谢。",
                      category="咨询", tracking_code=PROBE_CODE, password=PROBE_CODE,
                      writer={"name": "王晓明", "phone": "13800000000",
                              "email": "check@example.org", "password": "Check2024"})
    letter.mailbox = m.Mailbox(kind=kind)
    return flow_variables(letter, Target(record=record, scenario=scenario, site_id=0))


@dataclass
class FieldCheck:
    selector: str
    expected: str
    actual: str | None            # None: the field is not on the page the flow stopped at

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


@dataclass
class DryRun:
    mailbox: str
    result: FlowResult
    fields: list[FieldCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.outcome == "dry_run" and bool(self.fields) and all(f.ok for f in self.fields)

    def problem(self) -> str:
        """What went wrong, naming the step (or the field), for one line of output."""
        r = self.result
        if r.outcome != "dry_run":
            return f"{r.outcome} at {r.failed_step or '(no step)'}: {r.message or 'the flow did not reach the final click'}"
        if not self.fields:
            return "the submit flow fills no field before its final click"
        bad = next(f for f in self.fields if not f.ok)
        return (f"field {bad.selector} holds {bad.actual!r} after the dry run, expected {bad.expected!r}"
                if bad.actual is not None else f"field {bad.selector} was not on its page")


async def dry_run_submit(page, record: SiteRecord, scenario: Scenario, kind: str,
                         evidence: EvidenceSink, *, timeout_ms: int | None = None) -> DryRun:
    """The submit flow up to (not including) its final click, every field read back right after it
    was filled (on its own page: a form may preview before it sends): a fill that silently went
    to the wrong element is caught here, not in a campaign."""
    if timeout_ms is not None:
        scenario = scenario.model_copy(update={"timeout_ms": timeout_ms})
    variables = probe_variables(record, scenario, kind)
    runner = FlowRunner(scenario, evidence, captcha=LooksOnly(), site_name=record.name, read_back_fills=True)
    result = await runner.run(page, "submit", variables, dry_run=True)
    run = DryRun(mailbox=kind, result=result)
    if result.outcome != "dry_run":
        return run
    run.fields = [FieldCheck(sel, expected, actual) for sel, expected, actual in result.filled]
    return run


# -- the browser ---------------------------------------------------------------------------------

@asynccontextmanager
async def chromium(executable_path: str = "", headless: bool = True):
    """One Chromium, started the way the product starts it (bot.browser.launch)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(**launch_options(executable_path, headless))
        try:
            yield browser
        finally:
            await browser.close()


async def _citizen_user_agent(browser) -> str:
    # As the campaign's Browser does: a citizen's browser does not announce itself as headless.
    page = await browser.new_page()
    try:
        return (await page.evaluate("navigator.userAgent")).replace("HeadlessChrome", "Chrome")
    finally:
        await page.context.close()


async def record_pages(browser, record: SiteRecord, scenario: Scenario, site_pages: Path,
                       evidence: EvidenceSink, *, timeout_ms: int | None = None) -> list[tuple[DryRun, Path]]:
    """A dry run per mailbox, each in a context recording `site_pages/.<mailbox>.har.part`.

    The caller keeps the HARs (renames them to `<mailbox>.har`) only when every dry run is ok."""
    site_pages.mkdir(parents=True, exist_ok=True)
    ua = await _citizen_user_agent(browser)
    out = []
    for kind in record.mailboxes:
        part = site_pages / f".{kind}.har.part"
        # "minimal" keeps what route_from_har needs (URLs, bodies), not timings: a smaller file.
        context = await browser.new_context(**CONTEXT_OPTIONS, user_agent=ua, record_har_path=str(part),
                                            record_har_content="embed", record_har_mode="minimal",
                                            service_workers="block")
        try:
            page = await context.new_page()
            run = await dry_run_submit(page, record, scenario, kind, evidence, timeout_ms=timeout_ms)
        finally:
            await context.close()         # the HAR is written when its context closes
        if part.exists():
            scrub_har(part)
        out.append((run, part))
    return out


def scrub_har(path: Path) -> int:
    """Removes every entry's request and response cookies and its Cookie, Set-Cookie,
    Authorization and Proxy-Authorization headers from the HAR at `path` (rewritten in place);
    returns how many were removed.

    Why: saved pages are committed and shared, and a cookie or an Authorization header is a
    session someone could use (a site behind a unified login, a proxy's password). The replay
    does not need them: `route_from_har` finds a response by method, URL and body."""
    data = json.loads(path.read_text(encoding="utf-8"))
    removed = 0
    for entry in data.get("log", {}).get("entries", []):
        for part in ("request", "response"):
            message = entry.get(part)
            if not isinstance(message, dict):
                continue
            removed += len(message.get("cookies") or [])
            message["cookies"] = []                      # the HAR format wants the list
            headers = message.get("headers") or []
            kept = [h for h in headers if str(h.get("name", "")).lower() not in SECRET_HEADERS]
            if len(kept) != len(headers):
                removed += len(headers) - len(kept)
                message["headers"] = kept
                message["headersSize"] = -1              # no longer the size that was sent
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return removed


async def replay_saved(browser, record: SiteRecord, scenario: Scenario, har: Path, kind: str,
                       evidence: EvidenceSink, *, timeout_ms: int | None = None) -> DryRun:
    """The dry run again, every response served from the HAR; a request that was not recorded
    is aborted, so nothing reaches the network."""
    context = await browser.new_context(**CONTEXT_OPTIONS, service_workers="block")
    try:
        await context.route_from_har(str(har), not_found="abort")
        page = await context.new_page()
        return await dry_run_submit(page, record, scenario, kind, evidence, timeout_ms=timeout_ms)
    finally:
        await context.close()


# -- the site file -------------------------------------------------------------------------------

def base_url_of(url: str) -> str:
    """The site's base URL: scheme, host and path, without a trailing mailbox segment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"URL: {url!r} is not an http(s) URL (expected e.g. http://www.example.gov.cn/zmhd)")
    path = parts.path.rstrip("/")
    # Pasted from the browser's address bar: .../leader/ or .../mayor/index.php
    path = re.sub(r"/(leader|mayor)(/[^/]*)?$", "", path)
    return f"{parts.scheme}://{parts.netloc}{path}"


def key_from_url(url: str) -> str:
    """A file-name slug from host and path: http://www.baoji.gov.cn/zmhd -> baoji-gov-cn-zmhd.
    The port is left out (a sandbox's changes from run to run)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    slug = re.sub(r"[^a-z0-9]+", "-", f"{host}/{parts.path}".lower()).strip("-")
    return slug[:100] or "site"


def check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise UserError(f"--key: {key!r} is not a file-name key (expected lower-case letters, digits, "
                        "'-' or '_', starting with a letter or digit)")
    return key


def site_file_text(record: SiteRecord, template_file: str) -> str:
    """The site file as TOML, with a commented hint where overrides go."""
    def s(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)    # a JSON string is a TOML basic string

    lines = [
        "# Written by `mailbox-bot scaffold`. A site file is data only: behaviour lives in the",
        f"# platform template ({template_file}).",
        f"name = {s(record.name)}",
        f"group = {s(record.group)}",
        f"base_url = {s(record.base_url)}",
        f"platform = {s(record.platform)}",
        f"platform_version = {record.platform_version}",
        "mailboxes = [" + ", ".join(s(k) for k in record.mailboxes) + "]",
        "",
        "# Only what differs from the template, by key. A field the form names differently, e.g.:",
        "# [overrides.selectors]",
        '# title = "#subject"',
        "",
    ]
    return "\n".join(lines)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
