"""The `igi` archetype (TRS "互动" JSON service): its API over plain HTTP, its script-built pages
in Chromium, and the `igi` scenario template driven end to end by the real engine; then a small
campaign through `simulate`.

One Chromium and one event loop (in a thread of its own) for the module; each test gets its own
sandbox on its own simulated clock, so no test depends on another's letters, time or the
service's memory of phone numbers.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from conftest import letter_variables, run_async, run_flow

from bot.browser.engine import FlowResult
from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.sandbox.play import DeclaredCaptchaAnswer, simulate
from bot.scenario.times import parse_time as parse_displayed_time
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
START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)   # Friday; 04-28 (Sunday) is a working day

CITY = "测试市人民政府"           # replies the same day at 15:30
HOUSING = "测试市住房和城乡建设局"  # replies on working day 1 (04-28) 10:30, shows 04-26 10:30; deletes 04-29 09:00
COUNTY = "测试县人民政府"         # captcha = true
EDU = "测试市教育局"              # never replies (another site of the same service)
STATS = "测试市统计局"            # the title field was renamed (drift)
ROSTER_DATA = {
    "campaign": {"name": "igi", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        {"name": CITY, "group": "政府门户网站", "platform": "igi", "mailboxes": ["leader", "mayor"],
         "slug": "city", "reply": {"workdays": 0, "at": "15:30"}},
        {"name": HOUSING, "group": "市级部门网站", "platform": "igi", "mailboxes": ["leader"],
         "slug": "zj", "reply": {"workdays": 1, "at": "10:30"}, "backdate": {"workdays": 1},
         "delete": {"workdays": 2}},
        {"name": COUNTY, "group": "政府门户网站", "platform": "igi", "mailboxes": ["leader"],
         "slug": "county", "captcha": True, "reply": {"workdays": 0, "at": "14:30"}},
        {"name": EDU, "group": "市级部门网站", "platform": "igi", "mailboxes": ["leader"], "slug": "jy"},
        {"name": STATS, "group": "市级部门网站", "platform": "igi", "mailboxes": ["leader"],
         "slug": "tj", "drift": "title"},
    ],
}
ROSTER = roster_from_dict(ROSTER_DATA)

TITLE = "关于老旧小区加装电梯补贴政策的咨询"        # 17 characters
BODY = "您好！我家住在渭滨区经二路的老旧小区，六层无电梯。\n请问加装电梯的财政补贴标准是多少？谢谢！"
WRITER = {"name": "王晓明", "phone": "13891712345", "email": "wangxm@example.com"}
LETTER = {"userName": WRITER["name"], "mobile": WRITER["phone"], "email": WRITER["email"],
          "letterType": "咨询", "title": TITLE, "content": BODY.replace("\n", "\r\n"), "isPublic": 1}


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(engine_browser):
    return engine_browser


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_platform("igi", SCENARIOS)


@pytest.fixture
def sb(clock):
    with Sandbox(ROSTER, clock) as sandbox:
        yield sandbox


@pytest.fixture
def run(loop, browser, sb, evidence, scenario):
    """run(site, flow, **letter fields) -> FlowResult: the igi template through the engine."""

    def _run(site_name: str, flow: str, *, mailbox: str = "leader", captcha=None,
             dry_run: bool = False, tracking_code: str = "", sc: Scenario | None = None,
             **letter) -> FlowResult:
        sc = sc or scenario
        variables = make_variables(sc, sb.base_url(site_name), mailbox, site_name,
                                   tracking_code=tracking_code, **letter)
        answerer = captcha or DeclaredCaptchaAnswer()
        return run_flow(loop, browser, evidence, sc, flow, variables, site_name=site_name,
                        answerer=answerer, dry_run=dry_run)

    return _run


@pytest.fixture
def in_page(loop, browser):
    """in_page(async fn(page)) -> its result, in a fresh browser context."""

    def _in_page(fn):
        async def go():
            async with browser.page() as page:
                page.set_default_timeout(5000)
                return await fn(page)
        return loop.run(go())

    return _in_page


def make_variables(sc: Scenario, base_url: str, mailbox: str, site_name: str, *,
                   tracking_code: str = "", **letter) -> dict:
    """The product's own flow variables, for a letter row that is never stored."""
    return letter_variables(sc, base_url, mailbox, site_name,
                            {"title": TITLE, "body": BODY, "category": "咨询", **WRITER, **letter},
                            tracking_code=tracking_code)


