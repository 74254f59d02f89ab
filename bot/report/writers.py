"""The responsiveness table written as JSON, CSV, Markdown, HTML and XLSX.

Every writer takes (rows, meta, dest) where dest is a path or an open stream (text for JSON,
CSV, Markdown and HTML; binary for XLSX), and uses `table_rows` for its display values.
Writers never read the wall clock: the caller sets `meta.generated_at` from its Clock.
Every CSV and XLSX cell goes through `formula_like` (see there: spreadsheet formula injection).
"""

from __future__ import annotations

import csv
import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from bot.report.rows import (
    COL_GROUP, ReportMeta, ReportRow, as_of_text, columns, generated_text, grouped_table_rows, iso,
    ordered, rule_text, table_rows,
)
from bot.report.charts import report_extras
from bot.report.summary import notice_sentence, summarize

Dest = str | Path | IO

# write_all's file names, by format.
FILENAMES = {
    "json": "report.json",
    "csv": "report.csv",
    "md": "report.md",
    "html": "report.html",
    "xlsx": "report.xlsx",
}

TEMPLATES = Path(__file__).parent / "templates"


@contextmanager
def _text_out(dest: Dest, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO]:
    if isinstance(dest, (str, Path)):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "w", encoding=encoding, newline=newline) as f:
            yield f
    else:
        yield dest


# ---------------------------------------------------------------------- spreadsheet cells

# What makes Excel or LibreOffice read a typed (or imported) cell as a formula: "=", "+", "-"
# and "@", and a leading tab or carriage return, which some importers drop before looking
# (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_like(value) -> bool:
    """True for a text cell a spreadsheet would evaluate. The table carries text the sites
    chose (their names, remarks, reply texts): a site named `=HYPERLINK(...)` must reach the
    inspector's spreadsheet as that text, not as a link or a command. Numbers (序号, 回复用时)
    are never formulas. The CSV writer prefixes such a cell with "'" (OWASP's advice); the XLSX
    writer stores it as a string cell with Excel's quote prefix, the same thing in that format."""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def _csv_cell(value):
    return "'" + value if formula_like(value) else value


# --------------------------------------------------------------------------------- JSON

def report_dict(rows: Iterable[ReportRow], meta: ReportMeta | None = None) -> dict:
    """The JSON contract: {"summary", "rows"} (exact keys), plus "meta" and "sentence"."""
    meta = meta or ReportMeta()
    rows = list(rows)
    return {
        "summary": summarize(rows, meta),
        "rows": [
            {
                "site": r.site,
                "group": r.group,
                "mailbox": r.mailbox,
                "submitted_at": iso(r.submitted_at),
                "replied_at": iso(r.replied_at),
                "working_days": r.working_days,
                "within_deadline": r.within_deadline,
                "same_day": r.same_day,
                "status": str(r.status),
                "flags": [str(f) for f in r.flags],
                "letter_id": r.letter_id,
                "reply_channel": str(r.reply_channel) if r.reply_channel else None,
                "captcha": r.captcha,
            }
            for r in ordered(rows)
        ],
        "meta": {
            "title": meta.title,
            "attachment": meta.attachment,
            "campaign": meta.campaign,
            "deadline_workdays": meta.deadline_workdays,
            "cutoff": meta.cutoff,
            "generated_at": iso(meta.generated_at),
            "as_of": iso(meta.as_of),
            "estimated": meta.estimated,
        },
        "sentence": notice_sentence(rows, meta),
    }


def write_json(rows: Iterable[ReportRow], meta: ReportMeta, dest: Dest) -> None:
    """`json.dump(report_dict(...), ensure_ascii=False, indent=2)`'s text exactly, written by
    `_json_text` (the standard library's encoder is pure Python once it indents: several times
    slower on a big campaign)."""
    with _text_out(dest) as f:
        for chunk in _json_text(report_dict(rows, meta)):
            f.write(chunk)
        f.write("\n")


# A string's JSON text as json.dumps(ensure_ascii=False) writes it (the C function it uses).
_json_str = json.encoder.encode_basestring


class _NotPlain(Exception):
    """A value `_json_text` leaves to the standard encoder."""


