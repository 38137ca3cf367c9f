"""``clone``: a second device's vault, made from the remote.

The remote's head is checked as ``sync`` checks it (``tree.read_snapshot``,
with the owner key pinned when one is given, and this machine's rollback
memory), then the vault is written in a staging directory beside the target
(each object checked against its name's hash as it is written, straight to
its place: nothing reads the staging directory until its rename), made
durable in one step (``fs.make_durable``), the manifest last, and the
staging directory renamed onto the target. An interrupted clone leaves
no vault at the target, and a rerun starts over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from confvault.errors import (
    ConfvaultError,
    IntegrityError,
    RemoteIntegrityError,
    SyncError,
)
from confvault.sync import state, tree
from confvault.sync.git import Repo
from confvault.vault.model.clock import iso, utc_now
from confvault.vault.store import fs, layout, manifest, signing
from confvault.vault.store.seen import SeenStore

_BATCH = 512  # objects read from git at a time


@dataclass(frozen=True)
class CloneResult:
    vault_id: str
    generation: int
    commit: str
    device: str
    objects: int
    owner_key: str  # the fingerprint of the key that signs the vault


def clone(
    remote: str,
    target: Path,
    *,
    state_dir: Path,
    device_name: str,
    owner_key: str | None = None,
) -> CloneResult:
    """Make the vault at ``target`` from ``remote``; see the module docstring."""
    state.check_device_name(device_name)
    exists = target.exists() or target.is_symlink()
    fetched = state.new_repo_path(state_dir)
    try:
        repo = Repo(fetched)
        repo.init()
        repo.set_remote(remote)
        repo.fetch(state.BRANCH, state.REMOTE_REF)
        head = _remote_head(repo)
        snap = tree.read_snapshot(
            repo,
            head,
            vault_id=None,
            expected_signer=None,
            known={},
            read_objects_now=False,  # each is checked as it is written
        )
        body = snap.manifest.body
        _check_trust(body, target, state_dir, owner_key)
        _check_place(target, state.load(state_dir, body.vault_id), snap, exists)
    except BaseException:
        state.discard_repo(fetched)
        raise
    if exists:  # an earlier clone of this state got as far as its rename
        state.discard_repo(fetched)
    else:
        repo = Repo(state.adopt_repo(state_dir, fetched, body.vault_id))
        staging = state.prepare_staging(target)
        try:
            _write_vault(repo, snap, staging)
        except BaseException:
            state.discard_staging(staging)
            raise
        repo.update_ref(state.SYNCED_REF, head)
        device = state.new_device(body.vault_id, target, device_name)
        now = iso(utc_now())
        device.last = state.LastSync(now, device_name, head, body.generation)
        device.remote_generation = body.generation
        state.save(state_dir, device)
        state.publish(staging, target)
    seen = SeenStore(state_dir)
    seen.record(body.vault_id, body.generation, body.signer, strict=True)
    seen.record_place(target, body.vault_id, strict=True)
    return CloneResult(
        body.vault_id,
        body.generation,
        head,
        device_name,
        len(snap.names),
        signing.fingerprint(body.signer),
    )


def _check_place(
    target: Path, known: state.DeviceState | None, snap: tree.Snapshot, exists: bool
) -> None:
    if known is not None and known.vault != str(target.resolve()):
        raise SyncError(f"this device already syncs this vault, at {known.vault}")
    if exists and not _finished(target, known, snap):
        raise SyncError(f"{target} already exists: clone makes a new vault directory")


def _finished(
    target: Path, known: state.DeviceState | None, snap: tree.Snapshot
) -> bool:
    """An interrupted clone's vault at ``target``, complete: this device's
    state names it, and its manifest is the remote's head's."""
    if known is None:
        return False
    try:
        disk = fs.Root(target)
    except (ConfvaultError, OSError):
        return False
    try:
        return manifest.read_raw(disk) == snap.raw
    except ConfvaultError:
        return False
    finally:
        disk.close()


def _remote_head(repo: Repo) -> str:
    head = repo.rev(state.REMOTE_REF)
    if head is None:
        raise SyncError("the remote holds no vault yet (run `sync init` first)")
    return head


def _check_trust(
    body: manifest.ManifestBody, target: Path, state_dir: Path, owner_key: str | None
) -> None:
    if owner_key and not manifest.descends_from_fingerprint(
        body, signing.normal_fingerprint(owner_key)
    ):
        raise RemoteIntegrityError(
            "the remote's vault is not signed by the owner key you pinned "
            f"(--owner-key): it is signed by {signing.fingerprint(body.signer)}"
        )
    try:
        SeenStore(state_dir).check_manifest(target, body)
    except IntegrityError as err:
        raise RemoteIntegrityError(
            f"the remote presents a manifest this device refuses ({err})"
        ) from err


def _write_vault(repo: Repo, snap: tree.Snapshot, staging: Path) -> None:
    fs.ensure_dirs(staging)
    disk = fs.Root(staging)
    try:
        moved: list[tuple[str, str]] = []
        names = sorted(snap.names)
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            for name, data in tree.read_objects(repo, snap, batch).items():
                rel = layout.bucket_of(name)
                fs.write_new(disk, rel, name, data)  # checked: it hashes to name
                moved.append((rel, name))
        for name, data in snap.shard_files.items():
            fs.write_new(disk, layout.SHARDS, name, data)
            moved.append((layout.SHARDS, name))
        fs.make_durable(disk, moved)
        fs.atomic_write(disk, "", layout.MANIFEST, snap.raw)
    finally:
        disk.close()
