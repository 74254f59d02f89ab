"""The `hdjlpt` archetype (Laravel-style 互动交流平台): its HTTP contract (session cookie, CSRF
token, 419 页面已过期, session expiry on the sandbox clock, the JSON list, the query post), then
the scenario template driven end to end by the real engine in real Chromium: submit, query
through every state, a dry run, the 419 retry, the session-bound captcha, a drifted field, and
a small simulated campaign.

One Chromium for the module; each test gets its own sandbox on its own SimClock.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from conftest import letter_variables, run_async, run_flow

from bot.browser.engine import FlowResult
from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import DeclaredCaptchaAnswer, simulate
from bot.clock import SHANGHAI, SimClock, local
from bot.config import load_config
from bot.report import report_dict
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.sandbox.behaviour import reply_text
from bot.scenario.loader import load_platform
from bot.scenario.schema import Scenario
from bot.store.db import Database

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)      # Friday; Sunday 04-28 is a working day

CITY = "广东测试市人民政府"        # replies the same day at 15:30, deletes on working day 1 (04-28 09:00)
HOUSING = "广东测试市住房和城乡建设局"  # replies on working day 3 (04-30 10:30), shows it 1 day earlier
CAPTCHA = "广东测试市验证码局"      # checks its captcha
DRIFT = "广东测试市改版局"          # the title field was renamed by a redesign
ROSTER = roster_from_dict({
    "campaign": {"name": "hdjlpt", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [
        {"name": CITY, "group": "政府门户网站", "platform": "hdjlpt", "slug": "gz",
         "mailboxes": ["leader", "mayor"], "reply": {"workdays": 0, "at": "15:30"},
         "delete": {"workdays": 1}},
        {"name": HOUSING, "group": "市级部门网站", "platform": "hdjlpt", "slug": "zj",
         "mailboxes": ["leader"], "reply": {"workdays": 3, "at": "10:30"}, "backdate": {"workdays": 1}},
        {"name": CAPTCHA, "group": "市级部门网站", "platform": "hdjlpt", "slug": "yzm",
         "mailboxes": ["leader"], "captcha": True},
        {"name": DRIFT, "group": "市级部门网站", "platform": "hdjlpt", "slug": "gb",
         "mailboxes": ["leader"], "drift": "title"},
    ],
})

TITLE = "关于小区加装电梯补贴政策的咨询"
BODY = "您好！我家住在老旧小区，六层无电梯。\n请问：加装电梯的财政补贴标准是多少？谢谢！"
WRITER = {"name": "王晓明", "phone": "13891712345", "email": "wangxm@example.com", "password": ""}
FORM = {"name": WRITER["name"], "mobile": WRITER["phone"], "email": WRITER["email"], "category": "咨询",
        "title": TITLE, "content": BODY.replace("\n", "\r\n"), "is_public": "1", "captcha": ""}
# 信件编号: GD + YYYYMMDD + 6 digits. Until bot/sandbox/store.py numbers hdjlpt letters itself,
# the store's default (C + YYYYMMDD + 4) is what a letter gets.
CODE_RE = re.compile(r"^GD20240426\d{6}$")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(engine_browser):
    return engine_browser


@pytest.fixture
def sandbox(clock):
    with Sandbox(ROSTER, clock) as sb:
        yield sb


def make_variables(sc: Scenario, base_url: str, mailbox: str, site_name: str, *,
                   tracking_code: str = "", secret: str | None = None, **letter) -> dict:
    return letter_variables(sc, base_url, mailbox, site_name,
                            {"title": TITLE, "body": BODY, "category": "咨询", **WRITER, **letter},
                            tracking_code=tracking_code, secret=secret)


@pytest.fixture
def run(loop, browser, sandbox, evidence):
    """run(site, flow, **letter fields) -> FlowResult: the product's engine, a fresh context."""

    def _run(site_name: str, flow: str, *, mailbox: str = "leader", scenario: Scenario | None = None,
             captcha="declared", dry_run: bool = False, tracking_code: str = "",
             secret: str | None = None, on_step=None, **letter) -> FlowResult:
        sc = scenario or load_platform("hdjlpt", SCENARIOS)
        variables = make_variables(sc, sandbox.base_url(site_name), mailbox, site_name,
                                   tracking_code=tracking_code, secret=secret, **letter)
        answerer = DeclaredCaptchaAnswer() if captcha == "declared" else captcha
        return run_flow(loop, browser, evidence, sc, flow, variables, site_name=site_name,
                        answerer=answerer, dry_run=dry_run, on_step=on_step)

    return _run


