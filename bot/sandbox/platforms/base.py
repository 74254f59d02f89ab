"""What the archetypes share: requests, responses, the per-site context, rendering."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable
from urllib.parse import quote

import jinja2

from bot.clock import local
from bot.sandbox.roster import RosterSite
from bot.sandbox.behaviour import Behaviour, Status, Timeline, reply_text
from bot.sandbox.store import ReceivedLetter, Store
from bot.sandbox.traffic import TrafficLetter, newest_first

if TYPE_CHECKING:
    from bot.sandbox.server import Sandbox

MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass
class Request:
    method: str                   # GET | POST | HEAD
    rest: str                     # the path after /<slug>/<mailbox>/, e.g. "write", "list/data.js"
    query: dict[str, str]
    form: dict[str, str]
    raw_body: bytes = b""
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)    # lower-case names


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def redirect(location: str) -> Response:
    return Response(302, b"", "text/html; charset=utf-8", [("Location", quote(location, safe="/?=&:%"))])


BOARD_LABEL = "在线留言"


def mailbox_label(site: RosterSite, mailbox: str) -> str:
    """What the site calls the mailbox: 领导信箱; 市长信箱, 县长信箱 or 区长信箱 by what kind of
    place the site is; a message board's 在线留言. The sandbox's own copy of the rule: the
    product has one too (bot.scenario.schema), and a slip in either shows against the other."""
    if mailbox == "leader":
        return "领导信箱"
    if mailbox == "board":
        return BOARD_LABEL
    name = site.name
    for suffix in ("人民政府", "管理委员会", "政府"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith("县"):
        return "县长信箱"
    if name.endswith("区"):
        return "区长信箱"
    return "市长信箱"


@dataclass(frozen=True)
class LetterView:
    """A letter as its site shows it now."""
    letter: ReceivedLetter
    timeline: Timeline
    status: Status
    unit: str
    reply: str | None

    @property
    def received(self) -> datetime:
        return local(self.letter.received_at)

    @property
    def displayed_reply_at(self) -> datetime | None:
        t = self.timeline.displayed_reply_at
        return local(t) if t is not None and self.status is Status.FINISHED else None

    @property
    def finished(self) -> bool:
        return self.status is Status.FINISHED


@dataclass
class SiteContext:
    sandbox: "Sandbox"
    site: RosterSite
    index: int            # 1-based roster position
    mailbox: str
    behaviour: Behaviour

    @property
    def prefix(self) -> str:
        return f"/{self.site.slug}/{self.mailbox}"

    @property
    def label(self) -> str:
        return mailbox_label(self.site, self.mailbox)

    @property
    def store(self) -> Store:
        return self.sandbox.store

    def now(self) -> datetime:
        return self.sandbox.clock.now()

    def view(self, letter: ReceivedLetter) -> LetterView:
        if isinstance(letter, TrafficLetter):
            timeline = letter.timeline()        # another citizen's letter: its own fate
        else:
            timeline = self.behaviour.timeline(letter.received_at)
        status = timeline.status(self.now())
        reply = None
        if status is Status.FINISHED:
            reply = reply_text(title=letter.title, unit=self.site.name, mailbox_label=self.label,
                               received_at=letter.received_at, tracking_code=letter.tracking_code)
        return LetterView(letter, timeline, status, self.site.name, reply)

    def visible(self, letter: ReceivedLetter | None) -> LetterView | None:
        """The letter's view, or None when there is no such letter or it was deleted."""
        if letter is None:
            return None
        v = self.view(letter)
        return None if v.status is Status.GONE else v

    def find(self, code: str) -> ReceivedLetter | None:
        """The letter of this mailbox with that tracking code: one sent through the form, or
        another citizen's (roster `traffic`) that has arrived by now."""
        letter = self.store.find(self.site.slug, self.mailbox, code)
        if letter is None:
            letter = self.sandbox.traffic_model.find(self.site, self.mailbox, code, self.now(),
                                                     self.store)
        return letter

    def public_letters(self, offset: int, limit: int,
                       match: Callable[[str], bool] | None = None) -> tuple[int, list[LetterView]]:
        """(how many, the views of [offset, offset + limit)) of the mailbox's public list:
        public letters not deleted, the form's and other citizens', newest first; `match`
        keeps only the titles it accepts (a list's search)."""
        now = self.now()
        stored = [v for v in (self.visible(x) for x in self.store.letters(self.site.slug, self.mailbox)
                              if x.public and (match is None or match(x.title))) if v is not None]
        stored.sort(key=lambda v: (v.letter.received_at, v.letter.tracking_code), reverse=True)
        traffic = self.sandbox.traffic_model
        count, slots = traffic.public(self.site, self.mailbox, now, match)
        page = itertools.islice(newest_first(stored, slots), offset, offset + limit)
        views = [item if isinstance(item, LetterView) else self.view(traffic.letter(item, self.store))
                 for item in page]
        return len(stored) + count, views

    def receive(self, **fields) -> ReceivedLetter:
        return self.store.add(site=self.site.name, slug=self.site.slug,
                              platform=self.site.platform, mailbox=self.mailbox,
                              received_at=self.now(), **fields)


