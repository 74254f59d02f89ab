"""Every saved site replays offline: its form still matches its platform template.

`mailbox-bot scaffold` saves, per site, `tests/files/<key>/<mailbox>.har` (every request and
response of a dry run of the submit flow) and `tests/files/<key>/site.toml` (a copy of the site
file at the time). Here each HAR is served back to the real Chromium by `route_from_har` with
`not_found="abort"`: no server runs and no request leaves the machine. The dry run must reach the
final click with every field holding what was typed. A template change that breaks a known site
fails here, by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, run_async

from bot.scaffold import chromium, replay_saved
from bot.scenario.loader import load_site, scenario_for
from bot.store.evidence import EvidenceStore

FILES = Path(__file__).resolve().parent / "files"


def saved_pages(files: Path = FILES) -> list[tuple[str, str, Path]]:
    """(key, mailbox, har) for every HAR that has its site.toml beside it."""
    out = []
    for har in sorted(files.glob("*/*.har")):
        if (har.parent / "site.toml").is_file():
            out.append((har.parent.name, har.stem, har))
    return out


CASES = saved_pages()


def test_at_least_one_site_is_saved():
    # Without this the parametrized test below would silently collect nothing.
    assert CASES, f"no saved site under {FILES} (make one with `mailbox-bot scaffold`)"


@pytest.mark.parametrize(("key", "mailbox", "har"), CASES, ids=[f"{k}-{mb}" for k, mb, _ in CASES])
def test_saved_form_replays_to_a_dry_run(key, mailbox, har, tmp_path):
    record = load_site(har.parent / "site.toml")
    assert mailbox in record.mailboxes, f"{har}: the site file has no {mailbox!r} mailbox"
    scenario = scenario_for(record, REPO / "scenarios", where=str(har.parent / "site.toml"))

    async def replay():
        async with chromium() as browser:
            return await replay_saved(browser, record, scenario, har, mailbox, EvidenceStore(tmp_path),
                                      timeout_ms=5000)

    run = run_async(replay())
    assert run.result.outcome == "dry_run", run.problem()
    assert not run.result.final_clicked
    assert run.fields, "the submit flow filled no field"
    for f in run.fields:
        assert f.actual == f.expected, f"{key} {mailbox}: {f.selector} holds {f.actual!r}, expected {f.expected!r}"
    # The page the flow stopped at is kept as evidence, as in a campaign.
    assert {e.kind for e in run.result.evidence} == {"html", "screenshot"}
