"""Where a backup, or a restore, goes when it is a directory: a new (or empty)
directory, 0700, its files 0600 whatever the umask, made durable by
``finish`` or put back as it was by ``abort`` (see ``sinks`` for the
interface every destination shares).

The directory is outside any vault (the user names it; a restore makes a
new vault there), and it may be one others can write (a sync folder), while
a stream stalls: so once it exists it is held by a descriptor checked to be
the one made here (or the empty one of ours the user named), and every
directory and file under it is made relative to a descriptor, one name at a
time, never following a link and never taking anything already there
(``O_EXCL``; ``mkdir`` that must create). Something that appears meanwhile
is refused, and ``abort`` removes what was made here and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from confvault.errors import UnsafeInputError, VaultExistsError
from confvault.vault.backup import tarformat
from confvault.vault.backup.sinks import CHUNK, CREATE_FLAGS, DIR_FLAGS, pump, read_fd
from confvault.vault.store import fs, rootfs


def _appeared(where: str) -> UnsafeInputError:
    return UnsafeInputError(
        f"{where} appeared in the target while it was being written (another "
        "process writes there); nothing was written through it"
    )


def make_dir(parent_fd: int, name: str, where: str) -> tuple[int, tuple[int, int]]:
    """Make the directory ``name`` in ``parent_fd`` (0700) and open it: (its
    descriptor, its device and inode), checked to be the directory just made."""
    try:
        os.mkdir(name, fs.DIR_MODE, dir_fd=parent_fd)
    except FileExistsError as err:
        raise _appeared(where) from err
    except OSError as err:
        raise fs.storage_error(err, f"create {where}") from err
    try:
        made = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as err:  # a link or a file swapped in: ELOOP, ENOTDIR
        raise _appeared(where) from err
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) != (made.st_dev, made.st_ino) or (
        info.st_uid != os.getuid()
    ):
        os.close(fd)
        raise _appeared(where)
    try:
        os.fchmod(fd, fs.DIR_MODE)  # exactly 0700, whatever the umask
    except OSError as err:
        os.close(fd)
        raise fs.storage_error(err, f"create {where}") from err
    return fd, (made.st_dev, made.st_ino)


def _empty_of_ours(fd: int, path: Path) -> int:
    """The mode of the directory ``fd``, refused unless it is ours and empty."""
    info = os.fstat(fd)
    if info.st_uid != os.getuid():
        raise UnsafeInputError(f"{path} belongs to another user")
    if os.listdir(fd):
        raise VaultExistsError(f"{path} is not empty; give a new or empty directory")
    return stat.S_IMODE(info.st_mode)


class NewDir:
    """The target: a directory that was new (made here, with any missing
    parents) or empty and ours, held by ``fd``; ``abort`` puts it back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(os.path.abspath(path))  # noqa: PTH100 - no link resolved
        self.old_mode: int | None = None
        # the directories made here, outermost first: (parent's fd, name, identity)
        self.made: list[tuple[int, str, tuple[int, int]]] = []
        self.parent_fd: int | None = None  # the parent of the target
        if self.path.is_symlink():
            raise UnsafeInputError(f"{path} is a symlink; give the real directory")
        if self.path.exists():
            self.fd = self._open_empty(self.path)
        else:
            self.fd = self._make(self.path)

    def _open_empty(self, path: Path) -> int:
        if not path.is_dir():
            raise VaultExistsError(f"{path} exists and is not a directory")
        try:
            fd = rootfs.open_nofollow(os.fspath(path), DIR_FLAGS, str(path), None)
        except OSError as err:
            raise fs.storage_error(err, f"use {path}") from err
        try:
            self.old_mode = _empty_of_ours(fd, path)
            os.fchmod(fd, fs.DIR_MODE)
        except OSError as err:
            os.close(fd)
            raise fs.storage_error(err, f"use {path}") from err
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make(self, path: Path) -> int:
        """Make ``path`` and the parents it lacks, each relative to the one above."""
        missing: list[str] = []
        top = path
        while not (top.exists() or top.is_symlink()) and top.parent != top:
            missing.append(top.name)
            top = top.parent
        try:  # the deepest existing ancestor: the user named it, links and all
            fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise fs.storage_error(err, f"create {path}") from err
        self.parent_fd = fd
        try:
            for name in reversed(missing):
                child, ident = make_dir(fd, name, str(top / name))
                self.made.append((fd, name, ident))
                self.parent_fd, fd, top = fd, child, top / name
        except BaseException:
            self._close(fd)
            self.abort()
            raise
        return fd

    def _close(self, fd: int) -> None:
        held = {p for p, _, _ in self.made} | {self.parent_fd}
        if fd not in held:
            with contextlib.suppress(OSError):
                os.close(fd)

    def fsync_parent(self) -> None:
        """Make the target's own name durable in its parent."""
        if self.parent_fd is not None:
            os.fsync(self.parent_fd)
        else:
            fs.fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Remove the directories made here (emptied first by the sink), innermost
        first, each only if it is still the one made and empty; or give the
        empty directory of ours back its mode."""
        if self.old_mode is not None:
            with contextlib.suppress(OSError):
                os.fchmod(self.fd, self.old_mode)
        for parent_fd, name, ident in reversed(self.made):
            with contextlib.suppress(OSError):
                info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
                if (info.st_dev, info.st_ino) == ident:
                    os.rmdir(name, dir_fd=parent_fd)
        self.release()

    def release(self) -> None:
        """Close the descriptors held (the target's, its parent's, those above)."""
        fds = {p for p, _, _ in self.made} | {self.parent_fd, getattr(self, "fd", None)}
        for fd in fds:
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.made, self.parent_fd, self.fd = [], None, -1  # never closed twice


class DirSink:
    """Writes a backup (or a restore) into a new directory: 0700 dirs, 0600 files."""

    def __init__(self, target: NewDir) -> None:
        self.target = target
        self.root = target.path
        self.label = str(target.path)
        self.mtime = 0
        self.written: list[str] = []
        self.bytes_written = 0
        # every directory made here, by its path in the target: its descriptor
        self.fds: dict[str, int] = {"": target.fd}
        self.idents: dict[str, tuple[int, int]] = {}
        self.owner = True  # False in a forked copier's sink: it closes nothing

    @property
    def files_written(self) -> int:
        return len(self.written)

    def add_dir(self, rel: str) -> None:
        if rel in self.fds:
            return
        parent, _, name = rel.rpartition("/")
        if parent not in self.fds:
            self.add_dir(parent)
        fd, ident = make_dir(self.fds[parent], name, self._where(rel))
        self.fds[rel], self.idents[rel] = fd, ident

    def _where(self, rel: str) -> str:
        return f"{self.label}/{rel}"

    def _create(self, rel: str) -> int:
        directory, _, name = rel.rpartition("/")
        dir_fd = self.fds.get(directory)
        if dir_fd is None:
            raise UnsafeInputError(f"{self._where(directory)} was not made here")
        try:
            fd = os.open(name, CREATE_FLAGS, fs.FILE_MODE, dir_fd=dir_fd)
        except FileExistsError as err:
            raise _appeared(self._where(rel)) from err
        except OSError as err:
            raise fs.storage_error(err, f"create {rel}") from err
        try:
            os.fchmod(fd, fs.FILE_MODE)  # 0600 whatever the umask
        except OSError as err:
            self._discard(fd, rel)
            raise fs.storage_error(err, f"create {rel}") from err
        return fd

    def _discard(self, fd: int, rel: str) -> None:
        os.close(fd)
        directory, _, name = rel.rpartition("/")
        with contextlib.suppress(OSError, KeyError):
            os.unlink(name, dir_fd=self.fds[directory])

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
        parent = rel.rpartition("/")[0]
        if parent:  # a tar need not list the directories
            self.add_dir(parent)
        return self._fill(self._create(rel), rel, read, size)

    def _fill(
        self, fd: int, rel: str, read: tarformat.Read, size: int | None
    ) -> tuple[str, int]:
        """Write what ``read`` gives to the new file ``fd``; removed if that fails."""
        try:
            digest, count = pump(read, lambda b: self._write(fd, b, rel), size)
        except BaseException:
            self._discard(fd, rel)
            raise
        os.close(fd)
        self.written.append(rel)
        self.bytes_written += count
        return digest, count

    def copy_fd(self, rel: str, source: int, size: int) -> tuple[str, int]:
        """Copy ``size`` bytes of a vault file (its directory already made)."""
        fd = self._create(rel)
        if size > CHUNK:
            return self._fill(fd, rel, lambda n: read_fd(source, n, rel), size)
        try:  # nearly every object: one read, one write
            block = read_fd(source, size, rel)
            while 0 < len(block) < size and (
                more := read_fd(source, size - len(block), rel)
            ):
                block += more
            self._write(fd, block, rel)
        except BaseException:
            self._discard(fd, rel)
            raise
        os.close(fd)
        self.written.append(rel)
        self.bytes_written += len(block)
        return hashlib.sha256(block).hexdigest(), len(block)

    def side(self) -> DirSink:
        """A sink for a forked copier: the same directories (all made already)."""
        part = DirSink(self.target)
        part.mtime, part.fds, part.owner = self.mtime, dict(self.fds), False
        return part

    def settle(self) -> None:
        """In the forked copier, when it is done: nothing to flush."""

    def join(self, part: DirSink, rels: list[str], size: int) -> None:
        """Count the files a forked copier wrote (``size`` bytes in all)."""
        self.written.extend(rels)
        self.bytes_written += size

    def close(self) -> None:
        """Release what ``side`` made: nothing, for a directory."""

    def finish(self) -> None:
        """Make every file and directory durable, then let the descriptors go."""
        try:
            self._durable()
            self.target.fsync_parent()
        except OSError as err:
            raise fs.storage_error(err, f"sync {self.label}") from err
        self.release()

    def _durable(self) -> None:
        if len(self.written) > fs.BATCH_FSYNC_LIMIT and fs.syncfs(self.target.fd):
            return
        for rel in self.written:
            directory, _, name = rel.rpartition("/")
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.fds[directory])
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for fd in self.fds.values():
            os.fsync(fd)

    def release(self) -> None:
        """Let the descriptors go (``finish`` and ``abort`` do it themselves)."""
        if self.owner:
            self._close_dirs()
            self.target.release()

    def _close_dirs(self) -> None:
        """Close the descriptors of the directories made here (not the target's)."""
        for rel, fd in self.fds.items():
            if rel:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fds = {}

    def abort(self) -> None:
        """Remove every file and directory made here, and nothing else: each by
        its name in a directory made here (a directory with all it holds, not
        following links: a forked copier's files included), or the target."""
        if not self.owner:
            return
        import shutil  # only on failure

        top = self.target.fd
        for rel in self.written:
            directory, _, name = rel.rpartition("/")
            if directory == "":
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=top)
        for rel in [r for r in self.fds if r and "/" not in r]:
            with contextlib.suppress(OSError):
                info = os.stat(rel, dir_fd=top, follow_symlinks=False)
                if (info.st_dev, info.st_ino) == self.idents.get(rel):
                    shutil.rmtree(rel, dir_fd=top)
        self._close_dirs()
        self.target.abort()
