"""``sync compact``: replace the remote's history with one commit of the
current state, and how the other devices recognise and follow it.

Git keeps every old version: a shredded client's old files and the client
keys once sealed to a revoked grantee stay in the history of every clone.
Compaction syncs first (both sides equal), then pushes a root commit of the
vault's state in place of the branch, with a lease (refused if the remote's
head is no longer the commit just synced), and prunes this device's own
repository.

The compacted commit's message carries a marker signed by the owner's key:
``compacted: <generation> <sha256 of the manifest>`` and ``signature:
<base64 Ed25519>`` over ``confvault/compact/v1 NUL vault ID NUL generation
NUL manifest hash``. Another device whose last synced commit is no longer in
the remote's history follows only when the history's one root commit bears
such a marker, signed by the key that signs that root's manifest (which must
verify and descend from the signer this device knows), for this vault, at a
generation at or above the one this device last synced. Anything else stays
a rewrite (``RemoteIntegrityError``, exit 13).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from confvault.errors import IntegrityError, SyncError
from confvault.sync import state, tree
from confvault.sync.git import Repo
from confvault.vault.session.core import Session
from confvault.vault.store import fs, manifest, signing

_MARKER = "compacted: "
_SIGNATURE = "signature: "
FOLLOWED = "followed-compaction"  # set in DeviceState.extra by replica._decide


@dataclass(frozen=True)
class CompactResult:
    """What one compaction did (``sync compact --json``)."""

    commit: str  # the remote's new (root) commit
    replaced: str  # the head it replaced
    generation: int
    device: str
    commits_dropped: int  # commits of the old history no longer on the remote


def _signed(vault_id: str, generation: int, manifest_hash: str) -> bytes:
    return b"\0".join(
        (
            b"confvault/compact/v1",
            vault_id.encode(),
            str(generation).encode(),
            manifest_hash.encode(),
        )
    )


def compact(s: Session, state_dir: Path) -> CompactResult:
    """Sync, then replace the remote's history with the synced state."""
    from confvault.sync import replica  # replica follows compactions: no cycle

    first = replica.sync(s, state_dir)
    owner = s.require_owner()
    with fs.locked(s.disk, exclusive=True, timeout=s.lock_timeout):
        local = s.load_manifest()
        vault_id = local.body.vault_id
        device = state.load(state_dir, vault_id)
        repo = Repo(state.repo_path(state_dir, vault_id))
        synced = repo.rev(state.SYNCED_REF)
        if device is None or synced is None or synced != first.commit:
            raise SyncError("the sync before compacting did not finish; run it again")
        synced_raw = _manifest_raw(repo, synced)
        if synced_raw != local.raw:
            raise SyncError(
                "the vault changed since the sync before compacting; run it again"
            )
        digest = hashlib.sha256(local.raw).hexdigest()
        signature = owner.sign(_signed(vault_id, local.generation, digest))
        message = (
            f"confvault compact: generation {local.generation}\n\n"
            f"device: {device.device_id} {device.device_name}\n"
            f"vault: {vault_id}\n"
            f"generation: {local.generation}\n"
            f"time: {s.now()}\n"
            f"{_MARKER}{local.generation} {digest}\n"
            f"{_SIGNATURE}{signing.b64(signature)}\n"
        )
        dropped = len(repo.run("rev-list", synced).stdout.split())
        commit = tree.commit_local(repo, s.store, local, None, message)
        repo.push_replacing(commit, state.BRANCH, synced)
        repo.update_ref(state.SYNCED_REF, commit)
        repo.update_ref(state.REMOTE_REF, commit)
        device.last = state.LastSync(
            s.now(), device.device_name, commit, local.generation
        )
        state.save(state_dir, device)
        repo.prune()
    return CompactResult(commit, synced, local.generation, device.device_name, dropped)


def _manifest_raw(repo: Repo, commit: str) -> bytes | None:
    entries = {e.path: e.blob for e in repo.tree(commit)}
    blob = entries.get(manifest.MANIFEST_NAME)
    return None if blob is None else next(iter(repo.blobs([blob])))


def is_compaction(
    repo: Repo, head: str, local: manifest.ManifestBody, synced_raw: bytes | None
) -> bool:
    """True when ``head``'s history is a compaction by the owner of this vault
    at or above the generation last synced here (see the module docstring)."""
    roots = repo.roots(head)
    if len(roots) != 1 or synced_raw is None:
        return False
    (root,) = roots
    fields = {}
    for line in repo.message(root).splitlines():
        for key in (_MARKER, _SIGNATURE):
            if line.startswith(key):
                fields[key] = line[len(key) :].strip()
    raw = _manifest_raw(repo, root)
    if raw is None or len(fields) != 2:
        return False
    generation, _, digest = fields[_MARKER].partition(" ")
    try:
        body = manifest.parse(None, raw, expected_signer=local.signer).body
        signature = signing.unb64(fields[_SIGNATURE])
        public = signing.unb64(body.signer)
        floor = manifest.parse(None, synced_raw).generation
    except (IntegrityError, ValueError):
        return False
    return (
        hmac.compare_digest(body.vault_id, local.vault_id)
        and generation == str(body.generation)
        and hmac.compare_digest(digest, hashlib.sha256(raw).hexdigest())
        and body.generation >= floor
        and signing.verify(
            public, _signed(body.vault_id, body.generation, digest), signature
        )
    )


def after_follow(repo: Repo) -> None:
    """Once this device followed a compaction: forget the old history here too
    (only what the remote's and this device's refs reach is kept)."""
    repo.run("update-ref", "-d", state.OUTGOING_REF, check=False)
    repo.prune()
