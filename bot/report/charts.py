"""Charts as inline SVG: the HTML reports and the dashboard draw them with no script and no
network (nothing from a CDN), so a report opened offline, or printed, shows them as they are.

Every text that reaches the SVG (campaign names, group names, labels) is escaped here; the
result is `Markup`, safe to place in an autoescaping Jinja template.
"""

from __future__ import annotations

from markupsafe import Markup, escape

# Colours that stay apart in greyscale print.
PALETTE = ("#1f4e79", "#c55a11", "#548235", "#7f6000", "#7030a0", "#2e75b6")
FONT = 'font-family="sans-serif" font-size="11"'


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def bar_chart(categories: list[str], series: list[tuple[str, list[float | None]]], *, title: str,
              percent: bool = False, width: int = 640, height: int = 260, label: str = "") -> Markup:
    """Grouped bars: one group of bars per category, one bar per series (a None value draws no
    bar and says "—"). `percent`: values are 0..1, drawn on a 0..100 % axis."""
    left, right, top, bottom = 44, 12, 28, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    vmax = 1.0 if percent else max(values + [1])
    if not percent:
        step = max(1, -(-int(vmax) // 5))
        vmax = step * 5
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(label or title)}">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="16" {FONT} font-weight="bold">{escape(title)}</text>']
    for i in range(6):
        v = vmax * i / 5
        y = top + plot_h - plot_h * i / 5
        text = f"{_num(v * 100)}%" if percent else _num(v)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" {FONT} text-anchor="end">{text}</text>')
    n_cat, n_ser = max(1, len(categories)), max(1, len(series))
    slot = plot_w / n_cat
    bar_w = max(2.0, min(40.0, slot * 0.8 / n_ser))
    for ci, cat in enumerate(categories):
        x0 = left + ci * slot + (slot - bar_w * n_ser) / 2
        for si, (name, vs) in enumerate(series):
            v = vs[ci] if ci < len(vs) else None
            x = x0 + si * bar_w
            if v is None:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 4}" {FONT} text-anchor="middle">—</text>')
                continue
            h = plot_h * (v / vmax if vmax else 0)
            shown = f"{_num(v * 100)}%" if percent else _num(v)
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                         f'height="{h:.1f}" fill="{PALETTE[si % len(PALETTE)]}" data-value="{escape(shown)}">'
                         f'<title>{escape(name)} · {escape(cat)}: {escape(shown)}</title></rect>')
        parts.append(f'<text x="{left + ci * slot + slot / 2:.1f}" y="{top + plot_h + 16}" {FONT} '
                     f'text-anchor="middle">{escape(cat)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#000"/>')
    lx = left
    for si, (name, _) in enumerate(series):
        parts.append(f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 9}" {FONT}>{escape(name)}</text>')
        lx += 14 + 12 * len(name) + 16
    parts.append("</svg>")
    return Markup("".join(parts))


def rates_chart(campaigns: list[str], within: list[float | None], same_day: list[float | None],
                title: str = "各批次回复率（按已有结论的网站计）") -> Markup:
    """Within-deadline and same-day rates per campaign."""
    return bar_chart(campaigns, [("时限内回复率", within), ("当日回复率", same_day)], title=title, percent=True)


def histogram_chart(histograms: list[tuple[str, dict[int, int]]],
                    title: str = "回复用时分布（工作日，按已回复信件计）") -> Markup:
    """Letters by working days, one series per campaign (or just one)."""
    top = max((max(h) for _, h in histograms if h), default=0)
    days = list(range(0, top + 1))
    series = [(name, [float(h.get(d, 0)) for d in days]) for name, h in histograms]
    return bar_chart([str(d) for d in days] or ["0"], series or [("", [None])], title=title,
                     label=title + "：" + "；".join(f"{n} " + "，".join(f"{d}天{h.get(d, 0)}封" for d in days)
                                                  for n, h in histograms))


def report_extras(rows, meta) -> dict:
    """What the single-campaign report.html shows besides the table: the working-days histogram
    (inline SVG) and a per-group summary (the table's own per-site statistics, per group)."""
    from bot.report.rows import group_order
    from bot.report.summary import summarize
    from bot.report.trend import working_days_histogram

    rows = list(rows)
    hist = working_days_histogram(rows)
    return {
        "histogram": histogram_chart([(meta.campaign or "", hist)]) if hist else Markup(""),
        "groups": [(g, summarize([r for r in rows if r.group == g], meta)) for g in group_order(rows)],
    }