# -- plain HTTP helpers ----------------------------------------------------------------------------

def api(sb: Sandbox, site: str, path: str, body=None, *, mailbox: str = "leader",
        content_type: str = "application/json;charset=UTF-8", raw: bytes | None = None) -> dict:
    """POST JSON (or GET without a body) to the service; the decoded answer, checked to be JSON."""
    url = f"{sb.base_url(site)}/{mailbox}/{path}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
    req = Request(url, data=data, headers={"Content-Type": content_type} if data is not None else {})
    with urlopen(req) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
        return json.loads(r.read().decode("utf-8"))


def submit(sb: Sandbox, site: str = CITY, mailbox: str = "leader", **over) -> dict:
    return api(sb, site, "api/letter/submit", {**LETTER, **over}, mailbox=mailbox)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def status_of(url: str, method: str = "GET") -> int:
    try:
        with urlopen(Request(url, method=method)) as r:
            return r.status
    except HTTPError as e:
        return e.code


# -- the API contract over plain HTTP --------------------------------------------------------------

def test_submit_answers_code_0_with_a_cxbh_and_stores_the_letter(sb):
    got = submit(sb)
    assert (got["code"], got["msg"]) == (0, "提交成功")
    cxbh = got["data"]["cxbh"]
    assert re.fullmatch(r"[A-Z0-9]{8,20}", cxbh)
    assert got["data"]["submitTime"] == ms(START)
    (letter,) = sb.received()
    assert (letter.site, letter.mailbox, letter.tracking_code, letter.platform) == (CITY, "leader", cxbh, "igi")
    assert (letter.title, letter.body) == (TITLE, BODY)               # CRLF stored as LF
    assert (letter.name, letter.phone, letter.email) == (WRITER["name"], WRITER["phone"], WRITER["email"])
    assert (letter.kind, letter.public, letter.received_at) == ("咨询", True, START)
    with urlopen(f"{sb.base_url(CITY)}/leader/") as r:
        assert r.headers["Server"].startswith("nginx")
        page = r.read().decode("utf-8")
    # The form is built by the script: the shell has no form, only the field list.
    assert "<form" not in page
    assert '"key": "userName"' in page and "/letter/submit" in page


def test_get_creates_nothing(sb):
    base = f"{sb.base_url(CITY)}/leader"
    for path in ("", "index.html", "query", "list", "api/letter/list?page=1&size=15"):
        assert status_of(f"{base}/{path}") == 200, path
    for path in ("api/letter/submit", "api/letter/detail", "api/captcha/key"):
        assert status_of(f"{base}/{path}") == 405, path
    with urlopen(f"{base}/api/captcha?t=never-issued") as r:
        assert r.headers["Content-Type"] == "image/png" and r.read()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sb.captcha_answer("never-issued") is None
    assert status_of(f"{base}/api/letter/submit", "HEAD") == 405
    assert sb.received() == []
    assert status_of(f"{sb.base_url(CITY)}/leader/nothing-here") == 404


