"""Records changed on both devices since the last sync (issue 16): clients
added, renamed, a client's first note of a kind, addenda, drafts edited or
signed; merged record by record, every note on both devices, both verify;
what the merge cannot decide is refused (16) with nothing changed."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from tests.sync.conftest import Device, state_of
from tests.sync.test_crash_sync import (
    _kill_run,
    _points,
    _restore,
    _total,
)
from tests.vault import crash_runner


def _notes(device: Device) -> dict[str, str]:
    """Title -> body of every note, as the device shows it."""
    out = {}
    for n in json.loads(device.ok("note", "list", "--psychotherapy", "--json").stdout):
        out[str(n["title"])] = device.ok("note", "show", str(n["id"])).stdout
    return out


def _listed(device: Device) -> list[dict[str, object]]:
    return list(
        json.loads(device.ok("note", "list", "--psychotherapy", "--json").stdout)
    )


def _clients(device: Device) -> list[tuple[str, int]]:
    listed = json.loads(device.ok("client", "list", "--json").stdout)
    return sorted((str(c["name"]), int(c["notes"])) for c in listed)


def _merge(first: Device, second: Device) -> dict[str, object]:
    """First pushed; second merges, then both end equal and verify."""
    merged: dict[str, object] = second.json("sync")
    assert merged["action"] == "merged", merged
    assert first.json("sync")["action"] in ("pulled", "merged")
    assert second.json("sync")["action"] in ("pulled", "none")
    assert first.json("sync")["action"] in ("pulled", "none")
    assert first.files() == second.files()
    for device in (first, second):
        device.ok("verify", "--deep")
        device.ok("audit", "verify")
    assert _notes(first) == _notes(second)
    return merged


def _note_id(device: Device, title: str) -> str:
    (found,) = [n["id"] for n in _listed(device) if n["title"] == title]
    return str(found)


def _next_second() -> None:
    """Wait for the wall clock's next second."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


def _shared_draft(first: Device, second: Device) -> str:
    """A draft "d" written on the first device and synced to the second."""
    first.ok("note", "add", "Ada", "--draft", "--title", "d", input="v0\n")
    assert first.json("sync")["action"] == "pushed"
    assert second.json("sync")["action"] == "pulled"
    return _note_id(first, "d")


def test_a_first_note_of_a_kind_here_and_notes_there(
    first: Device, second: Device
) -> None:
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok(
        "note",
        "add",
        "Ada",
        "--kind",
        "psychotherapy",
        "--title",
        "psy",
        input="Process note.\n",
    )
    second.ok("note", "add", "Ada", "--title", "from b", input="B wrote.\n")
    _merge(first, second)
    notes = _notes(first)
    assert {"intake", "from a", "from b", "psy"} == notes.keys()
    assert "Process note." in notes["psy"]
    assert "A wrote." in notes["from a"]


def test_clients_added_on_both_sides_are_both_kept(
    first: Device, second: Device
) -> None:
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "add", "Grace", "--title", "g", input="G.\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "add", "Alan Turing")
    second.ok("note", "add", "Alan", "--title", "t", input="T.\n")
    second.ok("note", "add", "Ada", "--title", "ada b", input="B.\n")
    _merge(first, second)
    expected = [("Ada Lovelace", 2), ("Alan Turing", 1), ("Grace Hopper", 1)]
    assert _clients(first) == _clients(second) == expected


def test_a_client_added_here_only_is_kept(first: Device, second: Device) -> None:
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "add", "Alan Turing")
    _merge(first, second)
    assert _clients(first) == [("Ada Lovelace", 2), ("Alan Turing", 0)]


def test_a_rename_here_and_notes_there(first: Device, second: Device) -> None:
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "rename", "Ada", "Ada King")
    second.ok("client", "edit", "Ada", "--born", "1815-12-10")
    _merge(first, second)
    assert _clients(first) == [("Ada King", 2)]
    shown = json.loads(first.ok("client", "show", "Ada", "--json").stdout)
    assert shown["name"] == "Ada King"
    assert shown["born"] == "1815-12-10"


