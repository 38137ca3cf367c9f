"""Locking, temporary files and durability: the file helpers beside ``rootfs``.

The store's file code is divided in two, along one line: is it one access
under the vault root, or not?

- ``rootfs.Root`` is every access *under* the root: it opens, lists, stats,
  renames, writes and removes relative to a descriptor of the root, one name
  of ``layout``'s grammar at a time, never following a link, refusing
  anything but private regular files and directories of ours.
- ``fs`` (this module) is the rest: the vault lock (``locked``), temporary
  files in tmp/ that become vault files on commit (``TempFile``,
  ``atomic_write``, ``clean_tmp``), durability (``make_durable`` and
  ``syncfs`` and ``sync_dirs`` for vault files; ``fsync_dir`` for a
  directory outside a vault), a private temporary directory outside any
  vault (``private_temp_dir``).
  Whatever of these touches a vault file does it through a ``Root`` or a
  descriptor one gave, never by a path of its own.

``check_vault_dirs`` and ``ensure_dirs`` check or make the vault's top
directories through a ``Root`` too. ``fsync_dir`` is for paths outside a
vault.

Modes are 0700 for directories and 0600 for files; a symlink, or a
permission that lets others in, is refused. ``OSError`` is translated into
confvault errors at this boundary.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from confvault.errors import UnsafeInputError, UnsafeVaultEntryError, VaultLockedError
from confvault.vault.store import layout, lockwait
from confvault.vault.store.rootfs import (
    DIR_MODE,
    FILE_MODE,
    Root,
    as_root,
    fix_mtime,
    open_nofollow,
    storage_error,
    write_whole,
)

__all__ = ["DIR_MODE", "FILE_MODE", "Root", "as_root", "storage_error"]

LOCK_NAME = layout.LOCK
TMP_DIR = layout.TMP
JOURNAL_SUFFIX = layout.JOURNAL_SUFFIX  # a write transaction's journal in tmp/
BATCH_FSYNC_LIMIT = 16  # above this many files, one syncfs beats many fsyncs


class _Unresolved:
    """The type of ``_UNRESOLVED``: syncfs(2) not looked up yet."""


_UNRESOLVED = _Unresolved()
# libc's syncfs(2) (fd -> 0 or -1, errno set) once looked up; None without one
_SYNCFS: Callable[[int], int] | _Unresolved | None = _UNRESOLVED


def _syncfs() -> Callable[[int], int] | None:
    """syncfs(2), looked up on first use: the C library is already loaded
    into this process, so there is nothing to search for at start-up."""
    global _SYNCFS
    if isinstance(_SYNCFS, _Unresolved):
        import ctypes  # only for syncfs: a backup to a tar never needs it

        try:
            _SYNCFS = ctypes.CDLL(None, use_errno=True).syncfs
        except (OSError, AttributeError):
            _SYNCFS = None
    return _SYNCFS


def check_vault_dirs(path: Path) -> None:
    """Refuse the vault directory ``path``, or one of its top directories that
    exists, unless it is a private directory of ours (a symlink in its place
    included): each opened as ``Root`` opens them, never following a link.
    ``FileNotFoundError`` when there is nothing at ``path``."""
    root = Root(path)
    try:
        for sub in layout.TOP_DIRS:
            with contextlib.suppress(FileNotFoundError):
                root.dir(sub)
    finally:
        root.close()


def ensure_dirs(path: Path) -> None:
    """Make the vault's top directories (0700) in ``path``, or check them."""
    root = Root(path)
    try:
        for sub in layout.TOP_DIRS:
            root.dir(sub, create=True)
    finally:
        root.close()


