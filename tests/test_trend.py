"""Quarter after quarter (issue 14): `demo --roster A --roster B` plays two small campaigns into
one database and writes trend.json/.xlsx/.html; `report --trend` reads them back; the rules
(failed, undecided, improved/regressed, site keys) hold. The demo run (`trend_demo`, in
conftest.py: QA then QB) is shared with tests/test_dashboard.py."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import datetime, timezone

import pytest

from bot.report.rows import ReportMeta, ReportRow
from bot.report.trend import Campaign, build, changes, percentile, repeat_failures, trend_dict
from bot.vocab import RowStatus

def test_demo_with_two_rosters_writes_the_trend(trend_demo):
    root, out, proc = trend_demo
    data = json.loads((out / "trend.json").read_text(encoding="utf-8"))
    assert data["campaigns"] == ["QA", "QB"]
    assert {"campaigns", "groups", "sites", "repeat_failures"} <= data.keys()
    by_key = {s["key"]: s for s in data["sites"]}
    assert set(by_key) == {"jia", "yi", "bing"}
    # The renamed site (same key, no new validity period: the one site record, renamed) is one
    # line under its latest name, and failed in both campaigns.
    assert by_key["bing"]["site"] == "宝鸡市测试丙中心"
    assert data["repeat_failures"] == ["宝鸡市测试丙中心"]
    jia = by_key["jia"]["results"]
    assert [(r["campaign"], r["status"], r["working_days"], r["within_deadline"], r["same_day"]) for r in jia] == [
        ("QA", "replied", 0, True, True), ("QB", "replied", 6, False, False)]
    assert [r["working_days"] for r in by_key["yi"]["results"]] == [7, 2]
    assert [(c["site"], c["from"], c["to"]) for c in data["improved"]] == [("宝鸡市测试乙局", "late", "within_deadline")]
    assert [(c["site"], c["from"], c["to"]) for c in data["regressed"]] == [("测试县人民政府", "same_day", "late")]
    qa, qb = data["overall"]
    assert (qa["sites"], qa["decided_sites"], qa["within_deadline_sites"], qa["same_day_sites"], qa["no_reply_sites"]) == (3, 3, 1, 1, 1)
    assert qa["within_deadline_rate"] == round(1 / 3, 4) and qb["within_deadline_rate"] == round(1 / 3, 4)
    assert (qa["median_working_days"], qa["p90_working_days"]) == (0, 7)
    assert [g["group"] for g in data["groups"]] == ["政府门户网站", "市级部门网站"]
    # Each campaign's own table is in a folder of its own.
    for name in ("QA", "QB"):
        assert json.loads((out / name / "report.json").read_text(encoding="utf-8"))["meta"]["campaign"] == name

    # trend.xlsx has native charts next to their data.
    from openpyxl import load_workbook

    wb = load_workbook(out / "trend.xlsx")
    assert sum(len(ws._charts) for ws in wb) >= 2
    assert wb["回复率"]["A3"].value == "QA" and wb["回复率"]["E3"].value == pytest.approx(1 / 3, abs=1e-3)
    with zipfile.ZipFile(out / "trend.xlsx") as z:
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())

    # trend.html: inline SVG, nothing fetched, no script.
    page = (out / "trend.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 2 and "<rect" in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert "宝鸡市测试丙中心" in page

    # The single-campaign report.html: a working-days histogram and a per-group summary.
    single = (out / "QA" / "report.html").read_text(encoding="utf-8")
    assert single.count("<svg") == 1 and "<script" not in single.lower()
    assert single.count('<tr class="group-summary">') == 3          # header, 政府门户网站, 市级部门网站
    assert re.search(r"<th>市级部门网站</th><td>2</td><td>2</td><td>0</td><td>0</td><td>0</td><td>1</td>", single)


def test_report_trend_through_the_cli(trend_demo, run_cli, tmp_path):
    root, out, _ = trend_demo
    env = {"MAILBOX_BOT_DATABASE_URL": f"sqlite:///{out / 'demo.sqlite3'}"}
    proc = run_cli("report", "--trend", "QA", "QB", "--json", "--out", "tr", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    saved = json.loads((out / "trend.json").read_text(encoding="utf-8"))
    # As of now instead of each roster's end: long after every deadline, the same verdicts.
    assert data["sites"] == saved["sites"] and data["repeat_failures"] == saved["repeat_failures"]
    assert {p.name for p in (tmp_path / "tr").iterdir()} == {"trend.json", "trend.xlsx", "trend.html"}
    text = run_cli("report", "--trend", "QA", "QB", env=env, check=True).stdout
    assert "failed in two or more campaigns: 宝鸡市测试丙中心" in text and "over decided sites" in text


def test_bad_trend_input_is_one_line(trend_demo, run_cli):
    from conftest import one_line_error

    root, out, _ = trend_demo
    env = {"MAILBOX_BOT_DATABASE_URL": f"sqlite:///{out / 'demo.sqlite3'}"}
    one_line_error(run_cli("report", "--trend", "QA", "Q9", "--json", env=env), "'Q9'", "QA, QB", empty_stdout=True)
    one_line_error(run_cli("report", "QA", "QB", env=env), "--trend")


def test_the_order_given_is_the_order_compared(trend_demo):
    from bot.calendar import WorkCalendar
    from bot.errors import UserError
    from bot.report.trend import load
    from bot.store.db import Database

    root, out, _ = trend_demo
    db = Database(f"sqlite:///{out / 'demo.sqlite3'}")
    rev = trend_dict(load(db, ["QB", "QA"], WorkCalendar.from_file(None), as_of=datetime.now(timezone.utc)))
    assert rev["campaigns"] == ["QB", "QA"]
    assert [c["site"] for c in rev["regressed"]] == ["宝鸡市测试乙局"]
    assert [c["site"] for c in rev["improved"]] == ["测试县人民政府"]
    with pytest.raises(UserError, match="'QA' is named twice"):
        load(db, ["QA", "QA"], WorkCalendar.from_file(None), as_of=datetime.now(timezone.utc))


# -- the rules, on rows made by hand (no database) -----------------------------------------------

T0 = datetime(2024, 4, 26, 2, 0, tzinfo=timezone.utc)


def _row(site, status, within, same, days=None, letter_id=1, group="市级部门网站"):
    return ReportRow(site=site, group=group, roster_order=0, mailbox="领导信箱", mailbox_order=0, submitted_at=T0,
                     replied_at=None, working_days=days, within_deadline=within, same_day=same,
                     status=status, flags=(), letter_id=letter_id)


def _campaign(name, rows):
    return Campaign(name=name, rows=rows, meta=ReportMeta(campaign=name, as_of=T0),
                    keys={r.letter_id: r.site for r in rows})


@pytest.mark.parametrize("undecided", [RowStatus.AWAITING, RowStatus.UNVERIFIED, RowStatus.BLOCKED,
                                       RowStatus.NEEDS_INSPECTOR, RowStatus.SUBMIT_UNCERTAIN, RowStatus.SUBMIT_FAILED])
def test_undecided_is_never_a_failure_nor_a_change(undecided):
    t = build([_campaign("A", [_row("甲", RowStatus.NO_REPLY, False, False)]),
               _campaign("B", [_row("甲", undecided, None, None)]),
               _campaign("C", [_row("甲", RowStatus.DELETED, False, False)])])
    assert repeat_failures(t) == ["甲"]            # A and C: two decided failures
    improved, regressed = changes(t)
    assert improved == regressed == []             # B undecided: nothing compared across it
    data = trend_dict(t)
    b = data["overall"][1]
    assert (b["decided_sites"], b["within_deadline_rate"], b["failed_sites"]) == (0, None, 0)
    assert data["sites"][0]["results"][1]["failed"] is False


def test_a_site_is_matched_by_its_key_under_its_latest_name():
    """Two site records of one site file (renamed, with validity periods): one line."""
    a = _campaign("A", [_row("宝鸡市旧名局", RowStatus.NO_REPLY, False, False, None, 1)])
    b = _campaign("B", [_row("宝鸡市新名局", RowStatus.DELETED, False, False, None, 2)])
    t = build([Campaign("A", a.rows, a.meta, {1: "same-key"}), Campaign("B", b.rows, b.meta, {2: "same-key"})])
    data = trend_dict(t)
    assert [s["site"] for s in data["sites"]] == ["宝鸡市新名局"]
    assert [r["site"] for r in data["sites"][0]["results"]] == ["宝鸡市旧名局", "宝鸡市新名局"]
    assert data["repeat_failures"] == ["宝鸡市新名局"]
    assert [(c["from"], c["to"]) for c in data["regressed"]] == [("no_reply", "deleted")]


def test_one_failure_is_not_a_repeat_and_rates_are_over_decided_sites():
    t = build([_campaign("A", [_row("甲", RowStatus.REPLIED, True, True, 0, 1), _row("乙", RowStatus.AWAITING, None, False, None, 2)]),
               _campaign("B", [_row("甲", RowStatus.REPLIED, False, False, 6, 3), _row("乙", RowStatus.REPLIED, True, False, 2, 4)])])
    assert repeat_failures(t) == []
    a = trend_dict(t)["overall"][0]
    assert (a["sites"], a["decided_sites"], a["within_deadline_rate"], a["same_day_rate"]) == (2, 1, 1.0, 1.0)
    assert percentile([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 90) == 8 and percentile([], 50) is None
