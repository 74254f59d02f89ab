"""bot.report: the responsiveness table, its statistics, the notice's sentence and the five
formats. Rows are built by hand; no database, browser or network."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from bot.report import (
    ReportMeta, ReportRow, failing_sites, html, markdown, notice_sentence, remarks,
    report_dict, summarize, table_rows, write_all, write_csv, write_xlsx,
)
from bot.report.summary import unfinished_sites

SH = ZoneInfo("Asia/Shanghai")
PORTAL, DEPT = "政府门户网站", "市级部门网站"
EVIL = '<script>alert(1)</script>局|办'


def t(day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai time in late April / May 2024, stored in UTC as the database would."""
    return datetime(2024, 4, day, hour, minute, tzinfo=SH).astimezone(timezone.utc)


def row(site, group, order, mailbox="领导信箱", mailbox_order=0, *, sub=None, rep=None, days=None,
        within=False, same=False, status="replied", flags=(), note=""):
    # As bot.campaign.verdict decides them: a failure is decided "no", what says nothing about
    # the site's answer is undecided.
    if status in ("deleted", "no_reply", "never_visible"):
        within = same = False
    elif status != "replied":
        within = same = None
    return ReportRow(site=site, group=group, roster_order=order, mailbox=mailbox,
                     mailbox_order=mailbox_order, submitted_at=sub, replied_at=rep,
                     working_days=days, within_deadline=within, same_day=same, status=status,
                     flags=tuple(flags), note=note, reply_date_only="date_only_reply_time" in flags)


@pytest.fixture
def rows():
    # Deliberately not in table order: departments first, mailboxes reversed.
    return [
        row("市应急管理局", DEPT, 10, sub=t(22, 10), rep=t(30, 9), days=6),                  # late
        row("市文化和旅游局", DEPT, 11, sub=t(22, 10), status="deleted"),                      # deleted
        row("市交通运输局", DEPT, 12, sub=t(22, 10), status="no_reply"),                       # no reply
        row("市发展和改革委员会", DEPT, 9, sub=t(22, 10, 5), rep=t(24, 15), days=2, within=True,
            flags=["date_only_reply_time"]),                                                   # date only
        row("市财政局", DEPT, 13, status="submit_failed", note="验证码无法识别"),              # failed
        row(EVIL, DEPT, 14, sub=t(23, 9), rep=t(23, 11), days=0, within=True, same=True,
            flags=["site_time_before_submission", "clock_skew"]),                              # flags
        row("某某县人民政府", PORTAL, 2, "县长信箱", 1, sub=t(22, 9), rep=t(25, 9), days=3,
            within=True),                                                                      # within, not same day
        row("某某县人民政府", PORTAL, 2, "领导信箱", 0, sub=t(22, 9), rep=t(22, 16), days=0,
            within=True, same=True),                                                           # same day
        row("市人民政府", PORTAL, 0, "市长信箱", 0, sub=t(26, 10, 5), rep=t(26, 14, 30), days=0,
            within=True, same=True),                                                           # same day
    ]


META = ReportMeta(campaign="2024年第二季度", generated_at=datetime(2024, 5, 10, 9, 0, tzinfo=SH))


# ----------------------------------------------------------------------------- summary

def test_summary_aggregates_per_site(rows):
    assert summarize(rows) == {
        "sites": 8,            # the county has two letters, one site
        "letters": 9,
        # 市人民政府, 某某县人民政府 (both letters within), 发改委, EVIL
        "within_deadline_sites": 4,
        # the county is not same-day: only one of its two letters was
        "same_day_sites": 2,
        "deleted_sites": 1,
        # only 交通运输局: late is a reply, deleted and submit_failed are not "no reply"
        "no_reply_sites": 1,
        "awaiting_sites": 0,
        "as_of": None,
    }


def test_site_needs_all_letters_within_and_same_day():
    a = row("甲县", PORTAL, 0, "领导信箱", 0, sub=t(22, 9), rep=t(22, 10), days=0, within=True, same=True)
    b = row("甲县", PORTAL, 0, "县长信箱", 1, sub=t(22, 9), rep=t(30, 10), days=6)
    s = summarize([a, b])
    assert (s["sites"], s["within_deadline_sites"], s["same_day_sites"]) == (1, 0, 0)
    assert failing_sites([a, b]) == [("甲县", "超过5个工作日未回复")]
    assert summarize([]) == {"sites": 0, "letters": 0, "within_deadline_sites": 0, "same_day_sites": 0,
                             "deleted_sites": 0, "no_reply_sites": 0, "awaiting_sites": 0, "as_of": None}


