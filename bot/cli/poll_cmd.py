"""`mailbox-bot poll [CAMPAIGN] [--letter ID]`: look at open letters now, whatever their schedule.

For the inspector who has just been told "we replied" on the phone, or who wants to see a
campaign's state before writing the report: every open letter of the campaign (or of every
running campaign, or one letter) is polled once, now, and what changed is printed. The letters'
schedules continue from there; nothing is ever sent.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer

from bot.cli.common import app_state
from bot.errors import UserError

HELP = "Poll open letters now (a campaign's, every running campaign's, or one) and print what changed."


def poll(
    campaign: str = typer.Argument(None, metavar="[CAMPAIGN]", help="Campaign name (default: every running campaign)."),
    letter: int = typer.Option(None, "--letter", metavar="ID", help="Only this letter (its id, as the report's letter_id)."),
) -> None:
    """Poll open letters now (a campaign's, every running campaign's, or one) and print what changed."""
    changes = asyncio.run(_poll(campaign, letter))
    raise typer.Exit(1 if any(c.error for c in changes) else 0)


class Change:
    def __init__(self, letter_id: int, site: str, label: str, before: str, after: str, outcome: str, message: str):
        self.letter_id, self.site, self.label = letter_id, site, label
        self.before, self.after, self.outcome, self.message = before, after, outcome, message

    @property
    def error(self) -> bool:
        return self.outcome in ("error", "blocked")

    def line(self) -> str:
        head = f"letter {self.letter_id} {self.site} {self.label}:"
        if self.after != self.before:
            what = {"replied": "reply found", "deleted": "deleted (covered misses)", "submitted": "seen again"
                    if self.before in ("deleted", "never_visible") else "found on the public list"}.get(self.after, self.after)
            return f"{head} {self.before} -> {self.after}: {what}"
        if self.error:
            return f"{head} {self.outcome}: {self.message or 'no answer'} (still {self.after})"
        return f"{head} still {self.after} ({self.outcome}{': ' + self.message if self.message else ''})"


async def _poll(campaign_name: str | None, letter_id: int | None) -> list[Change]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from sqlalchemy import select

    from bot.browser.pool import Browser
    from bot.campaign.control import build_targets, get_campaign, running_campaigns
    from bot.campaign.lifecycle import PollPolicy
    from bot.campaign.worker import OPEN_STATES, CampaignWorker
    from bot.store import models as m
    from bot.store.evidence import EvidenceStore
    from bot.vocab import LetterState

    db, config, clock, calendar = app_state.db, app_state.config, app_state.clock, app_state.calendar()
    lookable = (*OPEN_STATES, LetterState.SUBMIT_UNCERTAIN)
    with db.session() as s:
        if letter_id is not None:
            one = s.get(m.Letter, letter_id)
            if one is None:
                raise UserError(f"--letter: no letter with id {letter_id}")
            if one.state not in lookable:
                raise UserError(f"--letter: letter {letter_id} is {one.state}: nothing to look for "
                                f"(open letters are {', '.join(lookable)})")
            names = [one.campaign.name]
        elif campaign_name is not None:
            names = [get_campaign(s, campaign_name).name]
        else:
            names = running_campaigns(db)
        work: list[tuple[str, int]] = []
        for name in names:
            camp = get_campaign(s, name)
            ids = [letter_id] if letter_id is not None else list(s.scalars(
                select(m.Letter.id).where(m.Letter.campaign_id == camp.id, m.Letter.state.in_(lookable))
                .order_by(m.Letter.id)))
            work += [(name, i) for i in ids]
    if not work:
        typer.echo("no open letter to poll" + (f" in campaign {campaign_name}" if campaign_name else ""))
        return []
    before = _snapshot(db, [i for _, i in work])
    evidence = EvidenceStore(config.paths.evidence_dir)
    async with Browser.from_config(config.browser) as browser:
        workers = {}
        for name in dict.fromkeys(n for n, _ in work):
            with db.session() as s:
                camp = get_campaign(s, name)
                every = (camp.settings or {}).get("poll_every_s", 7200)
            workers[name] = CampaignWorker(db, clock, browser, evidence, calendar, build_targets(db, name),
                                           poll=PollPolicy(calendar, every=timedelta(seconds=every)))
        with Progress(TextColumn("polling"), BarColumn(), MofNCompleteColumn(), transient=True,
                      console=_stderr()) as bar:
            task = bar.add_task("poll", total=len(work))

            async def one(name: str, i: int) -> None:
                await workers[name].poll(i, now=True)
                bar.advance(task)

            await asyncio.gather(*(one(n, i) for n, i in work))
    after = _snapshot(db, [i for _, i in work])
    changes = []
    for _, i in work:
        site, label, state0, _ = before[i]
        _, _, state1, last = after[i]
        outcome, message = last
        changes.append(Change(i, site, label, state0, state1, outcome, message))
        typer.echo(changes[-1].line())
    changed = sum(1 for c in changes if c.after != c.before)
    typer.echo(f"{len(changes)} letter(s) polled, {changed} changed, {sum(c.error for c in changes)} could not be read")
    return changes


def _snapshot(db, ids: list[int]) -> dict[int, tuple[str, str, str, tuple[str, str]]]:
    """letter id -> (site, mailbox label, state, (last look's outcome, its message))."""
    from bot.store import models as m

    out = {}
    with db.session() as s:
        for i in ids:
            x = s.get(m.Letter, i)
            last = x.observations[-1] if x.observations else None
            look = (str(last.outcome), (last.detail or {}).get("message", "")) if last is not None else ("", "")
            out[i] = (x.mailbox.site.name, x.mailbox.label, str(x.state), look)
    return out


def _stderr():
    from rich.console import Console

    return Console(stderr=True)
