"""`legacy`: an older ASP.NET WebForms city mailbox, in GBK.

Every page is one `aspnetForm` posting back to itself with a `__VIEWSTATE` token issued by the
GET; a post without a token this server issued for that page is refused, as WebForms refuses a
forged view state. The writer chooses the query password; dates are shown without a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from bot.sandbox.behaviour import Status
from bot.sandbox.platforms.base import (Platform, Request, Response, SiteContext,
                                        captcha_image, normalise_text, redirect)

STATUS = {Status.PENDING: "待受理", Status.IN_PROGRESS: "办理中", Status.FINISHED: "已回复"}
PHONE_RE = re.compile(r"^(1[3-9][0-9]{9}|(0[0-9]{2,3}-?)?[0-9]{7,8})$")
PASSWORD_RE = re.compile(r"^[\x21-\x7e]{6,16}$")
P = "ctl00$MainContent$"           # WebForms control names ...
EXPIRED = "页面已过期或非法提交，请返回重新填写。"
ILLEGAL = "非法操作！"
WRONG = "受理编号或密码错误，请核对后重新输入！"
_VS_MAGIC = b"\xff\x01\x0f\x0f\x05\x0a"  # base64 "/wEPDwUK", like a real view state
_PAGES = {"Default.aspx": b"D", "Query.aspx": b"Q"}


class ViewState:
    """Opaque, unforgeable, stateless: magic + nonce + page + HMAC (so a GET stores nothing)."""

    def __init__(self, key: bytes | None = None):
        self.key = key or os.urandom(32)

    def issue(self, page: str) -> str:
        nonce = os.urandom(12)
        tag = _PAGES[page]
        mac = hmac.new(self.key, nonce + tag, hashlib.sha256).digest()[:16]
        return base64.b64encode(_VS_MAGIC + nonce + tag + mac).decode("ascii")

    def valid(self, token: str, page: str) -> bool:
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            return False
        if len(raw) != len(_VS_MAGIC) + 12 + 1 + 16 or not raw.startswith(_VS_MAGIC):
            return False
        body, mac = raw[len(_VS_MAGIC):-16], raw[-16:]
        good = hmac.new(self.key, body, hashlib.sha256).digest()[:16]
        return hmac.compare_digest(mac, good) and body[-1:] == _PAGES[page]


class Legacy(Platform):
    name = "legacy"
    encoding = "gbk"
    server_header = "Microsoft-IIS/6.0"
    field_roles = {role: (P + x, "ctl00_MainContent_" + x) for role, x in
                   (("title", "txtTitle"), ("body", "txtContent"), ("name", "txtName"), ("phone", "txtPhone"))}
    write_paths = ("", "Default.aspx", "CheckCode.aspx")
    submit_path = "Default.aspx"

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        rest = req.rest
        if rest == "":
            return redirect(f"{ctx.prefix}/Default.aspx")
        if rest == "CheckCode.aspx":
            return captcha_image(ctx.store, req.query.get("t", ""))
        if rest not in _PAGES:
            return None
        if req.method == "POST":
            if not ctx.sandbox.viewstate.valid(req.form.get("__VIEWSTATE", ""), rest):
                return self.page(ctx, "legacy/error.html", rest, message=EXPIRED)
            return self._write(ctx, req) if rest == "Default.aspx" else self._query(ctx, req)
        if rest == "Default.aspx":
            return self.page(ctx, "legacy/default.html", rest, values={})
        return self.page(ctx, "legacy/query.html", rest, values={})

    def page(self, ctx: SiteContext, template: str, page: str, **values) -> Response:
        # The captcha is shown only where the site checks one (roster `captcha = true`).
        token = ctx.store.new_captcha()[0] if ctx.site.captcha and template == "legacy/default.html" else None
        resp = self.render(ctx, template, viewstate=ctx.sandbox.viewstate.issue(page),
                           action=f"{ctx.prefix}/{page}", P=P, token=token, **values)
        resp.headers += [("X-Powered-By", "ASP.NET"), ("X-AspNet-Version", "2.0.50727"),
                         ("Cache-Control", "private")]
        return resp

    def _write(self, ctx: SiteContext, req: Request) -> Response:
        f = req.form
        values = {"name": f.get(P + "txtName", "").strip(), "phone": f.get(P + "txtPhone", "").strip(),
                  "title": f.get(P + "txtTitle", "").strip(),
                  "content": normalise_text(f.get(P + "txtContent", "")).strip()}
        password = f.get(P + "txtPassword", "")
        error = _validate(values, password)
        if error is None and ctx.site.captcha:
            answer = ctx.store.take_captcha(f.get("hidCodeKey", ""))
            if answer is None or f.get(P + "txtCheckCode", "").strip() != answer:
                error = "验证码错误！"
        if error:
            return self.page(ctx, "legacy/default.html", "Default.aspx", values=values, message=error)
        letter = ctx.receive(title=values["title"], body=values["content"], name=values["name"],
                             phone=values["phone"], secret=password)
        return self.page(ctx, "legacy/success.html", "Default.aspx", letter=letter)

    def _query(self, ctx: SiteContext, req: Request) -> Response:
        code = req.form.get(P + "txtCode", "").strip()
        password = req.form.get(P + "txtPassword", "")
        values = {"code": code}
        if not code or not password:
            return self.page(ctx, "legacy/query.html", "Query.aspx", values=values,
                             message="请输入受理编号和查询密码！")
        letter = ctx.find(code)
        if letter is None or letter.secret != password:
            return self.page(ctx, "legacy/query.html", "Query.aspx", values=values, message=WRONG)
        view = ctx.visible(letter)
        if view is None:
            return self.page(ctx, "legacy/query.html", "Query.aspx", values=values, message=ILLEGAL)
        return self.page(ctx, "legacy/query.html", "Query.aspx", values=values, view=view,
                         status=STATUS[view.status])


def _validate(v: dict[str, str], password: str) -> str | None:
    if not v["name"]:
        return "姓名不能为空！"
    if not v["phone"]:
        return "联系电话不能为空！"
    if not PHONE_RE.match(v["phone"]):
        return "联系电话格式不正确！"
    if not v["title"]:
        return "标题不能为空！"
    if len(v["title"]) > 50:
        return "标题不能超过50个字！"
    if not v["content"]:
        return "内容不能为空！"
    if len(v["content"]) > 2000:
        return "内容不能超过2000个字！"
    if not password:
        return "查询密码不能为空！"
    if not PASSWORD_RE.match(password):
        return "查询密码应为6-16位字母、数字或符号！"
    return None
