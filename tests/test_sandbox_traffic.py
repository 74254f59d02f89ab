"""Other citizens' letters (roster `traffic`): public lists that move, codes shared with them.

Real HTTP against in-process sandboxes, one per test on its own simulated clock; one test reads
the jact list in Chromium (its pager is drawn by the page's script).
"""

from __future__ import annotations

import http.cookiejar
import inspect
import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener, urlopen

import pytest
from playwright.sync_api import expect

from bot.calendar import WorkCalendar
from bot.clock import SHANGHAI, SimClock
from bot.sandbox.roster import CODE_ROOM, roster_from_dict
from bot.sandbox import Sandbox, traffic
from bot.sandbox.store import parse_code, tracking_code
from bot.sandbox.traffic import HISTORY_DAYS, TOPICS, rest_day_count

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)   # Friday; 04-27 Saturday rests, 04-28 (Sunday) works
CITY, BUREAU, QUIET = "测试市人民政府", "测试市民政局", "测试市统计局"
COUNTY, SERVICE, PROVINCE = "测试县人民政府", "测试市教育局", "测试市公安局"
ROSTER = {
    "campaign": {"name": "traffic", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-05-31T18:00:00+08:00"},
    "site": [
        {"name": CITY, "group": "政府门户网站", "platform": "jact", "mailboxes": ["leader", "mayor"],
         "slug": "city", "traffic": 40, "reply": {"workdays": 1, "at": "10:30"}},
        {"name": QUIET, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"],
         "slug": "tj", "reply": {"workdays": 0, "at": "15:00"}},
        {"name": BUREAU, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"],
         "slug": "mz", "traffic": 12},
        {"name": COUNTY, "group": "政府门户网站", "platform": "legacy", "mailboxes": ["leader"],
         "slug": "county", "traffic": 8},
        {"name": SERVICE, "group": "市级部门网站", "platform": "igi", "mailboxes": ["leader"],
         "slug": "jy", "traffic": 20},
        {"name": PROVINCE, "group": "市级部门网站", "platform": "hdjlpt", "mailboxes": ["leader"],
         "slug": "ga", "traffic": 20},
    ],
}
TITLE = "关于小区停车收费标准的咨询"
LETTER = {"xm": "王晓明", "sj": "13812345678", "email": "wxm@example.com", "lx": "咨询",
          "dx": "主要领导", "bt": TITLE, "nr": "您好：\n请问本市住宅小区停车收费标准在哪里可以查到？谢谢！",
          "gk": "1"}
CALENDAR = WorkCalendar()


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def get(url: str) -> str:
    return urlopen(url, timeout=10).read().decode("utf-8")


def list_data(sb: Sandbox, site: str = CITY, mailbox: str = "leader", **query) -> dict:
    js = get(f"{sb.base_url(site)}/{mailbox}/list/data.js?{urlencode(query)}")
    assert js.startswith("var listData = ") and js.endswith(";\n")
    return json.loads(js.removeprefix("var listData = ").removesuffix(";\n"))


def submit_jact(sb: Sandbox, site: str = CITY, mailbox: str = "leader", **over) -> tuple[str, str]:
    """Agreement then form, as plain HTTP posts; (办件编号, 查询码)."""
    base = f"{sb.base_url(site)}/{mailbox}"
    form = urlopen(Request(f"{base}/write", data=b"agree=1")).read().decode()
    token = re.search(r'id="yzmKey" value="([^"]+)"', form)[1]
    data = {**LETTER, **over, "agree": "1", "yzmKey": token, "yzm": ""}
    page = urlopen(Request(f"{base}/submit", data=urlencode(data).encode())).read().decode()
    return re.search(r'id="bjbh">(\d+)<', page)[1], re.search(r'id="cxm">(\w+)<', page)[1]


def query_jact(sb: Sandbox, code: str, secret: str, site: str = CITY, mailbox: str = "leader") -> str:
    data = urlencode({"bjbh": code, "cxm": secret}).encode()
    return urlopen(Request(f"{sb.base_url(site)}/{mailbox}/query", data=data)).read().decode()


def all_rows(sb: Sandbox, site: str = CITY, mailbox: str = "leader", **query) -> list[dict]:
    first = list_data(sb, site, mailbox, page=1, **query)
    rows = list(first["rows"])
    for page in range(2, first["pages"] + 1):
        rows += list_data(sb, site, mailbox, page=page, **query)["rows"]
    assert len(rows) == first["total"]
    return rows


def page_of(sb: Sandbox, code: str, site: str = CITY, mailbox: str = "leader") -> int | None:
    """Which page of the public list shows the letter, walking the pages as a reader does."""
    page = 1
    while True:
        data = list_data(sb, site, mailbox, page=page)
        if any(r["bjbh"] == code for r in data["rows"]):
            return page
        if page >= data["pages"]:
            return None
        page += 1


def arrived_by_end_of(day: date, per_workday: int) -> int:
    """Letters a mailbox has received from HISTORY_DAYS before the campaign through `day`."""
    d, n = START.date() - timedelta(days=HISTORY_DAYS), 0
    while d <= day:
        n += per_workday if CALENDAR.is_workday(d) else rest_day_count(per_workday)
        d += timedelta(days=1)
    return n


@pytest.fixture
def clock():
    return SimClock(START)


@pytest.fixture
def sb(clock):
    with Sandbox(roster_from_dict(ROSTER), clock) as s:
        yield s


# -- the jact list --------------------------------------------------------------------------------

def test_after_two_simulated_days_the_list_holds_the_expected_letters(sb, clock):
    clock.set(at(2024, 4, 27, 23, 59, 59))          # the end of the 2nd simulated day of the campaign
    letters = sb.traffic(CITY, "leader")
    # 40 on each working day, 10 on each rest day, from 03-27 (30 days before submit_at)
    assert len(letters) == arrived_by_end_of(date(2024, 4, 27), 40) == 980
    public = [x for x in letters if x.public]
    assert 0.85 * len(letters) < len(public) < len(letters)      # a few writers said 是否公开 = 否
    data = list_data(sb, page=1)
    assert data["total"] == len(public) == 925        # the same on any machine, in any process
    assert data["pages"] == -(-len(public) // 15) and len(data["rows"]) == 15
    assert sb.received() == []                         # nobody wrote through a form


def test_the_list_is_newest_first_across_pages_with_nothing_twice(sb, clock):
    clock.set(at(2024, 4, 28, 12, 0))
    rows = all_rows(sb)
    keys = [(r["submitDate"], r["bjbh"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert len({r["bjbh"] for r in rows}) == len(rows)
    expected = sorted((x for x in sb.traffic(CITY, "leader") if x.public),
                      key=lambda x: x.received_at, reverse=True)
    assert [r["bjbh"] for r in rows] == [x.tracking_code for x in expected]
    # statuses follow each letter's own fate, on the list as on the query page
    by_code = {x.tracking_code: x for x in expected}
    for r in rows[:60]:
        x = by_code[r["bjbh"]]
        assert r["title"] == x.title
        if x.reply_at is not None and x.reply_at <= clock.now():
            assert (r["status"], r["replyDate"]) == ("已办结", f"{x.reply_at:%Y-%m-%d}")
        else:
            assert r["status"] in ("待处理", "办理中") and r["replyDate"] == ""
    # a page past the end is empty, as the list ended
    past = list_data(sb, page=len(rows) // 15 + 2)
    assert past["rows"] == [] and past["total"] == len(rows)


def test_a_test_letter_is_on_page_1_then_slides_back_and_is_still_answered(sb, clock):
    code, secret = submit_jact(sb)
    # Its number comes after every jact letter of the day so far (both mailboxes of the city).
    before = [x for x in sb.traffic(CITY) if x.received_at.date() == START.date()]
    assert code == tracking_code("jact", START, len(before) + 1)
    assert parse_code("jact", code) == (START.date(), len(before) + 1)
    first = list_data(sb, page=1)["rows"][0]
    assert (first["bjbh"], first["title"], first["status"]) == (code, TITLE, "待处理")
    assert page_of(sb, code) == 1
    # Two days later other citizens have written dozens of letters: it is further back.
    clock.set(at(2024, 4, 28, 12, 0))
    page = page_of(sb, code)
    assert page is not None and page >= 2
    row = next(r for r in list_data(sb, page=page)["rows"] if r["bjbh"] == code)
    assert (row["status"], row["replyDate"]) == ("已办结", "2024-04-28")   # 1st working day, 10:30
    html = query_jact(sb, code, secret)
    assert 'id="queryResult"' in html and f">{TITLE}<" in html and "已办结" in html
    # The test's letter is the only one the sandbox received; traffic is never "received".
    assert [x.tracking_code for x in sb.received()] == [code]
    # The letters after it that day are numbered after it.
    later = [x for x in sb.traffic(CITY) if x.received_at.date() == START.date() and x.received_at > START]
    assert later and min(parse_code("jact", x.tracking_code)[1] for x in later) == len(before) + 2


def test_codes_are_one_daily_counter_shared_by_the_platform(sb, clock):
    clock.set(at(2024, 4, 26, 18, 0))
    quiet, _ = submit_jact(sb, site=QUIET)           # a jact site without traffic of its own
    day = [x for x in sb.traffic(CITY) if x.received_at.date() == START.date()]
    numbers = sorted([parse_code("jact", x.tracking_code)[1] for x in day]
                     + [parse_code("jact", quiet)[1]])
    assert numbers == list(range(1, len(day) + 2))   # no gap, no number twice
    assert parse_code("jact", quiet)[1] == len(day) + 1
    # each site's letters only on its own list
    assert [r["bjbh"] for r in list_data(sb, site=QUIET)["rows"]] == [quiet]


def test_traffic_letters_are_answered_by_the_query_page_with_their_own_codes(sb, clock):
    clock.set(at(2024, 4, 29, 9, 0))
    letters = sb.traffic(CITY, "leader")
    private = next(x for x in reversed(letters) if not x.public)
    answered = next(x for x in letters if x.reply_at is not None and x.reply_at < clock.now())
    for x in (private, answered):
        html = query_jact(sb, x.tracking_code, x.secret)
        assert 'id="queryResult"' in html and f'id="resTitle">{x.title}<' in html
        assert x.target in ("主要领导", "分管领导", "办公室", "相关业务科室") and x.kind
    assert "已办结" in query_jact(sb, answered.tracking_code, answered.secret)
    assert 'id="noResult"' in query_jact(sb, answered.tracking_code, "WRONG2")
    assert 'id="noResult"' in query_jact(sb, answered.tracking_code, answered.secret, mailbox="mayor")
    # A code of today not handed out yet (a letter that has not arrived) is not found.
    today = [parse_code("jact", x.tracking_code)[1] for x in sb.traffic(CITY)
             if x.received_at.date() == clock.now().date()]
    nxt = tracking_code("jact", clock.now(), max(today, default=0) + 1)
    assert all(x.tracking_code != nxt for x in sb.traffic(CITY))
    assert 'id="noResult"' in query_jact(sb, nxt, answered.secret)
    # never part of what the sandbox received
    assert sb.received() == []


def test_the_list_searches_titles(sb, clock):
    code, _ = submit_jact(sb)
    clock.set(at(2024, 4, 28, 12, 0))
    found = list_data(sb, key="停车收费")
    assert found["key"] == "停车收费" and found["rows"][0]["bjbh"] == code
    assert all("停车收费" in r["title"] for r in all_rows(sb, key="停车收费"))
    crossings = all_rows(sb, key="交叉口增设")      # anywhere in the title, as typed
    assert crossings and all("交叉口增设" in r["title"] for r in crossings)
    assert list_data(sb, key="建议 交叉口")["total"] == 0     # not split into words
    assert list_data(sb, key="没有这样的标题")["rows"] == []
    assert list_data(sb, key="没有这样的标题")["total"] == 0
    assert list_data(sb, key="  ")["total"] == list_data(sb)["total"]


def test_the_list_page_draws_rows_and_a_pager_that_keeps_the_search(sb, clock, page):
    clock.set(at(2024, 4, 28, 12, 0))
    total = list_data(sb)["total"]
    pages = -(-total // 15)
    page.set_default_timeout(5000)
    page.goto(f"{sb.base_url(CITY)}/leader/list")
    expect(page.locator("#letterList")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#listBody tr.list-row")).to_have_count(15)
    expect(page.locator("#pager")).to_contain_text(f"共{total}条 第1/{pages}页")
    expect(page.locator("#totalCount")).to_have_text(str(total))
    expect(page.locator("#pageCount")).to_have_text(str(pages))
    expect(page.locator("#pager a.prev, #pager a.first")).to_have_count(0)
    first_code = page.locator("#listBody tr.list-row").first.get_attribute("data-bjbh")
    page.click("#pager a.next")
    expect(page.locator("#pageNo")).to_have_text("2")
    expect(page.locator("#letterList")).to_have_attribute("data-loaded", "1")
    expect(page.locator(f"#listBody tr[data-bjbh='{first_code}']")).to_have_count(0)
    page.click("#pager a.last")
    expect(page.locator("#pageNo")).to_have_text(str(pages))
    expect(page.locator("#pager a.next, #pager a.last")).to_have_count(0)
    # the search box: its results page through with the words kept
    page.fill("#key", "建议")
    page.click("#btnSearch")
    expect(page.locator("#letterList")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#key")).to_have_value("建议")
    for title in page.locator("#listBody td.title").all_inner_texts():
        assert "建议" in title
    page.click("#pager a.next")
    expect(page.locator("#pageNo")).to_have_text("2")
    assert "key=%E5%BB%BA%E8%AE%AE" in page.url
    expect(page.locator("#listBody td.title").first).to_contain_text("建议")


# -- the other archetypes ---------------------------------------------------------------------------

def test_minimal_and_legacy_have_no_list_but_answer_their_codes(sb, clock):
    clock.set(at(2024, 4, 26, 16, 0))
    assert urlopen_status(f"{sb.base_url(BUREAU)}/leader/list") == 404
    x = sb.traffic(BUREAU)[-1]
    assert re.fullmatch(r"C20240426\d{4}", x.tracking_code) and x.kind in ("咨询", "投诉", "建议")
    html = get(f"{sb.base_url(BUREAU)}/leader/search.php?code={x.tracking_code.lower()}")
    assert f'id="resultTitle">{x.title}<' in html
    y = sb.traffic(COUNTY)[-1]
    assert re.fullmatch(r"240426\d{6}", y.tracking_code) and y.kind == "" and y.email == ""
    base = f"{sb.base_url(COUNTY)}/leader/Query.aspx"
    vs = re.search(r'id="__VIEWSTATE" value="([^"]+)"', urlopen(base).read().decode("gbk"))[1]
    p = "ctl00$MainContent$"
    data = urlencode({"__VIEWSTATE": vs, p + "txtCode": y.tracking_code, p + "txtPassword": y.secret,
                      p + "btnQuery": "查 询"}, encoding="gbk").encode()
    html = urlopen(Request(base, data=data)).read().decode("gbk")
    assert 'id="ctl00_MainContent_tblResult"' in html and y.title in html


def test_igi_list_pages_through_traffic_and_its_detail_pages(sb, clock):
    clock.set(at(2024, 4, 28, 12, 0))
    api = f"{sb.base_url(SERVICE)}/leader/api/letter/list"
    one = json.loads(get(f"{api}?page=1&size=15"))["data"]
    public = [x for x in sb.traffic(SERVICE) if x.public]
    assert one["total"] == len(public) and len(one["list"]) == 15
    newest = sorted(public, key=lambda x: x.received_at, reverse=True)
    assert [r["cxbh"] for r in one["list"]] == [x.tracking_code for x in newest[:15]]
    two = json.loads(get(f"{api}?page=2&size=50"))["data"]
    assert [r["cxbh"] for r in two["list"]] == [x.tracking_code for x in newest[50:100]]
    x = newest[3]
    html = get(f"{sb.base_url(SERVICE)}/leader/detail/{x.tracking_code}.html")
    assert f'id="detailTitle">{x.title}<' in html
    private = next(y for y in sb.traffic(SERVICE) if not y.public)
    assert urlopen_status(f"{sb.base_url(SERVICE)}/leader/detail/{private.tracking_code}.html") == 404
    req = Request(f"{sb.base_url(SERVICE)}/leader/api/letter/detail",
                  data=json.dumps({"cxbh": private.tracking_code}).encode(),
                  headers={"Content-Type": "application/json"})
    assert json.loads(urlopen(req).read())["data"]["title"] == private.title


def test_hdjlpt_list_service_counts_and_pages_traffic(sb, clock):
    clock.set(at(2024, 4, 28, 12, 0))
    opener = build_opener(HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"{sb.base_url(PROVINCE)}/leader"
    html = opener.open(f"{base}/public").read().decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)[1]

    def rows(offset, limit):
        req = Request(f"{base}/list", data=json.dumps({"offset": offset, "limit": limit}).encode(),
                      headers={"Content-Type": "application/json", "X-CSRF-TOKEN": token})
        return json.loads(opener.open(req).read())

    public = sorted((x for x in sb.traffic(PROVINCE) if x.public), key=lambda x: x.received_at, reverse=True)
    first = rows(0, 10)
    assert first["total"] == len(public)
    assert [r["letter_no"] for r in first["rows"]] == [x.tracking_code for x in public[:10]]
    assert [r["letter_no"] for r in rows(95, 10)["rows"]] == [x.tracking_code for x in public[95:105]]
    x = public[0]
    assert first["rows"][0]["created_at"] == int(x.received_at.timestamp())


# -- determinism, traffic = 0, the wording ------------------------------------------------------------

def test_two_sandboxes_with_the_same_roster_and_clock_show_the_same_letters():
    when = at(2024, 4, 29, 15, 0)
    seen = []
    for _ in range(2):
        with Sandbox(roster_from_dict(ROSTER), SimClock(when)) as s:
            seen.append(([list_data(s, page=p) for p in (1, 2, 7)],
                         {site["name"]: s.traffic(site["name"]) for site in ROSTER["site"]}))
    assert seen[0] == seen[1]
    assert len(seen[0][1][CITY]) > 1000


def test_concurrent_first_requests_see_what_one_reader_sees():
    """The server is threaded: readers racing to draw the same days agree with a lone reader,
    and letters sent at once get distinct numbers among the traffic's."""
    when = at(2024, 4, 26, 15, 0)
    with Sandbox(roster_from_dict(ROSTER), SimClock(when)) as lone:
        expected = [list_data(lone, page=p) for p in range(1, 9)]
    with Sandbox(roster_from_dict(ROSTER), SimClock(when)) as s, ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda p: list_data(s, page=p), range(1, 9))) == expected
        sent = list(pool.map(lambda i: submit_jact(s, bt=f"关于第{i}号路口信号灯配时的建议"), range(6)))
        codes = [code for code, _ in sent]
        day = [x.tracking_code for x in s.traffic(CITY) if x.received_at.date() == when.date()]
        numbers = sorted(parse_code("jact", c)[1] for c in codes + day)
        assert numbers == list(range(1, len(day) + 7))
        assert sorted(x.tracking_code for x in s.received()) == sorted(codes)


def test_traffic_0_leaves_everything_as_it_was(clock):
    quiet = {**ROSTER, "site": [{**site, "traffic": 0} for site in ROSTER["site"]]}
    with Sandbox(roster_from_dict(quiet), clock) as s:
        assert list_data(s)["total"] == 0
        code, _ = submit_jact(s)
        assert code == "2024042600001"
        clock.set(at(2024, 4, 28, 12, 0))
        assert [r["bjbh"] for r in list_data(s)["rows"]] == [code]
        assert all(s.traffic(site["name"]) == [] for site in quiet["site"])
        minimal = get(f"{s.base_url(BUREAU)}/leader/search.php?code=C202404260001")
        assert 'id="notFound"' in minimal


def test_traffic_letters_read_like_letters_and_fit_their_forms(sb, clock):
    clock.set(at(2024, 4, 26, 23, 59))
    letters = [x for site in ROSTER["site"] for x in sb.traffic(site["name"])]
    assert len({x.title for x in letters}) > 100
    for x in letters:
        assert 10 <= len(x.title) <= 25 and not set(x.title) & set("'\"\\\n")
        assert 20 <= len(x.body) <= 1000 and re.fullmatch(r"1[3-9]\d{9}", x.phone)
        assert 2 <= len(x.name) <= 4
    hours = [x.received_at.hour for x in letters if x.received_at.date() == date(2024, 4, 25)]
    office = sum(1 for h in hours if 8 <= h < 18)
    assert office > len(hours) / 2 and office < len(hours)      # mostly office hours, some evenings
    # the sandbox's own bank, not the product's letter writer
    assert len(TOPICS) >= 30 and "import bot.letters" not in inspect.getsource(traffic) \
        and "from bot.letters" not in inspect.getsource(traffic)


@pytest.mark.parametrize("platform", sorted(CODE_ROOM))
def test_the_rosters_code_room_is_the_width_of_each_platforms_codes(platform):
    day = date(2024, 4, 26)
    assert parse_code(platform, tracking_code(platform, day, CODE_ROOM[platform])) == (day, CODE_ROOM[platform])
    assert parse_code(platform, tracking_code(platform, day, CODE_ROOM[platform] + 1)) is None


def urlopen_status(url: str) -> int:
    from urllib.error import HTTPError

    try:
        return urlopen(url).status
    except HTTPError as e:
        return e.code
