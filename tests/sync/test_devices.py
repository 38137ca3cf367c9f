"""The audit trail names the device that wrote each entry (issue 16): none
before the vault is connected, each device's own after, kept through a
merge; `audit --device NAME|ID` filters by it (exit 1 for a device no entry
names)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.sync.conftest import Device


def _trail(device: Device, *args: str) -> list[dict[str, object]]:
    return json.loads(device.ok("audit", *args, "--json").stdout)


def _device_id(device: Device) -> str:
    (path,) = (device.state / "confvault" / "sync").glob("*.json")
    return str(json.loads(path.read_text())["device_id"])


def test_each_entry_names_its_device_through_a_merge(
    first: Device, second: Device
) -> None:
    before = _trail(first)
    # A's entries up to `sync init` were written by a vault never connected.
    assert before
    assert all(e["device"] is None for e in before[:-1])
    a_id, b_id = _device_id(first), _device_id(second)
    assert a_id != b_id
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    first.ok("sync")
    second.ok("note", "list")  # an entry written on B
    assert second.json("sync")["action"] == "merged"
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    trail = _trail(first)
    devices = [(e["device"] or {}).get("name") for e in trail]
    adds = [e for e in trail if e["action"] == "note-add"]
    assert [(e["device"] or {}).get("name") for e in adds] == [None, "laptop"]
    lists = [e for e in trail if e["action"] == "note-list"]
    assert [e["device"] for e in lists] == [{"id": b_id, "name": "desktop"}]
    assert set(devices) == {None, "laptop", "desktop"}
    # The filter, by name and by ID, on either device, in text and JSON.
    laptop = _trail(second, "--device", "laptop")
    assert laptop == [e for e in trail if (e["device"] or {}).get("name") == "laptop"]
    assert laptop
    assert {"note-add"} <= {e["action"] for e in laptop}
    assert _trail(first, "--device", b_id) == [
        e for e in trail if e["device"] == {"id": b_id, "name": "desktop"}
    ]
    text = first.ok("audit", "--device", "desktop").stdout
    assert "note-list" in text
    assert "desktop" in text
    assert "note-add" not in text
    first.ok("audit", "verify")
    second.ok("audit", "verify")


def test_an_unknown_device_is_refused_with_exit_1(first: Device) -> None:
    done = first.run("audit", "--device", "toaster")
    assert done.exit_code == 1
    assert "no audit entry was written by a device named 'toaster'" in done.stderr


def test_this_device_with_no_entries_yet_is_known(
    devices: Callable[[str], Device], remote: Path
) -> None:
    a = devices("a")
    a.init_vault()
    assert a.run("audit", "--device", "laptop").exit_code == 1
    a.ok("sync", "init", str(remote), "--device", "laptop")
    # Only `sync init` ran since: its entries (if any) are this device's.
    entries = _trail(a, "--device", "laptop")
    assert all(e["device"] == {"id": _device_id(a), "name": "laptop"} for e in entries)
