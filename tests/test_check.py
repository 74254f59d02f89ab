"""`mailbox-bot check`: finds a site whose form no longer matches its scenario; sends nothing."""

from pathlib import Path

import pytest

from bot.clock import SimClock
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox

ROSTER = {
    "campaign": {"name": "c", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [
        {"name": "宝鸡市教育局", "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "jyj"},
        {"name": "宝鸡市统计局", "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"], "slug": "tjj"},
        # A redesign renamed the title field of this site's form since the template was written.
        {"name": "宝鸡市审计局", "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"], "slug": "sjj",
         "drift": "title"},
    ],
}


@pytest.fixture
def sandbox():
    roster = roster_from_dict(ROSTER)
    with Sandbox(roster, SimClock(roster.campaign.submit_at)) as sb:
        yield sb


def _site(tmp_path: Path, sandbox, name: str, platform: str, overrides: str = "") -> Path:
    f = tmp_path / f"{platform}.toml"
    f.write_text(f'name = "{name}"\ngroup = "市级部门网站"\nbase_url = "{sandbox.base_url(name)}"\n'
                 f'platform = "{platform}"\nmailboxes = ["leader"]\n{overrides}', encoding="utf-8")
    return f


def test_matching_sites_pass_and_nothing_is_sent(run_cli, sandbox, tmp_path):
    a = _site(tmp_path, sandbox, "宝鸡市教育局", "jact")
    b = _site(tmp_path, sandbox, "宝鸡市统计局", "minimal")
    r = run_cli("check", str(a), str(b))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 site(s) checked, 0 broken" in r.stdout
    assert sandbox.received() == []


def test_a_drifted_field_is_named_and_exits_1(run_cli, sandbox, tmp_path):
    good = _site(tmp_path, sandbox, "宝鸡市教育局", "jact")
    # The site renamed its title field since the template was written.
    drifted = _site(tmp_path, sandbox, "宝鸡市统计局", "minimal", '[overrides.selectors]\ntitle = "#subject"\n')
    r = run_cli("check", str(good), str(drifted), "--timeout-ms", "1500")
    assert r.returncode == 1
    assert "ok     宝鸡市教育局 领导信箱" in r.stdout
    broken = [l for l in r.stdout.splitlines() if l.startswith("BROKEN")]
    assert len(broken) == 1 and "宝鸡市统计局" in broken[0] and "fill" in broken[0] and "@title" in broken[0]
    assert "2 site(s) checked, 1 broken" in r.stdout
    assert sandbox.received() == []


def test_a_site_that_renamed_its_title_field_is_found(run_cli, sandbox, tmp_path):
    drifted = _site(tmp_path, sandbox, "宝鸡市审计局", "legacy")
    r = run_cli("check", str(drifted), "--timeout-ms", "1500")
    assert r.returncode == 1, r.stdout + r.stderr
    (broken,) = [line for line in r.stdout.splitlines() if line.startswith("BROKEN")]
    assert "宝鸡市审计局 领导信箱: form:" in broken and "fill @title" in broken
    assert "query" not in broken            # the query page did not change
    assert sandbox.received() == []
