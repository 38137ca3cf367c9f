"""The age v1 header: strict parsing and canonical encoding (C2SP age, "Header").

header = v1-line 1*stanza end
stanza = arg-line *full-line final-line
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import BinaryIO

from confvault.errors import HeaderError

VERSION_LINE = b"age-encryption.org/v1\n"
VERSION_PREFIX = b"age-encryption.org/"
STANZA_PREFIX = b"-> "
MAC_PREFIX = b"---"
COLUMNS = 64
MAX_LINE = 8192  # longer than any argument a known recipient type uses
MAX_HEADER = 4 << 20  # many grantees fit; a hostile header does not exhaust memory
MAX_STANZAS = 10_000


CLASSIC_TYPES = frozenset({"X25519"})  # what a quantum computer would open
POSTQUANTUM_TYPES = frozenset({"mlkem768x25519"})


HEAD_LOOKED_AT = 4096  # sealed_only_classic reads no further into a file
_CLASSIC = frozenset(t.encode() for t in CLASSIC_TYPES)
_POSTQUANTUM = frozenset(t.encode() for t in POSTQUANTUM_TYPES)
_STANZA_LINE = b"\n" + STANZA_PREFIX
_MAC_LINE = b"\n" + MAC_PREFIX


def sealed_only_classic(head: bytes) -> bool:
    """True when the binary age file starting with ``head`` is sealed to a
    classic (X25519) recipient and no post-quantum one, as its stanza lines
    say: no key needed. ``head`` may stop anywhere in the header (only its
    first ``HEAD_LOOKED_AT`` bytes are read: a keyless verify passes each
    object's whole content); a file whose first stanza is post-quantum (or
    scrypt, or not age) is not.

    It finds the few stanza lines with ``bytes.find`` before the first
    ``---`` line, rather than splitting the header (and the payload after
    it) into lines: a verify calls it for every object."""
    if not head.startswith(VERSION_LINE):
        return False
    limit = min(len(head), HEAD_LOOKED_AT)
    at = len(VERSION_LINE) - 1  # the newline that ends the version line
    end = head.find(_MAC_LINE, at, limit)
    end = limit if end < 0 else end
    classic = False
    while (at := head.find(_STANZA_LINE, at, end)) >= 0:
        first = at + len(_STANZA_LINE)
        stop = head.find(b"\n", first, limit)
        stop = limit if stop < 0 else stop
        space = head.find(b" ", first, stop)
        kind = head[first : stop if space < 0 else space]
        if kind in _POSTQUANTUM:
            return False
        classic = classic or kind in _CLASSIC
        at = stop
    return classic


def b64encode(data: bytes) -> str:
    """Canonical unpadded base64 (RFC 4648 section 4, no ``=``)."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str | bytes) -> bytes:
    """Strict unpadded base64: rejects padding, stray characters, non-canonical bits."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if b"=" in raw or b"\n" in raw or b"\r" in raw:
        raise HeaderError("base64 has padding or line breaks")
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise HeaderError("invalid base64") from err
    if base64.b64encode(data).rstrip(b"=") != raw:
        raise HeaderError("non-canonical base64")
    return data


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: ``-> type args...`` and a binary body."""

    type: str
    args: tuple[str, ...] = ()
    body: bytes = field(default=b"", repr=False)

    def marshal(self) -> bytes:
        """Canonical encoding, body wrapped at 64 columns, short final line."""
        words = (self.type, *self.args)
        for word in words:
            if not word.isascii():
                raise HeaderError("stanza argument has non-ASCII characters")
            _check_argument(word.encode("ascii"))
        out = [STANZA_PREFIX + " ".join(words).encode("ascii") + b"\n"]
        body = b64encode(self.body).encode("ascii")
        # range() runs one step past the end, so a body whose length is a
        # multiple of 64 columns (or empty) gets the empty final line it needs.
        for i in range(0, len(body) + 1, COLUMNS):
            out.append(body[i : i + COLUMNS] + b"\n")
        return b"".join(out)


@dataclass(frozen=True)
class Header:
    """A parsed header: its stanzas, its MAC, and the bytes the MAC covers."""

    stanzas: tuple[Stanza, ...]
    mac: bytes = field(repr=False)
    mac_input: bytes = field(repr=False)


def marshal_without_mac(stanzas: list[Stanza]) -> bytes:
    """The header up to and including ``---``: exactly what the MAC covers."""
    return VERSION_LINE + b"".join(s.marshal() for s in stanzas) + MAC_PREFIX


def marshal_mac(mac: bytes) -> bytes:
    """The tail of the MAC line, after ``---``."""
    return b" " + b64encode(mac).encode("ascii") + b"\n"


_VCHARS = re.compile(rb"[\x21-\x7e]+")


def _check_argument(word: bytes) -> None:
    if not _VCHARS.fullmatch(word):
        raise HeaderError("stanza argument is empty or has invalid characters")


def _read_line(src: BinaryIO, consumed: int) -> bytes:
    line = src.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        if len(line) >= MAX_LINE:
            raise HeaderError("header line too long")
        raise HeaderError("header is truncated")
    if consumed + len(line) > MAX_HEADER:
        raise HeaderError("header too large")
    return line


def _parse_stanza(
    arg_line: bytes, src: BinaryIO, consumed: int
) -> tuple[Stanza, bytes]:
    words = arg_line[len(STANZA_PREFIX) : -1].split(b" ")
    for word in words:
        _check_argument(word)
    raw = [arg_line]
    body_parts: list[bytes] = []
    while True:
        line = _read_line(src, consumed + sum(map(len, raw)))
        raw.append(line)
        text = line[:-1]
        if len(text) > COLUMNS:
            raise HeaderError("stanza body line longer than 64 columns")
        if text.startswith(STANZA_PREFIX) or text.startswith(MAC_PREFIX):
            raise HeaderError("stanza is missing its final short body line")
        body_parts.append(text)
        if len(text) < COLUMNS:
            break
    body = b64decode(b"".join(body_parts))
    names = [w.decode("ascii") for w in words]
    return Stanza(names[0], tuple(names[1:]), body), b"".join(raw)


def parse_header(src: BinaryIO) -> Header:
    """Read and strictly parse a header from ``src``, leaving it at the payload.

    The MAC is parsed, not checked: checking needs the file key.
    """
    first = src.readline(len(VERSION_LINE))
    if first != VERSION_LINE:
        if first.startswith(VERSION_PREFIX):
            raise HeaderError("unsupported age version")
        raise HeaderError("not an age file (bad version line)")
    consumed = len(first)
    parts = [first]
    stanzas: list[Stanza] = []
    while True:
        line = _read_line(src, consumed)
        if line.startswith(STANZA_PREFIX):
            if len(stanzas) >= MAX_STANZAS:
                raise HeaderError("too many stanzas")
            stanza, raw = _parse_stanza(line, src, consumed)
            stanzas.append(stanza)
            parts.append(raw)
            consumed += len(raw)
            continue
        if line.startswith(MAC_PREFIX + b" "):
            if not stanzas:
                raise HeaderError("header has no recipient stanzas")
            encoded = line[len(MAC_PREFIX) + 1 : -1]
            if len(encoded) != 43:
                raise HeaderError("header MAC has the wrong length")
            mac = b64decode(encoded)
            parts.append(MAC_PREFIX)
            return Header(tuple(stanzas), mac, b"".join(parts))
        raise HeaderError("unexpected line in header")