def test_failing_sites_reasons_in_table_order(rows):
    assert failing_sites(rows) == [
        ("市应急管理局", "超过5个工作日未回复"),
        ("市文化和旅游局", "未回复并删除测试信件"),
        ("市交通运输局", "未回复"),
    ]
    # A submission that failed says nothing of the site's answer: named apart, never "未回复".
    assert unfinished_sites(rows) == [("市财政局", "测试信件提交失败")]
    assert failing_sites(rows, deadline_workdays=3)[0] == ("市应急管理局", "超过3个工作日未回复")


def test_failing_reason_prefers_the_most_serious_letter():
    late = row("乙局", DEPT, 0, "领导信箱", 0, sub=t(22, 9), rep=t(30, 9), days=6)
    gone = row("乙局", DEPT, 0, "局长信箱", 1, sub=t(22, 9), status="deleted")
    assert failing_sites([late, gone]) == [("乙局", "未回复并删除测试信件")]
    silent = row("乙局", DEPT, 0, "局长信箱", 1, sub=t(22, 9), status="no_reply")
    assert failing_sites([late, silent]) == [("乙局", "未回复")]


def baoji_rows() -> list[ReportRow]:
    """54 sites: 20 same day, 31 more within 5 days, 2 not within (one late, one silent),
    1 deleted; the failing ones sit at their roster positions among the departments."""
    out = []
    for i in range(54):
        name, group = (f"县区{i}政府", PORTAL) if i < 13 else (f"部门{i}", DEPT)
        sub = t(22, 10)
        if name == "部门30":
            name = "宝鸡市应急管理局"
            out.append(row(name, group, i, sub=sub, rep=t(30, 10), days=6))
        elif name == "部门40":
            name = "宝鸡港务区管理委员会"
            out.append(row(name, group, i, sub=sub, status="no_reply"))
        elif name == "部门35":
            name = "宝鸡市文化和旅游局"
            out.append(row(name, group, i, sub=sub, status="deleted"))
        elif i < 20:
            out.append(row(name, group, i, sub=sub, rep=t(22, 15), days=0, within=True, same=True))
        else:
            out.append(row(name, group, i, sub=sub, rep=t(24, 15), days=2, within=True))
    return out


def test_notice_sentence_baoji():
    assert notice_sentence(baoji_rows(), ReportMeta()) == (
        "在互动回应专项检查中，51家网站的测试信件能按要求做到5个工作日内回复，其中20家网站均做到当日回复。"
        "宝鸡市应急管理局、宝鸡港务区管理委员会未在5个工作日内回复；宝鸡市文化和旅游局未回复并删除测试信件。"
    )


def test_notice_sentence_variants(rows):
    text = notice_sentence(rows, ReportMeta(deadline_workdays=5))
    assert text.startswith("在互动回应专项检查中，4家网站的测试信件能按要求做到5个工作日内回复，"
                           "其中2家网站均做到当日回复。")
    assert text.endswith("市应急管理局、市交通运输局未在5个工作日内回复；市文化和旅游局未回复并删除测试信件；"
                         "市财政局测试信件提交失败。")
    only_ok = [r for r in rows if r.within_deadline and not r.same_day]
    assert notice_sentence(only_ok, ReportMeta(deadline_workdays=3)) == (
        "在互动回应专项检查中，2家网站的测试信件能按要求做到3个工作日内回复。")


# ------------------------------------------------------------------------ table rows

def test_table_order_groups_then_roster_then_mailbox(rows):
    got = [(d["序号"], d["网站名称"], d["信箱栏目"]) for d in table_rows(rows, META)]
    assert got == [
        (1, "市人民政府", "市长信箱"),
        (2, "某某县人民政府", "领导信箱"),
        (3, "某某县人民政府", "县长信箱"),
        (4, "市发展和改革委员会", "领导信箱"),
        (5, "市应急管理局", "领导信箱"),
        (6, "市文化和旅游局", "领导信箱"),
        (7, "市交通运输局", "领导信箱"),
        (8, "市财政局", "领导信箱"),
        (9, EVIL, "领导信箱"),
    ]
    assert [r["site"] for r in report_dict(rows, META)["rows"]] == [g[1] for g in got]


