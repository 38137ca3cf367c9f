"""A fast reader of tar archives that reports exactly what ``tarfile`` would.

``members`` lists an archive's members with their data: it reads plain ustar
or GNU headers of files and directories itself and hands anything else (pax,
links, compression, damage) to ``tarfile``.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, Literal

from confvault.vault.backup.tarformat import BLOCK, ZERO_BLOCK, Read

_CHUNK = 1 << 20


def kind_of(member: tarfile.TarInfo) -> str:
    """ "file", "dir", "link" or "special" (what a vault backup may hold)."""
    if member.issym() or member.islnk():
        return "link"
    if member.isdir():
        return "dir"
    if member.isreg() and not member.issparse():
        return "file"
    return "special"


Member = tuple[str, str, int, "Read | None"]  # name, kind, size, read


def members(stream: BinaryIO) -> Iterator[Member]:
    """(name, kind, size, read) for each member, as ``tarfile`` would list them.

    Plain ustar or GNU headers of files and directories (what ``backup
    create`` and ``tar -cf`` write for a vault) are read here, about ten
    times faster than ``tarfile``; the first header of any other kind (pax,
    long names, links, devices, a compressed or damaged archive) hands the
    rest of the stream to ``tarfile``. ``read(n)`` gives the member's data
    (at most ``n`` bytes a call, ``b""`` at its end) and raises
    ``tarfile.ReadError`` when the archive ends first.
    """
    source = _Input(stream)
    block = source.take_bytes(BLOCK)
    parsed = _plain_header(block) if len(block) == BLOCK else None
    if parsed is None:  # tarfile detects compression and reports what is wrong
        yield from _tarfile_members(_Replay(block + source.rest(), stream), "r|*")
        return
    while True:
        name, kind, size = parsed
        if kind == "dir":
            yield name, kind, size, None  # tarfile skips no data for a directory
        else:
            data = _MemberData(source, size)
            yield name, kind, size, data.read
            data.skip()
        block = source.take_bytes(BLOCK)
        if len(block) < BLOCK:
            # tarfile ends the listing quietly here; the data stopped without
            # the zero block that closes an archive
            raise tarfile.ReadError("no end-of-archive marker")
        if block == ZERO_BLOCK:
            return
        parsed = _plain_header(block)
        if parsed is None:
            if not _checksum_ok(block):
                return  # tarfile too takes a bad header after the first as the end
            yield from _tarfile_members(_Replay(block + source.rest(), stream), "r|")
            return


def _tarfile_members(fileobj: Any, mode: Literal["r|*", "r|"]) -> Iterator[Member]:
    with tarfile.open(fileobj=fileobj, mode=mode) as tar:
        for member in tar:
            kind = kind_of(member)
            if kind == "file":
                data = tar.extractfile(member)  # never None for a regular file
                yield member.name, kind, member.size, data.read  # type: ignore[union-attr]
            else:
                yield member.name, kind, member.size, None
        if tar.fileobj.tell() - tar.offset < tarfile.BLOCKSIZE:
            # tarfile stops quietly when the data ends at a member boundary
            raise tarfile.ReadError("no end-of-archive marker")


_MAGICS = (tarfile.POSIX_MAGIC, tarfile.GNU_MAGIC)
_PLAIN_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE)
# mode, uid, gid (7 octal digits), size, mtime (11), then the checksum (6):
# the canonical form only
_PLAIN_NUMBERS = re.compile(rb"(?:[0-7]{7}[\0 ]){3}(?:[0-7]{11}[\0 ]){2}[0-7]{6}\0 ")
_PLAIN_DEVICES = (b"0000000\0" * 2, bytes(16))  # tarfile's, GNU tar's
_NO_PREFIX = bytes(155)


def _plain_header(block: bytes) -> tuple[str, str, int] | None:
    """(name, kind, size) of a plain file or directory header, exactly as
    ``tarfile`` reads it; None for any other header, or a bad checksum."""
    if (
        block[257:265] not in _MAGICS
        or block[156:157] not in _PLAIN_TYPES
        or block[345:500] != _NO_PREFIX
        or block[329:345] not in _PLAIN_DEVICES
        or not _PLAIN_NUMBERS.fullmatch(block, 100, 156)
        or int(block[148:154], 8) != 256 + _byte_sum(block) - sum(block[148:156])
    ):
        return None
    name = block[:100].partition(b"\0")[0].decode(tarfile.ENCODING, "surrogateescape")
    kind = block[156:157]
    if kind == tarfile.DIRTYPE or (kind == tarfile.AREGTYPE and name.endswith("/")):
        return name.rstrip("/"), "dir", int(block[124:135], 8)
    return name, "file", int(block[124:135], 8)


def _byte_sum(block: bytes) -> int:
    """sum(block) for 512 bytes, in C: adler32's low half is 1 + the byte sum
    modulo 65521, exact for 256 bytes (at most 65,280)."""
    return (
        (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2
    )


def _checksum_ok(block: bytes) -> bool:
    """tarfile's own test (either signedness)."""
    try:
        return tarfile.nti(block[148:156]) in tarfile.calc_chksums(block)  # type: ignore[attr-defined]
    except tarfile.TarError:
        return False


