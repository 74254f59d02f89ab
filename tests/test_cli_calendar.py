"""`mailbox-bot calendar ...`: the command-line contract (JSON keys, exit codes, one-line errors)."""

from __future__ import annotations

import json

import pytest
from conftest import one_line_error

BETWEEN_KEYS = {"working_days", "same_day", "within_deadline", "deadline", "estimated"}


def _json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _one_line_error(proc, *needles: str) -> str:
    """Exit 2, exactly one non-empty line on stderr, no traceback, nothing on stdout."""
    return one_line_error(proc, *needles, empty_stdout=True)


# --- between --------------------------------------------------------------------------------

def test_between_json(run_cli):
    out = _json(run_cli("calendar", "between", "2024-04-26T10:00:00+08:00", "2024-05-07T23:59:59+08:00", "--json"))
    assert out == {"working_days": 5, "same_day": False, "within_deadline": True,
                   "deadline": "2024-05-07T23:59:59+08:00", "estimated": False}


def test_between_late_reply_and_options(run_cli):
    # The next working day 00:00:00 is one too many.
    out = _json(run_cli("calendar", "between", "2024-04-26T10:00:00+08:00", "2024-05-08T00:00:00+08:00", "--json"))
    assert set(out) == BETWEEN_KEYS
    assert (out["working_days"], out["within_deadline"]) == (6, False)
    # --days moves the deadline and the verdict.
    out = _json(run_cli("calendar", "between", "2024-04-26T10:00:00+08:00", "2024-05-08T00:00:00+08:00",
                        "--days", "6", "--json"))
    assert (out["working_days"], out["within_deadline"], out["deadline"]) == (6, True, "2024-05-08T23:59:59+08:00")


def test_between_naive_utc_and_date_only(run_cli):
    # Naive = Asia/Shanghai; a reply on the make-up Sunday after a Friday submission is 1 day.
    out = _json(run_cli("calendar", "between", "2024-04-26T10:00", "2024-04-28", "--json"))
    assert (out["working_days"], out["same_day"]) == (1, False)
    # 2024-04-25T17:00Z is Friday 01:00 in Shanghai: same-day with a Friday morning reply.
    out = _json(run_cli("calendar", "between", "2024-04-25T17:00:00Z", "2024-04-26T09:00:00+08:00", "--json"))
    assert (out["working_days"], out["same_day"], out["deadline"]) == (0, True, "2024-05-07T23:59:59+08:00")


def test_between_cutoff(run_cli):
    # Friday 17:31 after a 17:30 cut-off counts from Monday: a Monday reply is same-day.
    out = _json(run_cli("calendar", "between", "2024-05-17T17:31:00+08:00", "2024-05-20T09:00:00+08:00",
                        "--cutoff", "17:30", "--json"))
    assert out == {"working_days": 0, "same_day": True, "within_deadline": True,
                   "deadline": "2024-05-27T23:59:59+08:00", "estimated": False}


def test_between_days_zero(run_cli):
    out = _json(run_cli("calendar", "between", "2024-04-26T10:00:00+08:00", "2024-04-26T18:00:00+08:00",
                        "--days", "0", "--json"))
    assert out == {"working_days": 0, "same_day": True, "within_deadline": True,
                   "deadline": "2024-04-26T23:59:59+08:00", "estimated": False}


def test_between_text_output(run_cli):
    proc = run_cli("calendar", "between", "2024-04-26T10:00:00+08:00", "2024-05-07T12:00:00+08:00")
    assert proc.returncode == 0, proc.stderr
    assert "5 working day" in proc.stdout and "2024-05-07 23:59:59" in proc.stdout


# --- deadline, is-workday -------------------------------------------------------------------

def test_deadline_json(run_cli):
    out = _json(run_cli("calendar", "deadline", "2024-04-26T10:00:00+08:00", "--json"))
    assert out == {"deadline": "2024-05-07T23:59:59+08:00", "estimated": False}
    out = _json(run_cli("calendar", "deadline", "2024-09-27", "--days", "3", "--json"))
    assert out == {"deadline": "2024-10-08T23:59:59+08:00", "estimated": False}


@pytest.mark.parametrize("day,workday,reason", [
    ("2024-02-12", False, "春节"),
    ("2024-04-28", True, "调休上班"),
    ("2024-04-27", False, "周六"),
    ("2024-04-26", True, "工作日"),
])
def test_is_workday_json(run_cli, day, workday, reason):
    out = _json(run_cli("calendar", "is-workday", day, "--json"))
    assert set(out) == {"date", "workday", "reason", "estimated"}
    assert out["date"] == day
    assert out["workday"] is workday
    if reason == "春节":
        assert reason in out["reason"]
    else:
        assert out["reason"] == reason
    assert out["estimated"] is False


# --- estimates ------------------------------------------------------------------------------

