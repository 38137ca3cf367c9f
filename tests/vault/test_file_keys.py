"""Each note's age file key, kept in its compartment's sealed index.

Reading many notes (search, rotation) opens them with the kept key instead of
an X25519 unwrap each. The key must be the right one, must never leave the
sealed index, must be replaced when the client key is rotated, and a note
whose entry has no key (or a wrong one) must be handled exactly.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from confvault import age
from confvault.errors import HeaderMacError, IntegrityError
from confvault.vault import Vault
from confvault.vault.model.index import NoteEntry
from confvault.vault.ops import compartments
from confvault.vault.ops.export_sinks import DirectorySink


def _records(vault: Vault, client: str) -> Any:
    """The client's records key, and its index entries as documents."""
    with vault.session.reading() as current:
        root = vault.session.root_record(current)
        comp = compartments.open_compartment(
            vault.session,
            root,
            compartments.resolve_client(vault.session, root, client),
            "records",
        )
    return SimpleNamespace(key=comp.key, notes=[e.to_doc() for e in comp.notes])


def _rewrite_index(vault: Vault, client: str, change: Any) -> None:
    """Commit an index changed by ``change(entries)`` through the vault's own writer
    (what a bug, or someone holding the owner key, could produce)."""
    with vault.session.writing() as txn:
        root = vault.session.root_record(txn.current)
        cid = compartments.resolve_client(vault.session, root, client)
        comp = compartments.open_compartment(vault.session, root, cid, "records")
        entries = [e.to_doc() for e in comp.notes]
        change(entries)
        notes = tuple(NoteEntry.from_doc(e, "index") for e in entries)
        index = replace(comp.index, notes=notes)
        comp = compartments.write_index(vault.session, txn, comp, index)
        root = root.with_compartment(cid, "records", comp.entry)
        vault.session.write_root(txn, root)


@pytest.fixture
def notes(vault: Vault, tmp_path: Path) -> list[str]:
    vault.add_client("Ann")
    ids = [
        vault.add_note("Ann", f"session {n}: sleep and work".encode(), title=f"S{n}").id
        for n in range(3)
    ]
    attached = tmp_path / "scan.pdf"
    attached.write_bytes(b"%PDF scan")
    vault.add_attachment("Ann", attached)
    return ids


def test_index_keeps_the_file_key_that_opens_each_note(
    vault: Vault, notes: list[str]
) -> None:
    comp = _records(vault, "Ann")
    text_notes = [e for e in comp.notes if e["kind"] != "attachment"]
    assert [e["id"] for e in text_notes] == notes
    for entry in text_notes:
        sealed = vault.store.get(entry["object"])
        file_key = base64.b64decode(entry["file_key"])
        assert age.decrypt_with_file_key(sealed, file_key) == age.decrypt(
            sealed, [comp.key]
        )
    # streamed attachments have none; they are opened with the client key
    assert [
        e for e in comp.notes if "file_key" in e and e["kind"] == "attachment"
    ] == []


def test_file_keys_never_leave_the_sealed_index(
    vault: Vault, notes: list[str], tmp_path: Path
) -> None:
    keys = [e["file_key"] for e in _records(vault, "Ann").notes if "file_key" in e]
    assert len(keys) == 3
    out = tmp_path / "export"
    vault.export_client("Ann", DirectorySink(out))
    exported = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    views = [vault.note(n) for n in notes]
    shown = (
        repr([v.to_json() for v in views])
        + repr([n.to_json() for n in vault.notes()])
        + repr([h.to_json() for h in vault.search("sleep")])
    )
    for key in keys:
        assert key.encode() not in exported
        assert key not in shown
    for path in vault.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert all(key.encode() not in data for key in keys), path


def test_a_wrong_kept_key_is_refused_by_show_search_and_deep_verify(
    vault: Vault, notes: list[str]
) -> None:
    def swap(entries: list[dict[str, Any]]) -> None:
        entries[0]["file_key"] = entries[1]["file_key"]

    _rewrite_index(vault, "Ann", swap)
    message = f"note {notes[0]} does not open with the file key its index keeps"
    with pytest.raises(IntegrityError, match=message):
        vault.note(notes[0])
    with pytest.raises(IntegrityError, match=message):
        vault.search("sleep")
    assert vault.note(notes[1]).body == b"session 1: sleep and work"
    assert vault.verify().ok  # keyless: every object is intact
    deep = vault.verify(deep=True)
    assert [(f.code, f.subject) for f in deep.findings if f.severity == "error"] == [
        ("note", notes[0])
    ]


def test_a_malformed_kept_key_is_refused(vault: Vault, notes: list[str]) -> None:
    def spoil(entries: list[dict[str, Any]]) -> None:
        entries[2]["file_key"] = "not base64!"

    _rewrite_index(vault, "Ann", spoil)
    with pytest.raises(
        IntegrityError, match=f"note {notes[2]} has a malformed file key"
    ):
        vault.note(notes[2])


def test_search_refuses_a_body_its_index_entry_does_not_name(
    vault: Vault, notes: list[str]
) -> None:
    def misname(entries: list[dict[str, Any]]) -> None:
        entries[1]["body_sha256"] = "0" * 64

    _rewrite_index(vault, "Ann", misname)
    with pytest.raises(
        IntegrityError, match=f"note {notes[1]} body does not match its index entry"
    ):
        vault.search("sleep")


def test_entries_without_a_kept_key_open_with_the_client_key_and_rotation_adds_one(
    vault: Vault, notes: list[str]
) -> None:
    def forget(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            entry.pop("file_key", None)

    _rewrite_index(vault, "Ann", forget)
    assert all("file_key" not in e for e in _records(vault, "Ann").notes)
    assert vault.note(notes[0]).body == b"session 0: sleep and work"
    assert [h.note.id for h in vault.search("sleep")] == sorted(notes)
    vault.rotate(all_clients=True)
    # every note re-sealed in memory gets one (the small attachment too)
    entries = _records(vault, "Ann").notes
    assert [e["id"] for e in entries if "file_key" in e] == [e["id"] for e in entries]
    assert len(entries) == 4
    assert vault.verify(deep=True).ok


def test_rotation_replaces_every_file_key_and_the_old_ones_open_nothing(
    vault: Vault, notes: list[str]
) -> None:
    before = {e["id"]: e for e in _records(vault, "Ann").notes}
    bodies = {n: vault.note(n).body for n in notes}
    vault.rotate(all_clients=True)
    after = _records(vault, "Ann")
    old_keys = [base64.b64decode(before[n]["file_key"]) for n in notes]
    for entry in after.notes:
        if entry["kind"] == "attachment":
            continue
        assert entry["object"] != before[entry["id"]]["object"]
        assert entry["file_key"] != before[entry["id"]]["file_key"]
        sealed = vault.store.get(entry["object"])
        for old_key in old_keys:
            with pytest.raises(HeaderMacError):
                age.decrypt_with_file_key(sealed, old_key)
        assert age.decrypt(sealed, [after.key]).endswith(bodies[entry["id"]])
    assert {n: vault.note(n).body for n in notes} == bodies
