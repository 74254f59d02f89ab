"""Campaigns from campaign files: plan, start, status, stop, and the daemon's targets.

`plan_campaign` and `start_campaign` compute the same plan (same calendar, same seed, same
moment), so what `campaign plan` shows is what `campaign start` stores. Starting stores the
spec in the campaign's settings with its file path and the site files it resolved to; the
daemon rebuilds its targets from those (`build_targets`), and never sends for a campaign whose
state is not "running" (`stop_campaign`).

Never twice: a campaign name is started once (the name is unique in the database), and the
worker plans at most one letter per mailbox of a campaign.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.accounts import Identity, load_accounts
from bot.calendar import WorkCalendar
from bot.campaign.sites import register_site
from bot.campaign.spec import CampaignSpec, SiteEntry, spec_from_settings
from bot.campaign.window import next_occurrence, send_times
from bot.campaign.worker import CampaignWorker, Target
from bot.clock import SHANGHAI, Clock, aware, local
from bot.config import Config
from bot.contact import contact_problem
from bot.errors import ConfigError, UserError
from bot.scenario.loader import load_site, scenario_for
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import Flag, LetterState, MailboxKind

RUNNING = "running"
STOPPED = "stopped"
SOURCE = "campaign_file"
# Letters without a verdict yet: past their deadline they count as overdue in `status`.
UNANSWERED = (LetterState.SUBMITTED, LetterState.OVERDUE, LetterState.NEVER_VISIBLE)


@dataclass(frozen=True)
class PlannedLetter:
    site: str
    site_key: str
    group: str
    mailbox: str          # leader | mayor
    label: str            # 领导信箱 / 市长信箱 ...
    host: str
    planned_at: datetime  # Asia/Shanghai
    identity: str | None

    def to_json(self) -> dict:
        return {**asdict(self), "planned_at": self.planned_at.isoformat()}


@dataclass
class CampaignPlan:
    spec: CampaignSpec
    start: datetime                 # the moment the send windows are counted from
    letters: list[PlannedLetter]
    entries: list[SiteEntry]        # the sites written to, in roster order
    skipped: list[str] = field(default_factory=list)   # sites without a selected mailbox
    estimated: bool = False         # a send day is in a year past the published schedules
    next_campaign: date | None = None
    next_campaign_estimated: bool = False

    def to_json(self) -> dict:
        days = sorted({x.planned_at.date() for x in self.letters})
        return {"campaign": self.spec.name, "file": self.spec.source, "start": self.start.isoformat(),
                "letters": [x.to_json() for x in self.letters],
                "sites": len(self.entries), "send_days": [d.isoformat() for d in days],
                "skipped": self.skipped, "estimated": self.estimated,
                "next_campaign": self.next_campaign.isoformat() if self.next_campaign else None,
                "next_campaign_estimated": self.next_campaign_estimated}


def host_of(url: str) -> str:
    """The host the per-host spacing is about (sites sharing a server share its load)."""
    return (urlsplit(url).hostname or url).lower()


def planning_start(spec: CampaignSpec, now: datetime) -> datetime:
    """The campaign's `start` day (from its beginning), never earlier than now."""
    now = local(now)
    if spec.start is None:
        return now
    return max(now, datetime.combine(spec.start, datetime.min.time(), tzinfo=SHANGHAI))


def resolve_identities(spec: CampaignSpec, config: Config) -> list[Identity]:
    """The inspector identities the campaign names, from the accounts file, in its order."""
    if not spec.identities:
        return []
    path = Path(config.paths.accounts_file)
    if not path.exists():
        raise ConfigError(f"key 'identities': the identities are read from the accounts file {path}, "
                          "which is not there (copy mailbox_accounts.example.toml, or set paths.accounts_file)",
                          where=spec.source)
    known = {i.name: i for i in load_accounts(path).identity}
    for name in spec.identities:
        if name not in known:
            raise ConfigError(f"key 'identities': {name!r} is no identity in {path} "
                              f"(defined: {', '.join(sorted(known)) or 'none'})", where=spec.source)
    return [known[n] for n in spec.identities]


