"""`mailbox-bot check [SITE...]`: does every selector and marker the flows use still resolve?

Run before a campaign and after a site's redesign. Nothing is sent: the submission flow is run
as a dry run (it stops before the final click) and the query flow with a code no letter has,
which must come back as the site's "not found" (or its refusal), not as a broken step.

Where the database holds a letter of the site whose reply the site shows, its query page is
read live and every `time_formats.reply_time` entry is tried on the reply time shown: a site
that changed its format (2024-04-26 -> 2024/04/26) is found here, not in a report.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bot.cli.common import app_state

HELP = "Check that each site's form and query page still match its scenario (nothing is sent); exit 1 if any is broken."

def check(
    sites: list[str] = typer.Argument(None, metavar="[SITE]...", help="Site files, keys or names (default: every file in scenarios/sites)."),
    timeout_ms: int = typer.Option(8000, "--timeout-ms", help="How long each step may wait."),
    out: str = typer.Option("check-out", "--out", metavar="DIR", help="Evidence of what was checked."),
) -> None:
    """Check that each site's form and query page still match its scenario (nothing is sent); exit 1 if any is broken."""
    from bot.cli.replay_cmd import find_site_file
    from bot.scenario.loader import load_site, scenario_for, valid_on

    scenarios_dir = Path(app_state.config.paths.scenarios_dir)
    paths = [find_site_file(s, scenarios_dir) for s in sites] if sites else sorted((scenarios_dir / "sites").glob("*.toml"))
    records = [(load_site(p), p) for p in paths]
    if not sites:
        # Every site as it is today: a record replaced by a newer one (valid_to) is history.
        from bot.clock import SystemClock, local

        kept = valid_on([r for r, _ in records], local(SystemClock().now()).date())
        records = [(r, p) for r, p in records if any(r is k for k in kept)]
    targets = []
    for record, p in records:
        scenario = scenario_for(record, scenarios_dir, where=str(p)).model_copy(update={"timeout_ms": timeout_ms})
        targets.append((record, scenario))
    broken = asyncio.run(_check_all(targets, Path(out)))
    typer.echo(f"{len(targets)} site(s) checked, {len(broken)} broken")
    raise typer.Exit(1 if broken else 0)


async def _check_all(targets, out: Path) -> list[str]:
    from bot.browser.engine import FlowRunner
    from bot.browser.pool import Browser
    from bot.scaffold import LooksOnly, dry_run_submit, probe_variables
    from bot.store.evidence import EvidenceStore

    config = app_state.config
    evidence = EvidenceStore(out / "evidence")
    broken: list[str] = []
    async with Browser.from_config(config.browser) as browser:
        for record, scenario in targets:
            for kind in record.mailboxes:
                # A made-up letter that is never stored or sent, with a code no site has issued.
                async with browser.page() as page:
                    form = await dry_run_submit(page, record, scenario, kind, evidence)
                runner = FlowRunner(scenario, evidence, captcha=LooksOnly(), site_name=record.name)
                # The query page with a code no site issued, or (a board) the list for a title no
                # letter has: either must say "not there", not break.
                look = "query" if "query" in scenario.flows else "list"
                async with browser.page() as page:
                    query = await runner.run(page, look, probe_variables(record, scenario, kind))
                where = f"{record.name} {record.mailbox_label(kind)}"
                problems = []
                if not form.ok:
                    problems.append(f"form: {form.problem()}")
                if query.outcome not in ("not_found", "not_covered", "rejected"):
                    problems.append(f"{look}: {query.failed_step or query.outcome}: "
                                    f"{query.message or 'a made-up letter was not refused'}")
                problems += await _check_time_formats(browser, evidence, record, scenario, kind, where)
                if problems:
                    broken.append(where)
                    for p in problems:
                        typer.echo(f"BROKEN {where}: {p}")
                else:
                    typer.echo(f"ok     {where}")
    return broken


async def _check_time_formats(browser, evidence, record, scenario, kind: str, where: str) -> list[str]:
    """Every reply-time format against the time the live query page shows for a replied letter
    of this mailbox; says so when there is no such letter to look at."""
    from bot.browser.engine import FlowRunner
    from bot.scenario.times import parse_time
    from bot.vocab import FlowOutcome

    variables = _replied_letter_variables(record, scenario, kind)
    if variables is None:
        typer.echo(f"note   {where}: time_formats not checked: no letter of this mailbox with a reply shown "
                   "on its query page in the database")
        return []
    look = "query" if "query" in scenario.flows else "list"
    async with browser.page(fresh=False) as page:
        result = await FlowRunner(scenario, evidence, site_name=record.name).run(page, look, variables)
    raw = result.values.get("reply_time")
    if result.outcome != FlowOutcome.FOUND or not raw:
        typer.echo(f"note   {where}: time_formats not checked: the query page showed no reply time "
                   f"({result.outcome}{': ' + result.message if result.message else ''})")
        return []
    formats = scenario.time_formats.reply_time
    reads = [f for f in formats if parse_time(raw, [f])[0] is not None]
    for f in formats:
        typer.echo(f"       {where}: time format {f!r} {'reads' if f in reads else 'does not read'} {raw!r}")
    if not reads:
        return [f"time_formats: none of {formats} reads the reply time {raw!r} the query page shows "
                "(add its format to [overrides.time_formats] reply_time)"]
    return []


def _replied_letter_variables(record, scenario, kind: str) -> dict | None:
    """Flow variables of the latest letter to this site's mailbox whose query showed a reply."""
    from sqlalchemy import select

    from bot.campaign.worker import Target, flow_variables
    from bot.store import models as m
    from bot.vocab import SITE_CHANNELS

    if not app_state.database_exists():
        return None
    with app_state.db.session() as s:
        letters = s.scalars(select(m.Letter).join(m.Mailbox).join(m.Site).where(
            m.Site.key == record.key, m.Mailbox.kind == kind, m.Letter.tracking_code.is_not(None))
            .order_by(m.Letter.submitted_at.desc())).all()
        for letter in letters:
            if any(o.channel in SITE_CHANNELS and o.replied and o.displayed_raw for o in letter.observations):
                return flow_variables(letter, Target(record=record, scenario=scenario, site_id=letter.mailbox.site_id))
    return None
