"""`mailbox-bot letters preview --site S`: example letters for one site, to see what it will get.

Nothing is sent and nothing is stored. The site is a site file (path, key or name in
scenarios/sites), whose merged scenario gives the limits and the region; or a site that has no
file yet: its name with `--platform` (the template's limits) and `--region`.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from bot.cli.common import app_state, print_json
from bot.errors import UserError
from bot.scenario.schema import Limits

app = typer.Typer(help="Letters the bot writes: preview them for a site before a campaign sends any.",
                  no_args_is_help=True)

MAX_N = 200


@dataclass
class Target:
    name: str
    region: str
    limits: "Limits"
    source: str


def resolve_site(site: str, scenarios_dir: Path, platform: str | None = None, region: str = "") -> Target:
    """A site file (path, key or name in scenarios/sites), else a named site of `platform`."""
    from bot.cli.replay_cmd import find_site_file
    from bot.scenario.loader import load_platform, load_site, scenario_for

    path_like = Path(site).suffix == ".toml" or Path(site).exists()
    try:
        path = find_site_file(site, scenarios_dir)
    except UserError as e:
        if path_like:
            raise UserError(str(e).replace("SITE:", "--site:", 1)) from None
        path = None
    if path is not None:
        record = load_site(path)
        scenario = scenario_for(record, scenarios_dir, where=str(path))
        return Target(record.name, record.region, scenario.limits,
                      f"site file {path} (platform {scenario.platform})")
    if not platform:
        raise UserError(f"--site: {site!r} is neither a site file nor a site in {Path(scenarios_dir) / 'sites'} "
                        "(give a path, a key or a site's name; for a site without a file, its name with "
                        "--platform and --region)")
    return Target(site, region, load_platform(platform, scenarios_dir).limits, f"no site file (platform {platform})")


@app.command()
def preview(
    site: str = typer.Option(..., "--site", metavar="SITE",
                             help="Site file path, its key or name in scenarios/sites; or a site's name with --platform."),
    n: int = typer.Option(5, "--n", metavar="N", help=f"How many letters (1-{MAX_N})."),
    seed: str = typer.Option(None, "--seed", metavar="X", help="Seed: the same seed gives the same letters (default: a new one, printed)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    platform: str = typer.Option(None, "--platform", metavar="P",
                                 help="For a site without a site file: its platform template (limits)."),
    region: str = typer.Option("", "--region", metavar="R", help="For a site without a site file: its region (addresses)."),
) -> None:
    """Print N example letters for a site: category, title, body, name, phone, address. Nothing is sent."""
    from bot.letters import BankExhausted, LetterWriter, field_for

    if not 1 <= n <= MAX_N:
        raise UserError(f"--n: {n} is out of range (expected 1 to {MAX_N})")
    target = resolve_site(site, Path(app_state.config.paths.scenarios_dir), platform, region)
    seed = seed if seed is not None else secrets.token_hex(4)
    writer = LetterWriter(seed)
    try:
        letters = [writer.write(target.name, target.region, target.limits) for _ in range(n)]
    except BankExhausted as e:
        raise UserError(f"--n: {e}") from None
    field = field_for(target.name)
    lim = target.limits
    if as_json:
        print_json({"site": target.name, "region": target.region, "field": field.key, "seed": seed,
                    "source": target.source,
                    "limits": {"title": [lim.title_min, lim.title_max], "body": [lim.body_min, lim.body_max]},
                    "letters": [asdict(c) for c in letters]})
        return
    typer.echo(f"{target.name} · region {target.region or '(none)'} · field {field.label} ({field.key}) · "
               f"title {lim.title_min}-{lim.title_max}, body {lim.body_min}-{lim.body_max} characters · "
               f"seed {seed} · from {target.source}")
    for i, c in enumerate(letters, start=1):
        typer.echo("")
        typer.echo(f"--- letter {i}/{n} · {c.category} · {c.topic} ({c.template}) ---")
        typer.echo(f"标题: {c.title}")
        typer.echo(f"姓名: {c.name}  电话: {c.phone}  邮箱: {c.email}")
        typer.echo(f"地址: {c.address}")
        typer.echo(f"正文: {c.body}")
