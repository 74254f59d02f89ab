"""The sandbox as a whole, over plain HTTP: routing, the bundled roster, GETs that change
nothing, what `received()` counts, concurrency, the clock, behaviour rules and the CLI."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from bot.calendar import WorkCalendar
from bot.clock import SHANGHAI, SimClock
from bot.sandbox.roster import PLATFORMS, default_roster_path, load_roster, roster_from_dict
from bot.sandbox import Sandbox, Status
from bot.sandbox.behaviour import Behaviour
from bot.sandbox.platforms import ARCHETYPES

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)


def without_faults(roster):
    """The bundled roster with its faults and login switched off: these tests are about every
    site's pages; the faults have tests of their own (tests/test_faults.py)."""
    calm = [s.model_copy(update={"challenge": 0.0, "flaky": 0.0, "latency_ms": 0, "login": False})
            for s in roster.site]
    return roster.model_copy(update={"site": calm})


@pytest.fixture(scope="module")
def baoji():
    clock = SimClock(START)
    with Sandbox(without_faults(load_roster(default_roster_path())), clock) as sb:
        yield sb


def get(url: str):
    try:
        resp = urlopen(url)
        return resp.status, resp.headers, resp.read()
    except HTTPError as e:
        return e.code, e.headers, e.read()


def mailbox_entry(sb, site) -> str:
    return {"jact": "", "legacy": "Default.aspx", "minimal": "index.php", "igi": "", "hdjlpt": ""}[site.platform]


def test_every_archetype_the_roster_allows_exists():
    assert set(PLATFORMS) == set(ARCHETYPES)


def test_index_lists_every_site(baoji):
    status, headers, body = get(f"{baoji.url}/")
    html = body.decode()
    assert status == 200
    assert html.count('class="site-row"') == 54
    assert html.index("宝鸡市人民政府") < html.index("宝鸡市应急管理局")


def test_every_site_and_mailbox_answers_with_its_own_header(baoji):
    for site in baoji.roster.site:
        status, _, body = get(f"{baoji.base_url(site.name)}/")
        assert status == 200 and site.name in body.decode()
        for mb in site.mailboxes:
            status, headers, body = get(f"{baoji.base_url(site.name)}/{mb}/{mailbox_entry(baoji, site)}")
            charset = headers.get_content_charset()
            text = body.decode(charset)
            assert status == 200, (site.name, mb)
            assert site.name in text and baoji.mailbox_label(site.name, mb) in text
        if "mayor" not in site.mailboxes:
            assert get(f"{baoji.base_url(site.name)}/mayor/")[0] == 404


def test_mayor_mailbox_labels(baoji):
    assert baoji.mailbox_label("宝鸡市人民政府", "mayor") == "市长信箱"
    assert baoji.mailbox_label("渭滨区人民政府", "mayor") == "区长信箱"
    assert baoji.mailbox_label("陇县人民政府", "mayor") == "县长信箱"
    assert baoji.mailbox_label("宝鸡高新技术产业开发区管理委员会", "mayor") == "区长信箱"
    assert baoji.mailbox_label("宝鸡市应急管理局", "leader") == "领导信箱"


@pytest.mark.parametrize("path", ["/nope/", "/bj/leader/nope", "/bj/secretary/", "/qishan/leader/List.aspx",
                                  "/chencang/leader/admin.php", "/favicon.ico", "/bj/leader/list/x.js"])
def test_unknown_paths_are_404(baoji, path):
    assert get(f"{baoji.url}{path}")[0] == 404


def test_base_url_and_unknown_site(baoji):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/yjglj", baoji.base_url("宝鸡市应急管理局"))
    with pytest.raises(KeyError):
        baoji.base_url("不存在的网站")


