"""The typed schema of scenarios (STYLE.md: steps are a closed vocabulary).

A platform template holds the flows (`submit`, `query`, `list`) as steps, named selectors, the
markers that tell success, rejection, not-found and each status, the field limits and the time
formats. A step refers to a selector by name (`@title`) so that a site overrides one selector
(`[overrides.selectors] title = "#newTitle"`) without copying the flow. An unknown step or a
missing field fails at load time with the file, the key and the reason.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.scenario.variables import check_template
from bot.vocab import MailboxKind, Marker, SiteStatus


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _StepBase(_Strict):
    name: str = ""          # shown in timings, evidence file names and failure messages
    timeout_ms: int | None = None


class Goto(_StepBase):
    op: Literal["goto"]
    url: str                # template: "{base_url}/{mailbox}/query"
    # Query parameters (templates), encoded in the scenario's `encoding` and appended to the URL:
    # a search for the letter's title, `params = {key = "{letter.title}"}`, is safe whatever
    # the title holds (spaces, &, #, GBK on older sites).
    params: dict[str, str] = {}
    # "load" waits for images (a captcha); a page read by later steps needs only the DOM.
    wait_until: Literal["load", "domcontentloaded", "commit"] = "load"


class Request(_StepBase):
    """Fetches a page over HTTP with the browser context's cookies, without navigating, and
    shows the answer in the page, where the following steps read it as usual.

    For read-only flows (a query, a list): a form post that needs no typing is far cheaper
    this way than loading the form and clicking, for the bot and for the site. Form values
    are templates, encoded in the scenario's `encoding` (GBK sites expect GBK bodies)."""

    op: Literal["request"]
    url: str
    method: Literal["GET", "POST"] = "GET"
    form: dict[str, str] = {}
    # A JSON body (string values are templates), for the JSON services of newer platforms.
    # A JSON answer is shown as a document where each value is an element with its
    # `data-path` ("data.replies.0.content"), read by the following steps as any page.
    json_body: dict[str, Any] | None = Field(default=None, alias="json")   # TOML key: json
    headers: dict[str, str] = {}          # templates, e.g. {"X-CSRF-TOKEN" = "{extracted[csrf]}"}

    @model_validator(mode="after")
    def _one_body(self):
        if self.form and self.json_body is not None:
            raise ValueError("give form or json, not both")
        if (self.form or self.json_body is not None) and self.method != "POST":
            raise ValueError("a form or json body needs method = \"POST\"")
        return self


class Fill(_StepBase):
    op: Literal["fill"]
    selector: str
    value: str              # template: "{letter.title}"


class Select(_StepBase):
    op: Literal["select"]
    selector: str
    value: str | None = None
    label: str | None = None
    index: int | None = None

    @model_validator(mode="after")
    def _one_choice(self):
        if sum(v is not None for v in (self.value, self.label, self.index)) != 1:
            raise ValueError("give exactly one of value, label, index")
        return self


class Check(_StepBase):
    op: Literal["check"]
    selector: str           # a checkbox or radio button; may be a template


class Click(_StepBase):
    op: Literal["click"]
    selector: str
    # The click that sends the letter. A dry run stops before it; after it, an unknown
    # outcome is `submit_uncertain`, never retried automatically.
    final: bool = False


class WaitFor(_StepBase):
    op: Literal["wait_for"]
    selector: str
    state: Literal["attached", "detached", "visible", "hidden"] = "visible"


class Captcha(_StepBase):
    op: Literal["captcha"]
    image: str              # the captcha image element
    input: str              # where the answer goes
    # A form that shows a captcha only sometimes: absent image, nothing to answer.
    optional: bool = False
    # After the site says the answer was wrong (an `expect` outcome `captcha_wrong`), the flow
    # comes back here with a new image (clicking `refresh` first when the page is not
    # re-rendered), at most `retries` more times.
    refresh: str | None = None
    retries: int = Field(default=2, ge=0, le=5)
    # Where a retry starts when the site's refusal is a page of its own (a bare message page):
    # the `name` of an earlier step, usually the `goto` of the form; the form is filled again.
    retry_from: str | None = None


