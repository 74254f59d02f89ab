"""`mailbox-bot scaffold URL`: a new site file, and the saved pages its test replays.

Like Scrapy's genspider, or city-scrapers' scaffold: start from the site's URL and a platform
template, get a site file that loads and a recorded dry run of its form (nothing is sent) that
`tests/test_saved_sites.py` replays offline from then on.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import typer

from bot.cli.common import app_state
from bot.errors import UserError

HELP = ("Start a site file from its URL and platform template, and save its form pages for the replay "
        "test (a dry run: nothing is sent); exit 1 if the form does not match the template.")


def scaffold(
    url: str = typer.Argument(..., help="The site's base URL: the part before /leader/ or /mayor/."),
    platform: str = typer.Option(None, "--platform", metavar="P", help="Platform template in scenarios/platforms (e.g. jact)."),
    name: str = typer.Option(None, "--name", metavar="NAME", help="The site's name as the notice writes it, e.g. 宝鸡市教育局."),
    key: str = typer.Option(None, "--key", metavar="KEY", help="File name of the site (default: a slug of the URL's host and path)."),
    group: str = typer.Option("政府门户网站", "--group", metavar="G", help="The notice's group: 政府门户网站, 市级部门网站, ..."),
    mailbox: list[str] = typer.Option(None, "--mailbox", metavar="leader|mayor", help="A mailbox the site has; repeat for both (default: both)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing site file."),
    pages_only: bool = typer.Option(False, "--pages-only",
                                    help="Record the pages again for the existing site file KEY (e.g. after fixing its overrides); the file is not rewritten."),
    sites_dir: Path = typer.Option(None, "--sites-dir", metavar="DIR", help="Where site files go (default: scenarios/sites)."),
    pages_dir: Path = typer.Option(None, "--pages-dir", metavar="DIR", help="Where saved pages go (default: tests/files next to scenarios/)."),
    timeout_ms: int = typer.Option(8000, "--timeout-ms", help="How long each step may wait."),
    out: Path = typer.Option(Path("scaffold-out"), "--out", metavar="DIR", help="Screenshots and HTML of the dry run."),
) -> None:
    """Start a site file from its URL and platform template, and save its form pages for the replay test (a dry run: nothing is sent)."""
    from pydantic import ValidationError

    from bot.config import describe_validation_error
    from bot.scaffold import base_url_of, check_key, key_from_url, site_file_text, write_text_atomic
    from bot.scenario.loader import load_platform_data, load_site, scenario_for
    from bot.scenario.schema import SiteRecord

    scenarios_dir = Path(app_state.config.paths.scenarios_dir)
    sites_dir = sites_dir or scenarios_dir / "sites"
    pages_dir = pages_dir or scenarios_dir.parent / "tests" / "files"
    base_url = base_url_of(url)
    key = check_key(key) if key else key_from_url(base_url)
    site_file = sites_dir / f"{key}.toml"

    if pages_only:
        if not site_file.is_file():
            raise UserError(f"--pages-only: no site file {site_file} (scaffold it first, without --pages-only)")
        record = load_site(site_file)
    else:
        if not platform:
            raise UserError("--platform is required (a template in scenarios/platforms, e.g. jact)")
        if not name or not name.strip():
            raise UserError("--name is required (the site's name as the notice writes it)")
        template, template_path = load_platform_data(platform, scenarios_dir)   # unknown: lists the known
        from bot.vocab import MailboxKind

        kinds = list(dict.fromkeys(mailbox or ["leader", "mayor"]))
        for k in kinds:
            if k not in tuple(MailboxKind):
                raise UserError(f"--mailbox: {k!r} is not a mailbox (expected {', '.join(MailboxKind)})")
        if site_file.exists() and not force:
            raise UserError(f"{site_file} already exists (use --force to overwrite it, or --key for another name)")
        try:
            record = SiteRecord(key=key, name=name.strip(), group=group, base_url=base_url, platform=platform,
                                platform_version=template.get("version", 1), mailboxes=kinds)
        except ValidationError as e:
            raise describe_validation_error(e, "scaffold") from None
        write_text_atomic(site_file, site_file_text(record, f"platforms/{template_path.name}"))
        record = load_site(site_file)     # what was written is what loads
        typer.echo(f"wrote {site_file}")
    scenario = scenario_for(record, scenarios_dir, where=str(site_file))

    site_pages = pages_dir / key
    runs = asyncio.run(_record(record, scenario, site_pages, out, timeout_ms))
    failed = [(run, part) for run, part in runs if not run.ok]
    if failed:
        for run, part in runs:
            part.unlink(missing_ok=True)
        for run, _part in failed:
            typer.echo(f"FAILED {record.name} {record.mailbox_label(run.mailbox)} ({run.mailbox}): {run.problem()}", err=True)
            for ev in run.result.evidence:
                typer.echo(f"  {ev.kind}: {out / 'evidence' / ev.path}", err=True)
        typer.echo(f"pages not saved. Put the site's own selectors under [overrides.selectors] in {site_file}, "
                   f"then: mailbox-bot scaffold {base_url} --key {key} --pages-only", err=True)
        raise typer.Exit(1)

    # Replace the site's saved pages as a whole: a mailbox dropped since the last time leaves no HAR.
    for old in site_pages.glob("*.har"):
        old.unlink()
    for run, part in runs:
        har = site_pages / f"{run.mailbox}.har"
        part.replace(har)
        typer.echo(f"saved {har} ({har.stat().st_size // 1024} KB; dry run: {len(run.fields)} fields filled, nothing sent)")
    shutil.copyfile(site_file, site_pages / "site.toml")
    typer.echo(f"saved {site_pages / 'site.toml'} (the copy the saved-page test loads)")
    typer.echo(f"next: pytest tests/test_saved_sites.py -k {key}   # replays the saved form offline")
    typer.echo(f"      mailbox-bot check {site_file}   # the query page too, with a made-up code")


async def _record(record, scenario, site_pages: Path, out: Path, timeout_ms: int):
    from bot.scaffold import chromium, record_pages
    from bot.store.evidence import EvidenceStore

    config = app_state.config
    async with chromium(config.browser.executable_path, headless=config.browser.headless) as browser:
        return await record_pages(browser, record, scenario, site_pages, EvidenceStore(out / "evidence"),
                                  timeout_ms=timeout_ms)
