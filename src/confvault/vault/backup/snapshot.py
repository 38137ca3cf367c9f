"""Backups that need no passphrase: a consistent copy of the vault's ciphertext.

    result = backup.create(vault_root, "/backups/snap")        # a new directory
    result = backup.create(vault_root, "/backups/vault.tar")   # a tar file
    result = backup.create(vault_root, sys.stdout.buffer)      # a tar stream
    report = backup.verify("/backups/vault.tar")                # keyless
    result, report = backup.restore("/backups/vault.tar", new_vault_dir)

A backup holds exactly the vault's state: the signed manifest, the shard files
it names and every live object, copied under the vault's shared lock (writers
wait; readers go on), so it is one generation, never a mix of two. Nothing in
it is plaintext, and no key is needed to make, check or restore it: the
manifest's signature and every file's SHA-256 prove it whole.

This module makes backups, reading the vault as every command does
(``store.rootfs``); the destinations are in ``sinks`` and ``dirsink``, the
checks of a backup (a tar from elsewhere is hostile input) in ``check``
and the restore in ``restoring``, imported only by ``verify`` and ``restore``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from confvault.errors import (
    IntegrityError,
    StorageError,
    UnsafeInputError,
    VaultNotFoundError,
)
from confvault.vault.backup.dirsink import DirSink, NewDir
from confvault.vault.backup.sinks import STREAM_LABEL, Sink, TarFileSink, TarSink
from confvault.vault.model.policy import DEFAULT_LOCK_TIMEOUT
from confvault.vault.store import forked, fs, manifest
from confvault.vault.store.documents import JSONValue
from confvault.vault.store.objects import OBJECTS_DIR
from confvault.vault.store.paths import check_vault_dir, default_state_dir
from confvault.vault.store.seen import SeenStore
from confvault.vault.store.survey import Survey

if TYPE_CHECKING:
    from confvault.vault.model.results import VerifyReport

TAR_SUFFIX = ".tar"
S = TypeVar("S", bound=Sink)


@dataclass(frozen=True)
class BackupResult:
    """What a backup (or a restore) wrote."""

    destination: str  # a directory, a tar file, or "-" for a stream
    vault_id: str
    generation: int
    objects: int  # live objects copied
    files: int  # files copied: the manifest, shards and objects
    bytes: int  # their total size

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- create -------------------------------------------------------------------------


def create(
    vault_root: Path,
    dest: Path | str | BinaryIO,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    jobs: int | None = None,
    state_dir: Path | None = None,
) -> BackupResult:
    """Copy the vault's current generation to ``dest``; no passphrase involved.

    The vault must pass this machine's memory of it (``state_dir``, by
    default ``paths.default_state_dir()``) as for any command:
    ``IntegrityError`` for a vault rolled back, signed by a key its signer
    does not descend from, or not the vault this machine knew at that path.

    ``dest`` is a new or empty directory, a path ending in ``.tar`` that does
    not exist yet, or a writable binary stream (a tar is streamed to it).
    ``jobs``: 1 copies in this process alone; 2 lets a forked child copy the
    second half of the files meanwhile (see ``forked``; not in a process with
    other threads); None (the default) means 2 for vaults of 2,000 files or
    more when this process may use two processors. The backup is the same
    byte for byte either way.
    """
    root = Path(vault_root)
    check_vault_dir(root)
    disk = fs.Root(root)
    if Survey(disk).missing("", manifest.MANIFEST_NAME):
        raise VaultNotFoundError(f"no vault at {root}")
    sink = _open_sink(root, dest)
    try:
        with fs.locked(root, exclusive=False, timeout=lock_timeout):
            current = manifest.load(disk)
            SeenStore(state_dir or default_state_dir()).check_manifest(
                root, current.body
            )
            sink.mtime = _epoch(current.body.time)
            files, size = _copy_snapshot(disk, current, sink, jobs)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    body = current.body
    return BackupResult(
        sink.label, body.vault_id, body.generation, body.objects, files, size
    )


def _open_sink(root: Path, dest: Path | str | BinaryIO) -> TarSink | DirSink:
    if not isinstance(dest, (str, os.PathLike)):
        return TarSink(dest, STREAM_LABEL)
    path = Path(dest)
    _refuse_inside(path, root, "the backup cannot go inside the vault")
    if path.name.endswith(TAR_SUFFIX):
        return TarFileSink(path)
    return DirSink(NewDir(path))


_SPLIT_FILES = 2_000  # fewer files than this copy in ~40 ms: not worth a fork
_SIDE_LIMIT = 64 << 20  # the child stops after this much; this process does the rest


def _copy_snapshot(
    disk: fs.Root, current: manifest.Manifest, sink: S, jobs: int | None
) -> tuple[int, int]:
    """Copy the manifest, its shards and the live objects; check every hash.

    With a second job, a forked child copies from the middle of the sorted
    list while this process copies the first half; the child's tar members
    wait in an unnamed file until they are appended here (at most
    ``_SIDE_LIMIT`` of them: the rest is copied here after), and its files in
    a directory are written straight into place.
    """
    entries, dirs = _listing(current)
    files = len(entries) - len(dirs)
    if isinstance(sink, DirSink):  # every directory first: either process may fill it
        for rel in sorted(dirs):
            sink.add_dir(rel)
    if jobs is None:
        jobs = 2 if files >= _SPLIT_FILES and forked.processors() > 1 else 1
    half = len(entries) // 2
    side = sink.side() if jobs > 1 and half and forked.available() else None
    if side is None:
        return files, _copy_entries(disk, entries, dirs, sink)[1]

    def there() -> tuple[int, int]:  # in the child
        done = _copy_entries(disk, entries[half:], dirs, side, _SIDE_LIMIT)
        side.settle()
        return done

    try:
        mine, result = forked.run_pair(
            lambda: _copy_entries(disk, entries[:half], dirs, sink), there
        )
        done, theirs = _two_counts(result)
        copied = entries[half : half + done]
        sink.join(side, [rel for rel in copied if rel not in dirs], theirs)
    finally:
        side.close()
    rest = _copy_entries(disk, entries[half + done :], dirs, sink)
    return files, mine[1] + theirs + rest[1]


def _two_counts(result: JSONValue) -> tuple[int, int]:
    """The child's ``(entries copied, bytes)``, as JSON gave them back."""
    if isinstance(result, list) and len(result) == 2:
        done, size = result
        if isinstance(done, int) and isinstance(size, int) and min(done, size) >= 0:
            return done, size
    raise StorageError("the second process sent a malformed result")


