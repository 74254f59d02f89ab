"""An evidence pack: one zip per campaign (or per site) that can be shown to a site in a dispute.

The database says what the bot saw and when; the evidence directory holds the pages, screenshots
and emails that prove it. A pack puts both side by side: every evidence file referenced for a
letter, under a readable name, and an `index.html` whose timeline (Asia/Shanghai times) links
every file. It opens from disk in any browser; nothing in it needs the bot or the database.

Secrets stay out: the writer's details and the query password are not written to the index, and
the query password (the site's 查询码, or the one the writer chose) is masked in the text files
(HTML, email) copied into the pack. Each masked copy says so next to the original's SHA-256 (the
original stays in the evidence directory). Screenshots are copied as taken (masking pixels would
need to know where the code is drawn), so a success page's screenshot may still show the code.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader
from sqlalchemy import or_, select

from bot.calendar import WorkCalendar
from bot.campaign.results import campaign_rows
from bot.clock import local
from bot.errors import UserError
from bot.report.rows import ReportRow
from bot.vocab import STATUS_TEXT, flag_text
from bot.store import models as m
from bot.store.db import Database

TEMPLATES = Path(__file__).resolve().parent / "report" / "templates"
INDEX_TEMPLATE = "evidence_index.html"
MASK = b"[redacted]"
# Shorter secrets are not masked: a 3-character code would also blank out unrelated text.
MIN_SECRET_LEN = 4
TEXT_KINDS = ("html", "eml")
# Timeline order for things that happened at the same instant: the mail arrives, a poll sees
# it, the reply is derived, then the letter changes state.
_RANK = {"mail": 0, "observation": 1, "reply": 2, "event": 3}


@dataclass(eq=False)       # one object per file of a letter: compared by identity
class PackedFile:
    """One evidence file of one letter, as it appears in the pack."""

    arcname: str                  # path inside the zip, "" when the file is missing on disk
    source: Path                  # where it is in the evidence directory
    kind: str
    step: str
    sha256: str
    size: int
    at: datetime                  # first time the database refers to it
    missing: bool = False
    redacted: bool = False

    @property
    def href(self) -> str:
        return quote(self.arcname)


@dataclass
class TimelineItem:
    at: datetime
    kind: str                     # event | observation | reply | mail
    order: int                    # the row id, to keep same-instant rows in the order written
    title: str
    details: list[str] = field(default_factory=list)
    files: list[PackedFile] = field(default_factory=list)
    to_state: str = ""            # for events

    @property
    def local_at(self) -> str:
        return _fmt(self.at)


@dataclass
class LetterSection:
    id: int
    site: str
    site_key: str
    group: str
    mailbox: str
    title: str
    body: str
    tracking_code: str
    state: str
    status: str
    flags: list[str]
    submitted_at: str
    replied_at: str
    working_days: int | None
    within_deadline: bool
    same_day: bool
    folder: str
    files: list[PackedFile]
    timeline: list[TimelineItem]
    secrets: list[str] = field(repr=False, default_factory=list)


@dataclass
class PackSummary:
    out: Path
    letters: int
    files: int
    missing: list[str]
    bytes: int

    def line(self) -> str:
        extra = f", {len(self.missing)} missing (see warnings)" if self.missing else ""
        return (f"evidence pack {self.out}: {self.letters} letter(s), {self.files} file(s){extra}, "
                f"{_human(self.bytes)}")


def export_evidence(db: Database, evidence_dir: Path, campaign: str, out: Path, calendar: WorkCalendar,
                    *, as_of: datetime, site: str | None = None, generated_at: datetime | None = None,
                    warn: Callable[[str], None] = lambda _msg: None) -> PackSummary:
    """Writes the pack for `campaign` (only letters to `site`, by name or key, when given)."""
    out = Path(out)
    _check_out(out)
    sections, deadline = collect(db, Path(evidence_dir), campaign, calendar, site=site,
                                 as_of=as_of)
    missing = [f"{f.source} (letter {s.id}, {f.kind} {f.step})"
               for s in sections for f in s.files if f.missing]
    for what in missing:
        warn(f"evidence file missing on disk: {what}")
    index = render_index(sections, campaign=campaign, site=site, deadline=deadline, generated_at=generated_at)
    _write_zip(out, index, sections)
    files = sum(1 for s in sections for f in s.files if not f.missing)
    return PackSummary(out=out, letters=len(sections), files=files, missing=missing,
                       bytes=out.stat().st_size)


# -- from the database ---------------------------------------------------------------------------

def collect(db: Database, evidence_dir: Path, campaign_name: str, calendar: WorkCalendar,
            *, as_of: datetime, site: str | None = None) -> tuple[list[LetterSection], int]:
    """One section per letter of the campaign, in roster order, with its files and timeline."""
    with db.session() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == campaign_name))
        if camp is None:
            known = s.scalars(select(m.Campaign.name).order_by(m.Campaign.id)).all()
            raise UserError(f"--campaign: no campaign named {campaign_name!r} in the database "
                            f"(known: {', '.join(known) or 'none'})")
        letters = s.scalars(select(m.Letter).where(m.Letter.campaign_id == camp.id)
                            .order_by(m.Letter.id)).all()
        if site is not None:
            chosen = [x for x in letters if site in (x.mailbox.site.name, x.mailbox.site.key)]
            if not chosen:
                names = sorted({x.mailbox.site.name for x in letters})
                raise UserError(f"--site: campaign {campaign_name!r} has no letter to a site named or keyed "
                                f"{site!r} (its sites: {', '.join(names) or 'none'})")
            letters = chosen
        report_rows, _meta = campaign_rows(db, campaign_name, calendar, as_of=as_of)
        rows = {r.letter_id: r for r in report_rows}
        letters = sorted(letters, key=lambda x: (x.mailbox.site.roster_order, x.mailbox.site.id,
                                                 x.mailbox.id, x.seq, x.id))
        sections = [_section(s, x, rows[x.id], evidence_dir) for x in letters]
        return sections, camp.deadline_workdays


def _section(s, letter: m.Letter, row: ReportRow, evidence_dir: Path) -> LetterSection:
    site = letter.mailbox.site
    mails = s.scalars(select(m.MailMessage).where(m.MailMessage.letter_id == letter.id)
                      .order_by(m.MailMessage.internaldate, m.MailMessage.id)).all()
    ids: set[int] = set()
    for ev in letter.events:
        ids.update(int(i) for i in ev.evidence_ids or [])
    for o in letter.observations:
        ids.update(i for i in (o.html_id, o.screenshot_id) if i is not None)
    ids.update(mm.eml_evidence_id for mm in mails if mm.eml_evidence_id is not None)
    clause = m.EvidenceFile.letter_id == letter.id
    if ids:
        clause = or_(clause, m.EvidenceFile.id.in_(ids))
    rows = s.scalars(select(m.EvidenceFile).where(clause)
                     .order_by(m.EvidenceFile.created_at, m.EvidenceFile.id)).all()

    folder = f"letters/{letter.id:04d}-{_slug(site.key or site.name, 'site')}-{letter.mailbox.kind}"
    by_id, files = _pack_names(rows, folder, evidence_dir)
    timeline = _timeline(letter, mails, by_id)
    w = letter.writer or {}
    secrets = [x for x in {letter.password, w.get("password")} if x and len(x) >= MIN_SECRET_LEN]
    return LetterSection(
        id=letter.id, site=site.name, site_key=site.key, group=site.group, mailbox=letter.mailbox.label,
        title=letter.title, body=letter.body, tracking_code=letter.tracking_code or "",
        state=letter.state, status=STATUS_TEXT[row.status], flags=[flag_text(f) for f in row.flags],
        submitted_at=_fmt(row.submitted_at), replied_at=_fmt(row.replied_at),
        working_days=row.working_days, within_deadline=row.within_deadline, same_day=row.same_day,
        folder=folder, files=files, timeline=timeline, secrets=secrets)


def _pack_names(rows: list[m.EvidenceFile], folder: str,
                evidence_dir: Path) -> tuple[dict[int, PackedFile], list[PackedFile]]:
    """A readable, unique name per distinct file: `<time>-<step>.<ext>` of its first use.

    Evidence is content-addressed, so the same page seen by ten polls is one file: it is stored
    once in the letter's folder and every reference links to that one copy."""
    by_path: dict[str, PackedFile] = {}
    by_id: dict[int, PackedFile] = {}
    taken: set[str] = set()
    for r in rows:
        packed = by_path.get(r.path)
        if packed is None:
            source = evidence_dir / r.path
            ext = PurePosixPath(r.path).suffix.lstrip(".") or "bin"
            stem = f"{local(r.created_at):%Y%m%d-%H%M%S}-{_slug(r.step, r.kind)}"
            name, n = f"{stem}.{ext}", 1
            while name in taken:
                n += 1
                name = f"{stem}-{n}.{ext}"
            taken.add(name)
            missing = not source.is_file()
            packed = PackedFile(arcname="" if missing else f"{folder}/{name}", source=source, kind=r.kind,
                                step=r.step, sha256=r.sha256, size=r.size, at=r.created_at, missing=missing)
            by_path[r.path] = packed
        by_id[r.id] = packed
    return by_id, list(by_path.values())


