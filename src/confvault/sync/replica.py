"""One device's replica of a vault: connect, sync (fetch, decide, apply, push)
and clone. Nothing here prints; results are values (``SyncResult``).

The remote is not trusted: its head is checked (``tree.read_snapshot``, the
rollback memory, and the last synced commit being its ancestor) before
anything local changes. The whole sync runs under the vault's exclusive
writer lock. Applying the remote's state is the vault's own commit protocol
(``Transaction.commit_foreign``): objects and shards durable first, then the
manifest swapped atomically, then the retired objects removed, with the same
journal, so the next writer cleans up after a crash.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confvault.errors import (
    ConfvaultError,
    RemoteIntegrityError,
    SyncConflictError,
    SyncError,
)
from confvault.sync import (
    compact,
    keys_merge,
    merge,
    records_commit,
    records_merge,
    remote_checks,
    state,
    tree,
)
from confvault.sync.git import Repo
from confvault.vault.model.identity import JOURNAL_MAC_LABEL
from confvault.vault.session.core import Session
from confvault.vault.store import fs, manifest
from confvault.vault.store.transaction import Transaction, recover


@dataclass(frozen=True)
class SyncResult:
    """What one sync did (``sync --json``)."""

    # "none", "pushed", "pulled", "merged", "recorded" (both sides equal)
    action: str
    generation: int  # the vault's generation after the sync
    commit: str  # the commit both sides now share
    device: str
    objects_in: int = 0  # objects brought into the vault
    objects_out: int = 0  # objects retired from the vault (pulled) or sent (pushed)
    refused_journals: int = 0
    # a merge of key events on one side with notes added on the other
    key_events: tuple[str, ...] = ()  # the key events merged (audit actions)
    resealed: int = 0  # notes re-sealed under the current compartment key
    left_out: dict[str, int] | None = None  # shredded client ID -> notes left out
    revoked: tuple[str, ...] = ()  # grants revoked on one side: they stay revoked
    dropped_grants: tuple[str, ...] = ()  # grants made on the other side: dropped


def _repo(state_dir: Path, vault_id: str) -> Repo:
    return Repo(state.repo_path(state_dir, vault_id))


def connect(s: Session, remote: str, device_name: str, state_dir: Path) -> SyncResult:
    """Connect this vault to ``remote`` and run a first sync. Refused when the
    vault is already connected (here or from another directory); a remote
    that cannot be fetched leaves nothing behind."""
    state.check_device_name(device_name)
    with s.reading() as current:
        vault_id = current.body.vault_id
    known = state.load(state_dir, vault_id)
    if known is not None:
        where = (
            "" if known.vault == os.path.realpath(s.root) else f" from {known.vault}"
        )
        raise SyncError(
            f"this vault is already synced on this device{where} "
            f"(device {known.device_name})"
        )
    repo = _repo(state_dir, vault_id)
    try:
        repo.init()
        repo.set_remote(remote)
        repo.fetch(state.BRANCH, state.REMOTE_REF)
        state.save(state_dir, state.new_device(vault_id, s.root, device_name))
    except BaseException:
        state.forget(state_dir, vault_id)
        raise
    return sync(s, state_dir)


def sync(
    s: Session,
    state_dir: Path,
    *,
    leave_out: bool = False,
    passphrase: bytes | None = None,
    other_passphrase: bytes | None = None,
    accept_former: bool = False,
) -> SyncResult:
    """Fetch, check, decide and apply or push; see the module's docstring.
    ``accept_former``: merge another device's changes signed by the owner key
    replaced here (``tree.FormerKeyChangesError`` otherwise).
    ``leave_out``: merge without notes added for a client shredded on the
    other side (``keys_merge.ShreddedNotesError`` otherwise); ``passphrase``
    opens the other owner key in a merge of an identity rotation, or
    ``other_passphrase`` when that rotation changed the passphrase too
    (``passphrase --rekey``)."""
    owner = s.require_owner()
    with fs.locked(s.disk, exclusive=True, timeout=s.lock_timeout):
        local = s.load_manifest()
        vault_id = local.body.vault_id
        device = _device(s, state_dir, vault_id)
        key = owner.mac_key(JOURNAL_MAC_LABEL)
        _, refused = recover(s.store, local, key)
        repo = _repo(state_dir, vault_id)
        repo.fetch(state.BRANCH, state.REMOTE_REF)
        synced = repo.rev(state.SYNCED_REF)
        remote = repo.rev(state.REMOTE_REF)
        known = {e.path: e.blob for e in repo.tree(synced)} if synced else {}
        synced_raw = (
            next(iter(repo.blobs([known[manifest.MANIFEST_NAME]]))) if synced else None
        )
        result = _decide(
            s,
            repo,
            local,
            synced,
            remote,
            known,
            synced_raw,
            device,
            leave_out,
            tuple(p for p in (passphrase, other_passphrase) if p is not None),
            accept_former=accept_former,
        )
        if device.extra.pop(compact.FOLLOWED, False):
            compact.after_follow(repo)
        device.last = state.LastSync(
            s.now(), device.device_name, result.commit, result.generation
        )
        state.save(state_dir, device)
    return SyncResult(**{**result.__dict__, "refused_journals": len(refused)})


def _device(s: Session, state_dir: Path, vault_id: str) -> state.DeviceState:
    device = state.load(state_dir, vault_id)
    if device is None:
        raise SyncError(
            "this vault is not connected to a remote on this device: "
            "run `confvault sync init REMOTE`"
        )
    if device.vault != os.path.realpath(s.root):
        raise SyncError(
            f"this vault is synced on this device from {device.vault}, "
            f"not from {s.root}: sync it there"
        )
    return device


def _decide(
    s: Session,
    repo: Repo,
    local: manifest.Manifest,
    synced: str | None,
    remote: str | None,
    known: dict[str, str],
    synced_raw: bytes | None,
    device: state.DeviceState,
    leave_out: bool = False,
    passphrases: tuple[bytes, ...] = (),
    *,
    accept_former: bool = False,
) -> SyncResult:
    name = device.device_name
    if remote is None:
        if synced is not None:
            raise RemoteIntegrityError(
                "the remote no longer holds the vault's branch (deleted, or the "
                "remote was replaced); nothing was changed here"
            )
        return _push(s, repo, local, None, device)
    if synced is not None and remote != synced and not repo.is_ancestor(synced, remote):
        if not compact.is_compaction(repo, remote, local.body, synced_raw):
            raise RemoteIntegrityError(
                "the remote's history does not contain the last commit synced "
                f"here ({synced[:12]}): it was rewritten, rolled back or forked, "
                "and not compacted by the vault's owner; nothing was changed here"
            )
        device.extra[compact.FOLLOWED] = True  # its old history goes after
    if remote == synced:
        if local.raw == synced_raw:
            return SyncResult("none", local.generation, remote, name)
        return _push(s, repo, local, synced, device)
    snap = tree.read_snapshot(
        repo,
        remote,
        vault_id=local.body.vault_id,
        expected_signer=local.body.signer,
        known=known,
        former=frozenset(local.body.former_signers),
    )
    remote_checks.generation(snap, synced_raw, device)
    device.remote_generation = max(device.remote_generation, snap.manifest.generation)
    if snap.raw == local.raw:
        repo.update_ref(state.SYNCED_REF, remote)
        return SyncResult("recorded", local.generation, remote, name)
    if synced is None:
        raise SyncConflictError(
            "this vault and the remote's differ and were never synced together: "
            "set up a second device with `confvault clone`; nothing was changed"
        )
    if local.raw != synced_raw:
        base = tree.read_snapshot(
            repo,
            synced,
            vault_id=local.body.vault_id,
            expected_signer=None,
            known=known,
        )
        former = snap.manifest.body.signer in local.body.former_signers
        if former and not accept_former:
            raise tree.FormerKeyChangesError()
        return _both_changed(s, repo, local, snap, base, device, leave_out, passphrases)
    if snap.manifest.body.signer in local.body.former_signers:
        raise tree.FormerOwnerKeyError()  # never back to a replaced key
    return _pull(s, repo, local, snap, name)


def _getter(
    repo: Repo, snap: tree.Snapshot, s: Session | None = None
) -> Callable[[str], bytes]:
    """One object of ``snap``: read by its check already, or (objects are
    named by their hash) from this vault when it holds it, or from git."""

    def get(name: str) -> bytes:
        if name not in snap.checked and s is not None:
            with contextlib.suppress(ConfvaultError):
                return s.store.get(name)  # checks the hash
        return tree.read_objects(repo, snap, [name])[name]

    return get


def _both_changed(
    s: Session,
    repo: Repo,
    local: manifest.Manifest,
    snap: tree.Snapshot,
    base: tree.Snapshot,
    device: state.DeviceState,
    leave_out: bool = False,
    passphrases: tuple[bytes, ...] = (),
) -> SyncResult:
    """Both sides changed since the last sync: merged when one side only
    appended audit entries (``merge``), record by record (``records_merge``),
    or one side made key events while the other added notes
    (``keys_merge``); refused otherwise."""
    owner = s.require_owner()
    ours = merge.side(local, s.store.get)
    theirs = merge.side(snap.manifest, _getter(repo, snap, s))
    newer = local.generation > snap.manifest.generation
    if newer and merge.audit_extension(ours, theirs, owner) is not None:
        # Ours is theirs plus audit entries (a merge committed here, not yet
        # pushed): a fast-forward of the remote.
        return _push(s, repo, local, snap.commit, device)
    old = merge.side(base.manifest, _getter(repo, base, s))
    if newer and records_merge.contains(ours, theirs, old, owner):
        return _push(s, repo, local, snap.commit, device)  # ours holds theirs
    older = local.generation < snap.manifest.generation
    if older and merge.audit_extension(theirs, ours, owner) is not None:
        return _pull(s, repo, local, snap, device.device_name)
    if older and records_merge.contains(theirs, ours, old, owner):
        return _pull(s, repo, local, snap, device.device_name)
    floor = max(local.generation, snap.manifest.generation) + 1
    merged: manifest.Manifest | None = None
    keyed: keys_merge.KeysMerge | None = None
    if (mine := merge.audit_extension(ours, old, owner)) is not None:
        merged = merge.commit_merge(s, local, theirs, mine, floor)
    elif (other := merge.audit_extension(theirs, old, owner)) is not None:
        merged = merge.commit_merge(s, local, None, other, floor)
    elif (
        done := keys_merge.merge(
            s, repo, local, ours, theirs, old, floor, leave_out, passphrases
        )
    ) is not None:
        merged, keyed = done
    else:
        merged = _records_merge(s, local, ours, theirs, old, floor)
    if merged is None:
        raise SyncConflictError(
            "both this device and the remote changed records since the last "
            "sync in a way this version cannot merge (the same record changed "
            "apart on both, or a key, grant or shred change: docs/SYNC.md); "
            "nothing was changed"
        )
    result = _push(s, repo, merged, snap.commit, device)
    if keyed is None:
        return SyncResult("merged", result.generation, result.commit, result.device)
    return SyncResult(
        "merged",
        result.generation,
        result.commit,
        result.device,
        key_events=keyed.events,
        resealed=keyed.resealed,
        left_out=keyed.left_out,
        revoked=keyed.revoked,
        dropped_grants=keyed.dropped_grants,
    )


def _records_merge(
    s: Session,
    local: manifest.Manifest,
    ours: merge.Side,
    theirs: merge.Side,
    old: merge.Side,
    floor: int,
) -> manifest.Manifest | None:
    """Both sides changed records: the record-level merge, or None."""
    owner = s.require_owner()
    o = records_merge.read(ours, old, owner)
    t = records_merge.read(theirs, old, owner)
    b = records_merge.read(old, old, owner)
    if o is None or t is None or b is None:
        return None
    p = records_merge.plan(o, t, b, owner)
    if p is None:
        return None
    return records_commit.commit_records_merge(s, local, o, t, p, floor)


def _push(
    s: Session,
    repo: Repo,
    local: manifest.Manifest,
    parent: str | None,
    device: state.DeviceState,
) -> SyncResult:
    message = (
        f"confvault sync: generation {local.generation}\n\n"
        f"device: {device.device_id} {device.device_name}\n"
        f"vault: {local.body.vault_id}\n"
        f"generation: {local.generation}\n"
        f"time: {s.now()}\n"
    )
    commit = tree.commit_local(repo, s.store, local, parent, message)
    repo.push(commit, state.BRANCH)
    repo.update_ref(state.SYNCED_REF, commit)
    return SyncResult("pushed", local.generation, commit, device.device_name)


def _pull(
    s: Session,
    repo: Repo,
    local: manifest.Manifest,
    snap: tree.Snapshot,
    device: str,
) -> SyncResult:
    """Apply the remote's (checked) state: the vault's commit protocol."""
    remote_checks.seen(s, snap)
    mine = local.all_objects() | set(local.body.pointers.values())
    added = sorted(snap.names - mine)
    retired = sorted(mine - snap.names)
    key = s.require_owner().mac_key(JOURNAL_MAC_LABEL)
    txn = Transaction(s.store, local, key=key, vault_id=local.body.vault_id)
    try:
        for data in tree.read_objects(repo, snap, added).values():
            txn.put(data)
        for name in retired:
            txn.retire(name)
        s.seen.check_writable()
    except BaseException:
        txn.abort()
        raise
    live = txn.commit_foreign(snap.manifest, snap.shard_files)
    live = manifest.Manifest(s.disk, live.body, raw=live.raw)
    s.manifest = live
    s.root_cache = None
    s.seen.record(live.body.vault_id, live.generation, live.body.signer, strict=True)
    repo.update_ref(state.SYNCED_REF, snap.commit)
    return SyncResult(
        "pulled", live.generation, snap.commit, device, len(added), len(retired)
    )
