"""Reading real-world (Chinese) email: headers, bodies and attachments, never raising.

Mail from Chinese government sites comes out of Coremail, Foxmail, Outlook, Exchange and home-made
PHP/Java systems, and it is often slightly wrong:

- Charsets are labelled "GB2312" on text that is really GBK or GB18030 (names such as 镕, 喆, 堃
  are not in GB2312). Every GB2312/GBK/CP936 label is therefore decoded as GB18030, a superset;
  Big5 labels are decoded as Big5-HKSCS (a superset of Big5), falling back to CP950.
- Headers may carry raw 8-bit GBK bytes with no RFC 2047 encoded-words: they are tried as UTF-8,
  then GB18030.
- Encoded-words may split one double-byte character across two words, lack the blank between a
  word and plain text, or carry bad base64 padding: adjacent words of one charset are joined
  before decoding, and base64 is decoded leniently.
- Bodies may have no charset, an unknown one, or a wrong one: strict decoding with the declared
  charset (mapped as above), then UTF-8, then GB18030, then Latin-1 (which cannot fail). Text
  labelled GB2312/GBK/Big5 that is valid UTF-8 and reads as Chinese that way is UTF-8.
- Attachment file names come RFC 2231 (``filename*=gbk''%B9...``, with continuations),
  RFC 2047 (``filename="=?GB2312?B?...?="``) or raw 8-bit encoded, sometimes only as ``name=``
  on Content-Type, sometimes twice (an ASCII ``filename=`` and the real ``filename*=``: the
  RFC 2231 one wins). A site may put a letter's tracking code only there
  ("答复意见GD20240426001.pdf"), so the names are read as carefully as the subject.
- A charset label naming a Python codec that is no mail charset (``unicode_escape``) is
  unknown, and a lone surrogate a codec lets through becomes U+FFFD: decoded text can always
  be stored.

`parse_message` uses the stdlib `email` package with the compat32 policy (it keeps malformed
input as text instead of raising) and decodes everything itself. It never raises on bad input: it
returns what could be read, and records problems in `MailMessage.defects`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.message
import email.utils
import html as html_lib
import quopri
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.policy import compat32
from html.parser import HTMLParser
from typing import Iterable, NamedTuple
from bot.clock import SHANGHAI

# Labels whose text is decoded with a superset codec.
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gb_2312": "gb18030", "gb_2312-80": "gb18030", "gb2312-80": "gb18030",
    "csgb2312": "gb18030", "euc-cn": "gb18030", "euccn": "gb18030", "x-euc-cn": "gb18030",
    "chinese": "gb18030", "iso-ir-58": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "cp936": "gb18030", "ms936": "gb18030", "windows-936": "gb18030", "936": "gb18030",
    "gb18030": "gb18030", "gb-18030": "gb18030", "hz-gb-2312": "hz",
    "big5": "big5hkscs", "big-5": "big5hkscs", "x-big5": "big5hkscs", "csbig5": "big5hkscs",
    "big5-hkscs": "big5hkscs", "cn-big5": "big5hkscs",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
    "us-ascii": "ascii", "ascii": "ascii", "ansi_x3.4-1968": "ascii",
}
# Python codecs that a charset label can name but that are no mail charset: they turn
# "\\ud800" or "\\x00" in the data into any code point at all (a lone surrogate, which no
# database driver can encode). Such a label is treated as unknown.
_NOT_CHARSETS = {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "palmos",
                 "undefined", "mbcs", "oem"}
# Declared charsets that are lies often enough that 8-bit text is re-guessed.
_WEAK_CHARSETS = {"ascii"}
# Tried in order when no charset is declared, or the declared one fails.
_FALLBACKS = ("utf-8", "gb18030")


class Attachment(NamedTuple):
    filename: str
    content_type: str
    size: int


@dataclass
class MailMessage:
    message_id: str | None = None
    subject: str = ""
    from_addr: str = ""
    from_name: str = ""
    to_addrs: list[str] = field(default_factory=list)
    """All recipients, lower-cased, without duplicates: To, Cc, Delivered-To, X-Original-To."""
    date_header: datetime | None = None
    """The Date header, timezone-aware (a date without a zone is taken as Asia/Shanghai)."""
    text: str = ""
    """The plain-text body: the text/plain part, else text extracted from the HTML part."""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    charset_used: str | None = None
    """The codec that actually decoded the body text (e.g. "gb18030" for a GB2312 label)."""
    charset_declared: str | None = None
    """The charset label of the body part as written in the message."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Every header, decoded, in order (names as written)."""
    defects: list[str] = field(default_factory=list)
    """Problems met while reading (nothing here means a clean message)."""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header with this name (case-insensitive), decoded."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]


