"""The vault directory, held by a descriptor: the only way into it.

Every file and directory under the root is reached relative to a descriptor
of the root (``openat`` style, through ``dir_fd=``), one checked component
at a time, never following a symlink, and only by a directory and a name
that ``layout`` accepts. A file is opened non-blocking (a FIFO or a device
cannot hang a command) and with ``O_NOATIME`` (reads leave no trace in the
access times); anything but a private regular file of ours with one link,
or a private directory of ours, is refused with ``UnsafeVaultEntryError``.

The checkers and the backup copier, which report what is wrong rather than
refuse it, look at a vault as it is through ``survey.Survey``: a ``Root``
opened with ``check=False`` and read by the same rules, whatever the modes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import weakref
from pathlib import Path

from confvault.errors import StorageError, UnsafeVaultEntryError
from confvault.vault.store import layout

DIR_MODE = 0o700
FILE_MODE = 0o600
NOATIME = getattr(os, "O_NOATIME", 0)
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# The most a file read whole may hold, by what it is: a planted sparse file of
# 64 GiB is refused by its size, never read into memory. Far above what a
# vault writes (a manifest of 256 shards is ~20 KB, a shard 65 bytes an
# object, an inbox entry a few KB, a journal 65 bytes a name); attachments,
# read as streams, have no limit.
MIB = 1 << 20
READ_LIMITS = {"": 4 * MIB, layout.SHARDS: 64 * MIB, layout.INBOX: MIB}
JOURNAL_LIMIT = 64 * MIB
OBJECT_LIMIT = 256 * MIB  # an object (or a temporary file) read whole


def read_limit(rel: str, name: str) -> int:
    """The most the file ``rel/name`` may hold to be read whole."""
    if rel == layout.TMP and name.endswith(layout.JOURNAL_SUFFIX):
        return JOURNAL_LIMIT
    return READ_LIMITS.get(rel, OBJECT_LIMIT)


def too_big(size: int, limit: int, where: str) -> UnsafeVaultEntryError:
    return UnsafeVaultEntryError(
        f"{where} is {size} bytes, more than such a file can hold ({limit}); "
        "refusing to read it"
    )


# The same instant on every object: mtimes tell an observer nothing about
# which files a command wrote together (2000-01-01T00:00:00Z).
FIXED_MTIME_NS = 946_684_800 * 1_000_000_000


def storage_error(err: OSError, what: str) -> StorageError:
    """A StorageError that says what failed, and why, without a traceback."""
    reason = (
        "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    )
    return StorageError(f"cannot {what}: {reason}")


def check_dir_status(info: os.stat_result, where: str) -> None:
    """Refuse a directory that is not ours or that others may enter."""
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeVaultEntryError(f"{where} is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeVaultEntryError(f"{where} belongs to another user")
    if info.st_mode & 0o077:
        raise UnsafeVaultEntryError(
            f"{where} is accessible to other users (mode {info.st_mode & 0o777:o}); "
            "run `chmod -R go-rwx` on the vault"
        )


def check_file_status(info: os.stat_result, where: str) -> None:
    """Refuse anything but a private regular file of ours with a single link."""
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeVaultEntryError(f"{where} is not a regular file")
    if info.st_uid != os.getuid():
        raise UnsafeVaultEntryError(f"{where} belongs to another user")
    if info.st_mode & 0o077:
        raise UnsafeVaultEntryError(
            f"{where} is accessible to other users (mode {info.st_mode & 0o777:o})"
        )
    if info.st_nlink != 1:
        raise UnsafeVaultEntryError(
            f"{where} has {info.st_nlink} hard links; a vault file has exactly one"
        )


def open_nofollow(name: str, flags: int, where: str, dir_fd: int | None) -> int:
    """``os.open`` that names a symlink or a FIFO for what it is."""
    try:
        return os.open(name, flags | NOATIME, dir_fd=dir_fd)
    except PermissionError:
        if not NOATIME:
            raise
        # O_NOATIME is only for files we own; the status check then refuses.
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP or (
            # Linux says ENOTDIR, not ELOOP, for a symlink opened with
            # O_DIRECTORY | O_NOFOLLOW: look (not following it) to say which.
            err.errno == errno.ENOTDIR
            and flags & os.O_DIRECTORY
            and _is_link(name, dir_fd)
        ):
            raise UnsafeVaultEntryError(
                f"{where} is a symlink; refusing to follow it"
            ) from err
        if err.errno == errno.ENOTDIR:
            raise UnsafeVaultEntryError(f"{where} is not a directory") from err
        if err.errno in (errno.ENXIO, errno.EISDIR):  # a socket; a directory
            raise UnsafeVaultEntryError(f"{where} is not a regular file") from err
        raise


def _is_link(name: str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def close_all(fds: dict[str, int]) -> None:
    """Close the descriptors of a cache of directories (and empty it)."""
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class Root:
    """One vault directory: its descriptor and those of its checked subdirectories."""

    def __init__(self, path: Path, *, check: bool = True) -> None:
        """Open the vault directory ``path`` (never a symlink); with ``check``
        false, whatever its mode and owner (a checker then reports them)."""
        self.path = path
        self.base = os.fspath(path)
        try:
            fd = open_nofollow(self.base, DIR_FLAGS, self.base, None)
        except FileNotFoundError:
            raise
        except OSError as err:
            raise storage_error(err, f"open {path}") from err
        self.fd = fd
        self._uid = os.getuid()
        self._dirs: dict[str, int] = {"": fd}
        self._finalizer = weakref.finalize(self, close_all, self._dirs)
        if check:
            try:
                self.check_status()
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        self._finalizer()

    def status(self) -> os.stat_result:
        """The vault directory's own status."""
        return os.fstat(self.fd)

    def check_status(self) -> None:
        """Refuse the vault directory itself unless it is a private directory of ours."""
        check_dir_status(self.status(), self.base)

    def where(self, rel: str, name: str = "") -> str:
        """A path for messages (never for opening)."""
        return "/".join(p for p in (self.base, rel, name) if p)

    # --- directories -------------------------------------------------------------

    def dir(self, rel: str, *, create: bool = False) -> int:
        """The descriptor of the format's directory ``rel`` (checked, cached).

        ``FileNotFoundError`` when it does not exist and ``create`` is false.
        """
        fd = self._dirs.get(rel)
        if fd is not None:
            return fd
        layout.check_dir(rel)
        parent, _, name = rel.rpartition("/")
        parent_fd = self.dir(parent, create=create)
        where = self.where(rel)
        try:
            try:
                fd = open_nofollow(name, DIR_FLAGS, where, parent_fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
                fd = open_nofollow(name, DIR_FLAGS, where, parent_fd)
        except (FileNotFoundError, UnsafeVaultEntryError):
            raise
        except OSError as err:
            raise storage_error(err, f"open {where}") from err
        try:
            check_dir_status(os.fstat(fd), where)
        except BaseException:
            os.close(fd)
            raise
        self._dirs[rel] = fd
        return fd

    def has_dir(self, rel: str) -> bool:
        try:
            self.dir(rel)
        except FileNotFoundError:
            return False
        return True

    def names(self, rel: str) -> list[str]:
        """The names in the directory ``rel`` (sorted; empty when it is missing)."""
        try:
            fd = self.dir(rel)
        except FileNotFoundError:
            return []
        try:
            return sorted(os.listdir(fd))
        except OSError as err:
            raise storage_error(err, f"list {self.where(rel)}") from err

    def fsync_dir(self, rel: str) -> None:
        try:
            os.fsync(self.dir(rel))
        except OSError as err:
            raise storage_error(err, f"sync {self.where(rel)}") from err

    # --- files -------------------------------------------------------------------

    def open(
        self, rel: str, name: str, *, blocking: bool = True
    ) -> tuple[int, os.stat_result]:
        """A read descriptor of the file ``rel/name``, checked, and its status.

        ``FileNotFoundError`` when the file (or its directory) is missing.
        ``blocking=False`` leaves the descriptor non-blocking, which changes
        nothing for a regular file and saves two system calls a file (a
        backup of 100,000 objects).
        """
        # As layout.check_file and self.dir do, in fewer calls: a backup or a
        # verify opens 100,000 files.
        grammar = layout.files_of(rel)
        if (
            grammar is None
            or grammar[0].fullmatch(name) is None
            or not name.startswith(grammar[1])
        ):
            layout.check_file(rel, name)
        dir_fd = self._dirs.get(rel)
        if dir_fd is None:
            dir_fd = self.dir(rel)
        try:  # what nearly every call does; the path for messages only if needed
            fd = os.open(name, READ_FLAGS | NOATIME, dir_fd=dir_fd)
        except OSError:
            fd = open_nofollow(name, READ_FLAGS, self.where(rel, name), dir_fd)
        try:
            info = os.fstat(fd)
            mode = info.st_mode
            if not (
                stat.S_ISREG(mode)
                and info.st_uid == self._uid
                and not mode & 0o077
                and info.st_nlink == 1
            ):
                check_file_status(info, self.where(rel, name))
            if blocking:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd, info

    def read(self, rel: str, name: str) -> bytes:
        """The whole content of the (small) file ``rel/name``."""
        fd, info = self.open(rel, name)
        try:
            limit = read_limit(rel, name)
            if info.st_size > limit:
                raise too_big(info.st_size, limit, self.where(rel, name))
            return read_all(fd, info.st_size, limit, self.where(rel, name))
        finally:
            os.close(fd)

    def create(self, rel: str, name: str) -> int:
        """A write descriptor of a new 0600 file (never an existing one or a link)."""
        layout.check_file(rel, name)
        return os.open(name, _CREATE, FILE_MODE, dir_fd=self.dir(rel, create=True))

    def replace(self, src_rel: str, src: str, dst_rel: str, dst: str) -> None:
        """Rename ``src_rel/src`` onto ``dst_rel/dst`` (atomic within the vault)."""
        layout.check_file(src_rel, src)
        layout.check_file(dst_rel, dst)
        os.replace(
            src,
            dst,
            src_dir_fd=self.dir(src_rel),
            dst_dir_fd=self.dir(dst_rel, create=True),
        )

    def remove(self, rel: str, name: str) -> None:
        """Remove the file ``rel/name``; a missing one is fine."""
        layout.check_file(rel, name)
        try:
            os.unlink(name, dir_fd=self.dir(rel))
        except FileNotFoundError:
            pass
        except IsADirectoryError as err:  # planted under a file's name
            raise UnsafeVaultEntryError(
                f"{self.where(rel, name)} is a directory where a file should be; "
                "remove it yourself"
            ) from err
        except OSError as err:
            raise storage_error(err, f"remove {self.where(rel, name)}") from err

    def fsync_file(self, rel: str, name: str) -> None:
        fd, _ = self.open(rel, name)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def as_root(where: Root | Path) -> Root:
    """A ``Root`` for a vault given by its path (library callers, tests)."""
    return where if isinstance(where, Root) else Root(where)


def read_all(fd: int, size: int, limit: int = OBJECT_LIMIT, where: str = "") -> bytes:
    """Read a regular file to its end: one read for a file of ``size`` bytes;
    ``too_big`` when it grows past ``limit`` while being read."""
    parts = []
    want = size + 1  # one more, to see the end even if it grew
    total = 0
    while True:
        block = os.read(fd, want)
        parts.append(block)
        total += len(block)
        if total > limit:
            raise too_big(total, limit, where or "a file of the vault")
        if len(block) < want:  # a short read of a regular file: its end
            break
        want = MIB
    return b"".join(parts) if len(parts) != 1 else parts[0]


def write_whole(fd: int, data: bytes, rel: str) -> None:
    """Write all of ``data`` to the new file ``fd`` (a file of ``rel``), fix
    its mtime, and close it."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        fix_mtime(fd, rel)
    finally:
        os.close(fd)


def fix_mtime(fd: int, rel: str) -> None:
    """Objects, shards and the rest get one fixed mtime; the manifest (the one
    file rewritten under its own name, which rsync-style copies compare by
    size and mtime) keeps its real one."""
    if rel != "":
        os.utime(fd, ns=(FIXED_MTIME_NS, FIXED_MTIME_NS))
