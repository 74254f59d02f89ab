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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Callable

from sqlalchemy import func, select, update

from bot.browser.captcha import site_answerer
from bot.browser.engine import Browser, CaptchaAnswerer, FlowResult, FlowRunner
from bot.login import SessionStore
from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import Lifecycle, PollPolicy, transition
from bot.clock import Clock, aware, local
from bot.accounts import Identity
from bot.letters import LetterWriter, reply_token
from bot.scenario.schema import Scenario, SiteRecord
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore

LEASE = timedelta(minutes=10)
# A submission that failed before the final click (a page that did not load, a firewall's
# challenge) is tried again later, each time waiting twice as long; nothing was sent.
MAX_SUBMIT_ATTEMPTS = 8
RETRY_AFTER = timedelta(minutes=15)
OPEN_STATES = (m.SUBMITTED, m.OVERDUE, m.NEVER_VISIBLE)
# A failed letter with a `planned_at` is due again then; without one it has failed for good.
SUBMITTABLE = (m.PLANNED, m.SUBMIT_FAILED)
EPOCH_UNITS = {"epoch_ms": 1000, "epoch_s": 1}     # JSON services' Unix times
# An interrupted submission is looked for on the public list this many times, this far apart.
UNCERTAIN_LOOKS = 3
UNCERTAIN_EVERY = timedelta(minutes=30)


def watch_flow(letter: m.Letter, scenario: Scenario) -> tuple[str, str]:
    """(flow, channel) to watch a letter: its query page, or the public list when the query
    needs a password the letter never got (found on the list after an interrupted submission)."""
    needs_password = any("{password}" in str(step.model_dump()) for step in scenario.flows["query"].steps)
    if needs_password and not letter.password and "list" in scenario.flows:
        return "list", "site_list"
    return "query", "site_query"


@dataclass
class Target:
    record: SiteRecord
    scenario: Scenario
    site_id: int
    # The site's proxy as Playwright takes it (a campaign file's `proxy` / `sites_override`).
    proxy: "Callable[[], dict] | None" = None


def parse_displayed_time(raw: str, formats: list[str]) -> tuple[datetime | None, bool]:
    """(time, date_only) from a site's displayed reply time; naive means Asia/Shanghai."""
    raw = raw.strip()
    for fmt in formats:
        if fmt in EPOCH_UNITS:
            if raw.isdigit():
                return datetime.fromtimestamp(int(raw) / EPOCH_UNITS[fmt], tz=timezone.utc), False
            continue
        try:
            value = datetime.strptime(raw, fmt)
        except ValueError:
            continue
        return aware(value), "%H" not in fmt
    return None, False


def flow_variables(letter: m.Letter, target: Target) -> dict:
    """What a flow's templates can use: {base_url}, {mailbox}, {letter.title}, {password}, ...

    `letter` may be a transient row (a dry run or a check sends nothing and stores nothing)."""
    sc = target.scenario
    w = letter.writer or {}
    return {
        "base_url": target.record.base_url.rstrip("/"),
        "mailbox": letter.mailbox.kind,
        "site": SimpleNamespace(name=target.record.name, host_unit=target.record.host_unit),
        "letter": SimpleNamespace(title=letter.title, body=letter.body, category=letter.category,
                                  category_value=sc.categories.get(letter.category, letter.category),
                                  name=w.get("name", ""), phone=w.get("phone", ""),
                                  email=w.get("email", ""), password=w.get("password", "")),
        "values": SimpleNamespace(**sc.values),
        "tracking_code": letter.tracking_code or "",
        "password": letter.password or w.get("password", ""),
    }