def test_portal_group_first_even_if_departments_come_first_in_roster():
    rs = [row("区县甲", "区县政府网站", 0, sub=t(22, 9), rep=t(22, 10), days=0, within=True, same=True),
          row("部门乙", DEPT, 1, sub=t(22, 9), rep=t(22, 10), days=0, within=True, same=True),
          row("市政府", PORTAL, 5, sub=t(22, 9), rep=t(22, 10), days=0, within=True, same=True),
          row("开发区", "开发区网站", 3, sub=t(22, 9), rep=t(22, 10), days=0, within=True, same=True)]
    assert [d["网站名称"] for d in table_rows(rs, META)] == ["市政府", "部门乙", "区县甲", "开发区"]


def test_display_values_and_remarks(rows):
    by = {(d["网站名称"], d["信箱栏目"]): d for d in table_rows(rows, META)}
    city = by["市人民政府", "市长信箱"]
    assert city["测试信件提交时间"] == "2024-04-26 10:05"       # Shanghai, not UTC
    assert city["回复时间"] == "2024-04-26 14:30"
    assert (city["回复用时（工作日）"], city["是否5个工作日内回复"], city["是否当日回复"]) == (0, "是", "是")
    assert city["备注"] == ""
    assert list(city)[:9] == ["序号", "网站名称", "信箱栏目", "测试信件提交时间", "回复时间",
                              "回复用时（工作日）", "是否5个工作日内回复", "是否当日回复", "备注"]

    ndrc = by["市发展和改革委员会", "领导信箱"]
    assert ndrc["回复时间"] == "2024-04-24"                      # date-only reply shows the date
    assert ndrc["备注"] == "网站仅显示回复日期"

    late = by["市应急管理局", "领导信箱"]
    assert (late["是否5个工作日内回复"], late["是否当日回复"], late["备注"]) == ("否", "否", "超过5个工作日未回复")
    assert by["市文化和旅游局", "领导信箱"]["备注"] == "删除信件"
    silent = by["市交通运输局", "领导信箱"]
    assert (silent["回复时间"], silent["回复用时（工作日）"], silent["备注"]) == ("", "", "未回复")
    failed = by["市财政局", "领导信箱"]
    assert failed["测试信件提交时间"] == "" and failed["备注"] == "提交失败；验证码无法识别"
    assert by[EVIL, "领导信箱"]["备注"] == "网站回复时间早于提交时间；网站回复时间晚于首次发现时间（时钟偏差）"

    three = table_rows(rows, ReportMeta(deadline_workdays=3))
    assert "是否3个工作日内回复" in three[0]
    assert next(d for d in three if d["网站名称"] == "市应急管理局")["备注"] == "超过3个工作日未回复"


@pytest.mark.parametrize("status,flags,note,expected", [
    ("submit_uncertain", (), "", "提交结果不明，待核实"),
    ("never_visible", ("estimated_calendar",), "", "提交后未能查到信件；节假日安排为推算"),
    ("needs_inspector", (), "电话核实中", "待检查人员处理；电话核实中"),
    ("blocked", (), "", "网站拦截访问（防火墙/验证页面）"),
    ("replied", ("ack_only", "possibly_backdated", "email_date_mismatch"), "",
     "仅收到受理/自动回复；回复时间疑似倒签；邮件日期与到达时间不符"),
])
def test_remarks_for_other_statuses_and_flags(status, flags, note, expected):
    r = row("丙局", DEPT, 0, sub=t(22, 9), rep=t(22, 10) if status == "replied" else None,
            days=0 if status == "replied" else None, within=status == "replied",
            status=status, flags=flags, note=note)
    assert remarks(r) == expected


# ------------------------------------------------------------------------------- JSON

def test_json_contract(rows, tmp_path):
    paths = write_all(rows, META, tmp_path / "out")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert "市人民政府" in paths["json"].read_text(encoding="utf-8")     # ensure_ascii=False
    assert set(data) >= {"summary", "rows"}
    assert set(data["summary"]) == {"sites", "letters", "within_deadline_sites", "same_day_sites",
                                    "deleted_sites", "no_reply_sites", "awaiting_sites", "as_of"}
    assert data["summary"] == summarize(rows, META)
    keys = {"site", "group", "mailbox", "submitted_at", "replied_at", "working_days",
            "within_deadline", "same_day", "status", "flags", "captcha", "letter_id", "reply_channel"}
    assert all(set(r) == keys for r in data["rows"])
    first = data["rows"][0]
    assert first == {"site": "市人民政府", "group": PORTAL, "mailbox": "市长信箱",
                     "submitted_at": "2024-04-26T10:05:00+08:00",
                     "replied_at": "2024-04-26T14:30:00+08:00", "working_days": 0,
                     "within_deadline": True, "same_day": True, "status": "replied", "flags": [], "captcha": None,
                     "letter_id": None, "reply_channel": None}
    failed = next(r for r in data["rows"] if r["status"] == "submit_failed")
    assert (failed["submitted_at"], failed["replied_at"], failed["working_days"]) == (None, None, None)
    assert (failed["within_deadline"], failed["same_day"]) == (None, None)      # undecided, not "no"
    assert data["sentence"] == notice_sentence(rows, META)
    assert data["meta"]["deadline_workdays"] == 5


