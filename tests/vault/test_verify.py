"""Each corruption of a vault, built in code, is reported by verify and
refused by the commands that read it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from confvault.errors import IntegrityError, UnsafeInputError
from confvault.vault import Vault
from confvault.vault.check.keyless import verify_vault
from confvault.vault.ops import compartments
from confvault.vault.store.seen import SeenStore
from tests.vault.conftest import PASSPHRASE, reopen


@pytest.fixture
def filled(vault: Vault) -> tuple[Vault, list[str]]:
    vault.add_client("Ann")
    vault.add_client("Bob")
    ids = [vault.add_note("Ann", f"note {i}".encode()).id for i in range(3)]
    ids.append(vault.add_note("Bob", b"bob note").id)
    return vault, ids


def _object_of(vault: Vault, note_id: str) -> Path:
    root = vault.session.root_record(vault.manifest)
    for client_id in root.clients:
        comp = compartments.open_compartment(vault.session, root, client_id, "records")
        for entry in comp.notes:
            if entry.id == note_id:
                return vault.store.path(entry.object)
    raise AssertionError(note_id)


def _codes(vault: Vault, state_dir: Path) -> list[str]:
    report = verify_vault(vault.root, seen=SeenStore(state_dir))
    return sorted({f.code for f in report.findings if f.severity == "error"})


def test_clean_vault_verifies(filled, state_dir: Path) -> None:
    vault, _ = filled
    report = vault.verify(deep=True)
    assert report.ok
    assert report.findings == ()
    assert report.notes_checked == 4
    assert _codes(vault, state_dir) == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "delete"])
def test_damaged_note_object_detected_and_refused(
    filled, state_dir: Path, damage: str
) -> None:
    vault, ids = filled
    path = _object_of(vault, ids[1])
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-10]))
    elif damage == "extend":
        path.write_bytes(bytes(data) + b"\x00")
    else:
        path.unlink()
    expected = "object-missing" if damage == "delete" else "object-damaged"
    assert _codes(vault, state_dir) == [expected]
    with pytest.raises(IntegrityError):
        reopen(vault, state_dir).note(ids[1])
    assert (
        reopen(vault, state_dir).note(ids[0]).body == b"note 0"
    )  # the rest still reads
    deep = vault.verify(deep=True)
    assert not deep.ok
    assert {f.subject for f in deep.findings if f.code == "note"} == {ids[1]}


def test_swapped_notes_detected(filled, state_dir: Path) -> None:
    vault, ids = filled
    a, b = _object_of(vault, ids[0]), _object_of(vault, ids[1])
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    assert _codes(vault, state_dir) == ["object-damaged"]
    for note_id in ids[:2]:
        with pytest.raises(IntegrityError):
            reopen(vault, state_dir).note(note_id)


def test_rollback_of_whole_vault_detected(
    vault: Vault, tmp_path: Path, state_dir: Path
) -> None:
    vault.add_client("Ann")
    vault.add_note("Ann", b"first")
    snapshot = tmp_path / "snapshot"
    shutil.copytree(vault.root, snapshot)
    vault.add_note("Ann", b"second, later deleted by the attacker")
    shutil.rmtree(vault.root)
    shutil.copytree(snapshot, vault.root)
    assert _codes(vault, state_dir) == ["rollback"]
    with pytest.raises(IntegrityError, match="rolled back"):
        Vault.open(vault.root, passphrase=PASSPHRASE, state_dir=state_dir)


def test_replayed_old_manifest_detected(vault: Vault, state_dir: Path) -> None:
    vault.add_client("Ann")
    old = (vault.root / "manifest").read_bytes()
    vault.add_note("Ann", b"new")
    (vault.root / "manifest").write_bytes(old)
    assert "rollback" in _codes(vault, state_dir)


def test_tampered_manifest_signature(filled, state_dir: Path) -> None:
    vault, _ = filled
    path = vault.root / "manifest"
    doc = json.loads(path.read_text())
    doc["body"]["generation"] += 10
    path.write_text(json.dumps(doc))
    assert _codes(vault, state_dir) == ["manifest"]
    with pytest.raises(IntegrityError, match="signature"):
        reopen(vault, state_dir)


def test_manifest_from_another_vault_detected(
    filled, make_vault, state_dir: Path
) -> None:
    vault, _ = filled
    other, _ = make_vault("other")
    shutil.copy(other.root / "manifest", vault.root / "manifest")
    codes = _codes(vault, state_dir)
    assert "object-missing" in codes or "shard" in codes


def test_damaged_shard_detected(filled, state_dir: Path) -> None:
    vault, _ = filled
    shard = next((vault.root / "shards").iterdir())
    shard.write_bytes(shard.read_bytes() + b"0" * 64 + b"\n")
    assert _codes(vault, state_dir) == ["shard"]


def test_planted_symlink_reported_and_refused(
    filled, state_dir: Path, tmp_path: Path
) -> None:
    vault, ids = filled
    path = _object_of(vault, ids[0])
    outside = tmp_path / "outside"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    assert set(_codes(vault, state_dir)) == {"symlink", "object-unsafe"}
    with pytest.raises(UnsafeInputError):
        reopen(vault, state_dir).note(ids[0])


def test_a_fifo_in_place_of_an_object_is_reported_not_waited_on(
    filled, state_dir: Path
) -> None:
    """Opening a FIFO for reading waits for a writer: verify must not hang."""
    vault, ids = filled
    path = _object_of(vault, ids[0])
    path.unlink()
    os.mkfifo(path, 0o600)
    report = verify_vault(vault.root, seen=SeenStore(state_dir))
    assert [(f.code, f.subject) for f in report.findings if f.severity == "error"] == [
        ("object-unsafe", path.name)
    ]


def test_every_entry_of_the_tree_is_checked_in_walk_order(
    filled, state_dir: Path, tmp_path: Path
) -> None:
    """Permissions and symlinks at every depth, reported in os.walk's order
    (each directory's subdirectories, then its files, then deeper)."""
    vault, ids = filled
    root = vault.root
    obj = _object_of(vault, ids[0])
    os.chmod(obj, 0o644)
    os.chmod(root / "shards", 0o750)  # noqa: S103 - the hostile case under test
    (root / "objects" / "zz").symlink_to(tmp_path)
    report = verify_vault(vault.root, seen=SeenStore(state_dir))
    tree = [
        (f.code, f.subject)
        for f in report.findings
        if f.code in ("permissions", "symlink")
    ]
    expected = []
    for directory, subdirs, files in os.walk(root):
        for name in subdirs + files:
            path = Path(directory) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                expected.append(("symlink", rel))
            elif path.lstat().st_mode & 0o077:
                expected.append(("permissions", rel))
    assert tree == expected
    assert set(tree) == {
        ("permissions", str(obj.relative_to(root))),
        ("permissions", "shards"),
        ("symlink", "objects/zz"),
    }


def test_world_readable_vault_refused(filled, state_dir: Path) -> None:
    vault, _ = filled
    os.chmod(vault.root, 0o755)  # noqa: S103 - the hostile case under test
    assert "permissions" in _codes(vault, state_dir)
    with pytest.raises(UnsafeInputError, match="other users"):
        reopen(vault, state_dir)


def test_extra_files_are_warnings_not_errors(filled, state_dir: Path) -> None:
    vault, _ = filled
    bucket = next((vault.root / "objects").iterdir())
    (bucket / "stray").write_bytes(b"x")
    os.chmod(bucket / "stray", 0o600)
    report = verify_vault(vault.root, seen=SeenStore(state_dir))
    assert report.ok
    assert [(f.severity, f.code) for f in report.findings] == [
        ("warning", "unexpected-file")
    ]


def test_no_client_names_titles_or_text_on_disk(vault: Vault) -> None:
    vault.add_client("Zebulon Quixote", {"employer": "Acme Widgets"})
    vault.add_note(
        "Zebulon Quixote", b"Discussed the divorce.", title="Marriage counselling"
    )
    vault.add_note(
        "Zebulon Quixote",
        b"Secret process notes",
        kind="psychotherapy",
        date="2019-07-04",
    )
    needles = [
        b"Zebulon",
        b"Quixote",
        b"Acme",
        b"divorce",
        b"Marriage",
        b"process notes",
        b"2019-07-04",
        b"psychotherapy",
    ]
    for path in vault.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, (needle, path)


def test_sealed_sizes_are_padded_to_buckets(vault: Vault) -> None:
    vault.add_client("Ann")
    sizes = set()
    for n in (10, 150, 380):
        info = vault.add_note("Ann", b"x" * n)
        sizes.add(_object_of(vault, info.id).stat().st_size)
    assert len(sizes) == 1  # three different lengths, one sealed size
