"""The closed vocabularies: letter states, observation and flow outcomes, row statuses, flags.

Every state, outcome, status and flag the product knows is a member of one of these enums, and
the report's wording for each lives here, in one table (STYLE.md 11): code never reads a state
from a text prefix, and a name outside the vocabulary is an error where it is first met (a
template's `expect` outcome at load time, a stored value when it is read back).

They are `StrEnum`s: a member is equal to its text, which is what the database stores.
"""

from __future__ import annotations

from enum import StrEnum


class LetterState(StrEnum):
    """Where a letter is in its life (DESIGN.md "Letter lifecycle")."""

    PLANNED = "planned"
    SUBMITTING = "submitting"              # claimed, with a lease, by one worker
    SUBMITTED = "submitted"
    SUBMIT_FAILED = "submit_failed"        # failed before the final click: nothing was sent
    SUBMIT_UNCERTAIN = "submit_uncertain"  # clicked, outcome unknown: never resubmitted
    NEEDS_INSPECTOR = "needs_inspector"    # a captcha or a login before the final click
    REPLIED = "replied"
    DELETED = "deleted"
    NEVER_VISIBLE = "never_visible"
    OVERDUE = "overdue"


# After the submission: the verdict is derived from observations (bot.campaign.derive).
SENT_STATES = (LetterState.SUBMITTED, LetterState.REPLIED, LetterState.DELETED,
               LetterState.NEVER_VISIBLE, LetterState.OVERDUE)


class MailboxKind(StrEnum):
    """Which of a site's mailboxes a letter goes to (the table's 信箱栏目 is its label)."""

    LEADER = "leader"      # 领导信箱
    MAYOR = "mayor"        # 市长信箱 / 县长信箱 / 区长信箱
    BOARD = "board"        # a CMS message board: 在线留言, 咨询投诉, ...


class Channel(StrEnum):
    """Where a reply, or the letter itself, was looked for."""

    SITE_QUERY = "site_query"    # the site's query page (tracking code / password)
    SITE_LIST = "site_list"      # the site's public list, or its search
    EMAIL = "email"              # the inspector's IMAP inbox
    MANUAL = "manual"            # recorded by the inspector (a phone call, an SMS)


SITE_CHANNELS = (Channel.SITE_QUERY, Channel.SITE_LIST)


class Outcome(StrEnum):
    """What one look at one channel saw (an observation's outcome)."""

    FOUND = "found"
    # The site said the letter is not there: its query refused the code, its search for the
    # exact title or code answered "none", or the list was read back past the letter's
    # submission (or to its end) without it. Only this counts towards a deletion.
    NOT_FOUND = "not_found"
    # Not on the rows read, but they did not reach back to the letter's submission (a list
    # that moved on, a page limit): proves nothing, like an error.
    NOT_COVERED = "not_covered"
    BLOCKED = "blocked"          # a firewall or challenge page answered
    ERROR = "error"              # the site did not answer, or not as the template expects


class FlowOutcome(StrEnum):
    """How one run of a scenario flow ended (bot.browser.engine.FlowResult)."""

    SUCCESS = "success"
    REJECTED = "rejected"                # the site refused the form and said why
    FOUND = "found"
    NOT_FOUND = "not_found"
    NOT_COVERED = "not_covered"
    BLOCKED = "blocked"
    DRY_RUN = "dry_run"                  # stopped before the final click, as asked
    FAILED = "failed"                    # before the final click: nothing was sent
    UNCERTAIN = "uncertain"              # after the final click: the letter may have gone
    NEEDS_INSPECTOR = "needs_inspector"  # before the final click: a person must act


class Marker(StrEnum):
    """The outcome names a template's `expect` step may use (a closed set, checked at load).

    `captcha_wrong` and `expired` are not results: the engine acts on them (a new captcha
    image; the whole flow again, once) and the flow goes on."""

    SUCCESS = "success"
    REJECTED = "rejected"
    FAILED = "failed"
    FOUND = "found"
    NOT_FOUND = "not_found"
    BLOCKED = "blocked"
    CAPTCHA_WRONG = "captcha_wrong"
    EXPIRED = "expired"


class SiteStatus(StrEnum):
    """What a status word a site shows (处理状态) means: a template's `status_map` values."""

    PENDING = "pending"              # 待处理, 办理中 ...
    ACKNOWLEDGED = "acknowledged"    # 已受理, 已转办: taken in, not answered
    REPLIED = "replied"              # 已办结, 已回复 ...


class ReplyKind(StrEnum):
    ANSWER = "answer"
    ACK = "ack"                      # an acknowledgement (受理/自动回复), not an answer