class CampaignWorker:
    def __init__(self, db: Database, clock: Clock, browser: Browser, evidence: EvidenceStore,
                 calendar: WorkCalendar, targets: dict[int, Target], *,
                 captcha: CaptchaAnswerer | None = None, poll: PollPolicy | None = None,
                 on_event: Callable[[str, m.Letter], None] | None = None,
                 sessions: SessionStore | None = None, identity_name: str = ""):
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
                    letter = m.Letter(campaign_id=campaign.id, mailbox_id=mb.id, seq=0, state=m.PLANNED,
                                      state_changed_at=self.clock.now(), category=content.category, title=content.title,
                                      body=content.body, planned_at=due, reply_token=token,
                                      writer={"name": content.name, "phone": content.phone,
                                              "email": email, "password": content.password,
                                              "address": content.address, "field": content.field,
                                              "template": content.template})
                    s.add(letter)
                    s.flush()
                    s.add(m.LetterEvent(letter_id=letter.id, at=self.clock.now(), from_state=None,
                                        to_state=m.PLANNED, reason=f"planned for {local(due):%Y-%m-%d %H:%M}"))
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
        await asyncio.gather(*(self.submit(i) for i in subs), *(self.poll(i) for i in polls))
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
        """Claims and submits one letter; `on_step` and `trace_path` serve `replay --submit`."""
        now = self.clock.now()
        with self.db.session() as s:
            # The claim: only a planned (or failed-before-the-final-click) letter can be taken,
            # and only by one worker: the UPDATE's WHERE is the lock.
            before = s.scalar(select(m.Letter.state).where(m.Letter.id == letter_id))
            claimed = s.execute(update(m.Letter).where(
                m.Letter.id == letter_id, m.Letter.state.in_((m.PLANNED, m.SUBMIT_FAILED)),
            ).values(state=m.SUBMITTING, lease_until=now + LEASE, attempts=m.Letter.attempts + 1,
                     state_changed_at=now)).rowcount
            if not claimed:
                return "not_claimed"
            letter = s.get(m.Letter, letter_id)
            s.add(m.LetterEvent(letter_id=letter_id, at=now, from_state=before, to_state=m.SUBMITTING,
                                reason=f"attempt {letter.attempts}"))
            s.commit()
            target = self.targets[letter.mailbox.site_id]
            variables = flow_variables(letter, target)

        runner = self.runner(target, on_step=on_step)
        async with self.browser.page(trace_path=trace_path, storage_state=self.login_state(target),
                                     proxy=target.proxy() if target.proxy else None) as page:
            result = await runner.run(page, "submit", variables)

        at = self.clock.now()
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            evidence = self._keep(s, letter_id, result)
            letter.lease_until = None
            captcha_note = f"; captcha answered by {result.captcha_by}" if result.captcha_by else ""
            if result.outcome == "success":
                letter.tracking_code = result.values.get("tracking_code")
                letter.password = result.values.get("password") or (variables["password"] or None)
                letter.submitted_at = at
                letter.failure = None
                letter.captcha_by = result.captcha_by
                letter.next_poll_at = self.poll_policy.next_after(at)
                transition(s, letter, m.SUBMITTED, at,
                           f"tracking code {letter.tracking_code}{captcha_note}", evidence)
            elif result.outcome == "uncertain":
                letter.captcha_by = result.captcha_by
                transition(s, letter, m.SUBMIT_UNCERTAIN, at,
                           f"after the final click: {result.message} (at {result.failed_step})", evidence)
            elif result.outcome == "needs_inspector":
                letter.failure = f"needs_inspector: {result.message}"
                transition(s, letter, m.NEEDS_INSPECTOR, at, result.message, evidence)
            else:
                if result.outcome == "rejected":
                    reason = f"rejected by the site: {result.message}"
                else:
                    reason = f"{result.outcome}: {result.message} (at {result.failed_step})"
                retry = ((result.outcome == "blocked" or result.outcome == "failed" and result.transient)
                         and letter.attempts < MAX_SUBMIT_ATTEMPTS)
                letter.failure = reason
                letter.planned_at = at + RETRY_AFTER * 2 ** (letter.attempts - 1) if retry else None
                if retry:
                    reason += f"; nothing was sent, tried again at {local(letter.planned_at):%Y-%m-%d %H:%M}"
                transition(s, letter, m.SUBMIT_FAILED, at, reason, evidence)
            s.commit()
            self.on_event("submit", letter)
            return letter.state

    async def _look_for(self, letter_id: int, target: Target, variables: dict) -> str:
        """A letter whose submission was interrupted: is it on the site's public list (by its
        title, which is unique)? Found: it was sent, and is watched from now on. Not found after
        UNCERTAIN_LOOKS looks: it stays `submit_uncertain` for the inspector. Never resubmitted."""
        if "list" not in target.scenario.flows:
            with self.db.session() as s:
                letter = s.get(m.Letter, letter_id)
                letter.next_poll_at = None
                transition(s, letter, m.SUBMIT_UNCERTAIN, self.clock.now(), "the site has no public list to "
                           "look on (nor a code to query): left for the inspector (never resubmitted)")
                s.commit()
                return letter.state
        runner = FlowRunner(target.scenario, self.evidence, site_name=target.record.name)
        async with self.browser.page(fresh=False, proxy=target.proxy() if target.proxy else None) as page:
            result = await runner.run(page, "list", variables)
        at = self.clock.now()
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            evidence = self._keep(s, letter_id, result)
            looks = sum(1 for e in letter.events if e.to_state == m.SUBMIT_UNCERTAIN and e.reason.startswith("looked for"))
            if result.outcome == "found" and result.values.get("tracking_code"):
                letter.tracking_code = result.values["tracking_code"]
                # When it was sent is known to within the claim: the claim's time stands.
                claim = next((e.at for e in reversed(letter.events) if e.to_state == m.SUBMITTING), at)
                letter.submitted_at = claim
                letter.failure = None
                letter.next_poll_at = self.poll_policy.next_after(at)
                transition(s, letter, m.SUBMITTED, at, f"found on the public list by its title: tracking code "
                           f"{letter.tracking_code} (resolved from submit_uncertain)", evidence)
            else:
                give_up = looks + 1 >= UNCERTAIN_LOOKS
                letter.next_poll_at = None if give_up else at + UNCERTAIN_EVERY
                transition(s, letter, m.SUBMIT_UNCERTAIN, at,
                           f"looked for it on the public list: {result.outcome}"
                           + ("; left for the inspector (never resubmitted)" if give_up else ""), evidence)
            s.commit()
            self.on_event("resolve", letter)
            return letter.state

    def runner(self, target: Target, on_step=None) -> FlowRunner:
        rec = target.record
        hint = f"the inspector logs in again with: mailbox-bot login {rec.key or rec.name} --identity {self.identity_name or 'NAME'}"
        return FlowRunner(target.scenario, self.evidence, captcha=site_answerer(rec.captcha_solver, self.captcha),
                          site_name=rec.name, on_step=on_step,
                          login_marker=rec.login.marker if rec.login else None, login_hint=hint)

    def login_state(self, target: Target) -> str | None:
        """The saved login for a site behind one (None: no login needed, or none saved: the site
        will show its login page and the letter will wait for the inspector)."""
        if target.record.login is None or self.sessions is None:
            return None
        path = self.sessions.path(self.identity_name, target.record.login.url)
        return str(path) if path.exists() else None

    # -- polling -----------------------------------------------------------------------
    async def poll(self, letter_id: int) -> str:
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            if letter.state == m.SUBMIT_UNCERTAIN and letter.next_poll_at is not None:
                target = self.targets[letter.mailbox.site_id]
                variables = flow_variables(letter, target)
                return await self._look_for(letter_id, target, variables)
            if letter.state not in OPEN_STATES or letter.next_poll_at is None:
                return letter.state
            target = self.targets[letter.mailbox.site_id]
            variables = flow_variables(letter, target)
            flow, channel = watch_flow(letter, target.scenario)
        runner = FlowRunner(target.scenario, self.evidence, site_name=target.record.name)
        async with self.browser.page(fresh=False, proxy=target.proxy() if target.proxy else None) as page:
            result = await runner.run(page, flow, variables)
        at = self.clock.now()
        sc = target.scenario
        with self.db.session() as s:
            letter = s.get(m.Letter, letter_id)
            evidence = self._keep(s, letter_id, result)
            html = next((e for e in evidence if e.kind == "html"), None)
            shot = next((e for e in evidence if e.kind == "screenshot"), None)
            obs = m.Observation(letter_id=letter_id, channel=channel, at=at,
                                html_id=html.id if html else None,
                                screenshot_id=shot.id if shot else None, detail={})
            final = False
            if result.outcome == "found":
                obs.outcome = "found"
                status = result.values.get("status", "")
                obs.site_status = status
                kind = sc.status_map.get(status)
                obs.reply_text = result.values.get("reply_text")
                obs.reply_unit = result.values.get("reply_unit")
                raw = result.values.get("reply_time")
                obs.displayed_raw = raw
                if raw:
                    obs.displayed_reply_at, obs.displayed_date_only = parse_displayed_time(raw, sc.time_formats.reply_time)
                    if obs.displayed_reply_at is None:
                        obs.detail = {"unparsed_reply_time": raw}
                obs.replied = kind == "replied" or (kind is None and bool(obs.reply_text))
                final = obs.replied
                if kind is None and status:
                    obs.detail = {**obs.detail, "unknown_status": status}
            elif result.outcome in ("not_found", "blocked"):
                obs.outcome = result.outcome
                obs.detail = {"message": result.message}
            else:
                obs.outcome = "error"
                obs.detail = {"message": result.message, "step": result.failed_step}
            s.add(obs)
            s.flush()
            self.lifecycle.apply(s, letter, at, evidence, poll_done=final)
            s.commit()
            self.on_event("poll", letter)
            return letter.state

