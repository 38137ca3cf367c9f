"""Both devices changed the vault: merged when one side only read (its audit
entries), each entry kept and the chain verifiable; refused (16) when both
changed records."""

from __future__ import annotations

import json

from tests.sync.conftest import Device


def _trail(device: Device) -> list[dict[str, object]]:
    return json.loads(device.ok("audit", "--json").stdout)


def _keyed(entries: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(e["time"], e["action"], e["note"], e["actor"]) for e in entries}


def test_reads_here_and_a_note_there_are_merged(first: Device, second: Device) -> None:
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    a_before = _trail(first)
    first.ok("sync")
    second.ok("note", "list")  # a read: an audit entry on B only
    b_before = _trail(second)
    merged = second.json("sync")
    assert merged["action"] == "merged"
    pulled = first.json("sync")
    assert pulled["action"] == "pulled"
    assert pulled["generation"] == merged["generation"]
    assert first.files() == second.files()
    joined = _trail(second)
    assert _keyed(b_before) | _keyed(a_before) <= _keyed(joined)
    assert [e["seq"] for e in joined] == list(range(len(joined)))
    second.ok("audit", "verify")
    second.ok("verify", "--deep")
    assert "A wrote." in second.ok("note", "show", _note_id(second, "from a")).stdout
    first.ok("audit", "verify")


def test_a_note_here_and_reads_there_are_merged(first: Device, second: Device) -> None:
    first.ok("note", "list")  # A only reads, and pushes that
    a_trail = _trail(first)
    assert first.json("sync")["action"] == "pushed"
    second.ok("note", "add", "Ada", "--title", "from b", input="B wrote.\n")
    merged = second.json("sync")
    assert merged["action"] == "merged"
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    assert _keyed(a_trail) <= _keyed(_trail(second))
    second.ok("audit", "verify")
    assert "B wrote." in first.ok("note", "show", _note_id(first, "from b")).stdout
    first.ok("verify", "--deep")


def test_reads_on_both_sides_are_merged(first: Device, second: Device) -> None:
    first.ok("note", "list")
    first.ok("sync")
    second.ok("client", "list")
    merged = second.json("sync")
    assert merged["action"] == "merged"
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    second.ok("audit", "verify")


def _note_id(device: Device, title: str) -> str:
    notes = json.loads(device.ok("note", "list", "--json").stdout)
    (entry,) = [n for n in notes if n["title"] == title]
    return str(entry["id"])