VALIDATION = [   # (id, letter fields, code, msg)
    ("name-missing", {"userName": None}, 1001, "参数错误：姓名不能为空"),
    ("name-blank", {"userName": "  "}, 1001, "参数错误：姓名不能为空"),
    ("title-missing", {"title": None}, 1001, "参数错误：标题不能为空"),
    ("content-missing", {"content": ""}, 1001, "参数错误：内容不能为空"),
    ("type-missing", {"letterType": ""}, 1001, "参数错误：信件类型不能为空"),
    ("type-unknown", {"letterType": "表扬"}, 1001, "参数错误：信件类型不正确"),
    ("public-bad", {"isPublic": 2}, 1001, "参数错误：是否公开不正确"),
    ("phone-short", {"mobile": "1389171234"}, 1002, "手机号码格式不正确"),
    ("phone-landline", {"mobile": "09173261234"}, 1002, "手机号码格式不正确"),
    ("email-bad", {"email": "wangxm-at-example"}, 1006, "电子邮箱格式不正确"),
    ("title-4", {"title": "电梯补贴"}, 1007, "标题长度应为5-30个字"),
    ("title-31", {"title": "题" * 31}, 1007, "标题长度应为5-30个字"),
    ("content-1001", {"content": "电" * 1001}, 1008, "内容不能超过1000字"),
]


@pytest.mark.parametrize("over,code,msg", [v[1:] for v in VALIDATION], ids=[v[0] for v in VALIDATION])
def test_validation_codes(over, code, msg, sb):
    body = {k: v for k, v in {**LETTER, **over}.items() if v is not None}
    assert api(sb, CITY, "api/letter/submit", body) == {"code": code, "msg": msg}
    assert sb.received() == []


def test_bodies_that_are_not_json_are_parameter_errors(sb):
    form = "userName=a&mobile=13891712345".encode()
    assert api(sb, CITY, "api/letter/submit", raw=form,
               content_type="application/x-www-form-urlencoded")["code"] == 1001
    assert api(sb, CITY, "api/letter/submit", raw=b"{not json")["code"] == 1001
    assert api(sb, CITY, "api/letter/submit", raw=b"[1, 2]")["code"] == 1001
    assert sb.received() == []


def test_limits_are_inclusive(sb):
    assert submit(sb, title="加装电梯咨")["code"] == 0                        # 5
    assert submit(sb, title="题" * 30, content="电" * 1000, email="")["code"] == 0
    assert [x.title for x in sb.received()] == ["加装电梯咨", "题" * 30]
    assert sb.received()[1].email == ""


def test_a_phone_keeps_the_name_it_first_wrote_under_across_sites(sb):
    assert submit(sb)["code"] == 0
    assert submit(sb, userName="李四") == {"code": 1003, "msg": "手机号不一致"}
    assert submit(sb, EDU, userName="李四") == {"code": 1003, "msg": "手机号不一致"}    # another site
    assert submit(sb, mailbox="mayor", userName="李四")["code"] == 1003
    assert len(sb.received()) == 1                                   # nothing stored
    assert submit(sb, EDU)["code"] == 0                             # the same name is welcome
    assert submit(sb, EDU, userName="李四", mobile="13991712345")["code"] == 0
    assert [x.name for x in sb.received()] == ["王晓明", "王晓明", "李四"]


def test_a_refused_letter_does_not_claim_the_phone(sb):
    assert submit(sb, userName="张三", title="短")["code"] == 1007
    assert submit(sb)["code"] == 0                                  # 王晓明, the first stored


def test_captcha_only_where_the_roster_asks_and_one_try_per_key(sb):
    assert submit(sb, captchaKey="x", captcha="nonsense")["code"] == 0   # CITY does not check
    assert submit(sb, COUNTY) == {"code": 1005, "msg": "请输入验证码"}
    key = api(sb, COUNTY, "api/captcha/key", {})["data"]["key"]
    right = sb.captcha_answer(key)
    assert right and re.fullmatch(r"\d{4}", right)
    wrong = f"{(int(right) + 1) % 10000:04d}"
    assert submit(sb, COUNTY, captchaKey=key, captcha=wrong) == {"code": 1005, "msg": "验证码错误"}
    assert submit(sb, COUNTY, captchaKey=key, captcha=right)["code"] == 1005     # key spent
    key = api(sb, COUNTY, "api/captcha/key", {})["data"]["key"]
    got = submit(sb, COUNTY, captchaKey=key, captcha=sb.captcha_answer(key))
    assert got["code"] == 0
    assert [x.site for x in sb.received()] == [CITY, COUNTY]


