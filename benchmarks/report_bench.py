"""How long a user waits for `mailbox-bot report` of a big campaign, format by format.

    .venv/bin/python benchmarks/report_bench.py 100000                  # this tree
    .venv/bin/python benchmarks/report_bench.py 100000 --against main   # and an older one, side by side

The campaign comes from benchmarks/report_data.py (built once, cached). Each measurement runs in
a fresh process: the rows (`campaign_rows`) once, then each writer; a format's time is the rows'
time plus its writer's, what `mailbox-bot report` costs for that format alone (wall seconds,
and CPU seconds as `*_cpu_s`, which a busy machine disturbs less). `peak_mib` is the
process's peak resident memory over the whole run. With `--against REV` the same is done with
the package of git revision REV (exported to a temporary directory) and the outputs are
compared: JSON, CSV, Markdown and HTML byte for byte, XLSX cell by cell (values, styles, merges,
dimensions, print setup).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

FORMATS = ("json", "csv", "md", "html", "xlsx")


def _child(tree: str, url: str, out: str) -> None:
    """Runs in the measuring process, with `tree`'s package first on the path."""
    sys.path.insert(0, tree)
    import resource
    import time
    from datetime import datetime, timezone

    from bot.calendar import WorkCalendar
    from bot.campaign.results import campaign_rows
    from bot.report import writers
    from bot.store.db import Database

    import report_data

    import bot

    assert Path(bot.__file__).resolve().is_relative_to(Path(tree).resolve()), bot.__file__
    db = Database(url)
    db.ensure_schema()
    cal = WorkCalendar()
    started, cpu = time.perf_counter(), time.process_time()
    rows, meta = campaign_rows(db, report_data.CAMPAIGN, cal, as_of=report_data.AS_OF,
                               generated_at=datetime(2024, 6, 1, 1, 0, tzinfo=timezone.utc))
    figures = {"letters": len(rows), "rows_s": time.perf_counter() - started, "rows_cpu_s": time.process_time() - cpu,
               "rows_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    fns = {"json": writers.write_json, "csv": writers.write_csv, "md": writers.write_markdown,
           "html": writers.write_html, "xlsx": writers.write_xlsx}
    for fmt in FORMATS:
        started, cpu = time.perf_counter(), time.process_time()
        fns[fmt](rows, meta, Path(out) / writers.FILENAMES[fmt])
        figures[f"{fmt}_writer_s"] = time.perf_counter() - started
        figures[f"{fmt}_writer_cpu_s"] = time.process_time() - cpu
    figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def measure(tree: Path, url: str, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_BOT_")}
    proc = subprocess.run([sys.executable, __file__, "--child", str(tree), url, str(out)],
                          capture_output=True, text=True, env=env, cwd=str(tree))
    if proc.returncode != 0:
        raise SystemExit(f"report_bench: the measurement with {tree} failed:\n{proc.stderr[-3000:]}")
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    figures = {"letters": raw["letters"], "rows_s": round(raw["rows_s"], 2)}
    for fmt in FORMATS:
        figures[f"{fmt}_s"] = round(raw["rows_s"] + raw[f"{fmt}_writer_s"], 2)
    # CPU seconds say the same on a machine other work keeps busy (wall seconds do not).
    figures["rows_cpu_s"] = round(raw["rows_cpu_s"], 2)
    for fmt in FORMATS:
        figures[f"{fmt}_cpu_s"] = round(raw["rows_cpu_s"] + raw[f"{fmt}_writer_cpu_s"], 2)
    figures["rows_peak_mib"] = round(raw["rows_peak_mib"])
    figures["peak_mib"] = round(raw["peak_mib"])
    return figures


def export(rev: str, dest: Path) -> Path:
    """The package of git revision `rev`, as plain files (no worktree, no checkout)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "bot"],
                             capture_output=True, check=True).stdout
    tar = dest / "tree.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def xlsx_view(path: Path) -> dict:
    """What a reader of the workbook sees: every cell's value, type and style, the merges,
    row heights, column widths and the print setup."""
    from openpyxl import load_workbook

    ws = load_workbook(path).active
    cells = []
    for row in ws.iter_rows():
        for c in row:
            if c.value is None and not c.has_style:
                continue
            cells.append((c.coordinate, c.value, c.data_type, c.font.name, c.font.sz, c.font.b,
                          c.alignment.horizontal, c.alignment.vertical, c.alignment.wrap_text,
                          c.border.left.style, c.border.top.style, c.fill.fgColor.rgb, c.quotePrefix))
    return {
        "title": ws.title, "cells": cells, "merged": sorted(str(r) for r in ws.merged_cells.ranges),
        "heights": sorted((k, v.height) for k, v in ws.row_dimensions.items() if v.height),
        "widths": sorted((k, v.width) for k, v in ws.column_dimensions.items()),
        "freeze": ws.freeze_panes, "print_titles": ws.print_title_rows, "print_area": ws.print_area,
        "setup": (ws.page_setup.orientation, ws.page_setup.paperSize, ws.page_setup.fitToWidth,
                  ws.page_setup.fitToHeight, ws.sheet_properties.pageSetUpPr.fitToPage,
                  ws.print_options.horizontalCentered, ws.page_margins.left, ws.page_margins.top,
                  ws.oddFooter.center.text),
    }


def same_outputs(a: Path, b: Path) -> dict[str, bool]:
    from bot.report.writers import FILENAMES

    same = {fmt: _digest(a / FILENAMES[fmt]) == _digest(b / FILENAMES[fmt]) for fmt in FORMATS if fmt != "xlsx"}
    same["xlsx"] = xlsx_view(a / FILENAMES["xlsx"]) == xlsx_view(b / FILENAMES["xlsx"])
    return same


def run(letters: int, db_url: str | None = None, against: str | None = None) -> dict:
    """The figures of this tree (and of `against`, with `same` per format, when given)."""
    import report_data

    url = db_url or report_data.cached(letters)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        tmp = Path(tmp)
        figures = measure(REPO, url, tmp / "this")
        print("this tree:", json.dumps(figures), file=sys.stderr, flush=True)
        if against:
            (tmp / "old").mkdir()
            old = measure(export(against, tmp / "old"), url, tmp / "old-out")
            figures = {"this": figures, against: old, "same": same_outputs(tmp / "this", tmp / "old-out")}
    return figures


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("letters", type=int, nargs="?", default=100_000)
    ap.add_argument("--db", help="a database URL holding the campaign `bench` (default: the cached build)")
    ap.add_argument("--against", metavar="REV", help="also measure git revision REV and compare the outputs")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.letters, args.db, args.against), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