# --- charsets -------------------------------------------------------------------------------

def normalize_charset(label: str | None) -> str | None:
    """The Python codec to use for a charset label (GB2312/GBK → gb18030), or None if unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name:
        return None
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    if codec.replace("-", "_") in _NOT_CHARSETS:
        return None
    # codecs.lookup("gb2312") is "gb2312": map the canonical names too.
    return _CHARSET_ALIASES.get(codec, codec)


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, str]:
    """Decode bytes with the declared charset (mapped to a superset), else UTF-8, else GB18030,
    else Latin-1. Returns (text, codec used); a lone surrogate that a codec lets through (UTF-7
    and UTF-16 can) becomes U+FFFD, so that the text is always storable. Never raises."""
    text, codec = _decode_bytes(data, charset)
    return _LONE_SURROGATE.sub("\ufffd", text), codec


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _decode_bytes(data: bytes, charset: str | None) -> tuple[str, str]:
    codec = normalize_charset(charset)
    tried: list[str] = []
    if codec in _CJK_LEGACY and _looks_utf8(data):
        tried.append("utf-8")  # a GB2312/Big5 label on UTF-8 text (PHP forms do this)
    if codec and not (codec in _WEAK_CHARSETS and _has_8bit(data)):
        tried.append(codec)
    for fb in _FALLBACKS:
        if fb not in tried:
            tried.append(fb)
    for c in tried:
        try:
            return data.decode(c), c
        except (UnicodeDecodeError, LookupError):
            continue
        except Exception:  # exotic codecs can raise other errors on garbage
            continue
    if codec and codec not in ("ascii",):
        # Mostly right in the declared charset: keep it, with replacement characters.
        try:
            return data.decode(codec, errors="replace"), codec
        except Exception:
            pass
    return data.decode("latin-1"), "latin-1"


def _has_8bit(data: bytes) -> bool:
    return not data.isascii()


_CJK_LEGACY = {"gb18030", "big5hkscs", "hz"}


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3000 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF
            or 0x2000 <= o <= 0x206F or 0x20000 <= o <= 0x3FFFF)


def _looks_utf8(data: bytes) -> bool:
    """Valid UTF-8 whose non-ASCII characters are (nearly all) Chinese, at least two of them.
    GBK/Big5 bytes that happen to be valid UTF-8 decode to Latin, Greek, Hebrew or combining
    marks (two-byte sequences), almost never to CJK."""
    if data.isascii():
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 0x7F]
    cjk = sum(1 for ch in wide if _is_cjk(ch))
    return cjk >= 2 and cjk >= 0.8 * len(wide)


_SURROGATE = re.compile("[\udc80-\udcff]")


def _unescape_8bit(s: str) -> str:
    """compat32 keeps raw 8-bit header bytes as surrogate escapes: turn them into text
    (UTF-8, else GB18030). Strings without such bytes are returned unchanged."""
    if not _SURROGATE.search(s):
        return s
    try:
        raw = s.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return _SURROGATE.sub("\ufffd", s)
    return decode_bytes(raw)[0]


def _raw_headers(msg: email.message.Message, name: str) -> list[str]:
    """Header values as written (raw 8-bit bytes still surrogate-escaped). compat32's own
    `get` turns such values into Header objects whose str() loses the bytes."""
    lname = name.lower()
    return [str(v) for k, v in msg.raw_items() if k.lower() == lname]


def _raw_header(msg: email.message.Message, name: str) -> str | None:
    values = _raw_headers(msg, name)
    return values[0] if values else None


# --- RFC 2047 encoded words -----------------------------------------------------------------

_EW = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decode_b(text: str) -> bytes:
    """Lenient base64: stray characters ignored, missing padding added."""
    data = re.sub(r"[^A-Za-z0-9+/]", "", text)
    if len(data) % 4 == 1:
        data = data[:-1]
    if len(data) % 4:
        data += "=" * (4 - len(data) % 4)
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


def _decode_q(text: str) -> bytes:
    data = text.replace("_", " ").encode("latin-1", "replace")
    return quopri.decodestring(data)


def decode_header_value(value: str | bytes | None) -> str:
    """Decode a header value: RFC 2047 encoded-words in any charset (adjacent words of the
    same charset joined first, so a character split across words survives), raw 8-bit bytes
    (UTF-8, else GB18030), folding removed. Never raises."""
    if value is None:
        return ""
    try:
        if isinstance(value, bytes):
            value = value.decode("ascii", "surrogateescape")
        value = str(value)
        value = _unescape_8bit(value)
        value = re.sub(r"\r?\n[ \t]*", " ", value)
        if "=?" not in value:
            return value.strip()
        out: list[str] = []
        pending: tuple[str | None, bytearray] | None = None  # (charset label, bytes)
        pos = 0
        for m in _EW.finditer(value):
            between = value[pos:m.start()]
            charset, enc, payload = m.group(1), m.group(2).upper(), m.group(3)
            charset = charset.split("*", 1)[0]  # RFC 2231 language suffix: =?gb2312*zh?B?...?=
            data = _decode_b(payload) if enc == "B" else _decode_q(payload)
            if pending is not None and between.strip() == "" and \
                    (normalize_charset(pending[0]) or pending[0]) == (normalize_charset(charset) or charset):
                pending[1].extend(data)
            else:
                if pending is not None:
                    out.append(decode_bytes(bytes(pending[1]), pending[0])[0])
                    pending = None
                if between:
                    # whitespace between two encoded-words is dropped (RFC 2047 6.2)
                    if not (out and between.strip() == "" and pos > 0):
                        out.append(between)
                pending = (charset, bytearray(data))
            pos = m.end()
        if pending is not None:
            out.append(decode_bytes(bytes(pending[1]), pending[0])[0])
        out.append(value[pos:])
        return "".join(out).strip()
    except Exception:  # pragma: no cover - belt and braces
        return str(value).encode("utf-8", "replace").decode("utf-8", "replace").strip()


# --- addresses ------------------------------------------------------------------------------

def extract_addresses(values: str | Iterable[str] | None) -> list[tuple[str, str]]:
    """(display name, address) pairs from one or more address header values, display names
    decoded (RFC 2047 or raw 8-bit). Addresses are kept as written (stripped)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[tuple[str, str]] = []
    for v in values:
        if not v:
            continue
        try:
            text = _unescape_8bit(str(v))
            text = re.sub(r"\r?\n[ \t]*", " ", text)
            # Encoded-words in the display name must be decoded after splitting (a decoded name
            # may contain commas), except when they hide the address itself.
            for name, addr in email.utils.getaddresses([text]):
                name = decode_header_value(name)
                addr = addr.strip()
                if not addr and not name:
                    continue
                if not addr or "@" not in addr:
                    # e.g. an encoded-word wrapping the whole "name <addr>"
                    decoded = decode_header_value(name or addr)
                    pairs = email.utils.getaddresses([decoded])
                    if pairs and "@" in pairs[0][1]:
                        out.extend((n, a.strip()) for n, a in pairs)
                        continue
                out.append((name, addr))
        except Exception:
            continue
    return out


