"""A post-quantum vault (the default): every key and every sealed file hybrid
ML-KEM-768 + X25519, grants of the vault's kind only, the grantee inbox's MAC
without an X25519 agreement, and keyless verify and status telling files
sealed only to classic keys from their age headers."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import AgeError, KeyFormatError
from confvault.vault import Vault
from confvault.vault.session.trail import INBOX_DIR
from confvault.vault.store import signing
from confvault.vault.store.manifest import canonical
from tests.vault.conftest import PASSPHRASE, init_vault

PQ = b"age-encryption.org/v1\n-> mlkem768x25519 "


def _objects(vault: Vault) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in (vault.root / "objects").rglob("*")
        if p.is_file()
    }


@pytest.fixture
def pq(tmp_path: Path, state_dir: Path, clock) -> tuple[Vault, str | None]:
    return init_vault(tmp_path / "pq", state_dir, clock=clock, postquantum=True)


def test_init_makes_a_post_quantum_vault_by_default(tmp_path: Path) -> None:
    vault, recovery = Vault.init(
        tmp_path / "v",
        PASSPHRASE,
        work_factor=10,
        min_work_factor=10,
        state_dir=tmp_path / "state",
    )
    assert recovery is not None
    assert recovery.startswith("AGE-SECRET-KEY-PQ-1")
    assert vault.owner is not None
    assert isinstance(vault.owner.key, age.HybridIdentity)
    assert vault.status().key_kind == "postquantum"


def test_every_file_of_a_post_quantum_vault_is_sealed_to_hybrid_keys(
    pq, tmp_path: Path, state_dir: Path
) -> None:
    vault, recovery = pq
    ann = vault.add_client("Ann")
    vault.add_note(ann.id, b"sleep improved")
    vault.add_note(ann.id, b"process note", kind="psychotherapy")
    attachment = tmp_path / "consent.pdf"
    attachment.write_bytes(b"%PDF" + bytes(300_000))
    vault.add_attachment(ann.id, attachment)
    grantee = age.HybridIdentity.generate()
    vault.grant(str(grantee.recipient), clients=["Ann"])
    vault.rotate(all_clients=True)
    objects = _objects(vault)
    owner_file = vault.store.get(vault.manifest.pointer("owner"))
    kinds = {
        name: "scrypt" if data == owner_file else data[: len(PQ)] == PQ
        for name, data in objects.items()
    }
    assert sorted(set(kinds.values()), key=str) == [True, "scrypt"]
    assert list(kinds.values()).count("scrypt") == 1
    # the owner key file, opened with the passphrase, is a hybrid identity file
    text = age.decrypt(owner_file, [age.ScryptIdentity(PASSPHRASE, 22)]).decode()
    assert [type(k) for k in age.parse_identities(text)] == [age.HybridIdentity]
    assert str(vault.owner.recipient).startswith("age1pq1")
    # and the recovery key opens the vault
    again = Vault.open(vault.root, recovery_key=recovery, state_dir=state_dir)
    assert [n.title for n in again.notes(ann.id)][:1] == [vault.notes(ann.id)[0].title]
    status, report = vault.status(), vault.verify()
    assert (status.key_kind, status.classic_objects) == ("postquantum", 0)
    assert (report.ok, report.classic_objects) == (True, 0)


def test_new_client_keys_follow_the_vault_kind(pq, make_vault) -> None:
    for vault, prefix in (
        (pq[0], "AGE-SECRET-KEY-PQ-1"),
        (make_vault()[0], "AGE-SECRET-KEY-1"),
    ):
        ann = vault.add_client("Ann")
        vault.rotate(all_clients=True)
        root = vault.session.root_record(vault.manifest)
        entry = root.clients[ann.id].compartments["records"]
        text = age.decrypt(vault.store.get(entry.key), [vault.owner]).decode()
        keys = [line for line in text.splitlines() if line.startswith("AGE-")]
        assert len(keys) == 1
        assert keys[0].startswith(prefix), keys[0][:20]
        if prefix == "AGE-SECRET-KEY-1":
            assert not keys[0].startswith("AGE-SECRET-KEY-PQ")


def test_a_post_quantum_vault_grants_hybrid_keys_and_refuses_classic_ones(
    pq, state_dir: Path
) -> None:
    vault, _ = pq
    vault.add_client("Ann")
    note = vault.add_note("Ann", b"what the locum reads")
    generation = vault.manifest.generation
    with pytest.raises(KeyFormatError, match="age-keygen -pq"):
        vault.grant(str(age.X25519Identity.generate().recipient), all_clients=True)
    assert vault.grants() == []
    assert vault.manifest.generation == generation
    grantee = age.HybridIdentity.generate()
    info = vault.grant(str(grantee.recipient), clients=["Ann"], label="locum")
    assert (info.key_kind, info.clients) == ("postquantum", ("Ann",))
    reader = Vault.open(vault.root, reader=grantee, state_dir=state_dir)
    assert reader.note(note.id).body == b"what the locum reads"
    # its read went to the inbox, MACed with the grant's own key: folded in
    assert len(list((vault.root / INBOX_DIR).iterdir())) == 1
    owner = Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
    owner.add_client("Bob")
    assert list((vault.root / INBOX_DIR).iterdir()) == []
    reads = [e for e in owner.audit() if e.action == "note-show"]
    assert [(e.note, e.signed) for e in reads] == [(note.id, False)]
    assert reads[0].actor == f"grantee:{grantee.recipient}"


def test_an_inbox_entry_not_maced_with_the_grant_key_is_left_unfolded(
    pq, state_dir: Path
) -> None:
    vault, _ = pq
    vault.add_client("Ann")
    grantee = age.HybridIdentity.generate()
    vault.grant(str(grantee.recipient), clients=["Ann"])
    entry = {
        "action": "note-list",
        "client": None,
        "note": None,
        "details": {"notes": 3},
        "time": "2026-03-02T09:00:00Z",
        "actor": f"grantee:{grantee.recipient}",
        "from": str(grantee.recipient),
        "mac": "00" * 32,
    }
    inbox = vault.root / INBOX_DIR
    inbox.mkdir(exist_ok=True, mode=0o700)
    name = "ab" * 12 + ".age"
    sealed = age.encrypt(json.dumps(entry).encode(), [vault.owner.recipient])
    (inbox / name).write_bytes(sealed)
    (inbox / name).chmod(0o600)
    vault.add_client("Bob")
    assert [p.name for p in inbox.iterdir()] == [name]
    assert [e for e in vault.audit() if e.action == "note-list"] == []
    # the same entry MACed with the grant's key (as the grantee has it) is folded
    key = signing.unb64(vault.session.root_record(vault.manifest).grants[0].inbox_key)
    good = "cd" * 12 + ".age"
    body = {k: v for k, v in entry.items() if k != "mac"}
    entry["mac"] = hmac.new(key, canonical([good, body]), hashlib.sha256).hexdigest()
    sealed = age.encrypt(json.dumps(entry).encode(), [vault.owner.recipient])
    (inbox / good).write_bytes(sealed)
    (inbox / good).chmod(0o600)
    vault.add_client("Cleo")
    assert [p.name for p in inbox.iterdir()] == [name]
    assert [e.actor for e in vault.audit() if e.action == "note-list"] == [
        f"grantee:{grantee.recipient}"
    ]


def test_the_grant_mac_key_reaches_only_the_grantee_directory(pq) -> None:
    vault, _ = pq
    vault.add_client("Ann")
    grantee = age.HybridIdentity.generate()
    info = vault.grant(str(grantee.recipient), clients=["Ann"])
    root = vault.session.root_record(vault.manifest)
    key = root.grants[0].inbox_key
    assert key is not None
    assert len(signing.unb64(key)) == 32
    directory = vault.manifest.pointer(f"grantee:{info.id}")
    doc = json.loads(age.decrypt(vault.store.get(directory), [grantee]))
    assert doc["inbox_key"] == key
    with pytest.raises(AgeError):
        age.decrypt(vault.store.get(directory), [vault.owner])


def test_a_classic_vault_refuses_a_hybrid_grant_and_says_how_to_migrate(
    make_vault,
) -> None:
    vault, _ = make_vault()
    vault.add_client("Ann")
    with pytest.raises(KeyFormatError, match="confvault migrate --pq"):
        vault.grant(str(age.HybridIdentity.generate().recipient), all_clients=True)
    info = vault.grant(str(age.X25519Identity.generate().recipient), all_clients=True)
    assert info.key_kind == "classic"


def test_keyless_verify_and_status_count_files_sealed_only_to_classic_keys(
    make_vault,
) -> None:
    vault, _ = make_vault()
    vault.add_client("Ann")
    vault.add_note("Ann", b"a classic note")
    report, status = vault.verify(), vault.status()
    # everything but the owner key file (scrypt: the passphrase's)
    assert report.objects_checked == status.objects
    assert report.classic_objects == report.objects_checked - 1
    assert (status.key_kind, status.classic_objects) == (
        "classic",
        report.classic_objects,
    )


def test_identity_rotation_and_rekey_keep_post_quantum_keys(
    pq, state_dir: Path
) -> None:
    vault, recovery = pq
    note = vault.add_note(vault.add_client("Ann").id, b"kept")
    result = vault.rotate_identity(PASSPHRASE)
    assert result["recovery_key_kept"] is True
    again = Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
    assert isinstance(again.owner.key, age.HybridIdentity)
    by_recovery = Vault.open(vault.root, recovery_key=recovery, state_dir=state_dir)
    assert by_recovery.note(note.id).body == b"kept"
    report = again.rekey(PASSPHRASE, passphrase_changed=False)
    assert (len(report.rotated), report.failed) == (1, ())
    again = Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
    assert again.note(note.id).body == b"kept"
    assert (again.status().classic_objects, again.verify().classic_objects) == (0, 0)
