"""The tar format as backups write it: headers byte for byte as ``tarfile``
writes them (``tarreader`` reads archives back).

``header`` builds a ustar header for a short ASCII name (anything else is
left to ``tarfile``, imported only then: making a backup does not load it).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

BLOCK = 512  # tarfile.BLOCKSIZE
RECORDSIZE = 20 * BLOCK  # tarfile.RECORDSIZE: an archive ends on a whole record
REGTYPE, DIRTYPE = b"0", b"5"  # tarfile's member types
POSIX_MAGIC = b"ustar\x0000"  # tarfile.POSIX_MAGIC
ZERO_BLOCK = bytes(BLOCK)
PADDING = tuple(bytes(-n % BLOCK) for n in range(BLOCK))  # after n bytes of a block
Read = Callable[[int], "bytes | memoryview"]  # up to n bytes; empty at the end


_NUMBER_LIMIT = 8**11  # ustar's 12-byte size and mtime fields: 11 octal digits
_HEADER_TAIL = (  # linkname, magic, uname, gname, devmajor, devminor, prefix, padding
    bytes(100) + POSIX_MAGIC + bytes(64 + 16 + 155 + 12)
)
_OWNER = b"0000000\0" * 2  # uid, gid
_TAIL_SUM = 256 + sum(_HEADER_TAIL)  # the checksum field counts as eight spaces


def header(name: str, kind: bytes, mode: int, size: int, mtime: int) -> bytes:
    """The header ``tarfile`` writes (PAX_FORMAT) for a member with owner 0
    and no user or group name. Short ASCII names and sizes under 8 GiB get a
    plain ustar header built here; anything else is left to tarfile (pax)."""
    raw = name.encode("ascii") if name.isascii() else b""
    if not (
        0 < len(raw) <= 100 and 0 <= size < _NUMBER_LIMIT and 0 <= mtime < _NUMBER_LIMIT
    ):
        import tarfile  # a long or non-ASCII name: rare

        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
    fixed = _fixed_fields(kind, mode, mtime)
    size_field = b"%011o\0" % size
    # sum(raw) + sum(size_field), in C: adler32's low half is 1 + the byte
    # sum modulo 65521, exact here (at most 112 bytes: 28,560)
    checksum = fixed[2] + (zlib.adler32(size_field, zlib.adler32(raw)) & 0xFFFF) - 1
    return b"".join(
        (
            raw.ljust(100, b"\0"),
            fixed[0],
            size_field,
            fixed[1],
            b"%06o\0 " % checksum,
            kind,
            _HEADER_TAIL,
        )
    )


@functools.lru_cache(maxsize=16)
def _fixed_fields(kind: bytes, mode: int, mtime: int) -> tuple[bytes, bytes, int]:
    """(mode uid gid, mtime, their checksum with the tail's) for one kind of member."""
    head = b"%07o\0" % (mode & 0o7777) + _OWNER
    mtime_field = b"%011o\0" % mtime
    return head, mtime_field, _TAIL_SUM + sum(head) + sum(mtime_field) + kind[0]
