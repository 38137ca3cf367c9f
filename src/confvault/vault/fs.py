"""Every file the vault writes goes through here.

Atomic writes (temp file, fsync, rename, directory fsync), 0700 directories and
0600 files, refusal of symlinks and of permissions that let others in, and the
vault lock. ``OSError`` is translated into confvault errors at this boundary.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from confvault.errors import (
    StorageError,
    UnsafeInputError,
    VaultLockedError,
)

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = "lock"
TMP_DIR = "tmp"
_BATCH_FSYNC_LIMIT = 16  # above this many files, one syncfs beats many fsyncs


def storage_error(err: OSError, what: str) -> StorageError:
    """A StorageError that says what failed, and why, without a traceback."""
    reason = (
        "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    )
    return StorageError(f"cannot {what}: {reason}")


JOURNAL_SUFFIX = ".journal"  # a write transaction's journal in tmp/ (see _txn)
_UNRESOLVED: Any = object()
_SYNCFS: Any = _UNRESOLVED  # libc's syncfs(2) once looked up; None without one


def _syncfs() -> Any:
    """syncfs(2), looked up on first use: the C library is already loaded
    into this process, so there is nothing to search for at start-up."""
    global _SYNCFS
    if _SYNCFS is _UNRESOLVED:
        import ctypes  # only for syncfs: a backup to a tar never needs it

        try:
            _SYNCFS = ctypes.CDLL(None, use_errno=True).syncfs
        except (OSError, AttributeError):
            _SYNCFS = None
    return _SYNCFS


def check_dir(path: Path) -> None:
    """Refuse a symlink where a vault directory should be, or one others can enter."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise storage_error(err, f"inspect {path}") from err
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeInputError(f"{path} is a symlink; a vault never contains symlinks")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeInputError(f"{path} is not a directory")
    if info.st_mode & 0o077:
        raise UnsafeInputError(
            f"{path} is accessible to other users (mode {info.st_mode & 0o777:o}); "
            "run `chmod -R go-rwx` on the vault"
        )
    if info.st_uid != os.getuid():
        raise UnsafeInputError(f"{path} belongs to another user")


def ensure_dir(path: Path) -> None:
    """Create a 0700 directory (or check an existing one)."""
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        check_dir(path)
    except OSError as err:
        raise storage_error(err, f"create {path}") from err


def open_read(path: Path) -> BinaryIO:
    """Open a vault file for reading, refusing symlinks and non-regular files."""
    return os.fdopen(_open_private(path)[0], "rb")


def _open_private(path: Path | str) -> tuple[int, os.stat_result]:
    """A read descriptor of a private regular file, and its status."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeInputError(
                f"{path} is a symlink; refusing to follow it"
            ) from err
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafeInputError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        os.close(fd)
        raise UnsafeInputError(
            f"{path} is accessible to other users (mode {info.st_mode & 0o777:o})"
        )
    return fd, info


def read_bytes(path: Path | str) -> bytes:
    """The whole content of a (small) vault file."""
    fd, info = _open_private(path)
    try:
        parts = []
        want = info.st_size + 1  # one more, to see the end even if it grew
        while True:
            block = os.read(fd, want)
            parts.append(block)
            if len(block) < want:  # a short read of a regular file: its end
                break
            want = 1 << 20
        return b"".join(parts) if len(parts) != 1 else parts[0]
    finally:
        os.close(fd)


class TempFile:
    """A 0600 temporary file in the vault's tmp/ that becomes ``target`` on commit.

    Paths are kept as strings: a rotation makes thousands of these.
    """

    def __init__(self, root: Path, target: Path | str) -> None:
        self.target = target
        tmp_dir = root / TMP_DIR
        self.path = _temp_name(root, target)
        try:
            fd = _create_new(self.path)
        except OSError as err:
            raise storage_error(err, f"create a file in {tmp_dir}") from err
        self.file: BinaryIO = os.fdopen(fd, "wb")

    @classmethod
    def of_bytes(cls, root: Path, target: Path | str, data: bytes) -> TempFile:
        """A closed temporary file holding ``data`` (the small-object fast path)."""
        self = cls.__new__(cls)
        self.target = target
        self.path = _temp_name(root, target)
        try:
            fd = _create_new(self.path)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # noqa: PTH108 (a str path: hot)
            raise storage_error(err, f"write {self.name}") from err
        self.file = None  # type: ignore[assignment]
        return self

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            return self.file.write(data)
        except OSError as err:
            self.discard()
            raise storage_error(err, f"write {self.name}") from err

    def close(self, *, fsync: bool = False) -> None:
        """Flush (and optionally fsync) and close; the file stays in tmp/."""
        try:
            self.file.flush()
            if fsync:
                os.fsync(self.file.fileno())
            self.file.close()
        except OSError as err:
            self.discard()
            raise storage_error(err, f"write {self.name}") from err

    @property
    def name(self) -> str:
        """The target's file name (for messages)."""
        return _basename(self.target)

    def move(self) -> None:
        """Rename the closed file onto its target (atomic within the vault)."""
        try:
            os.replace(self.path, self.target)
        except OSError as err:
            self.discard()
            raise storage_error(err, f"write {self.name}") from err

    def finish(self, *, fsync: bool) -> None:
        """Close (optionally fsync) and move into place."""
        self.close(fsync=fsync)
        self.move()

    def discard(self) -> None:
        """Close and remove the temporary file (after an error)."""
        with contextlib.suppress(OSError, AttributeError):
            self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # noqa: PTH108 (a str path: hot)


