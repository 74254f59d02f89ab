"""docs/scenarios.md, the template reference: it cannot drift from the schema, and its worked
example works through the real command line against the sandbox.

The reference's tables of keys are marked `<!-- keys: NAME -->`; each table's first column holds
the documented names in backticks. A name the schema has and the table lacks fails, and so does a
name the table has and the schema no longer does.
"""

from __future__ import annotations

import inspect
import json
import re
import sqlite3
import time
import tomllib
import typing
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from conftest import REPO

from bot.campaign import worker
from bot.clock import SHANGHAI, SimClock
from bot.scenario import schema
from bot.scenario.loader import OVERRIDABLE, STEP_OPS
from bot.scenario.variables import KNOWN
from bot.vocab import MailboxKind, Marker, SiteStatus

DOC = REPO / "docs" / "scenarios.md"
COMMON_STEP_KEYS = {"op", "name", "timeout_ms"}
SPECIAL_VARIABLES = {"{values.<key>}", "{extracted[<field>]}", "{page}"}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _keys(model) -> set[str]:
    """A model's keys as a file writes them (`json`, not `json_body`)."""
    return {f.alias or name for name, f in model.model_fields.items()}


def step_classes() -> dict[str, type]:
    """op -> step class, from the schema's discriminated union."""
    union = typing.get_args(schema.Step)[0]
    return {typing.get_args(cls.model_fields["op"].annotation)[0]: cls for cls in typing.get_args(union)}


def worker_fields() -> set[str]:
    """The extracted fields the campaign worker reads (`result.values.get("...")`)."""
    return set(re.findall(r'result\.values\.get\("(\w+)"', inspect.getsource(worker)))


def expected_tables() -> dict[str, set[str]]:
    tables = {
        "SiteRecord": _keys(schema.SiteRecord),
        "LoginSpec": _keys(schema.LoginSpec),
        "overrides": set(OVERRIDABLE),
        "MailboxKind": {str(k) for k in MailboxKind},
        "Scenario": _keys(schema.Scenario),
        "Limits": _keys(schema.Limits),
        "TimeFormats": _keys(schema.TimeFormats),
        "SiteStatus": {str(s) for s in SiteStatus},
        "step": COMMON_STEP_KEYS,
        "Marker": {str(m) for m in Marker},
        "DialogMarker": _keys(schema.DialogMarker),
        "ResponseMarker": _keys(schema.ResponseMarker),
        "variables": {"{" + k + "}" for k in KNOWN} | SPECIAL_VARIABLES,
        "extract-fields": worker_fields(),
    }
    for op, cls in step_classes().items():
        tables[op] = _keys(cls) - COMMON_STEP_KEYS
    return tables


def documented_tables(doc: str) -> dict[str, tuple[set[str], str]]:
    """NAME -> (the backticked names of the first column of the table after `<!-- keys: NAME -->`,
    the heading of the section it is in)."""
    out: dict[str, tuple[set[str], str]] = {}
    lines = doc.splitlines()
    heading = ""
    for i, line in enumerate(lines):
        if line.startswith("#"):
            heading = line
        m = re.fullmatch(r"\s*<!-- keys: ([\w-]+) -->", line)
        if not m:
            continue
        assert m[1] not in out, f"two tables marked {m[1]}"
        rows = []
        for row in lines[i + 1:]:
            if not row.strip().startswith("|"):
                if rows:
                    break
                continue
            rows.append(row.strip())
        assert len(rows) >= 3, f"the table marked {m[1]} has no rows"
        names = set()
        for row in rows[2:]:                    # after the header and the |---| line
            first = row.strip("|").split("|")[0]
            got = re.findall(r"`([^`]+)`", first)
            assert len(got) == 1, f"table {m[1]}: the first cell of {row!r} names one key in backticks"
            names.add(got[0])
        out[m[1]] = (names, heading)
    return out


def test_every_schema_name_is_documented_and_nothing_else(doc):
    tables = documented_tables(doc)
    expected = expected_tables()
    assert set(tables) == set(expected), "marked tables differ from what the schema has"
    for name, keys in expected.items():
        documented, _ = tables[name]
        assert documented == keys, (f"docs/scenarios.md table {name!r}: missing {sorted(keys - documented)}, "
                                    f"not in the schema {sorted(documented - keys)}")


