"""Checking and unpacking backups: what ``backup.verify`` and ``backup.restore`` do.

A tar from elsewhere is hostile input: members are never extracted by
``tarfile`` itself; only ``manifest``, ``shards/<sha256>`` and
``objects/<xx>/<sha256>`` are written (0600, in 0700 directories), and
absolute paths, ``..``, links, devices and duplicates become findings.
Imported only when a backup is checked or restored: making one needs none of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import lzma
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from confvault.errors import ConfvaultError, IntegrityError, VaultNotFoundError
from confvault.vault.backup import tarformat, tarreader
from confvault.vault.backup.sinks import CHUNK, STREAM_LABEL, DirSink, NewDir
from confvault.vault.check.keyless import _live_objects, _Report, verify_keyless
from confvault.vault.model.results import Finding, VerifyReport
from confvault.vault.store import fs, layout, manifest
from confvault.vault.store.objects import OBJECTS_DIR, is_hash
from confvault.vault.store.paths import default_state_dir
from confvault.vault.store.seen import SeenStore

_BUCKET = re.compile(r"[0-9a-f]{2}")
_OBJECT_NAME = re.compile(r"objects/([0-9a-f]{2})/\1[0-9a-f]{62}")
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)
_OBJECTS_PREFIX = OBJECTS_DIR + "/"
_SHARDS_PREFIX = manifest.SHARDS_DIR + "/"
_META_LIMIT = 256 << 20  # manifest and shards held while a tar streams by (~4M objects)


# --- verify ---------------------------------------------------------------------------


def verify(src: Path | str | BinaryIO, lock_timeout: float) -> VerifyReport:
    """``backup.verify``: a directory in place, a tar as it streams by."""
    if not isinstance(src, (str, os.PathLike)):
        return _verify_tar(src, STREAM_LABEL)
    path = Path(src)
    if path.is_dir() and path.is_symlink():
        path = path.resolve()  # the user named it; what it names is checked
    if path.is_dir():
        return _verify_dir(path, lock_timeout)
    if path.exists():  # a tar file, or a pipe such as <(restic dump ...)
        with _open_tar_file(path) as stream:
            return _verify_tar(stream, str(path))
    finding = Finding("error", "no-backup", str(path), "there is no backup here")
    return VerifyReport(str(path), 0, 0, 0, False, (finding,))


def _verify_dir(path: Path, lock_timeout: float) -> VerifyReport:
    """Verify in place; a copy whose modes were loosened is checked via a private copy."""
    with _shared_lock_if_vault(path, lock_timeout):
        report, _ = verify_keyless(path, seen=None)
        loose = [f for f in report.findings if f.code == "permissions"]
        if not loose:
            return report
        # A tool that drops modes (rclone, a USB stick) made it unreadable to the
        # vault's own strict reader: check a private copy, and say so.
        copied = _verify_copy(lambda sink: _copy_tree(path, sink), str(path))
    warnings = [
        Finding(
            "warning", f.code, f.subject, f"{f.message}; a restore makes it private"
        )
        for f in loose
    ]
    return _merged(copied, warnings, str(path))


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

    findings = _read_tar(stream, put, label)
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
    return _merged(_check_streamed(meta, hashes, label), findings, label)


def _check_streamed(
    meta: dict[str, bytes], hashes: dict[str, bool], label: str
) -> VerifyReport:
    """``verify_keyless`` for a backup whose files went by in a stream."""
    report = _Report()
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
    live = _live_objects(current, report)
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


def _verify_copy(fill: Callable[[DirSink], list[Finding]], label: str) -> VerifyReport:
    """Copy a backup into a private temporary directory and verify it there."""
    import shutil  # only here: a backup with loose modes
    import tempfile

    try:
        work = tempfile.mkdtemp(prefix="confvault-verify-")  # 0700
    except OSError as err:
        raise fs.storage_error(err, "create a temporary directory") from err
    try:
        root = Path(work) / "backup"
        findings = fill(DirSink(NewDir(root)))
        report, _ = verify_keyless(root, seen=None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _merged(report, findings, label)


# --- restore --------------------------------------------------------------------------


def source_path(src: Path | str) -> Path:
    path = Path(src)
    if path.is_dir() and path.is_symlink():
        path = path.resolve()  # the user named it; what it names is checked
    if not path.exists():
        raise VaultNotFoundError(f"no backup at {path}")
    return path


def restore_into(
    source: Path | BinaryIO, sink: DirSink, lock_timeout: float
) -> tuple[VerifyReport, manifest.Manifest]:
    """Copy or unpack ``source`` into ``sink`` and verify it; raise if it fails."""
    if isinstance(source, Path) and source.is_dir():
        with _shared_lock_if_vault(source, lock_timeout):
            findings = _copy_tree(source, sink)
    elif isinstance(source, Path):
        with _open_tar_file(source) as stream:
            findings = _extract_tar(stream, sink, str(source))
    else:
        findings = _extract_tar(source, sink, STREAM_LABEL)
    for sub in (OBJECTS_DIR, manifest.SHARDS_DIR, fs.TMP_DIR):
        sink.add_dir(sub)
    report, current = verify_keyless(sink.root, seen=None)
    report = _merged(report, findings, str(sink.root))
    if current is None or not report.ok:
        problems = sum(f.severity == "error" for f in report.findings)
        raise IntegrityError(
            f"the backup does not verify ({problems} problem{'s' * (problems != 1)}); "
            "nothing was restored",
            list(report.findings),
        )
    return report, current


@contextlib.contextmanager
def _open_tar_file(path: Path) -> Iterator[BinaryIO]:
    try:
        stream = path.open("rb")
    except OSError as err:
        raise fs.storage_error(err, f"read {path}") from err
    with stream:
        yield stream


def check_memory(
    report: VerifyReport,
    body: manifest.ManifestBody,
    state_dir: Path | None,
    accept_rollback: bool,
) -> VerifyReport:
    """Compare the restored generation with what this machine saw before."""
    seen = SeenStore(state_dir or default_state_dir())
    known = seen.get(body.vault_id)
    if known is None:
        return report
    older = body.generation < known[0]
    if not older and manifest.signer_descends(body, known[1]):
        return report
    what = (
        f"generation {known[0]}" if older else "a manifest signed by a later owner key"
    )
    if accept_rollback:
        seen.forget(body.vault_id)
        seen.record(body.vault_id, body.generation, body.signer)
        finding = Finding(
            "warning",
            "rollback-accepted",
            manifest.MANIFEST_NAME,
            f"this machine had seen {what} of this vault; it now accepts "
            f"generation {body.generation} and refuses anything older",
        )
    else:
        finding = Finding(
            "warning",
            "rollback",
            manifest.MANIFEST_NAME,
            f"this machine has seen {what} of this vault; opening restored "
            f"generation {body.generation} is refused as a rollback until it is "
            "accepted (restore again with --accept-rollback)",
        )
    return dataclasses.replace(report, findings=(*report.findings, finding))


# --- what a backup may contain ------------------------------------------------------


def _classify(name: str, kind: str) -> tuple[str, str]:
    """(verdict, detail): verdict is dir, file, skip, unexpected or hostile.

    ``name`` is a member name from a tar or a path relative to a backup
    directory; ``kind`` is file, dir, link or special. For dir and file the
    detail is the normalised relative path; otherwise it says why.
    """
    if kind == "file" and _OBJECT_NAME.fullmatch(name):
        return "file", name  # what the rules below say, for nearly every member
    if "\0" in name or "\\" in name:
        return "hostile", "a name with a NUL or backslash"
    if name.startswith("/"):
        return "hostile", "an absolute path"
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    parts = [] if name in ("", ".") else name.split("/")
    if ".." in parts:
        return "hostile", "a path that leaves the backup ('..')"
    if kind == "link":
        return "hostile", "a symlink or hard link"
    if kind == "special":
        return "hostile", "a device, FIFO or sparse file"
    rel = "/".join(parts)
    top = parts[0] if parts else ""
    if top in (fs.LOCK_NAME, fs.TMP_DIR):
        return "skip", "transient vault state"
    if top == layout.INBOX:  # grantee reads waiting for the owner
        return (
            "unexpected",
            "grantee audit entries not yet in the signed chain; not restored",
        )
    if kind == "dir" and (
        not parts
        or rel in (OBJECTS_DIR, manifest.SHARDS_DIR)
        or (len(parts) == 2 and top == OBJECTS_DIR and _BUCKET.fullmatch(parts[1]))
    ):
        return "dir", rel
    if kind == "file" and (
        rel == manifest.MANIFEST_NAME
        or (len(parts) == 2 and top == manifest.SHARDS_DIR and is_hash(parts[1]))
        or (
            len(parts) == 3
            and top == OBJECTS_DIR
            and is_hash(parts[2])
            and parts[2][:2] == parts[1]
        )
    ):
        return "file", rel
    return "unexpected", "not part of a vault backup; not restored"


def _extract_tar(stream: BinaryIO, sink: DirSink, label: str) -> list[Finding]:
    """Write the tar's vault members into ``sink``; findings for everything else."""
    return _read_tar(
        stream,
        lambda rel, read, _: sink.add_file(rel, read, None)[1],
        label,
        sink.add_dir,
    )


