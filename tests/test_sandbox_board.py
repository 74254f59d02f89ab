"""The `board` archetype: a PbootCMS-style 留言板 posted by XHR, with a public list of messages.

Plain HTTP against in-process sandboxes (each test on its own simulated clock), and Chromium
where the page's own script matters: the XHR, the alert it shows, the form reset, the captcha
picture drawn again.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from playwright.sync_api import expect

from bot.clock import SHANGHAI, SimClock
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.sandbox.captcha import solve

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)   # Friday; 04-27 rests, 04-28 (Sunday) works
PLAIN, CAPTCHA, CLOSED = "测试市商务局", "测试市统计局", "测试市档案馆"
MODERATED, QUICK, GONE = "测试市民政局", "测试市水利局", "测试市文化和旅游局"
BUSY, MOD_BUSY = "测试市人民政府", "测试市卫生健康委员会"


def board(name, slug, **rules):
    return {"name": name, "group": "市级部门网站", "platform": "board", "mailboxes": ["board"],
            "slug": slug, **rules}


ROSTER = {
    "campaign": {"name": "board", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        board(PLAIN, "swj", reply={"workdays": 1, "at": "16:00"}, edit={"workdays": 1}),
        board(CAPTCHA, "tjj", captcha=True),
        board(CLOSED, "dag", closed=True),
        board(MODERATED, "mz", moderated=True, reply={"workdays": 3, "at": "15:00"}),
        board(QUICK, "sl", moderated={"workdays": 2}, reply={"workdays": 0, "at": "16:00"}),
        board(GONE, "wl", reply={"workdays": 0, "at": "15:00"}, delete={"workdays": 1}),
        board(BUSY, "city", traffic=20, reply={"workdays": 0, "at": "16:30"}),
        board(MOD_BUSY, "wjw", traffic=20, moderated=True),
    ],
}
CONTENT = "您好！我家住在渭滨区经二路的老旧小区，六层无电梯。\n请问加装电梯的财政补贴标准是多少？谢谢！"
LETTER = {"contacts": "王晓明", "mobile": "13891712345", "content": CONTENT.replace("\n", "\r\n")}
THANKS = "谢谢您的反馈，我们会尽快联系您！"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


class Client:
    """One visitor: a browser-like cookie jar, so the site's session (PbootSystem) carries."""

    def __init__(self, sb: Sandbox, site: str):
        self.base = f"{sb.base_url(site)}/board/"
        self.opener = build_opener(HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, url: str, data: dict | None = None, headers: dict | None = None):
        body = None if data is None else urlencode(data).encode()
        try:
            resp = self.opener.open(Request(url, data=body, headers=headers or {}), timeout=10)
        except HTTPError as e:
            resp = e
        return resp.status, resp.headers, resp.read()

    def page(self, page: int | str | None = None) -> str:
        status, _, body = self.open(self.base + ("" if page is None else f"?page={page}"))
        assert status == 200
        return body.decode("utf-8")

    def captcha(self) -> str:
        status, headers, png = self.open(self.base + "code.php")
        assert status == 200 and headers["Content-Type"] == "image/png"
        return solve(png)

    def post(self, xhr: bool = True, referer: str | None = None, **over) -> tuple[int, dict | str]:
        """The XHR the page's script sends (JSON back), or a plain form post (a script back)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
        if xhr:
            headers["X-Requested-With"] = "XMLHttpRequest"
        if referer is not None:
            headers["Referer"] = referer
        data = {**LETTER, "checkcode": "", **over}
        status, _, body = self.open(self.base + "message/", {k: v for k, v in data.items() if v is not None},
                                    headers)
        text = body.decode("utf-8")
        return status, (json.loads(text) if xhr and text.startswith("{") else text)


@dataclass
class Row:
    name: str = ""
    asked: str = ""
    content: str = ""
    reply: str | None = None
    reply_time: str | None = None


@dataclass
class Listing:
    rows: list[Row] = field(default_factory=list)
    status: str = ""          # 共T条 当前N/P页
    none: bool = False        # 未查询到任何数据!
    links: dict[str, str] = field(default_factory=dict)

    @property
    def numbers(self) -> tuple[int, int, int]:
        m = re.fullmatch(r"共(\d+)条 当前(\d+)/(\d+)页", self.status)
        return int(m[1]), int(m[2]), int(m[3])


class _ListParser(HTMLParser):
    FIELDS = {"msg-name": "name", "msg-time": "asked", "msg-content": "content",
              "reply-content": "reply", "reply-time": "reply_time"}
    PAGER = ("page-index", "page-pre", "page-next", "page-last")

    def __init__(self):
        super().__init__()
        self.out = Listing()
        self.stack: list[str] = []
        self.target: tuple[object, str] | None = None
        self.pager_part: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag not in ("input", "img", "br", "meta"):
            self.stack.append(tag)
        if "message-item" in classes:
            self.out.rows.append(Row())
        for c in classes:
            if c in self.FIELDS and self.out.rows:
                setattr(self.out.rows[-1], self.FIELDS[c], "")
                self.target = (self.out.rows[-1], self.FIELDS[c])
            if c == "page-status":
                self.target = (self.out, "status")
            if c == "page-none":
                self.out.none = True
            if c in self.PAGER:
                self.pager_part = c
        if tag == "a" and self.pager_part:
            self.out.links[self.pager_part] = a.get("href", "")
            self.pager_part = None

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag in ("div", "span"):
            self.target = None

    def handle_data(self, data):
        if self.target is not None:
            obj, attr = self.target
            setattr(obj, attr, getattr(obj, attr) + data)


def listing(html: str) -> Listing:
    p = _ListParser()
    p.feed(html)
    return p.out


def rows_with(html: str, content: str = CONTENT) -> list[Row]:
    return [r for r in listing(html).rows if r.content == content]


# -- the page and the form ------------------------------------------------------------------------

def test_the_page_shows_the_form_without_a_title_field_and_starts_a_session(sandbox):
    c = Client(sandbox, PLAIN)
    status, headers, body = c.open(c.base)
    html = body.decode()
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Server"].startswith("Apache/") and headers["X-Powered-By"].startswith("PHP/")
    assert re.fullmatch(r"PbootSystem=[0-9a-v]{26}; path=/swj/", headers["Set-Cookie"])
    assert "<title>在线留言-测试市商务局</title>" in html and sandbox.mailbox_label(PLAIN, "board") == "在线留言"
    for element in ('form class="msg-form" id="messageForm"', 'name="contacts" required id="contacts"',
                    'name="mobile" required id="mobile"', '<textarea name="content" id="content"',
                    'name="checkcode" required id="checkcode"', 'class="codeimg" id="codeimg" src="/swj/board/code.php"',
                    '<button type="submit" id="btnSubmit">提交留言</button>'):
        assert element in html
    assert 'name="title"' not in html and 'name="email"' not in html and 'id="title"' not in html
    # The session is kept: no new cookie while it lives.
    assert c.open(c.base)[1]["Set-Cookie"] is None


def test_a_site_without_the_board_mailbox_and_unknown_paths_are_404(sandbox):
    c = Client(sandbox, PLAIN)
    base = sandbox.base_url(PLAIN)
    for url in (f"{base}/leader/", f"{base}/board/message", f"{base}/board/list", f"{base}/board/index.php"):
        assert c.open(url)[0] == 404, url
    status, _, body = c.open(f"{base}/")
    assert status == 200 and 'id="mailbox-board"' in body.decode() and "在线留言" in body.decode()


def test_a_valid_message_answers_code_1_and_is_received_without_a_code(timed):
    c = Client(timed, PLAIN)
    status, answer = c.post(referer=c.base)
    assert status == 200
    assert answer == {"code": 1, "data": "提交成功！", "tourl": c.base, "rowtotal": 1}
    got = timed.received(PLAIN)
    assert len(got) == 1
    x = got[0]
    assert (x.platform, x.mailbox, x.title, x.tracking_code, x.secret, x.email, x.public) == \
        ("board", "board", "", "", "", "", True)
    assert (x.name, x.phone, x.body, x.received_at) == ("王晓明", "13891712345", CONTENT, START)


def test_the_answer_is_json_text_as_php_sends_it(timed):
    c = Client(timed, PLAIN)
    _, headers, body = c.open(c.base + "message/", {**LETTER, "checkcode": ""},
                              {"X-Requested-With": "XMLHttpRequest", "Referer": "http://elsewhere.example/x"})
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.decode() == '{"code":1,"data":"提交成功！","tourl":"\\/","rowtotal":1}'


def test_without_xhr_the_site_answers_with_an_alert_script(timed):
    c = Client(timed, PLAIN)
    assert c.post(xhr=False, contacts="") == (
        200, '<script type="text/javascript">alert("联系人不能为空！");window.history.go(-1);</script>')
    status, text = c.post(xhr=False)
    assert text == '<script type="text/javascript">alert("提交成功！");location.href="-1";</script>'
    assert len(timed.received(PLAIN)) == 1
    # A GET of the endpoint stores nothing.
    status, _, body = c.open(c.base + "message/?" + urlencode(LETTER))
    assert body.decode() == ('<script type="text/javascript">alert("提交失败，请使用POST方式提交！");'
                             'window.history.go(-1);</script>')
    assert c.open(c.base + "message/", headers={"X-Requested-With": "XMLHttpRequest"})[2].decode() == \
        '{"code":0,"data":"提交失败，请使用POST方式提交！","tourl":"","rowtotal":1}'
    assert len(timed.received(PLAIN)) == 1


@pytest.mark.parametrize("over, reason", [
    ({"contacts": ""}, "联系人不能为空！"),
    ({"contacts": None}, "联系人不能为空！"),
    ({"mobile": "  "}, "手机不能为空！"),
    ({"content": ""}, "内容不能为空！"),
    ({"content": "0"}, "内容不能为空！"),            # PHP's `! $field_data`
    ({"contacts": "", "content": ""}, "联系人不能为空！"),   # the first failing field only
])
def test_a_missing_field_is_refused_with_its_reason(timed, over, reason):
    c = Client(timed, PLAIN)
    assert c.post(**over) == (200, {"code": 0, "data": reason, "tourl": "", "rowtotal": 1})
    assert timed.received() == []


def test_the_server_takes_any_mobile_text_the_page_script_checks_it(timed):
    """PbootCMS checks only that required fields are there; the page's script checks the
    number's form before posting (a browser test below)."""
    c = Client(timed, PLAIN)
    assert c.post(mobile="0917-3261234")[1]["code"] == 1
    assert timed.received()[0].phone == "0917-3261234"