class Client:
    """A plain HTTP client with a cookie jar, as a script would be; 4xx answers are returned."""

    def __init__(self, sb: Sandbox, site: str = CITY, mailbox: str = "leader"):
        self.jar = http.cookiejar.CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.jar))
        self.base = f"{sb.base_url(site)}/{mailbox}"

    def open(self, path: str, data: dict | None = None, *, json_body: dict | None = None,
             headers: dict | None = None):
        body, hdrs = None, dict(headers or {})
        if data is not None:
            body = urlencode(data).encode()
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            r = self.opener.open(Request(f"{self.base}/{path}", data=body, headers=hdrs), timeout=10)
        except HTTPError as e:
            return e.code, e.headers, e.read().decode("utf-8"), e.url
        raw = r.read()
        text = raw.decode("utf-8") if r.headers.get_content_maintype() != "image" else raw.hex()
        return r.status, r.headers, text, r.url

    def token(self, path: str = "") -> str:
        status, _, html, _ = self.open(path)
        assert status == 200
        meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)[1]
        assert re.search(rf'name="_token" value="{re.escape(meta)}"', html) or path == "public"
        return meta

    def submit(self, **over) -> tuple[str, str]:
        token = self.token()
        status, _, html, _ = self.open("letter", {**FORM, "_token": token, **over})
        assert status == 200, html
        return re.search(r'id="letterNo">([^<]+)<', html)[1], re.search(r'id="queryPwd">([^<]+)<', html)[1]

    def list(self, **body) -> tuple[int, dict]:
        token = self.token("public")
        status, headers, text, _ = self.open("list", json_body=body, headers={"X-CSRF-TOKEN": token})
        assert headers["Content-Type"].startswith("application/json")
        return status, json.loads(text)

    @property
    def session(self) -> str | None:
        return next((c.value for c in self.jar if c.name == "hdjlpt_session"), None)


def errors_of(html: str) -> list[str]:
    return re.findall(r'<li data-field="[^"]+">([^<]+)</li>', html)


def squash(text: str) -> str:
    return " ".join(text.split())


# -- the HTTP contract ---------------------------------------------------------------------------

def test_pages_set_a_session_cookie_and_carry_its_csrf_token(sandbox):
    c = Client(sandbox)
    status, headers, html, _ = c.open("")
    assert status == 200
    assert headers["Server"] == "nginx/1.18.0" and headers["X-Powered-By"].startswith("PHP/7.4")
    cookie = headers["Set-Cookie"]
    assert re.match(r"hdjlpt_session=[0-9a-f]{40}; path=/gz/; httponly", cookie, re.I), cookie
    assert '<form id="letterForm" method="POST" action="/gz/leader/letter"' in html
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)[1]
    assert f'name="_token" value="{token}"' in html
    assert re.search(r'<img id="captchaImg"[^>]* src="/gz/leader/captcha/default\?\w+"', html)
    # The session is kept: no new cookie, the same token, on every page of the site.
    status, headers, html, _ = c.open("search")
    assert "Set-Cookie" not in headers and f'content="{token}"' in html
    mayor = Client(sandbox, mailbox="mayor")
    mayor.jar = c.jar
    mayor.opener = c.opener
    assert mayor.token() == token
    # Another visitor gets another session and token.
    assert Client(sandbox).token() != token
    # GET never creates a letter; GET of the POST-only path goes back to the form.
    status, _, _, url = c.open("letter")
    assert status == 200 and url.endswith("/gz/leader/")
    img = c.open("captcha/default?x1y2")
    assert img[0] == 200 and img[1]["Content-Type"] == "image/png" and img[2].startswith("89504e47")
    assert sandbox.received() == []