def _read_tar(
    stream: BinaryIO,
    put: Callable[[str, tarformat.Read, int], int],
    label: str,
    put_dir: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Hand each vault member of the tar to ``put``; findings for everything else.

    ``put(rel, read)`` consumes the member through ``read`` and returns the
    number of bytes it got; ``put_dir(rel)`` is told of each vault directory.
    """
    findings: list[Finding] = []
    written: set[str] = set()
    try:
        for name, kind, size, read in tarreader.members(stream):
            verdict, detail = _classify(name, kind)
            subject = name[:200]
            if verdict == "hostile":
                findings.append(
                    Finding(
                        "error", "hostile-member", subject, f"{detail}; not extracted"
                    )
                )
            elif verdict == "unexpected":
                findings.append(
                    Finding("warning", "unexpected-member", subject, detail)
                )
            elif verdict == "dir":
                if put_dir is not None:
                    put_dir(detail)
            elif verdict == "file" and read is not None:
                if detail in written:
                    findings.append(
                        Finding(
                            "error",
                            "duplicate-member",
                            subject,
                            "the archive holds this file twice; the copy was ignored",
                        )
                    )
                    continue
                written.add(detail)
                if put(detail, read, size) != size:
                    raise tarfile.ReadError("unexpected end of data")
    except _READ_ERRORS as err:
        findings.append(
            Finding(
                "error",
                "tar-damaged",
                label,
                f"the archive is truncated, damaged or not a tar ({err})",
            )
        )
    return findings


def _copy_tree(src: Path, sink: DirSink) -> list[Finding]:
    """Copy a backup directory's vault files into ``sink``; findings for the rest."""
    findings: list[Finding] = []
    for rel, path, kind in _walk(src):
        verdict, detail = _classify(rel, kind)
        if verdict == "hostile":
            findings.append(
                Finding("error", "hostile-member", rel, f"{detail}; not copied")
            )
        elif verdict == "unexpected":
            findings.append(Finding("warning", "unexpected-member", rel, detail))
        elif verdict == "dir":
            sink.add_dir(detail)
        elif verdict == "file":
            try:
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                fd = os.open(path, flags)  # NONBLOCK: a FIFO swapped in cannot hang us
            except OSError as err:
                raise fs.storage_error(err, f"read {rel}") from err
            with os.fdopen(fd, "rb") as source:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    findings.append(
                        Finding("error", "hostile-member", rel, "not a regular file")
                    )
                    continue
                sink.add_file(detail, _reading(source, rel), None)
    return findings


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, Path, str]]:
    """(relative path, path, kind) for everything under ``root``; links not followed."""
    directory = root / rel if rel else root
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as err:
        raise fs.storage_error(err, f"read {directory}") from err
    for entry in entries:
        name = f"{rel}/{entry.name}" if rel else entry.name
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as err:
            raise fs.storage_error(err, f"read {name}") from err
        if stat.S_ISLNK(mode):
            kind = "link"
        elif stat.S_ISDIR(mode):
            kind = "dir"
        elif stat.S_ISREG(mode):
            kind = "file"
        else:
            kind = "special"
        yield name, Path(entry.path), kind
        if kind == "dir" and _classify(name, kind)[0] == "dir":
            yield from _walk(root, name)


# --- helpers ----------------------------------------------------------------------------


def _reading(source: BinaryIO, rel: str) -> Callable[[int], bytes]:
    def read(size: int) -> bytes:
        try:
            return source.read(size)
        except OSError as err:
            raise fs.storage_error(err, f"read {rel}") from err

    return read


def _merged(report: VerifyReport, first: list[Finding], label: str) -> VerifyReport:
    return dataclasses.replace(report, vault=label, findings=(*first, *report.findings))


@contextlib.contextmanager
def _shared_lock_if_vault(path: Path, timeout: float) -> Iterator[None]:
    """A live vault given as a source is read under its shared lock."""
    lock = path / fs.LOCK_NAME
    if lock.is_file() and not lock.is_symlink():
        with fs.locked(path, exclusive=False, timeout=timeout):
            yield
    else:
        yield