def test_detail_follows_the_letter_and_the_deletion(sb, clock):
    cxbh = submit(sb, HOUSING)["data"]["cxbh"]
    (letter,) = sb.received()
    tl = sb.timeline(letter)

    def detail(code=cxbh, site=HOUSING, **kw):
        return api(sb, site, "api/letter/detail", {"cxbh": code}, **kw)

    d = detail()
    assert d["code"] == 0
    assert d["data"] == {"cxbh": cxbh, "title": TITLE, "content": BODY, "letterType": "咨询",
                         "submitTime": ms(START), "status": "待处理", "replies": []}
    clock.set(START + timedelta(hours=1))
    assert detail()["data"]["status"] == "办理中"
    clock.set(tl.reply_at)
    d = detail()["data"]
    assert d["status"] == "已办结"
    (reply,) = d["replies"]
    assert reply["unit"] == HOUSING
    assert reply["content"] == reply_text(title=TITLE, unit=HOUSING, mailbox_label="领导信箱",
                                          received_at=START, tracking_code=cxbh)
    # The site shows the backdated time: one working day before the real reply.
    assert tl.displayed_reply_at == datetime(2024, 4, 26, 10, 30, tzinfo=SHANGHAI)
    assert tl.reply_at == datetime(2024, 4, 28, 10, 30, tzinfo=SHANGHAI)
    assert reply["replyTime"] == ms(tl.displayed_reply_at)
    assert detail(cxbh.lower())["data"]["cxbh"] == cxbh
    assert detail(mailbox="mayor", site=CITY) == {"code": 1004, "msg": "信件不存在"}
    assert detail("C209901019999") == {"code": 1004, "msg": "信件不存在"}
    assert detail("")["code"] == 1001
    clock.set(tl.delete_at)
    assert detail() == {"code": 1004, "msg": "信件不存在"}
    assert api(sb, HOUSING, "api/letter/list")["data"] == {"total": 0, "page": 1, "size": 15, "list": []}
    assert status_of(f"{sb.base_url(HOUSING)}/leader/detail/{cxbh}.html") == 404
    assert len(sb.received()) == 1                                  # still counted as received


def test_public_list_epoch_times_and_both_publish_url_shapes(sb, clock):
    first = submit(sb)["data"]["cxbh"]
    clock.set(START + timedelta(minutes=10))
    second = submit(sb, title="关于公交线路调整的建议")["data"]["cxbh"]
    private = submit(sb, isPublic=0, title="关于公园开放时间的建议")["data"]["cxbh"]
    data = api(sb, CITY, "api/letter/list?page=1&size=15")["data"]
    assert data["total"] == 2
    rows = data["list"]
    assert [r["cxbh"] for r in rows] == [second, first]               # newest first; private omitted
    assert rows[1] == {"cxbh": first, "title": TITLE, "submitTime": ms(START), "status": "待处理",
                       "replyTime": None, "publishUrl": rows[1]["publishUrl"]}
    assert rows[0]["submitTime"] == ms(START + timedelta(minutes=10))
    shapes = set()
    for r in rows:
        url = r["publishUrl"]
        if url.startswith("["):
            (url,) = json.loads(url)
            shapes.add("array")
        else:
            shapes.add("plain")
        assert url == f"/city/leader/detail/{r['cxbh']}.html"
        with urlopen(f"{sb.url}{url}") as page:
            assert f'id="detailCxbh">{r["cxbh"]}<' in page.read().decode("utf-8")
    assert shapes == {"array", "plain"}
    assert status_of(f"{sb.base_url(CITY)}/leader/detail/{private}.html") == 404
    # paging
    one = api(sb, CITY, "api/letter/list?page=2&size=1")["data"]
    assert (one["total"], [r["cxbh"] for r in one["list"]]) == (2, [first])
    # finished: the reply time is the displayed one, in epoch ms
    clock.set(datetime(2024, 4, 26, 16, 0, tzinfo=SHANGHAI))
    rows = api(sb, CITY, "api/letter/list")["data"]["list"]
    assert {r["status"] for r in rows} == {"已办结"}
    assert {r["replyTime"] for r in rows} == {ms(datetime(2024, 4, 26, 15, 30, tzinfo=SHANGHAI))}
    assert api(sb, CITY, "api/letter/list", mailbox="mayor")["data"]["total"] == 0