class Extract(_StepBase):
    op: Literal["extract"]
    field: str              # tracking_code | password | status | reply_text | reply_unit | reply_time | ...
    selector: str
    attribute: str | None = None    # default: the element's text
    pattern: str | None = None      # regex; group 1 (or the whole match) is the value
    required: bool = True


class Expect(_StepBase):
    """Waits until one of several markers appears; the first one names the outcome.

    Outcome names come from a closed set (bot.vocab.Marker): success, rejected (the marker's
    text is recorded as the site's reason), failed (the site's own error page), found,
    not_found, blocked; `captcha_wrong` (back to the captcha step for a new image, up to its
    `retries`; then rejected) and `expired` (the site's session expired, e.g. Laravel's 419
    页面已过期: the site did not take the form, so the whole flow runs again once).

    In a `list` flow, `not_found` proves the letter is absent only when the page is the site's
    own search for the letter's exact title or code (`site_search = true`); a list page that
    merely lacks the row is `not_covered` (it may have moved to another page: use `scan`).
    """

    op: Literal["expect"]
    # outcome -> a selector, or what a page's script shows instead of a page: a dialog, or the
    # answer to a request the previous step set off. Checked in the order written: put the
    # narrower marker first (captcha_wrong before rejected).
    outcomes: dict[Marker, "MarkerSpec | list[MarkerSpec]"] = Field(min_length=1)
    site_search: bool = False


class DialogMarker(_Strict):
    """An alert/confirm the page opened after the previous step (accepted, as a person would),
    whose message matches `dialog` (a regular expression; "" matches any). Its message is the
    site's words: the reason of a refusal."""

    dialog: str


class ResponseMarker(_Strict):
    """The answer to a request the page's script made after the previous step (an XHR posting
    the form): its URL contains `response`; optionally its HTTP `status`; and the value at the
    JSON path `json` ("code", "data.msg") equal to `equals` or matching `matches` (a regular
    expression; without `json`, on the whole body). `reason`: the JSON path of the site's words,
    recorded as the reason of a refusal (default: the matched value)."""

    response: str = Field(min_length=1)
    status: int | None = None
    json_path: str | None = Field(default=None, alias="json")
    equals: str | None = None
    matches: str | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _one_test(self):
        if self.equals is not None and self.matches is not None:
            raise ValueError("give equals or matches, not both")
        if self.equals is not None and self.json_path is None:
            raise ValueError("equals needs json (the path of the value to compare)")
        return self


MarkerSpec = str | DialogMarker | ResponseMarker   # a list of them: any one of them
Expect.model_rebuild()


class Scan(_StepBase):
    """Reads a public list page by page for the letter's row (newest first, as lists are).

    Found: `match` is on the page (the later steps read the row there). Not found, proven: a
    row submitted before the letter (its `row_time`, read with `time_formats.row_time`) was
    reached without meeting it, or the list ended (no `next`). Not covered: `max_pages` read
    and still only newer rows: that proves nothing (a busy list, a letter on a later page).

    The next page is reached by following `next` (a link: its href is loaded; a button without
    one is clicked) or by loading `page_url` with `{page}` = 2, 3, ... A page is ready when
    `ready` is attached (a list drawn by a script), else when a row or `empty` is.
    """

    op: Literal["scan"]
    rows: str                          # every row of the list on a page
    match: str                         # the letter's row (a template: {letter.title}, ...)
    row_time: str                      # within a row: its submission date or time
    next: str | None = None            # the next-page link or button
    page_url: str | None = None        # or a URL template with {page}
    # Present only on the list's last page, for lists whose pager keeps a dead "next" link
    # (href="javascript:;") or shows the last page again past the end.
    last_page: str | None = None
    ready: str | None = None
    empty: str | None = None           # the list's "no letters" row, if it draws one
    max_pages: int = Field(default=10, ge=1, le=200)

    @model_validator(mode="after")
    def _one_way_on(self):
        if self.next and self.page_url:
            raise ValueError("give next or page_url, not both")
        if self.page_url and "{page}" not in self.page_url:
            raise ValueError("page_url must contain {page}")
        return self


