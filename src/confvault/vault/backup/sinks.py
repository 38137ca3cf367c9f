"""Where a backup (or a restore) goes: a new directory, a tar file or a tar stream.

Every destination takes the vault's files one by one (``add_dir``, then
``copy_fd`` from an open vault file or ``add_file`` from a reader), returns
each file's SHA-256 as it passes, and is made durable by ``finish`` or put
back as it was by ``abort``. Files are 0600 and directories 0700 whatever
the umask. ``side``/``settle``/``join`` let a forked copier fill part of the
same backup (see ``snapshot._copy_snapshot``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from confvault.errors import IntegrityError, UnsafeInputError, VaultExistsError
from confvault.vault.backup import tarformat
from confvault.vault.store import fs

STREAM_LABEL = "-"  # the label of a backup written to (or read from) a stream
CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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
            fd = os.open(name, _CREATE_FLAGS, fs.FILE_MODE, dir_fd=self.dir_fd)
        except OSError as err:
            raise fs.storage_error(err, f"create {rel}") from err
        return self._fill(
            self._private(fd, rel), rel, lambda n: read_fd(source, n, rel), size
        )

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
        fs.make_durable_paths(self.root, [self.root / rel for rel in self.written])
        fs.fsync_dir(self.root)
        fs.fsync_dir(self.root.parent)

    def abort(self) -> None:
        self._close_dir()
        self.target.abort()


class TarSink:
    """Streams a tar: sorted members, 0600/0700, owner 0, names relative to the vault.

    The bytes are those ``tarfile`` writes in PAX_FORMAT for the same members
    (plain ustar headers: the names are short ASCII), built here directly:
    tarfile's per-member work cost more than the copy itself.
    """

    def __init__(self, out: BinaryIO, label: str, side_dir: str | None = None) -> None:
        self.out = out
        self.label = label
        self.mtime = 0
        self.buf = bytearray()
        self.offset = 0  # bytes handed to ``out``
        self.side_dir = side_dir  # None: $TMPDIR

    def side(self) -> TarSink | None:
        """A sink for a forked copier's members: an unnamed 0600 file in
        ``side_dir`` (ciphertext, as the backup is; gone when closed). None
        where the file system has no unnamed files: then nothing is split."""
        if self.side_dir is None:
            import tempfile  # only a stream needs it

            self.side_dir = tempfile.gettempdir()
        try:
            fd = os.open(
                self.side_dir, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, fs.FILE_MODE
            )
        except (AttributeError, OSError):
            return None
        part = TarSink(os.fdopen(fd, "wb"), self.label, self.side_dir)
        part.mtime = self.mtime
        return part

    def settle(self) -> None:
        """In the forked copier, when it is done: everything into the file."""
        self._flush()
        try:
            self.out.flush()
        except OSError as err:
            raise fs.storage_error(err, "write the backup") from err

    def join(self, part: TarSink, rels: list[str], size: int) -> None:
        """Append the members a forked copier wrote to ``part``."""
        del rels, size  # the members say it all
        self._flush()
        source = part.out.fileno()
        length = os.fstat(source).st_size
        direct = 0  # bytes the kernel copies straight into ``out``
        with contextlib.suppress(OSError, ValueError):  # a pipe, O_APPEND, no fd...
            self.out.flush()
            target = self.out.fileno()
            while direct < length:
                copied = os.copy_file_range(source, target, length - direct, direct)
                if not copied:
                    break
                direct += copied
        self.offset += direct
        done = direct
        while done < length:  # ...then through this process
            try:
                block = os.pread(source, min(CHUNK, length - done), done)
            except OSError as err:
                raise fs.storage_error(err, "write the backup") from err
            if not block:
                raise fs.storage_error(
                    OSError(errno.EIO, "a temporary file was cut short"),
                    "write the backup",
                )
            self._put(block)
            done += len(block)
        self._flush()

    def close(self) -> None:
        """Release the file ``side`` made."""
        with contextlib.suppress(OSError):
            self.out.close()

    def _put(self, data: bytes | memoryview) -> None:
        self.buf += data
        if len(self.buf) >= CHUNK:
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
            tarformat.header(rel + "/", tarformat.DIRTYPE, fs.DIR_MODE, 0, self.mtime)
        )

    def copy_fd(self, rel: str, source: int, size: int) -> tuple[str, int]:
        """Append a member of ``size`` bytes read from ``source``."""
        header = tarformat.header(
            rel, tarformat.REGTYPE, fs.FILE_MODE, size, self.mtime
        )
        if size <= CHUNK:  # nearly every object: one read, one append
            try:
                block = os.read(source, size)
            except OSError as err:
                raise fs.storage_error(err, f"read {rel}") from err
            while len(block) < size:
                more = read_fd(source, size - len(block), rel)
                if not more:
                    raise IntegrityError(f"{rel} changed size while being copied")
                block += more
            self.buf += header
            self.buf += block
            self.buf += tarformat.PADDING[size % tarformat.BLOCK]
            if len(self.buf) >= CHUNK:
                self._flush()
            return hashlib.sha256(block).hexdigest(), size
        self._put(header)
        sha = hashlib.sha256()
        count = 0
        while count < size:
            block = read_fd(source, min(CHUNK, size - count), rel)
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
        if end % tarformat.RECORDSIZE:
            self._put(bytes(tarformat.RECORDSIZE - end % tarformat.RECORDSIZE))
        self._flush()
        try:
            self.out.flush()
        except OSError as err:
            raise fs.storage_error(err, "write the backup") from err

    def abort(self) -> None:
        """Leave the stream without its end-of-archive: a reader sees it truncated."""
        self.buf = bytearray()


class TarFileSink(TarSink):
    """A tar file written under a temporary name beside it, renamed when complete."""

    def __init__(self, path: Path) -> None:
        if exists(path):
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
        super().__init__(self.file, str(path), os.fspath(path.parent))

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


def pump(
    read: tarformat.Read, write: Callable[[bytes | memoryview], None], size: int | None
) -> tuple[str, int]:
    sha = hashlib.sha256()
    count = 0
    while size is None or count < size:
        block = read(CHUNK if size is None else min(CHUNK, size - count))
        if not block:
            break
        sha.update(block)
        write(block)
        count += len(block)
    return sha.hexdigest(), count


def read_fd(fd: int, size: int, rel: str) -> bytes:
    try:
        return os.read(fd, size)
    except OSError as err:
        raise fs.storage_error(err, f"read {rel}") from err


def exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
