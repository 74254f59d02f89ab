"""`mailbox-bot evidence export`: a zip of a campaign's evidence to show a site in a dispute."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import app_state, warn

app = typer.Typer(help="The evidence kept for each letter (pages, screenshots, emails).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Keeps `export` a sub-command while it is the only one."""


@app.command()
def export(
    campaign: str = typer.Option(..., "--campaign", metavar="NAME", help="Campaign name."),
    site: str = typer.Option(None, "--site", metavar="SITE", help="Only this site's letters (its name or key)."),
    out: Path = typer.Option(..., "--out", metavar="FILE.zip", help="The zip to write (replaced if it exists)."),
    evidence_dir: Path = typer.Option(None, "--evidence-dir", metavar="DIR",
                                      help="Where the evidence files are (default: paths.evidence_dir of the config)."),
) -> None:
    """Write every evidence file of the campaign's letters into a zip, with an index.html timeline
    (Beijing time) that links each file. The query password is masked; writer details are left out."""
    from bot.evidence_pack import export_evidence

    summary = export_evidence(app_state.db, evidence_dir or Path(app_state.config.paths.evidence_dir), campaign,
                              out, app_state.calendar(), site=site, as_of=app_state.clock.now(),
                              generated_at=app_state.clock.now(), warn=warn)
    typer.echo(summary.line())
