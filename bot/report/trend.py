"""Quarter after quarter: one site's results across campaigns, per group and overall.

The rows of each campaign come from `campaign_rows` (the same verdicts as the table, as of a
moment); nothing here re-judges a letter. A site is matched across campaigns by its site key
(the stable slug of its site file), so a site renamed between quarters stays one line, shown
under its latest name.

Words used here, and in the outputs:
- A site's result in one campaign aggregates its letters as the table does: within the
  deadline when all its letters were, not when one was not, undecided otherwise; the same for
  same-day; its working days are the slowest letter's (null when a letter has no reply).
- Failed: a decided failure to answer in time, i.e. the site is among the report's failing
  sites (a deleted letter, no reply after the deadline, a letter never visible, or a reply
  after the deadline). Undecided statuses (awaiting, unverified, blocked, needs_inspector,
  submit_uncertain, submit_failed, not_sent) are never failures.
- Rates are over decided sites (whose within-deadline answer is known), never over all sites.
- Improved / regressed: the site's tier (deleted < no reply < late reply < within the deadline
  < same day) went up / down since the campaign just before, only when both results are
  decided (a site absent or undecided in either is not compared).
- Working-day statistics are over replied letters (median and 90th percentile by nearest rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from bot.calendar import WorkCalendar
from bot.errors import UserError
from bot.report.rows import ReportMeta, ReportRow, group_order, iso, ordered
from bot.report.summary import NO_REPLY_STATUSES, summarize
from bot.vocab import UNDECIDED, RowStatus

RATE_NOTE = ("比率按已有结论的网站计算（尚在时限内、待核实、提交未成功等未定网站不计入分母）；"
             "用时中位数与90百分位按已回复信件计算。")
RATE_NOTE_EN = ("rates are over decided sites (undecided ones: awaiting, unverified, blocked, "
                "needs_inspector, submit_uncertain, submit_failed, not_sent are left out of the "
                "denominator); working-day median and 90th percentile are over replied letters "
                "(nearest rank)")
FAILED_NOTE_EN = ("failed = a decided failure to answer within the deadline: a deleted letter, no "
                  "reply after the deadline, a letter never visible, or a late reply")

# Tiers for improved / regressed (higher is better).
TIER_DELETED, TIER_NO_REPLY, TIER_LATE, TIER_WITHIN, TIER_SAME_DAY = range(5)
TIER_TEXT = {TIER_DELETED: "删除信件", TIER_NO_REPLY: "未回复", TIER_LATE: "超期回复",
             TIER_WITHIN: "时限内回复", TIER_SAME_DAY: "当日回复"}
TIER_NAME = {TIER_DELETED: "deleted", TIER_NO_REPLY: "no_reply", TIER_LATE: "late",
             TIER_WITHIN: "within_deadline", TIER_SAME_DAY: "same_day"}


@dataclass(frozen=True)
class Campaign:
    """One campaign's rows as of a moment, with each row's site key (by letter id)."""

    name: str
    rows: list[ReportRow]
    meta: ReportMeta
    keys: dict[int, str]        # letter_id -> site key

    def key_of(self, row: ReportRow) -> str:
        return self.keys.get(row.letter_id, f"name:{row.site}")


@dataclass(frozen=True)
class SiteResult:
    campaign: str
    site: str                   # the name in that campaign
    group: str
    status: RowStatus
    working_days: int | None
    within_deadline: bool | None
    same_day: bool | None
    letters: int

    @property
    def decided(self) -> bool:
        return self.within_deadline is not None

    @property
    def failed(self) -> bool:
        return self.within_deadline is False

    @property
    def tier(self) -> int | None:
        if not self.decided:
            return None
        if self.status == RowStatus.DELETED:
            return TIER_DELETED
        if self.status in NO_REPLY_STATUSES:
            return TIER_NO_REPLY
        if self.within_deadline is False:
            return TIER_LATE
        return TIER_SAME_DAY if self.same_day else TIER_WITHIN


@dataclass
class Trend:
    campaigns: list[Campaign]
    # site key -> (latest name, latest group, [SiteResult or None per campaign])
    sites: dict[str, tuple[str, str, list[SiteResult | None]]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.campaigns]


def site_result(campaign: str, rows: list[ReportRow]) -> SiteResult:
    """One site's letters in one campaign, aggregated as the table's statistics are."""
    within = (False if any(r.within_deadline is False for r in rows)
              else True if rows and all(r.within_deadline is True for r in rows) else None)
    same = (False if any(r.same_day is False for r in rows)
            else True if rows and all(r.same_day is True for r in rows) else None)
    days = [r.working_days for r in rows]
    statuses = [r.status for r in rows]
    if RowStatus.DELETED in statuses:
        status = RowStatus.DELETED
    elif any(s in NO_REPLY_STATUSES for s in statuses):
        status = next(s for s in statuses if s in NO_REPLY_STATUSES)
    elif any(s in UNDECIDED for s in statuses):
        status = next(s for s in statuses if s in UNDECIDED)
    else:
        status = RowStatus.REPLIED
    return SiteResult(campaign=campaign, site=rows[0].site, group=rows[0].group, status=status,
                      working_days=None if any(d is None for d in days) else max(days),
                      within_deadline=within, same_day=same, letters=len(rows))


def build(campaigns: list[Campaign]) -> Trend:
    """The trend over campaigns in the order given (the first is the oldest)."""
    trend = Trend(campaigns=campaigns)
    n = len(campaigns)
    order: dict[str, tuple] = {}
    for i, c in enumerate(campaigns):
        per_key: dict[str, list[ReportRow]] = {}
        for r in ordered(c.rows):
            per_key.setdefault(c.key_of(r), []).append(r)
        rank = {g: k for k, g in enumerate(group_order(c.rows))}
        for key, rs in per_key.items():
            res = site_result(c.name, rs)
            if key not in trend.sites:
                trend.sites[key] = (res.site, res.group, [None] * n)
            _, _, results = trend.sites[key]
            results[i] = res
            trend.sites[key] = (res.site, res.group, results)     # the latest name and group win
            order[key] = (-i, rank[res.group], rs[0].roster_order)   # the latest table's order
    trend.sites = dict(sorted(trend.sites.items(), key=lambda kv: order[kv[0]]))
    latest_first = []
    for c in reversed(campaigns):
        latest_first += [g for g in group_order(c.rows) if g not in latest_first]
    trend.groups = [g for g in latest_first if any(grp == g for _, grp, _ in trend.sites.values())] or latest_first
    return trend


def percentile(values: list[int], p: float) -> int | None:
    """Nearest-rank percentile (p in 0..100) of integers; None for no values."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def stats(rows: list[ReportRow], results: list[SiteResult], meta: ReportMeta) -> dict:
    """One campaign's figures for a set of sites (a group or all)."""
    s = summarize(rows, meta)
    decided = sum(1 for r in results if r.decided)
    days = [r.working_days for r in rows if r.working_days is not None]
    return {
        "sites": s["sites"],
        "letters": s["letters"],
        "decided_sites": decided,
        "undecided_sites": s["sites"] - decided,
        "within_deadline_sites": s["within_deadline_sites"],
        "within_deadline_rate": _rate(s["within_deadline_sites"], decided),
        "same_day_sites": s["same_day_sites"],
        "same_day_rate": _rate(s["same_day_sites"], decided),
        "median_working_days": percentile(days, 50),
        "p90_working_days": percentile(days, 90),
        "deleted_sites": s["deleted_sites"],
        "no_reply_sites": s["no_reply_sites"],
        "failed_sites": sum(1 for r in results if r.failed),
    }


