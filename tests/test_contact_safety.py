"""Made-up contact data never reaches real people: `campaign plan`, `campaign start` and
`replay --submit` refuse a site that may be real unless its letters go as an identity with a
phone and an email; a site on loopback or a reserved test name is planned and sent as before.

Through the command line as an inspector uses it. A real-looking host is never contacted: the
refusal comes before any browser or database. To show that the refusal is what stops a letter,
one test serves the sandbox on this machine's own non-loopback address (a host the rule cannot
tell from a real site's) and sends to it with and without an identity.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pytest
from conftest import one_line_error

from bot.clock import SimClock
from bot.contact import is_test_host
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox

REAL = "https://www.baoji.gov.cn/zmhd"
SITE = "宝鸡市人民政府"
PHONE = "13912345678"


def site_file(folder: Path, base_url: str, name: str = SITE, platform: str = "jact",
              mailboxes: str = '["leader", "mayor"]') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "site.toml"
    path.write_text(f'name = "{name}"\ngroup = "政府门户网站"\nbase_url = "{base_url}"\nplatform = "{platform}"\n'
                    f"mailboxes = {mailboxes}\n", encoding="utf-8")
    return path


def campaign(tmp_path: Path, base_url: str, identities: str = "") -> Path:
    site_file(tmp_path / "sites", base_url)
    path = tmp_path / "c.toml"
    path.write_text(f'name = "safety"\nsites = ["sites/*.toml"]\nstart = 2026-12-01\n{identities}', encoding="utf-8")
    return path


def accounts(tmp_path: Path, phone: str = PHONE) -> Path:
    """The accounts file, found through ./mailbox-bot.toml in the command's directory."""
    path = tmp_path / "accounts.toml"
    phone_line = f'phone = "{phone}"\n' if phone else ""
    path.write_text(f'[[identity]]\nname = "wang"\nreal_name = "王建国"\n{phone_line}'
                    'email = "wjg@mail.baoji-check.cn"\n', encoding="utf-8")
    (tmp_path / "mailbox-bot.toml").write_text(f'[paths]\naccounts_file = "{path}"\n', encoding="utf-8")
    return path


def stored(tmp_path: Path) -> tuple[int, int]:
    """(campaigns, letters) in the command's database; (0, 0) when it was never made."""
    db = tmp_path / "test.sqlite3"
    if not db.exists():
        return 0, 0
    con = sqlite3.connect(db)
    try:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
        if "campaigns" not in tables:
            return 0, 0
        return (con.execute("select count(*) from campaigns").fetchone()[0],
                con.execute("select count(*) from letters").fetchone()[0])
    finally:
        con.close()


# -- the rule ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url, test", [
    ("http://127.0.0.1:8710/bj", True), ("http://127.8.0.1/", True), ("http://[::1]:8080/x", True),
    ("http://localhost:8000/", True), ("http://portal.localhost/", True), ("http://LOCALHOST./", True),
    ("http://www.baoji.test/zmhd", True), ("http://site.example/", True), ("http://x.invalid/", True),
    ("http://example.com/", True), ("https://www.example.org/a", True), ("http://mail.example.net/", True),
    (REAL, False), ("http://10.0.0.8/", False), ("http://192.168.1.10:8080/", False), ("http://0.0.0.0/", False),
    ("http://example.com.cn/", False), ("http://myexample.org/", False), ("http://localhost.gov.cn/", False),
    ("http://testing.gov.cn/", False),
])
def test_which_hosts_are_test_hosts(url, test):
    assert is_test_host(url) is test


# -- campaign plan / start ---------------------------------------------------------------------

@pytest.mark.parametrize("identities, phone, needles", [
    ("", PHONE, ["key 'identities'", "none given", SITE, "www.baoji.gov.cn", "phone", "email"]),
    ('identities = ["wang"]\n', "", ["key 'identities'", "'wang'", "no phone", 'phone = ""', "accounts.toml",
                                     SITE, "www.baoji.gov.cn"]),
], ids=["no-identity", "identity-without-phone"])
def test_a_real_site_is_refused_without_a_full_identity(run_cli, tmp_path, identities, phone, needles):
    accounts(tmp_path, phone=phone)
    path = campaign(tmp_path, REAL, identities)
    for command in ("plan", "start"):
        line = one_line_error(run_cli("campaign", command, str(path)), str(path), *needles, empty_stdout=True)
        assert line.count(SITE) == 1, line
    assert stored(tmp_path) == (0, 0)                        # nothing planned


