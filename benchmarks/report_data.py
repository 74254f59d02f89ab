"""A realistic campaign database for the report benchmark and the report's scale test.

    .venv/bin/python benchmarks/report_data.py 100000      # builds (or reuses) the cached file

`build(db_url, letters, seed, poll_every)` writes, through the models' tables with bulk inserts:
sites (one or two mailboxes each, in three groups, a few moderated, a few with names a
spreadsheet or a web page must escape), one letter per mailbox in every state a campaign
reaches, their events, and the observations a daemon polling every `poll_every` would have
made (site query or list, mails, an inspector's phone calls; replies, acknowledgements,
deletions, blocked and uncovered looks, doubts in `detail`). `cached(letters, seed)` keeps one
built file per size and seed under /tmp/mailbox-bot-bench/ so that reruns start at once.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CACHE = Path(os.environ.get("MAILBOX_BOT_BENCH_CACHE", "/tmp/mailbox-bot-bench"))
CAMPAIGN = "bench"
# Submissions spread over these weeks; the report is as of AS_OF; polls go on after it (what
# they saw does not exist for the report).
FIRST_SUBMISSION = datetime(2024, 4, 8, 1, 0, tzinfo=timezone.utc)
SUBMISSION_SPAN = timedelta(days=49)
AS_OF = datetime(2024, 5, 31, 10, 0, tzinfo=timezone.utc)
POLLS_UNTIL = AS_OF + timedelta(days=2)

GROUPS = ("政府门户网站", "市级部门网站", "县区部门网站")
ODD_NAMES = ("=HYPERLINK(\"http://x\")", "+市信访局", "-区政务网", "@信箱", "<b>局</b> & 办",
             "A|B 管委会", "站\\点", "多行\n名称")
DOUBTS = ("unknown_status", "ack_or_reply_uncertain")


def build(db_url: str, letters: int, seed: int = 1, poll_every: timedelta = timedelta(hours=4)) -> dict:
    """Creates the schema and the campaign; returns counts."""
    from sqlalchemy import insert, text

    from bot.store import models as m
    from bot.store.db import Database

    rnd = random.Random(seed)
    db = Database(db_url)
    db.ensure_schema()
    counts = {"sites": 0, "mailboxes": 0, "letters": 0, "events": 0, "observations": 0}
    with db.session() as s:
        campaign = m.Campaign(name=CAMPAIGN, created_at=FIRST_SUBMISSION - timedelta(days=1),
                              deadline_workdays=5, cutoff=None)
        s.add(campaign)
        s.flush()
        sites, boxes = [], []
        mailbox_id = site_id = 0
        while len(boxes) < letters:
            site_id += 1
            group = GROUPS[0] if site_id <= max(1, letters // 50) else rnd.choice(GROUPS[1:])
            name = f"{group[:2]}测试网站{site_id}"
            if rnd.random() < 0.002:
                name = rnd.choice(ODD_NAMES) + str(site_id)
            sites.append(dict(id=site_id, key=f"site-{site_id}", name=name, group=group, base_url=f"http://s{site_id}.example",
                              platform=rnd.choice(("jact", "hdjlpt", "igi")), roster_order=site_id - 1
                              if rnd.random() > 0.01 else site_id - 2,   # a few share a roster place
                              moderated=rnd.random() < 0.05))
            kinds = ["mayor", "leader"] if rnd.random() < 0.82 else [rnd.choice(("leader", "board"))]
            for kind in kinds:     # the mayor's box is stored first: its id is lower than the leader's
                mailbox_id += 1
                label = {"leader": "领导信箱", "mayor": "市长信箱", "board": "在线留言"}[kind]
                boxes.append(dict(id=mailbox_id, site_id=site_id, kind=kind, label=label))
                if len(boxes) >= letters:
                    break
        s.execute(insert(m.Site), sites)
        s.execute(insert(m.Mailbox), boxes)
        counts["sites"], counts["mailboxes"] = len(sites), len(boxes)
        moderated = {x["id"] for x in sites if x["moderated"]}
        site_of = {b["id"]: b["site_id"] for b in boxes}

        letter_rows, events, obs = [], [], []

        def flush():
            if letter_rows:
                s.execute(insert(m.Letter), letter_rows)
            if events:
                s.execute(insert(m.LetterEvent), events)
            if obs:
                s.execute(insert(m.Observation), obs)
            counts["letters"] += len(letter_rows)
            counts["events"] += len(events)
            counts["observations"] += len(obs)
            letter_rows.clear(), events.clear(), obs.clear()

        order = list(range(len(boxes)))
        rnd.shuffle(order)                 # letters are not stored in mailbox order
        twice: set[int] = set()
        for i, bi in enumerate(order, start=1):
            box, seq = boxes[bi], 0
            if i > 1 and rnd.random() < 0.002 and order[i - 2] not in twice:
                # a campaign told to send a second letter to a mailbox (seq 1), a few times
                box, seq = boxes[order[i - 2]], 1
                twice.add(order[i - 2])
            planned = FIRST_SUBMISSION + SUBMISSION_SPAN * rnd.random()
            submitted = planned + timedelta(minutes=rnd.randint(1, 600))
            fate = rnd.random()
            letter = dict(id=i, campaign_id=campaign.id, mailbox_id=box["id"], seq=seq, title=f"咨询事项{i}",
                          body="测试信件正文" * 20, writer={"name": "张三", "phone": "13800000000"},
                          tracking_code=f"T{i:08d}", password="pw", planned_at=None, submitted_at=None,
                          state_changed_at=planned, attempts=1, failure=None, failure_kind=None,
                          captcha_by="inspector" if rnd.random() < 0.3 else None)
            ev = [(planned - timedelta(days=2), None, "planned"), (planned, "planned", "submitting")]
            if fate < 0.02:            # failed for good (or blocked), or uncertain, or waiting
                kind = rnd.choice(("failed", "blocked", "uncertain", "inspector"))
                to = {"failed": "submit_failed", "blocked": "submit_failed", "uncertain": "submit_uncertain",
                      "inspector": "needs_inspector"}[kind]
                ev.append((submitted, "submitting", to))
                letter.update(state=to, failure="表单提交失败：验证码错误" if to == "submit_failed" else None,
                              failure_kind={"failed": "failed", "blocked": "blocked"}.get(kind))
                if kind == "failed" and rnd.random() < 0.3:
                    letter["planned_at"] = submitted + timedelta(days=1)      # a retry is due
            elif fate < 0.025:         # never got going
                letter.update(state="planned", planned_at=planned)
                ev = ev[:1]
            else:
                letter.update(submitted_at=submitted, state="submitted")
                ev.append((submitted, "submitting", "submitted"))
                state = _observe(rnd, obs, letter, submitted, poll_every, box["kind"],
                                 site_of[box["id"]] in moderated)
                if state[0] != "submitted":
                    ev.append((state[1], "submitted", state[0]))
                    letter["state"] = state[0]
            for at, a, b in ev:
                events.append(dict(letter_id=i, at=at, from_state=a, to_state=b, reason="", evidence_ids=[]))
            letter_rows.append(letter)
            if len(obs) > 50_000:
                flush()
        flush()
        s.commit()
        # A daemon stores what it sees as it sees it: a letter's events and observations are
        # scattered over the tables in time order, not held together by letter.
        for table in (m.LetterEvent.__table__, m.Observation.__table__):
            cols = ", ".join(f'"{c.name}"' for c in table.columns if c.name != "id")
            s.execute(text(f"CREATE TEMP TABLE shuffled AS SELECT {cols} FROM {table.name} ORDER BY at, id"))
            s.execute(text(f"DELETE FROM {table.name}"))
            s.execute(text(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM shuffled ORDER BY rowid"))
            s.execute(text("DROP TABLE shuffled"))
        s.commit()
    db.dispose()
    return counts


def _observe(rnd: random.Random, obs: list, letter: dict, submitted: datetime, every: timedelta, kind: str,
             moderated: bool) -> tuple[str, datetime]:
    """Appends the letter's observations; returns its last state change (state, at)."""
    lid = letter["id"]
    channel = "site_list" if kind == "board" or rnd.random() < 0.2 else "site_query"
    fate = rnd.random()
    reply_after = timedelta(hours=rnd.expovariate(1 / 30))          # most answer within days
    deleted = fate < 0.01
    silent = 0.01 <= fate < 0.05
    email = 0.05 <= fate < 0.15
    manual = 0.15 <= fate < 0.17
    ack_first = rnd.random() < 0.1
    date_only = channel == "site_list" and rnd.random() < 0.5
    visible_from = submitted + (timedelta(hours=30) if moderated else timedelta(0))
    at = submitted + every * rnd.random()
    state = ("submitted", submitted)
    replied_at = None
    misses = 0
    # Polling stops once a mail or a call answered, and a silent letter is given up some days
    # after its deadline.
    stop = min(POLLS_UNTIL, submitted + (reply_after + timedelta(hours=1) if email or manual else timedelta(days=10)))
    while at < stop:
        d: dict = {}
        o = dict(letter_id=lid, channel=channel, at=at, outcome="found", replied=False, site_status="办理中",
                 reply_text=None, reply_unit=None, displayed_reply_at=None, displayed_date_only=False, detail=d)
        r = rnd.random()
        if r < 0.01:
            o.update(outcome="blocked")
            d.update(message="防火墙拦截", flow_outcome="blocked")
        elif r < 0.03:
            o.update(outcome="error")
            d.update(message="timeout", flow_outcome="failed", step="goto")
        elif channel == "site_list" and r < 0.06:
            o.update(outcome="not_covered")
            d.update(message="列表未翻到", flow_outcome="not_covered")
        elif at < visible_from:
            o.update(outcome="not_found")
            d.update(message="查无此信", flow_outcome="not_found")
        elif deleted and at > submitted + reply_after:
            o.update(outcome="not_found")
            d.update(message="查无此信", flow_outcome="not_found")
            misses += 1
            if misses == 2:
                state = ("deleted", at)
        elif not (silent or email or manual or deleted) and at > submitted + reply_after:
            shown = submitted + reply_after - timedelta(minutes=rnd.randint(0, 90))
            o.update(replied=True, site_status="已办结", reply_text="您好，您反映的问题已办理。", reply_unit="办公室",
                     displayed_reply_at=shown.replace(hour=0, minute=0, second=0) if date_only else shown,
                     displayed_date_only=date_only)
            if ack_first and replied_at is None:
                d["ack"] = True
                o["site_status"] = "已受理"
                ack_first = False
            else:
                replied_at = replied_at or at
            if rnd.random() < 0.02:
                d["flags"] = [rnd.choice(DOUBTS)]
        elif rnd.random() < 0.01:
            d["flags"] = ["unknown_status"]
            o["site_status"] = "转交中"
        if rnd.random() < 0.3:
            d["message"] = d.get("message", "") + "查询完成"
        obs.append(o)
        if replied_at is not None and at > replied_at + every * 2:
            break                      # polling stops a little after the reply
        if state[0] == "deleted" and misses > 3:
            break
        at += every + timedelta(minutes=rnd.randint(-20, 20))
    if replied_at is not None:
        state = ("replied", replied_at)
    if email:
        arrived = submitted + reply_after
        synced = arrived + timedelta(minutes=rnd.randint(1, 30))
        if synced < POLLS_UNTIL:
            ack = rnd.random() < 0.2
            d = {"mail_id": lid, "matched_by": "token", "kind": "ack" if ack else "reply", "classified": "body",
                 "date_header": arrived.isoformat(), "from": "office@example.gov.cn", "subject": "回复：咨询事项"}
            if ack:
                d["ack"] = True
            if rnd.random() < 0.05:
                d["flags"] = ["email_date_mismatch"]
            obs.append(dict(letter_id=lid, channel="email", at=synced, outcome="found", replied=True,
                            reply_text="来信已收悉，答复如下。", displayed_reply_at=arrived, displayed_date_only=False,
                            detail=d))
            if not ack:
                state = ("replied", synced)
    if manual:
        called = submitted + reply_after
        recorded = called + timedelta(hours=rnd.randint(1, 48))
        if recorded < POLLS_UNTIL:
            via = rnd.choice(("phone", "sms"))
            obs.append(dict(letter_id=lid, channel="manual", at=recorded, outcome="found", replied=True,
                            reply_text="电话答复", displayed_reply_at=called, displayed_date_only=False,
                            detail={"via": via, "note": rnd.choice(("经办人王某电话答复", "", "=SUM(1)")),
                                    "recorded_at": recorded.isoformat()}))
            state = ("replied", recorded)
    return state


def cached(letters: int, seed: int = 1) -> str:
    """The database URL of a built campaign of this size and seed, built on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"report-{letters}-seed{seed}.sqlite3"
    if not path.exists():
        tmp = path.with_suffix(".building")
        for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            p.unlink(missing_ok=True)
        build(f"sqlite:///{tmp}", letters, seed)
        tmp.rename(path)
    return f"sqlite:///{path}"


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    started = time.perf_counter()
    url = cached(n, int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    print(f"{url}  ({time.perf_counter() - started:.1f} s)")