def test_a_post_without_the_sessions_token_is_419_and_stores_nothing(sandbox):
    c = Client(sandbox)
    token = c.token()
    for bad in ({}, {"_token": ""}, {"_token": "not-the-token"}, {"_token": Client(sandbox).token()}):
        status, _, html, _ = c.open("letter", {**FORM, **bad})
        assert status == 419, bad
        assert "<title>页面已过期</title>" in html and 'id="expired"' in html
        assert 'href="/gz/leader/"' in html                   # back to the form
    # The right token but no session cookie: 419 too (and a new session is handed out).
    stranger = Client(sandbox)
    status, headers, _, _ = stranger.open("letter", {**FORM, "_token": token})
    assert status == 419 and "hdjlpt_session=" in headers["Set-Cookie"]
    # The JSON service says it in JSON.
    status, headers, text, _ = c.open("list", json_body={"offset": 0, "limit": 5})
    assert status == 419 and json.loads(text) == {"message": "CSRF token mismatch."}
    assert sandbox.received() == []
    # The session's own token, as form field or header: taken.
    status, _, html, _ = c.open("letter", {**FORM, "_token": token})
    assert status == 200 and 'id="letterNo"' in html
    status, _, html, _ = c.open("letter", FORM, headers={"X-CSRF-TOKEN": token})
    assert status == 200 and 'id="letterNo"' in html
    assert len(sandbox.received()) == 2


def test_the_session_expires_after_120_idle_minutes_of_sandbox_time(sandbox, clock):
    c = Client(sandbox)
    token = c.token()
    clock.set(START + timedelta(minutes=119))
    code, secret = c.submit()                        # still alive (and this request touches it)
    session = c.session
    clock.set(START + timedelta(minutes=119 + 121))  # 121 idle minutes
    status, headers, html, _ = c.open("letter", {**FORM, "_token": token})
    assert status == 419 and "页面已过期" in html
    assert len(sandbox.received()) == 1              # nothing more was stored
    assert c.session != session                      # the 419 came with a new session
    fresh = c.token()
    assert fresh != token
    assert c.open("letter", {**FORM, "_token": fresh})[0] == 200
    assert [x.received_at for x in sandbox.received()] == [at(2024, 4, 26, 11, 59), at(2024, 4, 26, 14, 0)]


def test_validation_errors_come_back_as_a_list_with_the_old_input(sandbox):
    c = Client(sandbox)
    token = c.token()
    status, _, html, url = c.open("letter", {**FORM, "_token": token, "title": "", "mobile": "1234",
                                             "email": "x@", "content": "问" * 1501})
    assert status == 200 and url.endswith("/gz/leader/")     # redirected back to the form
    assert errors_of(html) == ["手机号码 格式不正确。", "电子邮箱 不是一个合法的邮箱。",
                               "标题 不能为空。", "内容 不能大于 1500 个字符。"]
    assert f'value="{WRITER["name"]}"' in html and 'value="1234"' in html
    assert '<option value="咨询" selected>' in html
    assert errors_of(c.open("letter", {**FORM, "_token": token, "title": "加装电梯"})[2]) == ["标题 至少为 5 个字符。"]
    assert sandbox.received() == []
    # The error list is shown once (flashed).
    assert errors_of(c.open("")[2]) == []


def test_the_list_service_pages_newest_first_in_unix_seconds(sandbox, clock):
    c = Client(sandbox)
    first, _ = c.submit()
    clock.set(START + timedelta(minutes=10))
    c.submit(title="关于公园开放时间调整的建议", is_public="0")      # not public
    clock.set(START + timedelta(minutes=20))
    third, _ = c.submit(title="关于社区卫生服务中心的咨询")
    status, data = c.list(offset=0, limit=10)
    assert status == 200
    assert data["total"] == 2
    assert [r["letter_no"] for r in data["rows"]] == [third, first]
    assert data["rows"][1] == {"letter_no": first, "title": TITLE, "created_at": int(START.timestamp()),
                               "replied_at": None, "status": "待处理"}
    clock.set(at(2024, 4, 26, 16, 0))
    status, data = c.list(offset=1, limit=1)
    assert data["total"] == 2 and [r["letter_no"] for r in data["rows"]] == [first]
    assert data["rows"][0]["status"] == "已办结"
    assert data["rows"][0]["replied_at"] == int(at(2024, 4, 26, 15, 30).timestamp())
    # A form post with _token works as well; bad paging is a 422.
    token = c.token("public")
    status, _, text, _ = c.open("list", {"_token": token, "offset": "0", "limit": "1"})
    assert status == 200 and json.loads(text)["rows"][0]["letter_no"] == third
    assert c.list(offset=0, limit=0)[0] == 422
    assert c.list(offset=-1, limit=5)[0] == 422
    # After the deletion time (working day 1 at 09:00) the older letters are gone; a newer one is not.
    clock.set(at(2024, 4, 28, 10, 0))
    newest, _ = c.submit(title="关于垃圾分类投放时间的建议")
    status, data = c.list()
    assert data["total"] == 1 and [r["letter_no"] for r in data["rows"]] == [newest]
    assert len(sandbox.received()) == 4


