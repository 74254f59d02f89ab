"""A campaign played on a simulated clock against the sandbox: the demo and the end-to-end tests.

The bot's side is exactly the product's (scenario templates, engine, worker, derivation,
report); only the clock is simulated, and it moves straight to the next moment work is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from bot.browser.engine import Browser
from bot.calendar import WorkCalendar
from bot.campaign.sites import register_site
from bot.campaign.worker import CampaignWorker, PollPolicy, Target
from bot.clock import SimClock
from bot.config import Config
from bot.letters import LetterWriter
from bot.roster import Roster
from bot.scenario.loader import scenario_for
from bot.scenario.schema import SiteRecord
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
    submissions: int
    polls: int


def roster_site_records(roster: Roster, base_url: Callable[[str], str]) -> list[SiteRecord]:
    return [SiteRecord(key=s.slug, name=s.name, group=s.group, host_unit=s.name, region=s.region or "",
                       base_url=base_url(s.name), platform=s.platform, mailboxes=list(s.mailboxes))
            for s in roster.site]


async def simulate(roster: Roster, clock: SimClock, base_url: Callable[[str], str], db: Database,
                   config: Config, evidence_dir: Path, calendar: WorkCalendar,
                   progress: Callable[[datetime, int, int, int], None] | None = None,
                   seed: str | int = 0) -> SimulationResult:
    """Runs the roster's campaign from submit_at to end_at on `clock`."""
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
    async with Browser(config.browser.executable_path, headless=config.browser.headless,
                       concurrency=config.browser.concurrency) as browser:
        worker = CampaignWorker(db, clock, browser, evidence, calendar, targets,
                                captcha=DeclaredCaptchaAnswer(), poll=PollPolicy(calendar, every=camp.poll_every))
        with db.session() as s:
            worker.plan(s.get(m.Campaign, campaign_id), LetterWriter(seed), at=camp.submit_at)
        while True:
            nxt = worker.next_due(campaign_id)
            if nxt is None or nxt > camp.end_at:
                break
            if nxt > clock.now():
                clock.set(nxt)
            a, b = await worker.run_due(campaign_id)
            subs, polls = subs + a, polls + b
            if progress:
                progress(clock.now(), subs, polls, worker_open(db, campaign_id))
    if clock.now() < camp.end_at:
        clock.set(camp.end_at)
    with db.session() as s:
        c = s.get(m.Campaign, campaign_id)
        c.state = "finished"
        s.commit()
    return SimulationResult(campaign=camp.name, wall_seconds=_time.perf_counter() - started,
                            submissions=subs, polls=polls)


def worker_open(db: Database, campaign_id: int) -> int:
    from sqlalchemy import func

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(m.Letter).where(
            m.Letter.campaign_id == campaign_id, m.Letter.next_poll_at.is_not(None))) or 0
