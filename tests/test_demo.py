"""`mailbox-bot demo` as a user runs it: the bundled Baoji 2024 Q2 check end to end, roster
mistakes reported in one line, and a tiny roster of one's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.roster import default_roster_path, load_roster

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
    assert report["summary"] == {"sites": 2, "letters": 2, "within_deadline_sites": 2, "same_day_sites": 1,
                                 "deleted_sites": 0, "no_reply_sites": 0}
    by_site = {r["site"]: r for r in report["rows"]}
    assert by_site["宝鸡市测试甲局"]["working_days"] == 0
    assert by_site["宝鸡市测试乙局"]["working_days"] == 1