def test_get_requests_never_create_letters(baoji):
    before = len(baoji.received())
    urls = [f"{baoji.url}/"]
    for site in baoji.roster.site:
        base = baoji.base_url(site.name)
        urls.append(f"{base}/")
        for mb in site.mailboxes:
            m = f"{base}/{mb}"
            urls += {"jact": [f"{m}/", f"{m}/write", f"{m}/submit", f"{m}/query", f"{m}/list",
                              f"{m}/list/data.js?page=1", f"{m}/captcha.png?t=x",
                              f"{m}/submit?xm=a&sj=13812345678&bt=0123456789&nr=x&agree=1"],
                     "legacy": [f"{m}/", f"{m}/Default.aspx", f"{m}/Query.aspx"],
                     "minimal": [f"{m}/", f"{m}/index.php", f"{m}/save.php", f"{m}/search.php",
                                 f"{m}/search.php?code=C202404260001",
                                 f"{m}/save.php?name=a&mobile=13812345678&email=a@b.cn&title=t&content=c"],
                     "igi": [f"{m}/", f"{m}/query", f"{m}/list", f"{m}/api/letter/list?page=1&size=10",
                             f"{m}/api/captcha?t=x", f"{m}/api/letter/submit", f"{m}/api/letter/detail"],
                     "hdjlpt": [f"{m}/", f"{m}/search", f"{m}/public", f"{m}/letter", f"{m}/list",
                                f"{m}/captcha/default?1"],
                     }[site.platform]
    for url in urls:
        assert get(url)[0] in (200, 302, 404, 405), url
    assert len(baoji.received()) == before


def test_head_requests_send_no_body(baoji):
    req = Request(f"{baoji.base_url('宝鸡市人民政府')}/leader/", method="HEAD")
    resp = urlopen(req)
    assert resp.status == 200 and resp.read() == b"" and int(resp.headers["Content-Length"]) > 0


def test_date_header_follows_the_injected_clock(baoji):
    _, headers, _ = get(f"{baoji.url}/")
    assert headers["Date"] == "Fri, 26 Apr 2024 02:00:00 GMT"


def _minimal_submit(sb, site_name, n):
    data = urlencode({"type": "咨询", "name": f"市民{n}", "mobile": "13912345678",
                      "email": "a@example.com", "title": f"测试信件{n}", "content": "内容"}).encode()
    html = urlopen(Request(f"{sb.base_url(site_name)}/leader/save.php", data=data)).read().decode()
    return re.search(r'id="code">(C\d+)<', html)[1]


def test_concurrent_submissions_are_all_counted_with_unique_codes():
    roster = roster_from_dict({
        "campaign": {"name": "t", "submit_at": "2024-04-26T10:00:00", "end_at": "2024-05-01T00:00:00"},
        "site": [{"name": f"测试局{i}", "group": "市级部门网站", "platform": "minimal",
                  "mailboxes": ["leader"]} for i in range(8)]})
    with Sandbox(roster, SimClock(START)) as sb:
        codes: list[str] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            for n in range(5):
                code = _minimal_submit(sb, f"测试局{i}", n)
                with lock:
                    codes.append(code)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(codes) == 40 and len(set(codes)) == 40
        assert len(sb.received()) == 40
        assert len(sb.received("测试局3")) == 5
        assert {x.tracking_code for x in sb.received()} == set(codes)
        assert sb.received("测试局3")[0].received_at == START


def test_stop_frees_the_port_and_start_twice_is_harmless():
    roster = load_roster(default_roster_path())
    sb = Sandbox(roster, SimClock(START))
    with pytest.raises(RuntimeError):
        sb.url
    sb.start()
    sb.start()
    url = sb.url
    assert get(f"{url}/")[0] == 200
    sb.stop()
    sb.stop()
    with pytest.raises(OSError):
        urlopen(f"{url}/", timeout=2)


# -- behaviour -----------------------------------------------------------------------------

def _timeline(site_name: str, received: datetime):
    roster = load_roster(default_roster_path())
    return Behaviour(roster.by_name(site_name), WorkCalendar()).timeline(received)


