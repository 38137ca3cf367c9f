"""The vault as a git tree, both ways: a commit of this device's state, and
the checked snapshot of a commit another device made.

A commit's tree holds exactly what the vault's manifest names: ``manifest``,
``shards/<sha256>`` and ``objects/<xx>/<sha256>`` (never ``tmp/``, ``lock``
or ``audit-inbox/``), each file a blob of mode 100644. A snapshot read from
the remote is hostile until checked: every path must be of that grammar, the
manifest must verify (signature, the signer this device knows or one it
endorsed, this vault's ID), every shard and object it names must be present,
and every object not already known here must hash to its name.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from confvault.errors import IntegrityError, RemoteIntegrityError, SyncConflictError
from confvault.sync.git import Repo
from confvault.sync.state import OUTGOING_REF
from confvault.vault.store import layout, manifest
from confvault.vault.store.objects import ObjectStore
from confvault.vault.store.rootfs import OBJECT_LIMIT

MODE = "100644"


def object_path(name: str) -> str:
    return f"{layout.bucket_of(name)}/{name}"


def paths_of(current: manifest.Manifest) -> set[str]:
    """Every path a commit of ``current`` holds."""
    paths = {layout.MANIFEST}
    paths.update(f"{layout.SHARDS}/{n}" for n in current.body.shards.values())
    paths.update(object_path(n) for n in current.all_objects())
    paths.update(object_path(n) for n in current.body.pointers.values())
    return paths


def _is_vault_path(path: str) -> bool:
    if path == layout.MANIFEST:
        return True
    rel, _, name = path.rpartition("/")
    return (
        bool(rel)
        and layout.is_dir(rel)
        and layout.is_file(rel, name)
        and (rel == layout.SHARDS or rel.startswith(layout.OBJECTS + "/"))
    )


def commit_local(
    repo: Repo,
    store: ObjectStore,
    current: manifest.Manifest,
    parent: str | None,
    message: str,
) -> str:
    """A commit of the vault's live state on top of ``parent`` (only the
    files that differ are written); returns its ID."""
    before = {e.path for e in repo.tree(parent)} if parent else set()
    wanted = paths_of(current)
    out = bytearray()
    text = message.encode("utf-8")
    out += f"commit {OUTGOING_REF}\n".encode()
    out += b"committer confvault <confvault@invalid> 0 +0000\n"
    out += b"data %d\n%s\n" % (len(text), text)
    if parent:
        out += f"from {parent}\n".encode()
    for path in sorted(before - wanted):
        out += f"D {path}\n".encode()
    for path in sorted(wanted - before | {layout.MANIFEST}):
        data = _local_bytes(store, current, path)
        out += f"M {MODE} inline {path}\n".encode()
        out += b"data %d\n" % len(data)
        out += data
        out += b"\n"
    out += b"done\n"
    repo.run("update-ref", "-d", OUTGOING_REF, check=False)
    repo.fast_import(bytes(out))
    commit = repo.rev(OUTGOING_REF)
    if commit is None:
        raise IntegrityError("git fast-import made no commit")
    return commit


def _local_bytes(store: ObjectStore, current: manifest.Manifest, path: str) -> bytes:
    if path == layout.MANIFEST:
        return current.raw
    rel, _, name = path.rpartition("/")
    if rel == layout.SHARDS:
        return store.disk.read(layout.SHARDS, name)
    return store.get(name)  # checks the hash


@dataclass
class Snapshot:
    """A commit's vault state, checked."""

    commit: str
    manifest: manifest.Manifest
    shard_files: dict[str, bytes]
    blobs: dict[str, str]  # path -> git blob ID
    names: set[str] = field(default_factory=set)  # every object it names
    # Objects already read and checked (those new since the state known),
    # so that a merge reading them again starts no git process.
    checked: dict[str, bytes] = field(default_factory=dict)

    @property
    def raw(self) -> bytes:
        return self.manifest.raw


class FormerOwnerKeyError(SyncConflictError):
    """The remote's state is signed by an owner key this device replaced,
    and is not a merge of another device's notes with that rotation."""

    def __init__(self) -> None:
        super().__init__(
            "the remote's state is signed by the owner key replaced here "
            "(`identity rotate`) and is not another device's notes to merge "
            "with that rotation: refused; nothing was changed"
        )


