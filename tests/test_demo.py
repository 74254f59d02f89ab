"""`mailbox-bot demo` as a user runs it: the bundled Baoji 2024 Q2 check end to end, roster
mistakes reported in one line, and a tiny roster of one's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.sandbox.roster import default_roster_path, load_roster

TABLE_FILES = ("report.json", "report.csv", "report.md", "report.html", "report.xlsx")


def _rows(report: dict, site: str) -> list[dict]:
    rows = [r for r in report["rows"] if r["site"] == site]
    assert rows, f"no row for {site}"
    return rows


@pytest.mark.slow
def test_full_demo_reproduces_the_baoji_notice(run_cli, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("demo", "--json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)               # stdout is exactly the JSON, nothing else
    assert proc.stdout.startswith("{") and proc.stdout.rstrip().endswith("}")

    roster = load_roster(default_roster_path())
    s = report["summary"]
    assert s["sites"] == 54
    assert s["letters"] == sum(len(site.mailboxes) for site in roster.site)
    assert s["within_deadline_sites"] == 51
    assert s["same_day_sites"] == 20
    assert s["deleted_sites"] == 1
    assert s["no_reply_sites"] == 1
    # As of the roster's end, long after every deadline: nothing is left undecided.
    assert s["awaiting_sites"] == 0 and s["as_of"] == roster.campaign.end_at.isoformat()
    assert all(r["within_deadline"] is not None for r in report["rows"])

    # Table order is the notice's: roster order, each site's mailboxes in turn.
    assert list(dict.fromkeys(r["site"] for r in report["rows"])) == [site.name for site in roster.site]

    late = _rows(report, "宝鸡市应急管理局")
    assert all(not r["within_deadline"] for r in late)
    assert all(r["status"] == "replied" and r["working_days"] == 7 for r in late)   # late, not "no reply"
    silent = _rows(report, "宝鸡港务区管理委员会")
    assert all(not r["within_deadline"] and r["status"] == "no_reply" for r in silent)
    deleted = _rows(report, "宝鸡市文化和旅游局")
    assert all(r["status"] == "deleted" and not r["within_deadline"] for r in deleted)
    backdated = _rows(report, "宝鸡市住房和城乡建设局")
    assert all("possibly_backdated" in r["flags"] for r in backdated)
    failing = {r["site"] for r in report["rows"] if not r["within_deadline"]}
    assert failing == {"宝鸡市应急管理局", "宝鸡港务区管理委员会", "宝鸡市文化和旅游局"}

    assert report["sentence"].startswith("在互动回应专项检查中，51家网站的测试信件能按要求做到5个工作日内回复，"
                                         "其中20家网站均做到当日回复。")
    for name in TABLE_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["summary"] == s and saved["rows"] == report["rows"]


# -- roster mistakes: one line on stderr, exit 2, before any browser starts ------------------------

ROSTER_HEAD = """\
[campaign]
name = "tiny"
submit_at = "{submit_at}"
end_at = "2024-04-28T18:00:00+08:00"
poll_every = "4h"
"""

SITE_A = """
[[site]]
name = "宝鸡市测试甲局"
group = "市级部门网站"
platform = "{platform}"
mailboxes = ["leader"]
reply = {{ workdays = {workdays}, at = "15:00" }}
"""

SITE_B = """
[[site]]
name = "宝鸡市测试乙局"
group = "市级部门网站"
platform = "minimal"
mailboxes = ["leader"]
reply = { workdays = 1, at = "10:00" }
"""


def write_roster(path: Path, submit_at: str = "2024-04-26T10:00:00+08:00", platform: str = "jact",
                 workdays: int = 0) -> Path:
    path.write_text(ROSTER_HEAD.format(submit_at=submit_at)
                    + SITE_A.format(platform=platform, workdays=workdays) + SITE_B, encoding="utf-8")
    return path


@pytest.mark.parametrize("fault,key,words", [
    ({"platform": "wordpress"}, "site[1].platform", "wordpress"),
    ({"submit_at": "2024-04-26 25:00"}, "campaign.submit_at", "ISO 8601"),
    ({"workdays": -1}, "site[1].reply.workdays", "-1"),
], ids=["unknown-platform", "bad-time", "negative-workdays"])
def test_roster_fault_is_one_line_and_exit_2(fault, key, words, run_cli, tmp_path):
    write_roster(tmp_path / "bad.toml", **fault)
    proc = run_cli("demo", "--roster", "bad.toml", "--out", "out")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert "bad.toml" in line and f"'{key}'" in line and words in line, line
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()           # refused before anything was done


def test_demo_with_a_tiny_roster(run_cli, tmp_path):
    write_roster(tmp_path / "tiny.toml")
    proc = run_cli("demo", "--roster", "tiny.toml", "--out", "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    for name in TABLE_FILES:
        assert (out / name).is_file(), name
    # The notice's sentence is the command's output: both sites replied within 5 working days
    # (the second on the make-up Sunday), one of them the same day.
    assert proc.stdout.strip() == ("在互动回应专项检查中，2家网站的测试信件能按要求做到5个工作日内回复，"
                                   "其中1家网站均做到当日回复。")
    assert "sites 2, letters 2" in " ".join(proc.stderr.split())
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in report["summary"].items() if k != "as_of"} == {"sites": 2, "letters": 2, "within_deadline_sites": 2, "same_day_sites": 1,
                                 "deleted_sites": 0, "no_reply_sites": 0,
                                 "awaiting_sites": 0}
    by_site = {r["site"]: r for r in report["rows"]}
    assert by_site["宝鸡市测试甲局"]["working_days"] == 0
    assert by_site["宝鸡市测试乙局"]["working_days"] == 1


def test_a_demo_ending_before_some_deadlines_reports_them_awaiting(run_cli, tmp_path):
    """The report is as of the roster's end_at: a letter whose deadline is later is awaiting
    (undecided), never "no reply", and the sentence names only decided sites."""
    roster = tmp_path / "early.toml"
    roster.write_text(ROSTER_HEAD.format(submit_at="2024-04-26T10:00:00+08:00")
                      .replace("2024-04-28T18:00:00+08:00", "2024-04-29T12:00:00+08:00")
                      + SITE_A.format(platform="jact", workdays=0)
                      + SITE_B.replace("workdays = 1", "workdays = 3")
                      + SITE_B.replace("宝鸡市测试乙局", "宝鸡市测试丙局").replace('reply = { workdays = 1, at = "10:00" }\n', ""),
                      encoding="utf-8")
    proc = run_cli("demo", "--roster", "early.toml", "--out", "out", "--json", "--no-mail")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    rows = {r["site"]: r for r in report["rows"]}
    assert (rows["宝鸡市测试甲局"]["status"], rows["宝鸡市测试甲局"]["within_deadline"],
            rows["宝鸡市测试甲局"]["same_day"]) == ("replied", True, True)
    for late in ("宝鸡市测试乙局", "宝鸡市测试丙局"):
        r = rows[late]
        # The day of submission is over (not same day), the deadline (after May Day) is not.
        assert (r["status"], r["within_deadline"], r["same_day"], r["replied_at"]) == ("awaiting", None, False, None)
    s = report["summary"]
    assert s["as_of"] == "2024-04-29T12:00:00+08:00"
    assert (s["within_deadline_sites"], s["same_day_sites"], s["awaiting_sites"], s["no_reply_sites"]) == (1, 1, 2, 0)
    sentence = report["sentence"]
    assert sentence.startswith("截至2024年4月29日，在互动回应专项检查中，1家网站的测试信件能按要求做到5个工作日内回复")
    assert "另有2家网站的2封测试信件尚在回复时限内" in sentence
    assert "乙局" not in sentence and "丙局" not in sentence and "未回复" not in sentence
    table = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert table.count("| 待定 |") == 2 and "统计截至：2024-04-29 12:00" in table
