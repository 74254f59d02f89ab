"""`mailbox-bot scaffold`: a site file that loads, and saved pages that replay offline; nothing sent.

The real CLI in a subprocess drives the real Chromium against a sandbox served from this module;
everything it writes goes to the test's own directories (`--sites-dir`, `--pages-dir`, `--out`).
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO, one_line_error, run_async

from bot.clock import SimClock
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.scaffold import chromium, replay_saved
from bot.scenario.loader import load_site, scenario_for
from bot.store.evidence import EvidenceStore

JACT = "宝鸡市教育局"
MINIMAL = "宝鸡市统计局"
SESSIONS = "宝鸡市测试会话局"       # hdjlpt: every page sets a session cookie
ROSTER = {
    "campaign": {"name": "s", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
    "site": [
        {"name": JACT, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader", "mayor"],
         "slug": "jyj", "captcha": True},
        {"name": MINIMAL, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"], "slug": "tjj"},
        {"name": SESSIONS, "group": "市级部门网站", "platform": "hdjlpt", "mailboxes": ["leader", "mayor"],
         "slug": "hd"},
    ],
}


@pytest.fixture(scope="module")
def sandbox():
    """The module's sandbox, logging every request it answers (to show a replay asks it nothing)."""
    requests: list[str] = []
    roster = roster_from_dict(ROSTER)
    with Sandbox(roster, SimClock(roster.campaign.submit_at), log=requests.append) as sb:
        sb.requests = requests
        yield sb


@pytest.fixture
def scaffold(run_cli, tmp_path):
    dirs = {"sites": tmp_path / "sites", "pages": tmp_path / "pages"}

    def run(*args: str):
        # Options given by the test come last: they win.
        return run_cli("scaffold", "--sites-dir", str(dirs["sites"]), "--pages-dir", str(dirs["pages"]),
                       "--out", str(tmp_path / "out"), "--timeout-ms", "4000", *args)

    run.sites, run.pages = dirs["sites"], dirs["pages"]
    return run


def test_scaffold_writes_a_site_file_and_pages_that_replay_offline(scaffold, sandbox, tmp_path):
    url = sandbox.base_url(JACT)
    r = scaffold(url + "/leader/", "--platform", "jact", "--name", JACT, "--group", "市级部门网站")
    assert r.returncode == 0, r.stdout + r.stderr
    key = "127-0-0-1-jyj"                              # host and path, without the port
    site_file = scaffold.sites / f"{key}.toml"
    assert f"wrote {site_file}" in r.stdout
    assert f"pytest tests/test_saved_sites.py -k {key}" in r.stdout

    record = load_site(site_file)
    assert (record.key, record.name, record.group, record.base_url) == (key, JACT, "市级部门网站", url)
    assert (record.platform, record.platform_version, record.mailboxes) == ("jact", 1, ["leader", "mayor"])
    scenario = scenario_for(record, REPO / "scenarios", where=str(site_file))
    assert "# [overrides.selectors]" in site_file.read_text(encoding="utf-8")

    pages = scaffold.pages / key
    assert sorted(p.name for p in pages.iterdir()) == ["leader.har", "mayor.har", "site.toml"]
    assert (pages / "site.toml").read_bytes() == site_file.read_bytes()
    for har in pages.glob("*.har"):
        assert 1_000 < har.stat().st_size < 300_000, har

    before = len(sandbox.requests)
    assert before > 0                                  # the log sees what the scaffold asked

    async def replay():
        async with chromium() as browser:
            return [await replay_saved(browser, record, scenario, pages / f"{kind}.har", kind,
                                       EvidenceStore(tmp_path / "ev"), timeout_ms=4000)
                    for kind in record.mailboxes]

    for run in run_async(replay()):
        assert run.result.outcome == "dry_run", run.problem()
        assert run.ok and len(run.fields) == 5
        assert {f.expected for f in run.fields} >= {"关于政务服务事项办理的咨询", "13800000000"}
    assert sandbox.requests[before:] == []               # served from the HAR alone
    assert sandbox.received() == []                      # a dry run sends nothing


SECRET_HEADERS = {"cookie", "set-cookie", "authorization", "proxy-authorization"}