class FormerKeyChangesError(SyncConflictError):
    """The remote holds another device's changes signed by the owner key this
    device replaced: merged only with the owner's consent (``accept_former``),
    since that key may have been replaced because it leaked."""

    def __init__(self) -> None:
        super().__init__(
            "the remote holds changes signed by the owner key replaced here "
            "(`identity rotate`), written on another device before it saw the "
            "rotation; if the rotation was to shut out a leaked key they may be "
            "forged: do not merge them (docs/SECURITY.md), otherwise run "
            "`confvault sync --accept-former-key`; nothing was changed"
        )


def _signed_by(raw: bytes, signers: frozenset[str]) -> bool:
    """``raw`` is a manifest validly signed by one of ``signers``."""
    try:
        body = manifest.parse(None, raw, expected_signer=None).body
    except IntegrityError:
        return False
    return body.signer in signers


def _refuse(what: str) -> RemoteIntegrityError:
    return RemoteIntegrityError(f"the remote {what}; nothing was changed here")


def read_snapshot(
    repo: Repo,
    commit: str,
    *,
    vault_id: str | None,
    expected_signer: str | None,
    known: Mapping[str, str],
    read_objects_now: bool = True,
    former: frozenset[str] = frozenset(),
) -> Snapshot:
    """Check ``commit`` as described above; objects whose blob is in ``known``
    (path -> blob of a state checked before) are not read again. With
    ``read_objects_now`` False no object is read here: the caller reads each
    through ``read_objects``, which checks it (``clone`` reads them once).
    ``former``: the owner keys this vault replaced, whose states are read
    too (the caller merges them only with its identity rotation)."""
    entries = repo.tree(commit)
    blobs: dict[str, str] = {}
    for e in entries:
        if e.mode != MODE or e.kind != "blob" or not _is_vault_path(e.path):
            raise _refuse(
                f"holds an entry outside the vault's format ({e.path[:80]!r})"
            )
        if not 0 <= e.size <= OBJECT_LIMIT:
            raise _refuse(f"holds a file too large for the vault ({e.path[:80]!r})")
        blobs[e.path] = e.blob
    if layout.MANIFEST not in blobs:
        raise _refuse("holds no manifest")
    (raw,) = repo.blobs([blobs[layout.MANIFEST]])
    try:
        parsed = manifest.parse(None, raw, expected_signer=expected_signer)
    except IntegrityError as err:
        if not (former and _signed_by(raw, former)):
            raise _refuse(f"presents a manifest that fails its check ({err})") from err
        parsed = manifest.parse(None, raw, expected_signer=None)
    body = parsed.body
    if vault_id is not None and not hmac.compare_digest(body.vault_id, vault_id):
        raise _refuse("holds another vault (its vault ID differs)")
    shard_names = sorted(set(body.shards.values()))
    for name in shard_names:
        if f"{layout.SHARDS}/{name}" not in blobs:
            raise _refuse(f"dropped a shard the manifest names ({name[:12]})")
    shard_files = dict(
        zip(
            shard_names,
            repo.blobs([blobs[f"{layout.SHARDS}/{n}"] for n in shard_names]),
            strict=True,
        )
    )
    checked = manifest.Manifest(None, body, raw=raw, shard_files=shard_files)
    try:
        names = checked.all_objects()
    except IntegrityError as err:
        raise _refuse(f"holds a shard that fails its check ({err})") from err
    names.update(body.pointers.values())
    missing = [n for n in names if object_path(n) not in blobs]
    if missing:
        raise _refuse(
            f"dropped {len(missing)} object(s) the manifest names "
            f"(first: {sorted(missing)[0][:12]})"
        )
    unread = sorted(
        n
        for n in names
        if read_objects_now and known.get(object_path(n)) != blobs[object_path(n)]
    )
    read: dict[str, bytes] = {}
    for name, data in zip(
        unread, repo.blobs([blobs[object_path(n)] for n in unread]), strict=True
    ):
        _check_object(name, data)
        read[name] = data
    return Snapshot(commit, checked, shard_files, blobs, names, read)


def read_objects(repo: Repo, snapshot: Snapshot, names: list[str]) -> dict[str, bytes]:
    """The bytes of the objects ``names`` of a snapshot, each checked (when
    read by ``read_snapshot``, then; else now)."""
    out = {n: snapshot.checked[n] for n in names if n in snapshot.checked}
    wanted = [n for n in names if n not in out]
    paths = [snapshot.blobs[object_path(n)] for n in wanted]
    for name, data in zip(wanted, repo.blobs(paths), strict=True):
        _check_object(name, data)
        out[name] = data
    return out


def _check_object(name: str, data: bytes) -> None:
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), name):
        raise _refuse(
            f"holds an object whose content does not match its name ({name[:12]})"
        )
