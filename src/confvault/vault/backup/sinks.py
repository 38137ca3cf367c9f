"""Where a backup goes: a tar file or a tar stream (``dirsink``: a directory).

Every destination takes the vault's files one by one (``add_dir``, then
``copy_fd`` from an open vault file or ``add_file`` from a reader), returns
each file's SHA-256 as it passes, and is made durable by ``finish`` or put
back as it was by ``abort``. Files are 0600 and directories 0700 whatever
the umask. ``side``/``settle``/``join`` let a forked copier fill part of the
same backup (see ``snapshot._copy_snapshot``).

The destination is outside the vault, named by the user: it is reached by
path, not through ``store.rootfs``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol, Self

from confvault.errors import IntegrityError, UnsafeInputError, VaultExistsError
from confvault.vault.backup import tarformat
from confvault.vault.store import fs

STREAM_LABEL = "-"  # the label of a backup written to (or read from) a stream
CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Sink(Protocol):
    """What every destination of a backup does (``TarSink``, ``dirsink.DirSink``)."""

    label: str
    mtime: int

    def add_dir(self, rel: str) -> None: ...

    def copy_fd(self, rel: str, source: int, size: int) -> tuple[str, int]: ...

    def side(self) -> Self | None: ...

    def settle(self) -> None: ...

    def join(self, part: Self, rels: list[str], size: int) -> None: ...

    def close(self) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


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
            fd = os.open(self.temp, CREATE_FLAGS, fs.FILE_MODE)
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


def open_tar_source(path: Path) -> int:
    """A read descriptor of the tar the user named: a file, or a pipe that a
    process hands over (``<(restic dump ...)``, ``/dev/stdin``). Opened
    non-blocking, so a named pipe (FIFO) planted in its place cannot hang the
    command: that one is refused (give ``-`` and pipe the tar in)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise fs.storage_error(err, f"read {path}") from err
    info = os.fstat(fd)
    if stat.S_ISFIFO(info.st_mode) and info.st_dev != _pipe_device():
        os.close(fd)
        raise UnsafeInputError(
            f"{path} is a named pipe (FIFO), not a tar; to read a stream, "
            "give - and pipe the tar in"
        )
    os.set_blocking(fd, True)
    return fd


def _pipe_device() -> int:
    """The device of the kernel's anonymous pipes (a named one is on its file
    system's)."""
    read_end, write_end = os.pipe()
    try:
        return os.fstat(read_end).st_dev
    finally:
        os.close(read_end)
        os.close(write_end)


def exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
