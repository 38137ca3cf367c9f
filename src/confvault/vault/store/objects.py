"""Content-addressed sealed objects: ``objects/<2 hex>/<sha256 of the file>``.

Objects are immutable. A new version of anything is a new object; the
manifest says which objects are live. Reading checks the hash, so a swapped,
replayed or damaged object is caught before it is decrypted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from confvault.errors import IntegrityError, UnsafeInputError
from confvault.vault.store import fs, layout
from confvault.vault.store.rootfs import OBJECT_LIMIT, read_all, too_big

OBJECTS_DIR = layout.OBJECTS
_HASH = layout.HASH


def is_hash(text: str) -> bool:
    """True for a lowercase hex SHA-256."""
    return bool(_HASH.fullmatch(text))


class Sink(Protocol):
    """What ``put_stream``'s writer writes an object's bytes into."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...


class _HashingSink:
    """A ``Sink``: writes to a temp file while hashing what passes through."""

    def __init__(self, temp: fs.TempFile) -> None:
        self._temp = temp
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._temp.write(data)


HEAD_SIZE = 4096  # enough for the first stanzas of an age header


class ObjectStore:
    """The objects/ directory of one vault."""

    def __init__(self, disk: fs.Root) -> None:
        self.disk = disk
        self.root = disk.path

    def path(self, digest: str) -> Path:
        """Where the object named ``digest`` lives (for messages and tests)."""
        return self.root / layout.bucket_of(digest) / digest

    def put(self, data: bytes) -> tuple[str, fs.TempFile]:
        """Write ``data`` to a pending temp file; ``move()`` it in on commit."""
        digest = hashlib.sha256(data).hexdigest()
        return digest, fs.TempFile.of_bytes(
            self.disk, f"{OBJECTS_DIR}/{digest[:2]}", digest, data
        )

    def put_stream(self, write: Callable[[Sink], None]) -> tuple[str, fs.TempFile]:
        """Like ``put``, for what ``write(sink)`` writes, streamed."""
        temp = fs.TempFile(self.disk, OBJECTS_DIR, "pending")
        sink = _HashingSink(temp)
        try:
            write(sink)
        except BaseException:
            temp.discard()
            raise
        digest = sink.sha.hexdigest()
        temp.rel, temp.name = layout.bucket_of(digest), digest
        temp.close()
        return digest, temp

    def _open(self, digest: str) -> tuple[int, int]:
        try:
            fd, info = self.disk.open(layout.bucket_of(digest), digest)
        except FileNotFoundError as err:
            raise IntegrityError(f"object {digest[:12]} is missing") from err
        except OSError as err:
            raise fs.storage_error(err, f"read object {digest[:12]}") from err
        return fd, info.st_size

    def get(self, digest: str) -> bytes:
        """The object's bytes, after checking they hash to its name."""
        fd, size = self._open(digest)
        try:
            if size > OBJECT_LIMIT:
                raise too_big(size, OBJECT_LIMIT, f"object {digest[:12]}")
            data = read_all(fd, size, OBJECT_LIMIT, f"object {digest[:12]}")
        finally:
            os.close(fd)
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), digest):
            raise IntegrityError(f"object {digest[:12]} is damaged or was replaced")
        return data

    def head(self, digest: str, size: int = HEAD_SIZE) -> bytes:
        """The object's first ``size`` bytes, unchecked (for reports only: its
        age header's stanza types, which need no key)."""
        fd, _ = self._open(digest)
        try:
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def open_checked(self, digest: str) -> BinaryIO:
        """Open a (large) object for streaming after checking its hash in one pass."""
        fd, _ = self._open(digest)
        f = os.fdopen(fd, "rb")
        sha = hashlib.sha256()
        while block := f.read(1 << 20):
            sha.update(block)
        if not hmac.compare_digest(sha.hexdigest(), digest):
            f.close()
            raise IntegrityError(f"object {digest[:12]} is damaged or was replaced")
        f.seek(0)
        return f

    def remove(self, digest: str) -> None:
        """Delete an object that is no longer live."""
        self.disk.remove(layout.bucket_of(digest), digest)

    def scan(self) -> Iterator[str]:
        """Every object name under objects/ (for gc). Anything else, or a
        bucket that is not a private directory, is skipped: ``verify``
        reports it, and nothing acts on it."""
        for bucket in self.disk.names(OBJECTS_DIR):
            rel = f"{OBJECTS_DIR}/{bucket}"
            if not layout.is_dir(rel):
                continue
            try:
                names = self.disk.names(rel)
            except UnsafeInputError:
                continue
            yield from (name for name in names if layout.is_file(rel, name))
