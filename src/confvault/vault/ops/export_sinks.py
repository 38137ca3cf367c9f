"""Where an export goes: a new private directory or a tar stream (``TarExportSink``)."""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import stat
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

from confvault import age
from confvault.errors import (
    StorageError,
    UnsafeInputError,
    VaultExistsError,
)
from confvault.vault.store import fs

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# One component of an export path as safe_name and the exporter make them:
# portable characters, never a leading dot (so never "." or "..").
_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")


def safe_name(text: str, limit: int = 80) -> str:
    """A file name made only of portable characters."""
    return _SAFE.sub("_", text).strip("._")[:limit] or "file"


Writer = Callable[[BinaryIO], object]


class ExportSink(Protocol):
    """Where an export goes: ``begin`` once the audit entry is committed, then
    the files, then ``finish`` on success or ``abort`` on any failure."""

    def begin(self) -> None: ...
    def add(self, path: str, data: bytes) -> None: ...
    def add_stream(self, path: str, size: int, write: Writer) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...


def _rename_noreplace(dir_fd: int, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` within ``dir_fd``, never replacing ``dst``.

    renameat2(RENAME_NOREPLACE) where the kernel and file system have it;
    elsewhere a check, then rename(2), which at worst replaces an empty
    directory created in between, never one holding anything.
    """
    import ctypes

    call = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if call is not None:
        done = call(
            dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), _RENAME_NOREPLACE
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), dst)
    try:
        os.stat(dst, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)


_RENAME_NOREPLACE = 1


TEMP_MARK = ".confvault-export-"


class DirectorySink:
    """Plain files in a new private directory (0700 directories, 0600 files).

    Nothing is written until ``begin``. The files go into a hidden 0700
    directory beside the target (``.NAME.confvault-export-RANDOM``, on the same
    file system), each synced; ``finish`` syncs the directories and renames it
    to the target, which must not exist. ``abort`` removes it and everything
    in it, so a failed export leaves no plaintext. Every path is checked to be
    one or two portable components: nothing can land outside the target.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._parent_fd: int | None = None
        self._fd: int | None = None  # the temporary directory, while writing
        self._dirs: dict[str, int] = {}
        self._temp = ""
        self._ident = (0, 0)
        self._placed = False
        self._check_target()

    def _check_target(self) -> None:
        if self.root.name in ("", ".", ".."):
            raise UnsafeInputError(f"{self.root} does not name a new directory")
        if self.root.is_symlink() or self.root.exists():
            raise VaultExistsError(f"{self.root} exists; choose a new directory")
        if not self.root.parent.is_dir():
            raise StorageError(
                f"{self.root.parent} is not a directory; create it first"
            )

    def begin(self) -> None:
        """Create the private temporary directory beside the target."""
        self._check_target()
        name = f".{safe_name(self.root.name, 40)}{TEMP_MARK}{os.urandom(8).hex()}"
        try:
            self._parent_fd = os.open(
                self.root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
            )
            os.mkdir(name, fs.DIR_MODE, dir_fd=self._parent_fd)
            self._temp = name
            info = os.stat(name, dir_fd=self._parent_fd, follow_symlinks=False)
            self._ident = (info.st_dev, info.st_ino)
            self._fd = self._open_dir(name, self._parent_fd)
        except OSError as err:
            where = self.root.parent
            raise fs.storage_error(err, f"create a directory in {where}") from err

    def _open_dir(self, name: str, dir_fd: int) -> int:
        fd = os.open(
            name,
            os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
            dir_fd=dir_fd,
        )
        info = os.fstat(fd)
        mine = name != self._temp or (info.st_dev, info.st_ino) == self._ident
        if not mine or info.st_uid != os.getuid() or info.st_mode & 0o077:
            os.close(fd)
            raise UnsafeInputError(f"{name} in {self.root.parent} is not private")
        os.fchmod(fd, fs.DIR_MODE)  # exactly 0700, whatever the umask
        return fd

    def _dir_for(self, parts: list[str]) -> int:
        if self._fd is None:
            raise StorageError("the export directory was not begun")
        if len(parts) == 1:
            return self._fd
        if parts[0] not in self._dirs:
            os.mkdir(parts[0], fs.DIR_MODE, dir_fd=self._fd)
            self._dirs[parts[0]] = self._open_dir(parts[0], self._fd)
        return self._dirs[parts[0]]

    def _write(self, path: str, fill: Callable[[BinaryIO], object]) -> None:
        parts = path.split("/")
        if len(parts) > 2 or not all(_COMPONENT.fullmatch(p) for p in parts):
            raise UnsafeInputError("an export path is not a plain relative name")
        try:
            fd = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                fs.FILE_MODE,
                dir_fd=self._dir_for(parts),
            )
            with os.fdopen(fd, "wb") as f:
                os.fchmod(fd, fs.FILE_MODE)
                fill(f)
                f.flush()
                os.fsync(fd)
        except OSError as err:
            raise fs.storage_error(err, f"write {path} of the export") from err

    def add(self, path: str, data: bytes) -> None:
        self._write(path, lambda f: f.write(data))

    def add_stream(self, path: str, size: int, write: Writer) -> None:
        self._write(path, write)

    def finish(self) -> None:
        """Sync every directory, then rename the whole export into place."""
        if self._fd is None or self._parent_fd is None:
            raise StorageError("the export directory was not begun")
        try:
            for fd in [*self._dirs.values(), self._fd]:
                os.fsync(fd)
            _rename_noreplace(self._parent_fd, self._temp, self.root.name)
            self._placed = True
            os.fsync(self._parent_fd)
        except FileExistsError as err:
            raise VaultExistsError(
                f"{self.root} appeared during the export; nothing was written there"
            ) from err
        except OSError as err:
            raise fs.storage_error(err, f"move the export into {self.root}") from err
        self._close()

    def abort(self) -> None:
        """Remove the export directory, wherever it is now, and all it holds."""
        parent = self._parent_fd
        self._close(keep_parent=True)
        if parent is None:
            return
        name = self.root.name if self._placed else self._temp
        try:
            if name:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if (
                    stat.S_ISDIR(info.st_mode)
                    and (info.st_dev, info.st_ino) == self._ident
                ):
                    shutil.rmtree(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise fs.storage_error(
                err, f"remove the partial export {self.root.parent / name}"
            ) from err
        finally:
            os.close(parent)
            self._parent_fd = None

    def _close(self, *, keep_parent: bool = False) -> None:
        for fd in [*self._dirs.values(), *([self._fd] if self._fd is not None else [])]:
            os.close(fd)
        self._dirs, self._fd = {}, None
        if not keep_parent and self._parent_fd is not None:
            os.close(self._parent_fd)
            self._parent_fd = None


class TarExportSink:
    """A tar stream (inside an age file, for one recipient)."""

    def __init__(self, stream: age.Writer) -> None:
        # A stream ("w|") tar only ever writes to its file object.
        fileobj = cast("IO[bytes]", stream)
        self.tar = tarfile.open(fileobj=fileobj, mode="w|")  # noqa: SIM115

    def _info(self, path: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(f"record/{path}")
        info.size, info.mode, info.uname, info.gname = size, 0o600, "", ""
        return info

    def add(self, path: str, data: bytes) -> None:
        self.tar.addfile(self._info(path, len(data)), io.BytesIO(data))

    def add_stream(self, path: str, size: int, write: Writer) -> None:
        """Stream ``write``'s output into the tar through a pipe (bounded memory)."""
        read_fd, write_fd = os.pipe()
        errors: list[BaseException] = []

        def produce() -> None:
            with os.fdopen(write_fd, "wb") as sink:
                try:
                    write(sink)
                except BaseException as err:  # noqa: BLE001 - re-raised below
                    errors.append(err)

        worker = threading.Thread(target=produce, daemon=True)
        worker.start()
        try:
            with os.fdopen(read_fd, "rb") as source:
                self.tar.addfile(self._info(path, size), source)
        except (OSError, tarfile.TarError) as err:
            worker.join()
            raise (errors[0] if errors else err) from err
        worker.join()
        if errors:
            raise errors[0]

    def begin(self) -> None:
        """Nothing to prepare: the caller made the stream."""

    def finish(self) -> None:
        self.tar.close()

    def abort(self) -> None:
        """Nothing to undo here: the caller discards the stream."""

    close = finish