Step = Annotated[Union[Goto, Request, Fill, Select, Check, Click, WaitFor, Captcha, Extract, Expect, Scan],
                 Field(discriminator="op")]


class Flow(_Strict):
    steps: list[Step] = Field(min_length=1)
    # The flow's pages are server-rendered: it may run without a browser, with a plain HTTP
    # client and an HTML parser (bot.browser.plain), much cheaper for a poll. Only reading steps
    # (goto, request, extract, expect with page markers, scan by link or page number), and
    # selectors that need no browser (CSS, :has(), :text-is(), :has-text()).
    http: bool = False


class Limits(_Strict):
    title_min: int = 1
    title_max: int = 50
    body_min: int = 1
    body_max: int = 2000
    # Characters the form refuses in an email address, e.g. "+" on some systems.
    email_forbidden: str = ""


class TimeFormats(_Strict):
    # strptime formats tried in order for a displayed reply time; a format without %H means
    # the site shows a date only, compared by date. "epoch_ms" / "epoch_s": a JSON service's
    # Unix time in milliseconds / seconds.
    reply_time: list[str] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
    # A public list row's submission date or time (the `scan` step's `row_time`).
    row_time: list[str] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class Scenario(_Strict):
    """A platform template with one site's overrides merged in."""

    platform: str
    version: int = 1
    description: str = ""
    encoding: str = "utf-8"
    selectors: dict[str, str] = {}
    values: dict[str, str] = {}           # fixed form values, e.g. a 提交对象 choice
    limits: Limits = Limits()
    time_formats: TimeFormats = TimeFormats()
    # Status text as the site shows it -> pending | acknowledged (受理/转办: not an answer) | replied.
    # A word not listed here is flagged `unknown_status` and is a reply only when the page also
    # shows a reply text and a readable reply time.
    status_map: dict[str, SiteStatus] = {}
    # Categories the form offers, mapped from our 咨询/投诉/建议/求助.
    categories: dict[str, str] = {}
    flows: dict[Literal["submit", "query", "list"], Flow]
    timeout_ms: int = 15_000
    # How a firewall or challenge page (WAF) is recognised after a navigation: by its title or a
    # phrase in its text. Such a page is recorded as `blocked`, never as "no reply" or "not found".
    blocked_titles: list[str] = ["安全验证", "访问拦截", "访问被拦截", "网站防火墙", "Access Denied", "Just a moment"]
    blocked_phrases: list[str] = ["您的访问请求可能对网站造成安全威胁", "当前访问疑似黑客攻击",
                                  "已被网站管理员设置为拦截", "请开启JavaScript并刷新该页"]

    @model_validator(mode="after")
    def _needs_submit_and_query(self):
        if "submit" not in self.flows:
            raise ValueError("flows.submit is required")
        if "query" not in self.flows and "list" not in self.flows:
            # A board without a query page is watched on its public list.
            raise ValueError("flows.query or flows.list is required (how a sent letter is looked at)")
        finals = [s for s in self.flows["submit"].steps if isinstance(s, Click) and s.final]
        if len(finals) != 1:
            raise ValueError("flows.submit must have exactly one click with final = true")
        if any(isinstance(s, Request) and s.method != "GET" for s in self.flows["submit"].steps):
            # A letter is sent by a person's click on the form, never by a bare POST.
            raise ValueError("flows.submit may not use a POST request step")
        for flow_name, flow in self.flows.items():
            names = [s.name for s in flow.steps]
            for i, step in enumerate(flow.steps):
                if isinstance(step, Captcha) and step.retry_from and step.retry_from not in names[:i]:
                    raise ValueError(f"flows.{flow_name}.steps[{i}].retry_from: no earlier step named {step.retry_from!r}")
                for attr in ("selector", "image", "input"):
                    sel = getattr(step, attr, None)
                    if isinstance(sel, str) and sel.startswith("@") and sel[1:] not in self.selectors:
                        raise ValueError(f"flows.{flow_name}.steps[{i}].{attr}: selector '{sel}' is not defined in [selectors]")
                if isinstance(step, Scan):
                    for attr in ("rows", "match", "row_time", "next", "ready", "empty", "last_page"):
                        sel = getattr(step, attr)
                        if sel and sel.startswith("@") and sel[1:] not in self.selectors:
                            raise ValueError(f"flows.{flow_name}.steps[{i}].{attr}: selector '{sel}' is not defined in [selectors]")
                if isinstance(step, Expect):
                    for outcome, sel in ((o, x) for o, m in step.outcomes.items() for x in (m if isinstance(m, list) else [m])):
                        if isinstance(sel, str) and sel.startswith("@") and sel[1:] not in self.selectors:
                            raise ValueError(f"flows.{flow_name}.steps[{i}].outcomes.{outcome}: selector '{sel}' is not defined in [selectors]")
                    if step.site_search and not _searches_for_the_letter(flow.steps[:i]):
                        raise ValueError(f"flows.{flow_name}.steps[{i}].site_search: no earlier goto or request "
                                         "of this flow sends {letter.title} or {tracking_code} to the site")
            self._check_variables(flow_name, flow)
            if flow.http:
                self._check_plain(flow_name, flow)
        return self

    def _check_plain(self, flow_name: str, flow: "Flow") -> None:
        """An `http = true` flow must be readable without a browser: refused at load otherwise."""
        from bot.browser.selectors import check

        for i, step in enumerate(flow.steps):
            where = f"flows.{flow_name}.steps[{i}]"
            if not isinstance(step, (Goto, Request, Extract, Expect, Scan)):
                raise ValueError(f"{where}: a {step.op} step needs a browser; a flow with http = true only reads "
                                 "(goto, request, extract, expect, scan)")
            if isinstance(step, Scan) and not step.page_url and not step.next:
                raise ValueError(f"{where}: with http = true a scan goes on by page_url or a next link")
            for key, text in _templates(step):
                if not (key in _SELECTOR_KEYS or key.startswith("outcomes.")):
                    continue
                if text.startswith("@"):
                    text = self.selectors.get(text[1:], "")
                try:
                    check(_PLACEHOLDER.sub("x", text))
                except ValueError as e:
                    raise ValueError(f"{where}.{key}: {e}") from None
            if isinstance(step, Expect) and any(not isinstance(x, str) for m in step.outcomes.values()
                                                for x in (m if isinstance(m, list) else [m])):
                raise ValueError(f"{where}: dialogs and request answers need a browser (http = true)")

    def _check_variables(self, flow_name: str, flow: "Flow") -> None:
        """Every `{...}` of every step names a variable the engine provides (a misspelled one
        fails here, at load, not after a letter was claimed)."""
        for i, step in enumerate(flow.steps):
            for key, text in _templates(step):
                if (key in _SELECTOR_KEYS or key.startswith("outcomes.")) and text.startswith("@"):
                    text = self.selectors.get(text[1:], "")
                problem = check_template(text, values=self.values, page=isinstance(step, Scan) and key == "page_url")
                if problem:
                    raise ValueError(f"flows.{flow_name}.steps[{i}].{key}: {problem}")

    def selector(self, ref: str) -> str:
        return self.selectors[ref[1:]] if ref.startswith("@") else ref


