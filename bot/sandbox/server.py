"""The sandbox HTTP server: every roster site on one loopback port, under `/<slug>/`.

It behaves like a set of websites and nothing more: no page knows who is asking, and there is
no shortcut for tests. Tests and the demo look inside only through this Python API
(`received()`, `timeline()`, `captcha_answer()`), never through the pages.
"""

from __future__ import annotations

import random
import sys
import threading
import time as _time
import traceback
from http.cookies import SimpleCookie
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import jinja2

from bot.calendar import WorkCalendar
from bot.clock import Clock, utc
from bot.sandbox.roster import Roster, RosterSite
from bot.sandbox.behaviour import Behaviour, Timeline, reply_text
from bot.sandbox.mail import (MailRefused, MailTransport, SentMail, ack_mail, compose,
                              message_id_of, reply_mail)
from bot.sandbox.platforms import make_platforms
from bot.sandbox.platforms.base import Request, Response, SiteContext, mailbox_label, redirect
from bot.sandbox.platforms.legacy import ViewState
from bot.sandbox.sso import SSO
from bot.sandbox.store import ReceivedLetter, Store
from bot.sandbox.traffic import Traffic, TrafficLetter

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_BODY = 1_000_000


def make_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


class Sandbox:
    """The simulated portal. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, roster: Roster, clock: Clock, host: str = "127.0.0.1", port: int = 0,
                 calendar: WorkCalendar | None = None, log: Callable[[str], None] | None = None,
                 mail: MailTransport | None = None, hosts_per_site: bool = False):
        self.roster = roster
        self.clock = clock
        self.host = host
        self.port = port
        # Each site on a loopback address of its own (127.0.1.1, 127.0.1.2, ...), as real sites
        # are on servers of their own: what a visitor does to one host (a polite pace, a cookie)
        # is not shared with the others. Off: every site on `host`, under its own path.
        self.hosts_per_site = hosts_per_site
        self._extra: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self.calendar = calendar or WorkCalendar()
        self.log = log
        self.traffic_model = Traffic(roster, self.calendar)
        """Other citizens' letters (roster `traffic`), computed from the clock."""
        self.store = Store(self.traffic_model.count_until if self.traffic_model.any else None)
        self.viewstate = ViewState()
        self.env = make_env()
        self.platforms = make_platforms(self.env)
        self._sites: dict[str, tuple[int, RosterSite, Behaviour]] = {}
        for i, site in enumerate(roster.site, start=1):
            self._sites[site.slug] = (i, site, Behaviour(site, self.calendar))
        self._by_name = {site.name: site for site in roster.site}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.sso = SSO(self)
        # Faults (roster `challenge`, `flaky`) are drawn from one seeded generator: a run's
        # sequence of faults depends only on the order of requests.
        self._faults = random.Random(f"faults:{roster.campaign.name}")
        self._faults_lock = threading.Lock()
        self.mail = mail
        """Where the sites' emails go (`bot.sandbox.mail`); None: the sites send no email."""
        self._mail_lock = threading.Lock()
        self._mail_done: dict[tuple[str, str, str], SentMail] = {}

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> "Sandbox":
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.sandbox = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sandbox-http", daemon=True)
        self._thread.start()
        if self.hosts_per_site:
            for slug in self._sites:
                extra = _Server((self.site_host(slug), self.port), _Handler)
                extra.sandbox = self
                thread = threading.Thread(target=extra.serve_forever, kwargs={"poll_interval": 0.1},
                                          name=f"sandbox-http-{slug}", daemon=True)
                thread.start()
                self._extra.append((extra, thread))
        return self

    def site_host(self, slug: str) -> str:
        """The loopback address a site answers on (with hosts_per_site)."""
        index = self._sites[slug][0]
        return f"127.0.{1 + index // 250}.{1 + index % 250}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        for extra, thread in self._extra:
            extra.shutdown()
            extra.server_close()
            thread.join(timeout=5)
        self._extra.clear()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests and the demo may ask ------------------------------------------------------
    @property
    def url(self) -> str:
        """The root index page (a list of all sites)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, site_name: str) -> str:
        slug = self._site(site_name).slug
        if self.hosts_per_site:
            return f"http://{self.site_host(slug)}:{self.port}/{slug}"
        return f"{self.url}/{slug}"

    def mailbox_url(self, site_name: str, mailbox: str) -> str:
        return f"{self.base_url(site_name)}/{mailbox}/"

    def received(self, site_name: str | None = None) -> list[ReceivedLetter]:
        """Every letter the sandbox accepted (deleted ones too), oldest first."""
        slug = None if site_name is None else self._site(site_name).slug
        return self.store.letters(slug)

    def timeline(self, letter: ReceivedLetter) -> Timeline:
        """When the letter's site replies / deletes it (for tests and demo reports)."""
        if isinstance(letter, TrafficLetter):
            return self._sites[letter.slug][2].traffic_timeline(letter.timeline())
        return self._sites[letter.slug][2].timeline(letter.received_at)

    def traffic(self, site_name: str, mailbox: str | None = None) -> list[TrafficLetter]:
        """Other citizens' letters (roster `traffic`) that the site has received by now, public
        or not, oldest first, each with its tracking code and 查询码/password as the writer got
        them. Never part of `received()`."""
        site = self._site(site_name)
        now = self.clock.now()
        letters = [self.traffic_model.letter(slot, self.store)
                   for mb in (site.mailboxes if mailbox is None else [mailbox])
                   for slot in self.traffic_model.arrived(site, mb, now)]
        return sorted(letters, key=lambda x: x.received_at)

    def captcha_answer(self, token: str) -> str | None:
        """The digits of the captcha image a form names by its hidden key (jact `yzmKey`, igi
        `captchaKey`, ...); for tests standing in for a person."""
        return self.store.captcha_answer(token)

    def sent_mail(self) -> list[SentMail]:
        """Every mail the sites sent or tried to send (refused ones too), in sending order."""
        with self._mail_lock:
            return list(self._mail_done.values())

    def deliver_due_mail(self) -> list[SentMail]:
        """Send every email whose time has come on the sandbox clock, each exactly once: the
        acknowledgements (`ack = true`) and the answers (`reply.channel` email or both) to the
        address typed in the form. The sandbox has no timer of its own: whoever moves the clock
        calls this. A refused recipient is recorded and not tried again; an unreachable server
        is tried again on the next call. Returns what this call sent or had refused."""
        if self.mail is None:
            return []
        now = self.clock.now()
        done: list[SentMail] = []
        with self._mail_lock:
            for letter in self.store.letters():
                if not letter.email:
                    continue
                index, site, behaviour = self._sites[letter.slug]
                tl = behaviour.timeline(letter.received_at)
                for kind, when in (("ack", tl.ack_at), ("reply", tl.email_reply_at)):
                    key = (letter.slug, letter.tracking_code, kind)
                    if when is None or when > now or key in self._mail_done:
                        continue
                    if tl.delete_at is not None and tl.delete_at <= when:
                        continue
                    if kind == "ack":
                        subject, text = ack_mail(letter)
                    else:
                        answer = reply_text(title=letter.title, unit=site.name,
                                            mailbox_label=mailbox_label(site, letter.mailbox),
                                            received_at=letter.received_at,
                                            tracking_code=letter.tracking_code)
                        subject, text = reply_mail(letter, answer)
                    raw, sender = compose(site_name=site.name, slug=site.slug, kind=kind, letter=letter,
                                          body=text, subject=subject, when=when)
                    try:
                        self.mail.send(raw, sender, letter.email, when)
                        status = "sent"
                    except MailRefused as e:
                        status = f"refused: {e}"
                    except OSError as e:
                        if self.log is not None:
                            self.log(f"mail to {letter.email} not delivered ({e}); will retry")
                        continue
                    sent = SentMail(letter=letter, kind=kind, at=when, rcpt=letter.email,
                                    subject=subject, status=status, message_id=message_id_of(raw))
                    self._mail_done[key] = sent
                    done.append(sent)
                    if self.log is not None:
                        self.log(f"mail {kind} {status} to {letter.email} ({site.name}, {letter.tracking_code})")
        return done

    def mailbox_label(self, site_name: str, mailbox: str) -> str:
        return mailbox_label(self._site(site_name), mailbox)

    def _site(self, name: str) -> RosterSite:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no site named {name!r} in the sandbox roster ({self.roster.source})") from None

    # -- routing --------------------------------------------------------------------------
    def sms_outbox(self) -> list[dict]:
        """The text messages the identity platform 'sent' (also shown at /sso/sms-outbox)."""
        return self.sso.outbox()

    def route(self, method: str, target: str, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> tuple[Response, str]:
        """(response, server header) for one request."""
        parts = urlsplit(target)
        path = parts.path
        headers = headers or {}
        cookies = _cookies(headers.get("cookie", ""))
        if path == "/":
            return self._page("index.html", sites=self._index_rows()), "nginx"
        segments = path.lstrip("/").split("/")
        if segments[0] == "sso":
            form = _fields(body.decode("latin-1"), "utf-8") if method == "POST" else {}
            return self.sso.handle(method, "/".join(segments[1:]), _fields(parts.query, "utf-8"),
                                   form, cookies), "nginx"
        entry = self._sites.get(segments[0])
        if entry is None:
            return self._not_found(), "nginx"
        index, site, behaviour = entry
        platform = self.platforms[site.platform]
        if len(segments) == 1:
            return redirect(f"/{site.slug}/"), platform.server_header
        if len(segments) == 2 and segments[1] in ("", "index.html"):
            boxes = [(m, mailbox_label(site, m)) for m in site.mailboxes]
            return self._page("site.html", site=site, boxes=boxes), platform.server_header
        mailbox = segments[1]
        if mailbox not in site.mailboxes:
            return self._not_found(), platform.server_header
        if len(segments) == 2:
            return redirect(f"/{site.slug}/{mailbox}/"), platform.server_header
        rest = "/".join(segments[2:])
        writing = rest in platform.write_paths
        if site.login and writing and not self.sso.signed_in(cookies):
            # The unified login first; it sends the citizen back here afterwards. A letter
            # posted without a valid login is not taken.
            return self.sso.ask_login(target), platform.server_header
        fault = self._fault(site, method, method == "POST" and rest == platform.submit_path)
        if fault is not None:
            return fault, platform.server_header
        enc = platform.encoding
        query = _fields(parts.query, enc)
        form = {}
        if method == "POST" and content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = platform.undrift(site, _fields(body.decode("latin-1"), enc))
        ctx = SiteContext(self, site, index, mailbox, behaviour)
        resp = platform.handle(ctx, Request(method, rest, query, form, body, cookies, headers))
        return (resp or self._not_found()), platform.server_header

    def _fault(self, site: RosterSite, method: str, creates: bool) -> Response | None:
        """The roster's `challenge` and `flaky` faults, drawn per request. The POST that creates
        a letter is spared: a fault there would leave the site itself unsure whether the letter
        arrived, which is a different story (a lost answer, see docs/sandbox.md)."""
        if creates or not (site.challenge or site.flaky):
            return None
        with self._faults_lock:
            challenge = self._faults.random() < site.challenge
            flaky = not challenge and self._faults.random() < site.flaky
            dropped = self._faults.random() < 0.5
        if challenge:
            return self._page("challenge.html", status=403)
        if flaky:
            if dropped:
                return Response(status=0)       # the connection closes without an answer
            return self._page("502.html", status=502)
        return None

    def _index_rows(self) -> list[dict]:
        return [{"index": i, "site": site,
                 "boxes": [(m, mailbox_label(site, m)) for m in site.mailboxes]}
                for i, site, _ in self._sites.values()]

    def _page(self, template: str, status: int = 200, **values) -> Response:
        html = self.env.get_template(template).render(roster=self.roster, **values)
        return Response(status, html.encode("utf-8"))

    def _not_found(self) -> Response:
        return self._page("404.html", status=404)


def _cookies(header: str) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:       # a malformed Cookie header: as if none, like a lenient server
        return {}
    return {k: v.value for k, v in jar.items()}


def _fields(text: str, encoding: str) -> dict[str, str]:
    """First value of each field; browsers encode form data in the page's charset."""
    parsed = parse_qs(text, keep_blank_values=True, encoding=encoding, errors="replace")
    return {k: v[0] for k, v in parsed.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30
    # Headers and body go out in two writes; without TCP_NODELAY the second waits for the
    # client's delayed ACK (40 ms on Linux) on every single page.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        log = self.server.sandbox.log
        if log is not None:
            log(f"{self.address_string()} {format % args}")

    def date_time_string(self, timestamp=None) -> str:
        # The sandbox's time is the injected clock's, in headers too.
        return format_datetime(utc(self.server.sandbox.clock.now()), usegmt=True)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        server_header = "nginx"
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                resp = Response(413, b"<h1>413 Request Entity Too Large</h1>")
            else:
                body = self.rfile.read(length) if length > 0 else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                resp, server_header = sandbox.route(method, self.path, body,
                                                    self.headers.get("Content-Type", ""), headers)
                site = sandbox._sites.get(self.path.lstrip("/").split("/")[0].split("?")[0])
                if site is not None and site[1].latency_ms:
                    _time.sleep(site[1].latency_ms / 1000)      # roster `latency_ms`: a slow site
        except Exception:  # a bug in the sandbox: answer 500 like a site, and say why on stderr
            traceback.print_exc(file=sys.stderr)
            resp = Response(500, b"<h1>500 Internal Server Error</h1>")
        if resp.status == 0:        # roster `flaky`: the upstream went away, no answer at all
            self.close_connection = True
            self.log_request("-")
            return
        self.send_response_only(resp.status)
        self.send_header("Server", server_header)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("Connection", "close")
        for name, value in resp.headers:
            self.send_header(name, value)
        try:
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            # The visitor went away before the answer (a browser killed mid-request): as a
            # real server, log it and carry on; the request was handled all the same.
            self.close_connection = True
        self.log_request(resp.status)
