"""`mailbox-bot replay SITE`: one site's submission flow, step by step, to see or prove it.

A dry run by default: every field is filled, screenshots are kept, and it stops before the
final click. `--submit` sends the letter as a campaign letter, recorded in the database, and
never twice for the same campaign and mailbox; as the `--identity` (its phone and reply address)
when given, and to a site that may be real only so (bot.contact).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import typer

from bot.cli.common import app_state
from bot.contact import contact_problem
from bot.errors import UserError
from bot.vocab import LetterState

HELP = "Replay one site's letter form step by step with timings (dry run unless --submit)."


def find_site_file(site: str, scenarios_dir: Path) -> Path:
    """A path, or a site file's key (file name without .toml) or `name` in scenarios/sites."""
    from bot.scenario.loader import load_site

    p = Path(site)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise UserError(f"SITE: no site file {site}")
        return p
    sites_dir = Path(scenarios_dir) / "sites"
    direct = sites_dir / f"{site}.toml"
    if direct.exists():
        return direct
    for f in sorted(sites_dir.glob("*.toml")):
        if load_site(f).name == site:
            return f
    raise UserError(f"SITE: {site!r} is neither a site file nor a site in {sites_dir}")


def replay(
    site: str = typer.Argument(..., help="Site file path, or its key or name in scenarios/sites."),
    mailbox: str = typer.Option(None, "--mailbox", metavar="leader|mayor", help="Which mailbox (default: the site's first)."),
    headed: bool = typer.Option(False, "--headed", help="Show the browser window."),
    slow_mo: float = typer.Option(None, "--slow-mo", metavar="MS", help="Slow every browser action down by MS milliseconds."),
    trace: str = typer.Option(None, "--trace", metavar="FILE", help="Write a Playwright trace (open with `playwright show-trace FILE`)."),
    submit: bool = typer.Option(False, "--submit", help="Really send the letter (recorded; never twice per campaign and mailbox)."),
    campaign: str = typer.Option(None, "--campaign", metavar="NAME", help="Campaign the submitted letter belongs to (default: replay-YYYY-MM)."),
    out: str = typer.Option(None, "--out", metavar="DIR", help="Screenshots and HTML of the dry run (default: paths.replay_dir, replay-out/ in the workspace)."),
    identity: str = typer.Option("", "--identity", metavar="NAME", help="Inspector identity (accounts file) whose saved login to use (sites behind a login; see `mailbox-bot login`); with --submit, also the letter's name, phone and reply address. Required for --submit to a real site."),
) -> None:
    """Replay one site's letter form step by step with timings (dry run unless --submit)."""
    from bot.scenario.loader import load_site, scenario_for

    config = app_state.config
    path = find_site_file(site, Path(config.paths.scenarios_dir))
    record = load_site(path)
    scenario = scenario_for(record, Path(config.paths.scenarios_dir), where=str(path))
    kind = mailbox or record.mailboxes[0]
    if kind not in record.mailboxes:
        raise UserError(f"--mailbox: {record.name} has no {kind!r} mailbox (it has: {', '.join(record.mailboxes)})")
    sender = None
    if submit:
        # Checked before any browser or database: a real site gets no made-up contact data.
        sender = submit_identity(identity, config) if identity else None
        problem = contact_problem(record.name, record.base_url, sender, key="--identity",
                                  accounts=str(config.paths.accounts_file))
        if problem:
            raise UserError(f"{problem}; nothing was sent", where=str(path))
    out_dir = Path(out) if out else Path(config.paths.replay_dir)
    code = asyncio.run(_replay(record, scenario, kind, path, headed, slow_mo, trace, submit, campaign, out_dir,
                               identity, sender))
    raise typer.Exit(code)


def submit_identity(name: str, config):
    """The `--identity` a submitted letter is sent as, from the accounts file."""
    from bot.accounts import load_accounts

    accounts = load_accounts(config.paths.accounts_file)
    ident = next((i for i in accounts.identity if i.name == name), None)
    if ident is None:
        known = ", ".join(i.name for i in accounts.identity) or "none"
        raise UserError(f"--identity: no identity {name!r} in {config.paths.accounts_file} (defined: {known})")
    return ident


def _printer():
    def on_step(t) -> None:
        typer.echo(f"  {t.index:2d} {t.op:<9} {t.name[:48]:<48} {t.ms:8.1f} ms")
    return on_step


