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

A tar from elsewhere is hostile input: members are never extracted by
``tarfile`` itself; only ``manifest``, ``shards/<sha256>`` and
``objects/<xx>/<sha256>`` are written (0600, in 0700 directories), and
absolute paths, ``..``, links, devices and duplicates become findings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import hmac
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from confvault.errors import (
    ConfvaultError,
    IntegrityError,
    UnsafeInputError,
    VaultExistsError,
    VaultNotFoundError,
)
from confvault.vault import fs, manifest, tarformat
from confvault.vault.objects import OBJECTS_DIR, is_hash
from confvault.vault.paths import (
    DEFAULT_LOCK_TIMEOUT,
    SeenStore,
    check_vault_dir,
    default_state_dir,
)
from confvault.vault.results import Finding, VerifyReport
from confvault.vault.verify import _live_objects, _Report, verify_keyless

TAR_SUFFIX = ".tar"
STREAM_LABEL = "-"
_CHUNK = 1 << 20
_AUDIT_INBOX = "audit-inbox"  # grantee reads waiting for the owner's next command
_BUCKET = re.compile(r"[0-9a-f]{2}")
_OBJECT_NAME = re.compile(r"objects/([0-9a-f]{2})/\1[0-9a-f]{62}")
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OBJECTS_PREFIX = OBJECTS_DIR + "/"


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
) -> BackupResult:
    """Copy the vault's current generation to ``dest``; no passphrase involved.

    ``dest`` is a new or empty directory, a path ending in ``.tar`` that does
    not exist yet, or a writable binary stream (a tar is streamed to it).
    """
    root = Path(vault_root)
    check_vault_dir(root)
    if not _exists(root / manifest.MANIFEST_NAME):
        raise VaultNotFoundError(f"no vault at {root}")
    sink = _open_sink(root, dest)
    try:
        with fs.locked(root, exclusive=False, timeout=lock_timeout):
            current = manifest.load(root)
            sink.mtime = _epoch(current.body.time)
            files, size = _copy_snapshot(root, current, sink)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    body = current.body
    return BackupResult(
        sink.label, body.vault_id, body.generation, body.objects, files, size
    )


def _open_sink(root: Path, dest: Path | str | BinaryIO) -> _TarSink | _DirSink:
    if not isinstance(dest, (str, os.PathLike)):
        return _TarSink(dest, STREAM_LABEL)
    path = Path(dest)
    _refuse_inside(path, root, "the backup cannot go inside the vault")
    if path.name.endswith(TAR_SUFFIX):
        return _TarFileSink(path)
    return _DirSink(_NewDir(path))


def _copy_snapshot(
    root: Path, current: manifest.Manifest, sink: _TarSink | _DirSink
) -> tuple[int, int]:
    """Copy the manifest, its shards and the live objects; check every hash."""
    body = current.body
    live = current.all_objects()  # reads the shards and checks their hashes
    dirs = {OBJECTS_DIR, manifest.SHARDS_DIR} | {f"{OBJECTS_DIR}/{d[:2]}" for d in live}
    files: dict[str, str | None] = {manifest.MANIFEST_NAME: None}
    files |= {f"{manifest.SHARDS_DIR}/{n}": n for n in body.shards.values()}
    files |= {f"{OBJECTS_DIR}/{d[:2]}/{d}": d for d in live}
    total = 0
    with _Sources(root) as sources:
        for rel in sorted(dirs | files.keys()):
            if rel in dirs:
                sink.add_dir(rel)
                continue
            fd, size = sources.open(rel)
            try:
                digest, written = sink.copy_fd(rel, fd, size)
            finally:
                os.close(fd)
            expected = files[rel]
            if written != size or (
                expected is not None and not hmac.compare_digest(digest, expected)
            ):
                raise IntegrityError(
                    f"{rel} is damaged (its content does not match its hash); "
                    "run `confvault verify`"
                )
            total += size
    return len(files), total


