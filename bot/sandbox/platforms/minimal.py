"""`minimal`: a small-vendor PHP 局长信箱 (UTF-8).

One form page; a mistake answers with a bare message page and a 返回 link (the vendor's
`history.back()`); success shows only a letter number; lookup by number alone.
"""

from __future__ import annotations

from bot.sandbox.platforms.base import (EMAIL_RE, MOBILE_RE, Platform, Request, Response,
                                        SiteContext, captcha_image, normalise_text, redirect)

KINDS = ("咨询", "投诉", "建议")
NOT_FOUND = "没有找到该信件"


class Minimal(Platform):
    name = "minimal"
    server_header = "Apache/2.2.15 (CentOS)"
    field_roles = {"title": "title", "body": "content", "name": "name", "phone": "mobile", "email": "email"}
    write_paths = ("", "index.php", "save.php", "code.php")
    submit_path = "save.php"

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        rest = req.rest
        if rest == "":
            return redirect(f"{ctx.prefix}/index.php")
        if rest == "index.php":
            return self._php(self._form(ctx))
        if rest == "code.php":
            return captcha_image(ctx.store, req.query.get("t", ""))
        if rest == "save.php":
            if req.method != "POST":
                return redirect(f"{ctx.prefix}/index.php")
            return self._php(self._save(ctx, req))
        if rest == "search.php":
            return self._php(self._search(ctx, req))
        return None

    @staticmethod
    def _php(resp: Response) -> Response:
        resp.headers.append(("X-Powered-By", "PHP/5.4.45"))
        return resp

    def _save(self, ctx: SiteContext, req: Request) -> Response:
        f = req.form
        v = {k: f.get(k, "").strip() for k in ("type", "name", "mobile", "email", "title")}
        v["content"] = normalise_text(f.get("content", "")).strip()
        error = _validate(v)
        if error is None and ctx.site.captcha:
            answer = ctx.store.take_captcha(f.get("codekey", ""))
            if answer is None or f.get("yzm", "").strip() != answer:
                error = "验证码错误！"
        if error:
            return self.render(ctx, "minimal/message.html", message=error)
        letter = ctx.receive(title=v["title"], body=v["content"], name=v["name"],
                             phone=v["mobile"], email=v["email"], secret="", kind=v["type"])
        return self.render(ctx, "minimal/success.html", letter=letter)

    def _form(self, ctx: SiteContext) -> Response:
        # The captcha is shown only where the site checks one (roster `captcha = true`).
        token = ctx.store.new_captcha()[0] if ctx.site.captcha else None
        return self.render(ctx, "minimal/index.html", kinds=KINDS, token=token)

    def _search(self, ctx: SiteContext, req: Request) -> Response:
        if "code" not in req.query:
            return self.render(ctx, "minimal/search.html", code="")
        code = req.query["code"].strip()
        if not code:
            return self.render(ctx, "minimal/search.html", code="", message="请输入信件编号！")
        view = ctx.visible(ctx.find(code))
        if view is None:
            return self.render(ctx, "minimal/search.html", code=code, message=NOT_FOUND,
                               not_found=True)
        return self.render(ctx, "minimal/search.html", code=code, view=view,
                           status="已办结" if view.finished else "未办结")


def _validate(v: dict[str, str]) -> str | None:
    if v["type"] not in KINDS:
        return "请选择信件类型！"
    if not v["name"]:
        return "姓名不能为空！"
    if not MOBILE_RE.match(v["mobile"]):
        return "手机号码填写错误！"
    if not EMAIL_RE.match(v["email"]):
        return "联系邮箱填写错误！"
    if not v["title"]:
        return "主题不能为空！"
    if len(v["title"]) > 50:
        return "主题不能超过50个字！"
    if not v["content"]:
        return "内容不能为空！"
    if len(v["content"]) > 2000:
        return "内容不能超过2000个字！"
    return None
