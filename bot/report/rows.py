"""The responsiveness table's input rows and their display values (DESIGN.md, "Responsiveness
table (attachment 3)").

`ReportRow` is one test letter, filled from the database by the caller; `ReportMeta` says how
the table was computed. `table_rows` turns rows into the display values every writer uses, so
CSV, Markdown, HTML and XLSX cannot disagree about order, times or remarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from bot.clock import local
from bot.vocab import LATE_TEXT, REMARK_STATUSES, STATUS_TEXT, RowStatus, flag_text

PORTAL_GROUP = "政府门户网站"
DEPARTMENT_GROUP = "市级部门网站"
# These two always come first, in this order; any other group follows in order of first
# appearance in the roster.
FIXED_GROUPS = (PORTAL_GROUP, DEPARTMENT_GROUP)
UNDECIDED_TEXT = "待定"


@dataclass(frozen=True)
class ReportRow:
    site: str                 # 网站名称
    group: str                # "政府门户网站" | "市级部门网站" | other group names
    roster_order: int         # the site's position in the roster (0-based)
    mailbox: str              # 信箱栏目 label, e.g. "领导信箱", "市长信箱", "县长信箱"
    mailbox_order: int        # order of the mailbox within the site
    submitted_at: datetime | None   # aware; None when the letter was not (known to be) sent
    replied_at: datetime | None     # aware; the credible reply time
    working_days: int | None
    within_deadline: bool | None    # None: not decided (yet)
    same_day: bool | None           # None: not decided (yet)
    status: RowStatus
    flags: tuple[str, ...]    # Flag names, see bot.vocab.FLAG_TEXT
    reply_channel: str | None = None   # site_query | site_list | email | manual
    note: str = ""            # free text from an inspector, or why a submission failed
    captcha: str | None = None         # who answered the form's captcha (None: the form had none)
    letter_id: int | None = None       # what `reply record` and `mail assign` take
    reply_date_only: bool = False      # the site showed a date without a time
    estimated: bool = False            # counted over a year whose holidays are estimates


@dataclass(frozen=True)
class ReportMeta:
    title: str = "全市政府网站互动回应检查情况"
    attachment: str = "附件3"
    campaign: str = ""
    deadline_workdays: int = 5
    cutoff: str | None = None       # "HH:MM" receipt cut-off rule or None
    generated_at: datetime | None = None
    estimated: bool = False          # any computation used an estimated (unpublished) holiday year
    as_of: datetime | None = None    # the moment the verdicts are as of


REMARK_SEPARATOR = "；"

# Keys of the display dicts (in column order); the header of the deadline column depends on
# the campaign's deadline, see `columns`.
COL_NO = "序号"
COL_SITE = "网站名称"
COL_MAILBOX = "信箱栏目"
COL_SUBMITTED = "测试信件提交时间"
COL_REPLIED = "回复时间"
COL_DAYS = "回复用时（工作日）"
COL_WITHIN = "是否{d}个工作日内回复"
COL_SAME_DAY = "是否当日回复"
COL_REMARK = "备注"
COL_GROUP = "网站类别"   # not a column of the official table; used for group headings

_CN_DIGITS = "零一二三四五六七八九"


def columns(meta: ReportMeta) -> list[str]:
    """The nine column headers of the official table, in order."""
    return [COL_NO, COL_SITE, COL_MAILBOX, COL_SUBMITTED, COL_REPLIED, COL_DAYS,
            COL_WITHIN.format(d=meta.deadline_workdays), COL_SAME_DAY, COL_REMARK]


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 23 -> 二十三 (1..99), for group headings like 一、."""
    if not 1 <= n <= 99:
        return str(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _CN_DIGITS[ones]
    return (_CN_DIGITS[tens] if tens > 1 else "") + "十" + (_CN_DIGITS[ones] if ones else "")


def group_order(rows: Iterable[ReportRow]) -> list[str]:
    """Groups in table order: 政府门户网站, 市级部门网站, then the others by first appearance
    in the roster (lowest roster_order)."""
    first: dict[str, int] = {}
    for r in rows:
        first[r.group] = min(first.get(r.group, r.roster_order), r.roster_order)
    fixed = [g for g in FIXED_GROUPS if g in first]
    others = sorted((g for g in first if g not in FIXED_GROUPS), key=lambda g: (first[g], g))
    return fixed + others


def ordered(rows: Iterable[ReportRow]) -> list[ReportRow]:
    """Rows in table order: group (see `group_order`), roster_order, mailbox_order."""
    rows = list(rows)
    rank = {g: i for i, g in enumerate(group_order(rows))}
    return sorted(rows, key=lambda r: (rank[r.group], r.roster_order, r.mailbox_order))


def group_heading(index: int, group: str) -> str:
    """0-based index -> "一、政府门户网站"."""
    return f"{chinese_number(index + 1)}、{group}"


def fmt_time(value: datetime | None, date_only: bool = False) -> str:
    """"YYYY-MM-DD HH:MM" (or "YYYY-MM-DD") in Asia/Shanghai; "" for None."""
    if value is None:
        return ""
    value = local(value)
    return value.strftime("%Y-%m-%d") if date_only else value.strftime("%Y-%m-%d %H:%M")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the Asia/Shanghai offset, to the second: "2024-04-26T10:05:00+08:00"."""
    return None if value is None else local(value).isoformat(timespec="seconds")


def is_late(row: ReportRow) -> bool:
    """Replied, but after the deadline (a late reply is a reply, not "no reply")."""
    return row.status == RowStatus.REPLIED and row.within_deadline is False


def remarks(row: ReportRow, deadline_workdays: int = 5) -> str:
    """备注: the status text, then the flags (in the row's order), then the inspector's note,
    joined with "；". An unknown flag is shown by its machine name rather than hidden."""
    parts: list[str] = []
    if row.status in REMARK_STATUSES:
        parts.append(STATUS_TEXT[row.status])
    if is_late(row):
        parts.append(LATE_TEXT.format(d=deadline_workdays))
    for flag in row.flags:
        parts.append(flag_text(flag))
    if row.note and row.note.strip():
        parts.append(row.note.strip())
    seen: set[str] = set()
    unique = [p for p in parts if not (p in seen or seen.add(p))]
    return REMARK_SEPARATOR.join(unique)


def yes_no(value: bool | None) -> str:
    """是 / 否, and 待定 for what is not decided (yet)."""
    return UNDECIDED_TEXT if value is None else "是" if value else "否"


def table_rows(rows: Iterable[ReportRow], meta: ReportMeta) -> list[dict]:
    """Display values for every writer, in table order, 序号 1..n.

    Each dict has the nine `columns(meta)` keys (in order) and then COL_GROUP ("网站类别"),
    which the writers use for the group headings. 序号 and 回复用时 are ints (回复用时 is ""
    when unknown); everything else is a string.
    """
    header = columns(meta)
    out = []
    for no, r in enumerate(ordered(rows), start=1):
        values = [
            no,
            r.site,
            r.mailbox,
            fmt_time(r.submitted_at),
            fmt_time(r.replied_at, date_only=r.reply_date_only),
            "" if r.working_days is None else r.working_days,
            yes_no(r.within_deadline),
            yes_no(r.same_day),
            remarks(r, meta.deadline_workdays),
        ]
        d = dict(zip(header, values))
        d[COL_GROUP] = r.group
        out.append(d)
    return out


def grouped_table_rows(rows: Iterable[ReportRow], meta: ReportMeta) -> list[tuple[str, list[dict]]]:
    """`table_rows` split by group: [("一、政府门户网站", [...]), ...] (序号 stays continuous)."""
    sections: list[tuple[str, list[dict]]] = []
    current = None
    for d in table_rows(rows, meta):
        if d[COL_GROUP] != current:
            current = d[COL_GROUP]
            sections.append((group_heading(len(sections), current), []))
        sections[-1][1].append(d)
    return sections


def rule_text(meta: ReportMeta) -> str:
    """The counting rule, stated in every human-readable format."""
    d = meta.deadline_workdays
    text = (f"回复时限：{d}个工作日（提交当日不计，自次日起按工作日计算，"
            f"法定节假日及调休按国务院办公厅安排）。")
    if meta.cutoff:
        text += (f"收信截止时间：{meta.cutoff}，此后或非工作日提交的信件视为下一工作日收到，"
                 f"并自该日起计算。")
    else:
        text += "未设收信截止时间，按实际提交日期起算。"
    if meta.estimated:
        text += "注意：部分年份的节假日安排尚未公布，相关结果按推算的节假日计算。"
    return text


def as_of_text(meta: ReportMeta) -> str:
    """"统计截至：2024-05-10 18:00" ("" when the caller gave no moment)."""
    return f"统计截至：{fmt_time(meta.as_of)}" if meta.as_of else ""


def generated_text(meta: ReportMeta) -> str:
    """"生成时间：2024-05-10 09:00" or "" when the caller did not set meta.generated_at
    (writers never read the wall clock; the caller passes its Clock's time)."""
    return f"生成时间：{fmt_time(meta.generated_at)}" if meta.generated_at else ""