def test_the_captcha_is_checked_only_when_the_roster_says_so(timed):
    plain = Client(timed, PLAIN)
    assert plain.post(checkcode="")[1]["code"] == 1          # shown, never checked
    c = Client(timed, CAPTCHA)
    c.page()
    assert c.post(checkcode="")[1]["data"] == "验证码不能为空！"
    assert c.post(checkcode="1234")[1]["data"] == "验证码错误！"     # no picture in this session yet
    digits = c.captcha()
    wrong = f"{(int(digits) + 1) % 10000:04d}"
    assert c.post(checkcode=wrong)[1]["data"] == "验证码错误！"
    assert c.post(checkcode=digits)[1]["data"] == "验证码错误！"      # one try per picture
    digits = c.captcha()
    c.captcha()                                                       # a newer picture replaces it
    assert c.post(checkcode=digits)[1]["data"] == "验证码错误！"
    assert timed.received() == [timed.received(PLAIN)[0]]
    digits = c.captcha()
    assert c.post(checkcode=digits) == (200, {"code": 1, "data": "提交成功！", "tourl": "-1", "rowtotal": 1})
    # The session's answer, whichever visitor asks: another session's picture is no help.
    other = Client(timed, CAPTCHA)
    other.page()
    assert other.post(checkcode=c.captcha())[1]["data"] == "验证码错误！"
    assert len(timed.received(CAPTCHA)) == 1