def plan_campaign(spec: CampaignSpec, clock: Clock, calendar: WorkCalendar, config: Config) -> CampaignPlan:
    """What the campaign would send, to whom, when and as whom. Reads files; changes nothing.

    A site that may be real (bot.contact.is_test_host) is written to only as an identity with a
    phone and an email: else a ConfigError naming the site and what is missing."""
    start = planning_start(spec, clock.now())
    entries_all = spec.site_entries(start.date(), Path(config.paths.scenarios_dir))
    identities = resolve_identities(spec, config)
    entries, skipped, items, meta = [], [], [], {}
    for entry in entries_all:
        kinds = spec.mailboxes_of(entry.record)
        if not kinds:
            skipped.append(f"{entry.record.name}: no {' or '.join(spec.mailboxes or [])} mailbox")
            continue
        identity = identities[len(entries) % len(identities)] if identities else None
        problem = contact_problem(entry.record.name, entry.record.base_url, identity, key="key 'identities'",
                                  accounts=str(config.paths.accounts_file))
        if problem:
            raise ConfigError(f"{problem}; nothing was planned", where=spec.source)
        ident = identity.name if identity else None
        entries.append(entry)
        for kind in kinds:
            key = (entry.record.key, kind)
            items.append((key, host_of(entry.record.base_url)))
            meta[key] = (entry.record, ident)
    times = send_times(items, spec.send_window, calendar, start, spec.rate_limit.per_host, seed=spec.name)
    letters = []
    for key, host in items:
        record, ident = meta[key]
        letters.append(PlannedLetter(site=record.name, site_key=record.key, group=record.group, mailbox=key[1],
                                     label=record.mailbox_label(key[1]), host=host, planned_at=times[key],
                                     identity=ident))
    nxt = next_occurrence(spec.recurrence, start.date(), calendar) if spec.recurrence else None
    return CampaignPlan(spec=spec, start=start, letters=letters, entries=entries, skipped=skipped,
                        estimated=any(calendar.is_estimated(x.planned_at.date()) for x in letters),
                        next_campaign=nxt, next_campaign_estimated=nxt is not None and calendar.is_estimated(nxt))


def _already(s, name: str, where: str) -> UserError:
    c = s.scalar(select(m.Campaign).where(m.Campaign.name == name))
    when = f"started {local(c.created_at):%Y-%m-%d %H:%M}, " if c is not None else ""
    state = c.state if c is not None else "unknown"
    return UserError(f"campaign {name!r} already exists ({when}state {state}); nothing was planned again. "
                     f"See it with `mailbox-bot campaign status {name}`, or give the file another name",
                     where=where)


def start_campaign(db: Database, spec: CampaignSpec, clock: Clock, calendar: WorkCalendar,
                   config: Config) -> int:
    """Registers the sites, creates the campaign ("running") and plans one letter per mailbox
    in the send windows. Refused, with nothing changed, when the name exists."""
    plan = plan_campaign(spec, clock, calendar, config)   # every file checked before the database
    with db.session() as s:
        if s.scalar(select(m.Campaign.id).where(m.Campaign.name == spec.name)) is not None:
            raise _already(s, spec.name, spec.source)
    identities = {i.name: i for i in resolve_identities(spec, config)}
    times = {(x.site_key, x.mailbox): x.planned_at for x in plan.letters}
    who = {x.site_key: identities.get(x.identity) for x in plan.letters}
    targets: dict[int, Target] = {}
    with db.session() as s:
        for order, entry in enumerate(plan.entries):
            site = register_site(s, entry.record, order, source=str(entry.path))
            targets[site.id] = Target(record=entry.record, scenario=entry.scenario, site_id=site.id)
        campaign = m.Campaign(
            name=spec.name, created_at=clock.now(), state=RUNNING, deadline_workdays=spec.deadline_workdays,
            cutoff=spec.cutoff.strftime("%H:%M") if spec.cutoff else None,
            settings={"source": SOURCE, "spec_path": str(spec.path) if spec.path else None,
                      "spec": spec.to_settings(), "site_files": [str(e.path) for e in plan.entries],
                      "scenarios_dir": str(Path(config.paths.scenarios_dir).resolve()),
                      "start": plan.start.isoformat(),
                      "poll_every_s": spec.poll.every.total_seconds(),
                      "watch_after_deadline_s": spec.watch_after_deadline.total_seconds(),
                      "rate_per_host_s": spec.rate_limit.per_host.total_seconds(),
                      "next_campaign": plan.next_campaign.isoformat() if plan.next_campaign else None})
        s.add(campaign)
        try:
            s.commit()
        except IntegrityError:          # started at the same moment by someone else
            s.rollback()
            raise _already(s, spec.name, spec.source) from None
    from bot.letters import LetterWriter

    writer = LetterWriter(seed=f"{spec.name}")
    kinds = [k for k in MailboxKind if any(x.mailbox == k for x in plan.letters)]
    for kind in kinds:
        # One kind at a time, each to the sites the campaign writes to in that mailbox.
        mine = {sid: t for sid, t in targets.items() if kind in spec.mailboxes_of(t.record)}
        worker = CampaignWorker(db, clock, None, None, calendar, mine)
        worker.plan(campaign, writer, at=lambda t, k: times[(t.record.key, k)],
                    identity=lambda t: who.get(t.record.key), only_mailbox=kind)
    return campaign.id