def test_2027_is_estimated_and_warns(run_cli):
    proc = run_cli("calendar", "is-workday", "2027-03-01", "--json")
    out = _json(proc)
    assert out["estimated"] is True
    assert "warning" in proc.stderr and "2027" in proc.stderr and "estimate" in proc.stderr

    proc = run_cli("calendar", "between", "2026-12-30T10:00:00+08:00", "2027-01-05T10:00:00+08:00", "--json")
    out = _json(proc)
    assert set(out) == BETWEEN_KEYS and out["estimated"] is True
    assert "2027" in proc.stderr

    proc = run_cli("calendar", "deadline", "2026-12-30T10:00:00+08:00", "--json")
    out = _json(proc)
    assert out["estimated"] is True and out["deadline"].startswith("2027-")
    assert "2027" in proc.stderr


def test_official_year_does_not_warn(run_cli):
    proc = run_cli("calendar", "between", "2026-12-21T10:00:00+08:00", "2026-12-22T10:00:00+08:00", "--json")
    assert _json(proc)["estimated"] is False
    assert proc.stderr.strip() == ""


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args,needles", [
    (("between", "26/04/2024", "2024-05-07"), ("SUBMITTED", "26/04/2024")),
    (("between", "2024-04-26", "tomorrow"), ("REPLIED", "tomorrow")),
    (("between", "2024-02-30", "2024-03-01"), ("SUBMITTED", "2024-02-30")),
    (("between", "2024-04-26T10:00:00+08:00", "2024-04-26T09:00:00+08:00"), ("before",)),
    (("between", "2024-04-26", "2024-04-25"), ("before",)),
    (("between", "2024-04-26", "2024-04-28", "--days", "-1"), ("--days",)),
    (("between", "2024-04-26", "2024-04-28", "--cutoff", "25:00"), ("--cutoff", "25:00")),
    (("between", "2024-04-26", "2024-04-28", "--cutoff", "half past five"), ("--cutoff",)),
    (("deadline", "2024-13-01"), ("SUBMITTED", "2024-13-01")),
    (("deadline", "2024-04-26", "--days", "-1"), ("--days",)),
    (("deadline", "2024-04-26", "--cutoff", "5pm"), ("--cutoff", "5pm")),
    (("is-workday", "2024-02-30"), ("DATE", "2024-02-30")),
])
def test_user_errors_are_one_line(run_cli, args, needles):
    _one_line_error(run_cli("calendar", *args, "--json"), *needles)


def test_bad_overrides_file_from_config(run_cli, tmp_path):
    (tmp_path / "overrides.toml").write_text('[[day]]\ndate = "2024-05-06"\nworkday = "no"\n', encoding="utf-8")
    (tmp_path / "mailbox-bot.toml").write_text('[calendar]\noverrides_file = "overrides.toml"\n', encoding="utf-8")
    _one_line_error(run_cli("calendar", "is-workday", "2024-05-06", "--json"),
                    "overrides.toml", "day[0].workday")


def test_overrides_file_from_config(run_cli, tmp_path):
    (tmp_path / "overrides.toml").write_text(
        'official_through = 2027\n[[day]]\ndate = "2024-05-06"\nworkday = false\nreason = "地方假日"\n',
        encoding="utf-8")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[calendar]\noverrides_file = "{tmp_path / "overrides.toml"}"\n', encoding="utf-8")
    out = _json(run_cli("--config", str(cfg), "calendar", "is-workday", "2024-05-06", "--json"))
    assert out == {"date": "2024-05-06", "workday": False, "reason": "地方假日", "estimated": False}
    proc = run_cli("--config", str(cfg), "calendar", "is-workday", "2027-03-01", "--json")
    assert _json(proc)["estimated"] is False and proc.stderr.strip() == ""


# --- help -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args,needles", [
    ((), ("calendar", "config", "db", "mailbox")),
    (("calendar",), ("between", "deadline", "is-workday", "working day")),
    (("calendar", "between"), ("--days", "--cutoff", "--json", "Working days")),
    (("calendar", "deadline"), ("--days", "deadline")),
    (("calendar", "is-workday"), ("DATE", "working day")),
    (("calendar", "month"), ("YYYY-MM", "--quarter")),
    (("config",), ("check", "show")),
    (("config", "check"), ("--accounts",)),
    (("config", "show"), ("configuration",)),
    (("db",), ("upgrade", "current")),
    (("db", "upgrade"), ("migrations",)),
])
def test_help(run_cli, args, needles):
    proc = run_cli(*args, "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Usage" in proc.stdout
    for needle in needles:
        assert needle in proc.stdout, (needle, proc.stdout)


def test_installed_console_script(tmp_path):
    """`mailbox-bot` itself (the [project.scripts] entry point), not only `python -m bot`."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "mailbox-bot"
    if not exe.exists():
        exe = shutil.which("mailbox-bot")
    if exe is None:
        pytest.skip("the mailbox-bot console script is not installed")
    env = {**os.environ, "COLUMNS": "200", "MAILBOX_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    env.pop("MAILBOX_BOT_CONFIG", None)
    proc = subprocess.run([str(exe), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "calendar" in proc.stdout and "Usage" in proc.stdout
    proc = subprocess.run([str(exe), "calendar", "is-workday", "2024-02-30"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1
