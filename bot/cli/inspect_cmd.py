"""`mailbox-bot inspect pending`: the letters that wait for a person, one by one.

A letter waits for the inspector when its form had a captcha and no one was there to answer
it (an unattended run), or when the site asked for a login and the saved session was missing
or expired. The campaign went on with the others; here the inspector answers them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from bot.cli.common import app_state
from bot.errors import UserError
from bot.vocab import LetterState

app = typer.Typer(help="Letters that wait for the inspector (captcha, login).", no_args_is_help=True)


@app.command()
def pending(
    campaign: str = typer.Option(None, "--campaign", metavar="NAME", help="Only this campaign's letters."),
    list_only: bool = typer.Option(False, "--list", help="Only list them; ask nothing."),
    identity: str = typer.Option("", "--identity", metavar="NAME", help="Inspector identity whose saved logins to use."),
    headed: bool = typer.Option(False, "--headed", help="Answer captchas in a browser window."),
) -> None:
    """List the letters waiting for the inspector, and walk through them: each is tried again
    with the inspector answering its captcha (after `mailbox-bot login` for a login)."""
    from sqlalchemy import select

    from bot.store import models as m

    db = app_state.db
    with db.session() as s:
        q = select(m.Letter).where(m.Letter.state.in_((LetterState.NEEDS_INSPECTOR, LetterState.SUBMIT_UNCERTAIN)),
                                   m.Letter.next_poll_at.is_(None)).order_by(m.Letter.id)
        if campaign:
            camp = s.scalar(select(m.Campaign).where(m.Campaign.name == campaign))
            if camp is None:
                raise UserError(f"--campaign: no campaign named {campaign!r}")
            q = q.where(m.Letter.campaign_id == camp.id)
        rows = [(x.id, x.campaign.name, x.mailbox.site.name, x.mailbox.label,
                 x.failure or "" if x.state == LetterState.NEEDS_INSPECTOR else f"submit_uncertain: {x.events[-1].reason}",
                 x.mailbox.site.source if x.state == LetterState.NEEDS_INSPECTOR else "") for x in s.scalars(q)]
    if not rows:
        typer.echo("no letter is waiting for the inspector")
        return
    for letter_id, camp_name, site, label, why, _ in rows:
        typer.echo(f"letter {letter_id} · {camp_name} · {site} {label}: {why.removeprefix('needs_inspector: ')}")
    if list_only:
        return
    asyncio.run(_walk(rows, identity, headed))


async def _walk(rows, identity: str, headed: bool) -> None:
    from bot.browser.captcha import HeadedCaptcha, TerminalCaptcha
    from bot.browser.pool import Browser
    from bot.campaign.lifecycle import PollPolicy, transition
    from bot.campaign.sites import register_site
    from bot.campaign.worker import CampaignWorker, Target
    from bot.clock import SystemClock
    from bot.login import SessionStore
    from bot.scenario.loader import load_site, scenario_for
    from bot.store import models as m
    from bot.store.evidence import EvidenceStore

    config = app_state.config
    db, clock, calendar = app_state.db, SystemClock(), app_state.calendar()
    captcha = HeadedCaptcha() if headed else TerminalCaptcha(Path(config.paths.sessions_dir).parent / "captcha")
    async with Browser(config.browser.executable_path, headless=not headed, concurrency=1) as browser:
        for letter_id, _camp, site, label, _why, source in rows:
            if _why.startswith("submit_uncertain"):
                # Maybe sent: only the inspector, looking at the site, can say. Never resubmitted here.
                typer.echo(f"letter {letter_id}: may have been sent; check the site before doing anything", err=True)
                continue
            if not source or not Path(source).is_file():
                typer.echo(f"letter {letter_id}: skipped: its site record came from {source or 'nowhere'!r}, "
                           "not a site file", err=True)
                continue
            print(f"letter {letter_id} ({site} {label}): try again now? [y/N/q] ", end="", file=sys.stderr, flush=True)
            answer = (await asyncio.to_thread(sys.stdin.readline)).strip().lower()
            if answer == "q":
                break
            if answer != "y":
                continue
            record = load_site(Path(source))
            scenario = scenario_for(record, Path(config.paths.scenarios_dir), where=source)
            with db.session() as s:
                row = register_site(s, record, 0, source=source)
                letter = s.get(m.Letter, letter_id)
                if letter.state != LetterState.NEEDS_INSPECTOR:
                    continue
                # Nothing was sent: the letter goes back to the queue, claimed again below.
                transition(s, letter, LetterState.PLANNED, clock.now(), "the inspector tries it again")
                s.commit()
                target = Target(record=record, scenario=scenario, site_id=row.id)
            worker = CampaignWorker(db, clock, browser, EvidenceStore(config.paths.evidence_dir), calendar,
                                    {target.site_id: target}, captcha=captcha, poll=PollPolicy(calendar),
                                    sessions=SessionStore(config.paths.sessions_dir), identity_name=identity)
            state = await worker.submit(letter_id)
            typer.echo(f"letter {letter_id}: {state}")