def test_every_step_op_has_its_own_section(doc):
    ops = step_classes()
    assert set(ops) == set(STEP_OPS)
    tables = documented_tables(doc)
    for op in ops:
        assert tables[op][1] == f"### `{op}`", f"the keys of {op} are under {tables[op][1]!r}"
    common = re.search(r"\| `op` \|[^\n]*\n", doc)[0]
    assert all(f"`{op}`" in common for op in ops)


def test_the_reference_sections_hold_their_tables(doc):
    tables = documented_tables(doc)
    where = {"SiteRecord": "## The site file", "LoginSpec": "### `login`", "overrides": "### `overrides`",
             "Scenario": "## The platform template", "Limits": "### `limits`", "TimeFormats": "### `time_formats`",
             "SiteStatus": "### `status_map`", "step": "### Keys every step has", "Marker": "### `expect`",
             "DialogMarker": "### `expect`", "ResponseMarker": "### `expect`", "variables": "## Template variables",
             "extract-fields": "## What the extracted fields mean", "MailboxKind": "### Mailboxes"}
    for name, heading in where.items():
        assert tables[name][1].startswith(heading), (name, tables[name][1])


# -- the worked example ------------------------------------------------------------------------

def example_blocks(doc: str) -> dict[str, str]:
    blocks = dict(re.findall(r"<!-- example: (\w+) -->\s*```toml\n(.*?)```", doc, re.S))
    assert set(blocks) == {"roster", "site", "platform"}
    return blocks


def workspace_path(block: str) -> str:
    """The path a block's first line names: `# scenarios/sites/zjj.toml`."""
    m = re.match(r"# (scenarios/(?:sites|platforms)/[\w.-]+\.toml)\n", block)
    assert m, block.splitlines()[0]
    return m[1]


def test_the_examples_load_as_they_are(doc):
    from bot.sandbox.roster import roster_from_dict

    blocks = example_blocks(doc)
    roster = roster_from_dict(tomllib.loads(blocks["roster"]))
    (site,) = roster.site
    assert site.platform == "confirm" and site.reply.workdays == 1
    platform = schema.Scenario.model_validate(tomllib.loads(blocks["platform"]))
    record = schema.SiteRecord.model_validate(tomllib.loads(blocks["site"]))
    assert workspace_path(blocks["platform"]) == f"scenarios/platforms/{record.platform}.toml"
    assert platform.platform == record.platform and record.name == site.name
    assert urlsplit(record.base_url).path.strip("/") == site.slug


def test_the_worked_example_sends_one_letter_and_reads_its_reply(doc, run_cli, tmp_path):
    """From the documentation alone: the site file and the template in an empty workspace, the
    practice roster served by the sandbox on a clock shared with the command line."""
    from bot.sandbox import Sandbox
    from bot.sandbox.roster import roster_from_dict

    now = datetime.now(SHANGHAI).replace(microsecond=0)
    if now.hour == 23 and now.minute >= 50:
        pytest.skip("`replay` reads the system clock: a run across midnight would split the day")
    blocks = example_blocks(doc)
    roster = roster_from_dict(tomllib.loads(blocks["roster"]))
    clock = SimClock(now)
    with Sandbox(roster, clock) as sb:
        site_text = blocks["site"]
        documented = tomllib.loads(site_text)["base_url"]
        parts = urlsplit(documented)
        site_text = site_text.replace(f"{parts.scheme}://{parts.netloc}", sb.url)
        for text in (site_text, blocks["platform"]):
            path = tmp_path / workspace_path(text)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        key = (tmp_path / workspace_path(site_text)).stem

        def at(moment: datetime) -> dict:
            return {"MAILBOX_BOT_CLOCK": f"{moment.isoformat()}@{time.time()}x1"}

        check = run_cli("config", "check", check=True)
        assert "workspace: confirm" in check.stdout and "1 site files" in check.stdout

        dry = run_cli("replay", key, env=at(clock.now()))
        assert dry.returncode == 0, dry.stderr
        assert "dry run complete" in dry.stdout
        assert sb.received() == []

        sent = run_cli("replay", key, "--submit", "--campaign", "C", env=at(clock.now()))
        assert sent.returncode == 0, (sent.stdout, sent.stderr)
        (letter,) = sb.received()
        assert letter.tracking_code in sent.stdout and "submitted" in sent.stdout
        with sqlite3.connect(tmp_path / "test.sqlite3") as conn:
            (code,) = conn.execute("select tracking_code from letters").fetchone()
        assert code == letter.tracking_code

        reply_at = sb.timeline(letter).reply_at
        later = reply_at + timedelta(minutes=5)
        clock.set(later)
        polled = run_cli("poll", "C", env=at(later))
        assert polled.returncode == 0, (polled.stdout, polled.stderr)
        assert "submitted -> replied" in polled.stdout

        report = run_cli("report", "C", "--json", "--as-of", (later + timedelta(minutes=1)).isoformat(),
                         env=at(later), check=True)
        (row,) = json.loads(report.stdout)["rows"]
        assert (row["status"], row["working_days"], row["within_deadline"], row["same_day"]) == \
            ("replied", 1, True, False)
        assert datetime.fromisoformat(row["replied_at"]) == reply_at
        assert len(sb.received()) == 1


