"""The work of a campaign: submit planned letters, poll submitted ones, record what was seen.

The same code runs under the simulated clock (demo, tests) and the real one (the daemon): it
is handed a clock and asks the database what is due.

Never twice: a letter is claimed (state `submitting`, with a lease) in its own transaction
before the browser opens the form, and the outcome is written in the transaction that ends the
claim. After the final click, an unknown outcome is `submit_uncertain`, which is never
resubmitted automatically.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Callable
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from sqlalchemy import func, select, update

from bot.browser.captcha import site_answerer
from bot.browser.engine import CaptchaAnswerer, FlowResult, FlowRunner
from bot.browser.pool import Browser, NoBrowser
from bot.browser.plain import PlainRunner
from bot.login import SessionStore
from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import Lifecycle, PollPolicy, claim_time, transition
from bot.clock import Clock, aware, local
from bot.accounts import Identity
from bot.letters import LetterWriter, reply_token
from bot.scenario.schema import Scenario, SiteRecord
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore
from bot.scenario.times import parse_time
from bot.scenario.variables import LETTER_FIELDS
from bot.vocab import Channel, Flag, FlowOutcome, LetterState, Outcome, SiteStatus

LEASE = timedelta(minutes=10)
# Flows at once on one host (see CampaignWorker.per_host).
PER_HOST = 2
# A look claimed by one worker is not due for the others for this long (wall-clock time).
POLL_HOLD = timedelta(minutes=5)
# A submission that failed before the final click (a page that did not load, a firewall's
# challenge) is tried again later, each time waiting twice as long; nothing was sent.
MAX_SUBMIT_ATTEMPTS = 8
RETRY_AFTER = timedelta(minutes=15)
# Letters still watched (a deleted one too: it may come back, and the verdict with it).
OPEN_STATES = (LetterState.SUBMITTED, LetterState.OVERDUE, LetterState.NEVER_VISIBLE, LetterState.DELETED)
# A failed letter with a `planned_at` is due again then; without one it has failed for good.
SUBMITTABLE = (LetterState.PLANNED, LetterState.SUBMIT_FAILED)
# An interrupted submission is looked for on the public list this many times, this far apart.
UNCERTAIN_LOOKS = 3
UNCERTAIN_EVERY = timedelta(minutes=30)
# The first look comes a little after the click: a site may list a letter only once saved.
UNCERTAIN_FIRST_LOOK = timedelta(minutes=5)


def watch_flow(letter: m.Letter, scenario: Scenario) -> tuple[str, Channel]:
    """(flow, channel) to watch a letter: its query page, or the public list when the query
    needs a code or password the letter never got (a board without codes; a letter found on
    the list after an interrupted submission)."""
    if "query" not in scenario.flows:
        return "list", Channel.SITE_LIST
    query = str(scenario.flows["query"].model_dump())
    missing = ("{password}" in query and not letter.password) or ("{tracking_code}" in query and not letter.tracking_code)
    if missing and "list" in scenario.flows:
        return "list", Channel.SITE_LIST
    return "query", Channel.SITE_QUERY


@dataclass
class Target:
    record: SiteRecord
    scenario: Scenario
    site_id: int
    # The site's proxy as Playwright takes it (a campaign file's `proxy` / `sites_override`).
    proxy: "Callable[[], dict] | None" = None


def _raise(letter_id: int, error: BaseException) -> None:
    raise error


def _signature(result: FlowResult) -> tuple:
    """What a look saw, for telling whether a look saw anything new."""
    v = result.values
    outcome = str(result.outcome) if result.outcome in (FlowOutcome.FOUND, FlowOutcome.NOT_FOUND,
                                                        FlowOutcome.NOT_COVERED, FlowOutcome.BLOCKED) else "error"
    return (outcome, v.get("status") or None, v.get("reply_text"), v.get("reply_time"))


def _signature_of(o: m.Observation) -> tuple:
    return (str(o.outcome), o.site_status or None, o.reply_text, o.displayed_raw)


def flow_variables(letter: m.Letter, target: Target) -> dict:
    """What a flow's templates can use (bot.scenario.variables): {base_url}, {mailbox},
    {letter.title}, {password}, ... and, for the engine, `since`: when the letter was sent (or,
    before that is known, claimed), which a list scan reads back to.

    `letter` may be a transient row (a dry run or a check sends nothing and stores nothing)."""
    sc = target.scenario
    w = dict(letter.writer or {})
    w["title"], w["body"], w["category"] = letter.title, letter.body, letter.category
    w["category_value"] = sc.categories.get(letter.category, letter.category)
    w["phone_last4"] = str(w.get("phone", ""))[-4:]
    return {
        "base_url": target.record.base_url.rstrip("/"),
        "mailbox": letter.mailbox.kind,
        "site": SimpleNamespace(name=target.record.name, host_unit=target.record.host_unit),
        "letter": SimpleNamespace(**{f: w.get(f, "") for f in LETTER_FIELDS}),
        "values": SimpleNamespace(**sc.values),
        "tracking_code": letter.tracking_code or "",
        "password": letter.password or w.get("password", ""),
        "since": letter.submitted_at or (claim_time(letter) if letter.id else None),
    }


class CampaignWorker:
    def __init__(self, db: Database, clock: Clock, browser: Browser, evidence: EvidenceStore,
                 calendar: WorkCalendar, targets: dict[int, Target], *,
                 captcha: CaptchaAnswerer | None = None, poll: PollPolicy | None = None,
                 on_event: Callable[[str, m.Letter], None] | None = None,
                 sessions: SessionStore | None = None, identity_name: str = "",
                 in_flight: set[int] | None = None, http_polls: bool = True, per_host: int = PER_HOST,
                 per_host_spacing: timedelta | None = None,
                 on_error: Callable[[int, BaseException], None] | None = None):
        self.db, self.clock, self.browser, self.evidence = db, clock, browser, evidence
        # Saved logins for sites behind a unified login, used as the inspector `identity_name`.
        self.sessions = sessions
        self.identity_name = identity_name
        self.calendar = calendar
        self.targets = targets                # site_id -> Target
        self.captcha = captcha
        self.lifecycle = Lifecycle(calendar, poll)
        self.poll_policy = self.lifecycle.poll_policy
        self.apply = self.lifecycle.apply     # re-derive a letter after a new observation
        self.on_event = on_event or (lambda kind, letter: None)
        # A letter's work that raised (never silent: the daemon logs it; elsewhere it is raised).
        self.on_error = on_error or _raise
        # Letters this process is submitting right now: their claims are alive whatever their
        # lease says (a daemon shares one set between its workers, see bot.daemon).
        self.in_flight: set[int] = in_flight if in_flight is not None else set()
        # Read-only flows the template allows to (`http = true`) go without a browser.
        self.http_polls = http_polls
        # Politeness: at most this many flows at once on one host (many county and department
        # sites share one platform's server), however many the machine could run.
        self.per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}
        # A campaign's spacing between two letters to one host, across daemons (None: none).
        self.per_host_spacing = per_host_spacing

    # -- planning ----------------------------------------------------------------------
    def plan(self, campaign: m.Campaign, writer: LetterWriter,
             at: "datetime | Callable[[Target, str], datetime]",
             identity: "Identity | Callable[[Target], Identity | None] | None" = None,
             only_mailbox: str | None = None) -> int:
        """One planned letter per mailbox of every target that has none yet in this campaign.

        With an inspector `identity` (or a function giving one per target), the form's email
        field gets the letter's own reply address (`Identity.address_for` its reply token, within
        the scenario's `limits.email_forbidden`); without one, the writer's made-up address.
        `at` is when each letter is due: one time, or a function of (target, mailbox kind), e.g.
        a campaign's send window (bot.campaign.window)."""
        planned_for = at if callable(at) else (lambda _t, _k: at)
        created = 0
        with self.db.session() as s:
            # Never the same text twice, nor again in a later campaign: every earlier letter is
            # known to the writer (its near-duplicate check, bot.letters.similarity).
            writer.avoid(s.execute(select(m.Letter.title, m.Letter.body)).all())
            for target in self.targets.values():
                site = s.get(m.Site, target.site_id)
                # Mailboxes the site file lists today (a row may remember one it no longer has).
                boxes = [mb for mb in site.mailboxes if mb.kind in target.record.mailboxes]
                for mb in sorted(boxes, key=lambda x: target.record.mailboxes.index(x.kind)):
                    if only_mailbox and mb.kind != only_mailbox:
                        continue
                    exists = s.scalar(select(func.count()).select_from(m.Letter).where(
                        m.Letter.campaign_id == campaign.id, m.Letter.mailbox_id == mb.id))
                    if exists:
                        continue
                    ident = identity(target) if callable(identity) else identity
                    # The inspector's real name and phone where the accounts file gives them:
                    # sites call back.
                    content = writer.write(site.name, site.region, target.scenario.limits, identity=ident)
                    token = reply_token()
                    email = (ident.address_for(token, target.scenario.limits.email_forbidden)
                             if ident is not None else content.email)
                    due = planned_for(target, mb.kind)
                    letter = m.Letter(campaign_id=campaign.id, mailbox_id=mb.id, seq=0, state=LetterState.PLANNED,
                                      state_changed_at=self.clock.now(), category=content.category, title=content.title,
                                      body=content.body, planned_at=due, reply_token=token,
                                      writer={"name": content.name, "phone": content.phone,
                                              "email": email, "password": content.password,
                                              "address": content.address, "field": content.field,
                                              "template": content.template})
                    s.add(letter)
                    s.flush()
                    s.add(m.LetterEvent(letter_id=letter.id, at=self.clock.now(), from_state=None,
                                        to_state=LetterState.PLANNED, reason=f"planned for {local(due):%Y-%m-%d %H:%M}"))
                    created += 1
            s.commit()
        return created

    # -- what is due -------------------------------------------------------------------
    def due_submissions(self, campaign_id: int, now: datetime) -> list[int]:
        with self.db.session() as s:
            return list(s.scalars(select(m.Letter.id).where(
                m.Letter.campaign_id == campaign_id, m.Letter.state.in_(SUBMITTABLE),
                m.Letter.planned_at <= now).order_by(m.Letter.id)))

    def due_polls(self, campaign_id: int, now: datetime) -> list[int]:
        with self.db.session() as s:
            return list(s.scalars(select(m.Letter.id).where(
                m.Letter.campaign_id == campaign_id, m.Letter.next_poll_at.is_not(None),
                m.Letter.next_poll_at <= now).order_by(m.Letter.next_poll_at, m.Letter.id)))

    def next_due(self, campaign_id: int) -> datetime | None:
        with self.db.session() as s:
            a = s.scalar(select(func.min(m.Letter.planned_at)).where(
                m.Letter.campaign_id == campaign_id, m.Letter.state.in_(SUBMITTABLE)))
            b = s.scalar(select(func.min(m.Letter.next_poll_at)).where(
                m.Letter.campaign_id == campaign_id, m.Letter.next_poll_at.is_not(None)))
        times = [aware(t) for t in (a, b) if t is not None]
        return min(times) if times else None

    async def run_due(self, campaign_id: int) -> tuple[int, int]:
        now = self.clock.now()
        subs = self.due_submissions(campaign_id, now)
        polls = self.due_polls(campaign_id, now)
        # One letter's trouble (a bug, the database busy) is said, and the others go on.
        results = await asyncio.gather(*(self.submit(i) for i in subs), *(self.poll(i) for i in polls),
                                       return_exceptions=True)
        for letter_id, r in zip([*subs, *polls], results):
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                self.on_error(letter_id, r)
        return len(subs), len(polls)

    # -- helpers -----------------------------------------------------------------------
    def _keep(self, s, letter_id: int, result: FlowResult) -> list[m.EvidenceFile]:
        rows = []
        now = self.clock.now()
        for ev in result.evidence:
            row = m.EvidenceFile.of(ev, letter_id, now)
            s.add(row)
            rows.append(row)
        s.flush()
        return rows

    # -- submission --------------------------------------------------------------------
    async def submit(self, letter_id: int, *, on_step=None, trace_path: str | None = None) -> str:
        """Claims and submits one letter; `on_step` and `trace_path` serve `replay --submit`.

        Never twice: the claim is committed before anything is opened, and the moment before
        the final click is committed before the click (`final_click_at`). Anything that goes
        wrong before that moment releases the claim (nothing was sent); after it, the letter
        is `submit_uncertain` unless the site answered."""
        if not self._host_turn(letter_id) or not self._claim(letter_id):
            return "not_claimed"
        clicked = False

        async def before_final_click() -> None:
            nonlocal clicked
            with self.db.session() as s:
                s.execute(update(m.Letter).where(m.Letter.id == letter_id).values(final_click_at=self.clock.now()))
                s.commit()
            clicked = True

        self.in_flight.add(letter_id)
        try:
            async with self._lease_kept(letter_id):
                with self.db.session() as s:
                    letter = s.get(m.Letter, letter_id)
                    target = self.targets[letter.mailbox.site_id]
                    variables = flow_variables(letter, target)
                runner = self.runner(target, on_step=on_step, before_final_click=before_final_click)
                async with self.host_slot(target), \
                        self.browser.page(trace_path=trace_path, storage_state=self.login_state(target),
                                          proxy=target.proxy() if target.proxy else None,
                                          host=urlsplit(target.record.base_url).hostname) as page:
                    result = await runner.run(page, "submit", variables)
        except Exception as e:       # ours (a hook, a file, the database), not the site's answer
            # No browser reachable at all: the letter's form was never opened, so the attempt
            # is not the letter's (it would otherwise run out of attempts while the browsers are down).
            return self._broke_off(letter_id, clicked, f"{type(e).__name__}: {e}", counts=not isinstance(e, NoBrowser))
        finally:
            self.in_flight.discard(letter_id)
        return self._record_submission(letter_id, result, variables)

    @asynccontextmanager
    async def _lease_kept(self, letter_id: int):
        """Renews the claim's lease while the submission runs, so that only a claim whose holder
        is gone (a crash, a lost machine) ever expires. A clock that moves only when told needs
        no renewal."""
        speed = getattr(self.clock, "speed", 1.0)
        if not speed:
            yield
            return

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE.total_seconds() / 3 / speed)
                with self.db.session() as s:
                    s.execute(update(m.Letter).where(m.Letter.id == letter_id, m.Letter.state == LetterState.SUBMITTING)
                              .values(lease_until=self.clock.now() + LEASE))
                    s.commit()

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()

    def _host_turn(self, letter_id: int) -> bool:
        """The campaign's per-host spacing, held across every daemon of the database: a letter
        goes to a host only when the host's turn (a lease, bot.store.leases) is free."""
        if not self.per_host_spacing:
            return True
        from bot.store import leases

        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            target = self.targets.get(letter.mailbox.site_id)
        if target is None:
            return True
        host = urlsplit(target.record.base_url).hostname or target.record.base_url
        return leases.take(self.db, f"host:{host}", f"letter:{letter_id}", self.per_host_spacing, self.clock.now())

    def _claim(self, letter_id: int) -> bool:
        """Only a planned (or failed-before-the-final-click) letter can be taken, and only by one
        worker: the UPDATE's WHERE is the lock. Committed before anything is opened."""
        now = self.clock.now()
        with self.db.session() as s:
            before = s.scalar(select(m.Letter.state).where(m.Letter.id == letter_id))
            claimed = s.execute(update(m.Letter).where(
                m.Letter.id == letter_id, m.Letter.state.in_(SUBMITTABLE),
            ).values(state=LetterState.SUBMITTING, lease_until=now + LEASE, attempts=m.Letter.attempts + 1,
                     final_click_at=None, state_changed_at=now)).rowcount
            if not claimed:
                return False
            attempts = s.scalar(select(m.Letter.attempts).where(m.Letter.id == letter_id))
            s.add(m.LetterEvent(letter_id=letter_id, at=now, from_state=before, to_state=LetterState.SUBMITTING,
                                reason=f"attempt {attempts}"))
            s.commit()
        return True

    def _broke_off(self, letter_id: int, clicked: bool, error: str, counts: bool = True) -> str:
        """The submission stopped on an error of ours. Before the final click nothing was sent:
        the claim is released and the letter is due again later (the attempt counts, unless
        `counts` is False). After it, the letter may have gone: `submit_uncertain`, never resubmitted."""
        at = self.clock.now()
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            letter.lease_until = None
            if not counts and not clicked:
                letter.attempts -= 1
            letter.failure = error
            if clicked:
                letter.failure_kind = FlowOutcome.UNCERTAIN
                letter.next_poll_at = self._first_look(letter, at)
                transition(s, letter, LetterState.SUBMIT_UNCERTAIN, at,
                           f"after the final click: {error} (never resubmitted)")
            else:
                letter.failure_kind = FlowOutcome.FAILED
                if letter.attempts < MAX_SUBMIT_ATTEMPTS:
                    letter.planned_at = at + RETRY_AFTER * 2 ** (letter.attempts - 1)
                    transition(s, letter, LetterState.PLANNED, at, f"{error}; nothing was sent, "
                               f"tried again at {local(letter.planned_at):%Y-%m-%d %H:%M}")
                else:
                    letter.planned_at = None
                    transition(s, letter, LetterState.SUBMIT_FAILED, at, f"{error}; nothing was sent; "
                               f"{letter.attempts} attempts, no more")
            s.commit()
            self.on_event("submit_error", letter)
            return letter.state

    def _record_submission(self, letter_id: int, result: FlowResult, variables: dict) -> str:
        at = self.clock.now()
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            evidence = self._keep(s, letter_id, result)
            letter.lease_until = None
            letter.captcha_by = result.captcha_by
            captcha_note = f"; captcha answered by {result.captcha_by}" if result.captcha_by else ""
            if result.outcome == FlowOutcome.SUCCESS:
                letter.tracking_code = result.values.get("tracking_code")
                letter.password = result.values.get("password") or (variables["password"] or None)
                letter.submitted_at = at
                letter.failure = letter.failure_kind = None
                letter.next_poll_at = self.poll_policy.next_after(at)
                code = (f"tracking code {letter.tracking_code}" if letter.tracking_code
                        else "the site gives no tracking code: watched on its public list")
                transition(s, letter, LetterState.SUBMITTED, at, f"{code}{captcha_note}", evidence)
            elif result.outcome == FlowOutcome.UNCERTAIN:
                letter.failure, letter.failure_kind = result.message, FlowOutcome.UNCERTAIN
                letter.next_poll_at = self._first_look(letter, at)
                transition(s, letter, LetterState.SUBMIT_UNCERTAIN, at,
                           f"after the final click: {result.message} (at {result.failed_step}; never resubmitted)",
                           evidence)
            elif result.outcome == FlowOutcome.NEEDS_INSPECTOR:
                letter.failure, letter.failure_kind = result.message, FlowOutcome.NEEDS_INSPECTOR
                transition(s, letter, LetterState.NEEDS_INSPECTOR, at, result.message, evidence)
            else:
                if result.outcome == FlowOutcome.REJECTED:
                    reason = f"rejected by the site: {result.message}"
                else:
                    reason = f"{result.outcome}: {result.message} (at {result.failed_step})"
                retry = ((result.outcome == FlowOutcome.BLOCKED or result.outcome == FlowOutcome.FAILED and result.transient)
                         and letter.attempts < MAX_SUBMIT_ATTEMPTS)
                letter.failure, letter.failure_kind = reason, FlowOutcome(result.outcome)
                letter.planned_at = at + RETRY_AFTER * 2 ** (letter.attempts - 1) if retry else None
                if retry:
                    reason += f"; nothing was sent, tried again at {local(letter.planned_at):%Y-%m-%d %H:%M}"
                transition(s, letter, LetterState.SUBMIT_FAILED, at, reason, evidence)
            s.commit()
            self.on_event("submit", letter)
            return letter.state

    def _first_look(self, letter: m.Letter, at: datetime) -> datetime | None:
        """When to look for a letter that may have gone: on the public list, if the site has one
        (else straight to the inspector, `inspect pending`)."""
        target = self.targets.get(letter.mailbox.site_id)
        return at + UNCERTAIN_FIRST_LOOK if target is not None and "list" in target.scenario.flows else None

    async def _look_for(self, letter_id: int, target: Target, variables: dict) -> str:
        """A letter whose submission was interrupted: is it on the site's public list (by its
        title or content marker, which is unique)? Found: it was sent, and is watched from now
        on. Not found after UNCERTAIN_LOOKS looks: it stays `submit_uncertain` for the
        inspector. Never resubmitted. Every look is kept as an observation."""
        if "list" not in target.scenario.flows:
            with self.db.session() as s:
                letter = s.get(m.Letter, letter_id)
                letter.next_poll_at = None
                transition(s, letter, LetterState.SUBMIT_UNCERTAIN, self.clock.now(), "the site has no public list to "
                           "look on (nor a code to query): left for the inspector (never resubmitted)")
                s.commit()
                return letter.state
        result = await self._look(target, "list", variables, previous=None)
        at = self.clock.now()
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            evidence = self._keep(s, letter_id, result)
            obs = self._observation(letter_id, Channel.SITE_LIST, at, result, target.scenario, evidence)
            s.add(obs)
            looks = 1 + sum(1 for o in letter.observations if o.channel == Channel.SITE_LIST)
            if result.outcome == FlowOutcome.FOUND:
                letter.tracking_code = result.values.get("tracking_code") or letter.tracking_code
                # When it was sent is known to within the claim: the claim's time stands.
                letter.submitted_at = claim_time(letter) or at
                letter.failure = letter.failure_kind = None
                code = f": tracking code {letter.tracking_code}" if letter.tracking_code else ""
                transition(s, letter, LetterState.SUBMITTED, at, f"found on the public list{code} "
                           "(resolved from submit_uncertain)", evidence)
                s.flush()
                s.refresh(letter, ["observations"])
                self.lifecycle.apply(s, letter, at, evidence, poll_done=obs.replied)
            else:
                give_up = looks >= UNCERTAIN_LOOKS
                letter.next_poll_at = None if give_up else at + UNCERTAIN_EVERY
                transition(s, letter, LetterState.SUBMIT_UNCERTAIN, at,
                           f"looked for it on the public list ({looks} of {UNCERTAIN_LOOKS}): {result.outcome}"
                           + (f" ({result.message})" if result.message else "")
                           + ("; left for the inspector (never resubmitted)" if give_up else ""), evidence)
            s.commit()
            self.on_event("resolve", letter)
            return letter.state

    def host_slot(self, target: Target) -> asyncio.Semaphore:
        host = urlsplit(target.record.base_url).hostname or target.record.base_url
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.per_host)
        return self._hosts[host]

    def runner(self, target: Target, on_step=None, before_final_click=None) -> FlowRunner:
        rec = target.record
        hint = f"the inspector logs in again with: mailbox-bot login {rec.key or rec.name} --identity {self.identity_name or 'NAME'}"
        return FlowRunner(target.scenario, self.evidence, captcha=site_answerer(rec.captcha_solver, self.captcha),
                          site_name=rec.name, on_step=on_step, before_final_click=before_final_click,
                          login_marker=rec.login.marker if rec.login else None, login_hint=hint)

    def login_state(self, target: Target) -> str | None:
        """The saved login for a site behind one (None: no login needed, or none saved: the site
        will show its login page and the letter will wait for the inspector)."""
        if target.record.login is None or self.sessions is None:
            return None
        path = self.sessions.path(self.identity_name, target.record.login.url)
        return str(path) if path.exists() else None

    # -- polling -----------------------------------------------------------------------
    async def poll(self, letter_id: int, *, now: bool = False) -> str:
        """Looks at one letter when it is due; `now=True` (`mailbox-bot poll`): whatever its
        schedule, as long as there is something to look for."""
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            if letter.state == LetterState.SUBMIT_UNCERTAIN and (letter.next_poll_at is not None or now):
                target = self.targets[letter.mailbox.site_id]
                variables = flow_variables(letter, target)
                return await self._look_for(letter_id, target, variables)
            # A replied letter is looked at again only when its lifecycle asked for it (a list's
            # reply time that may still move, see Lifecycle.apply).
            watched = letter.state in OPEN_STATES or (letter.state == LetterState.REPLIED and letter.next_poll_at)
            if not watched or (letter.next_poll_at is None and not now):
                if letter.next_poll_at is not None:     # nothing to look for: never due again
                    letter.next_poll_at = None
                    s.commit()
                return letter.state
            target = self.targets[letter.mailbox.site_id]
            variables = flow_variables(letter, target)
            flow, channel = watch_flow(letter, target.scenario)
            previous = next((_signature_of(o) for o in reversed(letter.observations) if o.channel == channel), None)
        if not now and not self._claim_poll(letter_id):
            return "not_claimed"                    # another daemon is looking at it
        result = await self._look(target, flow, variables, previous)
        at = self.clock.now()
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            before, events_before = letter.state, len(letter.events)
            evidence = self._keep(s, letter_id, result)
            obs = self._observation(letter_id, channel, at, result, target.scenario, evidence)
            s.add(obs)
            s.flush()
            self.lifecycle.apply(s, letter, at, evidence, poll_done=obs.replied and not obs.detail.get("ack"))
            s.commit()
            state, obs_id = letter.state, obs.id
            changes = [e.id for e in letter.events[events_before:]]
            for flag in obs.detail.get("flags", ()):
                self.on_event(flag, letter)         # a doubt is said in the log, as it happens
            self.on_event("poll", letter)
        if state != before and not any(e.kind == "screenshot" for e in result.evidence):
            # The look changed the letter's state: the change keeps a picture of the page.
            await self._picture(result)
            self._attach_picture(result, obs_id, changes)
        return state

    def _claim_poll(self, letter_id: int) -> bool:
        """One look at a time at a letter, whichever daemon: the due time is moved on by the
        UPDATE whose WHERE is the lock (the look's own outcome schedules the next one; a daemon
        that dies mid-look leaves the letter due again a little later)."""
        now = self.clock.now()
        hold = timedelta(seconds=POLL_HOLD.total_seconds() * (getattr(self.clock, "speed", 1.0) or 1.0))
        with self.db.session() as s:
            got = s.execute(update(m.Letter).where(m.Letter.id == letter_id, m.Letter.next_poll_at <= now)
                            .values(next_poll_at=now + hold)).rowcount
            s.commit()
        return bool(got)

    async def _look(self, target: Target, flow: str, variables: dict, previous: tuple | None) -> FlowResult:
        """One read-only flow: without a browser where the template allows it (`http = true`),
        else in a warm browser context. The plain path keeps the page's HTML, and a screenshot of
        it is rendered only when what the look saw differs from the look before (the picture of
        an unchanged page would only repeat it)."""
        async with self.host_slot(target):
            return await self._look_now(target, flow, variables, previous)

    async def _look_now(self, target: Target, flow: str, variables: dict, previous: tuple | None) -> FlowResult:
        proxy = target.proxy() if target.proxy else None
        rec = target.record
        if self.http_polls and target.scenario.flows[flow].http:
            runner = PlainRunner(target.scenario, self.evidence, self.browser.plain, site_name=rec.name,
                                 login_marker=rec.login.marker if rec.login else None)
            result = await runner.run(flow, variables, storage_state=self.login_state(target), proxy=proxy)
            # The first look after the submission is no change (the submission has its picture).
            await self._picture(result, render=previous is not None and _signature(result) != previous)
            return result
        runner = FlowRunner(target.scenario, self.evidence, site_name=rec.name)
        try:
            async with self.browser.page(fresh=False, proxy=proxy) as page:
                return await runner.run(page, flow, variables)
        except PlaywrightError as e:        # the browser itself went away (a lost endpoint): may pass
            return FlowResult(flow=flow, outcome=FlowOutcome.FAILED, transient=True, failed_step=f"{flow} (browser)",
                              message=f"the browser was lost: {str(e).strip().splitlines()[0] if str(e).strip() else e}")

    def _attach_picture(self, result: FlowResult, obs_id: int, event_ids: list[int]) -> None:
        """The picture rendered after the fact joins the look and the state change it proves."""
        shot = next((e for e in result.evidence if e.kind == "screenshot"), None)
        if shot is None:
            return
        with self.db.session() as s:
            row = m.EvidenceFile.of(shot, s.get(m.Observation, obs_id).letter_id, self.clock.now())
            s.add(row)
            s.flush()
            s.get(m.Observation, obs_id).screenshot_id = row.id
            for event_id in event_ids:
                event = s.get(m.LetterEvent, event_id)
                event.evidence_ids = [*event.evidence_ids, row.id]
            s.commit()

    async def _picture(self, result: FlowResult, render: bool = True) -> None:
        """A screenshot of the HTML a plain look kept, rendered in a warm browser page (`render`),
        or the one this very HTML already has."""
        html = next((e for e in result.evidence if e.kind == "html"), None)
        if html is None or any(e.kind == "screenshot" for e in result.evidence):
            return
        shot = self.evidence.screenshot_for(html.sha256)
        if shot is None and not render:
            return
        if shot is None:
            async with self.browser.page(fresh=False) as page:
                await page.set_content(self.evidence.path(html.path).read_text(encoding="utf-8"),
                                       wait_until="domcontentloaded")
                shot = self.evidence.save("screenshot", html.step, await page.screenshot(full_page=True), "png")
            self.evidence.remember_screenshot(html.sha256, shot)
        result.evidence.append(shot)

    @staticmethod
    def _observation(letter_id: int, channel: Channel, at: datetime, result: FlowResult, sc: Scenario,
                     evidence: list[m.EvidenceFile]) -> m.Observation:
        """What one look saw, as the derivation reads it. A time no `time_formats` entry reads,
        or a status word `status_map` does not have, is kept and flagged, never guessed."""
        html = next((e for e in evidence if e.kind == "html"), None)
        shot = next((e for e in evidence if e.kind == "screenshot"), None)
        obs = m.Observation(letter_id=letter_id, channel=channel, at=at, html_id=html.id if html else None,
                            screenshot_id=shot.id if shot else None, detail={}, replied=False)
        if result.outcome != FlowOutcome.FOUND:
            obs.outcome = (Outcome(result.outcome) if result.outcome in (FlowOutcome.NOT_FOUND, FlowOutcome.NOT_COVERED,
                                                                         FlowOutcome.BLOCKED) else Outcome.ERROR)
            obs.detail = {"message": result.message, "flow_outcome": str(result.outcome)}
            if obs.outcome == Outcome.ERROR:
                obs.detail["step"] = result.failed_step
            return obs
        obs.outcome = Outcome.FOUND
        flags: list[str] = []
        status = result.values.get("status", "")
        kind = sc.status_map.get(status)
        obs.site_status = status or None
        obs.reply_text = result.values.get("reply_text")
        obs.reply_unit = result.values.get("reply_unit")
        raw = result.values.get("reply_time")
        obs.displayed_raw = raw
        if raw:
            obs.displayed_reply_at, obs.displayed_date_only = parse_time(raw, sc.time_formats.reply_time)
            if obs.displayed_reply_at is None:
                flags.append(Flag.UNPARSED_REPLY_TIME)
        if status and kind is None:
            flags.append(Flag.UNKNOWN_STATUS)
            # A word we cannot read is an answer only when the page shows one outright.
            obs.replied = bool(obs.reply_text) and obs.displayed_reply_at is not None
        elif kind is None:
            obs.replied = bool(obs.reply_text)
        else:
            obs.replied = kind in (SiteStatus.REPLIED, SiteStatus.ACKNOWLEDGED)
        if kind == SiteStatus.ACKNOWLEDGED:
            obs.detail["ack"] = True
        if result.message:
            obs.detail["message"] = result.message
        if flags:
            obs.detail["flags"] = [str(f) for f in flags]
        return obs