# -- the script-built pages in Chromium ------------------------------------------------------------

def test_query_and_list_pages_are_filled_by_script(sb, clock, in_page):
    cxbh = submit(sb)["data"]["cxbh"]
    clock.set(datetime(2024, 4, 26, 16, 0, tzinfo=SHANGHAI))
    base = f"{sb.base_url(CITY)}/leader"

    async def pages(page):
        await page.goto(f"{base}/query")
        await page.fill("#cxbh", cxbh)
        await page.click("#btnQuery")
        await page.wait_for_selector("#result")
        out = {k: await page.text_content(s) for k, s in (
            ("status", "#resStatus"), ("time", "#resTime"), ("unit", "#replyList .reply-unit"),
            ("reply_time", "#replyList .reply-time"), ("mailbox", "#mailboxName"))}
        await page.fill("#cxbh", "C209901019999")
        await page.click("#btnQuery")
        out["missing"] = await (await page.wait_for_selector("#noResult")).text_content()
        await page.goto(f"{base}/list")
        await page.wait_for_selector("#letterList[data-loaded='1']")
        row = page.locator(f"#listBody tr.list-row[data-cxbh='{cxbh}']")
        out["row"] = [await row.locator(c).text_content() for c in (".title", ".submit-time", ".status", ".reply-time")]
        out["href"] = await row.locator(".title a").get_attribute("href")
        await page.goto(f"{sb.url}{out['href']}")
        out["detail"] = await page.text_content("#replyTime")
        return out

    got = in_page(pages)
    assert (got["status"], got["time"], got["unit"], got["mailbox"]) == ("已办结", "2024-04-26 10:00:00", CITY, "领导信箱")
    assert got["reply_time"] == "2024-04-26 15:30:00"
    assert got["missing"] == "信件不存在"
    assert got["row"] == [TITLE, "2024-04-26", "已办结", "2024-04-26"]
    assert got["href"] == f"/city/leader/detail/{cxbh}.html"     # the array shape, unwrapped
    assert got["detail"] == "2024-04-26 15:30:00"


# -- the scenario template through the engine ------------------------------------------------------

def test_template_loads(scenario):
    assert (scenario.platform, scenario.version) == ("igi", 1)
    assert (scenario.limits.title_min, scenario.limits.title_max, scenario.limits.body_max) == (5, 30, 1000)
    assert scenario.time_formats.reply_time == ["epoch_ms"]
    assert scenario.status_map == {"待处理": "pending", "办理中": "pending", "已办结": "replied"}


def test_submit_flow_sends_exactly_the_letter(run, sb):
    result = run(CITY, "submit")
    assert result.outcome == "success", (result.message, result.failed_step)
    assert result.final_clicked and result.captcha_by is None         # no captcha on this site
    (letter,) = sb.received()
    assert result.values["tracking_code"] == letter.tracking_code
    assert (letter.title, letter.body, letter.mailbox) == (TITLE, BODY, "leader")
    assert (letter.name, letter.phone, letter.email) == (WRITER["name"], WRITER["phone"], WRITER["email"])
    assert (letter.kind, letter.public) == ("咨询", True)