def _recipient_addresses(msg: email.message.Message) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for hname in ("To", "Cc", "Delivered-To", "X-Original-To"):
        for _, addr in extract_addresses(_raw_headers(msg, hname)):
            addr = addr.strip().strip("<>").lower()
            if addr and addr not in seen:
                seen.add(addr)
                out.append(addr)
    return out


# --- dates ----------------------------------------------------------------------------------

def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date as an aware datetime; a date without zone is Asia/Shanghai, "-0000" is UTC."""
    if not value:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(str(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc if "-0000" in value else SHANGHAI)
    return dt


# --- HTML to text ---------------------------------------------------------------------------

_BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "tbody", "thead", "h1", "h2", "h3",
          "h4", "h5", "h6", "section", "article", "blockquote", "pre", "hr", "dd", "dt", "dl",
          "header", "footer", "form", "fieldset", "address", "center", "title"}
_SKIP = {"script", "style", "head", "noscript", "template", "svg", "object"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML document: scripts, styles and head dropped, entities decoded,
    block elements (p, div, br, li, tr, h1-6 ...) ended by newlines, blanks collapsed."""
    p = _TextExtractor()
    try:
        p.feed(markup)
        p.close()
        text = "".join(p.parts)
    except Exception:
        text = re.sub(r"<[^>]*>", " ", markup)
        text = html_lib.unescape(text)
    text = text.replace("\xa0", " ").replace("\u3000", " ").replace("\r", "")
    lines = [re.sub(r"[ \t\f\v]+", " ", ln).strip() for ln in text.split("\n")]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)