class _Sources:
    """Opens vault files as ``fs.open_read`` would: regular, private, no symlink.

    Plain strings and one open descriptor per directory (the paths are
    sorted), because with 10,000 objects pathlib, a buffered file object and
    a full path lookup per file cost more than reading the file. A directory
    on the way that is a symlink is refused too. O_NONBLOCK: a FIFO planted
    in the vault cannot hang an unattended backup.
    """

    def __init__(self, root: Path) -> None:
        self.base = os.fspath(root) + "/"
        self.dir = ""
        self.dir_fd: int | None = None

    def __enter__(self) -> _Sources:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    def open(self, rel: str) -> tuple[int, int]:
        """(descriptor, size) of the vault file ``rel``."""
        directory, _, name = rel.rpartition("/")
        if self.dir_fd is None or directory != self.dir:
            self.__exit__()
            try:
                self.dir_fd = os.open(self.base + directory, _DIR_FLAGS)
            except OSError as err:
                raise self._error(err, rel, self.base + directory) from err
            self.dir = directory
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.dir_fd)
        except OSError as err:
            raise self._error(err, rel, self.base + rel) from err
        try:
            info = os.fstat(fd)
        except OSError as err:
            os.close(fd)
            raise fs.storage_error(err, f"read {rel}") from err
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = f"{self.base}{rel} is not a regular file"
        elif info.st_mode & 0o077:
            problem = (
                f"{self.base}{rel} is accessible to other users "
                f"(mode {info.st_mode & 0o777:o})"
            )
        if problem is not None:
            os.close(fd)
            raise UnsafeInputError(problem)
        return fd, info.st_size

    @staticmethod
    def _error(err: OSError, rel: str, path: str) -> Exception:
        if isinstance(err, FileNotFoundError):
            return IntegrityError(
                f"{rel} is missing from the vault; run `confvault verify`"
            )
        if err.errno == errno.ELOOP or (
            err.errno == errno.ENOTDIR and Path(path).is_symlink()  # O_DIRECTORY
        ):
            return UnsafeInputError(f"{path} is a symlink; refusing to follow it")
        return fs.storage_error(err, f"read {rel}")


def _read_fd(fd: int, size: int, rel: str) -> bytes:
    try:
        return os.read(fd, size)
    except OSError as err:
        raise fs.storage_error(err, f"read {rel}") from err


# --- verify ---------------------------------------------------------------------------


