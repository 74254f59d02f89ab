"""What the dashboard reads from the store. Nothing here writes: every session is only read
and closed without a commit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bot.report.rows import fmt_time
from bot.store import models as m
from bot.vocab import LetterState


@dataclass(frozen=True)
class CampaignProgress:
    name: str
    state: str
    created_at: datetime
    deadline_workdays: int
    letters: int
    by_state: dict[str, int]
    next_poll_at: datetime | None
    next_submission_at: datetime | None
    open_letters: int
    needs_attention: int          # submit_uncertain + needs_inspector: a person must look


ATTENTION = (LetterState.SUBMIT_UNCERTAIN, LetterState.NEEDS_INSPECTOR)


def campaigns(db) -> list[CampaignProgress]:
    out = []
    with db.session() as s:
        for c in s.scalars(select(m.Campaign).order_by(m.Campaign.id)):
            counts = Counter({str(state): n for state, n in s.execute(
                select(m.Letter.state, func.count()).where(m.Letter.campaign_id == c.id).group_by(m.Letter.state))})
            next_poll = s.scalar(select(func.min(m.Letter.next_poll_at)).where(m.Letter.campaign_id == c.id))
            next_sub = s.scalar(select(func.min(m.Letter.planned_at)).where(
                m.Letter.campaign_id == c.id, m.Letter.state.in_([LetterState.PLANNED, LetterState.SUBMIT_FAILED])))
            open_n = s.scalar(select(func.count()).select_from(m.Letter).where(
                m.Letter.campaign_id == c.id, m.Letter.next_poll_at.is_not(None))) or 0
            out.append(CampaignProgress(
                name=c.name, state=c.state, created_at=c.created_at, deadline_workdays=c.deadline_workdays,
                letters=sum(counts.values()),
                by_state={str(st): counts.get(str(st), 0) for st in LetterState if counts.get(str(st), 0)},
                next_poll_at=next_poll, next_submission_at=next_sub, open_letters=open_n,
                needs_attention=sum(counts.get(str(st), 0) for st in ATTENTION)))
    return out


def campaign_names(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(m.Campaign.name).order_by(m.Campaign.id)))


@dataclass(frozen=True)
class TimelineItem:
    at: datetime | None
    kind: str          # submission | event | observation | reply | mail
    title: str
    detail: list[tuple[str, str]]
    evidence: list[tuple[int, str]]     # (evidence id, label)


def letter(db, letter_id: int):
    """(letter, campaign name, site, mailbox label, timeline, evidence files) or None."""
    with db.session() as s:
        row = s.scalar(select(m.Letter).where(m.Letter.id == letter_id).options(
            selectinload(m.Letter.events), selectinload(m.Letter.observations), selectinload(m.Letter.replies),
            selectinload(m.Letter.campaign), selectinload(m.Letter.mailbox).selectinload(m.Mailbox.site)))
        if row is None:
            return None
        files = {e.id: e for e in s.scalars(select(m.EvidenceFile).where(m.EvidenceFile.letter_id == letter_id)
                                            .order_by(m.EvidenceFile.id))}
        mails = list(s.scalars(select(m.MailMessage).where(m.MailMessage.letter_id == letter_id)
                               .order_by(m.MailMessage.internaldate)))
        extra_ids = {i for o in row.observations for i in (o.html_id, o.screenshot_id) if i} | \
                    {i for e in row.events for i in (e.evidence_ids or []) if isinstance(i, int)} | \
                    {mm.eml_evidence_id for mm in mails if mm.eml_evidence_id}
        missing = extra_ids - files.keys()
        if missing:
            for e in s.scalars(select(m.EvidenceFile).where(m.EvidenceFile.id.in_(missing))):
                files[e.id] = e

        def ev(ids) -> list[tuple[int, str]]:
            return [(i, f"{files[i].kind} {files[i].step}".strip()) for i in ids if i in files]

        items: list[TimelineItem] = []
        if row.submitted_at is not None:
            items.append(TimelineItem(row.submitted_at, "submission", "提交测试信件",
                                      [("查询码", row.tracking_code or "")], []))
        for e in row.events:
            items.append(TimelineItem(e.at, "event", f"{e.from_state or '—'} → {e.to_state}",
                                      [("原因", e.reason or "")], ev(e.evidence_ids or [])))
        for o in row.observations:
            detail = [("渠道", str(o.channel)), ("结果", str(o.outcome))]
            if o.site_status:
                detail.append(("网站状态", o.site_status))
            if o.replied:
                detail.append(("已回复", "是"))
            if o.displayed_raw or o.displayed_reply_at:
                detail.append(("网站显示的回复时间", o.displayed_raw or fmt_time(o.displayed_reply_at)))
            if o.reply_unit:
                detail.append(("回复单位", o.reply_unit))
            if o.reply_text:
                detail.append(("回复内容", o.reply_text))
            for k, v in sorted((o.detail or {}).items()):
                if isinstance(v, (str, int, float, bool)) and str(v):
                    detail.append((str(k), str(v)))
            items.append(TimelineItem(o.at, "observation", f"查看（{o.channel}）", detail,
                                      ev([i for i in (o.html_id, o.screenshot_id) if i])))
        for r in row.replies:
            detail = [("渠道", str(r.channel)), ("类别", str(r.kind)), ("首次发现", fmt_time(r.first_seen_at))]
            if r.text:
                detail.append(("回复内容", r.text))
            if r.note:
                detail.append(("备注", r.note))
            if r.flags:
                detail.append(("标记", "、".join(str(f) for f in r.flags)))
            items.append(TimelineItem(r.replied_at, "reply", "回复", detail, []))
        for mm in mails:
            items.append(TimelineItem(mm.internaldate, "mail", f"邮件（{mm.kind}）",
                                      [("发件人", mm.from_addr), ("主题", mm.subject), ("匹配方式", mm.matched_by or "")],
                                      ev([mm.eml_evidence_id] if mm.eml_evidence_id else [])))
        items.sort(key=lambda t: (t.at is None, t.at or datetime.min))
        info = {
            "id": row.id, "title": row.title, "body": row.body, "state": str(row.state),
            "campaign": row.campaign.name, "site": row.mailbox.site.name, "site_key": row.mailbox.site.key,
            "group": row.mailbox.site.group, "mailbox": row.mailbox.label, "submitted_at": row.submitted_at,
            "tracking_code": row.tracking_code or "", "base_url": row.mailbox.site.base_url,
        }
        evidence = [(e.id, e.kind, e.step, e.created_at) for e in sorted(files.values(), key=lambda e: e.id)]
        return info, items, evidence


def evidence_file(db, evidence_id: int):
    with db.session() as s:
        e = s.get(m.EvidenceFile, evidence_id)
        if e is None:
            return None
        return {"id": e.id, "kind": e.kind, "step": e.step, "path": e.path, "letter_id": e.letter_id,
                "size": e.size, "sha256": e.sha256}
