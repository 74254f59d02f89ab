"""The database schema (DESIGN.md). Changes go through Alembic migrations in db/versions.

Observations are append-only: what a poll saw. Replies, deletions and flags are derived from
them (bot.campaign.derive) and can be recomputed at any time.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.store.types import PageText, UTCDateTime, VocabString
from bot.vocab import Channel, FlowOutcome, LetterState, Outcome, ReplyKind


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# Letter states live in bot.vocab (one closed vocabulary for the whole product).


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("key", "valid_from", name="uq_sites_key_valid_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))          # stable slug of the site file
    name: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column(String(100))
    host_unit: Mapped[str] = mapped_column(String(200), default="")
    base_url: Mapped[str] = mapped_column(String(500))
    platform: Mapped[str] = mapped_column(String(50))
    platform_version: Mapped[int] = mapped_column(Integer, default=1)
    region: Mapped[str] = mapped_column(String(100), default="")
    roster_order: Mapped[int] = mapped_column(Integer, default=0)
    # A site that moves platform gets a second record with its own validity (STYLE.md).
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(500), default="")
    # It publishes letters only after its staff review them (migration 0006).
    moderated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # In the order they were added (PostgreSQL returns an updated row last otherwise).
    mailboxes: Mapped[list[Mailbox]] = relationship(back_populates="site", order_by="Mailbox.id")


class Mailbox(Base):
    __tablename__ = "mailboxes"
    __table_args__ = (UniqueConstraint("site_id", "kind", name="uq_mailboxes_site_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))           # leader | mayor
    label: Mapped[str] = mapped_column(String(50))          # 领导信箱 / 市长信箱 / 县长信箱 ...

    site: Mapped[Site] = relationship(back_populates="mailboxes")


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default="active")
    deadline_workdays: Mapped[int] = mapped_column(Integer, default=5)
    cutoff: Mapped[str | None] = mapped_column(String(5), nullable=True)   # "HH:MM" or none
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)

    letters: Mapped[list[Letter]] = relationship(back_populates="campaign")

    @property
    def cutoff_time(self) -> time | None:
        """The receipt cut-off as a time of day, or None when the rule is off."""
        if not self.cutoff:
            return None
        hh, mm = self.cutoff.split(":")
        return time(int(hh), int(mm))


class Letter(Base):
    __tablename__ = "letters"
    # Never twice: one letter per (campaign, mailbox, seq); seq > 0 only when a campaign is
    # explicitly told to send more than one.
    __table_args__ = (UniqueConstraint("campaign_id", "mailbox_id", "seq", name="uq_letters_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[LetterState] = mapped_column(VocabString(LetterState), default=LetterState.PLANNED, index=True)
    state_changed_at: Mapped[datetime]
    category: Mapped[str] = mapped_column(String(10), default="咨询")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    writer: Mapped[dict[str, Any]] = mapped_column(default=dict)     # name, phone, email, ...
    reply_token: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    tracking_code: Mapped[str | None] = mapped_column(PageText(100), nullable=True, index=True)
    password: Mapped[str | None] = mapped_column(PageText(100), nullable=True)
    planned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    next_poll_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)
    # How the last submission attempt ended, when it did not succeed (migration 0005).
    failure_kind: Mapped[FlowOutcome | None] = mapped_column(VocabString(FlowOutcome), nullable=True)
    # Who answered the form's captcha: an inspector, a named solver hook, or the sandbox's
    # declared demo answer; None when the form had none. Shown in the report.
    captcha_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Committed just before the click that sends the letter (migration 0005). A claim that
    # expires without it sent nothing and goes back to planned; with it, the letter may have
    # reached the site and becomes submit_uncertain (never resubmitted).
    final_click_at: Mapped[datetime | None] = mapped_column(nullable=True)

    campaign: Mapped[Campaign] = relationship(back_populates="letters")
    mailbox: Mapped[Mailbox] = relationship()
    events: Mapped[list[LetterEvent]] = relationship(back_populates="letter", order_by="LetterEvent.id")
    observations: Mapped[list[Observation]] = relationship(back_populates="letter", order_by="Observation.id")
    replies: Mapped[list[Reply]] = relationship(back_populates="letter", order_by="Reply.id")


class LetterEvent(Base):
    """Every state transition, with its time, reason and the evidence that proves it."""

    __tablename__ = "letter_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[LetterState | None] = mapped_column(VocabString(LetterState), nullable=True)
    to_state: Mapped[LetterState] = mapped_column(VocabString(LetterState))
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence_ids: Mapped[list[Any]] = mapped_column(default=list)

    letter: Mapped[Letter] = relationship(back_populates="events")


class EvidenceFile(Base):
    """A file that proves what was seen: screenshot, HTML, .eml, trace. Content-addressed."""

    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="SET NULL"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(20))            # screenshot | html | eml | trace
    step: Mapped[str] = mapped_column(PageText(200), default="")
    path: Mapped[str] = mapped_column(String(500))           # relative to the evidence dir
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    @classmethod
    def of(cls, saved, letter_id: int | None, at: datetime) -> "EvidenceFile":
        """The row for a file the evidence store has saved (bot.browser.engine.Evidence)."""
        return cls(letter_id=letter_id, kind=saved.kind, step=saved.step, path=saved.path,
                   sha256=saved.sha256, size=saved.size, created_at=at)


class Observation(Base):
    """What one poll of one channel saw. Append-only."""

    __tablename__ = "observations"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(VocabString(Channel))
    at: Mapped[datetime]
    outcome: Mapped[Outcome] = mapped_column(VocabString(Outcome))
    site_status: Mapped[str | None] = mapped_column(PageText(50), nullable=True)
    replied: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    reply_unit: Mapped[str | None] = mapped_column(PageText(200), nullable=True)
    displayed_reply_at: Mapped[datetime | None] = mapped_column(nullable=True)
    displayed_date_only: Mapped[bool] = mapped_column(Boolean, default=False)
    displayed_raw: Mapped[str | None] = mapped_column(PageText(100), nullable=True)
    html_id: Mapped[int | None] = mapped_column(ForeignKey("evidence_files.id"), nullable=True)
    screenshot_id: Mapped[int | None] = mapped_column(ForeignKey("evidence_files.id"), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    letter: Mapped[Letter] = relationship(back_populates="observations")


class Reply(Base):
    """A reply found on one channel, derived from observations (or recorded by hand)."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(VocabString(Channel))
    kind: Mapped[ReplyKind] = mapped_column(VocabString(ReplyKind), default=ReplyKind.ANSWER)
    replied_at: Mapped[datetime]             # the credible reply time on this channel
    first_seen_at: Mapped[datetime]
    displayed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    date_only: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    unit: Mapped[str | None] = mapped_column(PageText(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    observation_id: Mapped[int | None] = mapped_column(ForeignKey("observations.id"), nullable=True)

    letter: Mapped[Letter] = relationship(back_populates="replies")


class MailFolderState(Base):
    """How far the IMAP reader got in one folder of one account (bot.mail.imap.StateStore)."""

    __tablename__ = "mail_folder_state"
    __table_args__ = (UniqueConstraint("account", "folder", name="uq_mail_folder_state_account_folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class MailMessage(Base):
    """One email read from an IMAP account, matched to a letter or not (never dropped)."""

    __tablename__ = "mail_messages"
    # The same message seen again (a UIDVALIDITY change, a retried batch) is not stored twice.
    __table_args__ = (UniqueConstraint("account", "message_id", "internaldate", "size",
                                       name="uq_mail_messages_dedup"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(500))       # "" when the mail has none
    internaldate: Mapped[datetime]                              # the server's arrival time
    date_header: Mapped[datetime | None] = mapped_column(nullable=True)
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))               # ack | reply
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="SET NULL"),
                                                  nullable=True, index=True)
    # token | tracking_code | title | sender_domain, or None when unmatched
    matched_by: Mapped[str | None] = mapped_column(String(20), nullable=True)
    eml_evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence_files.id"), nullable=True)
    created_at: Mapped[datetime]
    # Why the message could not be stored or matched as it came (e.g. a Date header no database
    # can hold): it is kept, unmatched, with this reason, and the sync goes on (migration 0005).
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)


class Lease(Base):
    """Who may do a thing until when, across the daemons sharing this database (bot.store.leases):
    a daemon's presence, a job that must run in one daemon at a time, an IMAP account's sync,
    the next turn at a host."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime]
    detail: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