class _WrongThenRight:
    """Stands in for the person at the terminal: a wrong answer first, then the picture's digits
    (read from the sandbox, as a test may)."""

    label = "test"

    def __init__(self, sb):
        self.sb, self.page, self.asked = sb, None, 0

    async def answer(self, image: bytes, site: str) -> str:
        self.asked += 1
        digits = self.sb.captcha_answer(await self.page.locator("#yzmKey").get_attribute("value"))
        if self.asked == 1:
            return "0000" if digits != "0000" else "1111"
        return digits


def test_the_example_template_answers_a_captcha_again_and_finds_its_letter_on_a_busy_list(
        doc, loop, engine_browser, evidence):
    """The same template on a site of the family that checks its captcha and has other citizens
    writing: a wrong answer, then the right one; the letter found on a later page of the list, and
    a letter the list does not have proven absent."""
    from conftest import letter_variables, run_flow

    from bot.sandbox import Sandbox
    from bot.sandbox.roster import roster_from_dict

    blocks = example_blocks(doc)
    sc = schema.Scenario.model_validate(tomllib.loads(blocks["platform"]))
    data = tomllib.loads(blocks["roster"])
    data["site"][0].update(captcha=True, traffic=30)
    sent_at = datetime(2024, 4, 26, 9, 0, tzinfo=SHANGHAI)
    clock = SimClock(sent_at)
    fields = {"title": "关于住房公积金贷款额度的咨询", "body": "您好，请问本市住房公积金贷款的最高额度是多少？谢谢！",
              "category": "咨询", "name": "张三", "phone": "13912345678", "email": ""}
    with Sandbox(roster_from_dict(data), clock) as sb:
        name = sb.roster.site[0].name
        base = sb.base_url(name)
        answerer = _WrongThenRight(sb)
        result = run_flow(loop, engine_browser, evidence, sc, "submit", letter_variables(sc, base, "leader", name, fields),
                          site_name=name, answerer=answerer)
        assert result.outcome == "success" and answerer.asked == 2
        (letter,) = sb.received()
        assert result.values == {"tracking_code": letter.tracking_code}

        clock.set(datetime(2024, 4, 29, 16, 0, tzinfo=SHANGHAI))           # replied on the 28th (调休)
        variables = {**letter_variables(sc, base, "leader", name, fields), "since": sent_at}
        found = run_flow(loop, engine_browser, evidence, sc, "list", variables, site_name=name, answerer=None)
        assert found.outcome == "found" and not found.message.startswith("found on page 1 ")
        assert found.values == {"tracking_code": letter.tracking_code, "status": "已回复", "reply_time": "2024年04月28日"}

        variables["letter"].title = "一封列表上没有的来信的标题"
        missing = run_flow(loop, engine_browser, evidence, sc, "list", variables, site_name=name, answerer=None)
        assert missing.outcome == "not_found" and "older than the letter" in missing.message
