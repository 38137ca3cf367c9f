"""`confvault retention`, `client hold|release|edit` and a held client's
`client shred`, through the CLI (the dates: tests/vault/test_retention.py)."""

from __future__ import annotations

import json


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _setup(ready) -> None:
    ready("client", "add", "Ann Old")
    ready("note", "add", "Ann Old", "--date", "2010-01-05", input="old")
    ready("client", "add", "Bob New", "--born", "2001-02-03")
    ready("note", "add", "Bob New", "--date", "2099-01-01", input="new")


def _names(ready) -> list[str]:
    return [c["name"] for c in _json(ready("client", "list", "--json"))]


def test_hold_release_and_edit_show_in_client_show_and_list(ready) -> None:
    _setup(ready)
    held = _json(ready("client", "hold", "Ann", "--reason", "subpoena 17", "--json"))
    assert held["hold"]["reason"] == "subpoena 17"
    assert _json(ready("client", "show", "Ann", "--json"))["hold"] == held["hold"]
    human = ready("client", "show", "Ann")
    assert "legal hold" in human.stdout
    assert "subpoena 17" in human.stdout
    listed = ready("client", "list")
    assert "held" in listed.stdout
    assert [c["hold"] is None for c in _json(ready("client", "list", "--json"))] == [
        False,
        True,
    ]
    ready("client", "hold", "Ann", "--reason", "[bold]court[/bold] order")
    assert "[bold]court[/bold] order" in ready("client", "show", "Ann").stdout
    assert _json(ready("client", "release", "Ann", "--json"))["hold"] is None
    assert _json(ready("client", "show", "Bob", "--json"))["born"] == "2001-02-03"
    edited = _json(ready("client", "edit", "Bob", "--born", "2001-02-28", "--json"))
    assert edited["born"] == "2001-02-28"
    cleared = _json(ready("client", "edit", "Bob", "--clear-born", "--json"))
    assert cleared["born"] is None
    actions = [e["action"] for e in _json(ready("audit", "--json"))]
    assert [a for a in actions if a in ("client-hold", "client-release")] == [
        "client-hold",
        "client-hold",
        "client-release",
    ]


def test_shred_of_a_held_client_exits_5_and_changes_nothing(ready) -> None:
    _setup(ready)
    ready("client", "hold", "Ann", "--reason", "complaint")
    cid = _json(ready("client", "show", "Ann", "--json"))["id"]
    result = ready("client", "shred", "Ann", "--yes")
    assert result.exit_code == 5
    assert result.stderr.splitlines() == [
        f"confvault: error: client {cid[:8]} is under a legal hold; nothing was shredded",
        "confvault: hint: `confvault client release CLIENT` lifts the hold first",
    ]
    assert _names(ready) == ["Ann Old", "Bob New"]


def test_hostile_reason_unknown_client_and_bad_dates_change_nothing(ready) -> None:
    _setup(ready)
    before = _json(ready("status", "--json"))["generation"]
    bad = ready("client", "hold", "Ann", "--reason", "a\x1b[2Jb")
    assert (bad.exit_code, bad.stderr.splitlines()[0]) == (
        1,
        "confvault: error: the reason contains a control character",
    )
    unknown = ready("client", "hold", "Nobody", "--reason", "x")
    assert (unknown.exit_code, unknown.stderr.splitlines()[0]) == (
        1,
        "confvault: error: no client with that name or ID prefix",
    )
    born = ready("client", "edit", "Bob", "--born", "2001-02-29")
    assert (born.exit_code, born.stderr.splitlines()[0]) == (
        1,
        "confvault: error: '2001-02-29' is not a date of birth (use YYYY-MM-DD)",
    )
    neither = ready("client", "edit", "Bob")
    assert neither.exit_code == 2
    assert "give --born DATE or --clear-born" in neither.stderr
    unheld = ready("client", "release", "Bob")
    assert unheld.exit_code == 1
    assert unheld.stderr.splitlines()[0].endswith("is not under a legal hold")
    within = ready("retention", "--within", "soon")
    assert within.exit_code == 2
    assert "is not a duration like 90d" in within.stderr
    huge = ready("retention", "--within", "99999999999y")
    assert huge.exit_code == 2
    assert "too long" in huge.stderr
    rule = ready("retention", "set", "--years", "200")
    assert (rule.exit_code, rule.stderr.splitlines()[0]) == (
        1,
        "confvault: error: --years must be between 0 and 150",
    )
    assert ready("retention", "set").exit_code == 2
    assert ready("retention", "set", "--years", "7", "--clear").exit_code == 2
    assert _json(ready("status", "--json"))["generation"] == before