def _json_text(doc) -> Iterator[str]:
    """The text `json.dumps(doc, ensure_ascii=False, indent=2)` gives, in pieces of about a
    thousand values; a document with a key that is not a string goes to json.dumps itself."""
    out: list[str] = []
    try:
        _json_into(doc, "\n", out)
    except _NotPlain:
        yield json.dumps(doc, ensure_ascii=False, indent=2)
        return
    for i in range(0, len(out), 4096):
        yield "".join(out[i:i + 4096])


def _json_into(o, newline: str, out: list[str]) -> None:
    """Appends o's text; `newline` is the line break and indentation of o's own line."""
    if isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = newline + "  "
        sep = "{" + inner
        for k, v in o.items():
            if k.__class__ is not str:
                raise _NotPlain
            text = _json_scalar(v)
            if text is None:
                out.append(sep + _json_str(k) + ": ")
                _json_into(v, inner, out)
            else:
                out.append(sep + _json_str(k) + ": " + text)
            sep = "," + inner
        out.append(newline + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        inner = newline + "  "
        sep = "[" + inner
        for v in o:
            text = _json_scalar(v)
            if text is None:
                out.append(sep)
                _json_into(v, inner, out)
            else:
                out.append(sep + text)
            sep = "," + inner
        out.append(newline + "]")
    else:
        out.append(_json_scalar(o))


def _json_scalar(o) -> str | None:
    """The text of a value that is not a dict, list or tuple (None for those)."""
    cls = o.__class__
    if cls is str:
        return _json_str(o)
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if cls is int:
        return int.__repr__(o)
    if isinstance(o, (dict, list, tuple)):
        return None
    return json.dumps(o, ensure_ascii=False)   # a float, a str or int subclass: as json says it


# ---------------------------------------------------------------------------------- CSV

def write_csv(rows: Iterable[ReportRow], meta: ReportMeta, dest: Dest) -> None:
    """UTF-8 with BOM (also written to a stream), the nine Chinese columns and then 网站类别,
    one line per letter (no group heading lines, so the file sorts and filters in Excel)."""
    header = columns(meta) + [COL_GROUP]
    with _text_out(dest, encoding="utf-8", newline="") as f:
        f.write("\ufeff")
        w = csv.writer(f)
        w.writerow([_csv_cell(h) for h in header])
        for d in table_rows(rows, meta):
            w.writerow([_csv_cell(d[h]) for h in header])


# ----------------------------------------------------------------------------- Markdown

def _md_cell(value) -> str:
    """One table cell: backslash, pipe and "<" escaped (CommonMark), newlines folded."""
    text = str(value)
    if _MD_SPECIAL.search(text) is None:
        return text
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")
    return " ".join(text.split("\n"))


_MD_SPECIAL = re.compile(r"[\\|<\n]")


def markdown(rows: Iterable[ReportRow], meta: ReportMeta) -> str:
    rows = list(rows)
    header = columns(meta)
    s = summarize(rows, meta)
    lines = [f"# {meta.attachment}：{meta.title}", ""]
    if meta.campaign:
        lines += [f"检查批次：{_md_cell(meta.campaign)}", ""]
    lines += [notice_sentence(rows, meta), "",
              f"共检查网站{s['sites']}家，测试信件{s['letters']}封。", ""]
    for heading, section in grouped_table_rows(rows, meta):
        lines += [f"## {_md_cell(heading)}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for d in section:
            lines.append("| " + " | ".join(_md_cell(d[h]) for h in header) + " |")
        lines.append("")
    lines.append(rule_text(meta))
    if meta.as_of:
        lines += ["", as_of_text(meta)]
    gen = generated_text(meta)
    if gen:
        lines += ["", gen]
    return "\n".join(lines) + "\n"


def write_markdown(rows: Iterable[ReportRow], meta: ReportMeta, dest: Dest) -> None:
    with _text_out(dest) as f:
        f.write(markdown(rows, meta))


# --------------------------------------------------------------------------------- HTML

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)

# CSS class per column: centred short values; wrapping site names and remarks.
_CELL_CLASS = ["c", "site", "c", "c", "c", "c", "c", "c", "remark"]


def html(rows: Iterable[ReportRow], meta: ReportMeta) -> str:
    rows = list(rows)
    header = columns(meta)
    return _env.get_template("table.html").render(
        meta=meta,
        columns=header,
        tbody=_html_body(grouped_table_rows(rows, meta), header),
        sentence=notice_sentence(rows, meta),
        summary=summarize(rows, meta),
        rule=rule_text(meta),
        generated=generated_text(meta),
        as_of=as_of_text(meta),
        extras=report_extras(rows, meta),
    )


def _html_body(sections: list[tuple[str, list[dict]]], header: list[str]) -> Markup:
    """The table's rows, as the template's loop over the sections wrote them (every value
    escaped as Jinja's autoescape does, by markupsafe), built here: a template loop over a
    million cells is the slowest part of the report."""
    group = f'    <tr class="group"><th colspan="{len(header)}">'
    cells = [(h, f'      <td class="{escape(cls)}">') for h, cls in zip(header, _CELL_CLASS)]
    out: list[str] = []
    for heading, section in sections:
        out.append(f"{group}{escape(heading)}</th></tr>\n")
        for d in section:
            out.append("    <tr>\n")
            out.extend(f"{td}{escape(d[h])}</td>\n" for h, td in cells)
            out.append("    </tr>\n")
    return Markup("".join(out))


def write_html(rows: Iterable[ReportRow], meta: ReportMeta, dest: Dest) -> None:
    with _text_out(dest) as f:
        f.write(html(rows, meta))


# --------------------------------------------------------------------------------- XLSX

XLSX_TITLE_ROW = 2
XLSX_HEADER_ROW = 3
XLSX_COLUMN_WIDTHS = [6, 30, 12, 18, 18, 11, 12, 10, 38]
_WRAP_COLUMNS = {2, 9}     # 网站名称, 备注 (1-based)
# Control characters an XLSX file cannot hold (openpyxl refuses them): shown, not dropped.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _put(ws, row: int, column: int, value=None):
    """Writes one cell. Text is always a string cell: openpyxl would make "=..." a formula and
    "#N/A" an error value; a `formula_like` text also gets the quote prefix, so that editing the
    cell in Excel or LibreOffice does not turn it into a formula either."""
    cell = ws.cell(row=row, column=column)
    _set(cell, value)
    return cell


def _set(cell, value) -> None:
    if isinstance(value, str):
        cell.value = _XLSX_ILLEGAL.sub("\ufffd", value)
        cell.data_type = "s"
        if formula_like(value):
            cell.quotePrefix = True
    elif value is not None:
        cell.value = value


def _unquoted(cell):
    """A copy of the cell's style without the quote prefix."""
    from openpyxl.styles.cell_style import StyleArray

    style = StyleArray(cell._style)
    style.quotePrefix = 0
    return style


def _put_styled(ws, row: int, column: int, value, style) -> None:
    """`_put` of a new cell that takes `style` (a StyleArray, copied) as it is: the same cell,
    made without looking its font, border and alignment up again. A text or an int is stored as
    openpyxl's own setter stores it (a text cut at 32,767 characters; the control characters
    it refuses are already replaced); anything else goes through that setter."""
    from openpyxl.cell.cell import Cell
    from openpyxl.styles.cell_style import StyleArray

    cell = Cell.__new__(Cell)
    cell.parent, cell._style, cell.row, cell.column = ws, StyleArray(style), row, column
    cell._hyperlink = cell._comment = None
    cls = value.__class__
    if cls is str:
        cell._value = _XLSX_ILLEGAL.sub("\ufffd", value)[:32767]
        cell.data_type = "s"
        if value.startswith(FORMULA_START):       # formula_like
            cell._style.quotePrefix = 1
    elif cls is int:
        cell._value, cell.data_type = value, "n"
    else:
        cell._value, cell.data_type = None, "n"
        _set(cell, value)
    ws._cells[(row, column)] = cell


def workbook(rows: Iterable[ReportRow], meta: ReportMeta):
    """An openpyxl Workbook laid out like the notice's attachment."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    rows = list(rows)
    header = columns(meta)
    ncol = len(header)
    last = get_column_letter(ncol)

    thin = Side(style="thin", color="000000")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    body_font = Font(name="宋体", size=11)
    bold_font = Font(name="宋体", size=11, bold=True)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    left_wrap = Alignment(horizontal="left", vertical="center", wrap_text=True)

    wb = Workbook()
    ws = wb.active
    ws.title = meta.attachment[:31] or "附件"

    _put(ws, 1, 1, meta.attachment)
    ws["A1"].font = Font(name="黑体", size=14)
    ws["A1"].alignment = Alignment(horizontal="left", vertical="center")
    ws.row_dimensions[1].height = 22

    ws.merge_cells(f"A{XLSX_TITLE_ROW}:{last}{XLSX_TITLE_ROW}")
    title = _put(ws, XLSX_TITLE_ROW, 1, meta.title)
    title.font = Font(name="宋体", size=18, bold=True)
    title.alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[XLSX_TITLE_ROW].height = 36

    fill = PatternFill("solid", fgColor="D9E1F2")
    for c, h in enumerate(header, start=1):
        cell = _put(ws, XLSX_HEADER_ROW, c, h)
        cell.font = bold_font
        cell.alignment = centre
        cell.border = border
        cell.fill = fill
    ws.row_dimensions[XLSX_HEADER_ROW].height = 32

    group_fill = PatternFill("solid", fgColor="F2F2F2")
    r = XLSX_HEADER_ROW + 1
    body_styles = None
    for heading, section in grouped_table_rows(rows, meta):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncol)
        for c in range(1, ncol + 1):
            cell = ws.cell(row=r, column=c)
            cell.border = border
            cell.fill = group_fill
        g = _put(ws, r, 1, heading)
        g.font = bold_font
        g.alignment = Alignment(horizontal="left", vertical="center")
        r += 1
        for d in section:
            if body_styles is None:
                # The first row is styled cell by cell; its cells' styles then serve every
                # other row (setting a font or a border looks it up in the workbook's list of
                # them: far too slow for a million cells, and the answer is always the same).
                cells = []
                for c, h in enumerate(header, start=1):
                    cell = _put(ws, r, c, d[h])
                    cell.font = body_font
                    cell.border = border
                    cell.alignment = left_wrap if c in _WRAP_COLUMNS else centre
                    cells.append(cell)
                body_styles = [_unquoted(cell) for cell in cells]
            else:
                for c, h in enumerate(header, start=1):
                    _put_styled(ws, r, c, d[h], body_styles[c - 1])
                ws._current_row = max(ws._current_row, r)     # as openpyxl's own _add_cell keeps it
            r += 1

    # Notes under the table: the sentence, the rule, the generation time.
    notes = [notice_sentence(rows, meta), rule_text(meta)]
    if meta.as_of:
        notes.append(as_of_text(meta))
    gen = generated_text(meta)
    if gen:
        notes.append(gen)
    r += 1
    for text in notes:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncol)
        cell = _put(ws, r, 1, text)
        cell.font = Font(name="宋体", size=10)
        cell.alignment = Alignment(horizontal="left", vertical="top", wrap_text=True)
        # merged cells do not auto-fit: about two width units per Chinese character
        lines = max(1, -(-len(text) * 2 // int(sum(XLSX_COLUMN_WIDTHS[:ncol]) - 4)))
        ws.row_dimensions[r].height = 14 * lines + 4
        r += 1

    for c, width in enumerate(XLSX_COLUMN_WIDTHS[:ncol], start=1):
        ws.column_dimensions[get_column_letter(c)].width = width

    ws.freeze_panes = ws.cell(row=XLSX_HEADER_ROW + 1, column=1)
    ws.print_title_rows = f"{XLSX_HEADER_ROW}:{XLSX_HEADER_ROW}"
    ws.print_area = f"A1:{last}{r - 1}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.7
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    return wb


def write_xlsx(rows: Iterable[ReportRow], meta: ReportMeta, dest: Dest) -> None:
    """dest: a path or a binary stream."""
    if isinstance(dest, (str, Path)):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        dest = str(dest)
    workbook(rows, meta).save(dest)


# ---------------------------------------------------------------------------------- all

def write_all(rows: Iterable[ReportRow], meta: ReportMeta, out_dir: str | Path) -> dict[str, Path]:
    """Writes report.json, report.csv, report.md, report.html and report.xlsx into out_dir
    (created if missing); returns {"json": path, "csv": ..., "md": ..., "html": ..., "xlsx": ...}."""
    rows = list(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writers = {"json": write_json, "csv": write_csv, "md": write_markdown,
               "html": write_html, "xlsx": write_xlsx}
    paths = {}
    for fmt, writer in writers.items():
        path = out / FILENAMES[fmt]
        writer(rows, meta, path)
        paths[fmt] = path
    return paths