# -------------------------------------------------------------------------------- CSV

def test_csv_bom_and_rereads(rows, tmp_path):
    path = tmp_path / "r.csv"
    write_csv(rows, META, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(path, encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][:9] == ["序号", "网站名称", "信箱栏目", "测试信件提交时间", "回复时间",
                            "回复用时（工作日）", "是否5个工作日内回复", "是否当日回复", "备注"]
    assert len(table) == 1 + len(rows)
    assert table[1][:3] == ["1", "市人民政府", "市长信箱"]
    assert table[9][1] == EVIL                       # the pipe and angle brackets survive
    stream = io.StringIO()
    write_csv(rows, META, stream)
    assert stream.getvalue().startswith("\ufeff序号,")


# --------------------------------------------------------------------------- Markdown

def test_markdown_escapes_pipes(rows):
    md = markdown(rows, META)
    assert md.startswith("# 附件3：全市政府网站互动回应检查情况\n")
    assert notice_sentence(rows, META) in md
    assert "## 一、政府门户网站" in md and "## 二、市级部门网站" in md
    evil_line = next(line for line in md.splitlines() if "alert(1)" in line)
    assert "局\\|办" in evil_line
    # every table line has exactly 9 cells: 10 unescaped pipes
    for line in md.splitlines():
        if line.startswith("| "):
            assert line.replace("\\|", "").count("|") == 10, line


# ------------------------------------------------------------------------------- HTML

def test_html_escapes_and_states_the_rule(rows):
    page = html(rows, ReportMeta(cutoff="17:30", estimated=True, generated_at=META.generated_at))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;局|办" in page
    assert "<title>全市政府网站互动回应检查情况</title>" in page
    assert notice_sentence(rows) in page
    assert "回复时限：5个工作日" in page and "收信截止时间：17:30" in page
    assert "尚未公布" in page
    assert "生成时间：2024-05-10 09:00" in page
    assert "一、政府门户网站" in page and "@media print" in page
    assert page.count("<tr>") == 1 + len(rows)      # header + one row per letter


# ------------------------------------------------------------------------------- XLSX

def test_xlsx_layout(rows, tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(rows, META, path)
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws["A1"].value == "附件3" and ws["A1"].font.name == "黑体"
    assert ws["A2"].value == "全市政府网站互动回应检查情况"
    assert ws["A2"].font.bold and ws["A2"].alignment.horizontal == "center"
    merged = {str(m) for m in ws.merged_cells.ranges}
    assert "A2:I2" in merged
    header = [c.value for c in ws[3]]
    assert header == ["序号", "网站名称", "信箱栏目", "测试信件提交时间", "回复时间",
                      "回复用时（工作日）", "是否5个工作日内回复", "是否当日回复", "备注"]
    assert all(c.font.bold and c.border.left.style == "thin" for c in ws[3])
    assert ws["A4"].value == "一、政府门户网站" and "A4:I4" in merged
    assert [c.value for c in ws[5]] == [1, "市人民政府", "市长信箱", "2024-04-26 10:05",
                                        "2024-04-26 14:30", 0, "是", "是", None]
    # 3 portal letters (rows 5-7), then the department heading
    assert ws["A8"].value == "二、市级部门网站" and "A8:I8" in merged
    assert ws["B14"].value == EVIL and ws["B14"].alignment.wrap_text
    assert ws["I13"].value == "提交失败；验证码无法识别"
    assert ws.print_title_rows == "$3:$3"
    assert ws.freeze_panes == "A4"
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.column_dimensions["I"].width > ws.column_dimensions["A"].width
    notes = [ws.cell(row=r, column=1).value for r in range(15, ws.max_row + 1)]
    assert notice_sentence(rows, META) in notes


def test_write_all_returns_paths(rows, tmp_path):
    paths = write_all(rows, META, tmp_path / "new" / "dir")
    assert {k: p.name for k, p in paths.items()} == {
        "json": "report.json", "csv": "report.csv", "md": "report.md",
        "html": "report.html", "xlsx": "report.xlsx"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