async def _replay(record, scenario, kind, path, headed, slow_mo, trace, submit, campaign, out: Path,
                  identity: str = "", sender=None) -> int:
    from bot.browser.captcha import HeadedCaptcha, TerminalCaptcha
    from bot.login import SessionStore
    from bot.browser.pool import Browser
    from bot.campaign.worker import CampaignWorker, Target, flow_variables
    from bot.clock import local
    from bot.letters import LetterWriter
    from bot.store import models as m
    from bot.store.evidence import EvidenceStore

    config = app_state.config
    clock = app_state.clock       # $MAILBOX_BOT_CLOCK: the same clock as a sandbox played at speed
    # Headed: the inspector types the captcha into the page; else at the terminal.
    captcha = HeadedCaptcha() if headed else TerminalCaptcha(out / "captcha")
    sessions = SessionStore(config.paths.sessions_dir)
    typer.echo(f"{record.name} · {record.mailbox_label(kind)} · platform {scenario.platform} v{scenario.version}"
               + ("" if submit else " · dry run: stops before the final click"))
    async with Browser(config.browser.executable_path, headless=not headed, concurrency=1,
                       slow_mo_ms=slow_mo) as browser:
        if not submit:
            evidence = EvidenceStore(out / "evidence")
            content = LetterWriter(seed=datetime.now().isoformat()).write(record.name, record.region, scenario.limits)
            letter = m.Letter(title=content.title, body=content.body, category=content.category,
                              writer={"name": content.name, "phone": content.phone, "email": content.email,
                                      "password": content.password})
            letter.mailbox = m.Mailbox(kind=kind)
            variables = flow_variables(letter, Target(record=record, scenario=scenario, site_id=0))
            typer.echo(f"  letter: {content.title}")
            worker = CampaignWorker(None, clock, browser, evidence, app_state.calendar(), {},
                                    captcha=captcha, sessions=sessions, identity_name=identity)
            target = Target(record=record, scenario=scenario, site_id=0)
            runner = worker.runner(target, on_step=_printer())
            async with browser.page(trace_path=trace, storage_state=worker.login_state(target)) as page:
                result = await runner.run(page, "submit", variables, dry_run=True)
            for ev in result.evidence:
                typer.echo(f"  {ev.kind}: {evidence.path(ev.path)}")
            if trace:
                typer.echo(f"  trace: {trace}")
            if result.outcome != "dry_run":
                typer.echo(f"stopped: {result.outcome} at {result.failed_step}: {result.message}", err=True)
                return 1
            typer.echo("dry run complete: every field filled, nothing sent")
            return 0

        from sqlalchemy import select

        from bot.campaign.sites import register_site

        db = app_state.db
        name = campaign or f"replay-{local(clock.now()):%Y-%m}"
        evidence = EvidenceStore(config.paths.evidence_dir)
        with db.session() as s:
            site_row = register_site(s, record, 0, source=str(path))
            camp = s.scalar(select(m.Campaign).where(m.Campaign.name == name))
            if camp is None:
                # The daemon polls this letter with the templates of this workspace.
                camp = m.Campaign(name=name, created_at=clock.now(), deadline_workdays=5,
                                  settings={"source": "replay", "scenarios_dir": config.paths.scenarios_dir})
                s.add(camp)
            s.commit()
            target = Target(record=record, scenario=scenario, site_id=site_row.id)
            mailbox_id = next(mb.id for mb in site_row.mailboxes if mb.kind == kind)
        worker = CampaignWorker(db, clock, browser, evidence, app_state.calendar(), {target.site_id: target},
                                captcha=captcha, sessions=sessions, identity_name=identity)
        with db.session() as s:
            worker.plan(s.get(m.Campaign, camp.id), LetterWriter(seed=f"{name}/{record.key}/{kind}"),
                        at=clock.now(), identity=sender, only_mailbox=kind)
            letter_id = s.scalar(select(m.Letter.id).where(m.Letter.campaign_id == camp.id,
                                                           m.Letter.mailbox_id == mailbox_id))
        state = await worker.submit(letter_id, on_step=_printer(), trace_path=trace)
        with db.session() as s:
            letter = s.get(m.Letter, letter_id)
            if state == "not_claimed":
                typer.echo(f"not sent: campaign {name} already has a letter for this mailbox "
                           f"(letter {letter.id}, {letter.state}"
                           + (f", tracking code {letter.tracking_code}" if letter.tracking_code else "") + ")", err=True)
                return 1
            last = letter.events[-1]
            typer.echo(f"letter {letter.id} in campaign {name}: {letter.state} — {last.reason}")
            if letter.next_poll_at is not None:
                typer.echo(f"next poll: {local(letter.next_poll_at):%Y-%m-%d %H:%M} (by `mailbox-bot run`; "
                           f"or now: mailbox-bot poll {name})")
            return 0 if letter.state == LetterState.SUBMITTED else 1
