"""The `legacy` archetype: GBK pages, __VIEWSTATE postbacks, a password the writer chooses."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect

from bot.clock import SHANGHAI

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)
PORTAL, CULTURE = "测试区人民政府", "测试市文化和旅游局"
ROSTER = {
    "campaign": {"name": "t", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        {"name": PORTAL, "group": "政府门户网站", "platform": "legacy", "mailboxes": ["leader", "mayor"],
         "slug": "district", "reply": {"workdays": 4, "at": "09:30"}},
        {"name": CULTURE, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"],
         "slug": "wl", "delete": {"workdays": 2}},
    ],
}
P = "ctl00$MainContent$"
ID = "#ctl00_MainContent_"
TITLE = "关于渭河滩涂公园夜间照明的建议"
BODY = "尊敬的领导：\n渭河公园步道夜间照明不足，建议增设路灯。——市民（含生僻字：亖、喆、珺）"
LETTER = {"txtName": "李建国", "txtPhone": "0917-3261234", "txtTitle": TITLE, "txtContent": BODY,
          "txtPassword": "abc12345"}


def viewstate(html: str) -> str:
    return re.search(r'id="__VIEWSTATE" value="([^"]+)"', html)[1]


def post_gbk(url: str, fields: dict[str, str]) -> str:
    data = urlencode(fields, encoding="gbk").encode("ascii")
    return urlopen(Request(url, data=data)).read().decode("gbk")


def submit_http(sb, site=PORTAL, mailbox="leader", **over) -> str:
    url = f"{sb.base_url(site)}/{mailbox}/Default.aspx"
    vs = viewstate(urlopen(url).read().decode("gbk"))
    fields = {"__VIEWSTATE": vs, P + "btnSubmit": "提 交",
              **{P + k: v for k, v in {**LETTER, **over}.items()}}
    html = post_gbk(url, fields)
    return re.search(r'id="ctl00_MainContent_lblCode"[^>]*>(\d+)<', html)[1]


def query(page, sb, code, password, site=PORTAL, mailbox="leader"):
    page.set_default_timeout(5000)
    page.goto(f"{sb.base_url(site)}/{mailbox}/Query.aspx")
    page.fill(ID + "txtCode", code)
    page.fill(ID + "txtPassword", password)
    page.click(ID + "btnQuery")
    expect(page.locator(f"{ID}tblResult, {ID}lblMessage").first).to_be_visible()


def test_pages_are_gbk(sandbox):
    resp = urlopen(f"{sandbox.base_url(PORTAL)}/mayor/Default.aspx")
    raw = resp.read()
    assert resp.headers["Content-Type"] == "text/html; charset=gbk"
    assert b'<meta http-equiv="Content-Type" content="text/html; charset=gbk" />' in raw
    assert "区长信箱".encode("gbk") in raw and PORTAL.encode("gbk") in raw
    assert "区长信箱".encode("utf-8") not in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert resp.headers["X-Powered-By"] == "ASP.NET"


def test_browser_submits_and_chinese_arrives_intact(page, sandbox):
    before = len(sandbox.received(PORTAL))
    page.set_default_timeout(5000)
    page.goto(f"{sandbox.base_url(PORTAL)}/leader/")
    assert page.url.endswith("/district/leader/Default.aspx")
    expect(page.locator("#ctl00_lblSiteName")).to_have_text(PORTAL)
    expect(page.locator("#ctl00_lblMailbox")).to_have_text("领导信箱")
    for key, value in LETTER.items():
        page.fill(ID + key, value)
    page.click(ID + "btnSubmit")
    expect(page.locator(ID + "pnlSuccess")).to_be_visible()
    code = page.locator(ID + "lblCode").inner_text()
    assert re.fullmatch(r"240426\d{6}", code)
    expect(page.locator(ID + "lblPasswordTip")).to_contain_text("您填写信件时设置的密码")
    letters = sandbox.received(PORTAL)
    assert len(letters) == before + 1
    got = letters[-1]
    assert (got.tracking_code, got.secret, got.name, got.phone) == (code, "abc12345", "李建国", "0917-3261234")
    assert got.title == TITLE
    assert got.body == BODY            # GBK-encoded by the browser, decoded as GBK by the site
    assert got.email == "" and got.platform == "legacy"


def test_rejections_show_their_messages(page, sandbox):
    before = len(sandbox.received())
    page.set_default_timeout(5000)
    page.goto(f"{sandbox.base_url(PORTAL)}/leader/Default.aspx")
    cases = [("txtName", "", "姓名不能为空！"), ("txtPhone", "", "联系电话不能为空！"),
             ("txtPhone", "电话12345", "联系电话格式不正确！"), ("txtTitle", "", "标题不能为空！"),
             ("txtContent", "", "内容不能为空！"), ("txtPassword", "", "查询密码不能为空！"),
             ("txtPassword", "abc", "查询密码应为6-16位字母、数字或符号！"),
             ("txtPassword", "a" * 17, "查询密码应为6-16位字母、数字或符号！")]
    for field, bad, message in cases:
        for key, value in LETTER.items():
            page.fill(ID + key, bad if key == field else value)
        page.click(ID + "btnSubmit")
        expect(page.locator(ID + "lblMessage")).to_have_text(message)
        expect(page.locator(ID + "txtTitle")).to_have_value("" if field == "txtTitle" else TITLE)
    assert len(sandbox.received()) == before


@pytest.mark.parametrize("token", [None, "", "/wEPDwUKLTk0NTc1NjQ2Mw9kFgICAw9kFgICAQ8PFgIeBFRleHQFBuWkseaVl2RkZA==",
                                   "not base64 at all!"])
def test_missing_or_forged_viewstate_is_refused(sandbox, token):
    before = len(sandbox.received())
    url = f"{sandbox.base_url(PORTAL)}/leader/Default.aspx"
    fields = {P + k: v for k, v in LETTER.items()}
    if token is not None:
        fields["__VIEWSTATE"] = token
    html = post_gbk(url, fields)
    assert "页面已过期或非法提交" in html and 'id="ctl00_MainContent_lblError"' in html
    assert len(sandbox.received()) == before


def test_viewstate_of_another_page_is_refused(sandbox):
    vs = viewstate(urlopen(f"{sandbox.base_url(PORTAL)}/leader/Query.aspx").read().decode("gbk"))
    fields = {"__VIEWSTATE": vs, **{P + k: v for k, v in LETTER.items()}}
    before = len(sandbox.received())
    assert "页面已过期或非法提交" in post_gbk(f"{sandbox.base_url(PORTAL)}/leader/Default.aspx", fields)
    assert len(sandbox.received()) == before


def test_browser_without_viewstate_gets_the_error_page(page, sandbox):
    page.goto(f"{sandbox.base_url(PORTAL)}/leader/Default.aspx")
    for key, value in LETTER.items():
        page.fill(ID + key, value)
    page.evaluate("document.getElementById('__VIEWSTATE').remove()")
    before = len(sandbox.received())
    page.click(ID + "btnSubmit")
    expect(page.locator(ID + "lblError")).to_have_text("页面已过期或非法提交，请返回重新填写。")
    assert len(sandbox.received()) == before


def test_query_statuses_date_only_reply_and_wrong_password(page, timed):
    code = submit_http(timed)
    query(page, timed, code, "abc12345")
    expect(page.locator(ID + "lblStatus")).to_have_text("待受理")
    expect(page.locator(ID + "lblUnit")).to_have_text(PORTAL)
    expect(page.locator(ID + "lblReply")).to_have_count(0)
    timed.test_clock.set(datetime(2024, 4, 30, 16, 0, tzinfo=SHANGHAI))
    query(page, timed, code, "abc12345")
    expect(page.locator(ID + "lblStatus")).to_have_text("办理中")
    timed.test_clock.set(datetime(2024, 5, 6, 9, 30, tzinfo=SHANGHAI))   # 4th working day, after May Day
    query(page, timed, code, "abc12345")
    expect(page.locator(ID + "lblStatus")).to_have_text("已回复")
    expect(page.locator(ID + "lblReply")).to_contain_text(TITLE)
    expect(page.locator(ID + "lblUnit")).to_have_text(PORTAL)
    expect(page.locator(ID + "lblReplyDate")).to_have_text("2024-05-06")
    query(page, timed, code, "wrong-pass")
    expect(page.locator(ID + "lblMessage")).to_have_text("受理编号或密码错误，请核对后重新输入！")
    expect(page.locator(ID + "tblResult")).to_have_count(0)


def test_deleted_letter_answers_illegal_operation(page, timed):
    code = submit_http(timed, site=CULTURE)
    query(page, timed, code, "abc12345", site=CULTURE)
    expect(page.locator(ID + "lblStatus")).to_have_text("待受理")
    timed.test_clock.set(datetime(2024, 4, 29, 9, 0, tzinfo=SHANGHAI))
    query(page, timed, code, "abc12345", site=CULTURE)
    expect(page.locator(ID + "lblMessage")).to_have_text("非法操作！")
    query(page, timed, "240426999999", "abc12345", site=CULTURE)
    expect(page.locator(ID + "lblMessage")).to_have_text("受理编号或密码错误，请核对后重新输入！")
