"""Spreadsheet formula injection (OWASP "CSV injection"): text a site chose (its name, a remark)
reaches the inspector's CSV and XLSX as text no spreadsheet evaluates, through the writers and
through `mailbox-bot demo`; numbers stay numbers."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from bot.report import ReportMeta, ReportRow, write_csv, write_xlsx
from bot.report.writers import XLSX_HEADER_ROW

SH = ZoneInfo("Asia/Shanghai")
LINK = '=HYPERLINK("http://example.invalid","x")局'
DASH = "-1+2 回复内容见附件"
AT = "@SUM(A1:A9) 已电话回复"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
META = ReportMeta(campaign="2024Q2", generated_at=datetime(2024, 5, 10, 9, 0, tzinfo=SH))


def t(day: int, hour: int) -> datetime:
    return datetime(2024, 4, day, hour, tzinfo=SH).astimezone(timezone.utc)


def row(site: str, order: int, note: str = "", group: str = "市级部门网站") -> ReportRow:
    return ReportRow(site=site, group=group, roster_order=order, mailbox="领导信箱", mailbox_order=0,
                     submitted_at=t(22, 10), replied_at=t(24, 15), working_days=2, within_deadline=True,
                     same_day=False, status="replied", flags=(), note=note)


@pytest.fixture
def rows():
    return [row(LINK, 0), row("宝鸡市统计局", 1, note=DASH), row("宝鸡市审计局", 2, note=AT),
            row("\t=1+1", 3, group="+区县网站"), row("宝鸡市林业局", 4)]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def body_cells(path: Path):
    """Every non-empty cell below the header of report.xlsx."""
    ws = openpyxl.load_workbook(path).active
    return [c for line in ws.iter_rows(min_row=XLSX_HEADER_ROW + 1) for c in line if c.value not in (None, "")]


def assert_inert_csv(lines: list[list[str]], *texts: str) -> None:
    cells = [c for line in lines for c in line]
    assert not [c for c in cells if c.startswith(TRIGGERS)], cells
    for text in texts:                      # the text itself is kept, behind one quote
        assert any(c == "'" + text or (c.startswith("'") and text in c) for c in cells), text


def assert_inert_xlsx(cells, *texts: str) -> None:
    risky = [c for c in cells if isinstance(c.value, str) and c.value.startswith(TRIGGERS)]
    for c in risky:
        assert c.data_type == "s" and c.quotePrefix, (c.coordinate, c.value, c.data_type)
    values = [c.value for c in risky]
    for text in texts:                      # kept as it is, no visible quote
        assert any(v == text or (isinstance(v, str) and v.startswith(text[:3]) and text in v) for v in values), text
    assert not any(c.data_type == "f" for c in cells)


def test_csv_quotes_formula_like_cells_and_keeps_numbers(rows, tmp_path):
    path = tmp_path / "report.csv"
    write_csv(rows, META, path)
    lines = read_csv(path)
    assert_inert_csv(lines, LINK, DASH, AT, "\t=1+1", "+区县网站")    # 网站类别 too
    header, body = lines[0], lines[1:]
    site = {r[header.index("网站名称")]: r for r in body}
    assert site["'" + LINK][header.index("序号")] == "1"                # 序号 stays a bare number
    assert site["'" + LINK][header.index("回复用时（工作日）")] == "2"
    assert site["宝鸡市林业局"][header.index("网站名称")] == "宝鸡市林业局"  # ordinary text untouched


def test_xlsx_writes_formula_like_text_as_quoted_string_cells(rows, tmp_path):
    path = tmp_path / "report.xlsx"
    write_xlsx(rows, META, path)
    cells = body_cells(path)
    assert_inert_xlsx(cells, LINK, DASH, AT, "\t=1+1")
    link = next(c for c in cells if c.value == LINK)
    assert link.data_type == "s" and link.quotePrefix and link.font.name == "宋体"   # styles kept
    ws = link.parent
    assert ws.cell(row=link.row, column=1).value == 1 and ws.cell(row=link.row, column=1).data_type == "n"
    assert ws.cell(row=link.row, column=6).value == 2 and ws.cell(row=link.row, column=6).data_type == "n"
    plain = next(c for c in cells if c.value == "宝鸡市林业局")
    assert plain.data_type == "s" and not plain.quotePrefix


def test_xlsx_keeps_error_words_and_control_characters_as_text(tmp_path):
    # openpyxl alone would store "#N/A" as an error value and refuse a control character.
    path = tmp_path / "report.xlsx"
    write_xlsx([row("#N/A", 0), row("宝鸡市\x07气象局", 1)], META, path)
    cells = body_cells(path)
    na = next(c for c in cells if c.value == "#N/A")
    assert na.data_type == "s"
    assert any(c.value == "宝鸡市\ufffd气象局" for c in cells)            # shown, not dropped


SITE = """
[[site]]
name = '{name}'
group = "市级部门网站"
platform = "minimal"
mailboxes = ["leader"]
reply = {{ workdays = 1, at = "10:00" }}
"""


def test_demo_report_files_hold_the_site_name_as_inert_text(run_cli, tmp_path):
    """`mailbox-bot demo --roster FILE --out DIR --no-mail` as the README runs it, with a site
    whose name is a spreadsheet formula."""
    roster = tmp_path / "evil.toml"
    roster.write_text('[campaign]\nname = "evil"\nsubmit_at = "2024-04-26T10:00:00+08:00"\n'
                      'end_at = "2024-04-28T18:00:00+08:00"\npoll_every = "4h"\n'
                      + SITE.format(name=LINK) + SITE.format(name="宝鸡市测试乙局"), encoding="utf-8")
    proc = run_cli("demo", "--roster", str(roster), "--out", "out", "--no-mail")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert LINK in {r["site"] for r in report["rows"]}                       # JSON keeps the name as is

    lines = read_csv(out / "report.csv")
    assert_inert_csv(lines, LINK)
    header = lines[0]
    (evil,) = [r for r in lines[1:] if LINK in r[header.index("网站名称")]]
    assert evil[header.index("网站名称")] == "'" + LINK
    assert evil[header.index("序号")] == "1"

    cells = body_cells(out / "report.xlsx")
    assert_inert_xlsx(cells, LINK)
    (site,) = [c for c in cells if c.value == LINK]
    assert site.data_type == "s" and site.quotePrefix
    assert site.parent.cell(row=site.row, column=1).value == 1
