"""Mailboxes behind a unified login (统一身份认证): the inspector logs in once, the browser's
storage state is kept per identity and login host, and campaigns and replays reuse it.

The saved state is a secret (it is the inspector's session): files are mode 0600 in a 0700
directory under `paths.sessions_dir`, and never copied into evidence or reports. An expired
session is recognised by the site's login page (the site file's `login.marker`) and sends the
letter to `needs_inspector` (bot.browser.engine).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from bot.browser.engine import CaptchaAnswerer
from bot.browser.pool import Browser
from bot.errors import UserError
from bot.scenario.schema import SiteRecord

LOGIN_WAIT_MS = 300_000      # a person at a headed browser may take a while


class SessionStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, identity: str, login_url: str) -> Path:
        host = urlsplit(login_url).netloc or "local"
        safe = lambda text: re.sub(r"[^A-Za-z0-9._-]", "_", text) or "_"   # noqa: E731
        return self.root / safe(identity or "default") / f"{safe(host)}.json"

    def save(self, identity: str, login_url: str, state_json: str) -> Path:
        path = self.path(identity, login_url)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(state_json)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


async def log_in(browser: Browser, record: SiteRecord, sessions: SessionStore, identity: str, *,
                 account: str = "", password: str = "", captcha: CaptchaAnswerer | None = None,
                 sms_code: Callable[[], Awaitable[str | None]] | None = None,
                 by_hand: bool = False, say: Callable[[str], None] = print) -> Path:
    """Logs in at the site's login page and saves the session. `by_hand`: the inspector does it
    in the (headed) window and we wait for the login page to go away; otherwise the form is
    filled from `account`/`password`, the captcha answered by `captcha` and the SMS code read
    from `sms_code()` (the terminal)."""
    spec = record.login
    if spec is None:
        raise UserError(f"{record.name}: the site file has no [login] table (its mailboxes need no login)")
    async with browser.page() as page:
        await page.goto(spec.url, wait_until="load")
        if by_hand:
            say(f"log in to {urlsplit(spec.url).netloc} in the browser window; waiting up to "
                f"{LOGIN_WAIT_MS // 60000} minutes ...")
        else:
            missing = [k for k in ("account", "password", "submit") if not getattr(spec, k)]
            if missing:
                raise UserError(f"{record.name}: [login] lacks {', '.join(missing)} selectors; "
                                "log in by hand with --headed")
            await page.locator(spec.account).fill(account)
            await page.locator(spec.password).fill(password)
            if spec.captcha_image and spec.captcha_input:
                if captcha is None:
                    raise UserError("the login page has a captcha and no one is there to answer it")
                img = page.locator(spec.captcha_image)
                answer = await captcha.answer(await img.screenshot(), record.name)
                if not answer:
                    raise UserError("login abandoned: the captcha was not answered")
                await page.locator(spec.captcha_input).fill(answer)
            if spec.sms_button and spec.sms_input:
                await page.locator(spec.sms_button).click()
                code = await sms_code() if sms_code is not None else None
                if not code:
                    raise UserError("login abandoned: no SMS code was typed")
                await page.locator(spec.sms_input).fill(code)
            await page.locator(spec.submit).click()
            await page.wait_for_load_state("load")
        try:
            await page.locator(spec.marker).wait_for(state="detached",
                                                     timeout=LOGIN_WAIT_MS if by_hand else 15_000)
        except Exception:
            text = " ".join((await page.locator("body").inner_text()).split())[:160]
            raise UserError(f"login failed: the login page is still shown ({text})") from None
        state = await page.context.storage_state()
    import json

    path = sessions.save(identity, spec.url, json.dumps(state, ensure_ascii=False))
    say(f"logged in as {identity}; session saved to {path} (mode 0600)")
    return path
