"""The report of a big campaign is read and written fast, and says exactly what the plain way
says: on a generated campaign of 2,000 letters (benchmarks/report_data.py), `campaign_rows`
gives the rows a letter-by-letter reading through the ORM and `judge()` gives, in the same
order, at three moments; the writers' output is the plain rendering's (json.dumps, the Jinja
table, openpyxl cell by cell)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import seen_of
from bot.campaign.results import campaign_rows
from bot.campaign.verdict import History, judge
from bot.campaign.worker import SUBMITTABLE
from bot.report.rows import ReportRow
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import Channel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import report_data  # noqa: E402

LETTERS = 2000
MOMENTS = (datetime(2024, 4, 24, 6, 30, tzinfo=timezone.utc), report_data.AS_OF,
           report_data.POLLS_UNTIL + timedelta(days=1))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('scale') / 'bench.sqlite3'}"
    report_data.build(url, LETTERS, seed=7)
    d = Database(url)
    yield d
    d.dispose()


def reference_rows(db: Database, name: str, calendar: WorkCalendar, as_of: datetime) -> list[ReportRow]:
    """The plain way: every letter through the ORM with its events and observations, judged
    one by one; letters in the order of their unique index, a mailbox's place among its site's
    mailboxes by kind."""
    with db.session() as s:
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == name))
        letters = s.scalars(select(m.Letter).where(m.Letter.campaign_id == campaign.id)
                            .order_by(m.Letter.mailbox_id, m.Letter.seq).options(
            selectinload(m.Letter.events), selectinload(m.Letter.observations),
            selectinload(m.Letter.mailbox).selectinload(m.Mailbox.site).selectinload(m.Site.mailboxes))).all()
        out = []
        for letter in letters:
            history = History(events=tuple((e.at, e.to_state) for e in letter.events),
                              submitted_at=letter.submitted_at, failure_kind=letter.failure_kind,
                              retry_pending=letter.state in SUBMITTABLE and letter.planned_at is not None)
            site = letter.mailbox.site
            v = judge(history, seen_of(letter.observations), as_of, calendar, campaign.deadline_workdays,
                      campaign.cutoff_time, moderated=site.moderated)
            kinds = [mb.kind for mb in site.mailboxes]       # in the order they were made (by id)
            note = "" if v.submitted_at is not None else (letter.failure or "")
            if v.reply_channel == Channel.MANUAL:
                o = next(o for o in letter.observations if o.id == v.reply_observation_id)
                note = (f"{'电话' if o.detail['via'] == 'phone' else '短信'}回复：{o.detail['note']}"
                        if o.detail.get("note") else "")
            out.append(ReportRow(
                letter_id=letter.id, site=site.name, group=site.group, roster_order=site.roster_order,
                mailbox=letter.mailbox.label, mailbox_order=kinds.index(letter.mailbox.kind),
                submitted_at=v.submitted_at, replied_at=v.replied_at, reply_date_only=v.reply_date_only,
                working_days=v.working_days, within_deadline=v.within_deadline, same_day=v.same_day,
                status=v.status, flags=v.flags, reply_channel=v.reply_channel, note=note,
                captcha=letter.captcha_by, estimated=v.estimated))
        return out


@pytest.mark.parametrize("as_of", MOMENTS, ids=["mid-campaign", "as-of", "after-everything"])
def test_rows_are_the_letter_by_letter_verdicts_in_the_same_order(db, as_of):
    calendar = WorkCalendar()
    fast, meta = campaign_rows(db, report_data.CAMPAIGN, calendar, as_of=as_of)
    slow = reference_rows(db, report_data.CAMPAIGN, calendar, as_of)
    assert len(fast) == len(slow) == LETTERS
    for a, b in zip(fast, slow):
        assert a == b, a.letter_id
    # The campaign has what the comparison needs to mean something.
    statuses = {r.status for r in fast}
    if as_of == report_data.AS_OF:
        assert {"replied", "awaiting", "deleted", "submit_failed", "not_sent"} <= statuses, statuses
        assert any(r.note for r in fast if r.reply_channel == "manual")
        assert any(r.flags for r in fast)
        assert len({(r.site, r.mailbox) for r in fast}) < LETTERS        # a mailbox written to twice
    assert meta.as_of == as_of


# ------------------------------------------------------------------------------- writers

OLD_TBODY = """  <tbody>
  {% for heading, rows in sections %}
    <tr class="group"><th colspan="{{ columns|length }}">{{ heading }}</th></tr>
    {% for row in rows %}
    <tr>
      {% for h in columns %}
      <td class="{{ cell_class[loop.index0] }}">{{ row[h] }}</td>
      {% endfor %}
    </tr>
    {% endfor %}
  {% endfor %}
  </tbody>"""


@pytest.fixture(scope="module")
def report(db):
    """The campaign's rows, and some that a web page, a spreadsheet and Markdown must escape."""
    rows, meta = campaign_rows(db, report_data.CAMPAIGN, WorkCalendar(), as_of=report_data.AS_OF,
                               generated_at=datetime(2024, 6, 1, 1, 0, tzinfo=timezone.utc))
    odd = [("<script>alert('x')</script> & \"局\"", "=HYPERLINK(\"http://x\")"), ("A|B\\C\n<D>", "+1\x07ctrl"),
           ("@SUM(A1)", "长" * 40_000), ("\t=1+1", "-2")]
    for i, (site, note) in enumerate(odd):
        rows.append(ReportRow(site=site, group="+区县网站" if i % 2 else "市级部门网站", roster_order=i, mailbox="领导信箱",
                              mailbox_order=0, submitted_at=None, replied_at=None, working_days=None,
                              within_deadline=None, same_day=None, status="submit_failed", flags=("odd_flag",),
                              note=note, letter_id=None))
    return rows, meta


