"""A vault on read-only media: reads work and are spooled on this machine,
folded into the trail (once, with their time) on the next writable open;
writes are refused; the vault is left byte for byte as it was.

The media is a real read-only bind mount (root only: elsewhere these tests
skip, saying why; CI runs as root and must run them).
"""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import StorageError, VaultReadOnlyError
from confvault.vault import Vault
from confvault.vault.ops.export_sinks import DirectorySink
from confvault.vault.store.spool import Spool
from tests.conftest import _unavailable
from tests.vault.conftest import PASSPHRASE, Clock

ROOT_ONLY = "a read-only bind mount needs root (mount --bind, remount,ro)"


def listing(top: Path) -> dict[str, tuple[int, int, int, int, str]]:
    """Every entry under ``top``: mode, owner, size, mtime and content hash."""
    out = {}
    for path in sorted([top, *top.rglob("*")]):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(top))] = (
            info.st_mode,
            info.st_uid,
            info.st_size,
            info.st_mtime_ns,
            digest,
        )
    return out


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Mount a directory read-only (a bind mount, remounted ro) at a new path."""
    if os.geteuid() != 0:
        _unavailable(ROOT_ONLY)  # skips here; under CI (root) it fails
    mounted: list[Path] = []

    def mount(source: Path) -> Path:
        target = tmp_path / f"ro-{len(mounted)}"
        target.mkdir(mode=0o700)
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        mounted.append(target)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], check=True)
        return target

    try:
        yield mount
    finally:
        gc.collect()  # sessions hold a descriptor of the vault directory
        for target in reversed(mounted):
            if subprocess.run(["umount", str(target)], check=False).returncode:
                subprocess.run(["umount", "-l", str(target)], check=False)
        for target in mounted:
            assert not os.path.ismount(target), f"{target} is still mounted"


def _open(path: Path, state_dir: Path, clock: Clock) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE, state_dir=state_dir, clock=clock)


def _with_a_note(vault: Vault) -> str:
    vault.add_client("Ann")
    return vault.add_note("Ann", b"Session went well.").id


def test_owner_reads_read_only_media_and_the_spool_folds_once(
    vault: Vault, read_only_mount, state_dir: Path, clock: Clock, tmp_path: Path
) -> None:
    note = _with_a_note(vault)
    ro = read_only_mount(vault.root)
    before = listing(vault.root)
    clock.advance(hours=1)
    read_at = clock.now.isoformat().replace("+00:00", "Z")

    reader = _open(ro, state_dir, clock)
    assert reader.read_only
    assert reader.note(note).body == b"Session went well."
    assert [n.id for n in reader.notes("Ann")] == [note]
    assert [h.note.id for h in reader.search("went")] == [note]
    assert [c.name for c in reader.clients()] == ["Ann"]
    assert "note-add" in [e.action for e in reader.audit()]
    assert reader.status().notes == 1
    assert reader.verify().ok
    reader.export_client("Ann", DirectorySink(tmp_path / "export"))
    assert reader.spooled == 6  # show, list, search, client list, audit, export
    with pytest.raises(VaultReadOnlyError, match="read-only here"):
        reader.add_client("Bob")
    with pytest.raises(VaultReadOnlyError):
        reader.add_note("Ann", b"more")
    assert listing(vault.root) == before  # nothing in the vault changed
    assert listing(ro) == listing(vault.root)

    spool = Spool(state_dir, vault.vault_id)
    assert len(spool.names()) == 6
    assert (spool.path.stat().st_mode & 0o777) == 0o700
    assert {(spool.path / n).stat().st_mode & 0o777 for n in spool.names()} == {0o600}
    assert b"note-show" not in b"".join(spool.read(n) for n in spool.names())

    clock.advance(hours=1)
    owner = _open(vault.root, state_dir, clock)  # writable again: folds on open
    assert not owner.read_only
    assert spool.names() == []
    spooled = [e for e in owner.audit() if e.time == read_at]
    assert [e.action for e in spooled] == [
        "note-show",
        "note-list",
        "note-search",
        "client-list",
        "audit-show",
        "export",
    ]
    assert all(e.signed and e.actor.startswith("owner:") for e in spooled)
    assert spooled[0].note == note
    assert owner.verify_audit() == []
    again = _open(vault.root, state_dir, clock)  # folded once, never twice
    assert [e.time for e in again.audit()].count(read_at) == 6


def test_a_tampered_or_forged_spool_entry_is_refused(
    vault: Vault, read_only_mount, state_dir: Path, clock: Clock
) -> None:
    note = _with_a_note(vault)
    ro = read_only_mount(vault.root)
    reader = _open(ro, state_dir, clock)
    reader.note(note)
    reader.clients()
    spool = Spool(state_dir, vault.vault_id)
    tampered, kept = spool.names()
    data = bytearray(spool.read(tampered))
    data[-20] ^= 1  # a flipped bit in the sealed payload
    (spool.path / tampered).write_bytes(bytes(data))
    # Anyone can seal to the owner's public key: the MAC is what they lack.
    forged = b'{"action": "note-show", "client": null, "note": null, "details": {},'
    forged += b' "time": "2020-01-01T00:00:00Z", "actor": "owner:x", "mac": "00"}'
    forged_name = "o-" + "ab" * 12 + ".age"
    spool.put(forged_name, age.encrypt(forged, [vault.owner.recipient]))

    owner = _open(vault.root, state_dir, clock)
    assert sorted(owner.spool_refused) == sorted([tampered, forged_name])
    assert sorted(spool.names()) == sorted(
        [tampered.replace(".age", ".refused"), forged_name.replace(".age", ".refused")]
    )
    entries = owner.audit()
    refused = [e.details["file"] for e in entries if e.action == "spool-refused"]
    assert sorted(refused) == sorted([tampered, forged_name])
    assert "2020-01-01T00:00:00Z" not in [e.time for e in entries]
    assert [e.action for e in entries].count("client-list") == 1  # the intact one
    assert kept not in spool.names()
    assert owner.verify_audit() == []


def _one_spooled_read(
    vault: Vault, mount: Callable[[Path], Path], state_dir: Path, clock: Clock
) -> tuple[Spool, str, str]:
    """The spool, the name of the one read spooled in it, and its time."""
    note = _with_a_note(vault)
    ro = mount(vault.root)
    clock.advance(hours=1)
    _open(ro, state_dir, clock).note(note)
    spool = Spool(state_dir, vault.vault_id)
    (name,) = spool.names()
    return spool, name, clock.now.isoformat().replace("+00:00", "Z")


def test_a_mark_whose_commit_happened_is_not_folded_again(
    vault: Vault, read_only_mount, state_dir: Path, clock: Clock
) -> None:
    spool, name, read_at = _one_spooled_read(vault, read_only_mount, state_dir, clock)
    data = spool.read(name)
    owner = _open(vault.root, state_dir, clock)
    (folded,) = [e for e in owner.audit() if e.time == read_at]
    # A crash after the commit, before the spool file was removed:
    spool.put(f"o-{name[2:26]}.{folded.seq}.folding", data)
    # A copy under another name: the MAC binds the name, so it is refused.
    other = "o-" + "cd" * 12
    spool.put(f"{other}.{folded.seq - 1}.folding", data)
    owner = _open(vault.root, state_dir, clock)
    assert owner.spool_refused == [f"{other}.{folded.seq - 1}.folding"]
    assert [e.seq for e in owner.audit(action="note-show")] == [folded.seq]
    assert spool.names() == [f"{other}.refused"]


def test_a_mark_whose_commit_did_not_happen_is_folded(
    vault: Vault, read_only_mount, state_dir: Path, clock: Clock
) -> None:
    spool, name, read_at = _one_spooled_read(vault, read_only_mount, state_dir, clock)
    # Marked as chain entry 2 (a note-add), by a commit that never happened.
    spool.rename(name, name.replace(".age", ".2.folding"))
    owner = _open(vault.root, state_dir, clock)
    assert [e.time for e in owner.audit(action="note-show")] == [read_at]
    assert spool.names() == []


def test_a_grantee_reads_read_only_media_and_the_owner_folds_it(
    vault: Vault, read_only_mount, state_dir: Path, clock: Clock, tmp_path: Path
) -> None:
    note = _with_a_note(vault)
    grantee = age.X25519Identity.generate()
    vault.grant(str(grantee.recipient), clients=["Ann"], label="executor")
    ro = read_only_mount(vault.root)
    before = listing(vault.root)
    clock.advance(hours=1)
    read_at = clock.now.isoformat().replace("+00:00", "Z")
    reader = Vault.open(ro, reader=grantee, state_dir=state_dir, clock=clock)
    assert reader.read_only
    assert reader.note(note).body == b"Session went well."
    assert reader.spooled == 1
    assert listing(vault.root) == before
    owner = _open(vault.root, state_dir, clock)
    assert owner.spooled == 0
    (entry,) = [e for e in owner.audit() if e.time == read_at]
    assert (entry.action, entry.note, entry.signed) == ("note-show", note, False)
    assert entry.actor == f"grantee:{grantee.recipient}"
    assert Spool(state_dir, vault.vault_id).names() == []
    assert owner.verify_audit() == []


def test_a_read_that_cannot_be_spooled_fails(
    vault: Vault, read_only_mount, tmp_path: Path, clock: Clock
) -> None:
    note = _with_a_note(vault)
    ro = read_only_mount(vault.root)
    state = tmp_path / "ro-state"
    state.mkdir(mode=0o700)
    (state / "spool").write_text("not a directory")
    reader = _open(ro, state, clock)
    with pytest.raises(StorageError):
        reader.note(note)
