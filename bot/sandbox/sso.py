"""The unified identity platform (统一身份认证) of the sandbox, at `/sso/`.

Sites with `login = true` in the roster send a writer here first, as many real mailboxes do:
account and password, an image captcha and a code sent by SMS. The SMS "goes" to the account's
phone, which here is a page anyone can read (`/sso/sms-outbox`), standing in for the inspector's
handset. A login lasts SESSION_HOURS on the sandbox clock; after that the sites ask again.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from bot.clock import local
from bot.sandbox.platforms.base import Response, captcha_image, redirect

if TYPE_CHECKING:
    from bot.sandbox.server import Sandbox

COOKIE = "SSO_TGC"
SESSION_HOURS = 8
SMS_VALID = timedelta(minutes=5)


class SSO:
    def __init__(self, sandbox: "Sandbox"):
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._sessions: dict[str, object] = {}       # token -> login time
        self._sms: dict[str, tuple[str, object]] = {}  # account -> (code, sent at)
        self._outbox: list[dict] = []

    # -- for the sites ------------------------------------------------------------------------
    def signed_in(self, cookies: dict[str, str]) -> bool:
        token = cookies.get(COOKIE, "")
        with self._lock:
            since = self._sessions.get(token)
        return since is not None and self.sandbox.clock.now() - since < timedelta(hours=SESSION_HOURS)

    def ask_login(self, target: str) -> Response:
        return redirect(f"/sso/login?service={quote(target, safe='')}")

    def outbox(self) -> list[dict]:
        with self._lock:
            return list(self._outbox)

    # -- pages --------------------------------------------------------------------------------
    def handle(self, method: str, rest: str, query: dict[str, str], form: dict[str, str],
               cookies: dict[str, str]) -> Response:
        if rest == "login":
            if method == "POST":
                return self._login(form)
            return self._form(query.get("service", "/"), {}, None)
        if rest == "sms" and method == "POST":
            return self._send_sms(form.get("account", "").strip())
        if rest == "captcha.png":
            return captcha_image(self.sandbox.store, query.get("t", ""))
        if rest == "sms-outbox":
            return self._render("sso/outbox.html", messages=list(reversed(self.outbox())))
        if rest == "logout":
            resp = redirect("/sso/login")
            resp.headers.append(("Set-Cookie", f"{COOKIE}=; Path=/; Max-Age=0"))
            return resp
        return self._render("404.html", status=404)

    def _render(self, template: str, status: int = 200, **values) -> Response:
        html = self.sandbox.env.get_template(template).render(roster=self.sandbox.roster, **values)
        return Response(status, html.encode("utf-8"))

    def _form(self, service: str, values: dict[str, str], error: str | None) -> Response:
        token, _ = self.sandbox.store.new_captcha()
        return self._render("sso/login.html", service=service, values=values, error=error, token=token)

    def _account(self, name: str):
        return next((a for a in self.sandbox.roster.account if a.account == name), None)

    def _send_sms(self, account: str) -> Response:
        acct = self._account(account)
        if acct is None:
            return _json({"code": 1, "msg": "账号不存在"})
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = self.sandbox.clock.now()
        with self._lock:
            self._sms[account] = (code, now)
            self._outbox.append({"phone": acct.phone, "text": f"【统一身份认证】您的验证码为{code}，5分钟内有效。",
                                 "code": code, "at": local(now).strftime("%Y-%m-%d %H:%M:%S")})
        masked = acct.phone[:3] + "****" + acct.phone[-4:]
        return _json({"code": 0, "msg": f"验证码已发送至{masked}"})

    def _login(self, form: dict[str, str]) -> Response:
        service = form.get("service", "/")
        account = form.get("account", "").strip()
        values = {"account": account}
        answer = self.sandbox.store.take_captcha(form.get("captchaKey", ""))
        acct = self._account(account)
        with self._lock:
            sms = self._sms.get(account)
        now = self.sandbox.clock.now()
        if not account or not form.get("password"):
            error = "请输入账号和密码"
        elif acct is None or acct.password != form.get("password"):
            error = "账号或密码错误"
        elif answer is None or form.get("captcha", "").strip() != answer:
            error = "图形验证码错误"
        elif sms is None or sms[0] != form.get("smsCode", "").strip() or now - sms[1] > SMS_VALID:
            error = "短信验证码错误或已过期"
        else:
            error = None
        if error:
            return self._form(service, values, error)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[token] = now
            self._sms.pop(account, None)
        # Only a path on this host: an open redirect is not something a login page should offer.
        target = service if service.startswith("/") and not urlsplit(service).netloc else "/"
        resp = redirect(target)
        resp.headers.append(("Set-Cookie", f"{COOKIE}={token}; Path=/; HttpOnly"))
        return resp


def _json(data: dict) -> Response:
    return Response(200, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json;charset=UTF-8")
