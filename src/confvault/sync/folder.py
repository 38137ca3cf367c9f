"""Sync through a file-sync folder (Syncthing, Dropbox, ...): docs/SYNC.md.

The vault directory never lives in the synced folder. The folder carries one
bare git repository per device, ``DIR/<device id>.git``, written by that
device only, so the sync tool never has two writers for one file. A sync
publishes this device's state to its own repository, then fetches every
other device's repository in the folder and brings it in with the machinery
of a sync over git (``replica._decide``: the owner's signature, every object
and its hash, the generation memory, one per peer here).

A peer repository whose files are still arriving (a ref naming objects not
there yet, a pack without its index) fails git's own fetch: it is neither an
attack nor the truth, it is skipped (``arriving``) and its last complete state
stays in use. Two devices that both changed the vault are merged by one of
them only, the one with the greater device ID (the other reports
``waiting`` and fast-forwards to the merge once it arrives): two crossed
merges of the same pair would each hold the other's notes twice.

This device's refs (its repository in the state directory): ``synced`` is
its own head (what its folder repository shows), ``peers/<id>`` each peer's
head as last fetched; ``<vault id>.folder.json`` beside the state holds the
folder and each peer's last accepted generation and manifest hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from confvault.errors import GitUnavailableError, RemoteIntegrityError, SyncError
from confvault.sync import replica, state, tree
from confvault.sync.git import Repo
from confvault.vault.model.identity import JOURNAL_MAC_LABEL
from confvault.vault.session.core import Session
from confvault.vault.store import fs, manifest
from confvault.vault.store.transaction import recover

PREFIX = "folder:"  # `sync init folder:DIR` is `sync init --folder DIR`
_PEER = re.compile(r"[0-9a-f]{16}\.git")
_HEAD = f"refs/heads/{state.BRANCH}"
_RANK = ("none", "recorded", "pushed", "pulled", "merged")


@dataclass(frozen=True)
class FolderResult(replica.SyncResult):
    """A folder sync: this device's result and one line per peer."""

    peers: tuple[dict[str, object], ...] = ()


@dataclass
class FolderState:
    folder: str
    peers: dict[str, dict[str, object]] = field(default_factory=dict)


def _path(state_dir: Path, vault_id: str) -> Path:
    return state.repo_path(state_dir, vault_id).with_suffix(".folder.json")


def load(state_dir: Path, vault_id: str) -> FolderState | None:
    """The folder this vault syncs through, None when it syncs over git."""
    path = _path(state_dir, vault_id)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return FolderState(str(doc["folder"]), dict(doc.get("peers", {})))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SyncError(f"this device's folder state ({path}) is unreadable") from err


def _save(state_dir: Path, vault_id: str, st: FolderState) -> None:
    path = _path(state_dir, vault_id)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps({"folder": st.folder, "peers": st.peers}).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def connect(
    s: Session, folder: Path, device_name: str, state_dir: Path
) -> FolderResult:
    """Sync this vault through ``folder``: a new device, or one set up by
    ``clone`` from a peer's repository in that folder; then a first sync."""
    state.check_device_name(device_name)
    root = Path(os.path.realpath(folder))
    if not root.is_dir():
        raise SyncError(f"{folder} is not a directory")
    vault = Path(os.path.realpath(s.root))
    if vault == root or root in vault.parents:
        raise SyncError("the vault directory must not be inside the sync folder")
    with s.reading() as current:
        vault_id = current.body.vault_id
    known = state.load(state_dir, vault_id)
    repo = replica._repo(state_dir, vault_id)
    if known is not None:
        origin = repo.run("config", "remote.origin.url", check=False)
        url = origin.stdout.decode("utf-8", "replace").strip()
        parent = Path(os.path.realpath(url)).parent if url else None
        if load(state_dir, vault_id) is not None or parent != root:
            raise SyncError(
                f"this vault is already synced on this device (device "
                f"{known.device_name})"
            )
        device = known  # cloned from a peer's repository in the folder
    else:
        device = state.new_device(vault_id, s.root, device_name)
    own = Repo(root / f"{device.device_id}.git")
    try:
        if known is None:
            repo.init()
        repo.set_remote(str(repo.path))  # replica._push pushes to itself
        own.init()
        own.run("config", "gc.auto", "0")
        own.run("config", "receive.autogc", "false")
        state.save(state_dir, device)
        _save(state_dir, vault_id, FolderState(str(root)))
    except BaseException:
        if known is None:
            state.forget(state_dir, vault_id)
        _path(state_dir, vault_id).unlink(missing_ok=True)
        shutil.rmtree(own.path, ignore_errors=True)
        raise
    return sync(s, state_dir)


