"""`hdjlpt`: a provincial consolidated 互动交流平台 in the manner of Guangdong's (Laravel, UTF-8).

Everything goes through a server-side session: every page sets a `hdjlpt_session` cookie when
the request has no live one, a session dies after 120 minutes without a request (on the
sandbox clock), and every POST must carry the session's CSRF token (`_token` or the
`X-CSRF-TOKEN` header) or it gets Laravel's 419 页面已过期 and nothing is stored. Validation
errors redirect back to the form with the error list and the old input (post/redirect/get, as
Laravel does); the captcha's answer lives in the session (mews/captcha style). Success shows a
信件编号 and a 查询密码 the site made up; the query page is a CSRF-protected POST; the public
list is a JSON service (`POST list`, offset/limit, Unix seconds) read by the page's script.
"""

from __future__ import annotations

import hmac
import json
import secrets
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jinja2

from bot.sandbox.behaviour import Status
from bot.sandbox.captcha import captcha_png
from bot.sandbox.platforms.base import (EMAIL_RE, MOBILE_RE, Platform, Request, Response,
                                        SiteContext, normalise_text, redirect)

COOKIE = "hdjlpt_session"
LIFETIME = timedelta(minutes=120)        # Laravel's SESSION_LIFETIME default
MAX_SESSIONS = 50_000
KINDS = ("咨询", "投诉", "建议", "求助")
STATUS = {Status.PENDING: "待处理", Status.IN_PROGRESS: "办理中", Status.FINISHED: "已办结"}
STATUS_CLASS = {Status.PENDING: "badge-secondary", Status.IN_PROGRESS: "badge-warning",
                Status.FINISHED: "badge-success"}
NOT_FOUND = "未找到相关信件，请核对信件编号和查询密码。"
PAGE_SIZE = 10                           # the public page's rows per page
MAX_LIMIT = 100                          # the list service's largest `limit`
ATTRIBUTES = {"name": "姓名", "mobile": "手机号码", "email": "电子邮箱", "category": "类别",
              "title": "标题", "content": "内容", "is_public": "是否公开", "captcha": "验证码",
              "letter_no": "信件编号", "query_pwd": "查询密码", "offset": "起始位置",
              "limit": "每页数量"}
TITLE_MIN, TITLE_MAX = 5, 30
CONTENT_MAX = 1500
NAME_MAX = 20
_NONCE = string.ascii_letters + string.digits


@dataclass
class Session:
    id: str
    slug: str
    token: str                            # the CSRF token
    created_at: datetime
    last_seen: datetime
    captcha_key: str | None = None        # the current captcha image (its answer is in the Store)
    flash: dict = field(default_factory=dict)   # errors and old input, for the next page only