# -- reading a campaign back -----------------------------------------------------------------

def get_campaign(s, name: str) -> m.Campaign:
    c = s.scalar(select(m.Campaign).where(m.Campaign.name == name))
    if c is None:
        names = list(s.scalars(select(m.Campaign.name).order_by(m.Campaign.id)))
        shown = ", ".join(names[-10:]) or "none yet"
        raise UserError(f"no campaign named {name!r} (campaigns: {shown})")
    return c


def campaign_spec(campaign: m.Campaign) -> CampaignSpec:
    """The spec the campaign was started with (not the file as it may have been edited since)."""
    settings = campaign.settings or {}
    if settings.get("source") != SOURCE or "spec" not in settings:
        raise UserError(f"campaign {campaign.name!r} was not started from a campaign file "
                        f"(source: {settings.get('source') or 'unknown'})")
    return spec_from_settings(settings["spec"], settings.get("spec_path"))


def build_targets(db: Database, campaign: m.Campaign | str, scenarios_dir: Path | str | None = None,
                  default_scenarios_dir: Path | str | None = None) -> dict[int, Target]:
    """{site_id: Target} for every site with a letter in the campaign (the daemon's
    `targets_for`). Records are read again now, so a site file corrected since the start is used
    as corrected: for a campaign file, from the site files it resolved to at its start; for
    others (a `replay --submit`), from the site's own file (`Site.source`). Platform templates
    come from `scenarios_dir`, else the folder the campaign was planned with, else
    `default_scenarios_dir` (the config's), else scenarios/ of the working directory; from each
    folder as bot.scenario.loader.find_platform decides (its own template, else the built-in one).
    A site whose record cannot be found is a ConfigError naming it."""
    with db.session() as s:
        camp = get_campaign(s, campaign) if isinstance(campaign, str) else s.get(m.Campaign, campaign.id)
        settings = camp.settings or {}
        sites = list(s.scalars(select(m.Site).join(m.Mailbox, m.Mailbox.site_id == m.Site.id)
                               .join(m.Letter, m.Letter.mailbox_id == m.Mailbox.id)
                               .where(m.Letter.campaign_id == camp.id).distinct().order_by(m.Site.roster_order)))
    where = settings.get("spec_path") or f"campaign {camp.name}"
    # The password of a proxy is read from the environment when a context is made, never kept.
    spec = campaign_spec(camp) if settings.get("source") == SOURCE and "spec" in settings else None
    scenarios = Path(scenarios_dir or settings.get("scenarios_dir") or default_scenarios_dir
                     or Path.cwd() / Config().paths.scenarios_dir)
    files = [Path(f) for f in settings.get("site_files") or []]
    loaded: dict[Path, object] = {}

    def record_in(path: Path):
        if path not in loaded:
            loaded[path] = load_site(path) if path.is_file() else None
        return loaded[path]

    targets: dict[int, Target] = {}
    for site in sites:
        candidates = files or ([Path(site.source)] if site.source else [])
        found = None
        for f in candidates:
            r = record_in(f)
            if r is not None and r.key == site.key and r.valid_from == site.valid_from:
                found = (f, r)
                break
        if found is None:
            gone = [str(f) for f in candidates if not f.is_file()]
            why = f"site file {', '.join(gone)} is gone" if gone else "no site file holds its record any more"
            raise ConfigError(f"campaign {camp.name!r}: site {site.name} ({site.key}, valid from "
                              f"{site.valid_from or 'always'}) has letters, but {why}; restore it, "
                              f"or stop the campaign", where=where)
        f, record = found
        proxy = spec.proxy_for(record) if spec is not None else None
        targets[site.id] = Target(record=record, scenario=scenario_for(record, scenarios, where=str(f)),
                                  site_id=site.id, proxy=proxy.playwright if proxy is not None else None)
    return targets


