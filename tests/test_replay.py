"""`mailbox-bot replay`: a dry run sends nothing; --submit sends once per campaign and mailbox.

The real CLI in a subprocess drives the real Chromium against a sandbox served from this test.
"""

import os
import stat
import zipfile
from pathlib import Path

import pytest

from bot.clock import SimClock
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox

ROSTER = {
    "campaign": {"name": "r", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [
        {"name": "金台区人民政府", "group": "政府门户网站", "platform": "legacy", "mailboxes": ["leader", "mayor"],
         "slug": "jintai", "reply": {"workdays": 1}},
        {"name": "宝鸡市人民政府", "group": "政府门户网站", "platform": "jact", "mailboxes": ["leader"],
         "slug": "bj", "captcha": True},
    ],
}


@pytest.fixture
def sandbox():
    with Sandbox(roster_from_dict(ROSTER), SimClock(roster_from_dict(ROSTER).campaign.submit_at)) as sb:
        yield sb


def _site_file(tmp_path: Path, sandbox, name: str, platform: str) -> Path:
    f = tmp_path / f"{platform}.toml"
    f.write_text(f'name = "{name}"\ngroup = "政府门户网站"\nbase_url = "{sandbox.base_url(name)}"\n'
                 f'platform = "{platform}"\nmailboxes = ["leader", "mayor"]\n' if platform == "legacy" else
                 f'name = "{name}"\ngroup = "政府门户网站"\nbase_url = "{sandbox.base_url(name)}"\n'
                 f'platform = "{platform}"\nmailboxes = ["leader"]\n', encoding="utf-8")
    return f


def test_dry_run_fills_everything_and_sends_nothing(run_cli, sandbox, tmp_path):
    site = _site_file(tmp_path, sandbox, "金台区人民政府", "legacy")
    r = run_cli("replay", str(site), "--mailbox", "mayor", "--trace", str(tmp_path / "trace.zip"))
    assert r.returncode == 0, r.stderr
    assert "dry run complete" in r.stdout
    for step in ("goto", "@name", "@phone", "@title", "@body"):
        assert step in r.stdout
    assert " ms" in r.stdout                                  # step timings
    shots = list((tmp_path / "replay-out" / "evidence").rglob("*.png"))
    assert shots and shots[0].stat().st_size > 1000
    assert (tmp_path / "trace.zip").stat().st_size > 0
    assert sandbox.received() == []


def test_trace_is_readable_by_its_owner_only(run_cli, sandbox, tmp_path):
    """The trace holds the session (cookies, storage): 0600, also where a world-readable file was,
    and no private working directory left beside it."""
    site = _site_file(tmp_path, sandbox, "金台区人民政府", "legacy")
    traces = tmp_path / "traces"
    traces.mkdir()
    old = traces / "trace.zip"
    old.write_bytes(b"an older trace")
    old.chmod(0o644)
    umask = os.umask(0o022)                   # the usual umask: new files world-readable
    try:
        dry = run_cli("replay", str(site), "--trace", str(old))
        sent = run_cli("replay", str(site), "--submit", "--campaign", "t", "--trace", str(traces / "sent.zip"))
    finally:
        os.umask(umask)
    assert dry.returncode == 0, dry.stderr
    assert sent.returncode == 0, sent.stdout + sent.stderr
    for trace in (old, traces / "sent.zip"):
        assert stat.S_IMODE(trace.stat().st_mode) == 0o600, (trace, oct(trace.stat().st_mode))
        with zipfile.ZipFile(trace) as z:       # a real Playwright trace, not the older file
            assert any(n.endswith(".trace") for n in z.namelist()), z.namelist()
    assert sorted(p.name for p in traces.iterdir()) == ["sent.zip", "trace.zip"]
    assert len(sandbox.received("金台区人民政府")) == 1


def test_dry_run_with_a_captcha_asks_the_terminal(run_cli, sandbox, tmp_path):
    site = _site_file(tmp_path, sandbox, "宝鸡市人民政府", "jact")
    r = run_cli("replay", str(site), input="4321\n")
    assert r.returncode == 0, r.stderr
    assert "captcha for 宝鸡市人民政府" in r.stderr
    assert list((tmp_path / "replay-out" / "captcha").glob("captcha-*.png"))
    assert sandbox.received() == []


def test_submit_sends_once_per_campaign_and_mailbox(run_cli, sandbox, tmp_path):
    site = _site_file(tmp_path, sandbox, "金台区人民政府", "legacy")
    first = run_cli("replay", str(site), "--submit", "--campaign", "spot-check")
    assert first.returncode == 0, first.stderr
    assert "submitted" in first.stdout and "tracking code" in first.stdout
    assert len(sandbox.received("金台区人民政府")) == 1
    again = run_cli("replay", str(site), "--submit", "--campaign", "spot-check")
    assert again.returncode == 1
    assert "already has a letter for this mailbox" in again.stderr
    assert len(sandbox.received("金台区人民政府")) == 1
    # Another mailbox of the same site is another letter.
    other = run_cli("replay", str(site), "--submit", "--campaign", "spot-check", "--mailbox", "mayor")
    assert other.returncode == 0, other.stderr
    assert len(sandbox.received("金台区人民政府")) == 2


def test_unknown_site_and_mailbox_are_one_line(run_cli, sandbox, tmp_path):
    r = run_cli("replay", "no-such-site")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "no-such-site" in r.stderr
    site = _site_file(tmp_path, sandbox, "金台区人民政府", "legacy")
    r = run_cli("replay", str(site), "--mailbox", "boss")
    assert r.returncode == 2 and "has no 'boss' mailbox" in r.stderr


def test_replay_works_in_the_config_files_workspace(run_cli, sandbox, tmp_path):
    """Run from another folder with --config: the site is found by its key in the workspace's
    scenarios/sites, and the dry run's files land in the workspace's replay-out/."""
    ws = tmp_path / "ws"
    (ws / "scenarios" / "sites").mkdir(parents=True)
    (ws / "mailbox-bot.toml").write_text("", encoding="utf-8")
    _site_file(tmp_path, sandbox, "金台区人民政府", "legacy").rename(ws / "scenarios" / "sites" / "jintai.toml")
    r = run_cli("--config", "ws/mailbox-bot.toml", "replay", "jintai")
    assert r.returncode == 0, r.stderr
    assert "dry run complete" in r.stdout
    assert list((ws / "replay-out" / "evidence").rglob("*.png"))
    assert not (tmp_path / "replay-out").exists()
    assert sandbox.received() == []
