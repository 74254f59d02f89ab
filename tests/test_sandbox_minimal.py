"""The `minimal` archetype: one PHP form, message pages, lookup by letter number alone."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from playwright.sync_api import expect

from bot.clock import SHANGHAI

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)
BUREAU, GONE, EARLY = "测试市商务局", "测试市文化和旅游局", "测试市统计局"
ROSTER = {
    "campaign": {"name": "t", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        {"name": BUREAU, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "swj", "reply": {"workdays": 5, "at": "16:20"}},
        {"name": GONE, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "wl", "reply": {"workdays": 5}, "delete": {"workdays": 1, "at": "08:00"}},
        {"name": EARLY, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "tjj", "reply": {"workdays": 0, "at": "09:00"}},     # 09:00 is before receipt
    ],
}
TITLE = "咨询外贸企业出口退税办理流程"
LETTER = {"name": "张丽", "mobile": "15991234567", "email": "zhangli@example.com", "title": TITLE,
          "content": "请问出口退税需要准备哪些材料？"}


def submit_http(sb, site=BUREAU, **over) -> str:
    data = urlencode({"type": "咨询", **LETTER, **over, "Submit": "提交信件"}).encode()
    html = urlopen(Request(f"{sb.base_url(site)}/leader/save.php", data=data)).read().decode()
    return re.search(r'id="code">(C\d+)<', html)[1]


def search(page, sb, code, site=BUREAU):
    page.set_default_timeout(5000)
    page.goto(f"{sb.base_url(site)}/leader/search.php")
    page.fill("#code", code)
    page.click("#btnSearch")
    expect(page.locator("#result, #notFound").first).to_be_visible()


def test_browser_submits_and_gets_a_letter_number(page, sandbox):
    before = len(sandbox.received(BUREAU))
    page.set_default_timeout(5000)
    page.goto(f"{sandbox.base_url(BUREAU)}/leader/")
    assert page.url.endswith("/swj/leader/index.php")
    expect(page.locator("#sitename")).to_have_text(BUREAU)
    expect(page.locator("#boxname")).to_have_text("领导信箱")
    page.check("#type3")
    for key, value in LETTER.items():
        page.fill(f"#{key}", value)
    page.click("#btnSubmit")
    expect(page.locator("#ok")).to_contain_text("信件提交成功")
    code = page.locator("#code").inner_text()
    assert re.fullmatch(r"C20240426\d{4}", code)
    got = sandbox.received(BUREAU)
    assert len(got) == before + 1
    assert (got[-1].tracking_code, got[-1].kind, got[-1].title, got[-1].secret) == (code, "建议", TITLE, "")


def test_rejections_are_message_pages_with_a_back_link(page, sandbox):
    before = len(sandbox.received())
    page.set_default_timeout(5000)
    page.goto(f"{sandbox.base_url(BUREAU)}/leader/index.php")
    cases = [("name", "", "姓名不能为空！"), ("mobile", "0917123", "手机号码填写错误！"),
             ("mobile", "", "手机号码填写错误！"), ("email", "zhangli#example.com", "联系邮箱填写错误！"),
             ("email", "", "联系邮箱填写错误！"), ("title", "", "主题不能为空！"),
             ("content", "", "内容不能为空！")]
    for field, bad, message in cases:
        for key, value in LETTER.items():
            page.fill(f"#{key}", bad if key == field else value)
        page.click("#btnSubmit")
        expect(page.locator("#msg")).to_have_text(message)
        page.click("#back")
        expect(page.locator("#form1")).to_be_visible()
    assert len(sandbox.received()) == before


def test_lookup_shows_unfinished_then_finished_with_reply_time(page, timed):
    code = submit_http(timed)
    search(page, timed, code)
    expect(page.locator("#status")).to_have_text("未办结")
    expect(page.locator("#reply")).to_have_count(0)
    timed.test_clock.set(datetime(2024, 5, 7, 16, 19, tzinfo=SHANGHAI))
    search(page, timed, code)
    expect(page.locator("#status")).to_have_text("未办结")
    timed.test_clock.set(datetime(2024, 5, 7, 16, 20, tzinfo=SHANGHAI))   # 5th working day
    search(page, timed, code.lower())
    expect(page.locator("#status")).to_have_text("已办结")
    expect(page.locator("#reply")).to_contain_text(TITLE)
    expect(page.locator("#replyTime")).to_have_text("2024-05-07 16:20")
    search(page, timed, "C202404269999")
    expect(page.locator("#notFound")).to_have_text("没有找到该信件")


def test_reply_rule_before_receipt_means_half_an_hour_later(page, timed):
    code = submit_http(timed, site=EARLY)
    timed.test_clock.set(datetime(2024, 4, 26, 10, 30, tzinfo=SHANGHAI))
    search(page, timed, code, site=EARLY)
    expect(page.locator("#replyTime")).to_have_text("2024-04-26 10:30")


def test_deleted_letter_is_not_found(page, timed):
    code = submit_http(timed, site=GONE)
    search(page, timed, code, site=GONE)
    expect(page.locator("#status")).to_have_text("未办结")
    timed.test_clock.set(datetime(2024, 4, 28, 8, 0, tzinfo=SHANGHAI))   # 1st working day, 08:00
    search(page, timed, code, site=GONE)
    expect(page.locator("#notFound")).to_have_text("没有找到该信件")
