"""The trend written as trend.json, trend.xlsx (native Excel charts next to the data they
plot) and trend.html (inline SVG charts, no script, no network)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.report.charts import histogram_chart, rates_chart
from bot.report.rows import UNDECIDED_TEXT, yes_no
from bot.report.trend import RATE_NOTE, Trend, trend_dict, working_days_histogram
# One cell writer for every workbook: text as inert string cells, control characters replaced
# (openpyxl refuses them), formula-like text quote-prefixed.
from bot.report.writers import TEMPLATES, _put
from bot.vocab import STATUS_TEXT, RowStatus

def _percent(v) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _dash(v) -> str:
    return "—" if v is None else str(v)


def environment():
    """Jinja for the trend page (autoescaping on: every name in it is a site's own text)."""
    from jinja2 import Environment, FileSystemLoader

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["percent"] = _percent
    env.filters["dash"] = _dash
    return env


TREND_FILES = {"json": "trend.json", "xlsx": "trend.xlsx", "html": "trend.html"}

STAT_COLUMNS = [
    ("campaign", "检查批次"), ("sites", "检查网站数"), ("decided_sites", "已有结论网站数"),
    ("within_deadline_sites", "时限内回复网站数"), ("within_deadline_rate", "时限内回复率"),
    ("same_day_sites", "当日回复网站数"), ("same_day_rate", "当日回复率"),
    ("median_working_days", "回复用时中位数（工作日）"), ("p90_working_days", "回复用时90百分位（工作日）"),
    ("deleted_sites", "删除信件网站数"), ("no_reply_sites", "未回复网站数"), ("failed_sites", "未按时回复网站数"),
]
RATE_KEYS = {"within_deadline_rate", "same_day_rate"}


def status_text(result: dict | None, deadline_text: str = "") -> str:
    """A site's result in one campaign in the table's words."""
    if result is None:
        return "未检查"
    status = RowStatus(result["status"])
    if status == RowStatus.REPLIED:
        if result["within_deadline"] is False:
            return "超期回复"
        return "当日回复" if result["same_day"] else "时限内回复"
    return STATUS_TEXT[status]


def write_json(trend: Trend, dest: Path) -> None:
    dest.write_text(json.dumps(trend_dict(trend), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def workbook(trend: Trend):
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    data = trend_dict(trend)
    bold = Font(bold=True)
    wb = Workbook()

    # Sheet 1: rates per campaign, and their chart to the right.
    ws = wb.active
    ws.title = "回复率"
    _put(ws, 1, 1, "各批次互动回应情况（比率按已有结论的网站计算）").font = Font(bold=True, size=13)
    for c, (_, head) in enumerate(STAT_COLUMNS, start=1):
        _put(ws, 2, c, head).font = bold
        ws.column_dimensions[get_column_letter(c)].width = 14
    for r, stats in enumerate(data["overall"], start=3):
        for c, (key, _) in enumerate(STAT_COLUMNS, start=1):
            cell = _put(ws, r, c, stats[key])
            if key in RATE_KEYS and stats[key] is not None:
                cell.number_format = "0.0%"
    last = 2 + len(data["overall"])
    row = last + 2
    _put(ws, row, 1, RATE_NOTE)
    row += 2
    for g in data["groups"]:
        _put(ws, row, 1, g["group"]).font = bold
        row += 1
        for c, (_, head) in enumerate(STAT_COLUMNS, start=1):
            _put(ws, row, c, head).font = bold
        row += 1
        for stats in g["campaigns"]:
            for c, (key, _) in enumerate(STAT_COLUMNS, start=1):
                cell = _put(ws, row, c, stats[key])
                if key in RATE_KEYS and stats[key] is not None:
                    cell.number_format = "0.0%"
            row += 1
        row += 1
    chart = BarChart()
    chart.type = "col"
    chart.title = "各批次回复率"
    chart.y_axis.title = "比率"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.y_axis.number_format = "0%"
    for col in (5, 7):     # 时限内回复率, 当日回复率
        chart.add_data(Reference(ws, min_col=col, min_row=2, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=last))
    chart.width, chart.height = 16, 8
    ws.add_chart(chart, f"{get_column_letter(len(STAT_COLUMNS) + 2)}2")

    # Sheet 2: letters by working days, per campaign, and the chart.
    wd = wb.create_sheet("用时分布")
    hists = [working_days_histogram(c.rows) for c in trend.campaigns]
    top = max((max(h) for h in hists if h), default=0)
    _put(wd, 1, 1, "回复用时（工作日）").font = bold
    for c, name in enumerate(trend.names, start=2):
        _put(wd, 1, c, name).font = bold
    for d in range(0, top + 1):
        _put(wd, d + 2, 1, d)
        for c, h in enumerate(hists, start=2):
            _put(wd, d + 2, c, h.get(d, 0))
    hist = BarChart()
    hist.type = "col"
    hist.title = "回复用时分布（已回复信件数）"
    hist.x_axis.title = "工作日"
    hist.y_axis.title = "信件数"
    hist.add_data(Reference(wd, min_col=2, max_col=1 + len(hists), min_row=1, max_row=top + 2), titles_from_data=True)
    hist.set_categories(Reference(wd, min_col=1, min_row=2, max_row=top + 2))
    hist.width, hist.height = 16, 8
    wd.add_chart(hist, f"{get_column_letter(len(hists) + 3)}1")

    # Sheet 3: every site, every campaign.
    st = wb.create_sheet("网站")
    heads = ["网站名称", "网站类别"]
    for name in trend.names:
        heads += [f"{name} 结果", f"{name} 用时", f"{name} 时限内", f"{name} 当日"]
    for c, h in enumerate(heads, start=1):
        _put(st, 1, c, h).font = bold
    st.column_dimensions["A"].width = 32
    st.column_dimensions["B"].width = 14
    for r, site in enumerate(data["sites"], start=2):
        _put(st, r, 1, site["site"])
        _put(st, r, 2, site["group"])
        for i, res in enumerate(site["results"]):
            c = 3 + 4 * i
            _put(st, r, c, status_text(res))
            if res is not None:
                _put(st, r, c + 1, res["working_days"])
                _put(st, r, c + 2, yes_no(res["within_deadline"]))
                _put(st, r, c + 3, yes_no(res["same_day"]))

    # Sheet 4: repeat failures and changes.
    ch = wb.create_sheet("变化")
    _put(ch, 1, 1, "两次及以上未按时回复的网站").font = bold
    r = 2
    for site in data["repeat_failures"] or ["无"]:
        _put(ch, r, 1, site)
        r += 1
    for title, items in (("较上一批次好转", data["improved"]), ("较上一批次变差", data["regressed"])):
        r += 1
        _put(ch, r, 1, title).font = bold
        r += 1
        for c, h in enumerate(["网站名称", "网站类别", "上一批次", "结果", "本批次", "结果"], start=1):
            _put(ch, r, c, h).font = bold
        r += 1
        for it in items:
            for c, v in enumerate([it["site"], it["group"], it["from_campaign"], it["from_text"],
                                   it["to_campaign"], it["to_text"]], start=1):
                _put(ch, r, c, v)
            r += 1
    ch.column_dimensions["A"].width = 32
    return wb


def write_xlsx(trend: Trend, dest: Path) -> None:
    workbook(trend).save(str(dest))


def html(trend: Trend) -> str:
    data = trend_dict(trend)
    overall = data["overall"]
    charts = {
        "rates": rates_chart(trend.names, [s["within_deadline_rate"] for s in overall],
                             [s["same_day_rate"] for s in overall]),
        "histogram": histogram_chart([(c.name, working_days_histogram(c.rows)) for c in trend.campaigns]),
        "groups": [(g["group"], rates_chart(trend.names, [s["within_deadline_rate"] for s in g["campaigns"]],
                                            [s["same_day_rate"] for s in g["campaigns"]],
                                            title=f"{g['group']}：各批次回复率")) for g in data["groups"]],
    }
    return environment().get_template("trend.html").render(
        data=data, charts=charts, stat_columns=STAT_COLUMNS, rate_keys=RATE_KEYS, rate_note=RATE_NOTE,
        status_text=status_text, yes_no=yes_no, undecided=UNDECIDED_TEXT)


def write_html(trend: Trend, dest: Path) -> None:
    dest.write_text(html(trend), encoding="utf-8")


def write_trend(trend: Trend, out_dir: str | Path) -> dict[str, Path]:
    """trend.json, trend.xlsx and trend.html in out_dir (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, writer in (("json", write_json), ("xlsx", write_xlsx), ("html", write_html)):
        paths[kind] = out / TREND_FILES[kind]
        writer(trend, paths[kind])
    return paths