@dataclass
class CampaignStatus:
    name: str
    state: str
    created_at: datetime
    deadline_workdays: int
    letters: int
    states: dict[str, int]
    overdue: int
    next_action_at: datetime | None
    spec_path: str | None
    next_campaign: str | None
    # Letters whose looks carry a doubt the rules could not settle (unparsed_reply_time,
    # unknown_status, ack_or_reply_uncertain): said in `status`, shown in the report.
    doubts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["created_at"] = local(self.created_at).isoformat()
        d["next_action_at"] = local(self.next_action_at).isoformat() if self.next_action_at else None
        return d


def campaign_status(db: Database, name: str | None, now: datetime, calendar: WorkCalendar) -> list[CampaignStatus]:
    """Per campaign (one, or all when `name` is None): letters per state, letters past their
    deadline without a reply, and when the daemon next has work (none once stopped)."""
    with db.session() as s:
        camps = [get_campaign(s, name)] if name else list(s.scalars(select(m.Campaign).order_by(m.Campaign.id)))
        out = []
        for c in camps:
            counts = dict.fromkeys(tuple(LetterState), 0)
            for state, n in s.execute(select(m.Letter.state, func.count()).where(m.Letter.campaign_id == c.id)
                                      .group_by(m.Letter.state)):
                counts[state] = n
            overdue = 0
            for submitted_at in s.scalars(select(m.Letter.submitted_at).where(
                    m.Letter.campaign_id == c.id, m.Letter.state.in_(UNANSWERED), m.Letter.submitted_at.is_not(None))):
                deadline, _ = calendar.deadline(submitted_at, c.deadline_workdays, c.cutoff_time)
                overdue += aware(now) > deadline
            nxt = None
            if c.state not in (STOPPED, "finished"):
                nxt = CampaignWorker(db, None, None, None, calendar, {}).next_due(c.id)
            settings = c.settings or {}
            out.append(CampaignStatus(name=c.name, state=c.state, created_at=c.created_at,
                                      deadline_workdays=c.deadline_workdays, letters=sum(counts.values()),
                                      states=counts, overdue=overdue, next_action_at=nxt,
                                      spec_path=settings.get("spec_path"),
                                      next_campaign=settings.get("next_campaign"), doubts=_doubts(s, c.id)))
    return out


def _doubts(s, campaign_id: int) -> dict[str, int]:
    """{flag: letters} for the doubts observations of the campaign's letters carry."""
    seen: dict[str, set[int]] = {}
    rows = s.execute(select(m.Observation.letter_id, m.Observation.detail).join(m.Letter)
                     .where(m.Letter.campaign_id == campaign_id))
    for letter_id, detail in rows:
        for flag in (detail or {}).get("flags", ()):
            if flag in DOUBT_FLAGS:
                seen.setdefault(flag, set()).add(letter_id)
    return {f: len(seen[f]) for f in DOUBT_FLAGS if f in seen}


# What `campaign status` warns about, and what the inspector can do next.
DOUBT_FLAGS = {
    Flag.UNPARSED_REPLY_TIME: "the site showed a reply time no time_formats entry reads (the first-seen time "
                              "stands in); compare with `mailbox-bot check SITE`",
    Flag.UNKNOWN_STATUS: "the site showed a status word the template's status_map lacks",
    Flag.ACK_OR_REPLY_UNCERTAIN: "an email could not be called answer or acknowledgement with confidence",
}


def stop_campaign(db: Database, name: str, now: datetime) -> str:
    """Marks the campaign stopped (the daemon skips it); letters keep their states. Returns the
    state it had."""
    with db.session() as s:
        c = get_campaign(s, name)
        before = c.state
        if before != STOPPED:
            c.state = STOPPED
            c.settings = {**(c.settings or {}), "stopped_at": aware(now).isoformat(), "state_before_stop": before}
            s.commit()
        return before


def running_campaigns(db: Database) -> list[str]:
    """The names of the campaigns the daemon works on."""
    with db.session() as s:
        return list(s.scalars(select(m.Campaign.name).where(m.Campaign.state == RUNNING).order_by(m.Campaign.id)))


__all__ = ["PlannedLetter", "CampaignPlan", "CampaignStatus", "plan_campaign", "start_campaign",
           "campaign_status", "stop_campaign", "build_targets", "campaign_spec", "running_campaigns",
           "resolve_identities", "host_of", "planning_start", "get_campaign"]