def test_json_is_json_dumps_text(report, tmp_path):
    from bot.report import report_dict, write_json

    rows, meta = report
    write_json(rows, meta, tmp_path / "r.json")
    expected = json.dumps(report_dict(rows, meta), ensure_ascii=False, indent=2) + "\n"
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == expected


def test_html_is_the_template_loop_rendering(report):
    from jinja2 import Environment

    from bot.report import html
    from bot.report.charts import report_extras
    from bot.report.rows import as_of_text, columns, generated_text, grouped_table_rows, rule_text
    from bot.report.summary import notice_sentence, summarize
    from bot.report.writers import _CELL_CLASS, TEMPLATES

    rows, meta = report
    source = (TEMPLATES / "table.html").read_text(encoding="utf-8")
    assert "  <tbody>\n{{ tbody }}  </tbody>" in source
    old = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True).from_string(
        source.replace("  <tbody>\n{{ tbody }}  </tbody>", OLD_TBODY))
    expected = old.render(meta=meta, columns=columns(meta), cell_class=_CELL_CLASS,
                          sections=grouped_table_rows(rows, meta), sentence=notice_sentence(rows, meta),
                          summary=summarize(rows, meta), rule=rule_text(meta), generated=generated_text(meta),
                          as_of=as_of_text(meta), extras=report_extras(rows, meta))
    got = html(rows, meta)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;局&#34;" in got
    assert got == expected


def test_markdown_cells_escaped_as_before(report):
    from bot.report import markdown

    rows, meta = report
    text = markdown(rows, meta)
    assert "A\\|B\\\\C \\<D>" in text
    assert text.count("\n| ") >= LETTERS


def test_xlsx_every_cell_and_the_layout(report, tmp_path):
    import openpyxl

    from bot.report import write_xlsx
    from bot.report.rows import COL_GROUP, columns, table_rows
    from bot.report.writers import _WRAP_COLUMNS, XLSX_HEADER_ROW, formula_like

    rows, meta = report
    write_xlsx(rows, meta, tmp_path / "r.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    header = columns(meta)
    r = XLSX_HEADER_ROW + 1
    group = None
    merged = {str(m) for m in ws.merged_cells.ranges}
    for d in table_rows(rows, meta):
        if d[COL_GROUP] != group:          # a group heading row, merged across
            group = d[COL_GROUP]
            assert ws.cell(r, 1).value.endswith(group) and f"A{r}:I{r}" in merged
            r += 1
        for c, h in enumerate(header, start=1):
            cell, value = ws.cell(r, c), d[h]
            if isinstance(value, str):
                text = "".join("\ufffd" if ord(ch) < 32 and ch not in "\t\n\r" else ch for ch in value)[:32767]
                # an empty text is written as an empty cell (as openpyxl always did)
                assert (cell.value, cell.data_type) == ((text, "s") if text else (None, "inlineStr")), (r, c)
                assert cell.quotePrefix == formula_like(value), (r, c)
            else:
                assert cell.value == value and cell.data_type == "n", (r, c)
            assert (cell.font.name, cell.font.sz, cell.font.b) == ("宋体", 11, False)
            assert cell.border.left.style == cell.border.bottom.style == "thin"
            assert cell.alignment.wrap_text and cell.alignment.vertical == "center"
            assert cell.alignment.horizontal == ("left" if c in _WRAP_COLUMNS else "center")
        r += 1
    assert ws.cell(r, 1).value is None and "在互动回应专项检查中" in ws.cell(r + 1, 1).value
    assert ws.freeze_panes == f"A{XLSX_HEADER_ROW + 1}" and ws.page_setup.orientation == "landscape"
    assert ws.print_area.endswith(f"$I${ws.max_row}")