def working_days_histogram(rows: list[ReportRow]) -> dict[int, int]:
    """Replied letters by working days: {0: 20, 1: 14, ...} (keys ascending, gaps filled)."""
    days = [r.working_days for r in rows if r.working_days is not None]
    if not days:
        return {}
    return {d: days.count(d) for d in range(0, max(days) + 1)}


def _results_of(trend: Trend, i: int, group: str | None = None) -> list[SiteResult]:
    return [res[i] for _, g, res in trend.sites.values()
            if res[i] is not None and (group is None or res[i].group == group)]


def changes(trend: Trend) -> tuple[list[dict], list[dict]]:
    """(improved, regressed) since the previous campaign, between decided results only."""
    improved, regressed = [], []
    for key, (name, group, res) in trend.sites.items():
        for i in range(1, len(res)):
            a, b = res[i - 1], res[i]
            if a is None or b is None or a.tier is None or b.tier is None or a.tier == b.tier:
                continue
            item = {"site": name, "key": key, "group": group, "from_campaign": a.campaign,
                    "to_campaign": b.campaign, "from": TIER_NAME[a.tier], "to": TIER_NAME[b.tier],
                    "from_text": TIER_TEXT[a.tier], "to_text": TIER_TEXT[b.tier]}
            (improved if b.tier > a.tier else regressed).append(item)
    return improved, regressed