def test_search_finds_the_letter_by_number_and_password(sandbox, clock):
    c = Client(sandbox, site=HOUSING)
    code, secret = c.submit()
    assert CODE_RE.match(code) and re.fullmatch(r"[A-Z2-9]{6}", secret)
    token = c.token("search")
    status, _, html, _ = c.open("search", {"_token": token, "letter_no": code, "query_pwd": secret.lower()})
    assert status == 200 and 'id="result"' in html
    assert re.search(r'id="resStatus"[^>]*>待处理<', html) and 'id="replyContent"' not in html
    clock.set(at(2024, 4, 30, 10, 30))                  # the real reply; it shows 04-29
    token = c.token("search")                          # the old session has expired meanwhile
    html = c.open("search", {"_token": token, "letter_no": code, "query_pwd": secret})[2]
    assert re.search(r'id="resStatus"[^>]*>已办结<', html)
    assert 'id="replyTime">2024-04-29 10:30:00<' in html
    assert f'id="replyUnit">{HOUSING}<' in html
    for form in ({"letter_no": code, "query_pwd": "WRONG9"}, {"letter_no": "GD20240426999999", "query_pwd": secret}):
        html = c.open("search", {"_token": token, **form})[2]
        assert 'id="notFound"' in html and "未找到相关信件" in html and 'id="result"' not in html
    status, _, html, url = c.open("search", {"_token": token, "letter_no": code, "query_pwd": ""})
    assert url.endswith("/zj/leader/search") and errors_of(html) == ["查询密码 不能为空。"]
    assert c.open("search", {"letter_no": code, "query_pwd": secret})[0] == 419


# -- end to end: the scenario template in the real engine --------------------------------------

def test_template_loads():
    sc = load_platform("hdjlpt", SCENARIOS)
    assert sc.platform == "hdjlpt" and sc.version == 1
    assert sc.status_map == {"待处理": "pending", "办理中": "pending", "已办结": "replied"}
    assert set(sc.categories) == {"咨询", "投诉", "建议", "求助"}


def test_submit_flow_succeeds_and_the_site_has_exactly_that_letter(run, sandbox, evidence):
    result = run(CITY, "submit")
    assert result.outcome == "success", (result.message, result.failed_step)
    assert result.final_clicked
    code, secret = result.values["tracking_code"], result.values["password"]
    assert CODE_RE.match(code) and re.fullmatch(r"[A-Z2-9]{6}", secret)
    (letter,) = sandbox.received()
    assert (letter.site, letter.mailbox, letter.tracking_code, letter.secret) == (CITY, "leader", code, secret)
    assert (letter.title, letter.body, letter.name, letter.phone, letter.email) == (
        TITLE, BODY, WRITER["name"], WRITER["phone"], WRITER["email"])
    assert (letter.kind, letter.public, letter.received_at) == ("咨询", True, START)
    assert {e.kind for e in result.evidence} >= {"html", "screenshot"}