def test_reply_times_follow_working_days():
    s = datetime(2024, 4, 26, 10, 12, tzinfo=SHANGHAI)
    assert _timeline("宝鸡市人民政府", s).reply_at == datetime(2024, 4, 26, 15, 30, tzinfo=SHANGHAI)
    assert _timeline("金台区人民政府", s).reply_at.date() == date(2024, 4, 28)      # make-up Sunday
    assert _timeline("岐山县人民政府", s).reply_at.date() == date(2024, 5, 6)       # after May Day
    assert _timeline("宝鸡市应急管理局", s).reply_at == datetime(2024, 5, 9, 10, 30, tzinfo=SHANGHAI)
    assert _timeline("宝鸡港务区管理委员会", s).reply_at is None
    t = _timeline("宝鸡市文化和旅游局", s)
    assert t.reply_at is None and t.delete_at == datetime(2024, 4, 29, 9, 0, tzinfo=SHANGHAI)
    t = _timeline("宝鸡市住房和城乡建设局", s)
    assert t.reply_at == datetime(2024, 4, 30, 10, 30, tzinfo=SHANGHAI)
    assert t.displayed_reply_at == datetime(2024, 4, 29, 10, 30, tzinfo=SHANGHAI)


def test_status_sequence():
    s = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)
    t = _timeline("宝鸡市人民政府", s)
    assert t.status(s) is Status.PENDING
    assert t.status(s + timedelta(minutes=59)) is Status.PENDING
    assert t.status(s + timedelta(hours=1)) is Status.IN_PROGRESS
    assert t.status(datetime(2024, 4, 26, 15, 30, tzinfo=SHANGHAI)) is Status.FINISHED
    gone = _timeline("宝鸡市文化和旅游局", s)
    assert gone.status(datetime(2024, 4, 29, 9, 0, tzinfo=SHANGHAI)) is Status.GONE


def test_late_submission_replies_half_an_hour_later():
    s = datetime(2024, 4, 26, 16, 0, tzinfo=SHANGHAI)      # after the 15:30 same-day reply time
    assert _timeline("宝鸡市人民政府", s).reply_at == s + timedelta(minutes=30)


def test_bundled_roster_plays_out_as_the_notice_says():
    """Submitting every mailbox between 10:00 and 10:30 gives the notice's numbers."""
    roster = load_roster(default_roster_path())
    cal = WorkCalendar()
    within = same_day = deleted = 0
    for i, site in enumerate(roster.site):
        verdicts = []
        for j, _ in enumerate(site.mailboxes):
            s = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI) + timedelta(seconds=15 * (2 * i + j))
            t = Behaviour(site, cal).timeline(s)
            if t.reply_at is None:
                verdicts.append((False, False))
                continue
            b = cal.between(s, t.reply_at, 5)
            verdicts.append((b.within_deadline, b.same_day))
        within += all(v[0] for v in verdicts)
        same_day += all(v[1] for v in verdicts)
        deleted += site.delete is not None
    assert (len(roster.site), within, same_day, deleted) == (54, 51, 20, 1)


# -- CLI -----------------------------------------------------------------------------------

def test_cli_serve_prints_urls_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli.sandbox_cmd import app; app()", "serve", "--port", "0",
         "--start", "2024-04-26T10:00:00+08:00"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        # As from a terminal: a pytest-xdist worker ignores SIGINT, and a child inherits that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        assert "54 sites" in text and "frozen at 2024-04-26 10:00:00 +0800" in text
        url = re.search(r"宝鸡市应急管理局.*?(http://127\.0\.0\.1:\d+/yjglj/leader/)", text)[1]
        status, headers, _ = get(url)
        assert status == 200 and headers["Date"] == "Fri, 26 Apr 2024 02:00:00 GMT"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)     # a loaded machine stops it slower
    assert proc.returncode == 0, err
    assert "stopping" in out