def test_a_second_message_of_a_session_within_10_seconds_is_refused(timed):
    c = Client(timed, PLAIN)
    assert c.post()[1]["code"] == 1
    assert c.post() == (200, {"code": 0, "data": "您提交太频繁了，请稍后再试！", "tourl": "", "rowtotal": 1})
    timed.test_clock.set(START + timedelta(seconds=9))
    assert c.post(contacts="")[1]["data"] == "您提交太频繁了，请稍后再试！"   # before any field check
    assert Client(timed, PLAIN).post()[1]["code"] == 1       # another visitor (session) may
    timed.test_clock.set(START + timedelta(seconds=10))
    assert c.post()[1]["code"] == 1
    assert len(timed.received(PLAIN)) == 3
    # A refused message does not count: only accepted ones start the 10 seconds.
    timed.test_clock.set(START + timedelta(seconds=30))
    assert c.post(content="")[1]["code"] == 0
    assert c.post()[1]["code"] == 1


def test_the_frequency_rule_comes_before_the_captcha(timed):
    c = Client(timed, CAPTCHA)
    assert c.post(checkcode=c.captcha())[1]["code"] == 1
    digits = c.captcha()
    assert c.post(checkcode=digits)[1]["data"] == "您提交太频繁了，请稍后再试！"
    timed.test_clock.set(START + timedelta(seconds=10))
    assert c.post(checkcode=digits)[1]["code"] == 1     # the picture was not spent by the refusal


