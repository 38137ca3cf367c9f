"""Content-addressed sealed objects: ``objects/<2 hex>/<sha256 of the file>``.

Objects are immutable. A new version of anything is a new object; the
manifest says which objects are live. Reading checks the hash, so a swapped,
replayed or damaged object is caught before it is decrypted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from confvault.errors import IntegrityError, UnsafeInputError
from confvault.vault import fs

OBJECTS_DIR = "objects"
_HASH = re.compile(r"[0-9a-f]{64}")


def is_hash(text: str) -> bool:
    """True for a lowercase hex SHA-256."""
    return bool(_HASH.fullmatch(text))


class _HashingSink:
    """Writes to a temp file while hashing what passes through."""

    def __init__(self, temp: fs.TempFile) -> None:
        self._temp = temp
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._temp.write(data)


class ObjectStore:
    """The objects/ directory of one vault."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / OBJECTS_DIR
        self._dir = str(self.dir)

    def path(self, digest: str) -> Path:
        """Where the object named ``digest`` lives."""
        return Path(self.file(digest))

    def file(self, digest: str) -> str:
        """``path()`` as a string, for the hot paths that touch thousands."""
        if not is_hash(digest):
            raise IntegrityError(f"malformed object name {digest[:70]!r}")
        return f"{self._dir}/{digest[:2]}/{digest}"

    def put(self, data: bytes) -> tuple[str, fs.TempFile]:
        """Write ``data`` to a pending temp file; ``move()`` it in on commit."""
        digest = hashlib.sha256(data).hexdigest()
        return digest, fs.TempFile.of_bytes(self.root, self.file(digest), data)

    def put_stream(
        self, write: Callable[[_HashingSink], None]
    ) -> tuple[str, fs.TempFile]:
        """Like ``put``, for what ``write(sink)`` writes, streamed."""
        temp = fs.TempFile(self.root, self.dir / "pending")
        sink = _HashingSink(temp)
        try:
            write(sink)
        except BaseException:
            temp.discard()
            raise
        temp.close()
        digest = sink.sha.hexdigest()
        temp.target = self.file(digest)
        return digest, temp

    def get(self, digest: str) -> bytes:
        """The object's bytes, after checking they hash to its name."""
        path = self.file(digest)
        try:
            data = fs.read_bytes(path)
        except FileNotFoundError as err:
            raise IntegrityError(f"object {digest[:12]} is missing") from err
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), digest):
            raise IntegrityError(f"object {digest[:12]} is damaged or was replaced")
        return data

    def open_checked(self, digest: str) -> BinaryIO:
        """Open a (large) object for streaming after checking its hash in one pass."""
        path = self.path(digest)
        try:
            f = fs.open_read(path)
        except FileNotFoundError as err:
            raise IntegrityError(f"object {digest[:12]} is missing") from err
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
        fs.remove(self.file(digest))

    def scan(self) -> Iterator[tuple[str, Path]]:
        """Every file under objects/ (for verify and gc); flags non-objects."""
        if not self.dir.exists():
            return
        for sub in sorted(self.dir.iterdir()):
            if sub.is_symlink() or not sub.is_dir():
                raise UnsafeInputError(f"unexpected entry {sub.name} in objects/")
            for entry in sorted(sub.iterdir()):
                yield entry.name, entry