def _timeline(letter: m.Letter, mails: list[m.MailMessage], files: dict[int, PackedFile]) -> list[TimelineItem]:
    def linked(*ids) -> list[PackedFile]:
        out: list[PackedFile] = []
        for i in ids:
            f = files.get(int(i)) if i is not None else None
            if f is not None and f not in out:
                out.append(f)
        return out

    # An email observation names its message: link the .eml from it and from its reply.
    eml_of_mail = {mm.id: mm.eml_evidence_id for mm in mails}

    def observed(o: m.Observation | None) -> list[PackedFile]:
        if o is None:
            return []
        return linked(o.html_id, o.screenshot_id, eml_of_mail.get((o.detail or {}).get("mail_id")))

    items: list[TimelineItem] = []
    for ev in letter.events:
        items.append(TimelineItem(
            at=ev.at, kind="event", order=ev.id, to_state=ev.to_state,
            title=f"状态变更 state: {ev.from_state or '—'} → {ev.to_state}",
            details=[ev.reason] if ev.reason else [], files=linked(*(ev.evidence_ids or []))))
    for o in letter.observations:
        details = [f"结果 outcome: {o.outcome}"]
        if o.site_status:
            details.append(f"网站显示状态 site status: {o.site_status}")
        if o.displayed_raw:
            details.append(f"网站显示回复时间 displayed reply time: {o.displayed_raw}")
        details.append(f"已回复 replied: {'是 yes' if o.replied else '否 no'}")
        items.append(TimelineItem(at=o.at, kind="observation", order=o.id, title=f"查询 observation ({o.channel})",
                                  details=details, files=observed(o)))
    for r in letter.replies:
        details = [f"回复时间 replied at: {_fmt(r.replied_at)}", f"首次发现 first seen: {_fmt(r.first_seen_at)}"]
        if r.displayed_at is not None:
            details.append(f"网站显示时间 displayed: {_fmt(r.displayed_at)}" + ("（仅日期 date only）" if r.date_only else ""))
        if r.unit:
            details.append(f"回复单位 unit: {r.unit}")
        if r.flags:
            details.append("标记 flags: " + "；".join(flag_text(f) for f in r.flags))
        if r.note:
            details.append(f"备注 note: {r.note}")
        obs = next((o for o in letter.observations if o.id == r.observation_id), None)
        items.append(TimelineItem(
            at=r.replied_at, kind="reply", order=r.id,
            title=f"{'回复 answer' if r.kind == 'answer' else '受理回执 acknowledgement'} ({r.channel})",
            details=details, files=observed(obs)))
    for mm in mails:
        items.append(TimelineItem(
            at=mm.internaldate, kind="mail", order=mm.id, title=f"邮件 email ({mm.kind})",
            details=[f"发件人 from: {mm.from_addr or '—'}", f"主题 subject: {mm.subject or '—'}",
                     f"匹配方式 matched by: {mm.matched_by or '—'}"],
            files=linked(mm.eml_evidence_id)))
    items.sort(key=lambda i: (i.at, _RANK[i.kind], i.order))
    return items


