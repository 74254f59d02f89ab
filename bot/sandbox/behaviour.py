"""What a simulated site does with a letter, decided from the roster and the clock alone.

Nothing is scheduled: every page works out a letter's state from `clock.now()` at request time,
so a simulated clock can jump a week and the sites are instantly where they would have been.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import Enum

from bot.calendar import WorkCalendar
from bot.clock import SHANGHAI, local
from bot.sandbox.roster import RosterSite

IN_PROGRESS_AFTER = timedelta(hours=1)   # 待处理 -> 办理中
ACK_AFTER = timedelta(minutes=3)         # the automatic acknowledgement email
TOO_SOON_FALLBACK = timedelta(minutes=30)


class Status(str, Enum):
    PENDING = "pending"          # 待处理: just received
    IN_PROGRESS = "in_progress"  # 办理中: an hour after receipt
    FINISHED = "finished"        # 已办结: replied
    GONE = "gone"                # deleted: every page acts as if it never existed


@dataclass(frozen=True)
class Timeline:
    received_at: datetime
    in_progress_at: datetime
    reply_at: datetime | None            # when the reply appears
    displayed_reply_at: datetime | None  # the reply time the site shows (backdated or not)
    delete_at: datetime | None
    reply_on_site: bool = True
    """False for `reply.channel = "email"`: the answer goes only by email and the site's pages
    keep showing the letter as in progress (办理中) for ever, as such sites do."""
    email_reply_at: datetime | None = None   # when the answer is emailed (channel email / both)
    ack_at: datetime | None = None           # when the acknowledgement is emailed (`ack = true`)
    published_at: datetime | None = None
    """On a moderated board (`moderated`), when staff publish the letter (reviewed, or answered
    if sooner); before that the public list does not show it. None: shown from receipt."""
    edited_at: datetime | None = None
    """On a board with an `edit` rule, when staff edit the answered letter again: from then on
    the board shows this as its reply time (the row's last-modified time)."""

    def status(self, now: datetime) -> Status:
        if self.delete_at is not None and now >= self.delete_at:
            return Status.GONE
        if self.reply_on_site and self.reply_at is not None and now >= self.reply_at:
            return Status.FINISHED
        if now >= self.in_progress_at:
            return Status.IN_PROGRESS
        return Status.PENDING

    def listed(self, now: datetime) -> bool:
        """Whether a public list shows the letter now (not deleted, and published)."""
        if self.status(now) is Status.GONE:
            return False
        return self.published_at is None or now >= self.published_at

    def shown_reply_at(self, now: datetime) -> datetime | None:
        """The reply time a board shows now: the row's last modification, i.e. the reply, or a
        later edit once made. None until the reply."""
        if self.status(now) is not Status.FINISHED:
            return None
        if self.edited_at is not None and now >= self.edited_at:
            return self.edited_at
        return self.displayed_reply_at


class Behaviour:
    """One site's script: reply, deletion and backdating rules from its roster entry."""

    def __init__(self, site: RosterSite, calendar: WorkCalendar):
        self.site = site
        self.calendar = calendar

    def timeline(self, received_at: datetime) -> Timeline:
        s = local(received_at)
        reply_at = displayed = delete_at = None
        if self.site.reply is not None:
            reply_at = self._after(s, self.site.reply.workdays, self.site.reply.at)
            displayed = reply_at
            if self.site.backdate is not None:
                day = self.nth_workday_before(local(reply_at).date(), self.site.backdate.workdays)
                displayed = datetime.combine(day, local(reply_at).timetz())
        if self.site.delete is not None:
            delete_at = self._after(s, self.site.delete.workdays, self.site.delete.at)
        channel = self.site.reply.channel if self.site.reply is not None else "site"
        published = edited = None
        if self.site.moderated is not None:
            published = self.review_at(s)
            if reply_at is not None and reply_at < published:
                published = reply_at          # answering the letter publishes it too
        if self.site.edit is not None and reply_at is not None:
            edited = self._after(local(reply_at), self.site.edit.workdays, self.site.edit.at)
        return Timeline(s, s + IN_PROGRESS_AFTER, reply_at, displayed, delete_at,
                        reply_on_site=channel != "email",
                        email_reply_at=reply_at if channel in ("email", "both") else None,
                        ack_at=s + ACK_AFTER if self.site.ack else None,
                        published_at=published, edited_at=edited)

    def traffic_timeline(self, timeline: Timeline) -> Timeline:
        """Another citizen's letter (its own fate, `bot.sandbox.traffic`) on this site: a
        moderated board's staff publish it as they do every letter (reviewed, or answered if
        sooner)."""
        review = self.review_at(timeline.received_at)
        if review is None:
            return timeline
        if timeline.reply_at is not None and timeline.reply_at < review:
            review = timeline.reply_at
        return replace(timeline, published_at=review)

    def review_at(self, received_at: datetime) -> datetime | None:
        """When a moderated board's staff review (and publish) a letter received then; None on
        a board without moderation. The same for every letter of the board, other citizens'
        too."""
        rule = self.site.moderated
        if rule is None:
            return None
        return self._after(local(received_at), rule.workdays, rule.at)

    def _after(self, s: datetime, workdays: int, at: time) -> datetime:
        day = self.calendar.nth_workday_after(s.date(), workdays)
        when = datetime.combine(day, at, tzinfo=SHANGHAI)
        return when if when > s else s + TOO_SOON_FALLBACK

    def nth_workday_before(self, day: date, n: int) -> date:
        """The n-th working day strictly before `day` (n = 0: `day` itself)."""
        d = day
        for _ in range(n):
            d -= timedelta(days=1)
            while not self.calendar.is_workday(d):
                d -= timedelta(days=1)
        return d


_OPENINGS = [
    "您好！您通过本网站{mailbox}反映的《{title}》已收悉，感谢您对我们工作的关心和支持。",
    "您好！您于{received}提交的《{title}》来信收悉，现答复如下。",
    "尊敬的网友：您好！关于您反映的《{title}》相关问题，我单位高度重视，现将有关情况答复如下。",
]
_MIDDLES = [
    "经认真研究并与相关科室核实，您反映的问题属于我单位职责范围，我们已安排专人跟进办理，"
    "相关政策依据及办理流程可登录本网站“政策文件”栏目查阅。",
    "经调查了解，您所咨询的事项可按照现行规定到政务服务中心相关窗口办理，"
    "办理时请携带本人有效身份证件及相关证明材料。",
    "针对您提出的意见建议，我们已转交业务科室研究，将在今后的工作中认真吸纳，进一步改进工作。",
]
_CLOSINGS = [
    "如有其他疑问，请在工作日上班时间拨打咨询电话0917-{phone}。再次感谢您的来信！",
    "感谢您对{unit}工作的理解和支持！",
    "欢迎您继续关注和监督我们的工作。",
]


def reply_text(*, title: str, unit: str, mailbox_label: str, received_at: datetime,
               tracking_code: str) -> str:
    """A plausible, polite answer that names the letter; stable for a given letter."""
    h = hashlib.sha256(tracking_code.encode()).digest()
    fields = {"title": title, "unit": unit, "mailbox": mailbox_label,
              "received": f"{local(received_at):%Y年%m月%d日}",
              "phone": f"{3_000_000 + int.from_bytes(h[3:6], 'big') % 6_000_000}"}
    return "".join([_OPENINGS[h[0] % 3], _MIDDLES[h[1] % 3], _CLOSINGS[h[2] % 3]]).format(**fields) \
        + f"\n{unit}"