def test_query_flow_reads_pending_then_the_reply_then_not_found(run, sb, clock, scenario, evidence):
    sub = run(HOUSING, "submit")
    assert sub.outcome == "success", (sub.message, sub.failed_step)
    code = sub.values["tracking_code"]
    (letter,) = sb.received()
    tl = sb.timeline(letter)

    r = run(HOUSING, "query", tracking_code=code)
    assert r.outcome == "found", (r.message, r.failed_step)
    assert r.values["status"] == "待处理" and scenario.status_map["待处理"] == "pending"
    assert "reply_text" not in r.values and "reply_time" not in r.values
    assert {e.kind for e in r.evidence} >= {"html", "screenshot"}

    clock.set(tl.reply_at + timedelta(minutes=1))
    r = run(HOUSING, "query", tracking_code=code)
    assert (r.outcome, r.values["status"]) == ("found", "已办结")
    assert scenario.status_map[r.values["status"]] == "replied"
    expected = reply_text(title=TITLE, unit=HOUSING, mailbox_label="领导信箱",
                          received_at=letter.received_at, tracking_code=code)
    assert r.values["reply_text"] == " ".join(expected.split())
    assert r.values["reply_unit"] == HOUSING
    shown, date_only = parse_displayed_time(r.values["reply_time"], scenario.time_formats.reply_time)
    assert not date_only
    assert shown == tl.displayed_reply_at == datetime(2024, 4, 26, 10, 30, tzinfo=SHANGHAI)
    assert local(shown) < tl.reply_at                                 # the backdated time, as shown

    clock.set(tl.delete_at)
    r = run(HOUSING, "query", tracking_code=code)
    assert r.outcome == "not_found", (r.outcome, r.message, r.failed_step)


def test_query_flow_reports_other_codes_as_rejected(run):
    r = run(CITY, "query", tracking_code="")
    assert (r.outcome, r.message) == ("rejected", "参数错误：查询编号不能为空")


def test_dry_run_stores_nothing(run, sb):
    result = run(CITY, "submit", dry_run=True)
    assert result.outcome == "dry_run", (result.message, result.failed_step)
    assert not result.final_clicked
    assert sb.received() == []
    assert {e.kind for e in result.evidence} >= {"html", "screenshot"}


class PeekingAnswerer:
    """Stands in for a person reading the picture: asks the sandbox what the image shows (the
    form's hidden captchaKey names it). `wrong` first answers wrongly that many times."""

    label = "test: read from the sandbox"

    def __init__(self, sandbox: Sandbox, wrong: int = 0):
        self.sandbox, self.wrong = sandbox, wrong
        self.page = None
        self.keys: list[str] = []

    async def answer(self, image: bytes, site: str) -> str | None:
        assert image[:8] == b"\x89PNG\r\n\x1a\n"
        key = await self.page.input_value("#captchaKey")
        src = await self.page.get_attribute("#captchaImg", "src")
        assert src.endswith(f"/api/captcha?t={key}")                 # the picture on show is this key's
        self.keys.append(key)
        right = self.sandbox.captcha_answer(key)
        assert right is not None
        if len(self.keys) <= self.wrong:
            return f"{(int(right) + 1) % 10000:04d}"
        return right


def test_captcha_site_answered_by_a_solver(run, sb):
    answerer = PeekingAnswerer(sb)
    result = run(COUNTY, "submit", captcha=answerer)
    assert result.outcome == "success", (result.message, result.failed_step)
    assert result.captcha_by == answerer.label and len(answerer.keys) == 1
    (letter,) = sb.received()
    assert letter.tracking_code == result.values["tracking_code"]


def test_captcha_wrong_then_right_sends_one_letter(run, sb):
    answerer = PeekingAnswerer(sb, wrong=1)
    result = run(COUNTY, "submit", captcha=answerer)
    assert result.outcome == "success", (result.message, result.failed_step)
    assert len(answerer.keys) == 2 and answerer.keys[0] != answerer.keys[1]   # a new image
    (letter,) = sb.received()
    assert letter.tracking_code == result.values["tracking_code"]


def test_captcha_always_wrong_ends_rejected(run, sb, evidence, scenario):
    answerer = PeekingAnswerer(sb, wrong=99)
    result = run(COUNTY, "submit", captcha=answerer)
    assert result.outcome == "rejected", (result.outcome, result.message, result.failed_step)
    captcha_step = next(s for s in scenario.flows["submit"].steps if s.op == "captcha")
    assert len(answerer.keys) == 1 + captcha_step.retries
    html = evidence.path([e for e in result.evidence if e.kind == "html"][-1].path).read_text("utf-8")
    assert 'data-code="1005"' in html and "1005 验证码错误" in html
    assert sb.received() == []