def verify(
    src: Path | str | BinaryIO, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> VerifyReport:
    """Check a backup (directory, tar file or tar stream) with no key at all.

    A tar is unpacked, safely, into a private temporary directory (under
    ``$TMPDIR``), which is removed afterwards.
    """
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
    """Verify a tar as it streams by: objects are hashed, never written.

    Only the manifest and the shard files (a few bytes per object) go to a
    private temporary directory, where the manifest's own checks read them;
    the findings are those ``verify_keyless`` gives for the unpacked copy.
    """
    try:
        work = tempfile.mkdtemp(prefix="confvault-verify-")  # 0700
    except OSError as err:
        raise fs.storage_error(err, "create a temporary directory") from err
    try:
        meta = _DirSink(_NewDir(Path(work) / "backup"))
        hashes: dict[str, bool] = {}  # object name -> its content matches it

        def put(rel: str, read: tarformat.Read) -> int:
            if not rel.startswith(_OBJECTS_PREFIX):
                return meta.add_file(rel, read, None)[1]
            digest = rel.rpartition("/")[2]
            sha = hashlib.sha256()
            count = 0
            while block := read(_CHUNK):
                sha.update(block)
                count += len(block)
            hashes[digest] = hmac.compare_digest(sha.hexdigest(), digest)
            return count

        findings = _read_tar(stream, put, label)
        report = _check_streamed(meta.root, hashes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _merged(report, findings, label)


def _check_streamed(meta_root: Path, hashes: dict[str, bool]) -> VerifyReport:
    """``verify_keyless`` for a backup whose objects were hashed in the stream."""
    report = _Report()
    try:
        current = manifest.load(meta_root)
    except ConfvaultError as err:
        report.error("manifest", manifest.MANIFEST_NAME, str(err))
        return VerifyReport(str(meta_root), 0, 0, 0, False, tuple(report.findings))
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
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(meta_root / manifest.SHARDS_DIR)):
            if name not in shards:
                report.warning(
                    "unreferenced",
                    f"shards/{name}",
                    "shard not in the manifest (harmless)",
                )
    return VerifyReport(
        str(meta_root),
        body.generation,
        len(live),
        0,
        False,
        tuple(report.findings),
        body.vault_id,
    )


def _verify_copy(fill: Callable[[_DirSink], list[Finding]], label: str) -> VerifyReport:
    """Copy a backup into a private temporary directory and verify it there."""
    try:
        work = tempfile.mkdtemp(prefix="confvault-verify-")  # 0700
    except OSError as err:
        raise fs.storage_error(err, "create a temporary directory") from err
    try:
        root = Path(work) / "backup"
        findings = fill(_DirSink(_NewDir(root)))
        report, _ = verify_keyless(root, seen=None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _merged(report, findings, label)


# --- restore --------------------------------------------------------------------------


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
    target_path = Path(dest)
    source = _source_path(src) if isinstance(src, (str, os.PathLike)) else src
    if isinstance(source, Path) and source.is_dir():
        _refuse_inside(target_path, source, "cannot restore into the backup")
    sink = _DirSink(_NewDir(target_path))
    try:
        report, current = _restore_into(source, sink, lock_timeout)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    body = current.body
    report = _check_memory(report, body, state_dir, accept_rollback)
    result = BackupResult(
        str(target_path),
        body.vault_id,
        body.generation,
        body.objects,
        sink.files_written,
        sink.bytes_written,
    )
    return result, report


def _source_path(src: Path | str) -> Path:
    path = Path(src)
    if path.is_dir() and path.is_symlink():
        path = path.resolve()  # the user named it; what it names is checked
    if not path.exists():
        raise VaultNotFoundError(f"no backup at {path}")
    return path


def _restore_into(
    source: Path | BinaryIO, sink: _DirSink, lock_timeout: float
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


def _check_memory(
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
    if top == _AUDIT_INBOX:
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


def _extract_tar(stream: BinaryIO, sink: _DirSink, label: str) -> list[Finding]:
    """Write the tar's vault members into ``sink``; findings for everything else."""
    return _read_tar(
        stream, lambda rel, read: sink.add_file(rel, read, None)[1], label, sink.add_dir
    )


def _read_tar(
    stream: BinaryIO,
    put: Callable[[str, tarformat.Read], int],
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
        for name, kind, size, read in tarformat.members(stream):
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
                if put(detail, read) != size:
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


def _copy_tree(src: Path, sink: _DirSink) -> list[Finding]:
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


# --- destinations ---------------------------------------------------------------------


class _NewDir:
    """A directory that was new or empty; ``abort`` puts it back as it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created: Path | None = None
        self.old_mode: int | None = None
        if path.is_symlink():
            raise UnsafeInputError(f"{path} is a symlink; give the real directory")
        if path.exists():
            if not path.is_dir():
                raise VaultExistsError(f"{path} exists and is not a directory")
            try:
                empty = not any(path.iterdir())
                if empty:
                    self.old_mode = stat.S_IMODE(path.stat().st_mode)
                    os.chmod(path, fs.DIR_MODE)
            except OSError as err:
                raise fs.storage_error(err, f"use {path}") from err
            if not empty:
                raise VaultExistsError(
                    f"{path} is not empty; give a new or empty directory"
                )
            return
        top = path
        while not top.parent.exists() and top.parent != top:
            top = top.parent
        try:
            path.mkdir(mode=fs.DIR_MODE, parents=True)
            os.chmod(path, fs.DIR_MODE)
        except OSError as err:
            raise fs.storage_error(err, f"create {path}") from err
        self.created = top

    def abort(self) -> None:
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            for child in list(self.path.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
            if self.old_mode is not None:
                os.chmod(self.path, self.old_mode)


class _DirSink:
    """Writes a backup (or a restore) into a new directory: 0700 dirs, 0600 files."""

    def __init__(self, target: _NewDir) -> None:
        self.target = target
        self.root = target.path
        self.base = os.fspath(target.path) + "/"
        self.label = str(target.path)
        self.mtime = 0
        self.written: list[str] = []
        self.dirs: set[str] = {""}
        self.bytes_written = 0
        self.dir = ""  # copy_fd creates files by name in this directory...
        self.dir_fd: int | None = None  # ...open here

    @property
    def files_written(self) -> int:
        return len(self.written)

    def add_dir(self, rel: str) -> None:
        if rel in self.dirs:
            return
        path = self.base + rel
        try:
            os.mkdir(path, fs.DIR_MODE)  # noqa: PTH102 - 10,000 paths: str, not Path
        except FileExistsError:
            self.dirs.add(rel)
            return
        except OSError as err:
            raise fs.storage_error(err, f"create {rel}") from err
        os.chmod(path, fs.DIR_MODE)
        self.dirs.add(rel)

    def _create(self, rel: str) -> int:
        try:
            fd = os.open(self.base + rel, _CREATE_FLAGS, fs.FILE_MODE)
        except OSError as err:
            raise fs.storage_error(err, f"create {rel}") from err
        return self._private(fd, rel)

    def _private(self, fd: int, rel: str) -> int:
        """``fd``, made 0600 whatever the umask; the file is removed if that fails."""
        try:
            os.fchmod(fd, fs.FILE_MODE)
        except OSError as err:
            self._discard(fd, rel)
            raise fs.storage_error(err, f"create {rel}") from err
        return fd

    def _discard(self, fd: int, rel: str) -> None:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(self.base + rel)  # noqa: PTH108 - str paths, as in _create

    def _write(self, fd: int, block: bytes | memoryview, rel: str) -> None:
        view = memoryview(block)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as err:
            raise fs.storage_error(err, f"write {rel}") from err

    def add_file(
        self, rel: str, read: tarformat.Read, size: int | None
    ) -> tuple[str, int]:
        """Copy what ``read`` gives (``size`` bytes, or to the end) to ``rel``."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):  # a tar need not list the directories
            self.add_dir("/".join(parts[:depth]))
        fd = self._create(rel)
        try:
            digest, count = _pump(read, lambda b: self._write(fd, b, rel), size)
        except BaseException:
            self._discard(fd, rel)
            raise
        os.close(fd)
        self.written.append(rel)
        self.bytes_written += count
        return digest, count

    def _close_dir(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    def copy_fd(self, rel: str, source: int, size: int) -> tuple[str, int]:
        """Copy ``size`` bytes of a vault file (its directory already made)."""
        directory, _, name = rel.rpartition("/")
        try:
            if self.dir_fd is None or directory != self.dir:
                self._close_dir()
                self.dir_fd = os.open(self.base + directory, _DIR_FLAGS)
                self.dir = directory
            fd = os.open(name, _CREATE_FLAGS, fs.FILE_MODE, dir_fd=self.dir_fd)
        except OSError as err:
            raise fs.storage_error(err, f"create {rel}") from err
        fd = self._private(fd, rel)
        try:
            sha = hashlib.sha256()
            count = 0
            while count < size:
                block = _read_fd(source, min(_CHUNK, size - count), rel)
                if not block:
                    break
                sha.update(block)
                self._write(fd, block, rel)
                count += len(block)
        except BaseException:
            self._discard(fd, rel)
            raise
        os.close(fd)
        self.written.append(rel)
        self.bytes_written += count
        return sha.hexdigest(), count

    def finish(self) -> None:
        self._close_dir()
        fs.make_durable(self.root, [self.root / rel for rel in self.written])
        fs.fsync_dir(self.root)
        fs.fsync_dir(self.root.parent)

    def abort(self) -> None:
        self._close_dir()
        self.target.abort()


class _TarSink:
    """Streams a tar: sorted members, 0600/0700, owner 0, names relative to the vault.

    The bytes are those ``tarfile`` writes in PAX_FORMAT for the same members
    (plain ustar headers: the names are short ASCII), built here directly:
    tarfile's per-member work cost more than the copy itself.
    """

    def __init__(self, out: BinaryIO, label: str) -> None:
        self.out = out
        self.label = label
        self.mtime = 0
        self.buf = bytearray()
        self.offset = 0  # bytes handed to ``out``

    def _put(self, data: bytes | memoryview) -> None:
        self.buf += data
        if len(self.buf) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        buf, self.buf = self.buf, bytearray()
        try:
            self.out.write(buf)
        except OSError as err:
            raise fs.storage_error(err, "write the backup") from err
        self.offset += len(buf)

    def add_dir(self, rel: str) -> None:
        self._put(
            tarformat.header(rel + "/", tarfile.DIRTYPE, fs.DIR_MODE, 0, self.mtime)
        )

    def copy_fd(self, rel: str, source: int, size: int) -> tuple[str, int]:
        """Append a member of ``size`` bytes read from ``source``."""
        header = tarformat.header(rel, tarfile.REGTYPE, fs.FILE_MODE, size, self.mtime)
        if size <= _CHUNK:  # nearly every object: one read, one append
            try:
                block = os.read(source, size)
            except OSError as err:
                raise fs.storage_error(err, f"read {rel}") from err
            while len(block) < size:
                more = _read_fd(source, size - len(block), rel)
                if not more:
                    raise IntegrityError(f"{rel} changed size while being copied")
                block += more
            self.buf += header
            self.buf += block
            self.buf += tarformat.PADDING[size % tarformat.BLOCK]
            if len(self.buf) >= _CHUNK:
                self._flush()
            return hashlib.sha256(block).hexdigest(), size
        self._put(header)
        sha = hashlib.sha256()
        count = 0
        while count < size:
            block = _read_fd(source, min(_CHUNK, size - count), rel)
            if not block:
                raise IntegrityError(f"{rel} changed size while being copied")
            sha.update(block)
            self._put(block)
            count += len(block)
        self._put(tarformat.PADDING[size % tarformat.BLOCK])
        return sha.hexdigest(), count

    def finish(self) -> None:
        """Two zero blocks, then zeros to a whole record, as tarfile ends a tar."""
        self._put(tarformat.ZERO_BLOCK * 2)
        end = self.offset + len(self.buf)
        if end % tarfile.RECORDSIZE:
            self._put(bytes(tarfile.RECORDSIZE - end % tarfile.RECORDSIZE))
        self._flush()
        try:
            self.out.flush()
        except OSError as err:
            raise fs.storage_error(err, "write the backup") from err

    def abort(self) -> None:
        """Leave the stream without its end-of-archive: a reader sees it truncated."""
        self.buf = bytearray()


class _TarFileSink(_TarSink):
    """A tar file written under a temporary name beside it, renamed when complete."""

    def __init__(self, path: Path) -> None:
        if _exists(path):
            raise VaultExistsError(f"{path} already exists; not overwriting it")
        self.path = path
        self.temp = path.with_name(
            f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        )
        try:
            fd = os.open(
                self.temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                fs.FILE_MODE,
            )
        except OSError as err:
            raise fs.storage_error(err, f"create {self.temp}") from err
        self.file = os.fdopen(fd, "wb")
        super().__init__(self.file, str(path))

    def finish(self) -> None:
        super().finish()
        try:
            os.fsync(self.file.fileno())
            self.file.close()
            os.link(
                self.temp, self.path
            )  # never replaces a file that appeared meanwhile
            self.temp.unlink()
        except FileExistsError as err:
            self.abort()
            raise VaultExistsError(
                f"{self.path} already exists; not overwriting it"
            ) from err
        except OSError as err:
            self.abort()
            raise fs.storage_error(err, f"write {self.path}") from err
        fs.fsync_dir(self.path.parent)

    def abort(self) -> None:
        super().abort()
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.temp.unlink()


# --- helpers ----------------------------------------------------------------------------


def _pump(
    read: tarformat.Read, write: Callable[[bytes | memoryview], None], size: int | None
) -> tuple[str, int]:
    sha = hashlib.sha256()
    count = 0
    while size is None or count < size:
        block = read(_CHUNK if size is None else min(_CHUNK, size - count))
        if not block:
            break
        sha.update(block)
        write(block)
        count += len(block)
    return sha.hexdigest(), count


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


def _refuse_inside(path: Path, container: Path, message: str) -> None:
    resolved = path.resolve()
    base = container.resolve()
    if resolved == base or base in resolved.parents:
        raise UnsafeInputError(f"{message}: {path}")


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _epoch(time: str) -> int:
    try:
        return int(dt.datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