def sync(s: Session, state_dir: Path, *, leave_out: bool = False) -> FolderResult:
    """Check every peer, publish this device's state, bring each peer in.
    ``leave_out``: as ``replica.sync``'s (notes for a client shredded on one
    side)."""
    owner = s.require_owner()
    with fs.locked(s.disk, exclusive=True, timeout=s.lock_timeout):
        local = s.load_manifest()
        vault_id = local.body.vault_id
        device = replica._device(s, state_dir, vault_id)
        st = load(state_dir, vault_id)
        if st is None:
            raise SyncError("this vault does not sync through a folder")
        _, refused = recover(s.store, local, owner.mac_key(JOURNAL_MAC_LABEL))
        local = s.load_manifest()
        repo = replica._repo(state_dir, vault_id)
        root = Path(st.folder)
        peers = sorted(
            p.name[:-4] for p in root.glob("*.git") if _PEER.fullmatch(p.name)
        )
        peers = [p for p in peers if p != device.device_id]
        lines: list[dict[str, object]] = []
        ready: dict[str, tree.Snapshot] = {}
        head = repo.rev(state.SYNCED_REF)
        known = {e.path: e.blob for e in repo.tree(head)} if head else {}
        for pid in peers:  # every check before anything changes
            snap = _fetch(repo, root, pid, local, st, known)
            if snap is None:
                lines.append({"device": pid, "state": "arriving"})
            else:
                ready[pid] = snap
        action = "none"
        if head is None or local.raw != _raw(repo, head):
            _clear_outbox(repo)
            action = replica._push(s, repo, local, head, device).action
        moved = [0, 0]
        for pid, snap in ready.items():
            done, came, went = _bring_in(s, repo, device, st, pid, snap, leave_out)
            moved = [moved[0] + came, moved[1] + went]
            lines.append(
                {"device": pid, "state": done, "generation": snap.manifest.generation}
            )
            if done in _RANK and _RANK.index(done) > _RANK.index(action):
                action = done
        head = repo.rev(state.SYNCED_REF)
        if head is None:
            raise SyncError("this device's repository has no state")
        _publish(repo, root / f"{device.device_id}.git", head)
        live = s.load_manifest()
        device.last = state.LastSync(s.now(), device.device_name, head, live.generation)
        state.save(state_dir, device)
        _save(state_dir, vault_id, st)
    return FolderResult(
        action,
        live.generation,
        head,
        device.device_name,
        objects_in=moved[0],
        objects_out=moved[1],
        refused_journals=len(refused),
        peers=tuple(sorted(lines, key=lambda line: str(line["device"]))),
    )


def _raw(repo: Repo, commit: str) -> bytes:
    blob = {e.path: e.blob for e in repo.tree(commit)}[manifest.MANIFEST_NAME]
    return next(iter(repo.blobs([blob])))


def _fetch(
    repo: Repo,
    root: Path,
    pid: str,
    local: manifest.Manifest,
    st: FolderState,
    known: dict[str, str],
) -> tree.Snapshot | None:
    """The peer's head, checked; None while its files are still arriving."""
    ref = f"refs/confvault/peers/{pid}"
    try:  # a ref naming objects not there, a pack without its index: git refuses
        repo.fetch(state.BRANCH, ref, source=str(root / f"{pid}.git"))
    except GitUnavailableError:
        raise
    except SyncError:
        return None
    head = repo.rev(ref)
    if head is None:  # no branch yet
        return None
    snap = tree.read_snapshot(
        repo,
        head,
        vault_id=local.body.vault_id,
        expected_signer=local.body.signer,
        known=known,
    )
    seen = st.peers.get(pid, {})
    generation = int(str(seen.get("generation", 0)))
    digest = hashlib.sha256(snap.raw).hexdigest()
    if digest != seen.get("manifest") and snap.manifest.generation <= generation:
        raise RemoteIntegrityError(
            f"device {pid} in the sync folder was rolled back: its manifest has "
            f"generation {snap.manifest.generation}, not above generation "
            f"{generation} this device took from it before; nothing was changed here"
        )
    return snap


def _bring_in(
    s: Session,
    repo: Repo,
    device: state.DeviceState,
    st: FolderState,
    pid: str,
    snap: tree.Snapshot,
    leave_out: bool,
) -> tuple[str, int, int]:
    """One peer's checked head against this device's: nothing new, pulled,
    merged (by the device with the greater ID), or waiting for the peer."""
    head = repo.rev(state.SYNCED_REF)
    if head is None:
        raise SyncError("this device's repository has no state")
    peer = snap.commit
    seen = {
        "generation": snap.manifest.generation,
        "manifest": hashlib.sha256(snap.raw).hexdigest(),
    }
    if repo.is_ancestor(peer, head):
        st.peers[pid] = seen
        return "none", 0, 0
    if not repo.is_ancestor(head, peer) and device.device_id < pid:
        st.peers[pid] = seen
        return "waiting", 0, 0
    base_out = repo.run("merge-base", head, peer, check=False).stdout
    base = base_out.decode("ascii", "replace").strip() or None
    known = {e.path: e.blob for e in repo.tree(base)} if base else {}
    base_raw = _raw(repo, base) if base else None
    saved = device.remote_generation
    device.remote_generation = int(str(st.peers.get(pid, {}).get("generation", 0)))
    try:
        _clear_outbox(repo)
        result = replica._decide(
            s, repo, s.load_manifest(), base, peer, known, base_raw, device, leave_out
        )
    finally:
        device.remote_generation = max(saved, device.remote_generation)
    st.peers[pid] = seen
    return result.action, result.objects_in, result.objects_out


def _clear_outbox(repo: Repo) -> None:
    """``replica._push`` pushes to this repository itself (its origin): the
    branch is removed first, so that a commit on the peer's head is taken."""
    repo.run("update-ref", "-d", _HEAD, check=False)


def _publish(repo: Repo, own: Path, head: str) -> None:
    """This device's head into its repository in the folder (forced: only
    this device writes there; its merges sit on the peer's history)."""
    if Repo(own).rev(_HEAD) == head:
        return
    done = repo.run(
        "push", "--quiet", "--force", str(own), f"{head}:{_HEAD}", check=False
    )
    if done.returncode != 0:
        raise SyncError(f"writing this device's repository in the folder failed: {own}")
