"""The `jact` archetype in a real browser: notice -> form -> 办件编号/查询码, query, public list."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from playwright.sync_api import expect

from bot.clock import SHANGHAI

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)   # Friday; 04-28 (Sunday) is a working day
CITY, COUNTY, CULTURE, HOUSING = "测试市人民政府", "测试县人民政府", "测试市文化和旅游局", "测试市住房和城乡建设局"
ROSTER = {
    "campaign": {"name": "t", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        {"name": CITY, "group": "政府门户网站", "platform": "jact", "mailboxes": ["leader", "mayor"],
         "slug": "city", "reply": {"workdays": 1, "at": "10:30"}},
        {"name": COUNTY, "group": "政府门户网站", "platform": "jact", "mailboxes": ["leader", "mayor"],
         "slug": "county", "captcha": True, "reply": {"workdays": 0, "at": "14:30"}},
        {"name": CULTURE, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "slug": "wl", "delete": {"workdays": 2}},
        {"name": HOUSING, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "slug": "zj", "reply": {"workdays": 3, "at": "10:30"}, "backdate": {"workdays": 1}},
    ],
}
TITLE = "关于小区停车收费标准的咨询"
LETTER = {"xm": "王晓明", "sj": "13812345678", "email": "wxm@example.com", "lx": "咨询",
          "dx": "主要领导", "bt": TITLE, "nr": "您好：\n请问本市住宅小区停车收费标准在哪里可以查到？谢谢！",
          "gk": "1"}


def open_form(page, sb, site=CITY, mailbox="leader"):
    page.set_default_timeout(5000)
    page.goto(f"{sb.base_url(site)}/{mailbox}/")
    expect(page.locator("#btnAgree")).to_be_disabled()
    page.check("#agree")
    page.click("#btnAgree")
    expect(page.locator("#letterForm")).to_be_visible()


def fill(page, **over):
    v = {**LETTER, **over}
    page.fill("#xm", v["xm"])
    page.fill("#sj", v["sj"])
    page.fill("#email", v["email"])
    page.select_option("#lx", v["lx"])
    if v["dx"]:
        page.select_option("#dx", v["dx"])
    page.fill("#bt", v["bt"])
    page.fill("#nr", v["nr"])
    page.check("#gk1" if v["gk"] == "1" else "#gk0")


def submit_http(sb, site=CITY, mailbox="leader", **over) -> tuple[str, str]:
    """Agreement then form, as plain HTTP posts; returns (办件编号, 查询码)."""
    base = f"{sb.base_url(site)}/{mailbox}"
    form = urlopen(Request(f"{base}/write", data=b"agree=1")).read().decode()
    token = re.search(r'id="yzmKey" value="([^"]+)"', form)[1]
    data = {**LETTER, **over, "agree": "1", "yzmKey": token, "yzm": ""}
    page = urlopen(Request(f"{base}/submit", data=urlencode(data).encode())).read().decode()
    return re.search(r'id="bjbh">(\d+)<', page)[1], re.search(r'id="cxm">(\w+)<', page)[1]


def query(page, sb, code, secret, site=CITY, mailbox="leader"):
    page.set_default_timeout(5000)
    page.goto(f"{sb.base_url(site)}/{mailbox}/query")
    page.fill("#bjbh", code)
    page.fill("#cxm", secret)
    page.click("#btnQuery")
    expect(page.locator("#queryResult, #noResult").first).to_be_visible()


def test_browser_submits_through_notice_and_form(page, sandbox):
    before = len(sandbox.received(CITY))
    open_form(page, sandbox)
    expect(page.locator("#siteName")).to_have_text(CITY)
    expect(page.locator("#mailboxName")).to_have_text("领导信箱")
    fill(page)
    page.click("#btnSubmit")
    expect(page.locator("#submitSuccess")).to_be_visible()
    code = page.locator("#bjbh").inner_text()
    secret = page.locator("#cxm").inner_text()
    assert re.fullmatch(r"20240426\d{5}", code)
    assert re.fullmatch(r"[A-Z2-9]{6}", secret)
    letters = sandbox.received(CITY)
    assert len(letters) == before + 1
    got = letters[-1]
    assert (got.tracking_code, got.secret, got.mailbox) == (code, secret, "leader")
    assert (got.name, got.title, got.phone, got.email) == ("王晓明", TITLE, "13812345678", "wxm@example.com")
    assert got.body == LETTER["nr"] and got.kind == "咨询" and got.target == "主要领导" and got.public
    assert got.received_at == START


def test_mayor_mailbox_is_named_after_the_place(page, sandbox):
    page.goto(f"{sandbox.base_url(CITY)}/mayor/")
    expect(page.locator("#mailboxName")).to_have_text("市长信箱")
    page.goto(f"{sandbox.base_url(COUNTY)}/mayor/")
    expect(page.locator("#mailboxName")).to_have_text("县长信箱")
    page.check("#agree")
    page.click("#btnAgree")
    expect(page.locator("#dx option")).to_contain_text(["--请选择--", "县长"])


def test_form_needs_the_agreement(page, sandbox):
    before = len(sandbox.received())
    page.goto(f"{sandbox.base_url(CITY)}/leader/write")            # GET: back to the notice
    assert page.url.endswith("/city/leader/")
    expect(page.locator("#letterForm")).to_have_count(0)
    r = page.request.post(f"{sandbox.base_url(CITY)}/leader/write", form={"agree": "0"})
    assert "请先阅读并同意《写信须知》" in r.text() and 'id="letterForm"' not in r.text()
    r = page.request.post(f"{sandbox.base_url(CITY)}/leader/submit", form={**LETTER, "yzm": ""})
    assert "请先阅读并同意《写信须知》" in r.text()
    assert len(sandbox.received()) == before


REJECTIONS = [
    ("#xm", "", "请填写姓名"),
    ("#sj", "", "请填写手机号码"),
    ("#sj", "12812345678", "手机号码格式不正确"),
    ("#sj", "1381234567", "手机号码格式不正确"),
    ("#email", "not-an-email", "电子邮箱格式不正确"),
    ("#bt", "停车收费咨询", "标题长度应为10-25个字"),
    ("#bt", "关于本市住宅小区停车收费标准以及物业管理费用的若干问题咨询", "标题长度应为10-25个字"),
    ("#nr", "问" * 1001, "内容不能超过1000字"),
]


def test_server_side_rejections_keep_the_form(page, sandbox):
    before = len(sandbox.received())
    open_form(page, sandbox)
    fill(page)
    for selector, bad, message in REJECTIONS:
        good = page.locator(selector).input_value()
        page.fill(selector, bad)
        page.click("#btnSubmit")
        expect(page.locator("#errorMsg")).to_have_text(message)
        expect(page.locator(selector)).to_have_value(bad)     # what was typed comes back
        expect(page.locator("#xm" if selector != "#xm" else "#sj")).not_to_have_value("")
        page.fill(selector, good)
    page.select_option("#dx", "")
    page.click("#btnSubmit")
    expect(page.locator("#errorMsg")).to_have_text("请选择提交对象")
    assert len(sandbox.received()) == before


def test_exactly_1000_characters_and_25_character_title_pass(page, sandbox):
    open_form(page, sandbox)
    fill(page, bt="关于本市住宅小区停车收费标准及物业收费的咨询"[:25], nr="问" * 1000)
    page.click("#btnSubmit")
    expect(page.locator("#submitSuccess")).to_be_visible()


def test_captcha_is_a_real_image_and_is_checked_when_enabled(page, sandbox):
    before = len(sandbox.received(COUNTY))
    open_form(page, sandbox, site=COUNTY)
    src = page.locator("#yzmImg").get_attribute("src")
    img = page.request.get(f"{sandbox.url}{src}")
    assert img.headers["content-type"] == "image/png" and img.body()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.locator("#yzmImg").evaluate("i => i.complete && i.naturalWidth") == 80
    fill(page)
    page.click("#btnSubmit")
    expect(page.locator("#errorMsg")).to_have_text("请输入验证码")
    fill(page)
    page.fill("#yzm", "abcd")
    page.click("#btnSubmit")
    expect(page.locator("#errorMsg")).to_have_text("验证码错误")
    fill(page)
    answer = sandbox.captcha_answer(page.locator("#yzmKey").input_value())
    assert answer and answer.isdigit()
    page.fill("#yzm", answer)
    page.click("#btnSubmit")
    expect(page.locator("#submitSuccess")).to_be_visible()
    assert len(sandbox.received(COUNTY)) == before + 1


def test_query_shows_each_status_as_the_clock_moves(page, timed):
    code, secret = submit_http(timed)
    query(page, timed, code, secret)
    expect(page.locator("#clzt")).to_have_text("待处理")
    expect(page.locator("#resTime")).to_have_text("2024-04-26 10:00:00")
    expect(page.locator("#dfnr")).to_have_count(0)
    timed.test_clock.set(datetime(2024, 4, 26, 11, 0, tzinfo=SHANGHAI))
    query(page, timed, code, secret)
    expect(page.locator("#clzt")).to_have_text("办理中")
    timed.test_clock.set(datetime(2024, 4, 28, 10, 29, tzinfo=SHANGHAI))
    query(page, timed, code, secret)
    expect(page.locator("#clzt")).to_have_text("办理中")
    timed.test_clock.set(datetime(2024, 4, 28, 10, 30, tzinfo=SHANGHAI))   # make-up Sunday
    query(page, timed, code, secret)
    expect(page.locator("#clzt")).to_have_text("已办结")
    expect(page.locator("#dfnr")).to_contain_text(TITLE)
    expect(page.locator("#dfdw")).to_have_text(CITY)
    expect(page.locator("#dfsj")).to_have_text("2024-04-28 10:30:00")
    query(page, timed, code, "WRONG1")
    expect(page.locator("#noResult")).to_have_text("未查询到相关信件，请核对办件编号和查询码")
    query(page, timed, "2024042699999", secret)
    expect(page.locator("#noResult")).to_be_visible()
    # the same letter is not found through the other mailbox
    query(page, timed, code, secret, mailbox="mayor")
    expect(page.locator("#noResult")).to_be_visible()


def test_deleted_letter_is_not_found_and_leaves_the_list(page, timed):
    code, secret = submit_http(timed, site=CULTURE)
    query(page, timed, code, secret, site=CULTURE)
    expect(page.locator("#clzt")).to_have_text("待处理")
    page.goto(f"{timed.base_url(CULTURE)}/leader/list")
    expect(page.locator(f"#listBody tr[data-bjbh='{code}'] .status")).to_have_text("待处理")
    timed.test_clock.set(datetime(2024, 4, 29, 8, 59, tzinfo=SHANGHAI))
    query(page, timed, code, secret, site=CULTURE)
    expect(page.locator("#clzt")).to_have_text("办理中")
    timed.test_clock.set(datetime(2024, 4, 29, 9, 0, tzinfo=SHANGHAI))      # 2nd working day, 09:00
    query(page, timed, code, secret, site=CULTURE)
    expect(page.locator("#noResult")).to_have_text("未查询到相关信件，请核对办件编号和查询码")
    page.goto(f"{timed.base_url(CULTURE)}/leader/list")
    expect(page.locator("#letterList")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#listBody tr.list-row")).to_have_count(0)
    expect(page.locator("#listBody tr.empty")).to_have_text("暂无信件")
    assert len(timed.received(CULTURE)) == 1          # still counted as received


def test_backdated_site_shows_an_earlier_reply_time(page, timed):
    code, secret = submit_http(timed, site=HOUSING)
    timed.test_clock.set(datetime(2024, 4, 29, 12, 0, tzinfo=SHANGHAI))   # after the time it will claim
    query(page, timed, code, secret, site=HOUSING)
    expect(page.locator("#clzt")).to_have_text("办理中")
    timed.test_clock.set(datetime(2024, 4, 30, 10, 30, tzinfo=SHANGHAI))  # real reply: 3rd working day
    query(page, timed, code, secret, site=HOUSING)
    expect(page.locator("#clzt")).to_have_text("已办结")
    expect(page.locator("#dfsj")).to_have_text("2024-04-29 10:30:00")


def test_public_list_is_filled_by_a_script(page, timed):
    public, _ = submit_http(timed)
    private, _ = submit_http(timed, gk="0", bt="关于公园开放时间调整的建议")
    raw = urlopen(f"{timed.base_url(CITY)}/leader/list").read().decode()
    assert '<tbody id="listBody"></tbody>' in raw and public not in raw
    js = urlopen(f"{timed.base_url(CITY)}/leader/list/data.js?page=1")
    assert js.headers["Content-Type"].startswith("application/javascript")
    assert js.read().decode().startswith("var listData = {")
    page.goto(f"{timed.base_url(CITY)}/leader/list")
    row = page.locator(f"#listBody tr[data-bjbh='{public}']")
    expect(row.locator(".title")).to_have_text(TITLE)
    expect(row.locator(".submit-date")).to_have_text("2024-04-26")
    expect(row.locator(".status")).to_have_text("待处理")
    expect(row.locator(".reply-date")).to_have_text("")
    expect(page.locator(f"#listBody tr[data-bjbh='{private}']")).to_have_count(0)
    timed.test_clock.set(datetime(2024, 4, 28, 11, 0, tzinfo=SHANGHAI))
    page.reload()
    expect(row.locator(".status")).to_have_text("已办结")
    expect(row.locator(".reply-date")).to_have_text("2024-04-28")