def test_a_closed_board_keeps_its_page_and_refuses_every_post_with_404(timed):
    c = Client(timed, CLOSED)
    html = c.page()
    assert 'id="messageForm"' in html
    status, answer = c.post()
    assert (status, answer) == (404, {"code": 0, "data": "系统已经关闭留言功能，请到后台开启再试！",
                                      "tourl": "", "rowtotal": 1})
    status, text = c.post(xhr=False)
    assert status == 404 and '<div id="errorInfo"' in text and "系统已经关闭留言功能" in text
    assert timed.received() == []


# -- the public list --------------------------------------------------------------------------------

def test_a_message_shows_at_once_with_its_reply_and_the_reply_time_moves_with_an_edit(timed):
    c = Client(timed, PLAIN)
    c.post()
    [row] = rows_with(c.page())
    assert (row.name, row.asked, row.reply, row.reply_time) == ("王**", "2024-04-26 10:00:00", None, None)
    letter = timed.received(PLAIN)[0]
    tl = timed.timeline(letter)
    assert tl.reply_at == at(2024, 4, 28, 16, 0)              # the next working day (a Sunday that works)
    assert tl.edited_at == at(2024, 4, 29, 10, 0)             # a working day after the reply, 10:00
    timed.test_clock.set(at(2024, 4, 28, 15, 59, 59))
    assert rows_with(c.page())[0].reply is None
    timed.test_clock.set(at(2024, 4, 28, 16, 0))
    [row] = rows_with(c.page())
    assert row.reply_time == "2024-04-28 16:00:00"
    assert row.reply.startswith(("您好！", "尊敬的网友")) and "《您好！我家住在渭滨区经二路的老……》" in row.reply
    assert row.reply.endswith(PLAIN)
    timed.test_clock.set(at(2024, 4, 29, 9, 59, 59))
    assert rows_with(c.page())[0].reply_time == "2024-04-28 16:00:00"
    timed.test_clock.set(at(2024, 4, 29, 10, 0))
    assert rows_with(c.page())[0].reply_time == "2024-04-29 10:00:00"      # update_time
    assert rows_with(c.page())[0].reply == row.reply
    assert rows_with(c.page())[0].asked == "2024-04-26 10:00:00"