def test_addenda_to_the_same_signed_note_on_both_sides(
    first: Device, second: Device
) -> None:
    intake = _note_id(first, "intake")
    first.ok("note", "amend", intake, "--title", "add a", "-f", "-", input="A+\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok("note", "amend", intake, "--title", "add b", "-f", "-", input="B+\n")
    _merge(first, second)
    listed = {n["title"]: n for n in _listed(second)}
    assert listed["add a"]["addendum_of"] == listed["add b"]["addendum_of"] == intake
    assert "A+" in _notes(second)["add a"]
    assert "B+" in _notes(first)["add b"]


def test_different_drafts_edited_or_signed_on_both_sides(
    first: Device, second: Device
) -> None:
    for title in ("d1", "d2", "d3"):
        first.ok("note", "add", "Ada", "--draft", "--title", title, input="v0\n")
    assert first.json("sync")["action"] == "pushed"
    assert second.json("sync")["action"] == "pulled"
    d1, d2, d3 = (_note_id(first, t) for t in ("d1", "d2", "d3"))
    first.ok("note", "edit", d1, "-f", "-", input="edited on a\n")
    first.ok("note", "sign", d3)
    assert first.json("sync")["action"] == "pushed"
    second.ok("note", "edit", d2, "-f", "-", input="edited on b\n")
    second.ok("note", "sign", d2)
    _merge(first, second)
    notes = _notes(first)
    assert "edited on a" in notes["d1"]
    assert "edited on b" in notes["d2"]
    status = {n["title"]: n["status"] for n in _listed(first)}
    assert status == {"intake": "signed", "d1": "draft", "d2": "signed", "d3": "signed"}


def test_the_same_draft_edited_on_both_sides_keeps_both_versions(
    first: Device, second: Device
) -> None:
    d = _shared_draft(first, second)
    first.ok("note", "edit", d, "-f", "-", input="version a\n")
    assert first.json("sync")["action"] == "pushed"
    _next_second()  # B's edit is the later one (times are to the second)
    second.ok("note", "edit", d, "-f", "-", input="version b\n")
    merged = _merge(first, second)
    assert merged["duplicates"] == []
    (copy,) = merged["conflicts"]  # type: ignore[misc]
    for device in (first, second):
        notes = _notes(device)
        assert "version b" in notes["d"]
        assert "version a" in notes["d (conflict copy)"]
        listed = {n["title"]: n for n in _listed(device)}
        assert listed["d (conflict copy)"]["id"] == copy
        assert listed["d (conflict copy)"]["status"] == "draft"
        assert listed["d"]["id"] == d
        assert device.json("status")["merge"] == {
            "conflicts": [copy],
            "duplicates": [],
        }
        assert "1 conflict draft(s)" in device.ok("status").stderr


def test_a_client_added_on_both_sides_with_the_same_name_is_flagged(
    first: Device, second: Device
) -> None:
    first.ok("client", "add", "Grace Hopper")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "add", "Grace Hopper")
    merged = _merge(first, second)
    listed = json.loads(first.ok("client", "list", "--json").stdout)
    twins = sorted(c["id"] for c in listed if c["possible_duplicate"])
    assert [c["name"] for c in listed if c["possible_duplicate"]] == [
        "Grace Hopper"
    ] * 2
    assert merged["duplicates"] == [twins]
    assert merged["conflicts"] == []
    assert second.json("status")["merge"]["duplicates"] == [twins]
    warned = first.ok("client", "list").stderr
    assert (
        f"possible duplicates (the same name, e.g. added on two devices before a sync): {twins[0][:8]}, {twins[1][:8]}"
        in " ".join(warned.split())
    )


def test_the_same_client_renamed_apart_on_both_sides_is_refused(
    first: Device, second: Device
) -> None:
    first.ok("client", "rename", "Ada", "Ada King")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "rename", "Ada", "Countess Lovelace")
    second.ok("note", "add", "Countess", "--title", "b", input="B.\n")
    before = state_of(second)
    refused = second.run("sync")
    assert refused.exit_code == 16, refused.output
    assert "both this device and the remote changed" in refused.stderr
    assert state_of(second) == before


