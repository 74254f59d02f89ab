"""`igi`: a TRS "互动" JSON service behind a script-built form, as on Shaanxi's consolidated
government platform (UTF-8).

Every page is an HTML shell whose script talks to a JSON API: the form is built by the script
(its field list comes from here, so a roster `drift` renames a field as a redesign would), a
letter is a `fetch` POST of JSON, and every answer is `{"code": 0 | 1001..., "msg", "data"}`.
The service remembers the name each phone number first wrote under, across all its sites, and
refuses a later letter from that phone under another name (1003 手机号不一致), as the real one
does with its user records. Times are epoch milliseconds.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime

from bot.sandbox.behaviour import Status
from bot.sandbox.platforms.base import (EMAIL_RE, MOBILE_RE, LetterView, Platform, Request,
                                        Response, SiteContext, captcha_image, normalise_text)

KINDS = ("咨询", "投诉", "建议", "求助")
STATUS = {Status.PENDING: "待处理", Status.IN_PROGRESS: "办理中", Status.FINISHED: "已办结"}
JSON_TYPE = "application/json;charset=UTF-8"
PAGE_SIZE, MAX_PAGE_SIZE = 15, 50
TITLE_MIN, TITLE_MAX, BODY_MAX, NAME_MAX = 5, 30, 1000, 20
DETAIL_RE = re.compile(r"^detail/([A-Za-z0-9]+)\.html$")

# (JSON key, label, kind): the form the script builds, in order. Keys are renamed per site
# through `field_name` before they reach the page.
FIELDS = (
    ("userName", "姓名", "text"),
    ("mobile", "手机", "text"),
    ("email", "电子邮箱", "text"),
    ("letterType", "信件类型", "select"),
    ("title", "标题", "text"),
    ("content", "内容", "textarea"),
    ("isPublic", "是否公开", "radio"),
)
REQUIRED = ("userName", "mobile", "letterType", "title", "content", "isPublic")
LABELS = {key: label for key, label, _ in FIELDS}


def epoch_ms(when: datetime) -> int:
    return int(round(when.timestamp() * 1000))


def answer(code: int, msg: str, data=None, status: int = 200) -> Response:
    payload: dict = {"code": code, "msg": msg}
    if data is not None:
        payload["data"] = data
    return Response(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), JSON_TYPE,
                    [("Cache-Control", "no-cache")])


class Igi(Platform):
    name = "igi"
    server_header = "nginx/1.20.1"
    field_roles = {"title": "title", "body": "content", "name": "userName", "phone": "mobile",
                   "email": "email"}
    write_paths = ("", "index.html", "api/captcha", "api/captcha/key", "api/letter/submit")
    submit_path = "api/letter/submit"

    def __init__(self, env):
        super().__init__(env)
        # The service's user records: phone -> the name it first wrote under (one sandbox, all
        # igi sites: one provincial platform).
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        rest, reading = req.rest, req.method in ("GET", "HEAD")
        if rest in ("", "index.html"):
            return self._write_page(ctx) if reading else None
        if rest == "query":
            return self.render(ctx, "igi/query.html", tab="query") if reading else None
        if rest == "list":
            return self.render(ctx, "igi/list.html", tab="list") if reading else None
        if rest == "api/captcha":
            return self._captcha(ctx, req) if reading else None
        if rest == "api/captcha/key":
            if req.method != "POST":
                return _method_not_allowed(req)
            token, _ = ctx.store.new_captcha()
            return answer(0, "成功", {"key": token})
        if rest == "api/letter/submit":
            return self._submit(ctx, req) if req.method == "POST" else _method_not_allowed(req)
        if rest == "api/letter/detail":
            return self._detail(ctx, req) if req.method == "POST" else _method_not_allowed(req)
        if rest == "api/letter/list":
            return self._list(ctx, req) if reading else _method_not_allowed(req)
        m = DETAIL_RE.match(rest)
        if m and reading:
            return self._detail_page(ctx, m.group(1))
        return None

    # -- writing ------------------------------------------------------------------------------
    def _write_page(self, ctx: SiteContext) -> Response:
        fields = [{"key": self.field_name(ctx.site, key), "label": label, "type": kind,
                   "required": key in REQUIRED} for key, label, kind in FIELDS]
        config = {"fields": fields, "kinds": list(KINDS), "captcha": ctx.site.captcha,
                  "api": f"{ctx.prefix}/api", "titleMin": TITLE_MIN, "titleMax": TITLE_MAX,
                  "bodyMax": BODY_MAX}
        return self.render(ctx, "igi/write.html", tab="write", config=config)

    def _captcha(self, ctx: SiteContext, req: Request) -> Response:
        # Showing an image issues nothing (keys come from POST api/captcha/key); a key the
        # service never issued gets digits no answer matches.
        token = req.query.get("t", "")
        return captcha_image(ctx.store, token)

    def _submit(self, ctx: SiteContext, req: Request) -> Response:
        data = _json_body(req)
        if data is None:
            return answer(1001, "参数错误")
        data = self.undrift(ctx.site, data)
        token = _text(data.get("captchaKey"))
        expected = ctx.store.take_captcha(token) if token else None     # one try per image
        v = {key: _text(data.get(key)) for key in LABELS}
        v["content"] = normalise_text(_text(data.get("content"), strip=False)).strip()
        for key in REQUIRED:
            if not v[key]:
                return answer(1001, f"参数错误：{LABELS[key]}不能为空")
        if len(v["userName"]) > NAME_MAX:
            return answer(1001, f"参数错误：姓名不能超过{NAME_MAX}个字")
        if not MOBILE_RE.match(v["mobile"]):
            return answer(1002, "手机号码格式不正确")
        if v["email"] and not EMAIL_RE.match(v["email"]):
            return answer(1006, "电子邮箱格式不正确")
        if v["letterType"] not in KINDS:
            return answer(1001, "参数错误：信件类型不正确")
        if not TITLE_MIN <= len(v["title"]) <= TITLE_MAX:
            return answer(1007, f"标题长度应为{TITLE_MIN}-{TITLE_MAX}个字")
        if len(v["content"]) > BODY_MAX:
            return answer(1008, f"内容不能超过{BODY_MAX}字")
        if v["isPublic"] not in ("0", "1"):
            return answer(1001, "参数错误：是否公开不正确")
        if ctx.site.captcha:
            typed = _text(data.get("captcha"))
            if not typed:
                return answer(1005, "请输入验证码")
            if expected is None or typed != expected:
                return answer(1005, "验证码错误")
        with self._lock:
            known = self._names.get(v["mobile"])
            if known is not None and known != v["userName"]:
                return answer(1003, "手机号不一致")
            letter = ctx.receive(title=v["title"], body=v["content"], name=v["userName"],
                                 phone=v["mobile"], email=v["email"], secret="",
                                 kind=v["letterType"], public=v["isPublic"] == "1")
            self._names.setdefault(v["mobile"], v["userName"])
        return answer(0, "提交成功", {"cxbh": letter.tracking_code,
                                      "submitTime": epoch_ms(letter.received_at)})

    # -- reading ------------------------------------------------------------------------------
    def _detail(self, ctx: SiteContext, req: Request) -> Response:
        data = _json_body(req)
        code = _text(data.get("cxbh")) if data is not None else ""
        if not code:
            return answer(1001, "参数错误：查询编号不能为空")
        view = ctx.visible(ctx.find(code))
        if view is None:
            return answer(1004, "信件不存在")
        return answer(0, "成功", {
            "cxbh": view.letter.tracking_code,
            "title": view.letter.title,
            "content": view.letter.body,
            "letterType": view.letter.kind,
            "submitTime": epoch_ms(view.received),
            "status": STATUS[view.status],
            "replies": _replies(view),
        })

    def _list(self, ctx: SiteContext, req: Request) -> Response:
        page = _int(req.query.get("page"), 1, 1, 10_000)
        size = _int(req.query.get("size"), PAGE_SIZE, 1, MAX_PAGE_SIZE)
        total, views = ctx.public_letters((page - 1) * size, size)
        rows = [{
            "cxbh": v.letter.tracking_code,
            "title": v.letter.title,
            "submitTime": epoch_ms(v.received),
            "status": STATUS[v.status],
            "replyTime": epoch_ms(v.displayed_reply_at) if v.finished else None,
            "publishUrl": publish_url(ctx, v.letter.tracking_code),
        } for v in views]
        return answer(0, "成功", {"total": total, "page": page, "size": size, "list": rows})

    def _detail_page(self, ctx: SiteContext, code: str) -> Response | None:
        letter = ctx.find(code)
        view = ctx.visible(letter) if letter is not None and letter.public else None
        if view is None:
            return None
        return self.render(ctx, "igi/detail.html", tab="list", view=view, status=STATUS[view.status])


def publish_url(ctx: SiteContext, code: str) -> str:
    """The detail page's address as the real service gives it: a plain path for some letters,
    a JSON array (as a string) of paths for others, depending on how it was published."""
    path = f"{ctx.prefix}/detail/{code}.html"
    return json.dumps([path]) if int(code[-1], 36) % 2 else path


def _replies(view: LetterView) -> list[dict]:
    if not view.finished:
        return []
    return [{"content": view.reply, "unit": view.unit,
             "replyTime": epoch_ms(view.displayed_reply_at)}]


def _method_not_allowed(req: Request) -> Response:
    return answer(405, f"Request method '{req.method}' not supported", status=405)


def _json_body(req: Request) -> dict | None:
    if not req.headers.get("content-type", "").lower().startswith("application/json"):
        return None
    try:
        data = json.loads(req.raw_body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text(value, strip: bool = True) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        value = int(value)
    text = str(value)
    return text.strip() if strip else text


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(text or default)))
    except ValueError:
        return default
