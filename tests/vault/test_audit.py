"""The audit trail: every read and change leaves an entry; tampering is detected."""

from __future__ import annotations

import json

import pytest

from confvault import age
from confvault.vault import Vault
from confvault.vault.check.keyless import verify_vault
from confvault.vault.session import trail
from confvault.vault.store import sealing
from confvault.vault.store.seen import SeenStore
from tests.vault.conftest import reopen


def _actions(vault: Vault) -> list[str]:
    return [e.action for e in vault.audit()]


def test_every_read_and_change_leaves_an_entry(vault: Vault, tmp_path) -> None:
    ann = vault.add_client("Ann")
    note = vault.add_note("Ann", b"x")
    vault.notes("Ann")
    vault.note(note.id)
    vault.search("x")
    vault.client("Ann")
    vault.clients()
    draft = vault.add_note("Ann", b"d", draft=True)
    vault.edit_draft(draft.id, b"e")
    vault.sign_note(draft.id)
    vault.amend(note.id, b"fix")
    vault.rename_client("Ann", "Ann B")
    vault.rotate(all_clients=True)
    entries = vault.audit()
    assert [e.action for e in entries] == [
        "vault-init",
        "client-add",
        "note-add",
        "note-list",
        "note-show",
        "note-search",
        "client-show",
        "client-list",
        "draft-add",
        "draft-edit",
        "note-sign",
        "note-amend",
        "client-rename",
        "key-rotate",
    ]
    assert [e.seq for e in entries] == list(range(14))
    assert entries[4].note == note.id
    assert entries[4].client == ann.id
    assert entries[4].client_name == "Ann B"
    assert all(e.signed and e.actor.startswith("owner:") for e in entries)
    assert _actions(vault)[-1] == "audit-show"  # reading the trail is recorded too
    assert vault.verify_audit() == []


def test_filters(vault: Vault) -> None:
    vault.add_client("Ann")
    vault.add_client("Bob")
    vault.add_note("Bob", b"x")
    assert [e.action for e in vault.audit(client="Bob")] == ["client-add", "note-add"]
    assert [e.action for e in vault.audit(action="note-add")] == ["note-add"]


def test_grantee_reads_are_recorded_unsigned(vault: Vault, tmp_path) -> None:
    vault.add_client("Ann")
    note = vault.add_note("Ann", b"x")
    grantee = age.X25519Identity.generate()
    vault.grant(str(grantee.recipient), clients=["Ann"], label="supervisor")
    reader = Vault.open(vault.root, reader=grantee, state_dir=tmp_path / "g")
    reader.note(note.id)
    assert len(list((vault.root / "audit-inbox").iterdir())) == 1
    assert vault.verify_audit()[0].code == "audit-inbox"
    vault.clients()  # the owner's next command folds the inbox in
    assert list((vault.root / "audit-inbox").iterdir()) == []
    shown = [e for e in vault.audit() if e.action == "note-show"]
    assert len(shown) == 1
    assert shown[0].signed is False
    assert shown[0].actor == f"grantee:{grantee.recipient}"
    assert shown[0].note == note.id


def test_chain_spans_segments(vault: Vault) -> None:
    vault.add_client("Ann")
    vault.add_notes("Ann", [(f"n{i}", "2026-01-01", b"x") for i in range(300)])
    entries = vault.audit()
    assert [e.seq for e in entries] == list(range(len(entries)))
    assert len(entries) == 302
    assert len(trail.segments(vault.session)) == 2
    assert vault.verify_audit() == []
    assert vault.verify(deep=True).findings == ()


def _head(vault: Vault):
    digest = vault.manifest.pointer("audit")
    return digest, vault.store.path(digest)


@pytest.mark.parametrize(
    "attack", ["flip", "truncate", "drop-last", "reorder", "delete"]
)
def test_tampering_with_the_trail_is_detected(
    vault: Vault, state_dir, attack: str
) -> None:
    vault.add_client("Ann")
    vault.add_note("Ann", b"x")
    _, old_path = _head(vault)
    old_copy = old_path.read_bytes()
    vault.add_note("Ann", b"y")
    digest, path = _head(vault)
    data = path.read_bytes()
    if attack == "flip":
        path.write_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    elif attack == "truncate":
        path.write_bytes(data[:-40])
    elif (
        attack == "drop-last"
    ):  # an older copy of the segment, without the newest entry
        path.write_bytes(old_copy)
    elif attack == "reorder":
        doc = sealing.open_document(data, [vault.owner.key], "audit")
        doc["entries"][1], doc["entries"][2] = doc["entries"][2], doc["entries"][1]
        path.write_bytes(sealing.seal_document(doc, [vault.owner.recipient]))
    else:
        path.unlink()
    keyless = verify_vault(vault.root, seen=SeenStore(state_dir))
    assert not keyless.ok
    assert {f.subject for f in keyless.findings if f.severity == "error"} == {digest}
    findings = reopen(vault, state_dir).verify_audit()
    assert [f.code for f in findings] == ["audit-segment"]


def test_logically_broken_chain_is_reported(vault: Vault) -> None:
    """Even a correctly signed segment must hold a consistent chain."""
    vault.add_client("Ann")
    vault.add_note("Ann", b"x")
    with vault.session.writing() as txn:
        digest = txn.current.pointer("audit")
        doc = sealing.open_document(vault.store.get(digest), [vault.owner.key], "audit")
        doc["entries"][1]["action"] = (
            "nothing-to-see"  # altered without fixing the hash
        )
        del doc["entries"][0]  # and the first entry removed
        txn.retire(digest)
        txn.point("audit", txn.put_document(doc, [vault.owner.recipient]))
        vault.session.audit_pending.clear()
    codes = sorted({f.code for f in vault.verify_audit()})
    assert codes == ["audit-altered", "audit-chain", "audit-sequence"]
    assert json.dumps([f.to_json() for f in vault.verify_audit()])
