"""The sandbox answers by email: composing Chinese mail as real sites send it, and sending it.

A site with `reply.channel = "email"` or `"both"` emails its answer at the reply time, and one
with `ack = true` emails an automatic acknowledgement a few minutes after receipt, to the address
the writer typed in the form's email field (jact and minimal have one; legacy has none, which the
roster refuses). Nothing is scheduled: `Sandbox.deliver_due_mail()` sends every mail whose time
has come on the sandbox clock, each exactly once; the demo's simulation loop calls it after
moving the clock.

Each site writes in its own way (chosen from its slug, stable): GB2312, GBK, GB18030 or UTF-8;
RFC 2047 B or Q subjects; base64 or quoted-printable bodies; plain text or HTML only. The Date
header is the simulated send time.

Transports:

- `LmtpTransport` (the default of `sandbox serve --lmtp`): LMTP to a mail server, as a real
  site's mail server would deliver. INTERNALDATE is then the server's wall-clock arrival time.
- `ImapAppendTransport` (the simulation): IMAP APPEND into the inspector's mailbox with an
  explicit INTERNALDATE equal to the simulated send time, because under a simulated clock the
  wall-clock arrival time would mean nothing. It accepts only recipients at its `domains` (as a
  mail server accepts only its own domains); anything else is refused.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import re
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from html import escape
from typing import Protocol

from bot.clock import local
from bot.sandbox.store import ReceivedLetter


class MailRefused(Exception):
    """The server refused the recipient (permanent: not tried again)."""


class MailTransport(Protocol):
    def send(self, raw: bytes, sender: str, rcpt: str, when: datetime) -> None:
        """Deliver one message; `MailRefused` when the recipient is refused, OSError when the
        server cannot be reached (the sandbox tries again on its next delivery round)."""


class LmtpTransport:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    def send(self, raw: bytes, sender: str, rcpt: str, when: datetime) -> None:
        try:
            with smtplib.LMTP(self.host, self.port) as lmtp:
                refused = lmtp.sendmail(sender, [rcpt], raw)
        except smtplib.SMTPRecipientsRefused as e:
            raise MailRefused(f"{rcpt}: {e.recipients}") from None
        except smtplib.SMTPResponseException as e:
            if 500 <= e.smtp_code < 600:
                raise MailRefused(f"{rcpt}: {e.smtp_code} {e.smtp_error!r}") from None
            raise OSError(f"LMTP {e.smtp_code}") from None
        if refused:
            raise MailRefused(f"{rcpt}: {refused}")

    def __repr__(self) -> str:
        return f"LMTP {self.host}:{self.port}"


class ImapAppendTransport:
    def __init__(self, host: str, port: int, user: str, password: str, domains: tuple[str, ...],
                 folder: str = "INBOX", tls: bool = False):
        self.host, self.port, self.user, self.folder, self.tls = host, port, user, folder, tls
        self._password = password
        self.domains = tuple(d.lower() for d in domains)

    def send(self, raw: bytes, sender: str, rcpt: str, when: datetime) -> None:
        from imapclient import IMAPClient

        domain = rcpt.rsplit("@", 1)[-1].lower() if "@" in rcpt else ""
        if domain not in self.domains:
            raise MailRefused(f"{rcpt}: 550 5.1.1 no such domain here ({', '.join(self.domains)})")
        client = IMAPClient(self.host, self.port, ssl=self.tls, timeout=30)
        try:
            client.login(self.user, self._password)
            client.append(self.folder, raw, msg_time=when)
        finally:
            try:
                client.logout()
            except Exception:
                client.shutdown()

    def __repr__(self) -> str:
        return f"IMAP APPEND {self.user}@{self.host}:{self.port}/{self.folder}"


# --- composing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MailStyle:
    charset: str          # the label written in the message
    header_encoding: str  # "B" | "Q"
    body_encoding: str    # "base64" | "quoted-printable"
    html_only: bool


STYLES = (
    MailStyle("GB2312", "B", "base64", False),
    MailStyle("GBK", "Q", "quoted-printable", False),
    MailStyle("GB18030", "B", "base64", True),
    MailStyle("GBK", "B", "base64", True),
    MailStyle("UTF-8", "B", "quoted-printable", False),
    MailStyle("GB2312", "Q", "quoted-printable", True),
)


def style_for(slug: str) -> MailStyle:
    return STYLES[hashlib.sha256(slug.encode()).digest()[0] % len(STYLES)]


def _codec(label: str) -> str:
    # Sites label GBK text "GB2312" all the time; GB18030 encodes every character, and for the
    # GB2312 / GBK repertoire its bytes are the same.
    return "utf-8" if label.upper() == "UTF-8" else "gb18030"


def encode_words(text: str, charset: str, encoding: str = "B") -> str:
    """RFC 2047 encoded-words (whole characters per word, words at most 75 characters)."""
    codec = _codec(charset)
    words, chunk = [], ""

    def word(s: str) -> str:
        data = s.encode(codec)
        if encoding == "B":
            body = base64.b64encode(data).decode("ascii")
        else:
            body = "".join(chr(b) if (chr(b).isalnum() and b < 128) else f"={b:02X}" for b in data)
        return f"=?{charset}?{encoding}?{body}?="

    for ch in text:
        if len(word(chunk + ch)) > 75:
            words.append(word(chunk))
            chunk = ""
        chunk += ch
    if chunk:
        words.append(word(chunk))
    return "\r\n ".join(words)


def _html(text: str, charset: str) -> str:
    paras = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n") if p.strip())
    return (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
            f"</head><body><div style=\"font-family:宋体\">{paras}</div></body></html>")


def compose(*, site_name: str, slug: str, kind: str, letter: ReceivedLetter, body: str,
            subject: str, when: datetime) -> tuple[bytes, str]:
    """(raw message, envelope sender) in the site's own style."""
    style = style_for(slug)
    sender = f"xxgk@{slug}.sandbox.gov.cn"
    text = _html(body, style.charset) if style.html_only else body
    payload = text.replace("\r\n", "\n").replace("\n", "\r\n").encode(_codec(style.charset))
    if style.body_encoding == "base64":
        encoded = base64.encodebytes(payload).decode("ascii").replace("\n", "\r\n")
    else:
        encoded = quopri.encodestring(payload).decode("ascii").replace("\r\n", "\n").replace("\n", "\r\n")
    ctype = "text/html" if style.html_only else "text/plain"
    headers = [
        ("From", f"{encode_words(site_name, style.charset, style.header_encoding)} <{sender}>"),
        ("To", letter.email),
        ("Subject", encode_words(subject, style.charset, style.header_encoding)),
        ("Date", format_datetime(local(when))),
        ("Message-ID", f"<{kind}.{letter.tracking_code}.{slug}@sandbox.gov.cn>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'{ctype}; charset="{style.charset}"'),
        ("Content-Transfer-Encoding", style.body_encoding),
        ("X-Mailer", "Coremail Webmail Server"),
    ]
    if kind == "ack":
        headers.append(("Auto-Submitted", "auto-replied"))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + "\r\n" + encoded).encode("ascii"), sender