class Sessions:
    """The platform's session store (Laravel's file driver, in memory). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Session] = OrderedDict()

    def resume(self, slug: str, sid: str | None, now: datetime) -> Session | None:
        """The live session of this cookie on this site, touched; None when it is unknown, of
        another site, or expired (then it is forgotten)."""
        if not sid:
            return None
        with self._lock:
            s = self._items.get(sid)
            if s is None or s.slug != slug:
                return None
            if now - s.last_seen > LIFETIME:
                del self._items[sid]
                return None
            s.last_seen = max(s.last_seen, now)
            self._items.move_to_end(sid)
            return s

    def start(self, slug: str, now: datetime) -> Session:
        s = Session(id=secrets.token_hex(20), slug=slug, token=_random(40), created_at=now,
                    last_seen=now)
        with self._lock:
            self._items[s.id] = s
            # Bounded like a real store's garbage collection: the oldest go first.
            while len(self._items) > MAX_SESSIONS:
                self._items.popitem(last=False)
        return s


def _random(n: int) -> str:
    return "".join(secrets.choice(_NONCE) for _ in range(n))


class Hdjlpt(Platform):
    name = "hdjlpt"
    server_header = "nginx/1.18.0"
    field_roles = {"title": "title", "body": "content", "name": "name", "phone": "mobile",
                   "email": "email"}
    write_paths = ("", "letter", "captcha/default")
    submit_path = "letter"

    def __init__(self, env: jinja2.Environment):
        super().__init__(env)
        self.sessions = Sessions()

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        now = ctx.now()
        session = self.sessions.resume(ctx.site.slug, req.cookies.get(COOKIE), now)
        fresh = session is None
        if fresh:
            session = self.sessions.start(ctx.site.slug, now)
        resp = self._route(ctx, req, session, fresh)
        if resp is None:
            return None
        if fresh:
            # A browser-session cookie: an expiry date from the sandbox clock could lie in the
            # browser's past; the server decides when a session has expired.
            resp.headers.append(("Set-Cookie", f"{COOKIE}={session.id}; path=/{ctx.site.slug}/; "
                                               "httponly; samesite=lax"))
        resp.headers += [("X-Powered-By", "PHP/7.4.33"), ("Cache-Control", "no-cache, private")]
        return resp

    def _route(self, ctx: SiteContext, req: Request, session: Session, fresh: bool) -> Response | None:
        rest, post = req.rest, req.method == "POST"
        if rest not in ("", "letter", "captcha/default", "search", "list", "public"):
            return None
        if post:
            if rest in ("", "captcha/default", "public"):
                return _method_not_allowed("GET, HEAD")
            if not self._csrf_ok(req, session, fresh):
                return self._expired(ctx, req, back="search" if rest == "search" else
                                     "public" if rest == "list" else "")
            if rest == "letter":
                return self._submit(ctx, req, session)
            if rest == "search":
                return self._search(ctx, req, session)
            return self._list(ctx, req)
        if rest == "":
            return self._form(ctx, session)
        if rest == "letter":
            return redirect(f"{ctx.prefix}/")
        if rest == "captcha/default":
            return self._captcha(ctx, session)
        if rest == "search":
            flash, session.flash = session.flash, {}
            return self.page(ctx, "hdjlpt/search.html", session, errors=flash.get("errors", {}),
                             old=flash.get("old", {}))
        if rest == "list":
            return _method_not_allowed("POST")
        return self.page(ctx, "hdjlpt/public.html", session, page=_int(req.query.get("page"), 1, 1) or 1)

    def page(self, ctx: SiteContext, template: str, session: Session, **values) -> Response:
        return self.render(ctx, template, csrf_token=session.token, **values)

    # -- CSRF ---------------------------------------------------------------------------------
    def _csrf_ok(self, req: Request, session: Session, fresh: bool) -> bool:
        """Laravel's VerifyCsrfToken: the session's token, from the `_token` input (form or
        JSON) or the X-CSRF-TOKEN header. A request without a live session never passes."""
        if fresh:
            return False
        sent = req.form.get("_token") or _json(req).get("_token") or req.headers.get("x-csrf-token", "")
        return isinstance(sent, str) and hmac.compare_digest(sent.encode(), session.token.encode())

    def _expired(self, ctx: SiteContext, req: Request, back: str) -> Response:
        if _wants_json(req):
            return _json_response({"message": "CSRF token mismatch."}, 419)
        return self.render(ctx, "hdjlpt/419.html", http_status=419, back=f"{ctx.prefix}/{back}")

    # -- writing ------------------------------------------------------------------------------
    def _form(self, ctx: SiteContext, session: Session) -> Response:
        flash, session.flash = session.flash, {}
        # A new picture with every form; the previous one is spent (mews/captcha keeps one).
        if session.captcha_key:
            ctx.store.take_captcha(session.captcha_key)
        key, _ = ctx.store.new_captcha()
        session.captcha_key = key
        old = flash.get("old") or {"is_public": "1"}
        return self.page(ctx, "hdjlpt/write.html", session, errors=flash.get("errors", {}), old=old,
                         kinds=KINDS, captcha_key=key, captcha_nonce=_random(8))

    def _captcha(self, ctx: SiteContext, session: Session) -> Response:
        """`captcha/default?<anything>`: the picture of the session's current captcha (one is
        made when the session has none, e.g. the image opened on its own)."""
        answer = ctx.store.captcha_answer(session.captcha_key) if session.captcha_key else None
        if answer is None:
            session.captcha_key, answer = ctx.store.new_captcha()
        return Response(200, captcha_png(answer, session.captcha_key), "image/png",
                        [("Cache-Control", "no-store")])

    def _submit(self, ctx: SiteContext, req: Request, session: Session) -> Response:
        f = req.form
        v = {k: f.get(k, "").strip() for k in ("name", "mobile", "email", "category", "title", "is_public")}
        v["content"] = normalise_text(f.get("content", "")).strip()
        # The answer is the session's, whatever the form says; each picture allows one try.
        answer = ctx.store.take_captcha(session.captcha_key) if session.captcha_key else None
        session.captcha_key = None
        errors = _validate(v)
        if ctx.site.captcha:
            typed = f.get("captcha", "").strip()
            if not typed:
                errors["captcha"] = _required("captcha")
            elif answer is None or typed.lower() != answer.lower():
                errors["captcha"] = "验证码 不正确。"
        if errors:
            session.flash = {"errors": errors, "old": v}
            return redirect(f"{ctx.prefix}/")
        letter = ctx.receive(title=v["title"], body=v["content"], name=v["name"], phone=v["mobile"],
                             email=v["email"], secret=None, kind=v["category"],
                             public=v["is_public"] == "1")
        return self.page(ctx, "hdjlpt/success.html", session, letter=letter)

    # -- reading ------------------------------------------------------------------------------
    def _search(self, ctx: SiteContext, req: Request, session: Session) -> Response:
        code = req.form.get("letter_no", "").strip()
        pwd = req.form.get("query_pwd", "").strip()
        old = {"letter_no": code}
        errors = {k: _required(k) for k, val in (("letter_no", code), ("query_pwd", pwd)) if not val}
        if errors:
            session.flash = {"errors": errors, "old": old}
            return redirect(f"{ctx.prefix}/search")
        letter = ctx.find(code)
        if letter is not None and letter.secret != pwd.upper():
            letter = None
        view = ctx.visible(letter)
        if view is None:
            return self.page(ctx, "hdjlpt/search.html", session, errors={}, old=old,
                             not_found=NOT_FOUND)
        return self.page(ctx, "hdjlpt/search.html", session, errors={}, old=old, view=view,
                         status=STATUS[view.status], status_class=STATUS_CLASS[view.status])

    def _list(self, ctx: SiteContext, req: Request) -> Response:
        data = _json(req) or req.form
        errors = {}
        offset = _int(data.get("offset"), 0, 0)
        limit = _int(data.get("limit"), PAGE_SIZE, 1, MAX_LIMIT)
        if offset is None:
            errors["offset"] = ["起始位置 必须是整数。"]
        if limit is None:
            errors["limit"] = [f"每页数量 必须介于 1 - {MAX_LIMIT} 之间。"]
        if errors:
            return _json_response({"message": "The given data was invalid.", "errors": errors}, 422)
        total, views = ctx.public_letters(offset, limit)
        rows = [{
            "letter_no": v.letter.tracking_code,
            "title": v.letter.title,
            "created_at": int(v.letter.received_at.timestamp()),
            "replied_at": int(v.displayed_reply_at.timestamp()) if v.finished else None,
            "status": STATUS[v.status],
        } for v in views]
        return _json_response({"total": total, "rows": rows})


def _required(key: str) -> str:
    return f"{ATTRIBUTES[key]} 不能为空。"


def _validate(v: dict[str, str]) -> dict[str, str]:
    """Every failing field's first message, in form order (Laravel reports them all)."""
    e: dict[str, str] = {}
    if not v["name"]:
        e["name"] = _required("name")
    elif len(v["name"]) > NAME_MAX:
        e["name"] = f"姓名 不能大于 {NAME_MAX} 个字符。"
    if not v["mobile"]:
        e["mobile"] = _required("mobile")
    elif not MOBILE_RE.match(v["mobile"]):
        e["mobile"] = "手机号码 格式不正确。"
    if v["email"] and not EMAIL_RE.match(v["email"]):
        e["email"] = "电子邮箱 不是一个合法的邮箱。"
    if not v["category"]:
        e["category"] = _required("category")
    elif v["category"] not in KINDS:
        e["category"] = "已选的属性 类别 非法。"
    if not v["title"]:
        e["title"] = _required("title")
    elif len(v["title"]) < TITLE_MIN:
        e["title"] = f"标题 至少为 {TITLE_MIN} 个字符。"
    elif len(v["title"]) > TITLE_MAX:
        e["title"] = f"标题 不能大于 {TITLE_MAX} 个字符。"
    if not v["content"]:
        e["content"] = _required("content")
    elif len(v["content"]) > CONTENT_MAX:
        e["content"] = f"内容 不能大于 {CONTENT_MAX} 个字符。"
    if not v["is_public"]:
        e["is_public"] = _required("is_public")
    elif v["is_public"] not in ("0", "1"):
        e["is_public"] = "已选的属性 是否公开 非法。"
    return e


def _json(req: Request) -> dict:
    """The body of a JSON request (Laravel merges it into the input); {} otherwise."""
    if "json" not in req.headers.get("content-type", "").lower() or not req.raw_body:
        return {}
    try:
        data = json.loads(req.raw_body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _wants_json(req: Request) -> bool:
    h = req.headers
    return ("json" in h.get("content-type", "").lower() or "json" in h.get("accept", "").lower()
            or h.get("x-requested-with", "").lower() == "xmlhttprequest")


def _json_response(data: dict, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, "application/json")


def _method_not_allowed(allow: str) -> Response:
    return Response(405, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Method Not Allowed</title>"
                         "</head><body><h1>405 Method Not Allowed</h1></body></html>".encode("utf-8"),
                    headers=[("Allow", allow)])


def _int(value, default: int, low: int, high: int | None = None) -> int | None:
    """An integer input (JSON number or text) within [low, high]; `default` when absent."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        n = int(value) if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        return None
    if n < low or (high is not None and n > high):
        return None
    return n