def test_a_moderated_message_is_listed_only_once_staff_publish_it(timed):
    c = Client(timed, MODERATED)
    assert c.post()[1] == {"code": 1, "data": "提交成功！", "tourl": "-1", "rowtotal": 1}
    tl = timed.timeline(timed.received(MODERATED)[0])
    assert tl.published_at == at(2024, 4, 28, 9, 0)          # `moderated = true`: next working day 09:00
    html = c.page()
    assert rows_with(html) == [] and listing(html).none
    timed.test_clock.set(at(2024, 4, 28, 8, 59, 59))
    assert rows_with(c.page()) == []
    timed.test_clock.set(at(2024, 4, 28, 9, 0))
    [row] = rows_with(c.page())
    assert row.reply is None and listing(c.page()).numbers == (1, 1, 1)
    timed.test_clock.set(at(2024, 4, 30, 15, 0))              # the reply, 3 working days on
    assert rows_with(c.page())[0].reply_time == "2024-04-30 15:00:00"


def test_answering_a_moderated_message_publishes_it_if_sooner(timed):
    c = Client(timed, QUICK)
    c.post()
    tl = timed.timeline(timed.received(QUICK)[0])
    assert tl.reply_at == at(2024, 4, 26, 16, 0) == tl.published_at    # review only on 04-29
    timed.test_clock.set(at(2024, 4, 26, 15, 59))
    assert rows_with(c.page()) == []
    timed.test_clock.set(at(2024, 4, 26, 16, 0))
    assert rows_with(c.page())[0].reply_time == "2024-04-26 16:00:00"


def test_a_deleted_message_leaves_the_list(timed):
    c = Client(timed, GONE)
    c.post()
    timed.test_clock.set(at(2024, 4, 26, 15, 0))
    assert rows_with(c.page())[0].reply_time == "2024-04-26 15:00:00"
    timed.test_clock.set(at(2024, 4, 28, 8, 59))
    assert len(rows_with(c.page())) == 1
    timed.test_clock.set(at(2024, 4, 28, 9, 0))              # `delete`: the next working day 09:00
    html = c.page()
    assert rows_with(html) == [] and listing(html).none
    assert len(timed.received(GONE)) == 1                     # still received


