"""Per-site statistics and the inspection notice's sentence (DESIGN.md, "Responsiveness
table (attachment 3)").

A site "replied within N working days" when it has letters and all of them did, and "replied
the same day" when all of them did. A late reply is a reply, not "no reply". A site whose
letters are not all decided is named only for what is decided: it is awaiting while one of its
letters still has time and none failed, and a site the check could not finish (a failed or
uncertain submission, a firewall, a letter waiting for the inspector) is said as such, never
as "未回复".
"""

from __future__ import annotations

from typing import Iterable

from bot.clock import local
from bot.report.rows import ReportMeta, ReportRow, iso, ordered
from bot.vocab import RowStatus

REASON_DELETED = "未回复并删除测试信件"
REASON_NO_REPLY = "未回复"
REASON_LATE = "超过{d}个工作日未回复"
REASON_SUBMIT_FAILED = "测试信件提交失败"
REASON_UNCERTAIN = "测试信件提交结果待核实"
REASON_BLOCKED = "网站拦截访问，未能完成检查"
REASON_INSPECTOR = "测试信件待检查人员处理"
REASON_UNVERIFIED = "期限后未能查看到测试信件，回复情况待核实"

# The check could not be completed for these, for a reason that is not the site's answer.
UNFINISHED = {
    RowStatus.SUBMIT_FAILED: REASON_SUBMIT_FAILED,
    RowStatus.SUBMIT_UNCERTAIN: REASON_UNCERTAIN,
    RowStatus.BLOCKED: REASON_BLOCKED,
    RowStatus.NEEDS_INSPECTOR: REASON_INSPECTOR,
    RowStatus.UNVERIFIED: REASON_UNVERIFIED,
}
NO_REPLY_STATUSES = (RowStatus.NO_REPLY, RowStatus.NEVER_VISIBLE)

SUMMARY_KEYS = ("sites", "letters", "within_deadline_sites", "same_day_sites",
                "deleted_sites", "no_reply_sites", "awaiting_sites", "as_of")


class _Site:
    """What the statistics need to know of one site's letters, gathered in one pass."""

    __slots__ = ("all_within", "all_same_day", "deleted", "no_reply", "late", "failed", "awaiting_letters",
                 "unfinished")

    def __init__(self):
        self.all_within = self.all_same_day = True
        self.deleted = self.no_reply = self.late = self.failed = False
        self.awaiting_letters = 0          # letters still within their deadline
        self.unfinished: str | None = None   # the reason of its first unfinished letter

    @property
    def awaiting(self) -> bool:
        """At least one letter still within its deadline, and none that already failed."""
        return self.awaiting_letters > 0 and not self.failed

    def failure(self, deadline_workdays: int) -> str | None:
        """The reason the site failed, the most serious first, or None."""
        if self.deleted:
            return REASON_DELETED
        if self.no_reply:
            return REASON_NO_REPLY
        if self.late:
            return REASON_LATE.format(d=deadline_workdays)
        return None


def _sites(rows: Iterable[ReportRow]) -> dict[str, _Site]:
    """Site name -> its statistics, sites in table order: one sort, one pass over the rows."""
    sites: dict[str, _Site] = {}
    for r in ordered(rows):
        s = sites.get(r.site)
        if s is None:
            s = sites[r.site] = _Site()
        within, status = r.within_deadline, r.status
        if within is not True:
            s.all_within = False
            if within is False:
                s.failed = True
        if r.same_day is not True:
            s.all_same_day = False
        if status == RowStatus.DELETED:
            s.deleted = True
        elif status in NO_REPLY_STATUSES:
            s.no_reply = True
        elif status == RowStatus.AWAITING:
            s.awaiting_letters += 1
        elif status == RowStatus.REPLIED and within is False:
            s.late = True
        if s.unfinished is None and status in UNFINISHED:
            s.unfinished = UNFINISHED[status]
    return sites


def summarize(rows: Iterable[ReportRow], meta: ReportMeta | None = None) -> dict:
    rows = list(rows)
    return _summary(_sites(rows), len(rows), meta)


