"""The vault directory as it is: what the checkers and the backup copier read.

``verify`` and ``backup verify`` report what is wrong instead of refusing
it, and a backup made by a tool that loosens modes must still be checked,
so a ``Survey`` takes any mode, owner, link count and file type that
``rootfs.Root`` would refuse. It reads by the same rules otherwise: from a
descriptor of the vault directory (a ``Root`` opened with ``check=False``),
one component at a time, never following a symlink, never blocking on a
FIFO, never changing an access time, never writing. Paths are checked
against ``layout``; only ``walk`` goes beyond the format's directories, by
the names their listings give, so that a checker sees everything there is.

    survey = of_path(path)               # Survey(Root(path, check=False))
    survey.entries("objects")            # [(name, mode), ...] as listed
    survey.hash_file("objects/ab", name)  # hex SHA-256, or None: not a file
    for rel, entries in survey.walk(): ...  # everything, top-down
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from confvault.errors import UnsafeVaultEntryError
from confvault.vault.store import layout
from confvault.vault.store.rootfs import (
    DIR_FLAGS,
    NOATIME,
    READ_FLAGS,
    Root,
    close_all,
)

_BLOCK = 1 << 20
_HEAD = 4096  # what on_head is given: the first stanzas of an age header


def of_path(path: Path) -> Survey | None:
    """A ``Survey`` of the directory ``path`` whatever its mode and owner;
    None when there is no directory there (nothing, or a file). A symlink
    in its place is ``UnsafeVaultEntryError``; ``StorageError`` when it
    cannot be opened."""
    try:
        return Survey(Root(path, check=False))
    except FileNotFoundError:
        return None
    except UnsafeVaultEntryError:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            mode = stat.S_IFLNK  # gone meanwhile: say what was seen
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
            raise
        return None


class Survey:
    """Read-only access to a vault directory as it is (see the module)."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self._dirs: dict[str, int] = {}  # format directories, opened as they are
        self._absent: set[str] = set()  # ...and those that could not be
        self._finalizer = weakref.finalize(self, close_all, self._dirs)

    def close(self) -> None:
        self._finalizer()

    def dir(self, rel: str) -> int | None:
        """A descriptor of the format directory ``rel`` whatever its mode and
        owner (cached); None when it is missing, unreadable, a symlink or not
        a directory, or a directory on its way is."""
        fd = self._dirs.get(rel)
        if fd is not None or rel in self._absent:
            return fd
        fd = self._open_dir(layout.check_dir(rel))
        if fd is None:
            self._absent.add(rel)
        else:
            self._dirs[rel] = fd
        return fd

    def _open_dir(self, rel: str) -> int | None:
        """A new descriptor of the format directory ``rel`` (``""``: the root);
        None when it cannot be opened without following a link."""
        try:
            return self._opened(rel)
        except OSError:
            return None

    def _opened(self, rel: str) -> int:
        """``_open_dir``, raising the ``OSError`` the system gives."""
        fd = self.root.fd
        for part in rel.split("/") if rel else ["."]:
            parent = fd
            try:
                fd = os.open(part, DIR_FLAGS, dir_fd=parent)
            finally:
                if parent != self.root.fd:
                    os.close(parent)
        return fd

    def entries(self, rel: str) -> list[tuple[str, int]]:
        """``(name, mode)`` of each entry of the format directory ``rel``, in
        the order the directory lists them, a symlink's mode being its own;
        an entry removed meanwhile is left out. ``OSError`` when ``rel``
        cannot be listed (``ENOTDIR``: it is a symlink or not a directory)."""
        fd = self._opened(layout.check_dir(rel))
        try:
            return _listing(fd)
        finally:
            os.close(fd)

    def walk(
        self, statuses: Statuses | None = None
    ) -> Iterator[tuple[str, list[tuple[str, int]]]]:
        """``(rel, entries)`` of every directory under the root, in or out of
        the format, top-down as ``os.walk`` goes (a directory, then each of
        its subdirectories in listing order and everything under it), with
        ``entries`` as ``entries`` gives them. Symlinks are never followed;
        an unreadable directory is passed over. Each directory is opened from
        its parent's descriptor, so depth costs nothing but one descriptor.

        ``statuses(rel, [(name, status), ...])`` is told each directory's
        entries with their whole status (a symlink's its own: owner, link
        count) before it is yielded: the one ``lstat`` of each entry serves
        both, and nothing is kept."""

        def listing(fd: int, rel: str) -> list[tuple[str, int]]:
            if statuses is None:
                return _listing(fd)
            infos: list[tuple[str, os.stat_result]] = []
            found = _listing(fd, infos)
            statuses(rel, infos)
            return found

        try:
            fd = self._opened("")
        except OSError:
            return
        try:
            found = listing(fd, "")
        except OSError:
            os.close(fd)
            return
        yield "", found
        stack = [("", fd, iter(_subdirs(found)))]
        try:
            while stack:
                rel, fd, pending = stack[-1]
                name = next(pending, None)
                if name is None:
                    os.close(fd)
                    stack.pop()
                    continue
                try:
                    child = os.open(name, DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                path = f"{rel}/{name}" if rel else name
                try:
                    found = listing(child, path)
                except OSError:
                    os.close(child)
                    continue
                stack.append((path, child, iter(_subdirs(found))))
                yield path, found
        finally:
            for _, fd, _ in stack:
                os.close(fd)

    def open(self, rel: str, name: str) -> tuple[int, os.stat_result]:
        """A read descriptor of the format file ``rel/name`` whatever its type,
        mode, owner or link count, and its status, for the caller to judge.
        ``OSError`` as the system gives it: ``FileNotFoundError`` when it is
        missing, ``ELOOP`` for a symlink, ``ENOTDIR`` when its directory
        cannot be reached."""
        layout.check_file(rel, name)
        dir_fd = self.dir(rel)
        if dir_fd is None:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", rel)
        fd = _open_read(name, dir_fd)
        try:
            return fd, os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise

    def hash_file(self, rel: str, name: str) -> str | None:
        """The SHA-256 (hex) of the format file ``rel/name`` whatever its mode,
        owner or link count; None when it is missing, a symlink, not a regular
        file, or in a directory that cannot be reached without a link."""
        return next(self.hash_files(rel, [name]))

    def hash_files(
        self,
        rel: str,
        names: Iterable[str],
        on_head: Callable[[bytes], None] | None = None,
    ) -> Iterator[str | None]:
        """``hash_file`` of each of ``names`` in the directory ``rel``, in
        order: a verify hashes 100,000 objects, so one loop does the work.
        ``on_head`` is given the first bytes of each regular file read (at
        least 4,096; a small file's whole content)."""
        grammar = layout.files_of(rel)
        dir_fd = None if grammar is None else self.dir(rel)
        pattern, prefix = grammar or (layout.HASH, "")
        for name in names:
            if (
                dir_fd is None
                or pattern.fullmatch(name) is None
                or not name.startswith(prefix)
            ):
                yield None
                continue
            try:
                fd = os.open(name, READ_FLAGS | NOATIME, dir_fd=dir_fd)
            except OSError:
                try:
                    fd = _open_read(name, dir_fd)
                except OSError:
                    yield None
                    continue
            try:
                info = os.fstat(fd)
                size = info.st_size
                if not stat.S_ISREG(info.st_mode):
                    digest = None
                elif size < _BLOCK:  # nearly every object: one read
                    data = os.read(fd, size + 1)
                    if on_head is not None:
                        on_head(data)  # whole: no copy of its head
                    sha = hashlib.sha256(data)
                    if len(data) > size:  # it grew meanwhile
                        while block := os.read(fd, _BLOCK):
                            sha.update(block)
                    digest = sha.hexdigest()
                else:  # an attachment may be larger than memory
                    sha = hashlib.sha256()
                    first = True
                    while block := os.read(fd, _BLOCK):
                        if on_head is not None and first:
                            on_head(block[:_HEAD])
                        first = False
                        sha.update(block)
                    digest = sha.hexdigest()
            finally:
                os.close(fd)
            yield digest

    def missing(self, rel: str, name: str) -> bool:
        """True when nothing is at ``rel/name``: neither it nor a directory on
        its way exists. A symlink, or anything but a directory, where a
        directory should be is not missing: it is unsafe."""
        layout.check_file(rel, name)
        parts = [*rel.split("/"), name] if rel else [name]
        fd = self.root.fd
        try:
            for depth, part in enumerate(parts, start=1):
                try:
                    mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    return True
                if depth == len(parts) or not stat.S_ISDIR(mode):
                    return False
                parent = fd
                fd = os.open(part, DIR_FLAGS, dir_fd=parent)
                if parent != self.root.fd:
                    os.close(parent)
        except OSError:
            return False
        finally:
            if fd != self.root.fd:
                os.close(fd)
        return False


Statuses = Callable[[str, list[tuple[str, os.stat_result]]], None]


def _listing(
    fd: int, infos: list[tuple[str, os.stat_result]] | None = None
) -> list[tuple[str, int]]:
    """``(name, mode)`` of each entry of the open directory ``fd``; with
    ``infos``, each entry's whole status is added to it too."""
    found: list[tuple[str, int]] = []
    with os.scandir(fd) as listing:
        for entry in listing:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append((entry.name, info.st_mode))
            if infos is not None:
                infos.append((entry.name, info))
    return found


def _subdirs(found: list[tuple[str, int]]) -> list[str]:
    return [name for name, mode in found if stat.S_ISDIR(mode)]


def _open_read(name: str, dir_fd: int) -> int:
    """Open ``name`` for reading: no symlink, no blocking, no access time."""
    try:
        return os.open(name, READ_FLAGS | NOATIME, dir_fd=dir_fd)
    except PermissionError:
        if not NOATIME:
            raise
        return os.open(name, READ_FLAGS, dir_fd=dir_fd)  # O_NOATIME: our files only