def test_the_list_pages_newest_first_with_other_citizens_messages(timed):
    c = Client(timed, BUSY)
    first = listing(c.page())
    total, page, pages = first.numbers
    public = [x for x in timed.traffic(BUSY) if x.public]
    assert total == len(public) and page == 1 and pages == -(-total // 10) and len(first.rows) == 10
    assert first.links["page-pre"] == "javascript:;" and first.links["page-next"] == "/city/board/?page=2"
    assert first.links["page-last"] == f"/city/board/?page={pages}"
    c.post()
    rows = listing(c.page()).rows
    assert rows[0].content == CONTENT and rows[0].asked == "2024-04-26 10:00:00"
    # A day later others have written: the message slid down; walk the pages as a reader does.
    timed.test_clock.set(at(2024, 4, 27, 12, 0))
    seen, n = [], 1
    while True:
        got = listing(c.page(n))
        seen += got.rows
        total, page, pages = got.numbers
        if page >= pages:
            break
        n += 1
    assert len(seen) == total == len([x for x in timed.traffic(BUSY) if x.public]) + 1
    times = [r.asked for r in seen]
    assert times == sorted(times, reverse=True)
    mine = [i for i, r in enumerate(seen) if r.content == CONTENT]
    assert len(mine) == 1 and mine[0] >= 10                   # on page 2 or later by now
    assert seen[mine[0]].reply_time == "2024-04-26 16:30:00"
    others = [r for r in seen if r.content != CONTENT]
    assert any(r.reply for r in others) and any(r.reply is None for r in others)
    assert all(re.fullmatch(r".\*\*", r.name) for r in others)
    # Past the end: PbootCMS shows the last page again (the status says where the list ends).
    last = listing(c.page(pages))
    assert listing(c.page(pages + 5)).rows == last.rows and listing(c.page(pages + 5)).numbers == (total, pages, pages)
    assert last.links["page-next"] == "javascript:;"
    assert listing(c.page("abc")).numbers[1] == 1 and listing(c.page(0)).numbers[1] == 1


def test_other_citizens_messages_wait_for_review_on_a_moderated_board(timed):
    timed.test_clock.set(at(2024, 4, 29, 12, 0))
    c = Client(timed, MOD_BUSY)
    total = listing(c.page()).numbers[0]
    now = timed.test_clock.now()
    letters = [x for x in timed.traffic(MOD_BUSY) if x.public]
    listed = [x for x in letters if timed.timeline(x).listed(now)]
    assert total == len(listed) < len(letters)
    # What came in after the last review round (04-29 09:00) waits, unless already answered.
    waiting = [x for x in letters if x not in listed]
    assert waiting and all(x.received_at >= at(2024, 4, 29, 0, 0) for x in waiting)
    assert all(timed.timeline(x).published_at > now for x in waiting)


def test_two_sandboxes_show_the_same_pages(timed):
    clock = SimClock(START)
    with Sandbox(roster_from_dict(ROSTER), clock) as other:
        for sb in (timed, other):
            sb.clock.set(at(2024, 4, 29, 18, 0))
        for site in (BUSY, MOD_BUSY):
            for page in (1, 2, 7):
                a, b = Client(timed, site).page(page), Client(other, site).page(page)
                assert a.replace(timed.url, "") == b.replace(other.url, "")
                assert len(listing(a).rows) == 10


def test_get_requests_never_create_messages(timed):
    c = Client(timed, PLAIN)
    for url in (c.base, c.base + "?page=2", c.base + "code.php", c.base + "message/",
                c.base + "message/?" + urlencode(LETTER)):
        assert c.open(url)[0] == 200
        assert c.open(url, headers={"X-Requested-With": "XMLHttpRequest"})[0] == 200
    assert timed.received() == []


def test_many_visitors_at_once_are_all_received(timed):
    def one(i: int) -> dict:
        return Client(timed, PLAIN).post(contacts=f"市民{i}", content=f"第{i}条留言")[1]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(24)))
    assert all(a["code"] == 1 for a in answers)
    assert sorted(x.name for x in timed.received(PLAIN)) == sorted(f"市民{i}" for i in range(24))
    assert listing(Client(timed, PLAIN).page()).numbers == (24, 1, 3)