def _records(device: Device) -> tuple[object, ...]:
    notes = sorted(_listed(device), key=lambda n: str(n["id"]))
    clients = json.loads(device.ok("client", "list", "--json").stdout)
    return notes, clients, _notes(device)


def test_the_same_states_merge_to_the_same_records_on_either_device(
    first: Device, second: Device, tmp_path: Path, remote: Path
) -> None:
    d = _shared_draft(first, second)
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "add", "Ada", "--title", "from a", input="A wrote.\n")
    first.ok("note", "edit", d, "-f", "-", input="version a\n")
    second.ok("client", "rename", "Ada", "Ada King")
    second.ok("note", "add", "Ada", "--kind", "psychotherapy", "-t", "p", input="P\n")
    second.ok("client", "add", "Alan Turing")
    _next_second()  # B's edit is the later one (times are to the second)
    second.ok("note", "edit", d, "-f", "-", input="version b\n")
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
    assert [c["name"] for c in a1[1]] == ["Ada King", "Alan Turing", "Grace Hopper"]  # type: ignore[index]
    assert "version b" in a1[2]["d"]  # type: ignore[index]
    assert "version a" in a1[2]["d (conflict copy)"]  # type: ignore[index]


def _assert_killed_or_shorter(killed: Any, point: str) -> None:
    """Killed at ``point``, or finished in fewer durable steps: a merge
    seals new objects under random names, so how many objects/ directories
    and shards it writes (one durable step each) varies from run to run."""
    if killed.returncode == 0:
        assert _total(killed) < int(point.rstrip("+")), (point, killed.stderr[-600:])
    else:
        assert killed.returncode == -9, (point, killed.stderr[-600:])


def test_kill_at_every_durable_step_of_a_records_merge_then_rerun(
    first: Device, second: Device, tmp_path: Path, remote: Path, git: Any
) -> None:
    d = _shared_draft(first, second)
    first.ok("client", "add", "Grace Hopper")
    first.ok("note", "edit", d, "-f", "-", input="version a\n")
    assert first.json("sync")["action"] == "pushed"
    second.ok("client", "rename", "Ada", "Ada King")
    second.ok("note", "add", "Ada", "--kind", "psychotherapy", "-t", "p", input="P\n")
    _next_second()  # B's edit is the later one (times are to the second)
    second.ok("note", "edit", d, "-f", "-", input="version b\n")
    saved = tmp_path / "saved-b"
    shutil.copytree(second.vault, saved / "vault", symlinks=True)
    shutil.copytree(second.state, saved / "state", symlinks=True)
    shutil.copytree(remote, saved / "remote.git", symlinks=True)

    def restore() -> None:
        _restore(second, saved)
        shutil.rmtree(remote)
        shutil.copytree(saved / "remote.git", remote, symlinks=True)

    with crash_runner.servers(1) as pool:
        restore()  # counted as every killed run will run: from the copies
        total = _total(_kill_run(pool, second, "0"))
        assert total >= 5
        for point in _points(total):
            restore()
            killed = _kill_run(pool, second, point)
            _assert_killed_or_shorter(killed, point)
            rerun = second.run("sync", "--json")
            assert rerun.exit_code == 0, (point, rerun.output, rerun.stderr)
            action = json.loads(rerun.stdout)["action"]
            assert action in ("merged", "pushed", "recorded", "none"), (point, action)
            on_remote = git(
                f"--git-dir={remote}", "cat-file", "blob", "confvault:manifest"
            ).stdout
            assert on_remote == (second.vault / "manifest").read_text(), point
            assert sorted(p.name for p in (second.vault / "tmp").iterdir()) == []
    assert first.json("sync")["action"] == "pulled"
    assert first.files() == second.files()
    for device in (first, second):
        notes = _notes(device)
        assert {"intake", "d", "d (conflict copy)", "p"} == notes.keys()
        assert "version b" in notes["d"]
        assert "version a" in notes["d (conflict copy)"]
        assert _clients(device) == [("Ada King", 1), ("Grace Hopper", 0)]
        device.ok("verify", "--deep")
        device.ok("audit", "verify")
