"""The `confirm` archetype: form -> preview (返回修改 / 确认提交) -> 信件编号; query by the code and
the last four digits of the mobile; the public list. Over plain HTTP, and once in a browser."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener, urlopen

import pytest
from playwright.sync_api import expect

from bot.clock import SHANGHAI

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)   # Friday; 04-28 (Sunday) is a working day
CITY, CULTURE, HOUSING, WEATHER = "测试市人民政府", "测试市文化和旅游局", "测试市住房和城乡建设局", "测试市气象局"
ROSTER = {
    "campaign": {"name": "t", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        {"name": CITY, "group": "政府门户网站", "platform": "confirm", "mailboxes": ["leader", "mayor"],
         "slug": "city", "reply": {"workdays": 1, "at": "10:30"}},
        {"name": CULTURE, "group": "市级部门网站", "platform": "confirm", "mailboxes": ["leader"],
         "slug": "wl", "delete": {"workdays": 2}},
        {"name": HOUSING, "group": "市级部门网站", "platform": "confirm", "mailboxes": ["leader"],
         "slug": "zj", "reply": {"workdays": 3, "at": "10:30"}, "backdate": {"workdays": 1}, "traffic": 12},
        {"name": WEATHER, "group": "市级部门网站", "platform": "confirm", "mailboxes": ["leader"],
         "slug": "qx", "captcha": True, "drift": "title"},
    ],
}
TITLE = "关于小区停车收费标准的咨询"
LETTER = {"xingming": "王晓明", "shouji": "13812345678", "email": "wxm@example.com", "leixing": "咨询",
          "zhuti": TITLE, "neirong": "您好：\n请问本市住宅小区停车收费标准在哪里可以查到？谢谢！", "gongkai": "1"}


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str) -> tuple[int, str, dict]:
    try:
        resp = build_opener(_NoRedirect).open(url)
        return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers)
    except HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)


def post(url: str, form: dict) -> str:
    return urlopen(Request(url, data=urlencode(form).encode("utf-8"))).read().decode("utf-8")


def text(html: str, element_id: str) -> str | None:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    return None if m is None else m.group(1)


def preview(sb, site=CITY, mailbox="leader", **over) -> str:
    return post(f"{sb.base_url(site)}/{mailbox}/preview.do", {**LETTER, **over})


def hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def submit_http(sb, site=CITY, mailbox="leader", **over) -> str:
    """Form -> preview -> 确认提交 as the browser posts them; the 信件编号."""
    page = preview(sb, site, mailbox, **over)
    done = post(f"{sb.base_url(site)}/{mailbox}/confirm.do", hidden(page))
    return text(done, "xjbh")


def query(sb, code: str, tail: str, site=CITY, mailbox="leader") -> str:
    return post(f"{sb.base_url(site)}/{mailbox}/query.do", {"xjbh": code, "sjwh": tail})


# -- writing ----------------------------------------------------------------------------------

def test_browser_previews_goes_back_and_confirms(page, sandbox):
    before = len(sandbox.received(CITY))
    page.set_default_timeout(5000)
    page.goto(f"{sandbox.base_url(CITY)}/leader/")
    assert page.url.endswith("/city/leader/write.do")
    expect(page.locator("#mailboxName")).to_have_text("领导信箱")
    expect(page.locator("#yzmImg")).to_have_count(0)            # shown only where it is checked
    expect(page.locator("#gongkai1")).to_be_checked()
    page.fill("#xingming", "王晓明")
    page.fill("#shouji", "13812345678")
    page.select_option("#leixing", "建议")
    page.fill("#zhuti", "建议增设公交站候车亭")
    page.fill("#neirong", "人民路公交站没有候车亭，雨天候车很不方便，建议增设。")
    page.click("#btnPreview")
    # The preview shows what was typed, as text; nothing is stored yet.
    expect(page.locator("#previewTable")).to_be_visible()
    expect(page.locator("#pvPhone")).to_have_text("13812345678")
    expect(page.locator("#pvType")).to_have_text("建议")
    expect(page.locator("#pvPublic")).to_have_text("公开")
    assert page.locator("#confirmForm input[name=zhuti]").get_attribute("value") == "建议增设公交站候车亭"
    assert len(sandbox.received(CITY)) == before
    # 返回修改: the form again, filled, to be changed.
    page.click("#btnBack")
    expect(page.locator("#letterForm")).to_be_visible()
    expect(page.locator("#zhuti")).to_have_value("建议增设公交站候车亭")
    expect(page.locator("#leixing")).to_have_value("建议")
    page.fill("#zhuti", "建议在人民路公交站增设候车亭")
    page.click("#btnPreview")
    expect(page.locator("#pvTitle")).to_have_text("建议在人民路公交站增设候车亭")
    page.click("#btnConfirm")
    expect(page.locator("#submitSuccess")).to_contain_text("您的信件已提交成功！")
    expect(page.locator("#queryTip")).to_contain_text("信件编号和您填写的手机号码后四位")
    code = page.locator("#xjbh").inner_text()
    assert re.fullmatch(r"LX240426\d{4}", code)
    got = sandbox.received(CITY)
    assert len(got) == before + 1
    letter = got[-1]
    assert (letter.tracking_code, letter.title, letter.kind, letter.phone, letter.secret, letter.public) == \
        (code, "建议在人民路公交站增设候车亭", "建议", "13812345678", "", True)
    # Going back in history and confirming the same preview again stores nothing.
    page.go_back()
    expect(page.locator("#btnConfirm")).to_be_visible()
    page.click("#btnConfirm")
    expect(page.locator("#msgBox")).to_have_text("请勿重复提交！")
    assert len(sandbox.received(CITY)) == before + 1


@pytest.mark.parametrize("field,bad,message", [
    ("xingming", "", "请输入姓名"), ("xingming", "欧" * 21, "姓名不能超过20个字"),
    ("shouji", "", "请输入手机号码"), ("shouji", "0917-3261234", "请输入正确的手机号码"),
    ("email", "wxm#example.com", "请输入正确的电子邮箱"), ("leixing", "", "请选择信件类型"),
    ("leixing", "表扬", "请选择信件类型"), ("zhuti", "", "请输入信件主题"),
    ("zhuti", "停车收费", "信件主题应为8-30个字"), ("zhuti", "停" * 31, "信件主题应为8-30个字"),
    ("neirong", "", "请输入信件内容"), ("neirong", "请问停车怎么收费？", "信件内容应为20-600个字"),
    ("neirong", "停" * 601, "信件内容应为20-600个字"), ("gongkai", "", "请选择是否公开"),
])
def test_the_preview_refuses_what_the_form_must_not_send(sandbox, field, bad, message):
    before = len(sandbox.received())
    html = preview(sandbox, **{field: bad})
    assert text(html, "errorMsg") == message
    assert 'id="letterForm"' in html and 'id="previewTable"' not in html
    # The form comes back with what was typed.
    if field != "zhuti":
        assert f'value="{TITLE}"' in html
    assert len(sandbox.received()) == before


def test_only_the_first_failing_rule_is_said_and_an_email_is_optional(sandbox):
    assert text(preview(sandbox, xingming="", shouji=""), "errorMsg") == "请输入姓名"
    html = preview(sandbox, email="")
    assert 'id="previewTable"' in html and text(html, "pvEmail") == ""


def test_the_preview_shows_the_values_as_text_and_carries_them_hidden(sandbox):
    html = preview(sandbox, gongkai="0", neirong="  第一行\r\n第二行，请问停车收费标准在哪里可以查到？  ")
    assert text(html, "pvName") == "王晓明" and text(html, "pvPhone") == "13812345678"
    assert text(html, "pvContent") == "第一行\n第二行，请问停车收费标准在哪里可以查到？"
    assert text(html, "pvPublic") == "不公开"
    h = hidden(html)
    assert set(h) == {"token", "xingming", "shouji", "email", "leixing", "zhuti", "neirong", "gongkai"}
    assert re.fullmatch(r"[0-9A-F]{32}", h["token"])
    assert h["zhuti"] == TITLE and h["gongkai"] == "0"
    assert 'action="/city/leader/confirm.do"' in html and "返回修改" in html and "确认提交" in html


def test_confirm_needs_a_fresh_token_from_this_mailbox_and_takes_it_once(timed):
    base = f"{timed.base_url(CITY)}/leader"
    before = len(timed.received())
    for token in ("", "0123456789ABCDEF0123456789ABCDEF"):
        html = post(f"{base}/confirm.do", {**LETTER, "token": token})
        assert text(html, "msgBox") == "页面已过期，请重新填写信件。"
        assert "<title>页面已过期" in html and 'id="backLink"' in html
    # A token of the other mailbox does not do here.
    other = hidden(preview(timed, mailbox="mayor"))
    assert text(post(f"{base}/confirm.do", other), "msgBox") == "页面已过期，请重新填写信件。"
    # A token lasts 30 minutes.
    stale = hidden(preview(timed))
    fresh = hidden(preview(timed))
    timed.test_clock.advance(timedelta(minutes=30, seconds=1))
    assert text(post(f"{base}/confirm.do", stale), "msgBox") == "页面已过期，请重新填写信件。"
    assert len(timed.received()) == before
    fresh2 = hidden(preview(timed))
    assert text(post(f"{base}/confirm.do", fresh2), "xjbh")
    assert text(post(f"{base}/confirm.do", fresh2), "msgBox") == "请勿重复提交！"
    assert text(post(f"{base}/confirm.do", fresh), "msgBox") == "页面已过期，请重新填写信件。"
    assert len(timed.received()) == before + 1


def test_confirm_checks_the_hidden_values_again(sandbox):
    before = len(sandbox.received())
    h = hidden(preview(sandbox))
    html = post(f"{sandbox.base_url(CITY)}/leader/confirm.do", {**h, "shouji": "12345"})
    assert text(html, "errorMsg") == "请输入正确的手机号码" and 'id="letterForm"' in html
    assert len(sandbox.received()) == before


def test_going_back_posts_the_values_to_the_form(sandbox):
    h = hidden(preview(sandbox, leixing="投诉", gongkai="0"))
    html = post(f"{sandbox.base_url(CITY)}/leader/write.do", h)
    assert f'value="{TITLE}"' in html and '<option value="投诉" selected="selected">' in html
    assert 'id="gongkai0" value="0" checked="checked"' in html
    assert "请问本市住宅小区停车收费标准" in html and 'id="yzmImg"' not in html


def test_a_captcha_site_checks_the_answer_at_the_preview_once_per_picture(sandbox):
    base = f"{sandbox.base_url(WEATHER)}/leader"
    status, form, _ = get(f"{base}/write.do")
    key = re.search(r'name="yzmKey" id="yzmKey" value="([^"]+)"', form)[1]
    assert f'src="/qx/leader/captcha.do?t={key}"' in form
    png = urlopen(f"{base}/captcha.do?t={key}")
    assert png.headers["Content-Type"] == "image/png"
    answer = sandbox.captcha_answer(key)
    letter = {**LETTER, "zhuti_v2": LETTER["zhuti"]}
    del letter["zhuti"]
    assert text(post(f"{base}/preview.do", {**letter, "yzmKey": key, "yzm": ""}), "errorMsg") == "请输入验证码"
    # That try spent the picture: the right digits no longer pass with it.
    assert text(post(f"{base}/preview.do", {**letter, "yzmKey": key, "yzm": answer}), "errorMsg") == "验证码错误，请重新输入"
    html = post(f"{base}/preview.do", {**letter, "yzmKey": "x", "yzm": "1234"})
    new_key = re.search(r'name="yzmKey" id="yzmKey" value="([^"]+)"', html)[1]
    assert new_key != key and text(html, "errorMsg") == "验证码错误，请重新输入"
    html = post(f"{base}/preview.do", {**letter, "yzmKey": new_key, "yzm": sandbox.captcha_answer(new_key)})
    assert text(html, "pvTitle") == TITLE


def test_a_drifted_field_is_renamed_in_the_form_and_the_preview(sandbox):
    base = f"{sandbox.base_url(WEATHER)}/leader"
    form = get(f"{base}/write.do")[1]
    assert 'name="zhuti_v2" id="zhuti_v2"' in form and 'name="zhuti"' not in form
    key = re.search(r'name="yzmKey" id="yzmKey" value="([^"]+)"', form)[1]
    # The old name is no longer read: the letter has no 主题.
    html = post(f"{base}/preview.do", {**LETTER, "yzmKey": key, "yzm": sandbox.captcha_answer(key)})
    assert text(html, "errorMsg") == "请输入信件主题"


def test_gets_never_create_anything_and_wrong_methods_go_back_to_the_form(sandbox):
    before = len(sandbox.received())
    base = f"{sandbox.base_url(CITY)}/leader"
    assert get(f"{base}/")[0] == 302 and get(f"{base}/")[2]["Location"] == "/city/leader/write.do"
    for path in ("preview.do", "confirm.do", f"confirm.do?{urlencode({**LETTER, 'token': 'x'})}"):
        status, _, headers = get(f"{base}/{path}")
        assert status == 302 and headers["Location"] == "/city/leader/write.do"
    for path in ("write.do", "query.do", f"query.do?xjbh=LX2404260001&sjwh=5678", "list.do", "list.do?page=2",
                 "captcha.do?t=x"):
        status, _, headers = get(f"{base}/{path}")
        assert status == 200 and headers["Server"] == "Apache-Coyote/1.1"
    assert get(f"{base}/index.jsp")[0] == 404 and get(f"{sandbox.base_url(CULTURE)}/mayor/write.do")[0] == 404
    assert len(sandbox.received()) == before


# -- reading ----------------------------------------------------------------------------------

def test_query_by_code_and_the_mobiles_last_four_digits(timed):
    code = submit_http(timed)
    html = query(timed, code, "5678")
    assert text(html, "resStatus") == "待受理" and text(html, "resXjbh") == code
    assert text(html, "resTime") == "2024年04月26日 10:00" and text(html, "hfnr") is None
    assert text(query(timed, code, "5679"), "noResult") == "未找到相关信件，请核对信件编号和手机号码后四位。"
    assert text(query(timed, code, "5678", mailbox="mayor"), "noResult")
    assert text(query(timed, code.lower(), "5678"), "resXjbh") == code
    timed.test_clock.set(datetime(2024, 4, 26, 11, 0, tzinfo=SHANGHAI))
    assert text(query(timed, code, "5678"), "resStatus") == "已受理"
    timed.test_clock.set(datetime(2024, 4, 28, 10, 29, tzinfo=SHANGHAI))
    assert text(query(timed, code, "5678"), "resStatus") == "已受理"
    timed.test_clock.set(datetime(2024, 4, 28, 10, 30, tzinfo=SHANGHAI))      # 1st working day (调休)
    html = query(timed, code, "5678")
    assert text(html, "resStatus") == "已回复"
    assert text(html, "hfdw") == CITY and text(html, "hfsj") == "2024年04月28日 10:30"
    assert TITLE in text(html, "hfnr")


@pytest.mark.parametrize("code,tail,message", [
    ("", "5678", "请输入信件编号"), ("LX2404260001", "", "请输入手机号码后四位"),
    ("LX2404260001", "567", "手机号码后四位应为4位数字"), ("LX2404260001", "56a8", "手机号码后四位应为4位数字"),
    ("LX2404260001", "５６７８", "手机号码后四位应为4位数字"),
])
def test_query_messages(sandbox, code, tail, message):
    html = query(sandbox, code, tail)
    assert text(html, "errorMsg") == message and 'id="queryResult"' not in html


def test_a_deleted_letter_is_not_found_and_a_backdated_reply_shows_the_earlier_time(timed):
    gone = submit_http(timed, site=CULTURE)
    late = submit_http(timed, site=HOUSING)
    assert text(query(timed, gone, "5678", site=CULTURE), "resStatus") == "待受理"
    timed.test_clock.set(datetime(2024, 4, 29, 9, 0, tzinfo=SHANGHAI))       # 2nd working day, 09:00
    assert text(query(timed, gone, "5678", site=CULTURE), "noResult")
    timed.test_clock.set(datetime(2024, 4, 30, 10, 30, tzinfo=SHANGHAI))     # 3rd working day
    html = query(timed, late, "5678", site=HOUSING)
    assert text(html, "resStatus") == "已回复" and text(html, "hfsj") == "2024年04月29日 10:30"


def test_other_citizens_letters_are_found_with_their_own_phone(timed):
    timed.test_clock.set(datetime(2024, 4, 26, 18, 0, tzinfo=SHANGHAI))
    letters = timed.traffic(HOUSING)
    assert letters and all(x.secret == "" and re.fullmatch(r"LX\d{10}", x.tracking_code) for x in letters)
    some = letters[-1]
    html = query(timed, some.tracking_code, some.phone[-4:], site=HOUSING)
    assert text(html, "resTitle") == some.title
    wrong = "0000" if some.phone[-4:] != "0000" else "1111"
    assert text(query(timed, some.tracking_code, wrong, site=HOUSING), "noResult")


def test_the_public_list_ten_a_page_newest_first(timed):
    timed.test_clock.set(datetime(2024, 4, 26, 12, 0, tzinfo=SHANGHAI))
    mine = submit_http(timed, site=HOUSING)
    hidden_one = submit_http(timed, site=HOUSING, gongkai="0", zhuti="不公开的一封来信请勿列出")
    base = f"{timed.base_url(HOUSING)}/leader/list.do"
    html = get(base)[1]
    rows = re.findall(r'<tr class="list-row" data-xjbh="(\w+)"><td class="title">([^<]*)</td><td class="xjbh">'
                      r'\w+</td><td class="date">([^<]*)</td><td class="status">([^<]*)</td>'
                      r'<td class="reply-date">([^<]*)</td>', html)
    assert len(rows) == 10
    assert rows[0][:4] == (mine, TITLE, "2024年04月26日", "待受理")
    assert hidden_one not in html
    public = [x for x in timed.traffic(HOUSING) if x.public]
    total = len(public) + 1
    pages = -(-total // 10)
    assert (text(html, "totalCount"), text(html, "pageNo"), text(html, "pageCount")) == \
        (str(total), "1", str(pages))
    assert 'class="next" href="?page=2"' in html and 'class="prev"' not in html
    # Other citizens' letters, newest first, each with its own state and reply date.
    by_code = {x.tracking_code: x for x in public}
    newest = sorted(public, key=lambda x: x.received_at, reverse=True)[:9]
    assert [r[0] for r in rows[1:]] == [x.tracking_code for x in newest]
    now = timed.test_clock.now()
    for code, title, day, status, reply in rows[1:]:
        x = by_code[code]
        answered = x.reply_at is not None and x.reply_at <= now
        assert (title, day) == (x.title, f"{x.received_at:%Y}年{x.received_at:%m}月{x.received_at:%d}日")
        assert status == ("已回复" if answered else "已受理" if now - x.received_at >= timedelta(hours=1) else "待受理")
        assert reply == (f"{x.reply_at:%Y}年{x.reply_at:%m}月{x.reply_at:%d}日" if answered else "")
    last = get(f"{base}?page={pages}")[1]
    assert 'class="prev"' in last and 'class="next"' not in last
    past = get(f"{base}?page={pages + 1}")[1]
    assert '<tr class="empty"><td colspan="5">暂无信件</td></tr>' in past
    assert text(past, "totalCount") == str(total) and f'class="prev" href="?page={pages}"' in past
    assert get(f"{base}?page=abc")[1].count('class="list-row"') == 10


def test_a_letter_past_its_deletion_leaves_the_list(timed):
    code = submit_http(timed, site=CULTURE)
    base = f"{timed.base_url(CULTURE)}/leader/list.do"
    assert f'data-xjbh="{code}"' in get(base)[1]
    timed.test_clock.set(datetime(2024, 4, 29, 9, 0, tzinfo=SHANGHAI))
    html = get(base)[1]
    assert code not in html and text(html, "totalCount") == "0" and 'class="empty"' in html


def test_behind_the_unified_login_the_writing_pages_ask_for_it_and_the_rest_stay_public():
    from bot.clock import SimClock
    from bot.sandbox import Sandbox
    from bot.sandbox.roster import roster_from_dict

    roster = {**ROSTER, "site": [{**ROSTER["site"][0], "login": True}],
              "account": [{"account": "inspector01", "password": "Sandbox#2024", "phone": "13800001111"}]}
    with Sandbox(roster_from_dict(roster), SimClock(START)) as sb:
        base = f"{sb.base_url(CITY)}/leader"
        for path in ("", "write.do", "captcha.do?t=x"):
            status, _, headers = get(f"{base}/{path}")
            assert status == 302 and headers["Location"].startswith("/sso/login?service="), path
        for path in ("preview.do", "confirm.do"):
            resp = build_opener(_NoRedirect)
            try:
                resp.open(Request(f"{base}/{path}", data=urlencode(LETTER).encode()))
                raise AssertionError("a post without a login was answered")
            except HTTPError as e:
                assert e.code == 302 and e.headers["Location"].startswith("/sso/login?service=")
        assert get(f"{base}/query.do")[0] == 200 and get(f"{base}/list.do")[0] == 200
        assert sb.received() == []