def test_the_sandbox_does_not_borrow_the_products_mailbox_label_rule():
    code = ("import sys, bot.sandbox.server; "
            "sys.exit(any(m.startswith('bot.scenario') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- in a browser: the page's own script --------------------------------------------------------

class Alerts:
    """The page's alert() texts, each accepted as a person would."""

    def __init__(self, page):
        self.seen: list[str] = []
        page.on("dialog", self._on)

    def _on(self, dialog):
        self.seen.append(dialog.message)
        dialog.accept()


def fill(page, **over):
    for key, value in {**LETTER, "content": CONTENT, **over}.items():
        page.fill(f"#{key}", value)


def captcha_from_picture(page) -> str:
    img = page.locator("#codeimg")
    expect(img).to_have_js_property("complete", True)
    return solve(img.screenshot())


def test_browser_posts_by_xhr_sees_an_alert_and_a_reset_form(page, timed):
    page.set_default_timeout(5000)
    alerts = Alerts(page)
    page.goto(f"{timed.base_url(PLAIN)}/board/")
    expect(page.locator("#boxName")).to_have_text("在线留言")
    src = page.locator("#codeimg").get_attribute("src")
    fill(page, checkcode="1")
    with page.expect_response(lambda r: r.url.endswith("/board/message/")) as info:
        page.click("#btnSubmit")
    assert info.value.request.headers["x-requested-with"] == "XMLHttpRequest"
    assert info.value.json() == {"code": 1, "data": "提交成功！", "tourl": page.url, "rowtotal": 1}
    expect(page.locator("#contacts")).to_have_value("")
    assert alerts.seen == [THANKS]
    expect(page.locator("#content")).to_have_value("")
    expect(page.locator("#codeimg")).not_to_have_attribute("src", src)      # a new picture
    assert page.url == f"{timed.base_url(PLAIN)}/board/"                   # no page of its own
    [letter] = timed.received(PLAIN)
    assert (letter.body, letter.name, letter.tracking_code) == (CONTENT, "王晓明", "")
    # The same page again at once: the session's 10 seconds; the form keeps what was typed.
    fill(page, checkcode="1")
    page.click("#btnSubmit")
    assert _wait(page, lambda: len(alerts.seen) == 2)
    assert alerts.seen[1] == "您提交太频繁了，请稍后再试！" and len(timed.received(PLAIN)) == 1
    expect(page.locator("#contacts")).to_have_value("王晓明")


def test_browser_wrong_captcha_then_a_new_picture_read_and_accepted(page, timed):
    page.set_default_timeout(5000)
    alerts = Alerts(page)
    page.goto(f"{timed.base_url(CAPTCHA)}/board/")
    digits = captcha_from_picture(page)
    src = page.locator("#codeimg").get_attribute("src")
    fill(page, checkcode=f"{(int(digits) + 1) % 10000:04d}")
    page.click("#btnSubmit")
    assert _wait(page, lambda: alerts.seen == ["验证码错误！"])
    expect(page.locator("#codeimg")).not_to_have_attribute("src", src)       # drawn again
    expect(page.locator("#contacts")).to_have_value("王晓明")
    assert timed.received() == []
    page.fill("#checkcode", captcha_from_picture(page))
    page.click("#btnSubmit")
    assert _wait(page, lambda: len(alerts.seen) == 2)
    assert alerts.seen[1] == THANKS and len(timed.received(CAPTCHA)) == 1


def test_browser_the_script_checks_the_mobile_and_nothing_is_sent(page, timed):
    page.set_default_timeout(5000)
    alerts = Alerts(page)
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.goto(f"{timed.base_url(PLAIN)}/board/")
    fill(page, mobile="0917123", checkcode="1")
    page.click("#btnSubmit")
    assert _wait(page, lambda: alerts.seen == ["手机号码格式不正确！"])
    # An empty 联系人 is the browser's own `required` check: no script, no post, no alert.
    fill(page, contacts="", checkcode="1")
    page.click("#btnSubmit")
    assert page.evaluate("document.getElementById('contacts').validity.valueMissing")
    assert sent == [] and alerts.seen == ["手机号码格式不正确！"] and timed.received() == []


def test_browser_a_closed_board_only_says_the_answer_was_abnormal(page, timed):
    """PbootCMS answers a closed board with HTTP 404 (its JSON in the body); the page's script,
    as the vendor's, takes any failed request for 返回数据异常！."""
    page.set_default_timeout(5000)
    alerts = Alerts(page)
    page.goto(f"{timed.base_url(CLOSED)}/board/")
    fill(page, checkcode="1")
    with page.expect_response(lambda r: r.url.endswith("/board/message/")) as info:
        page.click("#btnSubmit")
    assert info.value.status == 404 and info.value.json()["data"] == "系统已经关闭留言功能，请到后台开启再试！"
    assert _wait(page, lambda: alerts.seen == ["返回数据异常！"])
    expect(page.locator("#contacts")).to_have_value("王晓明")
    assert timed.received() == []


def _wait(page, check, seconds: float = 5) -> bool:
    """Polls `check` while the page's events (its alerts) are dispatched: the sync API hands
    them over only inside its own calls."""
    for _ in range(int(seconds * 20)):
        if check():
            return True
        page.wait_for_timeout(50)
    return check()
