"""ASCII armor: the strict PEM encoding of an age file (C2SP age, "ASCII armor").

Only whitespace is tolerated before and after the block; inside it, lines are
exactly 64 columns of canonical, padded base64 except a shorter last line, and
both LF and CRLF line endings are accepted.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import TYPE_CHECKING, BinaryIO

from confvault.age._io import Writer
from confvault.errors import ArmorError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64
_BYTES_PER_LINE = COLUMNS // 4 * 3
_MAX_WHITESPACE = 1024
_WHITESPACE = b" \t\r\n"


class ArmorWriter:
    """Writes armored output to ``dst``; ``finish()`` writes the END line.

    Not an io object on purpose: nothing may write the END line implicitly
    (from a finaliser after an error), which would make a truncated file look
    complete.
    """

    def __init__(self, dst: Writer) -> None:
        self._dst = dst
        self._pending = bytearray()
        self._finished = False
        dst.write(BEGIN + b"\n")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data`` and write every whole 48-byte line of it."""
        self._pending += data
        whole = len(self._pending) // _BYTES_PER_LINE * _BYTES_PER_LINE
        if whole:
            self._dst.write(_encode_lines(bytes(self._pending[:whole])))
            del self._pending[:whole]
        return len(data)

    def finish(self) -> None:
        """Write the last line and the END line."""
        if self._finished:
            return
        self._finished = True
        if self._pending:
            self._dst.write(_encode_lines(bytes(self._pending)))
        self._dst.write(END + b"\n")
        self._pending.clear()


def _encode_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(
        encoded[i : i + COLUMNS] + b"\n" for i in range(0, len(encoded), COLUMNS)
    )


def armor(data: bytes) -> bytes:
    """Armor a whole age file held in memory."""
    out = io.BytesIO()
    writer = ArmorWriter(out)
    writer.write(data)
    writer.finish()
    return out.getvalue()


class ArmorReader(io.RawIOBase):
    """Decodes an armored age file from ``src`` as it is read.

    Up to 1024 bytes of whitespace may precede the BEGIN line and follow the
    END line; anything else outside the block, and every deviation from
    strict PEM inside it, raises ArmorError.
    """

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src
        self._pending = b""
        self._done = False
        self._saw_short = False
        self._lines = 0
        _, first = strip_leading_whitespace(src)
        line = self._line(first)
        if line != BEGIN:
            raise ArmorError("armor does not start with the age BEGIN line")

    def readable(self) -> bool:
        return True

    def _line(self, first: bytes = b"") -> bytes:
        raw = first + self._src.readline(COLUMNS + 3 - len(first))
        if raw.endswith(b"\r\n"):
            return raw[:-2]
        if raw.endswith(b"\n"):
            return raw[:-1]
        if raw == END:  # the END line may lack a final newline
            return raw
        raise ArmorError("armor line is too long, truncated or missing its END line")

    def _next_block(self) -> bytes:
        line = self._line()
        if line == END:
            if self._lines == 0:
                raise ArmorError("armor has no data")
            self._finish()
            return b""
        if self._saw_short:
            raise ArmorError("armor has a short line before its last line")
        if not line or len(line) > COLUMNS:
            raise ArmorError("armor line has the wrong length")
        if len(line) < COLUMNS:
            self._saw_short = True
        self._lines += 1
        try:
            data = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ArmorError("armor has invalid base64") from err
        if base64.b64encode(data) != line:
            raise ArmorError("armor base64 is not canonical")
        if b"=" in line and not self._saw_short and len(line) == COLUMNS:
            self._saw_short = True  # padding can only end the data
        return data

    def _finish(self) -> None:
        trailing = self._src.read(_MAX_WHITESPACE + 1)
        if len(trailing) > _MAX_WHITESPACE or trailing.strip(_WHITESPACE):
            raise ArmorError("unexpected data after the armor END line")
        self._done = True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)  # io.BufferedReader passes one already
        while not self._pending and not self._done:
            self._pending = self._next_block()
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def open_armored(src: BinaryIO) -> BinaryIO:
    """A buffered binary stream of the age file inside the armor read from ``src``."""
    return io.BufferedReader(ArmorReader(src), buffer_size=64 * 1024)


def strip_leading_whitespace(src: BinaryIO) -> tuple[int, bytes]:
    """Consume up to 1024 bytes of leading whitespace.

    Returns how many were skipped and the first other byte (empty at EOF).
    """
    skipped = 0
    while True:
        byte = src.read(1)
        if not byte or byte not in _WHITESPACE:
            return skipped, byte
        skipped += 1
        if skipped > _MAX_WHITESPACE:
            raise ArmorError("too much whitespace before the armor")