def test_identity_refusal_is_rejected_with_its_code(run, sb):
    assert submit(sb, EDU, userName="李四")["code"] == 0             # this phone is 李四's
    result = run(CITY, "submit")
    assert result.outcome == "rejected", (result.outcome, result.message, result.failed_step)
    assert "1003" in result.message and "手机号不一致" in result.message
    assert result.final_clicked
    assert [x.site for x in sb.received()] == [EDU]


def test_a_renamed_title_field_fails_at_the_title_step(run, sb, scenario):
    result = run(STATS, "submit", sc=scenario.model_copy(update={"timeout_ms": 1500}))
    assert result.outcome == "failed", (result.outcome, result.message)
    assert not result.final_clicked
    assert "fill @title" in result.failed_step and result.failed_step.startswith("submit[")
    idx = int(re.match(r"submit\[(\d+)\]", result.failed_step)[1])
    assert scenario.flows["submit"].steps[idx].selector == "@title"
    assert {e.kind for e in result.evidence} >= {"html"}     # the page as it looks now
    assert sb.received() == []
    # The renamed field is what the site takes now.
    assert submit(sb, STATS)["code"] == 1001
    body = {k: v for k, v in LETTER.items() if k != "title"}
    assert api(sb, STATS, "api/letter/submit", {**body, "title_v2": TITLE})["code"] == 0


# -- a small campaign ------------------------------------------------------------------------------

SAME_DAY, NEXT_DAY = "测试市甲局", "测试市乙局"
CAMPAIGN = {
    "campaign": {"name": "igi-campaign", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-04-29T18:00:00+08:00", "poll_every": "4h"},
    "site": [
        {"name": SAME_DAY, "group": "市级部门网站", "platform": "igi", "mailboxes": ["leader"],
         "reply": {"workdays": 0, "at": "15:30"}},
        {"name": NEXT_DAY, "group": "市级部门网站", "platform": "igi", "mailboxes": ["leader"],
         "reply": {"workdays": 1, "at": "10:00"}},
    ],
}


def test_campaign_through_simulate(tmp_path):
    roster = roster_from_dict(CAMPAIGN)
    clock = SimClock(roster.campaign.submit_at)
    calendar = WorkCalendar()
    db = Database(f"sqlite:///{tmp_path}/t.sqlite3")
    with Sandbox(roster, clock) as sandbox:
        result = run_async(simulate(roster, clock, sandbox.base_url, db, load_config(),
                                    tmp_path / "evidence", calendar))
        received = sandbox.received()
    assert result.submissions == 2
    assert {(x.site, x.platform) for x in received} == {(SAME_DAY, "igi"), (NEXT_DAY, "igi")}
    rows, meta = campaign_rows(db, roster.campaign.name, calendar, as_of=roster.campaign.end_at)
    report = report_dict(rows, meta)
    assert {k: v for k, v in report["summary"].items() if k != "as_of"} == {"sites": 2, "letters": 2, "within_deadline_sites": 2,
                                 "same_day_sites": 1, "deleted_sites": 0, "no_reply_sites": 0,
                                 "awaiting_sites": 0}
    by_site = {r["site"]: r for r in report["rows"]}
    same, nxt = by_site[SAME_DAY], by_site[NEXT_DAY]
    assert local(datetime.fromisoformat(same["replied_at"])) == datetime(2024, 4, 26, 15, 30, tzinfo=SHANGHAI)
    assert (same["working_days"], same["same_day"], same["status"]) == (0, True, "replied")
    assert local(datetime.fromisoformat(nxt["replied_at"])) == datetime(2024, 4, 28, 10, 0, tzinfo=SHANGHAI)
    assert (nxt["working_days"], nxt["same_day"], nxt["within_deadline"]) == (1, False, True)
    assert same["flags"] == [] and nxt["flags"] == []