# -- to the zip --------------------------------------------------------------------------------

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_index(sections: list[LetterSection], *, campaign: str, site: str | None, deadline: int,
                 generated_at: datetime | None) -> str:
    for s in sections:        # which copies will be masked is known before the zip is written
        for f in s.files:
            f.redacted = not f.missing and _needs_mask(f, s.secrets)
    return _env.get_template(INDEX_TEMPLATE).render(
        sections=sections, campaign=campaign, site=site, deadline=deadline,
        generated=_fmt(generated_at) if generated_at else "")


def _write_zip(out: Path, index: str, sections: list[LetterSection]) -> None:
    """Written beside `out` and renamed into place: never a half-written pack under its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("index.html", index)
            for s in sections:
                for f in s.files:
                    if f.missing:
                        continue
                    data = f.source.read_bytes()
                    if f.redacted:
                        data = _mask(data, s.secrets)
                    # Screenshots are PNG, already compressed.
                    info = zipfile.ZipInfo(f.arcname, date_time=local(f.at).timetuple()[:6])
                    info.compress_type = zipfile.ZIP_STORED if f.kind == "screenshot" else zipfile.ZIP_DEFLATED
                    z.writestr(info, data)
        os.replace(tmp, out)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--out: cannot write {out} ({e.strerror or e})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"--out: {out} is a directory (expected a file name such as evidence.zip)")
    if not out.parent.is_dir():
        raise UserError(f"--out: directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise UserError(f"--out: cannot write into {out.parent} (permission denied)")


def _encodings(secret: str) -> list[bytes]:
    # Pages may be GBK (the legacy platform) or UTF-8; codes are ASCII in practice, but not
    # necessarily.
    out = []
    for enc in ("utf-8", "gbk"):
        try:
            b = secret.encode(enc)
        except UnicodeEncodeError:
            continue
        if b not in out:
            out.append(b)
    return out


def _needs_mask(f: PackedFile, secrets: list[str]) -> bool:
    if f.kind not in TEXT_KINDS or not secrets:
        return False
    data = f.source.read_bytes()
    return any(b in data for s in secrets for b in _encodings(s))


def _mask(data: bytes, secrets: list[str]) -> bytes:
    for s in sorted(secrets, key=len, reverse=True):
        for b in _encodings(s):
            data = data.replace(b, MASK)
    return data


# -- small helpers -----------------------------------------------------------------------------

def _slug(text: str, fallback: str) -> str:
    """ASCII only: zip tools disagree about non-ASCII file names."""
    s = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")
    return s[:60] or fallback


def _fmt(when: datetime | None) -> str:
    return f"{local(when):%Y-%m-%d %H:%M:%S}" if when is not None else ""


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
