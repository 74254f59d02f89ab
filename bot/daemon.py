"""`mailbox-bot run`: the unattended daemon.

The database is the source of truth of what is due: planned send times, next poll times, the
IMAP sync state. APScheduler 3 (its job store in the same database, table `apscheduler_jobs`,
created by migration 0004) fires the recurring jobs: the tick that performs due work, the mail
sync, the daily recurrence check. Jobs run one at a time (`max_instances=1`), missed runs are
coalesced, and a job late by more than its grace is skipped (the next tick does the work). The
due work itself is `CampaignWorker.run_due`, the very code the demo runs on a simulated clock.

Never twice: a letter is claimed (`submitting`, with a lease) before the browser opens its form.
If the daemon dies holding a claim, the lease runs out and the next tick turns the letter into
`submit_uncertain`: it may or may not have reached the site, so it is never submitted again
automatically; the inspector resolves it (`mailbox-bot inspect pending`).

SIGTERM or Ctrl-C stops the scheduler, lets the work in hand finish, and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import threading
import sys
from datetime import datetime, timedelta
from typing import Callable, TextIO

from sqlalchemy import select, update

from bot.browser.captcha import configured_answerer
from bot.browser.pool import Browser
from bot.calendar import WorkCalendar
from bot.campaign.lifecycle import PollPolicy, transition
from bot.campaign.worker import CampaignWorker, Target
from bot.clock import Clock, local
from bot.config import Config
from bot.errors import UserError
from bot.login import SessionStore
from bot.store import leases
from bot.store import models as m
from bot.store.db import Database
from bot.store.evidence import EvidenceStore
from bot.vocab import FlowOutcome, LetterState

RUNNING_STATES = ("active", "running")
# A daemon's presence lease lasts at least this long (seconds, at the wall clock's pace).
PRESENCE_MIN_S = 30.0
# The daemon instance whose jobs APScheduler runs (jobs are stored by reference, "bot.daemon:tick_job").
_current: "Daemon | None" = None


class EventLog:
    """One event a line: human-readable, or JSON objects with `--log-json`. Never a secret:
    callers pass names, states and counts, not form values or passwords."""

    def __init__(self, clock: Clock, as_json: bool = False, stream: TextIO | None = None):
        self.clock, self.as_json, self.stream = clock, as_json, stream or sys.stderr

    def __call__(self, event: str, **fields) -> None:
        now = local(self.clock.now())
        if self.as_json:
            line = json.dumps({"at": now.isoformat(timespec="seconds"), "event": event, **fields},
                              ensure_ascii=False, default=str)
        else:
            line = f"{now:%Y-%m-%d %H:%M:%S} {event}" + "".join(f" {k}={v}" for k, v in fields.items())
        print(line, file=self.stream, flush=True)


class Daemon:
    def __init__(self, db: Database, config: Config, clock: Clock, calendar: WorkCalendar,
                 targets_for: Callable[[Database, m.Campaign], dict[int, Target]], log: EventLog,
                 *, tick_seconds: float = 30.0, identity: str = ""):
        self.db, self.config, self.clock, self.calendar = db, config, clock, calendar
        self.targets_for = targets_for
        self.log = log
        self.tick_seconds = tick_seconds
        self.identity = identity
        self.browser: Browser | None = None
        self.evidence = EvidenceStore(config.paths.evidence_dir)
        self.sessions = SessionStore(config.paths.sessions_dir)
        # Unattended: no one at the terminal. A configured solver answers captchas; without
        # one the letter waits for the inspector and the campaign goes on.
        self.captcha = configured_answerer(config.captcha.solver)
        self._busy = asyncio.Lock()
        # Letters being submitted by this process: never expired under its feet.
        self.in_flight: set[int] = set()
        # Who this daemon is to the others sharing the database (leases, the scheduler's jobs).
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._mail_stop = threading.Event()

    # -- the work ---------------------------------------------------------------------------
    def expire_claims(self) -> int:
        """Claims whose lease ran out: the process that held them is gone. Without a final click
        recorded, nothing can have been sent: the letter is planned again (the attempt counts).
        With one, whether the letter reached the site is unknown: `submit_uncertain`, looked for
        on the public list, never retried; the inspector decides."""
        now = self.clock.now()
        n = 0
        with self.db.session() as s:
            stale = s.scalars(select(m.Letter).where(m.Letter.state == LetterState.SUBMITTING,
                                                     m.Letter.lease_until < now,
                                                     m.Letter.id.not_in(self.in_flight))).all()
            for letter in stale:
                # The WHERE makes this a no-op if someone else resolved it, or renewed its lease
                # (the holder is alive after all), since the SELECT.
                done = s.execute(update(m.Letter).where(m.Letter.id == letter.id, m.Letter.state == LetterState.SUBMITTING,
                                                        m.Letter.lease_until < now)
                                 .values(lease_until=None)).rowcount
                if not done:
                    continue
                expired = f"claim expired at {local(letter.lease_until or now):%Y-%m-%d %H:%M:%S}"
                if letter.final_click_at is None:
                    letter.planned_at = now
                    letter.failure, letter.failure_kind = "the bot stopped before the final click", FlowOutcome.FAILED
                    transition(s, letter, LetterState.PLANNED, now, f"{expired}: the bot stopped before the final "
                               "click; nothing was sent, planned again")
                    self.log("claim_released", letter=letter.id, reason="claim expired before the final click")
                else:
                    letter.failure, letter.failure_kind = "the bot stopped after the final click", FlowOutcome.UNCERTAIN
                    letter.next_poll_at = now       # look for it (bot.campaign.worker._look_for)
                    transition(s, letter, LetterState.SUBMIT_UNCERTAIN, now,
                               f"{expired}: the bot stopped after the final click "
                               f"({local(letter.final_click_at):%H:%M:%S}); the site may or may not have it "
                               "(never resubmitted)")
                    self.log("submit_uncertain", letter=letter.id, reason="claim expired after the final click")
                n += 1
            s.commit()
        return n

    def start_recurring(self) -> list[str]:
        """Next period's campaign, for every campaign file with a recurrence whose date has come
        (its first working day on or after the rule's date). Named "<series>-<YYYYMMDD>", started
        once: the unique name makes a second start fail harmlessly."""
        from bot.campaign.control import campaign_spec, start_campaign
        from bot.errors import UserError

        today = local(self.clock.now()).date()
        started = []
        with self.db.session() as s:
            due = [c for c in s.scalars(select(m.Campaign)).all()
                   if (c.settings or {}).get("next_campaign") and not (c.settings or {}).get("next_started")
                   and datetime.fromisoformat(c.settings["next_campaign"]).date() <= today]
        for c in due:
            when = datetime.fromisoformat(c.settings["next_campaign"]).date()
            series = c.settings.get("series") or c.name
            name = f"{series}-{when:%Y%m%d}"
            try:
                spec = campaign_spec(c).model_copy(update={"name": name, "start": when})
                cid = start_campaign(self.db, spec, self.clock, self.calendar, self.config)
            except UserError as e:          # ConfigError is one: a site file gone, a name taken
                self.log("recurrence_failed", campaign=c.name, next=name, error=str(e))
                continue
            with self.db.session() as s:
                prev, new = s.get(m.Campaign, c.id), s.get(m.Campaign, cid)
                prev.settings = {**prev.settings, "next_started": name}
                new.settings = {**new.settings, "series": series}
                s.commit()
            started.append(name)
            self.log("campaign_started", campaign=name, series=series, start=when.isoformat())
        return started

    def stop_watching(self) -> int:
        """Letters past their deadline by more than the campaign's `watch_after_deadline` are
        no longer polled (their verdict was fixed at the deadline)."""
        from bot.campaign.lifecycle import deadline_of

        now = self.clock.now()
        n = 0
        with self.db.session() as s:
            for c in s.scalars(select(m.Campaign).where(m.Campaign.state.in_(RUNNING_STATES))).all():
                watch = (c.settings or {}).get("watch_after_deadline_s")
                if watch is None:
                    continue
                for letter in s.scalars(select(m.Letter).where(m.Letter.campaign_id == c.id,
                                                               m.Letter.next_poll_at.is_not(None),
                                                               m.Letter.submitted_at.is_not(None))).all():
                    if now > deadline_of(self.calendar, letter.submitted_at, c) + timedelta(seconds=watch):
                        letter.next_poll_at = None
                        n += 1
            s.commit()
        if n:
            self.log("watch_ended", letters=n)
        return n

    def watch_mail(self) -> list:
        """A watcher (IDLE, bot.mail.watch) per IMAP account of the accounts file: replies and
        acknowledgements by email are recorded within seconds of their arrival, by whichever
        daemon holds the account's lease."""
        from pathlib import Path

        from bot.accounts import load_accounts
        from bot.campaign.lifecycle import Lifecycle
        from bot.mail.channel import sync_mail
        from bot.mail.watch import AccountWatcher

        path = Path(self.config.paths.accounts_file)
        if not path.exists():
            return []
        accounts = load_accounts(path)
        catchall = sorted({i.catchall_domain for i in accounts.identity if i.catchall_domain})
        apply = Lifecycle(self.calendar).apply

        def sync(reader):
            return sync_mail(self.db, reader, self.evidence, self.clock, apply=apply, catchall_domains=catchall)

        watchers = [AccountWatcher(self.db, acct, self.id, self.clock, sync, self.log, self._mail_stop)
                    for acct in accounts.imap]
        for w in watchers:
            w.start()
        return watchers

    def hold_presence(self) -> bool:
        """This daemon's lease of presence, renewed every tick (the others see it alive)."""
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        ttl = timedelta(seconds=max(3 * self.tick_seconds, PRESENCE_MIN_S) * speed)
        return leases.take(self.db, f"daemon:{self.id}", self.id, ttl, self.clock.now(),
                           detail={"host": socket.gethostname(), "pid": os.getpid()})

    def refuse_a_second_on_sqlite(self) -> None:
        """Several daemons share work through PostgreSQL; SQLite has one writer at a time and is
        for one daemon. A second one on it is refused, in one line."""
        if self.db.engine.dialect.name != "sqlite":
            return
        others = [x for x in leases.holders(self.db, "daemon:", self.clock.now())
                  if x.holder != self.id and _alive(x.detail or {})]
        if others:
            d = others[0].detail or {}
            raise UserError(f"another daemon (host {d.get('host', '?')}, pid {d.get('pid', '?')}) is running on this "
                            f"SQLite database ({self.db.url}); several daemons need PostgreSQL "
                            "(database.url = postgresql+psycopg://...)")

    def maintenance_turn(self) -> bool:
        """Claims expiring, recurrences starting, watches ending: done by one daemon at a time."""
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        ttl = timedelta(seconds=max(2 * self.tick_seconds, 5.0) * speed)
        return leases.take(self.db, "job:maintenance", self.id, ttl, self.clock.now())

    def hold_outside_window(self, campaign: m.Campaign) -> int:
        """Letters of a campaign file that fell due outside its send window (the daemon was down
        over a weekend, a retry's backoff ran into the night) wait for the next window, in their
        order and the host spacing apart: a letter goes out only inside the window of a working day."""
        from bot.campaign.control import SOURCE, campaign_spec
        from bot.campaign.window import inside, next_opening
        from bot.campaign.worker import SUBMITTABLE

        if (campaign.settings or {}).get("source") != SOURCE or "spec" not in campaign.settings:
            return 0
        window = campaign_spec(campaign).send_window
        now = self.clock.now()
        if inside(window, self.calendar, now):
            return 0
        opens = next_opening(window, self.calendar, now)
        gap = timedelta(seconds=campaign.settings.get("rate_per_host_s") or 0)
        with self.db.session() as s:
            due = s.scalars(select(m.Letter).where(m.Letter.campaign_id == campaign.id,
                                                   m.Letter.state.in_(SUBMITTABLE), m.Letter.planned_at <= now)
                            .order_by(m.Letter.planned_at, m.Letter.id)).all()
            for i, letter in enumerate(due):
                letter.planned_at = opens + gap * i
            s.commit()
        if due:
            self.log("held", campaign=campaign.name, letters=len(due), until=local(opens).isoformat())
        return len(due)

    async def tick(self) -> None:
        if self._busy.locked():
            return
        async with self._busy:
            self.hold_presence()
            if self.maintenance_turn():
                self.expire_claims()
                self.start_recurring()
                self.stop_watching()
            with self.db.session() as s:
                campaigns = s.scalars(select(m.Campaign).where(m.Campaign.state.in_(RUNNING_STATES))
                                      .order_by(m.Campaign.id)).all()
            for campaign in campaigns:
                try:
                    targets = self.targets_for(self.db, campaign)
                except UserError as e:      # one campaign's broken site file stops only that one
                    self.log("campaign_skipped", campaign=campaign.name, error=str(e))
                    continue
                every = timedelta(seconds=(campaign.settings or {}).get("poll_every_s", 7200))
                worker = CampaignWorker(self.db, self.clock, self.browser, self.evidence, self.calendar, targets,
                                        captcha=self.captcha, poll=PollPolicy(self.calendar, every=every),
                                        sessions=self.sessions, identity_name=self.identity,
                                        in_flight=self.in_flight,
                                        per_host_spacing=timedelta(seconds=(campaign.settings or {}).get(
                                            "rate_per_host_s") or 0) or None,
                                        on_event=lambda kind, letter, c=campaign.name: self.log(
                                            kind, campaign=c, letter=letter.id, state=letter.state,
                                            **({"reason": letter.failure} if kind == "submit_error" else {})),
                                        on_error=lambda letter_id, e, c=campaign.name: self.log(
                                            "letter_error", campaign=c, letter=letter_id,
                                            error=f"{type(e).__name__}: {e}"))
                self.hold_outside_window(campaign)
                subs, polls = await worker.run_due(campaign.id)
                if subs or polls:
                    self.log("tick", campaign=campaign.name, submissions=subs, polls=polls)

    # -- the process ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        global _current
        # A tick still running when the next is due is skipped by design (max_instances=1):
        # not worth a warning line every time.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        self.db.ensure_schema()
        if stop.is_set():
            self.log("stopped", reason="signal before start")
            return
        self.refuse_a_second_on_sqlite()
        self.hold_presence()
        async with Browser.from_config(self.config.browser, headless=True) as browser:
            self.browser = browser
            _current = self
            scheduler = _scheduler_class()(
                jobstores={"default": SQLAlchemyJobStore(engine=self.db.engine, tablename="apscheduler_jobs")},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
            # One job store for every daemon of the database; each has a tick job of its own
            # (`tick:<id>`, which only it performs: the others see it and pass), and the jobs of
            # daemons that are gone are removed.
            scheduler.add_job("bot.daemon:tick_job", "interval", args=[self.id], seconds=self.tick_seconds,
                              id=f"tick:{self.id}", replace_existing=True, next_run_time=datetime.now().astimezone())
            scheduler.start()
            self._forget_gone_daemons(scheduler)
            watchers = self.watch_mail()
            self.log("started", tick_seconds=self.tick_seconds, daemon=self.id, mail_accounts=len(watchers))
            try:
                await stop.wait()
            finally:
                scheduler.pause()               # no new work ...
                self.log("stopping", reason="signal")
                self._mail_stop.set()
                async with self._busy:          # ... and the work in hand finishes first
                    pass
                for w in watchers:
                    await asyncio.to_thread(w.join, 30)
                scheduler.remove_job(f"tick:{self.id}")
                scheduler.shutdown(wait=False)
                leases.give_back(self.db, f"daemon:{self.id}", self.id)
                _current = None
                self.log("stopped")

    def _forget_gone_daemons(self, scheduler) -> None:
        """The stored tick jobs of daemons without a live presence (killed, their machine gone),
        and the job names of older versions (`tick`, `mail`)."""
        alive = {x.holder for x in leases.holders(self.db, "daemon:", self.clock.now())} | {self.id}
        for job in scheduler.get_jobs():
            if job.id in ("tick", "mail") or (job.id.startswith("tick:") and job.id[len("tick:"):] not in alive):
                scheduler.remove_job(job.id)


async def tick_job(daemon_id: str = "") -> None:
    """APScheduler's stored reference: the due work of the daemon whose job it is (every daemon's
    scheduler sees every daemon's job in the shared store; only its own daemon does the work)."""
    if _current is not None and (not daemon_id or daemon_id == _current.id):
        await _current.tick()


def _alive(detail: dict) -> bool:
    """Whether the daemon a presence lease names still runs: on this machine its process is
    looked for (a daemon killed before its lease ran out is not in the way of its restart); on
    another machine, its lease is all there is to go by."""
    if detail.get("host") != socket.gethostname() or not detail.get("pid"):
        return True
    try:
        os.kill(int(detail["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_until_signalled(daemon: Daemon) -> None:
    from bot import shutdown

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in shutdown.SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        if shutdown.requested.is_set():         # it came while the program was starting
            stop.set()
        await daemon.run(stop)

    asyncio.run(main())


def _scheduler_class():
    # Imported when a daemon starts, not with the CLI.
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.schedulers.base import STATE_STOPPED

    class Scheduler(AsyncIOScheduler):
        """APScheduler 3.11's asyncio scheduler, except that a wake-up queued just before
        `shutdown` and run just after it does nothing: as it is, it looks at the job store once
        more and then fails on the event loop it has let go (a traceback on every stop)."""

        def _process_jobs(self):
            if self.state == STATE_STOPPED:
                return None
            return super()._process_jobs()

    return Scheduler