def ack_mail(letter: ReceivedLetter) -> tuple[str, str]:
    """(subject, text) of the automatic acknowledgement."""
    subject = "来信已收到（系统自动回复）"
    text = (f"{letter.name}：\n您好！您于{local(letter.received_at):%Y年%m月%d日 %H:%M}提交的《{letter.title}》"
            f"已收到，信件编号为{letter.tracking_code}。我们将在5个工作日内答复您，请耐心等待。\n"
            "本邮件由系统自动发送，请勿直接回复。")
    return subject, text


def reply_mail(letter: ReceivedLetter, answer: str) -> tuple[str, str]:
    """(subject, text) of the answer by email."""
    subject = f"来信答复：{letter.title}"
    text = (f"{letter.name}：\n您好！现将您{local(letter.received_at):%Y年%m月%d日}来信反映的问题答复如下：\n"
            f"{answer}\n（信件编号：{letter.tracking_code}）")
    return subject, text


@dataclass(frozen=True)
class SentMail:
    """One mail the sandbox sent (or tried to: `status` is "sent" or "refused: ...")."""

    letter: ReceivedLetter
    kind: str             # ack | reply
    at: datetime          # the simulated send time (the Date header)
    rcpt: str
    subject: str
    status: str
    message_id: str


def message_id_of(raw: bytes) -> str:
    m = re.search(rb"^Message-ID: (<[^>]+>)", raw, re.M)
    return m.group(1).decode("ascii") if m else ""