# A template's `{...}` fields, filled with a harmless word to check a selector's syntax.
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _templates(step) -> list[tuple[str, str]]:
    """(key, text) of every template string a step holds, nested json and form values included."""
    out: list[tuple[str, str]] = []

    def walk(key: str, value) -> None:
        if isinstance(value, str):
            out.append((key, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{key}.{k}", v)
        elif isinstance(value, list):
            for n, v in enumerate(value):
                walk(f"{key}[{n}]", v)

    for name, value in step:
        name = "json" if name == "json_body" else name
        if name in _TEMPLATE_KEYS + _SELECTOR_KEYS and value is not None:
            walk(name, value)
    if isinstance(step, Expect):
        out += [(f"outcomes.{outcome}", sel) for outcome, m in step.outcomes.items()
                for sel in (m if isinstance(m, list) else [m]) if isinstance(sel, str)]
    return out


# Step keys the engine renders: selectors (or `@name` of one), and the other templates.
_SELECTOR_KEYS = ("selector", "image", "input", "refresh", "rows", "match", "row_time", "next", "ready", "empty",
                  "last_page")
_TEMPLATE_KEYS = ("url", "params", "form", "json", "headers", "value", "label", "page_url")


def _searches_for_the_letter(steps) -> bool:
    """An earlier navigation of the flow sends the letter's title or code to the site."""
    for step in steps:
        if isinstance(step, (Goto, Request)):
            text = str(step.model_dump())
            if "{letter.title}" in text or "{tracking_code}" in text:
                return True
    return False


MAILBOX_KINDS = tuple(MailboxKind)


class SiteRecord(_Strict):
    """A site file: data only (identity, group, URL, platform and version, overrides)."""

    key: str = ""                 # defaults to the file name without .toml
    name: str
    group: str
    host_unit: str = ""
    region: str = ""
    base_url: str = Field(pattern=r"^https?://")
    platform: str
    platform_version: int | None = None   # the template version this site was written for
    mailboxes: list[MailboxKind] = Field(min_length=1)
    mailbox_labels: dict[MailboxKind, str] = {}   # e.g. {mayor = "县长信箱"}, {board = "咨询投诉"}
    # Letters are published only after the site's staff review them (a moderated board): until
    # its deadline, one not yet visible is awaiting publication, not "never visible".
    moderated: bool = False
    valid_from: date | None = None
    valid_to: date | None = None
    # A mailbox behind a unified identity platform (统一身份认证): where the inspector logs in
    # (`mailbox-bot login`), and the element that shows a page is that login page (a session
    # that is missing or expired sends the letter to the inspector).
    login: "LoginSpec | None" = None
    captcha_solver: str = ""      # "package.module:function"; overrides the global one
    overrides: dict = {}

    @model_validator(mode="after")
    def _dates(self):
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if len(set(self.mailboxes)) != len(self.mailboxes):
            raise ValueError("mailboxes lists one twice")
        return self

    def mailbox_label(self, kind: str) -> str:
        return self.mailbox_labels.get(kind) or default_mailbox_label(self.name, kind)


class LoginSpec(_Strict):
    url: str = Field(pattern=r"^https?://")
    marker: str = Field(min_length=1)           # selector present only on the login page
    # Steps run by `mailbox-bot login` at the terminal (account, password, captcha, SMS code);
    # without them the inspector logs in by hand in a headed browser.
    account: str = ""                           # selectors of the login form
    password: str = ""
    captcha_image: str = ""
    captcha_input: str = ""
    sms_button: str = ""
    sms_input: str = ""
    submit: str = ""


SiteRecord.model_rebuild()


def default_mailbox_label(site_name: str, kind: str) -> str:
    """领导信箱, 在线留言 for a message board, or for the head's mailbox 市长/县长/区长信箱 by what
    kind of place the site is."""
    if kind == MailboxKind.LEADER:
        return "领导信箱"
    if kind == MailboxKind.BOARD:
        return "在线留言"
    name = site_name
    for suffix in ("人民政府", "管理委员会", "政府"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith("县"):
        return "县长信箱"
    if name.endswith("区"):
        return "区长信箱"
    return "市长信箱"
