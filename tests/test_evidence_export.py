"""`mailbox-bot evidence export`: a zip a site owner can be shown, built from a real campaign.

A small campaign is played once for the module by `simulate` against the sandbox (real worker,
real Chromium, real SQLite; the email channel too when Dovecot is installed): one site replies
the same day, one deletes the letter, one (the GBK legacy platform, whose form asks the writer
for a query password) replies on the next working day. Each test then exports with the real CLI
and reads the zip: what is in it, what index.html links, the timeline's order, what is masked.

Calendar: Friday 2024-04-26 submission; Sunday 04-28 is a make-up working day (working day 1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from conftest import one_line_error, run_async
from sqlalchemy import or_, select

from bot.calendar import WorkCalendar
from bot.sandbox.play import simulate
from bot.clock import SimClock
from bot.config import load_config
from bot.sandbox.mailserver import dovecot_available
from bot.sandbox.roster import roster_from_dict
from bot.sandbox import Sandbox
from bot.store import models as m
from bot.store.db import Database
from bot.vocab import LetterState

REPLIER = "宝鸡市测试回复局"      # jact, replies the same day at 15:30 (on the site, and by email with Dovecot)
DELETER = "宝鸡市测试删信局"      # minimal, never replies, deletes the letter on working day 1
NEXT_DAY = "宝鸡市测试次日局"     # legacy (GBK, writer's query password), replies on working day 1

ROSTER = {
    "campaign": {"name": "ev-pack", "submit_at": "2024-04-26T10:00:00+08:00",
                 "end_at": "2024-04-29T18:00:00+08:00", "poll_every": "4h"},
    "site": [
        {"name": REPLIER, "group": "市级部门网站", "platform": "jact", "mailboxes": ["leader"], "slug": "hf",
         "reply": {"workdays": 0, "at": "15:30", "channel": "both"}},
        {"name": DELETER, "group": "市级部门网站", "platform": "minimal", "mailboxes": ["leader"], "slug": "sx",
         "delete": {"workdays": 1}},
        {"name": NEXT_DAY, "group": "市级部门网站", "platform": "legacy", "mailboxes": ["leader"], "slug": "cr",
         "reply": {"workdays": 1, "at": "10:00"}},
    ],
}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("evidence-campaign")
    roster = roster_from_dict(ROSTER)
    clock = SimClock(roster.campaign.submit_at)
    db_url = f"sqlite:///{tmp / 'campaign.sqlite3'}"
    db = Database(db_url)
    evidence_dir = tmp / "evidence"
    mail_kw, transport = {}, None
    if dovecot_available():
        from bot.cli.demo_cmd import _mail_setup

        server = request.getfixturevalue("dovecot_server")
        server.reset()
        mail_kw, transport = _mail_setup(server)
    else:
        roster = roster_from_dict({**ROSTER, "site": [{**s, "reply": {**s["reply"], "channel": "site"}}
                                                      if s.get("reply") else s for s in ROSTER["site"]]})
    with Sandbox(roster, clock, mail=transport) as sandbox:
        if transport is not None:
            mail_kw["deliver_mail"] = sandbox.deliver_due_mail
        run_async(simulate(roster, clock, sandbox.base_url, db, load_config(), evidence_dir, WorkCalendar(),
                           **mail_kw))
    config = tmp / "mailbox-bot.toml"
    config.write_text(f'[paths]\nevidence_dir = "{evidence_dir}"\n', encoding="utf-8")
    yield SimpleNamespace(db=db, db_url=db_url, evidence_dir=evidence_dir, config=config, tmp=tmp,
                          with_mail=transport is not None)
    db.dispose()


def export(run_cli, campaign, out: Path, *args: str):
    return run_cli("--config", str(campaign.config), "evidence", "export", "--campaign", "ev-pack",
                   "--out", str(out), *args, env={"MAILBOX_BOT_DATABASE_URL": campaign.db_url})


@pytest.fixture(scope="module")
def full_pack(campaign):
    """The whole campaign's pack, exported once by the CLI for the tests that only read it."""
    out = campaign.tmp / "full.zip"
    env = {**os.environ, "MAILBOX_BOT_DATABASE_URL": campaign.db_url}
    env.pop("MAILBOX_BOT_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(campaign.config), "evidence", "export",
                           "--campaign", "ev-pack", "--out", str(out)], cwd=campaign.tmp, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(proc=proc, path=out)


def letters(campaign) -> list[m.Letter]:
    with campaign.db.session() as s:
        out = s.scalars(select(m.Letter).order_by(m.Letter.id)).all()
        for x in out:
            _ = x.mailbox.site.name, x.events, x.observations, x.replies
        return out


