"""The responsiveness table (附件3: 全市政府网站互动回应检查情况), its statistics and the
notice's sentence, in JSON, CSV, Markdown, HTML and XLSX (DESIGN.md, "Responsiveness table").

    rows = [ReportRow(...), ...]            # one per test letter, filled from the store
    meta = ReportMeta(campaign="2024Q2", generated_at=clock.now())
    paths = write_all(rows, meta, "out/")   # report.json/.csv/.md/.html/.xlsx
"""

from bot.report.rows import (
    ReportMeta, ReportRow, columns, group_order, ordered, remarks, rule_text, table_rows,
)
from bot.report.summary import failing_sites, notice_sentence, summarize
from bot.report.writers import (
    FILENAMES, html, markdown, report_dict, workbook, write_all, write_csv, write_html,
    write_json, write_markdown, write_xlsx,
)

__all__ = [
    "FILENAMES", "ReportMeta", "ReportRow", "columns",
    "failing_sites", "group_order", "html", "markdown", "notice_sentence", "ordered", "remarks",
    "report_dict", "rule_text", "summarize", "table_rows", "workbook", "write_all", "write_csv",
    "write_html", "write_json", "write_markdown", "write_xlsx",
]
