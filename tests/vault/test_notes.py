"""Clients and notes through the library: exact outcomes and typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from confvault.errors import (
    AmbiguousNameError,
    ClientNotFoundError,
    NoteLockedError,
    NoteNotFoundError,
    UnsafeInputError,
    VaultExistsError,
)
from confvault.vault import Vault
from tests.vault.conftest import reopen


def test_add_client_and_note_round_trip(vault: Vault, state_dir: Path) -> None:
    client = vault.add_client("Ann Example", {"dob": "1990-01-01"})
    note = vault.add_note(
        "Ann Example", b"Slept better.\n", title="Session 1", date="2026-03-01"
    )
    again = reopen(vault, state_dir)
    view = again.note(note.id)
    assert view.body == b"Slept better.\n"
    assert view.signature == "valid"
    assert view.info.title == "Session 1"
    assert view.info.date == "2026-03-01T00:00:00Z"
    assert view.info.client == client.id
    assert again.client(client.id[:6]).fields == {"dob": "1990-01-01"}


def test_client_names_are_unique_case_insensitive(vault: Vault) -> None:
    vault.add_client("Ann Example")
    with pytest.raises(VaultExistsError):
        vault.add_client("ann example")


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "",
        "  ",
        "x\x00y",
        "evil\u202eman",
        "tab\tname\n",
        "x" * 201,
        " lead",
    ],
)
def test_hostile_client_names_refused_and_nothing_changes(
    vault: Vault, name: str
) -> None:
    generation = vault.manifest.generation
    with pytest.raises(UnsafeInputError):
        vault.add_client(name)
    assert vault.manifest.generation == generation
    assert vault.clients() == []


def test_unknown_client(vault: Vault) -> None:
    with pytest.raises(ClientNotFoundError):
        vault.add_note("nobody", b"x")


def test_client_resolution_by_id_prefix_and_ambiguity(vault: Vault) -> None:
    a = vault.add_client("A")
    vault.add_client("B")
    assert vault.client(a.id[:8]).name == "A"
    with pytest.raises((AmbiguousNameError, ClientNotFoundError)):
        vault.client("")


def test_a_whole_client_id_wins_over_a_client_named_like_it(vault: Vault) -> None:
    a = vault.add_client("A")
    named = vault.add_client(a.id)  # a client whose name is A's ID
    assert vault.client(a.id).id == a.id
    assert vault.client(a.id.upper()).id == a.id
    assert vault.client(f" {a.id} ").id == a.id
    assert vault.client(named.id).name == a.id


def test_drafts_edit_then_sign_then_locked(vault: Vault) -> None:
    vault.add_client("Ann")
    draft = vault.add_note("Ann", b"first", draft=True)
    assert vault.note(draft.id).signature == "draft"
    vault.edit_draft(draft.id, b"second", title="Better title")
    signed = vault.sign_note(draft.id)
    assert signed.status == "signed"
    view = vault.note(draft.id)
    assert (view.body, view.signature, view.info.title) == (
        b"second",
        "valid",
        "Better title",
    )
    with pytest.raises(NoteLockedError):
        vault.edit_draft(draft.id, b"third")
    with pytest.raises(NoteLockedError):
        vault.sign_note(draft.id)


def test_amend_links_addendum_and_keeps_original(vault: Vault) -> None:
    vault.add_client("Ann")
    original = vault.add_note("Ann", b"orig")
    addendum = vault.amend(original.id, b"correction")
    assert addendum.kind == "addendum"
    assert addendum.addendum_of == original.id
    assert vault.note(original.id).body == b"orig"
    assert vault.note(original.id).info.addenda == (addendum.id,)
    draft = vault.add_note("Ann", b"d", draft=True)
    with pytest.raises(NoteLockedError):
        vault.amend(draft.id, b"x")


def test_psychotherapy_notes_are_a_separate_compartment(vault: Vault) -> None:
    vault.add_client("Ann")
    progress = vault.add_note("Ann", b"progress text about sleep")
    pt = vault.add_note("Ann", b"process notes about sleep", kind="psychotherapy")
    assert [n.id for n in vault.notes()] == [progress.id]
    assert {n.id for n in vault.notes(psychotherapy=True)} == {progress.id, pt.id}
    assert [n.id for n in vault.notes(kind="psychotherapy")] == [pt.id]
    assert [h.note.id for h in vault.search("sleep")] == [progress.id]
    assert {h.note.id for h in vault.search("sleep", psychotherapy=True)} == {
        progress.id,
        pt.id,
    }
    root = vault.session.root_record(vault.manifest).to_doc()
    comps = next(iter(root["clients"].values()))["compartments"]
    assert set(comps) == {"records", "psychotherapy"}
    assert comps["records"]["key"] != comps["psychotherapy"]["key"]


def test_list_filters_by_date_kind_client(vault: Vault, clock) -> None:
    vault.add_client("Ann")
    vault.add_client("Bob")
    a1 = vault.add_note("Ann", b"x", date="2026-01-10")
    a2 = vault.add_note("Ann", b"y", date="2026-02-10", kind="intake")
    b1 = vault.add_note("Bob", b"z", date="2026-02-11")
    assert [n.id for n in vault.notes()] == [a1.id, a2.id, b1.id]
    assert [n.id for n in vault.notes("Ann")] == [a1.id, a2.id]
    assert [n.id for n in vault.notes(since="2026-02-01")] == [a2.id, b1.id]
    assert [n.id for n in vault.notes(until="2026-02-10")] == [a1.id, a2.id]
    assert [n.id for n in vault.notes(kind="intake")] == [a2.id]
    with pytest.raises(UnsafeInputError):
        vault.notes(since="last tuesday")


def test_search_snippets_highlight_matches(vault: Vault) -> None:
    vault.add_client("Ann")
    note = vault.add_note("Ann", b"We discussed WORK stress and sleep.", title="S1")
    hits = vault.search("work")
    assert [h.note.id for h in hits] == [note.id]
    assert hits[0].snippets == (("S1 We discussed ", "WORK", " stress and sleep."),)
    assert vault.search("absent") == []
    with pytest.raises(UnsafeInputError):
        vault.search("  ")


def test_note_prefix_resolution(vault: Vault) -> None:
    vault.add_client("Ann")
    note = vault.add_note("Ann", b"x")
    assert vault.note(note.id[:10]).info.id == note.id
    with pytest.raises(NoteNotFoundError):
        vault.note("ffffffffffffffff")
    with pytest.raises(NoteNotFoundError):
        vault.note("../etc")


def test_rename_client(vault: Vault) -> None:
    client = vault.add_client("Ann")
    vault.add_note("Ann", b"x")
    vault.rename_client("Ann", "Ann B. Example")
    assert vault.client(client.id).name == "Ann B. Example"
    assert vault.notes()[0].client_name == "Ann B. Example"
    vault.add_client("Other")
    with pytest.raises(VaultExistsError):
        vault.rename_client("Other", "ann b. example")


def test_import_uses_front_matter_and_mtime(vault: Vault, tmp_path: Path) -> None:
    vault.add_client("Ann")
    with_front = tmp_path / "a.md"
    with_front.write_text(
        "---\ntitle: First session\ndate: 2025-05-04\n---\nBody one\n"
    )
    plain = tmp_path / "second-session.txt"
    plain.write_text("Body two\n")
    import os

    os.utime(plain, (1_700_000_000, 1_700_000_000))
    generation = vault.manifest.generation
    infos = vault.import_notes("Ann", [with_front, plain])
    assert vault.manifest.generation == generation + 1  # one commit
    assert [(i.title, i.date) for i in infos] == [
        ("First session", "2025-05-04T00:00:00Z"),
        ("second-session", "2023-11-14T22:13:20Z"),
    ]
    assert vault.note(infos[0].id).body == b"Body one\n"
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UnsafeInputError):
        vault.import_notes("Ann", [binary])
    assert len(vault.notes()) == 2


def test_attachment_streams_and_verifies(vault: Vault, tmp_path: Path) -> None:
    import io
    import os

    vault.add_client("Ann")
    src = tmp_path / "consent.pdf"
    src.write_bytes(os.urandom(200_000))
    info = vault.add_attachment("Ann", src, title="Consent")
    assert (info.kind, info.filename, info.size) == (
        "attachment",
        "consent.pdf",
        200_000,
    )
    out = io.BytesIO()
    vault.save_attachment(info.id, out)
    assert out.getvalue() == src.read_bytes()
    with pytest.raises(UnsafeInputError):
        vault.add_attachment("Ann", tmp_path / "missing.pdf")


def test_invalid_kind_refused(vault: Vault) -> None:
    vault.add_client("Ann")
    with pytest.raises(UnsafeInputError):
        vault.add_note("Ann", b"x", kind="attachment")
