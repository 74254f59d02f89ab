"""TOML files saved as "UTF-8 with BOM" (Windows Notepad's default for Chinese text) load like
any other: every kind of file, through the command that reads it."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, one_line_error

from bot.resources import builtin_platforms_dir

BOM = "\ufeff"


def _bom(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BOM + text, encoding="utf-8")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    return path


SITE = ('name = "某市人民政府"\ngroup = "政府门户网站"\nbase_url = "http://127.0.0.1:9/x"\n'
        'platform = "{platform}"\nmailboxes = ["leader"]\n')


def test_config_and_calendar_overrides_with_bom(run_cli, tmp_path):
    _bom(tmp_path / "holidays.toml", '[[day]]\ndate = "2024-05-06"\nworkday = false\nreason = "本地调整"\n')
    cfg = _bom(tmp_path / "mailbox-bot.toml", '# 配置\n[browser]\nconcurrency = 2\n'
                                              '[calendar]\noverrides_file = "holidays.toml"\n')
    shown = json.loads(run_cli("--config", str(cfg), "config", "show", check=True).stdout)
    assert shown["browser"]["concurrency"] == 2
    day = json.loads(run_cli("calendar", "is-workday", "2024-05-06", "--json", check=True).stdout)
    assert day["workday"] is False                        # found ./mailbox-bot.toml, read its overrides


def test_accounts_file_with_bom(run_cli, tmp_path):
    text = (REPO / "mailbox_accounts.example.toml").read_text(encoding="utf-8")
    path = _bom(tmp_path / "accounts.toml", text)
    proc = run_cli("config", "check", "--accounts", str(path), check=True)
    assert "1 identities, 1 IMAP accounts" in proc.stdout


def test_site_file_and_platform_template_with_bom(run_cli, tmp_path):
    template = (builtin_platforms_dir() / "minimal.toml").read_text(encoding="utf-8")
    _bom(tmp_path / "scenarios" / "platforms" / "mycms.toml", template)
    _bom(tmp_path / "scenarios" / "sites" / "s.toml", SITE.format(platform="mycms"))
    proc = run_cli("config", "check", check=True)
    assert "workspace: mycms" in proc.stdout and "ok (1 site files)" in proc.stdout
    # And a site by its key (replay and check read it the same way): the letter preview uses
    # the merged template's limits.
    preview = json.loads(run_cli("letters", "preview", "--site", "s", "--n", "1", "--json", check=True).stdout)
    assert preview["site"] == "某市人民政府" and "s.toml" in preview["source"]


def test_campaign_file_with_bom(run_cli, tmp_path):
    _bom(tmp_path / "scenarios" / "sites" / "s.toml", SITE.format(platform="jact"))
    camp = _bom(tmp_path / "campaigns" / "c.toml",
                '# 季度检查\nname = "季度检查"\nsites = ["../scenarios/sites/*.toml"]\n')
    plan = json.loads(run_cli("campaign", "plan", str(camp), "--json", check=True).stdout)
    assert plan["campaign"] == "季度检查" and [x["site"] for x in plan["letters"]] == ["某市人民政府"]


def test_roster_with_bom(run_cli, tmp_path):
    """The roster is read (not refused as TOML) and validated: a wrong platform is reported by
    its key, before any browser starts. The install test plays a whole demo on a BOM roster."""
    roster = _bom(tmp_path / "r.toml", '[campaign]\nname = "t"\nsubmit_at = "2024-04-26T10:00:00+08:00"\n'
                                       'end_at = "2024-04-28T18:00:00+08:00"\n'
                                       '[[site]]\nname = "宝鸡市测试局"\ngroup = "市级部门网站"\n'
                                       'platform = "wordpress"\nmailboxes = ["leader"]\n')
    line = one_line_error(run_cli("demo", "--roster", str(roster), "--out", "out"), "r.toml",
                          "'site[1].platform'", "wordpress")
    assert "TOML" not in line
