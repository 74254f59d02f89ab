"""Per-site statistics and the inspection notice's sentence (DESIGN.md, "Responsiveness
table (attachment 3)").

A site "replied within N working days" when it has letters and all of them did, and "replied
the same day" when all of them did. A late reply is a reply, not "no reply".
"""

from __future__ import annotations

from typing import Iterable

from bot.report.rows import ReportMeta, ReportRow, ordered

REASON_DELETED = "未回复并删除测试信件"
REASON_NO_REPLY = "未回复"
REASON_LATE = "超过{d}个工作日未回复"
REASON_SUBMIT_FAILED = "测试信件提交失败"

SUMMARY_KEYS = ("sites", "letters", "within_deadline_sites", "same_day_sites",
                "deleted_sites", "no_reply_sites")


def _by_site(rows: Iterable[ReportRow]) -> dict[str, list[ReportRow]]:
    """Site name -> its rows, sites in table order."""
    sites: dict[str, list[ReportRow]] = {}
    for r in ordered(rows):
        sites.setdefault(r.site, []).append(r)
    return sites


def _no_reply(r: ReportRow) -> bool:
    """No reply at all, and neither deleted nor never submitted. A letter a firewall kept us
    from sending or from checking (`blocked`), or one still waiting for the inspector, is not
    evidence of silence."""
    return r.replied_at is None and r.status not in ("deleted", "submit_failed", "blocked", "needs_inspector")


def summarize(rows: Iterable[ReportRow]) -> dict:
    rows = list(rows)
    sites = _by_site(rows)
    return {
        "sites": len(sites),
        "letters": len(rows),
        "within_deadline_sites": sum(1 for rs in sites.values()
                                     if rs and all(r.within_deadline for r in rs)),
        "same_day_sites": sum(1 for rs in sites.values() if rs and all(r.same_day for r in rs)),
        "deleted_sites": sum(1 for rs in sites.values() if any(r.status == "deleted" for r in rs)),
        "no_reply_sites": sum(1 for rs in sites.values() if any(_no_reply(r) for r in rs)),
    }


def failing_sites(rows: Iterable[ReportRow], deadline_workdays: int = 5) -> list[tuple[str, str]]:
    """(site, reason) for every site not within the deadline, in table order.

    One reason per site, the most serious of its letters: deleted, then never replied, then
    replied late, then submission failed.
    """
    out = []
    for site, rs in _by_site(rows).items():
        if all(r.within_deadline for r in rs):
            continue
        failing = [r for r in rs if not r.within_deadline]
        if any(r.status == "deleted" for r in failing):
            reason = REASON_DELETED
        elif any(_no_reply(r) for r in failing):
            reason = REASON_NO_REPLY
        elif any(r.replied_at is not None for r in failing):
            reason = REASON_LATE.format(d=deadline_workdays)
        elif any(r.status == "submit_failed" for r in failing):
            reason = REASON_SUBMIT_FAILED
        else:   # not within, yet neither replied nor unreplied: cannot happen, say no reply
            reason = REASON_NO_REPLY
        out.append((site, reason))
    return out


def notice_sentence(rows: Iterable[ReportRow], meta: ReportMeta | None = None) -> str:
    """The notice's sentence, e.g.

    在互动回应专项检查中，51家网站的测试信件能按要求做到5个工作日内回复，其中20家网站均做到
    当日回复。宝鸡市应急管理局、宝鸡港务区管理委员会未在5个工作日内回复；宝鸡市文化和旅游局
    未回复并删除测试信件。

    Sites that never replied and sites that replied late are both "未在N个工作日内回复" (as the
    notice phrases them); deleted and failed submissions are listed separately. The same-day
    clause is left out when no site replied the same day.
    """
    meta = meta or ReportMeta()
    rows = list(rows)
    d = meta.deadline_workdays
    s = summarize(rows)
    text = (f"在互动回应专项检查中，{s['within_deadline_sites']}家网站的测试信件能按要求做到"
            f"{d}个工作日内回复")
    if s["same_day_sites"]:
        text += f"，其中{s['same_day_sites']}家网站均做到当日回复"
    text += "。"

    late_phrase = f"未在{d}个工作日内回复"
    phrase_of = {
        REASON_NO_REPLY: late_phrase,
        REASON_LATE.format(d=d): late_phrase,
        REASON_DELETED: REASON_DELETED,
        REASON_SUBMIT_FAILED: REASON_SUBMIT_FAILED,
    }
    groups: dict[str, list[str]] = {late_phrase: [], REASON_DELETED: [], REASON_SUBMIT_FAILED: []}
    for site, reason in failing_sites(rows, d):
        groups[phrase_of[reason]].append(site)
    clauses = ["、".join(sites) + phrase for phrase, sites in groups.items() if sites]
    if clauses:
        text += "；".join(clauses) + "。"
    return text