def _listing(current: manifest.Manifest) -> tuple[list[str], set[str]]:
    """(every directory and file of the backup in sorted order, the directories).

    Built shard by shard, in the order a sort of the paths gives: each shard
    holds the sorted names under one ``objects/<xx>`` (reading it checks its
    hash), and every file but the manifest is named by its own SHA-256.
    """
    body = current.body
    entries = [manifest.MANIFEST_NAME, OBJECTS_DIR]
    dirs = {OBJECTS_DIR, manifest.SHARDS_DIR}
    for prefix in sorted(body.shards):
        names = sorted(current.lines(prefix).decode("ascii").split())
        if names:
            bucket = f"{OBJECTS_DIR}/{prefix}"
            dirs.add(bucket)
            entries.append(bucket)
            entries += [f"{bucket}/{name}" for name in names]
    entries.append(manifest.SHARDS_DIR)
    entries += [f"{manifest.SHARDS_DIR}/{n}" for n in sorted(body.shards.values())]
    return entries, dirs


def _copy_entries(
    disk: fs.Root,
    entries: list[str],
    dirs: set[str],
    sink: Sink,
    limit: int | None = None,
) -> tuple[int, int]:
    """Copy ``entries`` in order, stopping early once ``limit`` bytes are
    copied; (how many entries were copied, their bytes). Each file but the
    manifest must hash to its own name. A file is opened as every command
    opens one (``rootfs.Root.open``: by descriptor, no symlink, no FIFO
    waited on, a private regular file of ours with one link, in private
    directories of ours)."""
    total = 0
    for index, rel in enumerate(entries):
        if limit is not None and total >= limit:
            return index, total
        if rel in dirs:
            sink.add_dir(rel)
            continue
        directory, _, name = rel.rpartition("/")
        try:
            fd, info = disk.open(directory, name, blocking=False)
        except FileNotFoundError as err:
            raise IntegrityError(
                f"{rel} is missing from the vault; run `confvault verify`"
            ) from err
        except OSError as err:
            raise fs.storage_error(err, f"read {rel}") from err
        size = info.st_size
        try:
            digest, written = sink.copy_fd(rel, fd, size)
        finally:
            os.close(fd)
        if written != size or (
            rel != manifest.MANIFEST_NAME and not hmac.compare_digest(digest, rel[-64:])
        ):
            raise IntegrityError(
                f"{rel} is damaged (its content does not match its hash); "
                "run `confvault verify`"
            )
        total += size
    return len(entries), total


# --- verify and restore (in check and restoring) -------------------------------


def verify(
    src: Path | str | BinaryIO,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    state_dir: Path | None = None,
) -> VerifyReport:
    """Check a backup (directory, tar file or tar stream) with no key at all.

    A tar is read as it streams by: objects are hashed, never written; only
    the manifest and the shard files are held, in memory.
    """
    from confvault.vault.backup import check as backup_check

    return backup_check.verify(src, lock_timeout, state_dir)


def restore(
    src: Path | str | BinaryIO,
    dest: Path | str,
    *,
    accept_rollback: bool = False,
    state_dir: Path | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> tuple[BackupResult, VerifyReport]:
    """Restore a backup into a new or empty directory, and verify the result.

    Raises IntegrityError (with the findings) and leaves nothing behind when
    the restored copy does not verify. The returned report carries a
    ``rollback`` warning when this machine has seen a newer generation of the
    vault (``Vault.open`` will refuse the copy); ``accept_rollback`` instead
    resets this machine's memory of the vault to the restored generation.
    """
    from confvault.vault.backup import restoring

    target_path = Path(dest)
    source = restoring.source_path(src) if isinstance(src, (str, os.PathLike)) else src
    if isinstance(source, Path) and source.is_dir():
        _refuse_inside(target_path, source, "cannot restore into the backup")
    sink = DirSink(NewDir(target_path))
    try:
        report, current = restoring.restore_into(source, sink, lock_timeout)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    body = current.body
    report = restoring.check_memory(report, body, state_dir, accept_rollback)
    result = BackupResult(
        str(target_path),
        body.vault_id,
        body.generation,
        body.objects,
        sink.files_written,
        sink.bytes_written,
    )
    return result, report


# --- helpers ----------------------------------------------------------------------------


def _refuse_inside(path: Path, container: Path, message: str) -> None:
    resolved = path.resolve()
    base = container.resolve()
    if resolved == base or base in resolved.parents:
        raise UnsafeInputError(f"{message}: {path}")


def _epoch(time: str) -> int:
    try:
        return int(dt.datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