def _create_new(path: str) -> int:
    """A write descriptor of a new 0600 file (never an existing one or a symlink)."""
    return os.open(
        path,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        FILE_MODE,
    )


def _basename(path: Path | str) -> str:
    return str(path).rpartition("/")[2]


def _temp_name(root: Path, target: Path | str) -> str:
    return (
        f"{root}/{TMP_DIR}/{_basename(target)}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    )


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise storage_error(err, f"sync {path}") from err


def make_durable(root: Path, files: Sequence[Path | str]) -> None:
    """Make freshly written ``files`` (and their directory entries) durable.

    Few files: fsync each and its directory. Many (a rotation): one syncfs
    for the whole file system, so durability is paid once per batch.
    """
    if not files:
        return
    if len(files) > _BATCH_FSYNC_LIMIT and (syncfs := _syncfs()) is not None:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if syncfs(fd) != 0:
                import ctypes

                err = ctypes.get_errno()
                raise storage_error(OSError(err, os.strerror(err)), "sync the vault")
        finally:
            os.close(fd)
        return
    dirs: set[Path] = set()
    for name in files:
        path = Path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise storage_error(err, f"sync {path.name}") from err
        dirs.add(path.parent)
        dirs.add(path.parent.parent)  # a bucket directory may be new
    for directory in sorted(dirs):
        fsync_dir(directory)


def atomic_write(root: Path, target: Path, data: bytes) -> None:
    """temp + fsync + rename + directory fsync: ``target`` is old or new, never torn."""
    temp = TempFile(root, target)
    temp.write(data)
    temp.finish(fsync=True)
    fsync_dir(target.parent)


def remove(path: Path | str) -> None:
    """Remove a file; a missing one is fine (an earlier run may have removed it)."""
    try:
        os.unlink(path)  # noqa: PTH108 (a str path: hot)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise storage_error(err, f"remove {_basename(path)}") from err


def clean_tmp(root: Path) -> int:
    """Remove temporary files left by an interrupted command (writer lock held)."""
    removed = 0
    tmp_dir = root / TMP_DIR
    try:
        entries = list(os.scandir(tmp_dir))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
            remove(Path(entry.path))
            removed += 1
    return removed


@contextlib.contextmanager
def locked(root: Path, *, exclusive: bool, timeout: float) -> Iterator[None]:
    """Hold the vault lock: exclusive for writers, shared for readers.

    Waits up to ``timeout`` seconds, then raises VaultLockedError.
    """
    path = root / LOCK_NAME
    try:
        fd = os.open(
            path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
        )
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeInputError(
                f"{path} is a symlink; refusing to follow it"
            ) from err
        if err.errno in (errno.EROFS, errno.EACCES) and not exclusive:
            # A read-only vault (a mounted backup): readers need no lock there.
            yield
            return
        raise storage_error(err, "open the vault lock") from err
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise VaultLockedError(
                        "the vault is locked by another confvault process"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)
