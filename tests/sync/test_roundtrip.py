"""init + clone + sync round trips between real replicas."""

from __future__ import annotations

import json

from tests.sync.conftest import Device


def _note_text(device: Device, title: str) -> str:
    notes = json.loads(device.ok("note", "list", "--json").stdout)
    (entry,) = [n for n in notes if n["title"] == title]
    return device.ok("note", "show", entry["id"]).stdout


def test_clone_is_byte_identical_and_opens(first: Device, second: Device) -> None:
    assert second.files() == first.files()
    assert "First session." in _note_text(second, "intake")
    second.ok("verify", "--deep")


def test_a_note_written_on_a_appears_on_b_byte_identical(
    first: Device, second: Device
) -> None:
    first.ok("note", "add", "Ada", "--title", "second", input="Went well.\n")
    pushed = first.json("sync")
    assert pushed["action"] == "pushed"
    assert pushed["device"] == "laptop"
    pulled = second.json("sync")
    assert pulled["action"] == "pulled"
    assert pulled["commit"] == pushed["commit"]
    assert pulled["generation"] == pushed["generation"]
    assert pulled["objects_in"] > 0
    assert second.files() == first.files()
    assert "Went well." in _note_text(second, "second")
    second.ok("verify", "--deep")
    first.ok("verify", "--deep")


def test_changes_flow_both_ways_and_a_quiet_sync_does_nothing(
    first: Device, second: Device
) -> None:
    second.ok("client", "add", "Grace Hopper")
    second.ok("note", "add", "Grace", "--title", "from b", input="B wrote this.\n")
    assert second.json("sync")["action"] == "pushed"
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    assert first.json("sync")["action"] == "none"
    assert second.json("sync")["action"] == "none"
    assert "B wrote this." in _note_text(first, "from b")
    first.ok("verify", "--deep")


def test_both_sides_changed_is_refused_with_16_and_nothing_changes(
    first: Device, second: Device
) -> None:
    # records changed on both sides merge (test_merge_records.py); the same
    # client renamed apart on both sides cannot be decided
    from tests.sync.conftest import state_of

    first.ok("client", "rename", "Ada", "Ada King")
    first.ok("sync")
    second.ok("client", "rename", "Ada", "Countess Lovelace")
    before = state_of(second)
    result = second.run("sync")
    assert result.exit_code == 16, result.output
    assert "both this device and the remote changed" in result.stderr
    assert state_of(second) == before


def test_status_shows_the_last_sync_and_what_is_not_pushed(
    first: Device, second: Device
) -> None:
    doc = first.json("status")["sync"]
    assert doc["device"] == "laptop"
    assert doc["last_sync_device"] == "laptop"
    assert doc["unpushed"] is False
    first.ok("note", "add", "Ada", "--title", "later", input="x\n")
    assert first.json("status")["sync"]["unpushed"] is True
    text = first.ok("status").stdout
    assert "last sync" in text
    assert "not pushed" in text
    assert second.json("status")["sync"]["device"] == "desktop"