def test_saved_pages_keep_no_cookie_and_still_replay(scaffold, sandbox, tmp_path):
    """A site whose every page sets a session cookie: the saved HARs hold no cookie, no cookie
    value anywhere and no Cookie / Set-Cookie / Authorization header, and replay all the same."""
    url = sandbox.base_url(SESSIONS)
    r = scaffold(url, "--platform", "hdjlpt", "--name", SESSIONS, "--key", "hd", "--group", "市级部门网站")
    assert r.returncode == 0, r.stdout + r.stderr
    issued = list(sandbox.platforms["hdjlpt"].sessions._items)     # the cookie values the site set
    assert issued, "the site set no session cookie: nothing to test"

    hars = sorted((scaffold.pages / "hd").glob("*.har"))
    assert [h.name for h in hars] == ["leader.har", "mayor.har"]
    for har in hars:
        text = har.read_text(encoding="utf-8")
        assert not [v for v in issued if v in text], har
        assert "hdjlpt_session" not in text, har
        entries = json.loads(text)["log"]["entries"]
        assert len(entries) >= 2                                    # the form and its captcha or assets
        for entry in entries:
            for part in ("request", "response"):
                message = entry[part]
                assert message["cookies"] == [], (har, entry["request"]["url"], part)
                names = {h["name"].lower() for h in message["headers"]}
                assert not names & SECRET_HEADERS, (har, entry["request"]["url"], part, names)
                assert "user-agent" in names or part == "response"   # other headers are kept

    record = load_site(scaffold.sites / "hd.toml")
    scenario = scenario_for(record, REPO / "scenarios", where="hd.toml")
    before = len(sandbox.requests)

    async def replay():
        async with chromium() as browser:
            return [await replay_saved(browser, record, scenario, scaffold.pages / "hd" / f"{kind}.har", kind,
                                       EvidenceStore(tmp_path / "ev"), timeout_ms=4000)
                    for kind in record.mailboxes]

    for run in run_async(replay()):
        assert run.ok, run.problem()
    assert sandbox.requests[before:] == []               # served from the scrubbed HAR alone
    assert sandbox.received() == []


def test_refuses_to_overwrite_unless_forced(scaffold, sandbox):
    url = sandbox.base_url(MINIMAL)
    args = (url, "--platform", "minimal", "--name", MINIMAL, "--key", "tjj", "--mailbox", "leader")
    assert scaffold(*args).returncode == 0
    site_file = scaffold.sites / "tjj.toml"
    site_file.write_text(site_file.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    one_line_error(scaffold(*args), str(site_file), "already exists", "--force")
    assert "# edited by hand" in site_file.read_text(encoding="utf-8")
    r = scaffold(*args, "--force")
    assert r.returncode == 0, r.stderr
    assert "# edited by hand" not in site_file.read_text(encoding="utf-8")
    assert sorted(p.name for p in (scaffold.pages / "tjj").iterdir()) == ["leader.har", "site.toml"]
    assert sandbox.received() == []


def test_a_form_that_does_not_match_keeps_the_site_file_names_the_step_and_exits_1(scaffold, sandbox):
    # A minimal-platform site scaffolded with the wrong template: no jact agreement box on its page.
    url = sandbox.base_url(MINIMAL)
    r = scaffold(url, "--platform", "jact", "--name", MINIMAL, "--key", "wrong", "--mailbox", "leader",
                 "--timeout-ms", "1500")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    failed = [line for line in r.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "submit[1] check @agree" in failed[0] and "Timeout" in failed[0], r.stderr
    assert "screenshot: " in r.stderr                      # the failing step's evidence, to look at
    assert "--pages-only" in r.stderr
    site_file = scaffold.sites / "wrong.toml"
    assert load_site(site_file).platform == "jact"        # written all the same, to be fixed
    assert not list((scaffold.pages / "wrong").glob("*.har"))
    assert not (scaffold.pages / "wrong" / "site.toml").exists()

    # Fixed by hand, the pages are recorded for the file as it now is.
    site_file.write_text(site_file.read_text(encoding="utf-8").replace('"jact"', '"minimal"'), encoding="utf-8")
    r = scaffold(url, "--key", "wrong", "--pages-only")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (scaffold.pages / "wrong" / "leader.har").is_file()
    assert load_site(scaffold.pages / "wrong" / "site.toml").platform == "minimal"
    assert sandbox.received() == []


def test_bad_input_is_one_line_and_writes_nothing(scaffold, sandbox):
    url = sandbox.base_url(JACT)
    line = one_line_error(scaffold(url, "--platform", "dedecms", "--name", JACT), "dedecms")
    for known in ("jact", "legacy", "minimal"):
        assert known in line
    one_line_error(scaffold("ftp://example.org/x", "--platform", "jact", "--name", JACT), "URL", "http")
    one_line_error(scaffold(url, "--platform", "jact", "--name", JACT, "--mailbox", "boss"), "--mailbox", "boss")
    one_line_error(scaffold(url, "--platform", "jact", "--name", JACT, "--key", "Bad Key!"), "--key")
    one_line_error(scaffold(url, "--name", JACT), "--platform")
    one_line_error(scaffold(url, "--key", "never-made", "--pages-only"), "--pages-only", "never-made.toml")
    assert not scaffold.sites.exists() or not list(scaffold.sites.iterdir())
    assert not scaffold.pages.exists()
    assert sandbox.received() == []
