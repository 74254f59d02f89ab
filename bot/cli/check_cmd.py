"""`mailbox-bot check [SITE...]`: does every selector and marker the flows use still resolve?

Run before a campaign and after a site's redesign. Nothing is sent: the submission flow is run
as a dry run (it stops before the final click) and the query flow with a code no letter has,
which must come back as the site's "not found" (or its refusal), not as a broken step.
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
    from bot.browser.engine import Browser, FlowRunner
    from bot.scaffold import LooksOnly, dry_run_submit, probe_variables
    from bot.store.evidence import EvidenceStore

    config = app_state.config
    evidence = EvidenceStore(out / "evidence")
    broken: list[str] = []
    async with Browser(config.browser.executable_path, headless=config.browser.headless,
                       concurrency=config.browser.concurrency) as browser:
        for record, scenario in targets:
            for kind in record.mailboxes:
                # A made-up letter that is never stored or sent, with a code no site has issued.
                async with browser.page() as page:
                    form = await dry_run_submit(page, record, scenario, kind, evidence)
                runner = FlowRunner(scenario, evidence, captcha=LooksOnly(), site_name=record.name)
                async with browser.page() as page:
                    query = await runner.run(page, "query", probe_variables(record, scenario, kind))
                where = f"{record.name} {record.mailbox_label(kind)}"
                problems = []
                if not form.ok:
                    problems.append(f"form: {form.result.failed_step or ''}: {form.problem()}")
                if query.outcome not in ("not_found", "rejected"):
                    problems.append(f"query: {query.failed_step or query.outcome}: {query.message or 'a made-up code was not refused'}")
                if problems:
                    broken.append(where)
                    for p in problems:
                        typer.echo(f"BROKEN {where}: {p}")
                else:
                    typer.echo(f"ok     {where}")
    return broken