def test_query_flow_follows_the_letter_until_it_is_deleted(run, sandbox, clock):
    sc = load_platform("hdjlpt", SCENARIOS)
    sub = run(CITY, "submit", mailbox="mayor")
    assert sub.outcome == "success", sub.message
    code, secret = sub.values["tracking_code"], sub.values["password"]

    def query(mailbox="mayor"):
        return run(CITY, "query", mailbox=mailbox, tracking_code=code, secret=secret)

    r = query()
    assert r.outcome == "found", (r.message, r.failed_step)
    assert r.values["status"] == "待处理" and sc.status_map["待处理"] == "pending"
    assert "reply_text" not in r.values and "reply_time" not in r.values
    assert query("leader").outcome == "not_found"      # only through the mailbox it was sent to

    clock.set(at(2024, 4, 26, 16, 0))
    r = query()
    assert (r.outcome, r.values["status"]) == ("found", "已办结")
    (letter,) = sandbox.received()
    expected = reply_text(title=TITLE, unit=CITY, mailbox_label=sandbox.mailbox_label(CITY, "mayor"),
                          received_at=letter.received_at, tracking_code=code)
    assert r.values["reply_text"] == squash(expected)
    assert r.values["reply_unit"] == CITY
    shown = local(sandbox.timeline(letter).displayed_reply_at)
    assert r.values["reply_time"] == f"{shown:%Y-%m-%d %H:%M:%S}" == "2024-04-26 15:30:00"

    clock.set(at(2024, 4, 28, 10, 0))                  # deleted on working day 1 at 09:00
    r = query()
    assert r.outcome == "not_found", (r.outcome, r.message, r.failed_step)


def test_dry_run_stores_nothing(run, sandbox):
    result = run(CITY, "submit", dry_run=True)
    assert result.outcome == "dry_run", (result.message, result.failed_step)
    assert not result.final_clicked
    assert sandbox.received() == []


def test_an_expired_session_at_the_click_is_a_419_and_the_flow_runs_again(run, sandbox, clock, evidence):
    sc = load_platform("hdjlpt", SCENARIOS)
    title_step = next(i for i, s in enumerate(sc.flows["submit"].steps) if getattr(s, "selector", "") == "@title")
    moved = []

    def on_step(timing):
        # The citizen leaves the half-filled form for three hours (once).
        if timing.index == title_step and not moved:
            moved.append(clock.now())
            clock.advance(timedelta(hours=3))

    result = run(CITY, "submit", on_step=on_step)
    assert moved == [START]
    assert result.outcome == "success", (result.message, result.failed_step)
    (letter,) = sandbox.received()                     # exactly one letter
    assert letter.tracking_code == result.values["tracking_code"]
    assert letter.received_at == START + timedelta(hours=3)
    expired = [e for e in result.evidence if e.step == "submit-expired" and e.kind == "html"]
    assert expired, [e.step for e in result.evidence]
    page = evidence.path(expired[0].path).read_text("utf-8")
    assert "页面已过期" in page and 'id="expired"' in page
    # The flow ran from its first page again: two form loads, two clicks.
    assert [t.index for t in result.timings].count(0) == 2


class PeekingAnswerer:
    """A person reading the picture: asks the sandbox what the image named by the form's hidden
    captcha_key shows. `wrong` first answers wrongly that many times."""

    label = "test: read from the sandbox"

    def __init__(self, sandbox: Sandbox, wrong: int = 0):
        self.sandbox, self.wrong = sandbox, wrong
        self.page = None
        self.images: list[bytes] = []

    async def answer(self, image: bytes, site: str) -> str | None:
        self.images.append(image)
        key = await self.page.input_value("input[name=captcha_key]")
        right = self.sandbox.captcha_answer(key)
        assert right is not None and re.fullmatch(r"\d{4}", right)
        if len(self.images) <= self.wrong:
            return f"{(int(right) + 1) % 10000:04d}"
        return right


def test_captcha_answer_from_the_session_is_accepted(run, sandbox):
    answerer = PeekingAnswerer(sandbox)
    result = run(CAPTCHA, "submit", captcha=answerer)
    assert result.outcome == "success", (result.message, result.failed_step)
    assert result.captcha_by == answerer.label
    assert len(answerer.images) == 1 and answerer.images[0][:8] == b"\x89PNG\r\n\x1a\n"
    (letter,) = sandbox.received()
    assert letter.tracking_code == result.values["tracking_code"]


