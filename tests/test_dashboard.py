"""`mailbox-bot serve` in the real Chromium (pytest-playwright's `page`): the dashboard over the
two small campaigns of `trend_demo`, started for real by the CLI on a free loopback port.

A copy of the demo's database gets what a hostile site could make us store: a reply text with a
script tag and a `javascript:` link (recorded through `reply record`, the inspector's own door),
and an evidence page with a script (saved through the product's evidence store)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HOSTILE_NOTE = ('<script>window.__pwned = 1; alert("note")</script>'
                '<a href="javascript:alert(2)" id="evil">点我</a><img src=x onerror="alert(3)">')
HOSTILE_PAGE = (b"<html><head><title>evidence</title></head><body><p id=p>hostile page</p>"
                b"<script>alert('evidence'); try { window.top.document.title = 'PWNED'; } catch (e) {}"
                b"window.parent.__pwned = 1;</script></body></html>")


def _start(args: list[str], env: dict, cwd: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"on (http://\S+/)", line)
    if not m:
        proc.kill()
        raise AssertionError(f"serve did not start: {line}{proc.stderr.read()}")
    return proc, m.group(1)


@pytest.fixture(scope="module")
def dashboard(trend_demo, tmp_path_factory):
    from bot.store import models as m
    from bot.store.db import Database
    from bot.store.evidence import EvidenceStore

    root, out, _ = trend_demo
    work = tmp_path_factory.mktemp("dash")
    db_file = work / "dash.sqlite3"
    shutil.copy(out / "demo.sqlite3", db_file)
    shutil.copytree(out / "evidence", work / "evidence")
    url = f"sqlite:///{db_file}"
    env = {**{k: v for k, v in os.environ.items() if k not in ("MAILBOX_BOT_CONFIG", "MAILBOX_BOT_DASHBOARD_PASSWORD")},
           "MAILBOX_BOT_DATABASE_URL": url}

    db = Database(url)
    with db.session() as s:
        from sqlalchemy import select

        qb = s.scalar(select(m.Campaign).where(m.Campaign.name == "QB"))
        letters = {l.mailbox.site.key: l for l in s.scalars(select(m.Letter).where(m.Letter.campaign_id == qb.id))}
        hostile_letter, page_letter = letters["bing"].id, letters["jia"].id
        saved = EvidenceStore(work / "evidence").save("html", "hostile-test", HOSTILE_PAGE, "html")
        row = m.EvidenceFile.of(saved, page_letter, letters["jia"].submitted_at)
        s.add(row)
        s.commit()
        evidence_id = row.id
    db.engine.dispose()
    rec = subprocess.run([sys.executable, "-m", "bot", "reply", "record", str(hostile_letter), "--at",
                          "2024-07-15T10:00:00+08:00", "--channel", "phone", "--note", HOSTILE_NOTE],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert rec.returncode == 0, rec.stderr
    digest = hashlib.sha256(db_file.read_bytes()).hexdigest()

    proc, base = _start(["--port", "0", "--evidence-dir", str(work / "evidence")], env, work)
    try:
        yield {"base": base, "hostile_letter": hostile_letter, "evidence_id": evidence_id, "env": env,
               "work": work, "db_file": db_file, "digest": digest}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def dialogs(page):
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


def test_index_lists_the_campaigns_with_their_progress(dashboard, page, dialogs):
    page.goto(dashboard["base"])
    rows = page.locator("#campaigns tr.campaign")
    assert rows.count() == 2
    assert rows.nth(0).locator("a").inner_text() == "QA" and rows.nth(1).locator("a").inner_text() == "QB"
    assert "replied" in rows.nth(0).inner_text()
    page.get_by_role("link", name="QB").click()
    page.wait_for_url("**/campaign/QB")
    assert page.locator("#rows tr.row").count() == 3
    assert "宝鸡市测试丙中心" in page.locator("#rows").inner_text()
    assert page.locator("svg.chart").count() >= 2          # histogram and per-group chart, inline
    assert dialogs == []


def test_a_filter_narrows_the_rows(dashboard, page):
    page.goto(dashboard["base"] + "campaign/QA")
    assert page.locator("#rows tr.row").count() == 3
    page.select_option("select[name=status]", "no_reply")
    page.click("#apply")
    page.wait_for_url("**status=no_reply**")
    rows = page.locator("#rows tr.row")
    assert rows.count() == 1 and "宝鸡市测试丙中心" in rows.inner_text()
    page.select_option("select[name=status]", "")
    page.select_option("select[name=group]", "政府门户网站")
    page.click("#apply")
    page.wait_for_url("**group=**")
    assert page.locator("#rows tr.row").count() == 1
    assert page.locator("#shown").inner_text() == "1"


def test_a_hostile_reply_text_does_nothing(dashboard, page, dialogs):
    for path in (f"letter/{dashboard['hostile_letter']}", "campaign/QB"):
        page.goto(dashboard["base"] + path)
        text = page.locator("main").inner_text()
        assert '<script>window.__pwned = 1; alert("note")</script>' in text     # shown as text
        assert page.locator("main script").count() == 0
        assert page.locator("a[href^='javascript:' i]").count() == 0
        assert page.locator("#evil").count() == 0 and page.locator("img[src=x]").count() == 0
        page.get_by_text("点我", exact=False).first.click()
        assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []


def test_evidence_html_is_not_run_in_the_dashboards_origin(dashboard, page, dialogs):
    page.goto(dashboard["base"] + f"evidence/{dashboard['evidence_id']}")
    assert "alert('evidence')" in page.locator("#source").inner_text()      # the source, as text
    frame = page.frame_locator("iframe.evidence")
    assert frame.locator("#p").inner_text() == "hostile page"               # the page, framed
    assert page.locator("iframe.evidence").get_attribute("sandbox") == ""
    page.wait_for_timeout(300)
    assert page.title() != "PWNED" and page.evaluate("typeof window.__pwned") == "undefined"
    raw = page.request.get(dashboard["base"] + f"evidence/{dashboard['evidence_id']}/raw")
    assert raw.headers["content-security-policy"].startswith("sandbox")
    # Opened on its own, the raw page is sandboxed too: no script runs.
    page.goto(dashboard["base"] + f"evidence/{dashboard['evidence_id']}/raw")
    assert page.title() == "evidence"
    assert dialogs == []


def test_the_trend_page_and_the_letter_timeline(dashboard, page, dialogs):
    page.goto(dashboard["base"] + "trend")
    # In this copy 丙's QB letter got a reply by phone (the hostile note): it failed once, and improved.
    assert page.locator("#repeat").inner_text().strip() == "无"
    assert page.locator("#changes tr.improved").count() == 2 and page.locator("#changes tr.regressed").count() == 1
    assert "宝鸡市测试丙中心" in page.locator("#changes tr.improved").nth(1).inner_text()
    assert page.locator("svg.chart").count() >= 2
    page.goto(dashboard["base"] + f"letter/{dashboard['hostile_letter']}")
    kinds = page.locator("#timeline tr.item").evaluate_all("rows => rows.map(r => r.className)")
    assert any("submission" in k for k in kinds) and any("observation" in k for k in kinds)
    assert dialogs == []


def test_the_dashboard_wrote_nothing(dashboard, page):
    page.goto(dashboard["base"])
    assert hashlib.sha256(dashboard["db_file"].read_bytes()).hexdigest() == dashboard["digest"]
    assert page.request.post(dashboard["base"]).status == 405


def test_a_non_loopback_bind_without_a_password_is_refused(run_cli):
    from conftest import one_line_error

    proc = run_cli("serve", "--host", "0.0.0.0", "--port", "0", env={"MAILBOX_BOT_DASHBOARD_PASSWORD": ""})
    one_line_error(proc, "0.0.0.0", "MAILBOX_BOT_DASHBOARD_PASSWORD", empty_stdout=True)


def test_a_non_loopback_bind_requires_the_password(dashboard):
    import httpx

    env = {**dashboard["env"], "MAILBOX_BOT_DASHBOARD_PASSWORD": "s3cret-pw"}
    proc, base = _start(["--host", "0.0.0.0", "--port", "0"], env, dashboard["work"])
    try:
        local = base.replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(local, timeout=20).status_code == 401
        assert httpx.get(local, auth=("x", "wrong"), timeout=20).status_code == 401
        ok = httpx.get(local, auth=("inspector", "s3cret-pw"), timeout=20)
        assert ok.status_code == 200 and "QB" in ok.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_database_that_needs_migrating_is_left_as_it_is(run_cli, db_url):
    """The dashboard writes nothing, migrations included: an older schema is one line."""
    from conftest import one_line_error

    from bot.store.db import Database, upgrade

    db = Database(db_url)
    upgrade(db.engine, "0007")
    db.dispose()
    path = db_url.removeprefix("sqlite:///")
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    proc = run_cli("serve", "--port", "0")
    one_line_error(proc, "0007", "mailbox-bot db upgrade", empty_stdout=True)
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before