def _summary(sites: dict[str, _Site], letters: int, meta: ReportMeta | None) -> dict:
    stats = sites.values()
    return {
        "sites": len(sites),
        "letters": letters,
        "within_deadline_sites": sum(1 for s in stats if s.all_within),
        "same_day_sites": sum(1 for s in stats if s.all_same_day),
        "deleted_sites": sum(1 for s in stats if s.deleted),
        "no_reply_sites": sum(1 for s in stats if s.no_reply),
        "awaiting_sites": sum(1 for s in stats if s.awaiting),
        "as_of": iso(meta.as_of) if meta is not None else None,
    }


def failing_sites(rows: Iterable[ReportRow], deadline_workdays: int = 5) -> list[tuple[str, str]]:
    """(site, reason) for every site with a decided failure, in table order: deleted, then
    never replied, then replied late. A site with no failure is not here, whatever is still
    undecided about it."""
    return _failing(_sites(rows), deadline_workdays)


def _failing(sites: dict[str, _Site], deadline_workdays: int) -> list[tuple[str, str]]:
    return [(name, reason) for name, s in sites.items() if (reason := s.failure(deadline_workdays))]


def unfinished_sites(rows: Iterable[ReportRow]) -> list[tuple[str, str]]:
    """(site, reason) for every site without a decided failure whose check could not be
    finished for a reason of ours or of the way (a submission, a firewall, the inspector)."""
    return _unfinished(_sites(rows))


def _unfinished(sites: dict[str, _Site]) -> list[tuple[str, str]]:
    return [(name, s.unfinished) for name, s in sites.items() if s.unfinished and s.failure(5) is None]


def notice_sentence(rows: Iterable[ReportRow], meta: ReportMeta | None = None) -> str:
    """The notice's sentence, e.g.

    在互动回应专项检查中，51家网站的测试信件能按要求做到5个工作日内回复，其中20家网站均做到
    当日回复。宝鸡市应急管理局、宝鸡港务区管理委员会未在5个工作日内回复；宝鸡市文化和旅游局
    未回复并删除测试信件。

    Sites that never replied and sites that replied late are both "未在N个工作日内回复" (as the
    notice phrases them); deleted letters and checks that could not be finished are listed
    separately. While any letter is undecided, the sentence begins "截至<date>，" and says how
    many sites and letters are still within their deadline; it names no awaiting site.
    """
    meta = meta or ReportMeta()
    rows = list(rows)
    d = meta.deadline_workdays
    sites = _sites(rows)
    s = _summary(sites, len(rows), meta)
    awaiting_rows = any(r.status == RowStatus.AWAITING for r in rows)
    not_sent = [r for r in rows if r.status == RowStatus.NOT_SENT]
    text = ""
    if (awaiting_rows or not_sent) and meta.as_of is not None:
        text = f"截至{local(meta.as_of):%Y年%-m月%-d日}，"
    text += f"在互动回应专项检查中，{s['within_deadline_sites']}家网站的测试信件能按要求做到{d}个工作日内回复"
    if s["same_day_sites"]:
        text += f"，其中{s['same_day_sites']}家网站均做到当日回复"
    text += "。"
    if s["awaiting_sites"]:
        waiting = sum(site.awaiting_letters for site in sites.values() if site.awaiting)
        text += f"另有{s['awaiting_sites']}家网站的{waiting}封测试信件尚在回复时限内。"
    if not_sent:
        text += f"{len({r.site for r in not_sent})}家网站的测试信件尚未提交。"

    late_phrase = f"未在{d}个工作日内回复"
    phrase_of = {REASON_NO_REPLY: late_phrase, REASON_LATE.format(d=d): late_phrase, REASON_DELETED: REASON_DELETED}
    groups: dict[str, list[str]] = {late_phrase: [], REASON_DELETED: []}
    for site, reason in _failing(sites, d):
        groups[phrase_of[reason]].append(site)
    for site, reason in _unfinished(sites):
        groups.setdefault(reason, []).append(site)
    clauses = ["、".join(sites) + phrase for phrase, sites in groups.items() if sites]
    if clauses:
        text += "；".join(clauses) + "。"
    return text
