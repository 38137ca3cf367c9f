"""Checking backups: what ``backup.verify`` does (``restoring``: ``backup.restore``).

A backup from elsewhere is hostile input (``members`` says what it may
contain): a directory is checked in place by the keyless checker, a tar as
it streams by, with nothing written anywhere. Imported only when a backup
is checked or restored: making one needs none of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from confvault.errors import ConfvaultError, IntegrityError, StorageError
from confvault.vault.backup import members, tarformat
from confvault.vault.backup.dirsink import DirSink, NewDir
from confvault.vault.backup.sinks import CHUNK, STREAM_LABEL
from confvault.vault.check.findings import Findings
from confvault.vault.check.keyless import verify_keyless
from confvault.vault.check.signed import live_objects
from confvault.vault.model.results import Finding, VerifyReport
from confvault.vault.store import fs, layout, manifest, survey
from confvault.vault.store.paths import default_state_dir
from confvault.vault.store.seen import SeenStore

_OBJECTS_PREFIX = layout.OBJECTS + "/"
_SHARDS_PREFIX = layout.SHARDS + "/"
_META_LIMIT = 256 << 20  # manifest and shards held while a tar streams by (~4M objects)
_classify = members.classify  # the name the tests know it by


# --- verify ---------------------------------------------------------------------------


def verify(
    src: Path | str | BinaryIO, lock_timeout: float, state_dir: Path | None = None
) -> VerifyReport:
    """``backup.verify``: a directory in place, a tar as it streams by.

    A directory where this machine has opened a vault (a vault, not a copy)
    is checked against this machine's memory too, as ``verify`` does: a
    rollback, a changed signer, another vault in its place are errors. A
    copy elsewhere is older than the vault by nature, so it is not."""
    if not isinstance(src, (str, os.PathLike)):
        return _verify_tar(src, STREAM_LABEL)
    path = Path(src)
    if path.is_dir() and path.is_symlink():
        path = path.resolve()  # the user named it; what it names is checked
    if path.is_dir():
        return _verify_dir(path, lock_timeout, state_dir)
    if path.exists():  # a tar file, or a pipe such as <(restic dump ...)
        with members.open_tar_file(path) as stream:
            return _verify_tar(stream, str(path))
    finding = Finding("error", "no-backup", str(path), "there is no backup here")
    return VerifyReport(str(path), 0, 0, 0, False, (finding,))


def _verify_dir(
    path: Path, lock_timeout: float, state_dir: Path | None
) -> VerifyReport:
    """Verify in place; a copy whose modes were loosened is checked via a private copy."""
    seen = SeenStore(state_dir or default_state_dir())
    with shared_lock_if_vault(path, lock_timeout):
        report, _ = verify_keyless(path, seen=seen if seen.knows_place(path) else None)
        loose = [f for f in report.findings if f.code == "permissions"]
        if not loose:
            return report
        # A tool that drops modes (rclone, a USB stick) made it unreadable to the
        # vault's own strict reader: check a private copy, and say so.
        copied = _verify_copy(path)
    warnings = [
        Finding(
            "warning", f.code, f.subject, f"{f.message}; a restore makes it private"
        )
        for f in loose
    ]
    return merged(copied, warnings, str(path))


def _verify_tar(stream: BinaryIO, label: str) -> VerifyReport:
    """Verify a tar as it streams by: nothing is written anywhere.

    Objects are hashed as they pass; the manifest and the shard files (65
    bytes per object) are kept in memory, up to ``_META_LIMIT`` in all, and
    checked as ``manifest.load`` checks them on disk; the findings are those
    ``verify_keyless`` gives for the unpacked copy.
    """
    meta: dict[str, bytes] = {}  # manifest and shards/<name>: their bytes
    hashes: dict[str, bool] = {}  # object name -> its content matches it
    too_large: set[str] = set()
    room = _META_LIMIT

    def put(rel: str, read: tarformat.Read, size: int) -> int:
        nonlocal room
        is_object = rel.startswith(_OBJECTS_PREFIX)
        block = read(size) if is_object else b""
        if is_object and len(block) == size:  # the whole object at once: nearly always
            digest = rel[-64:]
            hashes[digest] = hmac.compare_digest(
                hashlib.sha256(block).hexdigest(), digest
            )
            return size
        sha = hashlib.sha256(block)
        kept: list[bytes] | None = None if is_object else []
        count = len(block)
        while block := read(CHUNK):
            count += len(block)
            if kept is None:
                sha.update(block)
            elif count <= room:
                kept.append(bytes(block))
            else:  # far larger than any vault's: kept as nothing, so damaged
                kept = None
                meta[rel] = b""
                too_large.add(rel)
        if is_object:
            digest = rel[-64:]
            hashes[digest] = hmac.compare_digest(sha.hexdigest(), digest)
        elif kept is not None:
            meta[rel] = b"".join(kept)
            room -= count
        return count

    findings = members.read_tar(stream, put, label)
    findings += [
        Finding(
            "error",
            "too-large",
            rel,
            f"more manifest and shards than any vault has (over "
            f"{_META_LIMIT:,} bytes in all); not read",
        )
        for rel in sorted(too_large)
    ]
    return merged(_check_streamed(meta, hashes, label), findings, label)


def _check_streamed(
    meta: dict[str, bytes], hashes: dict[str, bool], label: str
) -> VerifyReport:
    """``verify_keyless`` for a backup whose files went by in a stream."""
    report = Findings()
    shard_files = {
        rel.removeprefix(_SHARDS_PREFIX): data
        for rel, data in meta.items()
        if rel.startswith(_SHARDS_PREFIX)
    }
    try:
        raw = meta.get(manifest.MANIFEST_NAME)
        if raw is None:
            raise IntegrityError("the manifest is missing")
        current = manifest.parse(None, raw)
    except ConfvaultError as err:
        report.error("manifest", manifest.MANIFEST_NAME, str(err))
        return VerifyReport(label, 0, 0, 0, False, tuple(report.findings))
    current.shard_files = shard_files
    body = current.body
    live = live_objects(current, report)
    for digest in sorted(live):
        matches = hashes.get(digest)
        if matches is None:
            report.error("object-missing", digest, "object is missing")
        elif not matches:
            report.error(
                "object-damaged",
                digest,
                "object content does not match its hash (altered, truncated or replaced)",
            )
    for digest in sorted(hashes.keys() - live):
        report.warning(
            "unreferenced",
            digest,
            "object not in the manifest (left by an interrupted command; harmless)",
        )
    shards = set(body.shards.values())
    for name in sorted(shard_files.keys() - shards):
        report.warning(
            "unreferenced", f"shards/{name}", "shard not in the manifest (harmless)"
        )
    return VerifyReport(
        label,
        body.generation,
        len(live),
        0,
        False,
        tuple(report.findings),
        body.vault_id,
    )


def _verify_copy(path: Path) -> VerifyReport:
    """Copy the backup directory ``path`` into a private temporary directory
    and verify it there."""
    source = survey.of_path(path)
    if source is None:
        raise StorageError(f"cannot read {path}: it is no longer a directory")
    with fs.private_temp_dir("confvault-verify-") as work:
        root = work / "backup"
        sink = DirSink(NewDir(root))
        try:
            findings = members.copy_tree(source, sink)
        finally:
            sink.release()
        report, _ = verify_keyless(root, seen=None)
    return merged(report, findings, str(path))


# --- helpers ----------------------------------------------------------------------------


def merged(report: VerifyReport, first: list[Finding], label: str) -> VerifyReport:
    """``report`` about ``label``, with the findings ``first`` before its own."""
    return dataclasses.replace(report, vault=label, findings=(*first, *report.findings))


@contextlib.contextmanager
def shared_lock_if_vault(path: Path, timeout: float) -> Iterator[None]:
    """A live vault given as a source (it has a lock file) is read under its
    shared lock."""
    source = survey.of_path(path)
    try:
        top = dict(source.entries("")) if source is not None else {}
    except OSError:
        top = {}
    if stat.S_ISREG(top.get(layout.LOCK, 0)):
        with fs.locked(path, exclusive=False, timeout=timeout):
            yield
    else:
        yield
