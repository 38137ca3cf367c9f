"""`confvault request`, `export --closes` and `status`'s lines on retention
and requests, through the CLI; the clock in two time zones (subprocesses)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

CONFVAULT = str(Path(sys.executable).with_name("confvault"))


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _days_ago(days: int) -> str:
    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


def test_open_list_close_with_json_and_overdue_flag(ready) -> None:
    ready("client", "add", "Ann Example")
    late = _json(
        ready(
            "request",
            "open",
            "Ann",
            "--received",
            _days_ago(40),
            "--by",
            "Ann",
            "--json",
        )
    )
    assert (late["status"], late["days_left"], late["by"]) == ("overdue", -10, "Ann")
    fresh = _json(
        ready(
            "request",
            "open",
            "Ann",
            "--received",
            _days_ago(1),
            "--due-days",
            "10",
            "--json",
        )
    )
    assert (fresh["status"], fresh["days_left"]) == ("open", 9)
    listed = _json(ready("request", "list", "--json"))
    assert [(r["id"], r["status"]) for r in listed] == [
        (late["id"], "overdue"),
        (fresh["id"], "open"),
    ]
    human = ready("request", "list")
    assert "OVERDUE 10d" in human.stdout
    assert "9d left" in human.stdout
    status = _json(ready("status", "--json"))
    assert status["requests_open"] == 2
    assert [r["id"] for r in status["requests_overdue"]] == [late["id"]]
    assert "2 open, 1 overdue" in ready("status").stdout
    closed = _json(
        ready("request", "close", late["id"][:5], "--outcome", "sent by post", "--json")
    )
    assert (closed["status"], closed["outcome"]) == ("closed", "sent by post")
    assert [r["id"] for r in _json(ready("request", "list", "--json"))] == [fresh["id"]]
    assert len(_json(ready("request", "list", "--all", "--json"))) == 2
    assert ready("request", "set", "--due-days", "45").stdout == (
        "new records requests are due in 45 days\n"
    )
    third = _json(ready("request", "open", "Ann", "--received", _days_ago(0), "--json"))
    assert third["days_left"] == 45


def test_export_closes_the_request_with_its_summary(ready, tmp_path: Path) -> None:
    ready("client", "add", "Ann Example")
    ready("note", "add", "Ann", "--title", "S1", input="text")
    ready("client", "add", "Bob Other")
    req = _json(ready("request", "open", "Ann", "--received", _days_ago(3), "--json"))
    other = ready(
        "export", "Bob", "--out", str(tmp_path / "bob"), "--closes", req["id"]
    )
    assert other.exit_code == 1
    assert other.stderr.splitlines()[0] == (
        f"confvault: error: records request {req['id']} is about another client"
    )
    assert not (tmp_path / "bob").exists()
    done = _json(
        ready(
            "export",
            "Ann",
            "--out",
            str(tmp_path / "ann"),
            "--closes",
            req["id"],
            "--json",
        )
    )
    assert done["request"]["status"] == "closed"
    assert done["request"]["outcome"] == "exported"
    assert done["request"]["export"] == "1 notes and 0 files as plain files"
    closes = _json(ready("audit", "--action", "request-close", "--json"))
    assert [e["details"]["export"] for e in closes] == [done["request"]["export"]]
    again = ready(
        "export", "Ann", "--out", str(tmp_path / "again"), "--closes", req["id"]
    )
    assert again.exit_code == 1
    assert "is closed already" in again.stderr
    assert not (tmp_path / "again").exists()


def test_bad_input_exit_codes_and_nothing_changed(ready) -> None:
    ready("client", "add", "Ann Example")
    before = _json(ready("status", "--json"))["generation"]
    cases = [
        (
            ("request", "open", "Ann", "--received", "2026-02-30"),
            1,
            "confvault: error: '2026-02-30' is not a date (use YYYY-MM-DD or an "
            "ISO 8601 time)",
        ),
        (
            ("request", "open", "Nobody", "--received", "2026-01-01"),
            1,
            "confvault: error: no client with that name or ID prefix",
        ),
        (
            ("request", "close", "abcdef12", "--outcome", "x"),
            1,
            "confvault: error: no records request with that ID",
        ),
        (
            ("request", "open", "Ann", "--received", "2026-01-01", "--by", "a\x1b[0mb"),
            1,
            "confvault: error: the requester contains a control character",
        ),
    ]
    for args, code, first in cases:
        result = ready(*args)
        assert (result.exit_code, result.stderr.splitlines()[0]) == (code, first), args
    missing = ready("request", "open", "Ann")
    assert missing.exit_code == 2
    assert "--received" in missing.stderr
    assert _json(ready("status", "--json"))["generation"] == before


def test_status_shows_clients_due_under_retention(ready) -> None:
    ready("client", "add", "Ann Old")
    ready("note", "add", "Ann", "--date", "2001-01-01", input="x")
    doc = _json(ready("status", "--json"))
    assert (doc["retention_due"], doc["held"], doc["requests_open"]) == ([], 0, 0)
    ready("retention", "set", "--years", "10")
    doc = _json(ready("status", "--json"))
    assert [(i["client_name"], i["due"]) for i in doc["retention_due"]] == [
        ("Ann Old", "2011-01-01")
    ]
    assert "1 clients due (`confvault retention`)" in ready("status").stdout


def _in_zone(ready, tz: str, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_TYPER")}
    env |= {"TZ": tz, "CONFVAULT_NO_SERVER": "1", "NO_COLOR": "1"}
    vault = ready.vault
    done = subprocess.run(
        [
            CONFVAULT,
            "--vault",
            str(vault),
            "--passphrase-file",
            str(vault.parent / "pass.txt"),
            *args,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_clock_counts_days_in_the_local_time_zone(ready) -> None:
    ready("client", "add", "Ann Example")
    stamp = "2026-01-31T20:30:00+00:00"  # Feb 1 in Tokyo, Jan 31 in Honolulu
    tokyo = _in_zone(
        ready, "Asia/Tokyo", "request", "open", "Ann", "--received", stamp, "--json"
    )
    hawaii = _in_zone(
        ready,
        "Pacific/Honolulu",
        "request",
        "open",
        "Ann",
        "--received",
        stamp,
        "--json",
    )
    assert (tokyo["received"], tokyo["due"]) == ("2026-02-01", "2026-03-03")
    assert (hawaii["received"], hawaii["due"]) == ("2026-01-31", "2026-03-02")
    # a date alone is that day wherever the practitioner is
    plain = _in_zone(
        ready,
        "Pacific/Honolulu",
        "request",
        "open",
        "Ann",
        "--received",
        "2026-02-28",
        "--json",
    )
    assert (plain["received"], plain["due"]) == ("2026-02-28", "2026-03-30")