def evidence_rows(campaign, letter: m.Letter) -> list[m.EvidenceFile]:
    """Every evidence row the database refers to for the letter (computed here independently)."""
    with campaign.db.session() as s:
        ids = {i for e in letter.events for i in e.evidence_ids}
        ids |= {i for o in letter.observations for i in (o.html_id, o.screenshot_id) if i}
        ids |= set(s.scalars(select(m.MailMessage.eml_evidence_id).where(m.MailMessage.letter_id == letter.id)))
        ids.discard(None)
        return s.scalars(select(m.EvidenceFile).where(
            or_(m.EvidenceFile.letter_id == letter.id, m.EvidenceFile.id.in_(ids)))).all()


def secrets_of(letter: m.Letter) -> list[str]:
    return [x for x in {letter.password, (letter.writer or {}).get("password")} if x]


def masked(data: bytes, secrets: list[str]) -> bytes:
    for sec in sorted(secrets, key=len, reverse=True):
        for enc in ("utf-8", "gbk"):
            data = data.replace(sec.encode(enc), b"[redacted]")
    return data


class Index(HTMLParser):
    """index.html as data: links, image sources, and per letter section its timeline rows."""

    def __init__(self, text: str):
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.sections: dict[str, dict] = {}
        self._current: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.srcs.append(a["src"])
        if tag == "section" and "data-letter-id" in a:
            self._current = {"site": a["data-site"], "key": a["data-site-key"], "rows": []}
            self.sections[a["data-letter-id"]] = self._current
        if tag == "tr" and "data-kind" in a and self._current is not None:
            self._current["rows"].append((a["data-at"], a["data-kind"], a.get("data-to-state")))


def read_pack(path: Path) -> tuple[dict[str, bytes], Index]:
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    return files, Index(files["index.html"].decode("utf-8"))


def folder_of(files: dict[str, bytes], letter_id: int) -> str:
    (folder,) = {n.rsplit("/", 1)[0] for n in files if n.startswith(f"letters/{letter_id:04d}-")}
    return folder


# -- the pack ----------------------------------------------------------------------------------

def test_every_referenced_file_is_in_the_pack_once_per_letter(campaign, full_pack):
    r, out = full_pack.proc, full_pack.path
    files, _ = read_pack(out)
    assert "index.html" in files
    all_letters = letters(campaign)
    assert len(all_letters) == 3
    assert f"{len(all_letters)} letter(s)" in r.stdout and str(out) in r.stdout
    packed_total = 0
    for letter in all_letters:
        rows = evidence_rows(campaign, letter)
        assert rows, f"the campaign left no evidence for {letter.mailbox.site.name}"
        folder = folder_of(files, letter.id)
        inside = {n: data for n, data in files.items() if n.startswith(folder + "/")}
        distinct = {row.path for row in rows}
        # Content-addressed evidence seen by many polls is one file in the letter's folder.
        assert len(inside) == len(distinct), (sorted(inside), sorted(distinct))
        for path in distinct:
            original = (campaign.evidence_dir / path).read_bytes()
            assert original in inside.values() or masked(original, secrets_of(letter)) in inside.values(), path
        packed_total += len(inside)
    assert f"{packed_total} file(s)" in r.stdout
    assert r.stdout.count("\n") == 1                         # the one-line summary


def test_index_links_every_file_and_only_files_in_the_pack(full_pack):
    out = full_pack.path
    files, index = read_pack(out)
    targets = {unquote(h) for h in index.hrefs + index.srcs if not h.startswith("#")}
    assert targets, "index.html links nothing"
    assert targets <= set(files), targets - set(files)
    assert set(files) - {"index.html"} <= targets, (set(files) - {"index.html"}) - targets
    assert all(not h.startswith(("/", "file:", "http")) for h in index.hrefs + index.srcs)


def test_timeline_is_in_time_order_with_submission_polls_reply_and_deletion(campaign, full_pack):
    out = full_pack.path
    _, index = read_pack(out)
    by_site = {s["site"]: s["rows"] for s in index.sections.values()}
    assert set(by_site) == {REPLIER, DELETER, NEXT_DAY}
    for site, rows in by_site.items():
        times = [at for at, _, _ in rows]
        assert times == sorted(times), site
        kinds = [(kind, to) for _, kind, to in rows]
        submitted = kinds.index(("event", "submitted"))
        assert ("observation", None) in kinds[submitted:], site
    replier = [(k, to) for _, k, to in by_site[REPLIER]]
    assert replier.index(("reply", None)) > replier.index(("event", "submitted"))
    assert replier[-1] == ("event", "replied")
    if campaign.with_mail:
        assert ("mail", None) in replier
        assert replier.index(("mail", None)) <= replier.index(("reply", None))
    deleter = [(k, to) for _, k, to in by_site[DELETER]]
    deleted = deleter.index(("event", "deleted"))
    # After the deletion, only the daily looks that keep watching for its return.
    assert set(deleter[deleted + 1:]) <= {("observation", None)}
    assert deleter[deleted - 1] == ("observation", None)    # the poll that confirmed it
    assert ("reply", None) not in deleter
    assert ("reply", None) in [(k, to) for _, k, to in by_site[NEXT_DAY]]


