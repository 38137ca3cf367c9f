"""Where a backup, or a restore, goes when it is a directory: a new (or empty)
directory, 0700, its files 0600 whatever the umask, made durable by
``finish`` or put back as it was by ``abort`` (see ``sinks`` for the
interface every destination shares).

The directory is outside any vault (the user names it; a restore makes a
new vault there): it is reached by path, not through ``store.rootfs``.
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
from confvault.vault.store import fs


class NewDir:
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
        import shutil  # only on failure

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


class DirSink:
    """Writes a backup (or a restore) into a new directory: 0700 dirs, 0600 files."""

    def __init__(self, target: NewDir) -> None:
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
            fd = os.open(self.base + rel, CREATE_FLAGS, fs.FILE_MODE)
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
                self.dir_fd = os.open(self.base + directory, DIR_FLAGS)
                self.dir = directory
            fd = os.open(name, CREATE_FLAGS, fs.FILE_MODE, dir_fd=self.dir_fd)
        except OSError as err:
            raise fs.storage_error(err, f"create {rel}") from err
        fd = self._private(fd, rel)
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
        """A sink for a forked copier: the same directory (its directories made)."""
        part = DirSink(self.target)
        part.mtime, part.dirs = self.mtime, set(self.dirs)
        return part

    def settle(self) -> None:
        """In the forked copier, when it is done."""
        self._close_dir()

    def join(self, part: DirSink, rels: list[str], size: int) -> None:
        """Count the files a forked copier wrote (``size`` bytes in all)."""
        self.written.extend(rels)
        self.bytes_written += size

    def close(self) -> None:
        """Release what ``side`` made: nothing, for a directory."""

    def finish(self) -> None:
        self._close_dir()
        fs.make_durable_paths(self.root, [self.base + rel for rel in self.written])
        fs.fsync_dir(self.root)
        fs.fsync_dir(self.root.parent)

    def abort(self) -> None:
        self._close_dir()
        self.target.abort()
