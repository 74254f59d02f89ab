"""A campaign played on a simulated clock against the sandbox: the demo and the end-to-end tests.

The bot's side is exactly the product's (scenario templates, engine, worker, derivation,
report); only the clock is simulated, and it moves straight to the next moment work is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Awaitable, Callable

from sqlalchemy import select

from bot.browser.pool import Browser
from bot.calendar import WorkCalendar
from bot.campaign.sites import register_site
from bot.campaign.lifecycle import PollPolicy
from bot.campaign.worker import CampaignWorker, Target
from bot.clock import SimClock
from bot.accounts import Identity
from bot.config import Config
from bot.letters import LetterWriter
from bot.login import SessionStore
from bot.mail.channel import DbStateStore, sync_mail
from bot.mail.imap import ImapSettings, MailReader, with_retry
from bot.sandbox.roster import Roster
from bot.scenario.loader import scenario_for
from bot.scenario.schema import LoginSpec, SiteRecord
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore


class DeclaredCaptchaAnswer:
    """For sandbox sites told not to check their captcha (`captcha = false` in the roster).

    It types a fixed answer and says so: every letter records that its captcha was answered
    this way, so nothing is passed off as solved."""

    label = "not checked by the sandbox (demo answer)"

    async def answer(self, image: bytes, site: str) -> str | None:
        return "0000"


@dataclass
class SimulationResult:
    campaign: str
    wall_seconds: float
    submissions: int      # attempts: a letter retried after a fault counts each time
    polls: int
    mail_seconds: float = 0.0
    """Wall time spent on the email channel (the sites' mail delivery and the IMAP syncs)."""


# What the sandbox's identity platform looks like (bot.sandbox.sso), as a site file says it.
SANDBOX_LOGIN = {"marker": "#ssoLoginForm", "account": "#account", "password": "#password",
                 "captcha_image": "#captchaImg", "captcha_input": "#captcha", "sms_button": "#btnSms",
                 "sms_input": "#smsCode", "submit": "#btnLogin"}
# The sandbox's captchas can be read from their pictures (bot.sandbox.captcha.solve).
SANDBOX_SOLVER = "bot.sandbox.captcha:solve"


def roster_site_records(roster: Roster, base_url: Callable[[str], str]) -> list[SiteRecord]:
    """The site files a roster's sites would have: a site with `captcha = true` names the
    sandbox's solver hook, a site with `login = true` the sandbox's identity platform."""
    records = []
    for s in roster.site:
        base = base_url(s.name)
        login = LoginSpec(url=f"{base.rsplit('/', 1)[0]}/sso/login", **SANDBOX_LOGIN) if s.login else None
        records.append(SiteRecord(key=s.slug, name=s.name, group=s.group, host_unit=s.name, region=s.region or "",
                                  base_url=base, platform=s.platform, mailboxes=list(s.mailboxes),
                                  login=login, captcha_solver=SANDBOX_SOLVER if s.captcha else "",
                                  moderated=bool(s.moderated)))
    return records


async def simulate(roster: Roster, clock: SimClock, base_url: Callable[[str], str], db: Database,
                   config: Config, evidence_dir: Path, calendar: WorkCalendar,
                   progress: Callable[[datetime, int, int, int], None] | None = None,
                   seed: str | int = 0, *, mail: "ImapSettings | None" = None,
                   deliver_mail: Callable[[], object] | None = None,
                   identity: "Identity | Callable[[Target], Identity | None] | None" = None,
                   catchall_domains: tuple[str, ...] = (),
                   sessions: "SessionStore | None" = None,
                   log_in: "Callable[[Browser, SiteRecord], Awaitable[object]] | None" = None) -> SimulationResult:
    """Runs the roster's campaign from submit_at to end_at on `clock`.

    The email channel, when `mail` (the inspector's IMAP account) is given: letters get
    per-letter reply addresses from `identity`, and after every move of the clock
    `deliver_mail()` (the sandbox's `deliver_due_mail`: the sites' mail whose time has come)
    runs, then one `sync_mail` cycle reads the account, before the due submissions and polls.

    Sites behind a login: before the first submission `log_in(browser, record)` is called once
    per login host (the inspector logging in), and the sessions are kept in `sessions`."""
    import time as _time

    started = _time.perf_counter()
    camp = roster.campaign
    scenarios_dir = Path(config.paths.scenarios_dir)
    targets: dict[int, Target] = {}
    with db.session() as s:
        for order, record in enumerate(roster_site_records(roster, base_url)):
            scenario = scenario_for(record, scenarios_dir, where=f"roster site {record.name}")
            site = register_site(s, record, order, source="roster")
            targets[site.id] = Target(record=record, scenario=scenario, site_id=site.id)
        campaign = s.scalar(select(m.Campaign).where(m.Campaign.name == camp.name))
        if campaign is None:
            campaign = m.Campaign(name=camp.name, created_at=clock.now(), deadline_workdays=camp.deadline_workdays,
                                  cutoff=None, settings={"poll_every_s": camp.poll_every.total_seconds(),
                                                         "source": "roster"})
            s.add(campaign)
        s.commit()
        campaign_id = campaign.id

    evidence = EvidenceStore(evidence_dir)
    subs = polls = 0
    mail_s = 0.0
    reader = MailReader(mail, DbStateStore(db)) if mail is not None else None
    try:
        async with Browser.from_config(config.browser) as browser:
            worker = CampaignWorker(db, clock, browser, evidence, calendar, targets,
                                    captcha=DeclaredCaptchaAnswer(), poll=PollPolicy(calendar, every=camp.poll_every),
                                    sessions=sessions, identity_name="inspector")
            if log_in is not None:
                hosts: set[str] = set()
                for t in targets.values():
                    if t.record.login is not None and t.record.login.url not in hosts:
                        hosts.add(t.record.login.url)
                        clock.set(max(clock.now(), camp.submit_at))
                        await log_in(browser, t.record)

            def mail_step() -> None:
                nonlocal mail_s
                t0 = _time.perf_counter()
                _mail_step()
                mail_s += _time.perf_counter() - t0

            def _mail_step() -> None:
                if deliver_mail is not None:
                    deliver_mail()
                if reader is not None:
                    with_retry(lambda: sync_mail(db, reader, evidence, clock, apply=worker.apply,
                                                 catchall_domains=catchall_domains),
                               attempts=3, delay=0.2)

            with db.session() as s:
                worker.plan(s.get(m.Campaign, campaign_id), LetterWriter(seed), at=camp.submit_at,
                            identity=identity if reader is not None else None)
            while True:
                nxt = worker.next_due(campaign_id)
                if nxt is None or nxt > camp.end_at:
                    break
                if nxt > clock.now():
                    clock.set(nxt)
                    mail_step()
                a, b = await worker.run_due(campaign_id)
                subs, polls = subs + a, polls + b
                if progress:
                    progress(clock.now(), subs, polls, worker_open(db, campaign_id))
            if clock.now() < camp.end_at:
                clock.set(camp.end_at)
            mail_step()
    finally:
        if reader is not None:
            reader.close()
    with db.session() as s:
        c = s.get(m.Campaign, campaign_id)
        c.state = "finished"
        s.commit()
    return SimulationResult(campaign=camp.name, wall_seconds=_time.perf_counter() - started,
                            submissions=subs, polls=polls, mail_seconds=mail_s)


def worker_open(db: Database, campaign_id: int) -> int:
    from sqlalchemy import func

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(m.Letter).where(
            m.Letter.campaign_id == campaign_id, m.Letter.next_poll_at.is_not(None))) or 0


def sandbox_inspector_login(sandbox, sessions: SessionStore, identity: str = "inspector"):
    """The inspector logging in at the sandbox's identity platform with the roster's first
    account: the captcha read from its picture, the SMS code from the sandbox's outbox (which
    stands in for the inspector's phone). For simulate(log_in=...)."""
    from bot.browser.captcha import SolverHook
    from bot.login import log_in
    from bot.errors import UserError

    if not sandbox.roster.account:
        raise UserError(f"{sandbox.roster.source}: sites with login = true need an [[account]] "
                        "(account, password, phone) to log in with")
    acct = sandbox.roster.account[0]

    async def run(browser: Browser, record: SiteRecord):
        import asyncio

        before = len(sandbox.sms_outbox())

        async def sms_code() -> str | None:
            # The page's script posts the request; the text to this account's phone follows it.
            for _ in range(100):
                sent = [x for x in sandbox.sms_outbox()[before:] if x["phone"] == acct.phone]
                if sent:
                    return sent[-1]["code"]
                await asyncio.sleep(0.05)
            return None

        return await log_in(browser, record, sessions, identity, account=acct.account, password=acct.password,
                            captcha=SolverHook(SANDBOX_SOLVER), sms_code=sms_code, say=lambda _m: None)

    return run