def test_wrong_then_right_captcha_goes_back_for_a_new_picture(run, sandbox, evidence):
    answerer = PeekingAnswerer(sandbox, wrong=1)
    result = run(CAPTCHA, "submit", captcha=answerer)
    assert result.outcome == "success", (result.message, result.failed_step)
    assert len(answerer.images) == 2
    assert len(sandbox.received()) == 1
    wrong = [e for e in result.evidence if e.step == "submit-captcha-wrong-1" and e.kind == "html"]
    assert wrong and "验证码 不正确。" in evidence.path(wrong[0].path).read_text("utf-8")
    # Wrong again when no retry is left: a rejection; nothing more stored.
    sc = load_platform("hdjlpt", SCENARIOS)
    next(s for s in sc.flows["submit"].steps if s.op == "captcha").retries = 0
    answerer = PeekingAnswerer(sandbox, wrong=9)
    result = run(CAPTCHA, "submit", captcha=answerer, scenario=sc)
    assert (result.outcome, len(answerer.images)) == ("rejected", 1) and result.final_clicked
    assert len(sandbox.received()) == 1


def test_another_error_beside_a_wrong_captcha_is_a_rejection_not_a_retry(run, sandbox):
    answerer = PeekingAnswerer(sandbox, wrong=9)
    result = run(CAPTCHA, "submit", captcha=answerer, title="加装电梯")      # 4 characters
    assert (result.outcome, result.message) == ("rejected", "标题 至少为 5 个字符。")
    assert len(answerer.images) == 1                   # no new picture asked for
    assert sandbox.received() == []


def test_a_drifted_title_field_fails_at_the_title_step(run, sandbox):
    sc = load_platform("hdjlpt", SCENARIOS).model_copy(update={"timeout_ms": 1500})
    result = run(DRIFT, "submit", scenario=sc)
    assert result.outcome == "failed", (result.outcome, result.message)
    assert not result.final_clicked
    assert result.failed_step.startswith("submit[") and "fill 标题" in result.failed_step
    assert sandbox.received() == []


def test_public_page_loads_the_list_by_script(loop, browser, sandbox):
    c = Client(sandbox)
    public, _ = c.submit()
    private, _ = c.submit(title="关于公园开放时间调整的建议", is_public="0")
    url = f"{sandbox.base_url(CITY)}/leader/public"

    async def go():
        async with browser.page() as page:
            await page.goto(url)
            await page.wait_for_selector("#letterList[data-loaded='1']", timeout=5000)
            rows = await page.eval_on_selector_all(
                "#listBody tr.list-row", "trs => trs.map(t => [t.dataset.letterNo, "
                "t.querySelector('.title').textContent, t.querySelector('.created-at').textContent, "
                "t.querySelector('.status').textContent, t.querySelector('.replied-at').textContent])")
            return rows

    assert loop.run(go()) == [[public, TITLE, "2024-04-26", "待处理", ""]]     # not `private`


# -- a small campaign ------------------------------------------------------------------------------

def test_a_simulated_hdjlpt_campaign_reports_the_right_figures(tmp_path):
    roster = roster_from_dict({
        "campaign": {"name": "hdjlpt-small", "submit_at": "2024-04-26T10:00:00+08:00",
                     "end_at": "2024-05-08T18:00:00+08:00", "poll_every": "8h"},
        "site": [
            {"name": CITY, "group": "政府门户网站", "platform": "hdjlpt", "slug": "gz",
             "mailboxes": ["leader"], "reply": {"workdays": 0, "at": "15:30"}},
            {"name": "广东测试市删信局", "group": "市级部门网站", "platform": "hdjlpt", "slug": "sx",
             "mailboxes": ["leader"], "delete": {"workdays": 2}},
        ],
    })
    clock = SimClock(roster.campaign.submit_at)
    calendar = WorkCalendar()
    db = Database(f"sqlite:///{tmp_path}/t.sqlite3")
    with Sandbox(roster, clock) as sb:
        run_async(simulate(roster, clock, sb.base_url, db, load_config(), tmp_path / "evidence", calendar))
        assert len(sb.received()) == 2
    report = report_dict(*campaign_rows(db, roster.campaign.name, calendar, as_of=roster.campaign.end_at))
    assert {k: v for k, v in report["summary"].items() if k != "as_of"} == {"sites": 2, "letters": 2, "within_deadline_sites": 1,
                                 "same_day_sites": 1, "deleted_sites": 1, "no_reply_sites": 0,
                                 "awaiting_sites": 0}
    rows = {r["site"]: r for r in report["rows"]}
    assert rows[CITY]["status"] == "replied"
    assert local(datetime.fromisoformat(rows[CITY]["replied_at"])) == at(2024, 4, 26, 15, 30)
    assert rows["广东测试市删信局"]["status"] == "deleted"