def _html_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


# --- MIME parts -----------------------------------------------------------------------------

def _part_filename(part: email.message.Message) -> str | None:
    """The attachment file name, RFC 2231 / RFC 2047 / raw 8-bit decoded; None if there is none.
    Content-Disposition's filename first, else Content-Type's name."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        if raw is None:
            continue
        value = _param(raw, header, param)
        if value is None:
            continue
        name = decode_filename(value).strip().strip('"')
        if name:
            return name
    return None


def _param(raw: str, header: str, param: str) -> str | tuple | None:
    """A header parameter as the stdlib gives it: a string, or for RFC 2231 (``name*=``, with
    continuations joined) a (charset, language, %-decoded latin-1 text) tuple. When a mailer
    writes both forms (``filename="GD1.pdf"; filename*=GBK''%B4%F0...``), the RFC 2231 one
    wins, as RFC 2231 says: the plain one is an ASCII stand-in for old readers."""
    try:
        # Re-parse the header from decoded text so that raw 8-bit names survive.
        tmp = email.message.Message()
        tmp[header] = re.sub(r"\r?\n[ \t]*", " ", _unescape_8bit(raw))
        params = tmp.get_params(None, header=header) or []
    except Exception:
        return None
    values = [v for k, v in params[1:] if str(k).lower() == param]
    return next((v for v in values if isinstance(v, tuple)), values[0] if values else None)


def decode_filename(value: str | tuple) -> str:
    """A file name parameter as text: RFC 2231 ``(charset, language, bytes as latin-1)`` decoded
    with its charset (GB2312/GBK as GB18030; none or a wrong one: UTF-8, then GB18030), and
    RFC 2047 encoded-words or raw 8-bit bytes (``filename="=?GBK?B?...?="``) decoded in it."""
    if isinstance(value, tuple):
        charset, _lang, text = value
        try:
            data = str(text).encode("latin-1")
        except UnicodeEncodeError:  # already text (raw 8-bit re-parsed above)
            name = str(text)
        else:
            name = decode_bytes(data, charset or None)[0]
        return decode_header_value(name)
    return decode_header_value(str(value))


def _payload_bytes(part: email.message.Message, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as e:  # pragma: no cover - compat32 is lenient, keep going anyway
        defects.append(f"payload of {part.get_content_type()}: {e}")
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            data = payload.encode("ascii", "surrogateescape")
        else:
            data = b""
    return data


def _iter_leaves(part: email.message.Message, depth: int = 0):
    """Leaf parts in order, not descending into attached messages (message/rfc822)."""
    if depth > 50:
        return
    ctype = part.get_content_type()
    if part.is_multipart() and not ctype.startswith("message/"):
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, email.message.Message):
                    yield from _iter_leaves(sub, depth + 1)
        return
    yield part


def _attached_message_bytes(part: email.message.Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):
        try:
            return b"".join(p.as_bytes(policy=compat32) for p in payload
                            if isinstance(p, email.message.Message))
        except Exception:
            return b""
    return _payload_bytes(part, [])


# --- the message ----------------------------------------------------------------------------

def parse_message(raw: bytes) -> MailMessage:
    """Read a raw RFC 822 message. Never raises: returns what could be read."""
    out = MailMessage()
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw or b"", policy=compat32)
    except Exception as e:  # pragma: no cover - message_from_bytes is lenient
        out.defects.append(f"unparseable message: {e}")
        out.text = decode_bytes(raw or b"")[0] if isinstance(raw, bytes) else ""
        return out

    for d in getattr(msg, "defects", []) or []:
        out.defects.append(type(d).__name__)

    try:
        for k, v in msg.raw_items():
            out.headers.append((str(k), decode_header_value(str(v))))
    except Exception as e:
        out.defects.append(f"headers: {e}")

    def guarded(what, fn):
        try:
            fn()
        except Exception as e:  # keep reading the rest
            out.defects.append(f"{what}: {type(e).__name__}: {e}")

    def _ids():
        mid = _raw_header(msg, "Message-ID")
        if mid:
            out.message_id = re.sub(r"\s+", "", _unescape_8bit(str(mid))) or None

    def _subject():
        out.subject = decode_header_value(_raw_header(msg, "Subject"))

    def _from():
        pairs = extract_addresses(_raw_headers(msg, "From"))
        if not pairs:
            pairs = extract_addresses(_raw_headers(msg, "Sender"))
        if pairs:
            name, addr = next((p for p in pairs if "@" in p[1]), pairs[0])
            out.from_name, out.from_addr = name, addr.strip("<>")

    def _to():
        out.to_addrs = _recipient_addresses(msg)

    def _date():
        v = _raw_header(msg, "Date")
        out.date_header = parse_date(_unescape_8bit(v)) if v else None

    guarded("message-id", _ids)
    guarded("subject", _subject)
    guarded("from", _from)
    guarded("recipients", _to)
    guarded("date", _date)
    guarded("body", lambda: _read_body(msg, out))
    return out


def _read_body(msg: email.message.Message, out: MailMessage) -> None:
    """Text from the first text/plain part, HTML from the first text/html part; every other
    leaf (and any part with Content-Disposition: attachment, or a file name and no
    "inline") is recorded as an attachment with its decoded size, never read as body."""
    plain: tuple[str, str, str | None] | None = None  # (text, codec, declared label)
    html: tuple[str, str, str | None] | None = None
    for part in _iter_leaves(msg):
        try:
            ctype = part.get_content_type()
            disp = (_raw_header(part, "Content-Disposition") or "").split(";", 1)[0].strip().lower()
            filename = _part_filename(part)
            if ctype.startswith("message/"):
                data = _attached_message_bytes(part)
                if not filename:
                    filename = "message.eml"
                    if ctype == "message/rfc822" and data:
                        inner = email.message_from_bytes(data, policy=compat32)
                        subj = decode_header_value(_raw_header(inner, "Subject"))
                        filename = (subj or "message") + ".eml"
                out.attachments.append(Attachment(filename, ctype, len(data)))
                continue
            data = _payload_bytes(part, out.defects)
            if ctype not in ("text/plain", "text/html") or disp == "attachment" \
                    or (filename and disp != "inline"):
                out.attachments.append(Attachment(filename or "", ctype, len(data)))
                continue
            declared = part.get_param("charset")
            if isinstance(declared, tuple):
                declared = declared[2]
            declared = str(declared).strip() if declared else None
            if ctype == "text/html":
                label = declared or _html_charset(data)
                if html is None:
                    text, codec = decode_bytes(data, label)
                    html = (text, codec, label)
            elif plain is None:
                text, codec = decode_bytes(data, declared)
                plain = (text, codec, declared)
        except Exception as e:
            out.defects.append(f"part: {type(e).__name__}: {e}")
    if html is not None:
        out.html = html[0]
    chosen = plain if plain is not None and plain[0].strip() else None
    if chosen is not None:
        out.text = _clean_plain(chosen[0])
    elif html is not None:
        chosen = html
        out.text = html_to_text(html[0])
    elif plain is not None:
        chosen = plain
        out.text = _clean_plain(plain[0])
    if chosen is not None:
        out.charset_used, out.charset_declared = chosen[1], chosen[2]


def _clean_plain(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip("\n")