DRIFT_SUFFIX = "_v2"


class Platform:
    """One CMS family. Subclasses map `rest` paths to pages; None means 404."""

    name = ""
    encoding = "utf-8"
    server_header = "nginx"
    # The form's field names by role (title, body, name, phone, email): a roster's `drift`
    # renames one, as a redesign does, and the templates name every field through `fname`.
    field_roles: dict[str, str | tuple[str, ...]] = {}     # role -> name (or (name, element id))
    # The pages of the writing flow (`rest` values; "" is the mailbox's front page): behind the
    # unified login on a `login = true` site. Query and list pages stay public.
    write_paths: tuple[str, ...] = ()
    # The POST that creates a letter: the roster's `flaky` and `challenge` spare it, so that a
    # fault never leaves it unknown whether a letter arrived (see docs/sandbox.md).
    submit_path: str = ""

    def __init__(self, env: jinja2.Environment):
        self.env = env

    def handle(self, ctx: SiteContext, req: Request) -> Response | None:
        raise NotImplementedError

    def field_name(self, site: RosterSite, name: str) -> str:
        """The name a form field has on this site today (renamed when the roster drifts it)."""
        if site.drift is not None and name in _names(self.field_roles.get(site.drift, ())):
            return name + DRIFT_SUFFIX
        return name

    def undrift(self, site: RosterSite, form: dict[str, str]) -> dict[str, str]:
        """A posted form in the names the platform code knows; the old name of a drifted field
        is no longer accepted (as after a real redesign)."""
        if site.drift is None or site.drift not in self.field_roles:
            return form
        old = _names(self.field_roles[site.drift])[0]
        form = dict(form)
        form.pop(old, None)
        if old + DRIFT_SUFFIX in form:
            form[old] = form.pop(old + DRIFT_SUFFIX)
        return form

    def render(self, ctx: SiteContext, template: str, http_status: int = 200, **values) -> Response:
        html = self.env.get_template(template).render(
            site=ctx.site, prefix=ctx.prefix, label=ctx.label, site_home=f"/{ctx.site.slug}/",
            mailbox=ctx.mailbox, now=local(ctx.now()), fname=lambda n: self.field_name(ctx.site, n),
            **values)
        body = html.encode(self.encoding, errors="xmlcharrefreplace")
        charset = "gbk" if self.encoding == "gbk" else "utf-8"
        return Response(http_status, body, f"text/html; charset={charset}")


def captcha_image(store: Store, token: str) -> Response:
    """The PNG for a captcha token this sandbox issued (random digits for any other token);
    showing it issues and spends nothing."""
    from bot.sandbox.captcha import captcha_png, random_digits

    digits = store.captcha_answer(token) or random_digits(token)
    return Response(200, captcha_png(digits, token), "image/png", [("Cache-Control", "no-store")])


def _names(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def normalise_text(value: str) -> str:
    """Browsers send textarea line breaks as CRLF; sites store LF."""
    return value.replace("\r\n", "\n").replace("\r", "\n")