class RowStatus(StrEnum):
    """A letter's status in the responsiveness table, as of a moment."""

    REPLIED = "replied"
    AWAITING = "awaiting"                  # no reply yet, deadline not passed: undecided
    NO_REPLY = "no_reply"                  # no reply, deadline passed
    DELETED = "deleted"
    NEVER_VISIBLE = "never_visible"        # deadline passed; the site never showed the letter
    NOT_SENT = "not_sent"                  # planned, being submitted, or a retry pending
    SUBMIT_FAILED = "submit_failed"
    SUBMIT_UNCERTAIN = "submit_uncertain"
    NEEDS_INSPECTOR = "needs_inspector"
    BLOCKED = "blocked"                    # a firewall kept us from sending or from looking
    # Deadline passed, no reply seen, but no look since the deadline could see the letter (a
    # list that never reached back to it, errors): "no reply" is not proven.
    UNVERIFIED = "unverified"


# Statuses that say nothing about the site's answer yet (within_deadline is null).
UNDECIDED = (RowStatus.AWAITING, RowStatus.NOT_SENT, RowStatus.SUBMIT_FAILED, RowStatus.SUBMIT_UNCERTAIN,
             RowStatus.NEEDS_INSPECTOR, RowStatus.BLOCKED, RowStatus.UNVERIFIED)


class Flag(StrEnum):
    """A doubt or a remark about a row: shown in 备注 and in the JSON, never resolved silently."""

    SITE_TIME_BEFORE_SUBMISSION = "site_time_before_submission"
    CLOCK_SKEW = "clock_skew"
    POSSIBLY_BACKDATED = "possibly_backdated"
    ACK_ONLY = "ack_only"
    DATE_ONLY_REPLY_TIME = "date_only_reply_time"
    EMAIL_DATE_MISMATCH = "email_date_mismatch"
    ESTIMATED_CALENDAR = "estimated_calendar"
    DELETED_AFTER_REPLY = "deleted_after_reply"
    BLOCKED_POLLS = "blocked_polls"
    UNPARSED_REPLY_TIME = "unparsed_reply_time"
    UNKNOWN_STATUS = "unknown_status"
    ACK_OR_REPLY_UNCERTAIN = "ack_or_reply_uncertain"
    NOT_COVERED_POLLS = "not_covered_polls"
    SEEN_AGAIN = "seen_again"
    AWAITING_PUBLICATION = "awaiting_publication"
    REPLY_TIME_MOVED = "reply_time_moved"


# The report's wording for every status and flag (one table, STYLE.md 11).
STATUS_TEXT: dict[RowStatus, str] = {
    RowStatus.REPLIED: "已回复",
    RowStatus.AWAITING: "尚在回复时限内",
    RowStatus.NO_REPLY: "未回复",
    RowStatus.DELETED: "删除信件",
    RowStatus.NEVER_VISIBLE: "提交后未能查到信件",
    RowStatus.NOT_SENT: "尚未提交",
    RowStatus.SUBMIT_FAILED: "提交失败",
    RowStatus.SUBMIT_UNCERTAIN: "提交结果不明，待核实",
    RowStatus.NEEDS_INSPECTOR: "待检查人员处理",
    RowStatus.BLOCKED: "网站拦截访问（防火墙/验证页面）",
    RowStatus.UNVERIFIED: "期限后未能查看到信件，回复情况待核实",
}
# 备注 shows the status text except for a plain reply (the row's times say it all).
REMARK_STATUSES = tuple(s for s in RowStatus if s is not RowStatus.REPLIED)
LATE_TEXT = "超过{d}个工作日未回复"

FLAG_TEXT: dict[Flag, str] = {
    Flag.SITE_TIME_BEFORE_SUBMISSION: "网站回复时间早于提交时间",
    Flag.CLOCK_SKEW: "网站回复时间晚于首次发现时间（时钟偏差）",
    Flag.POSSIBLY_BACKDATED: "回复时间疑似倒签",
    Flag.ACK_ONLY: "仅收到受理/自动回复",
    Flag.DATE_ONLY_REPLY_TIME: "网站仅显示回复日期",
    Flag.EMAIL_DATE_MISMATCH: "邮件日期与到达时间不符",
    Flag.ESTIMATED_CALENDAR: "节假日安排为推算",
    Flag.DELETED_AFTER_REPLY: "回复后信件被删除",
    Flag.BLOCKED_POLLS: "查询时曾遇网站拦截页面",
    Flag.UNPARSED_REPLY_TIME: "网站回复时间无法识别，按首次发现时间计",
    Flag.UNKNOWN_STATUS: "网站显示的办理状态无法识别",
    Flag.ACK_OR_REPLY_UNCERTAIN: "无法确定是答复还是受理回执，待核实",
    Flag.NOT_COVERED_POLLS: "公开列表曾未能翻查到信件提交日期",
    Flag.SEEN_AGAIN: "信件曾查询不到后又重新出现",
    Flag.AWAITING_PUBLICATION: "网站审核后公开，尚未公开",
    Flag.REPLY_TIME_MOVED: "网站显示的回复时间在首次发现后被改动（按首次所见计）",
}

assert set(STATUS_TEXT) == set(RowStatus) and set(FLAG_TEXT) == set(Flag)


def flag_text(name: str) -> str:
    """A flag's wording; a name outside the vocabulary (from an older database) is shown as it is
    rather than hidden."""
    try:
        return FLAG_TEXT[Flag(name)]
    except ValueError:
        return name