def test_retention_list_json_and_human(ready) -> None:
    _setup(ready)
    empty = _json(ready("retention", "--json"))
    assert (empty["policy"], empty["due"], empty["held"]) == (None, [], 0)
    assert "no retention rule" in ready("retention").stderr
    assert (
        "7 years after last contact" in ready("retention", "set", "--years", "7").stdout
    )
    doc = _json(ready("retention", "list", "--json"))
    assert doc["policy"] == {"years": 7}
    (item,) = doc["due"]
    assert {k: item[k] for k in ("client_name", "last_contact", "due", "rule")} == {
        "client_name": "Ann Old",
        "last_contact": "2010-01-05",
        "due": "2017-01-05",
        "rule": "adult",
    }
    assert item["overdue_days"] > 3000
    human = ready("retention")
    assert "Ann Old" in human.stdout
    assert "2017-01-05" in human.stdout
    # a client's own rule
    own = _json(
        ready("retention", "set", "--client", "Ann", "--years", "150", "--json")
    )
    assert (own["scope"], own["rule"]) == ("client", {"years": 150})
    assert _json(ready("retention", "--json"))["due"] == []
    ready("retention", "set", "--client", "Ann", "--clear")
    assert len(_json(ready("retention", "--json"))["due"]) == 1
    ready("client", "hold", "Ann", "--reason", "audit")
    held = _json(ready("retention", "--json"))
    assert (held["due"], held["held"]) == ([], 1)


def test_apply_without_a_terminal_or_yes_exits_2_and_shreds_nothing(ready) -> None:
    _setup(ready)
    ready("retention", "set", "--years", "7")
    before = _json(ready("status", "--json"))["generation"]
    result = ready("retention", "apply")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "confvault: error: retention apply shreds records: it needs a confirmation "
        "on a terminal, or --yes; nothing was shredded"
    )
    assert _json(ready("status", "--json"))["generation"] == before
    assert _names(ready) == ["Ann Old", "Bob New"]


def test_apply_yes_shreds_the_due_spares_the_held_and_is_rerunnable(ready) -> None:
    _setup(ready)
    ready("client", "add", "Cy Held")
    ready("note", "add", "Cy Held", "--date", "2009-06-30", input="kept")
    ready("client", "hold", "Cy", "--reason", "litigation")
    ready("retention", "set", "--years", "7")
    doc = _json(ready("retention", "apply", "--yes", "--json"))
    assert doc["outcome"] == "done"
    assert [(r["notes"], r["files_destroyed"]) for r in doc["shredded"]] == [(1, 3)]
    assert (doc["skipped"], doc["failed"]) == ([], [])
    assert _names(ready) == ["Bob New", "Cy Held"]
    shreds = _json(ready("audit", "--action", "client-shred", "--json"))
    assert [(e["details"]["retention"], e["details"]["due"]) for e in shreds] == [
        ("adult", "2017-01-05")
    ]
    again = ready("retention", "apply", "--yes", "--json")
    assert again.exit_code == 3
    assert json.loads(again.stdout)["outcome"] == "nothing-to-do"
    assert ready("verify").exit_code == 0


def _on_terminal(ready, answer: bytes, *args: str) -> tuple[int, bytes]:
    """``confvault ARGS`` on a pseudo-terminal, typing ``answer`` at the
    confirmation prompt."""
    import os
    import pty
    import select
    import sys
    import time
    from pathlib import Path

    confvault = str(Path(sys.executable).parent / "confvault")
    vault = ready.vault
    argv = [confvault, "--vault", str(vault)]
    argv += ["--passphrase-file", str(vault.parent / "pass.txt"), *args]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.environ.update({"CONFVAULT_NO_SERVER": "1", "NO_COLOR": "1"})
        os.execv(confvault, argv)
    output, sent = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"to confirm: " in output:
            os.write(fd, answer + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output


def test_apply_on_a_terminal_lists_and_asks_for_a_typed_confirmation(ready) -> None:
    _setup(ready)
    ready("retention", "set", "--years", "7")
    code, output = _on_terminal(ready, b"no", "retention", "apply")
    assert code == 1, output
    assert b"Ann Old" in output
    assert b"not confirmed; nothing was shredded" in output
    assert _names(ready) == ["Ann Old", "Bob New"]
    code, output = _on_terminal(ready, b"shred", "retention", "apply")
    assert code == 0, output
    assert b"shredded client" in output
    assert _names(ready) == ["Bob New"]


def test_hold_without_a_reason_or_terminal_is_a_usage_error(ready) -> None:
    _setup(ready)
    result = ready("client", "hold", "Ann")
    assert result.exit_code == 2
    assert "'--reason'" in result.stderr
    assert "not given" in result.stderr
    assert _json(ready("client", "show", "Ann", "--json"))["hold"] is None
