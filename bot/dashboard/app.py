"""The dashboard's web app (Starlette, Jinja2 with autoescaping, served by uvicorn)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.clock import Clock
from bot.dashboard import queries
from bot.errors import UserError
from bot.report.charts import bar_chart, histogram_chart, rates_chart
from bot.report.rows import COL_GROUP, fmt_time, remarks, yes_no
from bot.report.summary import notice_sentence, summarize
from bot.vocab import STATUS_TEXT, RowStatus, flag_text

TEMPLATES = Path(__file__).parent / "templates"
PASSWORD_ENV = "MAILBOX_BOT_DASHBOARD_PASSWORD"

# No page has a script, so none may run; evidence frames get a CSP of their own (below).
PAGE_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
# Evidence HTML, when framed or opened: a sandbox without scripts, an opaque origin, nothing fetched.
EVIDENCE_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
EVIDENCE_TYPES = {"screenshot": "image/png", "html": "text/html; charset=utf-8", "eml": "text/plain; charset=utf-8"}


def password_digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8")).digest()


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers["Cache-Control"] = "no-store"
        return response


class BasicLogin(BaseHTTPMiddleware):
    """HTTP Basic login: any user name, the password compared by its SHA-256 digest in
    constant time (hmac.compare_digest); only the digest is kept."""

    def __init__(self, app, digest: bytes):
        super().__init__(app)
        self.digest = digest

    async def dispatch(self, request, call_next):
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                _, _, given = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                given = None
            if given is not None and hmac.compare_digest(password_digest(given), self.digest):
                return await call_next(request)
        return PlainTextResponse("login required", status_code=401,
                                 headers={"WWW-Authenticate": 'Basic realm="mailbox-bot", charset="UTF-8"'})


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["t"] = lambda v: fmt_time(v) if isinstance(v, datetime) else ("" if v is None else str(v))
    env.filters["percent"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    env.filters["dash"] = lambda v: "—" if v is None else str(v)
    env.globals.update(yes_no=yes_no, STATUS_TEXT=STATUS_TEXT, flag_text=flag_text)
    return env


def create_app(db, calendar, clock: Clock, evidence_dir: str | Path, *, password_digest: bytes | None = None) -> Starlette:
    """The app over one database. `password_digest`: require a login (see BasicLogin)."""
    env = _env()
    evidence_root = Path(evidence_dir).resolve()

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def not_found(what: str) -> HTMLResponse:
        return page("error.html", 404, message=what)

    async def index(request: Request):
        return page("index.html", campaigns=queries.campaigns(db), now=clock.now())

    def _rows(name: str):
        from bot.campaign.results import campaign_rows

        return campaign_rows(db, name, calendar, as_of=clock.now(), generated_at=clock.now())

    async def campaign(request: Request):
        from bot.report.rows import ordered
        from bot.report.trend import working_days_histogram

        name = request.path_params["name"]
        try:
            rows, meta = _rows(name)
        except UserError:
            return not_found(f"没有名为 {name} 的检查批次")
        q = request.query_params
        group, status, flag = q.get("group", ""), q.get("status", ""), q.get("flag", "")
        all_rows = ordered(rows)
        shown = [r for r in all_rows
                 if (not group or r.group == group) and (not status or str(r.status) == status)
                 and (not flag or flag in r.flags)]
        groups = list(dict.fromkeys(r.group for r in all_rows))
        statuses = [s for s in RowStatus if any(r.status == s for r in all_rows)]
        flags = sorted({f for r in all_rows for f in r.flags})
        per_group = []
        for g in groups:
            gs = summarize([r for r in rows if r.group == g], meta)
            per_group.append((g, gs))
        hist = working_days_histogram(rows)
        charts = {
            "histogram": histogram_chart([(meta.campaign, hist)]),
            "groups": bar_chart(groups, [("时限内回复网站", [float(gs["within_deadline_sites"]) for _, gs in per_group]),
                                         ("当日回复网站", [float(gs["same_day_sites"]) for _, gs in per_group]),
                                         ("检查网站", [float(gs["sites"]) for _, gs in per_group])],
                                title="分组情况（网站数）"),
        }
        return page("campaign.html", meta=meta, rows=shown, total=len(all_rows), groups=groups, statuses=statuses,
                    flags=flags, selected={"group": group, "status": status, "flag": flag},
                    summary=summarize(rows, meta), per_group=per_group, sentence=notice_sentence(rows, meta),
                    charts=charts, remark=lambda r: remarks(r, meta.deadline_workdays), col_group=COL_GROUP)

    async def letter(request: Request):
        try:
            letter_id = int(request.path_params["id"])
        except ValueError:
            return not_found("没有这封信件")
        found = queries.letter(db, letter_id)
        if found is None:
            return not_found("没有这封信件")
        info, timeline, evidence = found
        rows, meta = _rows(info["campaign"])
        row = next((r for r in rows if r.letter_id == letter_id), None)
        return page("letter.html", info=info, timeline=timeline, evidence=evidence, row=row, meta=meta,
                    remark=remarks(row, meta.deadline_workdays) if row else "")

    def _evidence_path(e: dict) -> Path | None:
        path = (evidence_root / e["path"]).resolve()
        if evidence_root not in path.parents or not path.is_file():
            return None
        return path

    async def evidence(request: Request):
        e = queries.evidence_file(db, int(request.path_params["id"]))
        if e is None:
            return not_found("没有这份证据")
        path = _evidence_path(e)
        text = None
        if path is not None and e["kind"] in ("html", "eml", "trace") and e["size"] <= 5_000_000:
            text = path.read_bytes().decode("utf-8", errors="replace")
        return page("evidence.html", e=e, text=text, present=path is not None)

    async def evidence_raw(request: Request):
        e = queries.evidence_file(db, int(request.path_params["id"]))
        path = _evidence_path(e) if e else None
        if path is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(path.read_bytes(), media_type=EVIDENCE_TYPES.get(e["kind"], "text/plain; charset=utf-8"),
                        headers={"Content-Security-Policy": EVIDENCE_CSP, "X-Frame-Options": "SAMEORIGIN"})

    async def trend(request: Request):
        from bot.report.trend import load, trend_dict, working_days_histogram

        names = request.query_params.getlist("campaign") or queries.campaign_names(db)
        if not names:
            return page("trend.html", data=None, names=[], all_names=[], charts={})
        try:
            t = load(db, names, calendar, as_of=clock.now(), generated_at=clock.now())
        except UserError as e:
            return page("error.html", 404, message=str(e))
        data = trend_dict(t)
        charts = {
            "rates": rates_chart(t.names, [s["within_deadline_rate"] for s in data["overall"]],
                                 [s["same_day_rate"] for s in data["overall"]]),
            "histogram": histogram_chart([(c.name, working_days_histogram(c.rows)) for c in t.campaigns]),
        }
        return page("trend.html", data=data, names=names, all_names=queries.campaign_names(db), charts=charts)

    middleware = [Middleware(SecurityHeaders)]
    if password_digest is not None:
        middleware.append(Middleware(BasicLogin, digest=password_digest))
    routes = [
        Route("/", index),
        Route("/campaign/{name:path}", campaign),
        Route("/letter/{id}", letter),
        Route("/evidence/{id:int}", evidence),
        Route("/evidence/{id:int}/raw", evidence_raw),
        Route("/trend", trend),
    ]
    return Starlette(routes=routes, middleware=middleware)
