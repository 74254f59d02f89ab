"""How fast is mailbox-bot, side by side with a naive script, in one run on this machine.

    .venv/bin/python benchmarks/bench.py            # the full run (several minutes)
    .venv/bin/python benchmarks/bench.py --quick    # smaller N, the same keys, under 3 minutes
    .venv/bin/python benchmarks/bench.py --json     # the figures as JSON on stdout

Everything runs against the built-in sandbox, each site on a loopback host of its own
(127.0.1.N: per-host politeness acts per site, as on the real web), with a frozen clock:

- submit: N letters to plain `jact` sites (no faults, captcha not checked) by the project's
  worker (one Chromium, warm contexts, `[browser] concurrency`) and by the naive script: serial,
  a new Chromium for every letter, no fixed sleeps, one screenshot, the fairest naive baseline.
  Seconds a letter, their ratio, and the peak memory of this process and all its children
  (Chromium included, the sandbox server left out) while the project's submissions run: the sum
  of RSS (overstates: shared pages counted once per process) and of PSS (shared pages divided).
- poll: open letters looked at once: the project's browser path (warm contexts), its plain HTTP
  path (`http = true`), and the naive script (a new Chromium, the query form filled and clicked).
- report: a campaign of letters in a SQLite database (benchmarks/report_data.py), the report as
  a user waits for it: JSON, CSV, XLSX.
- demo: `mailbox-bot demo`, wall seconds and its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bot.browser.launch import launch_options  # noqa: E402
from bot.clock import SHANGHAI, SimClock  # noqa: E402
from bot.config import load_config  # noqa: E402

START = datetime(2024, 4, 26, 10, 0, tzinfo=SHANGHAI)


# -- measuring ---------------------------------------------------------------------------------

class PeakRss:
    """The peak memory of this process and every process below it (Chromium's), sampled. Two sums:
    RSS (what the issue names; it counts a page shared by several Chromium processes once per
    process, so it overstates the tree) and PSS (each shared page divided among its sharers: what
    the tree really holds)."""

    def __init__(self, every: float = 0.2, leave_out: int | None = None):
        import psutil

        self._me, self._every, self.peak, self.peak_pss = psutil.Process(), every, 0, 0
        self._leave_out = leave_out     # a child that is not the project's (the sandbox server)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            rss = pss = 0
            for p in [self._me, *self._me.children(recursive=True)]:
                if p.pid == self._leave_out:
                    continue
                try:
                    full = p.memory_full_info()
                    rss, pss = rss + full.rss, pss + getattr(full, "pss", full.rss)
                except psutil.Error:
                    pass
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)
            self._stop.wait(self._every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def roster_text(n: int, name: str) -> str:
    sites = "".join(f'\n[[site]]\nname = "宝鸡市基准{i:04d}局"\ngroup = "市级部门网站"\nplatform = "jact"\n'
                    f'mailboxes = ["leader"]\nslug = "b{i:04d}"\nreply = {{ workdays = 0, at = "10:30" }}\n'
                    for i in range(n))
    return (f'[campaign]\nname = "{name}"\nsubmit_at = "{START.isoformat()}"\n'
            f'end_at = "2024-05-31T18:00:00+08:00"\n{sites}')


class SandboxProcess:
    """`mailbox-bot sandbox serve` in a process of its own (its CPU is not the bot's), each site on
    a loopback host of its own, the clock frozen at `at`. The roster object (for site names and
    URLs) is read from the same file."""

    def __init__(self, n: int, name: str, tmp: Path, at: datetime = START):
        from bot.sandbox.roster import load_roster

        self.path = tmp / f"{name}.toml"
        self.path.write_text(roster_text(n, name), encoding="utf-8")
        self.roster = load_roster(self.path)
        self.at = at

    def __enter__(self) -> "SandboxProcess":
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "serve", "--roster", str(self.path),
                                      "--port", str(self.port), "--start", self.at.isoformat(), "--hosts-per-site"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.urls = {}
        for line in self.proc.stdout:                 # each site's line names its URL; then "Press Ctrl-C"
            if line.startswith("Press Ctrl-C"):
                break
            for s in self.roster.site:
                if s.name in line:
                    self.urls[s.name] = line.split()[-1].rsplit("/leader/", 1)[0]
        if len(self.urls) != len(self.roster.site):
            raise SystemExit(f"bench: the sandbox did not start: {self.proc.stderr.read()[-2000:]}")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def base_url(self, name: str) -> str:
        return self.urls[name]


def roster(n: int, name: str):
    from bot.sandbox.roster import roster_from_dict
    import tomllib

    return roster_from_dict(tomllib.loads(roster_text(n, name)))


def letters(n: int, seed: str) -> list:
    from bot.letters import LetterWriter
    from bot.scenario.loader import load_platform

    limits = load_platform("jact", Path(load_config().paths.scenarios_dir)).limits
    writer = LetterWriter(seed)
    return [writer.write(f"宝鸡市基准{i:04d}局", "宝鸡市", limits) for i in range(n)]


# -- the project -------------------------------------------------------------------------------

async def project_submit(sb, n: int, tmp: Path, concurrency: int) -> tuple[float, int]:
    """The project's worker submits n letters; (seconds, letters the site gave a code for)."""
    from bot.browser.pool import Browser
    from bot.calendar import WorkCalendar
    from bot.campaign.sites import register_site
    from bot.campaign.worker import CampaignWorker, Target
    from bot.letters import LetterWriter
    from bot.sandbox.play import DeclaredCaptchaAnswer, roster_site_records
    from bot.scenario.loader import scenario_for
    from bot.store import models as m
    from bot.store.db import Database
    from bot.store.evidence import EvidenceStore

    config = load_config()
    db = Database(f"sqlite:///{tmp / 'submit.sqlite3'}")
    targets = {}
    with db.session() as s:
        for i, rec in enumerate(roster_site_records(sb.roster, sb.base_url)[:n]):
            site = register_site(s, rec, i)
            targets[site.id] = Target(rec, scenario_for(rec, Path(config.paths.scenarios_dir)), site.id)
        camp = m.Campaign(name="bench", created_at=START)
        s.add(camp)
        s.commit()
        cid = camp.id
    async with Browser(config.browser.executable_path, concurrency=concurrency) as browser:
        worker = CampaignWorker(db, SimClock(START), browser, EvidenceStore(tmp / "evidence"), WorkCalendar(),
                                targets, captcha=DeclaredCaptchaAnswer())
        with db.session() as s:
            worker.plan(s.get(m.Campaign, cid), LetterWriter("bench"), at=START)
        started = time.perf_counter()
        await worker.run_due(cid)
        took = time.perf_counter() - started
    with db.session() as s:
        sent = s.query(m.Letter).filter(m.Letter.tracking_code.is_not(None)).count()
    db.dispose()
    return took, sent


async def project_poll(sb, codes: list, tmp: Path, concurrency: int, plain: bool) -> float:
    """The project's worker polls every letter once; seconds."""
    from bot.browser.pool import Browser
    from bot.calendar import WorkCalendar
    from bot.campaign.sites import register_site
    from bot.campaign.worker import CampaignWorker, Target
    from bot.sandbox.play import roster_site_records
    from bot.scenario.loader import scenario_for
    from bot.store import models as m
    from bot.store.db import Database
    from bot.store.evidence import EvidenceStore
    from bot.vocab import LetterState

    config = load_config()
    db = Database(f"sqlite:///{tmp / ('poll-plain' if plain else 'poll-browser')}.sqlite3")
    targets, ids = {}, []
    with db.session() as s:
        sites = {}
        for i, rec in enumerate(roster_site_records(sb.roster, sb.base_url)):
            site = register_site(s, rec, i)
            sites[rec.name] = site
            targets[site.id] = Target(rec, scenario_for(rec, Path(config.paths.scenarios_dir)), site.id)
        camp = m.Campaign(name="bench", created_at=START)
        s.add(camp)
        s.flush()
        for x in codes:
            site = sites[x.site]
            letter = m.Letter(campaign_id=camp.id, mailbox_id=site.mailboxes[0].id, seq=len(ids),
                              state=LetterState.SUBMITTED, state_changed_at=START, title=x.title, body=x.body, writer={},
                              tracking_code=x.tracking_code, password=x.secret, submitted_at=x.received_at,
                              next_poll_at=START)
            s.add(letter)
            s.flush()
            s.add(m.LetterEvent(letter_id=letter.id, at=x.received_at, from_state=LetterState.SUBMITTING,
                                to_state=LetterState.SUBMITTED, reason="benchmark"))
            ids.append(letter.id)
        s.commit()
    async with Browser(config.browser.executable_path, concurrency=concurrency) as browser:
        worker = CampaignWorker(db, SimClock(START.replace(hour=18)), browser, EvidenceStore(tmp / "evidence"),
                                WorkCalendar(), targets, http_polls=plain)
        await asyncio.gather(*(worker.poll(i, now=True) for i in ids))          # the first look
        started = time.perf_counter()
        await asyncio.gather(*(worker.poll(i, now=True) for i in ids))
        took = time.perf_counter() - started
    db.dispose()
    return took


# -- the naive script --------------------------------------------------------------------------

async def naive_submit(sb, letters_: list, tmp: Path) -> float:
    """Serial; a new Chromium for every letter; waits only for what the page must show."""
    from playwright.async_api import async_playwright

    started = time.perf_counter()
    async with async_playwright() as pw:
        for i, x in enumerate(letters_):
            browser = await pw.chromium.launch(**launch_options())
            page = await browser.new_page()
            await page.goto(f"{sb.base_url(sb.roster.site[i].name)}/leader/")
            await page.check("#agree")
            await page.click("#btnAgree")
            await page.fill("#xm", x.name)
            await page.fill("#sj", x.phone)
            await page.fill("#email", x.email)
            await page.select_option("#lx", x.category)
            await page.select_option("#dx", index=1)
            await page.fill("#bt", x.title)
            await page.fill("#nr", x.body)
            await page.fill("#yzm", "0000")
            await page.click("#btnSubmit")
            await page.wait_for_selector("#submitSuccess")
            await page.screenshot(path=str(tmp / f"naive-{i}.png"), full_page=True)
            await browser.close()
    return time.perf_counter() - started


async def naive_poll(sb, codes: list) -> float:
    """Serial; a new Chromium for every look; the query form filled and clicked."""
    from playwright.async_api import async_playwright

    started = time.perf_counter()
    async with async_playwright() as pw:
        for x in codes:
            browser = await pw.chromium.launch(**launch_options())
            page = await browser.new_page()
            await page.goto(f"{sb.base_url(x.site)}/leader/query")
            await page.fill("#bjbh", x.tracking_code)
            await page.fill("#cxm", x.secret)
            await page.click("#btnQuery")
            await page.wait_for_selector("#queryResult, #noResult")
            await page.text_content("#clzt")
            await browser.close()
    return time.perf_counter() - started


# -- the parts ---------------------------------------------------------------------------------

def bench_submit(n: int, naive_n: int, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with SandboxProcess(n, "submit-project", tmp) as sb, PeakRss(leave_out=sb.proc.pid) as rss:
            took, sent = asyncio.run(project_submit(sb, n, tmp, concurrency))
        assert sent == n, f"{sent} of {n} letters were submitted"
        with SandboxProcess(naive_n, "submit-naive", tmp) as sb:
            naive = asyncio.run(naive_submit(sb, letters(naive_n, "naive"), tmp))
    project_s, naive_s = took / n, naive / naive_n
    return {"letters": n, "project_s_per_letter": round(project_s, 3), "naive_s_per_letter": round(naive_s, 3),
            "ratio": round(naive_s / project_s, 1), "peak_rss_mb": round(rss.peak / 2**20),
            "peak_pss_mb": round(rss.peak_pss / 2**20),
            "naive_letters": naive_n, "concurrency": concurrency, "hosts": "one per site (127.0.1.N)"}


class Sent:
    """A letter sent to a sandbox site over plain HTTP (the form's own post), with its codes."""

    def __init__(self, site: str, title: str, body: str, code: str, secret: str):
        self.site, self.title, self.body, self.tracking_code, self.secret = site, title, body, code, secret
        self.received_at = START


def seed_letters(sb, n: int) -> list[Sent]:
    """n letters posted to the sites' forms without a browser (jact: agreement, fields, no captcha)."""
    import httpx
    from lxml import html

    out = []
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            site = sb.roster.site[i % len(sb.roster.site)]
            title, body = f"关于基准测试第{i:05d}号事项的咨询", "您好，请问相关事项如何办理？谢谢。"
            page = client.post(f"{sb.base_url(site.name)}/leader/submit", data={
                "agree": "1", "xm": "王晓明", "sj": "13800000000", "email": "bench@example.org", "lx": "咨询",
                "dx": "主要领导", "bt": title, "nr": body, "gk": "1", "yzmKey": "", "yzm": ""})
            doc = html.fromstring(page.text)
            code, secret = doc.findtext(".//*[@id='bjbh']"), doc.findtext(".//*[@id='cxm']")
            assert code and secret, f"the sandbox did not take letter {i}: {page.text[:200]}"
            out.append(Sent(site.name, title, body, code.strip(), secret.strip()))
    return out


def bench_poll(n: int, naive_n: int, concurrency: int) -> dict:
    sites = min(n, 50)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with SandboxProcess(sites, "poll", tmp) as sb:
            codes = seed_letters(sb, n)
            # Each letter is looked at once before (its first look after the submission): what is
            # measured is a poll of an open letter, as a campaign makes them day after day.
            browser_s = asyncio.run(project_poll(sb, codes, tmp, concurrency, plain=False))
            plain_s = asyncio.run(project_poll(sb, codes, tmp, concurrency, plain=True))
            naive_s = asyncio.run(naive_poll(sb, codes[:naive_n]))
    project, http, naive = n / browser_s, n / plain_s, naive_n / naive_s
    return {"letters": n, "project_polls_per_s": round(project, 1), "http_polls_per_s": round(http, 1),
            "naive_polls_per_s": round(naive, 2), "ratio": round(project / naive, 1),
            "http_ratio": round(http / naive, 1), "naive_letters": naive_n, "hosts": f"{sites} (127.0.1.N)"}


def bench_report(n: int) -> dict:
    import report_bench

    return report_bench.run(n)


def bench_demo() -> dict:
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bot", "demo", "--json", "--out", str(Path(d) / "out")],
                              cwd=d, capture_output=True, text=True, timeout=1800,
                              env={k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_BOT_")})
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench: the demo failed:\n{proc.stderr[-2000:]}")
    s = json.loads(proc.stdout)["summary"]
    return {"wall_s": round(wall, 1), "within_deadline_sites": s["within_deadline_sites"],
            "same_day_sites": s["same_day_sites"], "deleted_sites": s["deleted_sites"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller N, the same keys (under 3 minutes)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--only", choices=["submit", "poll", "report", "demo"], action="append",
                    help="run only these parts (repeatable)")
    args = ap.parse_args(argv)
    concurrency = load_config().browser.concurrency
    sizes = ({"submit": 24, "naive_submit": 3, "poll": 300, "naive_poll": 3, "report": 20_000} if args.quick else
             {"submit": 500, "naive_submit": 10, "poll": 1000, "naive_poll": 10, "report": 100_000})
    parts = args.only or ["submit", "poll", "report", "demo"]
    out: dict = {}
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    if "submit" in parts:
        out["submit"] = bench_submit(sizes["submit"], sizes["naive_submit"], concurrency)
        say("submit", out["submit"])
    if "poll" in parts:
        out["poll"] = bench_poll(sizes["poll"], sizes["naive_poll"], concurrency)
        say("poll", out["poll"])
    if "report" in parts:
        out["report"] = bench_report(sizes["report"])
        say("report", out["report"])
    if "demo" in parts:
        out["demo"] = bench_demo()
        say("demo", out["demo"])
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
