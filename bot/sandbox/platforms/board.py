"""`board`: a PHP CMS message board (留言板) in the manner of PbootCMS (UTF-8).

Many offices answer the public through their CMS's 在线留言 page instead of a 政民互动 system.
One page shows the published messages (newest first, a page at a time, each with the staff's
reply and its time) above a form with 联系人, 手机, 内容 and a captcha, and no title. The page's
own script posts the form by XHR; the answer is JSON (`{"code":1,"data":"提交成功！",...}` or
`{"code":0,"data":"<reason>",...}`), shown to the writer only as an alert: no tracking code.

Modelled on PbootCMS 3.x (apps/home/controller/MessageController.php, core/function/helper.php,
core/view/Paging.php, template/default/html/message.html): a session (`PbootSystem`) holds the
captcha's answer and the time of the session's last accepted message (a second one within 10
seconds is refused); only required fields are checked server-side; a moderated board (留言审核)
lists a message only once staff publish it; the shown reply time is the row's update_time, so
any later edit by staff moves it. Everything is worked out from the clock at request time.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import jinja2

from bot.clock import local
from bot.sandbox.behaviour import Status, Timeline, reply_text
from bot.sandbox.captcha import captcha_png
from bot.sandbox.platforms.base import (Platform, Request, Response, SiteContext,
                                        normalise_text)
from bot.sandbox.store import ReceivedLetter
from bot.sandbox.traffic import Slot, newest_first

COOKIE = "PbootSystem"
IDLE = timedelta(seconds=1440)        # PHP's session.gc_maxlifetime: an idle session is gone
TOO_SOON = timedelta(seconds=10)      # `time() - session('lastsub') < 10`
PAGE_SIZE = 10                        # `{pboot:message num=10}`
NUMBAR = 5                            # Paging's number bar (config `pagenum`, default 5)
MAX_SESSIONS = 50_000
# The message form's fields (ay_form_field, fcode 1), in order, all required: name -> 描述.
FIELDS = (("contacts", "联系人"), ("mobile", "手机"), ("content", "内容"))
OK = "提交成功！"
CLOSED = "系统已经关闭留言功能，请到后台开启再试！"
TOO_OFTEN = "您提交太频繁了，请稍后再试！"
CAPTCHA_EMPTY = "验证码不能为空！"
CAPTCHA_WRONG = "验证码错误！"
POST_ONLY = "提交失败，请使用POST方式提交！"
EXCERPT = 15                          # how much of a message its reply quotes
_SID_RE = re.compile(r"^[A-Za-z0-9,-]{1,128}$")     # what PHP accepts as a session id
_SID_CHARS = string.digits + "abcdefghijklmnopqrstuv"


@dataclass
class Session:
    """A PHP session of one site: the captcha's answer (`checkcode`) and `lastsub`."""
    last_seen: datetime
    captcha_key: str | None = None        # the current picture (its answer is in the Store)
    last_submit: datetime | None = None   # when this session's last message was accepted
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class Sessions:
    """PHP's file sessions, in memory. As PHP does by default (no strict mode), a cookie naming
    an unknown or expired id starts an empty session under that id. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Session] = OrderedDict()

    def open(self, slug: str, sid: str, now: datetime) -> Session:
        key = (slug, sid)
        with self._lock:
            s = self._items.get(key)
            if s is None or now - s.last_seen > IDLE:
                s = Session(last_seen=now)
                self._items[key] = s
            s.last_seen = max(s.last_seen, now)
            self._items.move_to_end(key)
            while len(self._items) > MAX_SESSIONS:     # a real store's garbage collection
                self._items.popitem(last=False)
            return s


@dataclass(frozen=True)
class Row:
    """One message as the public list shows it."""
    name: str                  # masked
    asked_at: datetime         # create_time
    content: str
    reply: str | None          # recontent ("" / None until answered)
    reply_at: datetime | None  # update_time, shown with the reply


@dataclass(frozen=True)
class _Stored:
    letter: ReceivedLetter
    timeline: Timeline


class Board(Platform):
    name = "board"
    server_header = "Apache/2.4.39 (Win64) OpenSSL/1.1.1b mod_fcgid/2.3.9a"
    field_roles = {"name": "contacts", "phone": "mobile", "body": "content"}
    # Not behind the unified login (the roster refuses `login` on a board).
    write_paths = ()
    submit_path = "message/"

    def __init__(self, env: jinja2.Environment):
        super().__init__(env)
        self.sessions = Sessions()

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        if req.rest not in ("", "message/", "code.php"):
            return None
        sid = req.cookies.get(COOKIE, "")
        fresh = not _SID_RE.match(sid)
        if fresh:
            sid = "".join(secrets.choice(_SID_CHARS) for _ in range(26))
        session = self.sessions.open(ctx.site.slug, sid, ctx.now())
        with session.lock:            # PHP holds a session's file lock for the whole request
            resp = self._route(ctx, req, session)
        if fresh:
            resp.headers.append(("Set-Cookie", f"{COOKIE}={sid}; path=/{ctx.site.slug}/"))
        resp.headers += [("X-Powered-By", "PHP/7.3.4"),
                         ("Expires", "Thu, 19 Nov 1981 08:52:00 GMT"),
                         ("Cache-Control", "no-store, no-cache, must-revalidate"),
                         ("Pragma", "no-cache")]
        return resp

    def _route(self, ctx: SiteContext, req: Request, session: Session) -> Response:
        if req.rest == "code.php":
            return self._captcha(ctx, session)
        if req.rest == "message/":
            if req.method != "POST":
                return self._answer(ctx, req, 0, POST_ONLY)
            return self._submit(ctx, req, session)
        return self._page(ctx, req)

    # -- the captcha (core/code.php) ------------------------------------------------------------
    def _captcha(self, ctx: SiteContext, session: Session) -> Response:
        """Every load draws a new picture and the session keeps only its answer."""
        if session.captcha_key:
            ctx.store.take_captcha(session.captcha_key)
        key, answer = ctx.store.new_captcha()
        session.captcha_key = key
        return Response(200, captcha_png(answer, key), "image/png")

    # -- posting (MessageController::index) -----------------------------------------------------
    def _submit(self, ctx: SiteContext, req: Request, session: Session) -> Response:
        now = ctx.now()
        if ctx.site.closed:
            return self._closed(ctx, req)
        if session.last_submit is not None and now - session.last_submit < TOO_SOON:
            return self._answer(ctx, req, 0, TOO_OFTEN)
        form = req.form
        if ctx.site.captcha:
            # PbootCMS keeps the answer until a new picture is drawn; the sandbox allows one
            # try per picture, as on its other sites (the page draws a new one after each try).
            answer = ctx.store.take_captcha(session.captcha_key) if session.captcha_key else None
            session.captcha_key = None
            typed = form.get("checkcode", "").strip().lower()
            if not typed:
                return self._answer(ctx, req, 0, CAPTCHA_EMPTY)
            if answer is None or typed != answer.lower():
                return self._answer(ctx, req, 0, CAPTCHA_WRONG)
        values = {}
        for name, label in FIELDS:
            value = form.get(name, "")
            value = (normalise_text(value) if name == "content" else value).strip()
            if value in ("", "0"):        # PHP's `! $field_data`: "0" is empty too
                return self._answer(ctx, req, 0, f"{label}不能为空！")
            values[name] = value
        ctx.receive(title="", body=values["content"], name=values["contacts"],
                    phone=values["mobile"], email="", secret="", public=True)
        session.last_submit = now
        return self._answer(ctx, req, 1, OK, tourl=_back_url(req))

    def _answer(self, ctx: SiteContext, req: Request, code: int, message: str,
                tourl: str = "", http_status: int = 200) -> Response:
        """PbootCMS's alert_back / alert_location: JSON to an XHR (`X-Requested-With`), else a
        bare script that alerts and goes back (or on)."""
        if _is_ajax(req):
            return _json(code, message, tourl, http_status)
        if code:
            script = f"alert({_js(message)});location.href={_js(tourl)};"
        else:
            script = f"alert({_js(message)});window.history.go(-1);"
        body = f'<script type="text/javascript">{script}</script>'
        return Response(http_status, body.encode("utf-8"))

    def _closed(self, ctx: SiteContext, req: Request) -> Response:
        """PbootCMS's error(): HTTP 404, as JSON to an XHR, else its error page."""
        if _is_ajax(req):
            return _json(0, CLOSED, "", 404)
        return self.render(ctx, "board/error.html", http_status=404, message=CLOSED)

    # -- the page: the list above the form ------------------------------------------------------
    def _page(self, ctx: SiteContext, req: Request) -> Response:
        total, pages, page, rows = self.list_page(ctx, req.query.get("page"))
        return self.render(ctx, "board/index.html", rows=rows, total=total, pages=pages, page=page,
                           pager=_pager(ctx.prefix + "/", page, pages))

    def list_page(self, ctx: SiteContext, asked: str | None) -> tuple[int, int, int, list[Row]]:
        """(T, P, N, rows): a page number past the end shows the last page (Paging::page)."""
        now = ctx.now()
        stored = self._stored(ctx, now)
        traffic = ctx.sandbox.traffic_model
        keep = None
        if ctx.site.moderated is not None:
            keep = lambda slot: self._published(ctx, slot) <= now      # noqa: E731
        count, slots = traffic.public(ctx.site, ctx.mailbox, now, keep=keep)
        total = len(stored) + count
        pages = -(-total // PAGE_SIZE)
        page = _page_number(asked)
        if pages and page > pages:
            page = pages
        items = newest_first(stored, slots)
        start = (page - 1) * PAGE_SIZE
        rows = []
        for i, item in enumerate(items):
            if i >= start + PAGE_SIZE:
                break
            if i < start:
                continue
            if isinstance(item, Slot):
                letter = traffic.letter(item, ctx.store)
                item = _Stored(letter, ctx.behaviour.traffic_timeline(letter.timeline()))
            rows.append(self._row(ctx, item, now))
        return total, pages, page, rows

    def _stored(self, ctx: SiteContext, now: datetime) -> list[_Stored]:
        """The letters sent through the form that the list shows now, newest first (by id:
        the order they arrived in)."""
        letters = ctx.store.letters(ctx.site.slug, ctx.mailbox)
        shown = [(x.received_at, i, _Stored(x, ctx.behaviour.timeline(x.received_at)))
                 for i, x in enumerate(letters)]
        shown = [t for t in shown if t[2].timeline.listed(now)]
        shown.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return [t[2] for t in shown]

    def _published(self, ctx: SiteContext, slot: Slot) -> datetime:
        review = ctx.behaviour.review_at(slot.at)
        return review if slot.reply_at is None else min(review, slot.reply_at)

    def _row(self, ctx: SiteContext, item: _Stored, now: datetime) -> Row:
        letter, tl = item.letter, item.timeline
        reply = reply_at = None
        if tl.status(now) is Status.FINISHED:
            reply = reply_text(title=excerpt(letter.body), unit=ctx.site.name, mailbox_label=ctx.label,
                               received_at=letter.received_at, tracking_code=letter_key(letter))
            reply_at = local(tl.shown_reply_at(now))
        return Row(mask(letter.name), local(letter.received_at), letter.body, reply, reply_at)


def mask(name: str) -> str:
    """`[message:contacts len=1 more='**']`: the first character and ** (a one-character name
    is shown as it is)."""
    return name[:1] + "**" if len(name) > 1 else name


def excerpt(content: str) -> str:
    """The start of a message, as its reply quotes it (a board's letters have no title)."""
    text = " ".join(content.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "……"


def letter_key(letter: ReceivedLetter) -> str:
    """What makes a board letter's reply wording its own (it has no tracking code)."""
    return f"{letter.slug}|{letter.received_at.isoformat()}|{letter.phone}"


def _is_ajax(req: Request) -> bool:
    return req.headers.get("x-requested-with", "").lower() == "xmlhttprequest"


def _json(code: int, message: str, tourl: str, status: int = 200) -> Response:
    """Response::json: {"code","data","tourl","rowtotal"}, sent as PHP's default text/html;
    json_encode escapes slashes."""
    text = json.dumps({"code": code, "data": message, "tourl": tourl, "rowtotal": 1},
                      ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
    return Response(status, text.encode("utf-8"))


def _js(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("</", "<\\/")


def _back_url(req: Request) -> str:
    """alert_location(..., '-1'): the Referer when it is this host's, '/' when it is another's,
    '-1' when there is none."""
    referer = req.headers.get("referer", "")
    if not referer:
        return "-1"
    own = f"http://{req.headers.get('host', '')}"
    parts = urlsplit(referer)
    return referer if f"{parts.scheme}://{parts.netloc}" == own else "/"


def _page_number(text: str | None) -> int:
    try:
        n = int((text or "").strip() or "1")
    except ValueError:
        return 1
    return n if n > 1 else 1


def _pager(base: str, page: int, pages: int) -> dict:
    """Paging::pageBar's pieces: status, first/previous/next/last links (javascript:; where
    there is nowhere to go) and the number bar."""
    def url(n: int | None) -> str:
        if not n:
            return "javascript:;"
        return base if n == 1 else f"{base}?page={n}"

    if not pages:
        return {"none": True}
    half_low, half_up = NUMBAR // 2, -(-NUMBAR // 2)
    if page <= half_low or pages < NUMBAR:
        numbers = range(1, min(NUMBAR, pages) + 1)
    elif page + half_low >= pages:
        numbers = range(pages - NUMBAR + 1, pages + 1)
    else:
        numbers = range(page - half_low, page + half_low + 1)
    return {
        "none": False,
        "index": url(1), "pre": url(page - 1 if page > 1 else None),
        "next": url(page + 1 if page < pages else None), "last": url(pages),
        "dots_before": page > half_up, "dots_after": pages > NUMBAR and page < pages - half_low,
        "numbers": [(n, url(n), n == page) for n in numbers],
    }