class TempFile:
    """A 0600 temporary file in the vault's tmp/ that becomes ``rel/name`` on commit.

    Everything goes through the vault's ``Root``: the file is created, moved
    and removed relative to directory descriptors, by checked names only.
    """

    def __init__(self, root: Root, rel: str, name: str) -> None:
        self.root, self.rel, self.name = root, rel, name
        self.temp = _temp_name(name)
        try:
            fd = root.create(TMP_DIR, self.temp)
        except OSError as err:
            raise storage_error(err, f"create a file in {root.where(TMP_DIR)}") from err
        # None once written whole (``of_bytes``): nothing is left open
        self.file: BinaryIO | None = os.fdopen(fd, "wb")

    @classmethod
    def of_bytes(cls, root: Root, rel: str, name: str, data: bytes) -> TempFile:
        """A closed temporary file holding ``data`` (the small-object fast path)."""
        self = cls.__new__(cls)
        self.root, self.rel, self.name = root, rel, name
        self.temp = _temp_name(name)
        try:
            write_whole(root.create(TMP_DIR, self.temp), data, rel)
        except OSError as err:
            with contextlib.suppress(OSError):
                root.remove(TMP_DIR, self.temp)
            raise storage_error(err, f"write {name}") from err
        self.file = None
        return self

    def _open_file(self) -> BinaryIO:
        if self.file is None:
            raise ValueError(f"{self.name} was written whole; it is closed")
        return self.file

    def write(self, data: bytes | bytearray | memoryview) -> int:
        file = self._open_file()
        try:
            return file.write(data)
        except OSError as err:
            self.discard()
            raise storage_error(err, f"write {self.name}") from err

    def close(self, *, fsync: bool = False) -> None:
        """Flush (and optionally fsync) and close; the file stays in tmp/."""
        file = self._open_file()
        try:
            file.flush()
            fix_mtime(file.fileno(), self.rel)
            if fsync:
                os.fsync(file.fileno())
            file.close()
        except OSError as err:
            self.discard()
            raise storage_error(err, f"write {self.name}") from err

    def read(self) -> bytes:
        """The closed file's content (a transaction reading its own writes)."""
        return self.root.read(TMP_DIR, self.temp)

    def move(self) -> None:
        """Rename the closed file onto its target (atomic within the vault)."""
        try:
            self.root.replace(TMP_DIR, self.temp, self.rel, self.name)
        except OSError as err:
            self.discard()
            raise storage_error(err, f"write {self.name}") from err

    def finish(self, *, fsync: bool) -> None:
        """Close (optionally fsync) and move into place."""
        self.close(fsync=fsync)
        self.move()

    def discard(self) -> None:
        """Close and remove the temporary file (after an error)."""
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
        with contextlib.suppress(OSError):
            self.root.remove(TMP_DIR, self.temp)


def write_new(root: Root, rel: str, name: str, data: bytes) -> None:
    """Write ``data`` as the new file ``rel/name`` in place, not durable yet:
    only for a directory nothing reads until it is complete (``clone``'s
    staging directory, renamed onto its target once durable), where the
    temporary file and rename of ``TempFile`` buy nothing."""
    try:
        write_whole(root.create(rel, name), data, rel)
    except OSError as err:
        raise storage_error(err, f"write {name}") from err


def _temp_name(name: str) -> str:
    return f"{name}.{os.getpid()}.{os.urandom(6).hex()}{layout.TEMP_SUFFIX}"


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


def syncfs(fd: int) -> bool:
    """One syncfs(2) of the file system holding ``fd``; False without one."""
    call = _syncfs()
    if call is None:
        return False
    if call(fd) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise storage_error(OSError(err, os.strerror(err)), "sync the vault")
    return True


def make_durable(root: Root, files: Sequence[tuple[str, str]]) -> None:
    """Make freshly moved vault files ``(directory, name)`` durable, with the
    directories that name them (and a bucket's parent: it may be new)."""
    if not files:
        return
    if len(files) > BATCH_FSYNC_LIMIT and syncfs(root.fd):
        return
    dirs: set[str] = set()
    for rel, name in files:
        try:
            root.fsync_file(rel, name)
        except OSError as err:
            raise storage_error(err, f"sync {name}") from err
        dirs.add(rel)
        dirs.add(rel.rpartition("/")[0])
    for rel in sorted(dirs):
        root.fsync_dir(rel)


def sync_dirs(root: Root, rels: Collection[str]) -> None:
    """Make the entries changed in the vault directories ``rels`` (names
    removed, say) durable: fsync each that exists, or one syncfs for more
    than two (a directory fsync is one device flush; a syncfs with little
    else to write costs about two: docs/RELIABILITY.md)."""
    if len(rels) > 2 and syncfs(root.fd):
        return
    for rel in sorted(rels):
        if root.has_dir(rel):
            root.fsync_dir(rel)


