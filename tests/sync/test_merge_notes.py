"""Notes added on both devices since the last sync: both present everywhere,
byte-identical, the audit trail joined; any other change on both sides is
still refused (16) with nothing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.sync.conftest import Device, state_of
from tests.sync.test_crash_sync import (
    _restore,
    kill_every_step_of_a_merge,
)


def _notes(device: Device) -> dict[str, str]:
    """Title -> body of every note, as the device shows it."""
    out = {}
    for n in json.loads(device.ok("note", "list", "--json").stdout):
        out[str(n["title"])] = device.ok("note", "show", str(n["id"])).stdout
    return out


def _trail(device: Device) -> set[tuple[object, ...]]:
    entries = json.loads(device.ok("audit", "--json").stdout)
    return {(e["time"], e["action"], e["note"], e["actor"]) for e in entries}


def _both_write(first: Device, second: Device, b_client: str) -> None:
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    first.ok("note", "add", "Ada", "--title", "from a 2", input="A again.\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok("note", "add", b_client, "--title", "from b", input="B wrote.\n")


def _check_merged(first: Device, second: Device) -> None:
    a_trail, b_trail = _trail(first), _trail(second)
    merged = second.json("sync")
    assert merged["action"] == "merged"
    # A read its trail after its push: an audit entry, merged in turn
    again = first.json("sync")
    assert again["action"] == "merged"
    assert again["generation"] == merged["generation"] + 1
    assert second.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    for device in (first, second):
        notes = _notes(device)
        assert {"intake", "from a", "from a 2", "from b"} <= notes.keys()
        assert "A wrote." in notes["from a"]
        assert "B wrote." in notes["from b"]
        device.ok("verify", "--deep")
        device.ok("audit", "verify")
        assert a_trail | b_trail <= _trail(device)
    assert _notes(first) == _notes(second)


def test_notes_added_on_both_sides_to_the_same_client(
    first: Device, second: Device
) -> None:
    _both_write(first, second, "Ada")
    _check_merged(first, second)


def test_notes_added_on_both_sides_to_different_clients(
    first: Device, second: Device
) -> None:
    second.ok("client", "add", "Grace Hopper")
    second.ok("note", "add", "Grace", "--title", "g", input="G.\n")
    assert second.json("sync")["action"] == "pushed"
    assert first.json("sync")["action"] == "pulled"
    _both_write(first, second, "Grace")
    _check_merged(first, second)


def test_a_profile_changed_apart_on_both_sides_is_still_refused(
    first: Device, second: Device
) -> None:
    # a rename here and a note there merge now (test_merge_records.py); the
    # same profile field set apart on both sides cannot be decided
    first.ok("client", "edit", "Ada", "--born", "1815-12-10")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "edit", "Ada", "--born", "1815-12-11")
    before = state_of(second)
    refused = second.run("sync")
    assert refused.exit_code == 16, refused.output
    assert state_of(second) == before


def test_kill_at_every_durable_step_of_a_notes_merge_then_rerun(
    first: Device, second: Device, tmp_path: Path, remote: Path, git: Any
) -> None:
    _both_write(first, second, "Ada")
    total = kill_every_step_of_a_merge(second, tmp_path / "saved-b", remote, git)
    assert total >= 5
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    for device in (first, second):
        notes = _notes(device)
        assert {"intake", "from a", "from a 2", "from b"} <= notes.keys()
        assert "B wrote." in notes["from b"]
        device.ok("verify", "--deep")
        device.ok("audit", "verify")


def _records(device: Device) -> tuple[object, ...]:
    notes = json.loads(device.ok("note", "list", "--json").stdout)
    clients = json.loads(device.ok("client", "list", "--json").stdout)
    return notes, clients, _notes(device)


def test_the_same_states_merge_to_the_same_records_on_either_device(
    first: Device, second: Device, tmp_path: Path, remote: Path
) -> None:
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    second.ok("note", "add", "Ada", "--title", "from b", input="B wrote.\n")
    second.ok("note", "add", "Ada", "--title", "from b 2", input="B again.\n")
    saved = tmp_path / "saved"
    for device in (first, second):
        shutil.copytree(device.vault, saved / device.name / "vault", symlinks=True)
        shutil.copytree(device.state, saved / device.name / "state", symlinks=True)
    shutil.copytree(remote, saved / "remote.git", symlinks=True)

    seen = []
    for pusher, merger in ((first, second), (second, first)):
        for device in (first, second):
            _restore(device, saved / device.name)
        shutil.rmtree(remote)
        shutil.copytree(saved / "remote.git", remote, symlinks=True)
        assert pusher.json("sync")["action"] == "pushed"
        assert merger.json("sync")["action"] == "merged"
        assert pusher.json("sync")["action"] == "pulled"
        seen.append((_records(pusher), _records(merger)))
    (a1, b1), (b2, a2) = seen
    assert a1 == b1 == a2 == b2
    titles = [n["title"] for n in a1[0]]  # type: ignore[index]
    assert sorted(titles) == ["from a", "from b", "from b 2", "intake"]
