"""The two one-method stream interfaces the codec reads and writes through.

As Go's ``io.Reader`` and ``io.Writer`` are for the reference age: any open
binary file, ``io.BytesIO``, a socket file or a caller's own sink fits, and
the codec asks for nothing more than the one method it calls.
"""

from __future__ import annotations

from typing import Protocol


class Reader(Protocol):
    """A source of bytes: ``read(n)`` returns at most ``n``, ``b""`` at the end."""

    def read(self, n: int, /) -> bytes: ...


class Writer(Protocol):
    """A sink of bytes: ``write(data)`` takes all of ``data``."""

    def write(self, data: bytes | bytearray | memoryview, /) -> object: ...
