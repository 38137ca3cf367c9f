"""grant / revoke / rotate: declared access equals actual access after each,
checked with confvault and with the stock `age` binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import (
    AgeError,
    IntegrityError,
    KeyFormatError,
    NotFoundError,
    ReadOnlyError,
    UnsafeInputError,
    WeakPassphraseError,
    WrongPassphraseError,
)
from confvault.vault import Vault
from confvault.vault.session import directories
from tests.vault.conftest import PASSPHRASE, reopen


def _objects(vault: Vault) -> dict[str, Path]:
    return {p.name: p for p in (vault.root / "objects").rglob("*") if p.is_file()}


def _stock_opens(
    age_bin: str, key_text: str, vault: Vault, tmp_path: Path
) -> dict[str, bytes]:
    """Every vault object the stock age binary opens with ``key_text``."""
    key = tmp_path / "key-under-test.txt"
    key.write_text(key_text)
    key.chmod(0o600)
    opened = {}
    for name, path in _objects(vault).items():
        done = subprocess.run(
            [age_bin, "-d", "-i", str(key), str(path)], capture_output=True, check=False
        )
        if done.returncode == 0:
            opened[name] = done.stdout
    return opened


@pytest.fixture
def practice(vault: Vault) -> dict[str, object]:
    ann = vault.add_client("Ann")
    bob = vault.add_client("Bob")
    notes = {
        "ann": [vault.add_note("Ann", f"ann {i}".encode()).id for i in range(3)],
        "bob": [vault.add_note("Bob", f"bob {i}".encode()).id for i in range(2)],
        "ann_pt": [vault.add_note("Ann", b"ann process", kind="psychotherapy").id],
    }
    return {"ann": ann, "bob": bob, "notes": notes}


def test_grantee_reads_exactly_the_granted_client(
    vault, practice, state_dir, tmp_path, age_bin
) -> None:
    supervisor = age.X25519Identity.generate()
    notes_before = {n: vault.note(n).info for n in practice["notes"]["ann"]}
    objects_before = set(_objects(vault))
    info = vault.grant(str(supervisor.recipient), clients=["Ann"], label="supervisor")
    assert (info.clients, info.all_clients, info.psychotherapy) == (
        ("Ann",),
        False,
        False,
    )
    # Granting re-wraps key files only: every note object is untouched.
    assert {vault.note(n).info.id for n in notes_before} == set(notes_before)
    added = set(_objects(vault)) - objects_before
    # client key, grantee directory, root index and the client's bucket, audit segment
    assert len(added) == 5

    reader = Vault.open(
        vault.root, reader=supervisor, state_dir=tmp_path / "grantee-state"
    )
    assert [c.name for c in reader.clients()] == ["Ann"]
    assert {n.id for n in reader.notes(psychotherapy=True)} == set(
        practice["notes"]["ann"]
    )
    assert reader.note(practice["notes"]["ann"][0]).body == b"ann 0"
    assert reader.note(practice["notes"]["ann"][0]).signature == "valid"
    with pytest.raises(NotFoundError):
        reader.note(practice["notes"]["bob"][0])
    with pytest.raises(ReadOnlyError):
        reader.add_note("Ann", b"x")

    # The stock age binary: the grantee key opens its directory and Ann's key...
    opened = _stock_opens(age_bin, supervisor.encode() + "\n", vault, tmp_path)
    key_texts = [
        t.decode() for t in opened.values() if t.startswith(b"# confvault client key")
    ]
    assert len(opened) == 2
    assert len(key_texts) == 1
    assert "# compartment: records" in key_texts[0]
    # ...and with that client key, exactly Ann's records notes (and her index).
    via_client = _stock_opens(age_bin, key_texts[0], vault, tmp_path)
    bodies = sorted(
        t.partition(b"\n")[2]
        for t in via_client.values()
        if t.startswith(b'{"addendum_of"')
    )
    assert bodies == [b"ann 0", b"ann 1", b"ann 2"]


def test_a_note_rebuilds_only_the_directories_of_grants_that_cover_its_client(
    vault, practice, tmp_path, monkeypatch
) -> None:
    """A grantee directory lists every client its grant covers; a note for
    another client must not rebuild it (that was O(clients) per note per
    grant), and one for a covered client must, so the grantee sees it."""
    ann_reader, bob_reader, everyone = (age.X25519Identity.generate() for _ in "abc")
    vault.grant(str(ann_reader.recipient), clients=["Ann"], label="ann")
    vault.grant(str(bob_reader.recipient), clients=["Bob"], label="bob")
    vault.grant(str(everyone.recipient), all_clients=True, label="all")
    built: list[str] = []
    real = directories._directory

    def counting(s, root, grant):
        built.append(grant.label)
        return real(s, root, grant)

    monkeypatch.setattr(directories, "_directory", counting)
    vault.add_note("Ann", b"ann new")
    assert built == ["ann", "all"]
    built.clear()
    new = vault.add_note("Bob", b"bob new").id
    assert built == ["bob", "all"]
    built.clear()
    vault.add_client("Cleo")  # no hint of what changed: every directory
    assert built == ["ann", "bob", "all"]
    for identity, sees in ((bob_reader, True), (ann_reader, False), (everyone, True)):
        reader = Vault.open(vault.root, reader=identity, state_dir=tmp_path / "g")
        assert (new in {n.id for n in reader.notes()}) is sees
    assert vault.verify(deep=True).ok


def test_all_grant_covers_clients_added_later_but_not_psychotherapy(
    vault, practice, tmp_path
) -> None:
    executor = age.X25519Identity.generate()
    vault.grant(str(executor.recipient), all_clients=True, label="executor")
    vault.add_client("Cleo")
    vault.add_note("Cleo", b"cleo 0")
    reader = Vault.open(vault.root, reader=executor, state_dir=tmp_path / "g")
    assert sorted(c.name for c in reader.clients()) == ["Ann", "Bob", "Cleo"]
    assert practice["notes"]["ann_pt"][0] not in {
        n.id for n in reader.notes(psychotherapy=True)
    }
    vault.grant(str(executor.recipient), all_clients=True, psychotherapy=True)
    reader = Vault.open(vault.root, reader=executor, state_dir=tmp_path / "g")
    assert practice["notes"]["ann_pt"][0] in {
        n.id for n in reader.notes(psychotherapy=True)
    }


def test_revoke_rotates_so_no_current_file_opens(
    vault, practice, state_dir, tmp_path, age_bin
) -> None:
    supervisor = age.X25519Identity.generate()
    vault.grant(str(supervisor.recipient), clients=["Ann"], label="supervisor")
    old_key_text = next(
        t
        for t in _stock_opens(
            age_bin, supervisor.encode() + "\n", vault, tmp_path
        ).values()
        if t.startswith(b"# confvault client key")
    ).decode()
    kept_copy = {
        n: p.read_bytes() for n, p in _objects(vault).items()
    }  # what the grantee copied
    bodies = {n: vault.note(n).body for ids in practice["notes"].values() for n in ids}

    report = vault.revoke("supervisor")
    assert report.grant_removed
    assert [(e.client_name, e.compartments, e.notes) for e in report.exposure] == [
        ("Ann", ("records",), 3)
    ]
    assert [(r.client_name, r.compartment, r.notes) for r in report.rotated] == [
        ("Ann", "records", 3)
    ]
    assert "cannot undo" in report.CANNOT_UNDO

    with pytest.raises(WrongPassphraseError):
        Vault.open(vault.root, reader=supervisor, state_dir=tmp_path / "g")
    assert _stock_opens(age_bin, supervisor.encode() + "\n", vault, tmp_path) == {}
    assert _stock_opens(age_bin, old_key_text, vault, tmp_path) == {}
    # What they copied before revocation still opens with the old client key.
    old_client_key = age.parse_identities(old_key_text)[0]
    still_open = [n for n, data in kept_copy.items() if _opens(data, old_client_key)]
    assert len(still_open) == 4  # Ann's 3 notes and her index
    again = reopen(vault, state_dir)
    assert {n: again.note(n).body for n in bodies} == bodies
    assert again.verify(deep=True).ok


def _opens(data: bytes, key: age.X25519Identity) -> bool:
    try:
        age.decrypt(data, [key])
    except AgeError:
        return False
    return True


def test_partial_revoke_of_all_grant(vault, practice, tmp_path) -> None:
    colleague = age.X25519Identity.generate()
    vault.grant(str(colleague.recipient), all_clients=True, label="cover")
    report = vault.revoke("cover", clients=["Bob"])
    assert not report.grant_removed
    assert [r.client_name for r in report.rotated] == ["Bob"]
    reader = Vault.open(vault.root, reader=colleague, state_dir=tmp_path / "g")
    assert [c.name for c in reader.clients()] == ["Ann"]


def test_rotate_all_reads_back_identical_and_signed(vault, practice, state_dir) -> None:
    ids = [n for group in practice["notes"].values() for n in group]
    before = {n: (vault.note(n).body, vault.note(n).signature) for n in ids}
    report = vault.rotate(all_clients=True)
    assert report.outcome == "done"
    assert sorted((r.client_name, r.compartment) for r in report.rotated) == [
        ("Ann", "psychotherapy"),
        ("Ann", "records"),
        ("Bob", "records"),
    ]
    assert sum(r.notes for r in report.rotated) == 6
    again = reopen(vault, state_dir)
    assert {n: (again.note(n).body, again.note(n).signature) for n in ids} == before
    assert again.verify(deep=True).findings == ()


def test_nightly_rotate_expired_grants_and_old_keys(
    vault, practice, clock, tmp_path
) -> None:
    temp = age.X25519Identity.generate()
    vault.grant(str(temp.recipient), clients=["Bob"], label="locum", until="2026-03-10")
    assert vault.rotate(dry_run=True).outcome == "nothing-to-do"
    clock.advance(days=10)
    planned = vault.rotate(dry_run=True)
    assert planned.revoked_grants == ("locum",)
    assert [r.client_name for r in planned.rotated] == ["Bob"]
    assert vault.grants()[0].label == "locum"  # dry run changed nothing
    done = vault.rotate()
    assert done.revoked_grants == ("locum",)
    assert vault.grants() == []
    with pytest.raises(WrongPassphraseError):
        Vault.open(vault.root, reader=temp, state_dir=tmp_path / "g")
    clock.advance(days=200)
    aged = vault.rotate()
    assert sorted((r.client_name, r.compartment) for r in aged.rotated) == [
        ("Ann", "psychotherapy"),
        ("Ann", "records"),
        ("Bob", "records"),
    ]
    assert vault.rotate().outcome == "nothing-to-do"
    assert [
        r.client_name for r in vault.rotate(older_than="1d", dry_run=True).rotated
    ] == []


def test_grant_guards(vault, practice) -> None:
    with pytest.raises(UnsafeInputError):
        vault.grant(str(vault.owner.recipient), all_clients=True)
    with pytest.raises(UnsafeInputError):
        vault.grant(str(age.X25519Identity.generate().recipient))
    with pytest.raises(NotFoundError):
        vault.revoke("nobody")


def test_a_classic_vault_refuses_a_post_quantum_grant_and_says_how_to_migrate(
    vault, practice
) -> None:
    # a classic vault (this file's fixture) cannot seal a client key to an
    # age1pq1 key beside its own X25519 one (age's label rule); a
    # post-quantum vault grants them: tests/vault/test_postquantum.py
    generation = vault.manifest.generation
    with pytest.raises(KeyFormatError, match=r"post-quantum.*`confvault migrate --pq`"):
        vault.grant(str(age.HybridIdentity.generate().recipient), all_clients=True)
    assert vault.grants() == []
    vault.add_client("Dora")  # the refused grant left nothing behind
    assert vault.manifest.generation == generation + 1


def test_change_passphrase_rewrites_only_owner_key(vault, practice, state_dir) -> None:
    before = vault.manifest.body.pointers
    objects_before = set(_objects(vault))
    vault.change_passphrase(b"another long passphrase")
    after = vault.manifest.body.pointers
    assert {k for k in after if after[k] != before.get(k)} == {"owner", "audit"}
    assert (
        len(set(_objects(vault)) - objects_before) == 2
    )  # owner key file, audit segment
    with pytest.raises(WrongPassphraseError):
        Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
    assert Vault.open(
        vault.root, passphrase=b"another long passphrase", state_dir=state_dir
    ).notes()
    with pytest.raises(WeakPassphraseError):
        vault.change_passphrase(b"short")


def test_identity_rotation_keeps_signatures_and_recovery(make_vault, state_dir) -> None:
    vault, recovery = make_vault()
    vault.add_client("Ann")
    note = vault.add_note("Ann", b"signed by the old key")
    old_signer = vault.manifest.body.signer
    result = vault.rotate_identity(PASSPHRASE)
    assert result["recovery_key_kept"] is True
    again = reopen(vault, state_dir)
    assert again.manifest.body.signer != old_signer
    assert again.note(note.id).signature == "valid"
    assert again.verify(deep=True).findings == ()
    assert (
        Vault.open(vault.root, recovery_key=recovery, state_dir=state_dir).notes()[0].id
        == note.id
    )
    assert vault.add_note("Ann", b"by the new key").status == "signed"


def test_forged_signer_change_detected(make_vault, state_dir) -> None:
    import dataclasses
    import shutil

    from confvault.vault.store import manifest

    vault, _ = make_vault()
    vault.add_client("Ann")
    impostor, _ = make_vault("impostor")
    # An attacker re-signs a manifest for this vault's ID with a key of their own.
    body = dataclasses.replace(
        impostor.manifest.body, vault_id=vault.manifest.body.vault_id
    )
    signature = impostor.owner.sign(manifest.canonical(body.to_json()))
    shutil.rmtree(vault.root / "shards")
    shutil.copytree(impostor.root / "shards", vault.root / "shards")
    (vault.root / "manifest").write_bytes(manifest.encode(body, signature))
    with pytest.raises(IntegrityError, match="different key"):
        Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)
