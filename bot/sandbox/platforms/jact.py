"""`jact`: an intensive-platform 政民互动 system in the manner of the big CMS vendors (UTF-8).

Notice page with an agreement, then the form (only as the answer to the agreement's POST),
image captcha, 办件编号 + 查询码, query page, and a public list filled by a script.
"""

from __future__ import annotations

import json
import math
from urllib.parse import urlencode

from bot.sandbox.behaviour import Status
from bot.sandbox.platforms.base import (EMAIL_RE, MOBILE_RE, Platform, Request, Response,
                                        SiteContext, captcha_image, normalise_text, redirect)

KINDS = ("咨询", "投诉", "建议", "求助")
STATUS = {Status.PENDING: "待处理", Status.IN_PROGRESS: "办理中", Status.FINISHED: "已办结"}
STATUS_CLASS = {Status.PENDING: "status-pending", Status.IN_PROGRESS: "status-doing",
                Status.FINISHED: "status-done"}
PAGE_SIZE = 15
KEY_MAX = 50          # the search box's maxlength
FIELDS = ("xm", "sj", "email", "lx", "dx", "bt", "nr", "gk")
AGREE_FIRST = "请先阅读并同意《写信须知》"
NOT_FOUND = "未查询到相关信件，请核对办件编号和查询码"


def targets(ctx: SiteContext) -> list[str]:
    if ctx.mailbox == "mayor":
        head = ctx.label.removesuffix("信箱")          # 市长 / 县长 / 区长
        return [head, f"常务副{head}", f"分管副{head}", "政府办公室"]
    return ["主要领导", "分管领导", "办公室", "相关业务科室"]


