"""`confirm`: a two-step 领导信箱 of the Java (Struts/JSP) 政务 kind (UTF-8).

The form does not send the letter: it posts to a preview page (信件预览) that shows what was
typed as text, with the same values in hidden inputs. 返回修改 posts them back to the form
(filled again, a new captcha); 确认提交 posts them to be stored, once: the preview's hidden
token (the framework's anti-resubmission token) is spent by the first post and lasts 30
minutes. The success page gives only a 信件编号; the query asks for it and the last four digits
of the mobile number the writer typed (no password is chosen or given). Times are shown the
Chinese way, `2024年04月28日 10:30`. A public list (信件公开) shows public letters ten a page.

No session: everything a post needs is in the post (as on such systems when cookies are off);
the tokens are the only memory, and only a POST makes one. Everything else comes from the
clock at request time.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

from bot.clock import local
from bot.sandbox.behaviour import Status
from bot.sandbox.platforms.base import (EMAIL_RE, MOBILE_RE, Platform, Request, Response,
                                        SiteContext, captcha_image, normalise_text, redirect)

KINDS = ("咨询", "投诉", "建议", "求助")
STATUS = {Status.PENDING: "待受理", Status.IN_PROGRESS: "已受理", Status.FINISHED: "已回复"}
FIELDS = ("xingming", "shouji", "email", "leixing", "zhuti", "neirong", "gongkai")
NAME_MAX = 20
TITLE_MIN, TITLE_MAX = 8, 30
BODY_MIN, BODY_MAX = 20, 600
PAGE_SIZE = 10
TOKEN_LIFE = timedelta(minutes=30)    # a servlet session's default timeout
MAX_TOKENS = 20_000
EXPIRED = "页面已过期，请重新填写信件。"
TWICE = "请勿重复提交！"
NOT_FOUND = "未找到相关信件，请核对信件编号和手机号码后四位。"


def cn_time(value: datetime) -> str:
    """`2024年04月28日 10:30`: how the system shows a time (Beijing time)."""
    t = local(value)
    return f"{t:%Y}年{t:%m}月{t:%d}日 {t:%H:%M}"


def cn_date(value: datetime) -> str:
    t = local(value)
    return f"{t:%Y}年{t:%m}月{t:%d}日"


class Confirm(Platform):
    name = "confirm"
    server_header = "Apache-Coyote/1.1"
    field_roles = {"title": "zhuti", "body": "neirong", "name": "xingming", "phone": "shouji", "email": "email"}
    write_paths = ("", "write.do", "preview.do", "confirm.do", "captcha.do")
    submit_path = "confirm.do"

    def __init__(self, env):
        super().__init__(env)
        self._lock = threading.Lock()
        # token -> (slug, mailbox, issued at); spent tokens are remembered to say "twice".
        self._tokens: OrderedDict[str, tuple[str, str, datetime]] = OrderedDict()
        self._spent: OrderedDict[str, None] = OrderedDict()

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        rest, post = req.rest, req.method == "POST"
        if rest == "":
            return redirect(f"{ctx.prefix}/write.do")
        if rest == "write.do":
            # A post here is 返回修改 from the preview: the form again with what was typed.
            values = _values(req.form) if post else {"gongkai": "1"}
            return self._form(ctx, values, None)
        if rest in ("preview.do", "confirm.do") and not post:
            return redirect(f"{ctx.prefix}/write.do")
        if rest == "preview.do":
            return self._preview(ctx, req)
        if rest == "confirm.do":
            return self._confirm(ctx, req)
        if rest == "captcha.do":
            return captcha_image(ctx.store, req.query.get("t", ""))
        if rest == "query.do":
            return self._query(ctx, req) if post else self.render(ctx, "confirm/query.html", values={})
        if rest == "list.do":
            return self._list(ctx, req)
        return None

    def render(self, ctx: SiteContext, template: str, http_status: int = 200, **values) -> Response:
        resp = super().render(ctx, template, http_status, cn_time=cn_time, cn_date=cn_date, **values)
        resp.headers.append(("X-Powered-By", "Servlet 2.5; JBoss-5.0/JBossWeb-2.1"))
        return resp

    # -- writing ------------------------------------------------------------------------------
    def _form(self, ctx: SiteContext, values: dict[str, str], error: str | None) -> Response:
        # The captcha is shown only where the site checks one (roster `captcha = true`).
        token = ctx.store.new_captcha()[0] if ctx.site.captcha else None
        return self.render(ctx, "confirm/write.html", values=values, error=error, token=token, kinds=KINDS)

    def _preview(self, ctx: SiteContext, req: Request) -> Response:
        v = _values(req.form)
        error = _validate(v)
        if error is None and ctx.site.captcha:
            typed = req.form.get("yzm", "").strip()
            answer = ctx.store.take_captcha(req.form.get("yzmKey", ""))
            if not typed:
                error = "请输入验证码"
            elif answer is None or typed != answer:
                error = "验证码错误，请重新输入"
        if error:
            return self._form(ctx, v, error)
        return self.render(ctx, "confirm/preview.html", values=v, token=self._issue(ctx))

    def _confirm(self, ctx: SiteContext, req: Request) -> Response:
        problem = self._spend(ctx, req.form.get("token", ""))
        if problem:
            return self.render(ctx, "confirm/message.html", message=problem,
                               title="页面已过期" if problem == EXPIRED else "提示信息")
        v = _values(req.form)
        error = _validate(v)          # the hidden values are checked again: they are only a post
        if error:
            return self._form(ctx, v, error)
        letter = ctx.receive(title=v["zhuti"], body=v["neirong"], name=v["xingming"], phone=v["shouji"],
                             email=v["email"], secret="", kind=v["leixing"], public=v["gongkai"] == "1")
        return self.render(ctx, "confirm/success.html", letter=letter)

    def _issue(self, ctx: SiteContext) -> str:
        token = secrets.token_hex(16).upper()
        with self._lock:
            self._tokens[token] = (ctx.site.slug, ctx.mailbox, ctx.now())
            while len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        return token

    def _spend(self, ctx: SiteContext, token: str) -> str | None:
        """None when the preview's token is good (it is spent now), else the page's message."""
        with self._lock:
            entry = self._tokens.pop(token, None)
            if entry is None:
                return TWICE if token in self._spent else EXPIRED
            self._spent[token] = None
            while len(self._spent) > MAX_TOKENS:
                self._spent.popitem(last=False)
        slug, mailbox, issued = entry
        if (slug, mailbox) != (ctx.site.slug, ctx.mailbox) or ctx.now() > issued + TOKEN_LIFE:
            return EXPIRED
        return None

    # -- reading ------------------------------------------------------------------------------
    def _query(self, ctx: SiteContext, req: Request) -> Response:
        code = req.form.get("xjbh", "").strip()
        tail = req.form.get("sjwh", "").strip()
        values = {"xjbh": code, "sjwh": tail}
        error = None
        if not code:
            error = "请输入信件编号"
        elif not tail:
            error = "请输入手机号码后四位"
        elif not (len(tail) == 4 and tail.isascii() and tail.isdigit()):
            error = "手机号码后四位应为4位数字"
        if error:
            return self.render(ctx, "confirm/query.html", values=values, error=error)
        letter = ctx.find(code)
        if letter is not None and letter.phone[-4:] != tail:
            letter = None
        view = ctx.visible(letter)
        if view is None:
            return self.render(ctx, "confirm/query.html", values=values, not_found=NOT_FOUND)
        return self.render(ctx, "confirm/query.html", values=values, view=view, status=STATUS[view.status])

    def _list(self, ctx: SiteContext, req: Request) -> Response:
        try:
            page = max(1, int(req.query.get("page") or "1"))
        except ValueError:
            page = 1
        total, views = ctx.public_letters((page - 1) * PAGE_SIZE, PAGE_SIZE)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        rows = [(v, STATUS[v.status]) for v in views]
        return self.render(ctx, "confirm/list.html", rows=rows, page=page, pages=pages, total=total)


def _values(form: dict[str, str]) -> dict[str, str]:
    v = {k: form.get(k, "").strip() for k in FIELDS}
    v["neirong"] = normalise_text(form.get("neirong", "")).strip()
    return v


def _validate(v: dict[str, str]) -> str | None:
    """The first rule the letter breaks, in the form's order, as the system words it."""
    if not v["xingming"]:
        return "请输入姓名"
    if len(v["xingming"]) > NAME_MAX:
        return f"姓名不能超过{NAME_MAX}个字"
    if not v["shouji"]:
        return "请输入手机号码"
    if not MOBILE_RE.match(v["shouji"]):
        return "请输入正确的手机号码"
    if v["email"] and not EMAIL_RE.match(v["email"]):
        return "请输入正确的电子邮箱"
    if v["leixing"] not in KINDS:
        return "请选择信件类型"
    if not v["zhuti"]:
        return "请输入信件主题"
    if not TITLE_MIN <= len(v["zhuti"]) <= TITLE_MAX:
        return f"信件主题应为{TITLE_MIN}-{TITLE_MAX}个字"
    if not v["neirong"]:
        return "请输入信件内容"
    if not BODY_MIN <= len(v["neirong"]) <= BODY_MAX:
        return f"信件内容应为{BODY_MIN}-{BODY_MAX}个字"
    if v["gongkai"] not in ("0", "1"):
        return "请选择是否公开"
    return None
