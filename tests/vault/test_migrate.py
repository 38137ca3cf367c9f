"""`migrate --pq` converts a classic vault in place: every file re-sealed to
post-quantum keys, grants to classic keys dropped and named, a new recovery
key, resumable; the stored old-format vault migrates too."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import AgeError, ConfvaultError, WrongPassphraseError
from confvault.vault import Vault
from tests.vault.conftest import PASSPHRASE

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vault-format-1"


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in (root / "objects").rglob("*") if p.is_file()
    }


def _bodies(vault: Vault) -> dict[str, bytes]:
    found = [*vault.notes(), *vault.notes(psychotherapy=True)]
    return {n.id: vault.note(n.id).body for n in found if n.kind != "attachment"}


def test_migrate_reseals_everything_to_post_quantum_keys(
    make_vault, state_dir: Path, tmp_path: Path
) -> None:
    vault, old_recovery = make_vault()
    assert vault.status().key_kind == "classic"
    ann = vault.add_client("Ann")
    vault.add_client("Bob")
    for i in range(3):
        vault.add_note(ann.id, f"note {i}".encode())
    vault.add_note("Bob", b"process", kind="psychotherapy")
    attachment = tmp_path / "scan.pdf"
    attachment.write_bytes(os.urandom(1_200_000))  # streamed when re-sealed
    vault.add_attachment("Bob", attachment)
    locum = age.X25519Identity.generate()
    vault.grant(str(locum.recipient), clients=["Ann"], label="locum")
    before = _bodies(vault)
    assert vault.verify().classic_objects == vault.status().objects - 1
    shown: list[str | None] = []
    report = vault.migrate_pq(PASSPHRASE, on_switched=shown.append)
    assert report.outcome == "done"
    assert report.switched
    assert report.dropped_grants == ("locum",)
    assert report.classic_objects == 0
    assert len(report.rotation.rotated) == 3  # Ann, Bob, Bob's psychotherapy
    assert report.rotation.failed == ()
    assert shown == [report.recovery_key]
    assert report.recovery_key.startswith("AGE-SECRET-KEY-PQ-1")
    assert report.to_json()["recovery_key"] == "replaced"
    vault = Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
    assert _bodies(vault) == before
    saved = tmp_path / "saved"
    with saved.open("wb") as f:
        att = next(n for n in vault.notes("Bob") if n.kind == "attachment")
        vault.save_attachment(att.id, f)
    assert saved.read_bytes() == attachment.read_bytes()
    deep = vault.verify(deep=True)
    assert (deep.ok, deep.findings, deep.classic_objects) == (True, (), 0)
    assert (vault.status().key_kind, vault.status().classic_objects) == (
        "postquantum",
        0,
    )
    assert vault.grants() == []
    # every live file: a hybrid stanza, or the passphrase's scrypt stanza
    heads = {data[:40] for data in _files(vault.root).values()}
    assert heads <= {
        b"age-encryption.org/v1\n-> mlkem768x25519 "[:40],
        *(h for h in heads if h.startswith(b"age-encryption.org/v1\n-> scrypt ")),
    }
    for data in _files(vault.root).values():
        with pytest.raises(AgeError):
            age.decrypt(data, [locum])
    with pytest.raises(WrongPassphraseError):
        Vault.open(vault.root, recovery_key=old_recovery, state_dir=state_dir)
    again = Vault.open(
        vault.root, recovery_key=report.recovery_key, state_dir=state_dir
    )
    assert _bodies(again) == before
    # new keys follow the new kind; a grant must now be post-quantum
    with pytest.raises(ConfvaultError, match="post-quantum"):
        vault.grant(str(locum.recipient), all_clients=True)
    pq_locum = age.HybridIdentity.generate()
    assert vault.grant(str(pq_locum.recipient), all_clients=True).key_kind == (
        "postquantum"
    )
    # a second run has nothing to do
    rerun = vault.migrate_pq(PASSPHRASE)
    assert (rerun.outcome, rerun.switched, rerun.recovery_key) == (
        "nothing-to-do",
        False,
        None,
    )


def test_the_stored_old_format_vault_migrates(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE / "vault.tar") as tar:
        tar.extractall(tmp_path, filter="tar")
    copy = tmp_path / "vault"
    expected = json.loads((FIXTURE / "expected.json").read_text())
    passphrase = expected["passphrase"].encode()
    state = tmp_path / "state"
    vault = Vault.open(copy, passphrase=passphrase, state_dir=state)
    before = _bodies(vault)
    report = vault.migrate_pq(passphrase)
    assert (report.outcome, report.classic_objects) == ("done", 0)
    assert len(report.rotation.rotated) == 3
    assert len(report.dropped_grants) == 1  # the fixture's one live grant
    again = Vault.open(copy, passphrase=passphrase, state_dir=state)
    assert _bodies(again) == before
    assert again.verify(deep=True).findings == ()
    grantee = age.parse_identity((FIXTURE / "grantee-identity.txt").read_text())
    with pytest.raises(ConfvaultError):
        Vault.open(copy, reader=grantee, state_dir=tmp_path / "g")