class _Input:
    """A tar stream read in large blocks."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.buf = b""
        self.view = memoryview(self.buf)  # of buf: slices without copies
        self.pos = 0

    def _fill(self, n: int) -> None:
        parts = [self.buf[self.pos :]]
        have = len(parts[0])
        while have < n:
            more = self.stream.read(max(_CHUNK, n - have))
            if not more:
                break
            parts.append(more)
            have += len(more)
        self.buf = b"".join(parts)
        self.view = memoryview(self.buf)
        self.pos = 0

    def _span(self, n: int) -> tuple[int, int]:
        """Where the next ``n`` bytes are in ``buf`` (fewer only at the end
        of the stream), now taken."""
        start = self.pos
        end = start + n
        if end > len(self.buf):
            self._fill(n)
            start, end = 0, min(n, len(self.buf))
        self.pos = end
        return start, end

    def take(self, n: int) -> memoryview:
        """The next ``n`` bytes, without a copy."""
        start, end = self._span(n)
        return self.view[start:end]

    def take_bytes(self, n: int) -> bytes:
        start, end = self._span(n)
        return self.buf[start:end]

    def rest(self) -> bytes:
        """What was read ahead and not taken."""
        rest = self.buf[self.pos :]
        self.buf, self.view, self.pos = b"", memoryview(b""), 0
        return rest


class _MemberData:
    """One member's data in an ``_Input``; then its padding."""

    def __init__(self, source: _Input, size: int) -> None:
        self.source = source
        self.size = size
        self.left = size

    def read(self, n: int = -1) -> memoryview | bytes:
        left = self.left
        if left <= 0:
            return b""
        if 0 <= n < left:
            left = n
        block = self.source.take(left if left < _CHUNK else _CHUNK)
        if not block:
            raise tarfile.ReadError("unexpected end of data")
        self.left -= len(block)
        return block

    def skip(self) -> None:
        """Pass what was not read, and the padding to the next 512-byte block."""
        left = self.left + (-self.size % BLOCK)
        source = self.source
        if len(source.buf) - source.pos >= left:  # in the buffer: nearly always
            source.pos += left
            self.left = 0
            return
        while left > 0:
            block = self.source.take(min(left, _CHUNK))
            if not block:
                raise tarfile.ReadError("unexpected end of data")
            left -= len(block)
        self.left = 0


class _Replay:
    """``head``, then the rest of ``stream``: where tarfile takes over."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head = head
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(size)
        if size < 0:
            out, self.head = self.head + self.stream.read(), b""
            return out
        out, self.head = self.head[:size], self.head[size:]
        return out