def test_a_real_site_with_an_identity_is_planned_with_its_phone_and_address(run_cli, tmp_path):
    accounts(tmp_path)
    path = campaign(tmp_path, REAL, 'identities = ["wang"]\n')
    plan = run_cli("campaign", "plan", str(path), "--json")
    assert plan.returncode == 0, plan.stderr
    letters = json.loads(plan.stdout)["letters"]
    assert [(x["site"], x["mailbox"], x["host"], x["identity"]) for x in letters] == \
        [(SITE, "leader", "www.baoji.gov.cn", "wang"), (SITE, "mayor", "www.baoji.gov.cn", "wang")]
    start = run_cli("campaign", "start", str(path))
    assert start.returncode == 0 and "2 letters planned" in start.stdout, start.stderr
    con = sqlite3.connect(tmp_path / "test.sqlite3")
    writers = [json.loads(w) for (w,) in con.execute("select writer from letters")]
    con.close()
    assert [(w["name"], w["phone"]) for w in writers] == [("王建国", PHONE)] * 2
    assert all(w["email"].startswith("wjg+") and w["email"].endswith("@mail.baoji-check.cn") for w in writers)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8710/bj", "http://portal.test/bj"])
def test_a_test_site_is_planned_without_an_identity(run_cli, tmp_path, base_url):
    path = campaign(tmp_path, base_url)
    plan = run_cli("campaign", "plan", str(path), "--json")
    assert plan.returncode == 0, plan.stderr
    assert [x["identity"] for x in json.loads(plan.stdout)["letters"]] == [None, None]
    start = run_cli("campaign", "start", str(path))
    assert start.returncode == 0, start.stderr
    con = sqlite3.connect(tmp_path / "test.sqlite3")
    emails = [json.loads(w)["email"] for (w,) in con.execute("select writer from letters")]
    con.close()
    assert len(emails) == 2 and all(e.rsplit("@", 1)[1] in ("example.org", "example.com", "example.net")
                                    for e in emails)


# -- replay --submit ---------------------------------------------------------------------------

def test_replay_submit_to_a_real_site_without_an_identity_is_refused(run_cli, tmp_path):
    site = site_file(tmp_path / "sites", REAL, platform="legacy")
    one_line_error(run_cli("replay", str(site), "--submit", "--campaign", "spot"), str(site), "--identity",
                   "none given", SITE, "www.baoji.gov.cn", "nothing was sent", empty_stdout=True)
    assert stored(tmp_path) == (0, 0)
    assert not (tmp_path / "replay-out").exists() and not (tmp_path / "evidence").exists()


def _own_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("198.51.100.1", 9))
        address = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if address.startswith("127.") or is_test_host(f"http://{address}/") else address


def test_replay_submit_sends_to_a_site_that_may_be_real_only_as_a_full_identity(run_cli, tmp_path):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve the sandbox on")
    name = "宝鸡市测试局"
    roster = roster_from_dict({
        "campaign": {"name": "r", "submit_at": "2024-04-26T10:00:00+08:00", "end_at": "2024-05-10T18:00:00+08:00"},
        "site": [{"name": name, "group": "市级部门网站", "platform": "hdjlpt", "mailboxes": ["leader"], "slug": "cs"}],
    })
    with Sandbox(roster, SimClock(roster.campaign.submit_at), host=address) as sandbox:
        url = sandbox.base_url(name)
        assert address in url and not is_test_host(url)
        site = site_file(tmp_path / "sites", url, name=name, platform="hdjlpt", mailboxes='["leader"]')
        accounts(tmp_path, phone="")
        one_line_error(run_cli("replay", str(site), "--submit", "--campaign", "a"), str(site), "--identity",
                       "none given", name, address)
        one_line_error(run_cli("replay", str(site), "--submit", "--campaign", "a", "--identity", "wang"),
                       str(site), "--identity", "'wang'", "no phone", name)
        one_line_error(run_cli("replay", str(site), "--submit", "--campaign", "a", "--identity", "li"),
                       "--identity", "no identity 'li'", "wang")
        assert sandbox.received() == [] and stored(tmp_path) == (0, 0)

        accounts(tmp_path)                                       # now with the inspector's phone
        sent = run_cli("replay", str(site), "--submit", "--campaign", "a", "--identity", "wang", input="1234\n")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        (letter,) = sandbox.received()
        assert (letter.name, letter.phone) == ("王建国", PHONE)
        assert letter.email.startswith("wjg+") and letter.email.endswith("@mail.baoji-check.cn")
