"""This machine's read spool: the audit entries of reads made while a vault
could not be written (read-only media, no write permission: ``vault_writable``
tells), kept until the vault is next opened writable here (``session.spool``
seals, authenticates and folds them).

One directory per vault under the state directory
(``paths.default_state_dir()``: ``spool/<vault id>/``), 0700, holding 0600
files written whole (temp + fsync + rename + directory fsync). Like
``store.seen`` it lies outside the vault, so it is reached by path; a
symlink, or a file or directory of another user or open to others, is
refused rather than followed.

Names: ``o-<24 hex>.age`` (an owner's read), ``g-<24 hex>.age`` (a grantee's:
an audit-inbox entry as ``<24 hex>.age``), ``o-<24 hex>.<seq>.folding`` (an
owner's entry added to the chain as entry ``seq`` by a commit that may not
have happened), ``<o|g>-<24 hex>.refused`` (failed authentication: kept, never
folded).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

from confvault.errors import UnsafeInputError
from confvault.vault.store.layout import TOP_DIRS
from confvault.vault.store.rootfs import DIR_MODE, FILE_MODE, storage_error

SPOOL_DIR = "spool"
OWNER, GRANTEE = "o", "g"
ENTRY = re.compile(r"([og])-([0-9a-f]{24})\.age")
MARKED = re.compile(r"o-([0-9a-f]{24})\.([0-9]{1,12})\.folding")
REFUSED = re.compile(r"[og]-[0-9a-f]{24}\.refused")
_VAULT_ID = re.compile(r"[0-9a-f]{1,64}")


def vault_writable(root: Path) -> bool:
    """False when this process cannot write the vault at ``root``: its file
    system is mounted read-only, or this user may not write the vault
    directory or one of the directories a commit writes in. Asks, never tries:
    nothing is created or changed."""
    dirs = [root] + [root / sub for sub in TOP_DIRS]
    try:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return False
        effective = os.access in os.supports_effective_ids
        return all(
            os.access(d, os.W_OK | os.X_OK, effective_ids=effective)
            for d in dirs
            if os.path.lexists(d)
        )
    except OSError as err:
        raise storage_error(err, f"inspect {root}") from err


class Spool:
    """The spool of one vault on this machine (nothing exists until a read is spooled)."""

    def __init__(self, state_dir: Path, vault_id: str) -> None:
        if not _VAULT_ID.fullmatch(vault_id):
            raise UnsafeInputError("malformed vault id")
        self.state_dir = state_dir
        self.path = state_dir / SPOOL_DIR / vault_id

    def names(self) -> list[str]:
        """Every file of the spool's grammar (none when it does not exist)."""
        try:
            self._check_dir(self.path)
            listed = os.listdir(self.path)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise storage_error(err, f"list {self.path}") from err
        return sorted(
            n
            for n in listed
            if ENTRY.fullmatch(n) or MARKED.fullmatch(n) or REFUSED.fullmatch(n)
        )

    def put(self, name: str, data: bytes) -> None:
        """Write ``name`` whole and durably (temp + fsync + rename + directory fsync)."""
        self._name(name)
        try:
            self.state_dir.parent.mkdir(parents=True, exist_ok=True)  # ~/.local/state
        except OSError as err:
            raise storage_error(err, f"create {self.state_dir.parent}") from err
        for directory in (self.state_dir, self.path.parent, self.path):
            try:
                directory.mkdir(mode=DIR_MODE)
            except FileExistsError:
                pass
            except OSError as err:
                raise storage_error(err, f"create {directory}") from err
        self._check_dir(self.path)
        temp = self.path / f"{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                FILE_MODE,
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path / name)
            self._sync_dir()
        except OSError as err:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise storage_error(err, f"write {self.path / name}") from err

    def read(self, name: str) -> bytes:
        """The content of ``name``: a private regular file of this user, never a link."""
        try:
            fd = os.open(
                self.path / self._name(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except OSError as err:
            raise storage_error(err, f"read {self.path / name}") from err
        try:
            info = os.fstat(fd)
            if not _private(info) or not stat.S_ISREG(info.st_mode):
                raise UnsafeInputError(
                    f"{self.path / name} is not a private file of yours"
                )
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def rename(self, old: str, new: str) -> None:
        """Rename durably (a mark must reach the disk before the commit it names)."""
        try:
            os.replace(self.path / self._name(old), self.path / self._name(new))
            self._sync_dir()
        except OSError as err:
            raise storage_error(err, f"rename {self.path / old}") from err

    def remove(self, name: str) -> None:
        try:
            (self.path / self._name(name)).unlink()
        except FileNotFoundError:
            return
        except OSError as err:
            raise storage_error(err, f"remove {self.path / name}") from err

    def _name(self, name: str) -> str:
        if not (
            ENTRY.fullmatch(name) or MARKED.fullmatch(name) or REFUSED.fullmatch(name)
        ):
            raise UnsafeInputError(f"{name[:80]!r} is not a name of the read spool")
        return name

    def _sync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _check_dir(path: Path) -> None:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or not _private(info):
            raise UnsafeInputError(
                f"{path} is not a private directory of yours (a symlink, another "
                "user's, or open to others); the read spool is kept only in one"
            )


def _private(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid() and not info.st_mode & 0o077