def test_times_are_shown_in_beijing_time(full_pack):
    out = full_pack.path
    files, _ = read_pack(out)
    text = files["index.html"].decode("utf-8")
    # Submitted at 10:00 Asia/Shanghai, stored as 02:00 UTC.
    assert "2024-04-26 10:00:00" in text
    assert "2024-04-26 02:00:00" not in text
    assert any(n.startswith("letters/") and "/20240426-100000-" in n for n in files)


def test_site_narrows_the_pack_to_one_site(run_cli, campaign, tmp_path):
    for which in ("sx", DELETER):                             # by key and by name
        out = tmp_path / f"{which}.zip"
        r = export(run_cli, campaign, out, "--site", which)
        assert r.returncode == 0, r.stderr
        assert "1 letter(s)" in r.stdout
        files, index = read_pack(out)
        assert [s["site"] for s in index.sections.values()] == [DELETER]
        (deleter,) = [x for x in letters(campaign) if x.mailbox.site.name == DELETER]
        folder = folder_of(files, deleter.id)
        assert all(n == "index.html" or n.startswith(folder + "/") for n in files)
        assert REPLIER not in files["index.html"].decode("utf-8")


def test_no_password_or_writer_detail_in_the_pack(campaign, full_pack):
    out = full_pack.path
    files, _ = read_pack(out)
    all_letters = letters(campaign)
    # The premise: the site's pages do show a query password (jact's 查询码), so masking is tested.
    originals = b"".join(p.read_bytes() for p in campaign.evidence_dir.rglob("*.html"))
    assert any(sec.encode() in originals for x in all_letters for sec in secrets_of(x))
    for letter in all_letters:
        for sec in secrets_of(letter):
            for enc in ("utf-8", "gbk"):
                hits = [n for n, data in files.items() if sec.encode(enc) in data]
                assert not hits, (sec, hits)
        w = letter.writer
        index = files["index.html"].decode("utf-8")
        # (not the name: a two-character name may well occur in a title by chance)
        assert w["phone"] not in index and w["email"] not in index
        assert letter.tracking_code in index                 # the tracking code is no secret
    assert any(b"[redacted]" in data for data in files.values())
    assert "redacted" in files["index.html"].decode("utf-8")


def test_a_file_missing_on_disk_is_named_and_the_rest_is_packed(run_cli, campaign, tmp_path):
    evidence = tmp_path / "evidence"
    shutil.copytree(campaign.evidence_dir, evidence)
    (deleter,) = [x for x in letters(campaign) if x.mailbox.site.name == DELETER]
    (event,) = [e for e in deleter.events if e.to_state == LetterState.DELETED]
    with campaign.db.session() as s:
        gone = s.get(m.EvidenceFile, event.evidence_ids[0]).path
    (evidence / gone).unlink()
    out = tmp_path / "pack.zip"
    r = export(run_cli, campaign, out, "--evidence-dir", str(evidence))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("mailbox-bot: warning:") and gone in warnings[0]
    assert "1 missing" in r.stdout
    files, index = read_pack(out)
    assert gone in files["index.html"].decode("utf-8")
    gone_bytes = (campaign.evidence_dir / gone).read_bytes()
    assert gone_bytes not in files.values()
    assert {unquote(h) for h in index.hrefs + index.srcs if not h.startswith("#")} <= set(files)


def test_bad_input_is_one_line(run_cli, campaign, tmp_path):
    out = tmp_path / "pack.zip"
    r = run_cli("--config", str(campaign.config), "evidence", "export", "--campaign", "no-such",
                "--out", str(out), env={"MAILBOX_BOT_DATABASE_URL": campaign.db_url})
    one_line_error(r, "no campaign named 'no-such'", "ev-pack", empty_stdout=True)
    one_line_error(export(run_cli, campaign, out, "--site", "nowhere"), "--site", "nowhere", DELETER)
    one_line_error(export(run_cli, campaign, tmp_path), "--out", "is a directory")
    one_line_error(export(run_cli, campaign, tmp_path / "no" / "dir" / "p.zip"), "--out", "does not exist")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        r = export(run_cli, campaign, locked / "p.zip")
        if r.returncode != 0 or not (locked / "p.zip").exists():    # root may write anyway
            one_line_error(r, "--out", str(locked))
    finally:
        locked.chmod(0o700)
    assert not out.exists()


def test_index_opens_in_chromium_and_its_images_load(full_pack, tmp_path, page):
    out = full_pack.path
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as z:
        z.extractall(unpacked)
    page.goto((unpacked / "index.html").as_uri())
    assert "ev-pack" in page.title()
    thumb = page.locator("section.letter img.thumb").first
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    # Follow a link to a screenshot: the file it names is there and is a picture.
    href = page.locator("a[href$='.png']").first.get_attribute("href")
    page.goto((unpacked / unquote(href)).as_uri())
    assert page.evaluate("document.images.length === 1 && document.images[0].naturalWidth > 0")