def repeat_failures(trend: Trend) -> list[str]:
    """Sites (latest names) that failed in two or more of the campaigns."""
    return [name for name, _, res in trend.sites.values() if sum(1 for r in res if r is not None and r.failed) >= 2]


def trend_dict(trend: Trend) -> dict:
    """The trend JSON: {"campaigns", "groups", "sites", "repeat_failures"} plus "overall",
    "improved", "regressed", "as_of" and "notes"."""
    groups = []
    for g in trend.groups:
        per = []
        for i, c in enumerate(trend.campaigns):
            rows = [r for r in c.rows if r.group == g]
            per.append({"campaign": c.name, **stats(rows, _results_of(trend, i, g), c.meta)})
        groups.append({"group": g, "campaigns": per})
    overall = [{"campaign": c.name, **stats(c.rows, _results_of(trend, i), c.meta),
                "working_days_histogram": {str(k): v for k, v in working_days_histogram(c.rows).items()}}
               for i, c in enumerate(trend.campaigns)]
    improved, regressed = changes(trend)
    return {
        "campaigns": trend.names,
        "groups": groups,
        "overall": overall,
        "sites": [
            {"site": name, "key": key, "group": group,
             "results": [None if r is None else {
                 "campaign": r.campaign, "site": r.site, "status": str(r.status),
                 "working_days": r.working_days, "within_deadline": r.within_deadline,
                 "same_day": r.same_day, "failed": r.failed} for r in res]}
            for key, (name, group, res) in trend.sites.items()
        ],
        "repeat_failures": repeat_failures(trend),
        "improved": improved,
        "regressed": regressed,
        "as_of": {c.name: iso(c.meta.as_of) for c in trend.campaigns},
        "notes": {"rates": RATE_NOTE_EN, "failed": FAILED_NOTE_EN,
                  "sites": "matched across campaigns by site key; a site absent from a campaign has null there"},
    }


# ------------------------------------------------------------------------------ the store

def load(db, names: list[str], calendar: WorkCalendar, *, as_of: dict[str, datetime] | datetime,
         generated_at: datetime | None = None) -> Trend:
    """The named campaigns (in this order) from the database, each as of `as_of` (one moment,
    or one per campaign name). An unknown or repeated name is a UserError naming it."""
    from bot.campaign.results import campaign_rows
    from bot.store import models as m

    if not names:
        raise UserError("--trend needs at least one campaign name")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise UserError(f"--trend: campaign {n!r} is named twice")
        seen.add(n)
    with db.session() as s:
        known = list(s.scalars(select(m.Campaign.name).order_by(m.Campaign.id)))
    for n in names:
        if n not in known:
            raise UserError(f"--trend: no campaign named {n!r} in the database "
                            f"(known: {', '.join(known) if known else 'none'})")
    campaigns = []
    for n in names:
        moment = as_of[n] if isinstance(as_of, dict) else as_of
        rows, meta = campaign_rows(db, n, calendar, as_of=moment, generated_at=generated_at)
        campaigns.append(Campaign(name=n, rows=rows, meta=meta, keys=site_keys(db, [r.letter_id for r in rows])))
    return build(campaigns)


def site_keys(db, letter_ids: list[int | None]) -> dict[int, str]:
    """letter id -> the key of its site's file (a renamed site keeps its key)."""
    from bot.store import models as m

    ids = [i for i in letter_ids if i is not None]
    out: dict[int, str] = {}
    with db.session() as s:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for lid, key in s.execute(select(m.Letter.id, m.Site.key)
                                      .join(m.Mailbox, m.Letter.mailbox_id == m.Mailbox.id)
                                      .join(m.Site, m.Mailbox.site_id == m.Site.id)
                                      .where(m.Letter.id.in_(chunk))):
                out[lid] = key
    return out