def atomic_write(root: Root, rel: str, name: str, data: bytes) -> None:
    """temp + fsync + rename + directory fsync: the file is old or new, never torn."""
    temp = TempFile(root, rel, name)
    temp.write(data)
    temp.finish(fsync=True)
    root.fsync_dir(rel)


@contextlib.contextmanager
def private_temp_dir(prefix: str) -> Iterator[Path]:
    """A new 0700 directory under ``$TMPDIR`` (outside any vault), removed
    with everything in it afterwards."""
    import shutil  # only here: few commands need a temporary directory
    import tempfile

    try:
        work = tempfile.mkdtemp(prefix=prefix)  # 0700
    except OSError as err:
        raise storage_error(err, "create a temporary directory") from err
    try:
        yield Path(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def clean_tmp(root: Root) -> int:
    """Remove temporary files left by an interrupted command (writer lock held).

    Only names of the temporary-file grammar, only regular files: anything
    else in tmp/ is left for ``verify`` to report.
    """
    removed = 0
    for name in root.names(TMP_DIR):
        if layout.TEMP.fullmatch(name):
            try:
                fd, _ = root.open(TMP_DIR, name)
            except (OSError, UnsafeInputError):
                continue
            os.close(fd)
            root.remove(TMP_DIR, name)
            removed += 1
    return removed


@contextlib.contextmanager
def locked(root: Root | Path, *, exclusive: bool, timeout: float) -> Iterator[None]:
    """Hold the vault lock: exclusive for writers, shared for readers.

    It is on the vault directory itself (a new descriptor of the one ``root``
    holds): no one can swap that under a holder as a lock file can be removed
    and made again, and a read-only vault has it too. The ``lock`` file in it
    (never through a link) is locked as well, for earlier versions. Waits up
    to ``timeout`` seconds for both, then raises VaultLockedError.
    """
    where = root.base if isinstance(root, Root) else os.fspath(root)
    try:
        if isinstance(root, Root):
            top = os.open(".", DIR_LOCK_FLAGS, dir_fd=root.fd)
        else:
            top = open_nofollow(where, DIR_LOCK_FLAGS, where, None)
    except OSError as err:
        raise storage_error(err, f"open {where}") from err
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        fd = _open_lock_file(top, f"{where}/{LOCK_NAME}", exclusive=exclusive)
        try:
            with lockwait.turn(fd, deadline):  # in turn: store/lockwait.py
                _flock(top, mode, deadline, optional=True)
                if fd is not None:
                    _flock(fd, mode, deadline, optional=False)
            yield
        finally:
            if fd is not None:
                os.close(fd)
    finally:
        os.close(top)


DIR_LOCK_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_lock_file(top: int, where: str, *, exclusive: bool) -> int | None:
    """The lock file in the directory ``top``, created if need be; None for a
    reader of a vault where it cannot be made (read-only: a mounted backup)."""
    try:
        fd = os.open(
            LOCK_NAME,
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            FILE_MODE,
            dir_fd=top,
        )
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeVaultEntryError(
                f"{where} is a symlink; refusing to follow it"
            ) from err
        if err.errno in (errno.EISDIR, errno.ENXIO):  # a directory, a socket
            raise UnsafeVaultEntryError(
                f"{where} is not a regular file of yours; a vault lock is one"
            ) from err
        if err.errno in (errno.EROFS, errno.EACCES) and not exclusive:
            return None  # readers need no lock file there: the directory's holds
        raise storage_error(err, "open the vault lock") from err
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        raise UnsafeVaultEntryError(
            f"{where} is not a regular file of yours; a vault lock is one"
        )
    return fd


def _flock(fd: int, mode: int, deadline: float, *, optional: bool) -> None:
    """``flock`` ``fd`` until ``deadline``; ``optional``: where a directory
    cannot be locked (NFS's record locks), the lock file alone holds."""
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise VaultLockedError(
                    "the vault is locked by another confvault process"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        except OSError as err:
            if optional and err.errno in (errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP):
                return
            raise storage_error(err, "lock the vault") from err
        else:
            return