class Jact(Platform):
    name = "jact"
    server_header = "nginx"
    field_roles = {"title": "bt", "body": "nr", "name": "xm", "phone": "sj", "email": "email"}
    write_paths = ("", "index.html", "write", "submit", "captcha.png")
    submit_path = "submit"

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        rest, method = req.rest, req.method
        if rest in ("", "index.html"):
            return self.render(ctx, "jact/notice.html") if method != "POST" else None
        if rest == "write":
            if method == "POST":
                return self._agreement(ctx, req)
            return redirect(f"{ctx.prefix}/")        # no agreement, no form
        if rest == "submit":
            if method == "POST":
                return self._submit(ctx, req)
            return redirect(f"{ctx.prefix}/")
        if rest == "captcha.png":
            return captcha_image(ctx.store, req.query.get("t", ""))
        if rest == "query":
            if method == "POST":
                return self._query(ctx, req)
            return self.render(ctx, "jact/query.html", values={})
        if rest == "list":
            page = _page_number(req.query.get("page"))
            key = _key(req.query.get("key"))
            return self.render(ctx, "jact/list.html", page=page, key=key,
                               data_query=urlencode({"page": page, **({"key": key} if key else {})}))
        if rest == "list/data.js":
            return self._list_data(ctx, req)
        return None

    # -- writing ------------------------------------------------------------------------------
    def _agreement(self, ctx: SiteContext, req: Request) -> Response:
        if req.form.get("agree") != "1":
            return self.render(ctx, "jact/notice.html", error=AGREE_FIRST)
        return self._form(ctx, {"gk": "1"}, None)

    def _form(self, ctx: SiteContext, values: dict[str, str], error: str | None) -> Response:
        token, _ = ctx.store.new_captcha()
        return self.render(ctx, "jact/write.html", values=values, error=error, token=token,
                           kinds=KINDS, targets=targets(ctx))

    def _submit(self, ctx: SiteContext, req: Request) -> Response:
        form = req.form
        if form.get("agree") != "1":
            return self.render(ctx, "jact/notice.html", error=AGREE_FIRST)
        values = {k: form.get(k, "").strip() for k in FIELDS}
        values["nr"] = normalise_text(form.get("nr", "")).strip()
        answer = ctx.store.take_captcha(form.get("yzmKey", ""))
        error = self._validate(ctx, values, form.get("yzm", "").strip(), answer)
        if error:
            return self._form(ctx, values, error)
        letter = ctx.receive(title=values["bt"], body=values["nr"], name=values["xm"],
                             phone=values["sj"], email=values["email"], secret=None,
                             kind=values["lx"], target=values["dx"], public=values["gk"] == "1")
        return self.render(ctx, "jact/success.html", letter=letter)

    def _validate(self, ctx: SiteContext, v: dict[str, str], typed: str, answer: str | None) -> str | None:
        if not v["xm"]:
            return "请填写姓名"
        if len(v["xm"]) > 20:
            return "姓名不能超过20个字"
        if not v["sj"]:
            return "请填写手机号码"
        if not MOBILE_RE.match(v["sj"]):
            return "手机号码格式不正确"
        if v["email"] and not EMAIL_RE.match(v["email"]):
            return "电子邮箱格式不正确"
        if v["lx"] not in KINDS:
            return "请选择信件类型"
        if v["dx"] not in targets(ctx):
            return "请选择提交对象"
        if not v["bt"]:
            return "请填写标题"
        if not 10 <= len(v["bt"]) <= 25:
            return "标题长度应为10-25个字"
        if not v["nr"]:
            return "请填写内容"
        if len(v["nr"]) > 1000:
            return "内容不能超过1000字"
        if v["gk"] not in ("0", "1"):
            return "请选择是否公开"
        if ctx.site.captcha:
            if not typed:
                return "请输入验证码"
            if answer is None or typed != answer:
                return "验证码错误"
        return None


    # -- reading ------------------------------------------------------------------------------
    def _query(self, ctx: SiteContext, req: Request) -> Response:
        code = req.form.get("bjbh", "").strip()
        secret = req.form.get("cxm", "").strip()
        values = {"bjbh": code, "cxm": secret}
        if not code or not secret:
            return self.render(ctx, "jact/query.html", values=values, error="请输入办件编号和查询码")
        letter = ctx.find(code)
        if letter is not None and letter.secret != secret.upper():
            letter = None
        view = ctx.visible(letter)
        if view is None:
            return self.render(ctx, "jact/query.html", values=values, not_found=NOT_FOUND)
        return self.render(ctx, "jact/query.html", values=values, view=view,
                           status=STATUS[view.status], status_class=STATUS_CLASS[view.status])

    def _list_data(self, ctx: SiteContext, req: Request) -> Response:
        page = _page_number(req.query.get("page"))
        key = _key(req.query.get("key"))
        # The title search of the family's lists: the words as typed, anywhere in the title
        # (SQL `LIKE '%key%'`), not split into words.
        needle = key.lower()
        match = (lambda title: needle in title.lower()) if needle else None
        total, views = ctx.public_letters((page - 1) * PAGE_SIZE, PAGE_SIZE, match)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        rows = [{
            "title": v.letter.title,
            "bjbh": v.letter.tracking_code,
            "submitDate": f"{v.received:%Y-%m-%d}",
            "status": STATUS[v.status],
            "replyDate": f"{v.displayed_reply_at:%Y-%m-%d}" if v.finished else "",
        } for v in views]
        data = {"total": total, "page": page, "pages": pages, "key": key, "rows": rows}
        text = "var listData = " + json.dumps(data, ensure_ascii=False).replace("</", "<\\/") + ";\n"
        return Response(200, text.encode("utf-8"), "application/javascript; charset=utf-8",
                        [("Cache-Control", "no-cache")])


def _page_number(text: str | None) -> int:
    try:
        return max(1, int(text or "1"))
    except ValueError:
        return 1


def _key(text: str | None) -> str:
    """The list's 标题 search words, as typed (trimmed, at most KEY_MAX characters)."""
    return (text or "").strip()[:KEY_MAX]
