"""A self-contained age v1 codec (https://c2sp.org/age) on PyNaCl.

It knows nothing of vaults or terminals. The extension surface is two
one-method protocols, as in the reference implementation: a ``Recipient``
wraps a file key into stanzas, an ``Identity`` unwraps it.

Recipient types: X25519 (``age1...``), the post-quantum hybrid
MLKEM768-X25519 (``age1pq1...``, its HPKE on pyca/cryptography) and scrypt
passphrases. A recipient may carry ``labels``; all recipients of one file
must carry the same set (age's rule), so a post-quantum recipient is never
mixed with a classic one.

    >>> from confvault import age
    >>> identity = age.X25519Identity.generate()
    >>> sealed = age.encrypt(b"note", [identity.recipient])
    >>> age.decrypt(sealed, [identity])
    b'note'

Decryption releases only authenticated plaintext: whatever a caller received
before a ``PayloadError`` is genuine but incomplete.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from confvault.age import _format, _stream, armor
from confvault.age._format import Header, Stanza, sealed_only_classic
from confvault.age._io import Reader, Writer
from confvault.age._primitives import (
    constant_time_equal,
    hkdf_sha256,
    hmac_sha256,
    random_bytes,
)
from confvault.age.keys import (
    AnyIdentity,
    AnyRecipient,
    parse_identities,
    parse_identity,
    parse_recipient,
    parse_recipients,
)
from confvault.age.mlkem768x25519 import HybridIdentity, HybridRecipient
from confvault.age.scrypt import ScryptIdentity, ScryptRecipient
from confvault.age.x25519 import X25519Identity, X25519Recipient
from confvault.errors import (
    AgeError,
    HeaderError,
    HeaderMacError,
    IncompatibleRecipientsError,
    IncorrectIdentityError,
    NoIdentityMatchError,
)

__all__ = [
    "AnyIdentity",
    "AnyRecipient",
    "Header",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "Reader",
    "Recipient",
    "RecipientWithLabels",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "Writer",
    "X25519Recipient",
    "decrypt",
    "decrypt_chunks",
    "decrypt_stream",
    "decrypt_with_file_key",
    "encrypt",
    "encrypt_keyed",
    "encrypt_stream",
    "EncryptWriter",
    "parse_identities",
    "parse_identity",
    "parse_recipient",
    "parse_recipients",
    "sealed_only_classic",
]

FILE_KEY_SIZE = 16


class Recipient(Protocol):
    """Something a file can be sealed to."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Wrap the 16-byte file key into one or more stanzas."""
        ...


class Identity(Protocol):
    """Something that can open files sealed to its recipient."""

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        """Return the file key, or raise IncorrectIdentityError if not ours."""
        ...


class RecipientWithLabels(Recipient, Protocol):
    """A recipient that may only share a file with recipients of the same labels.

    Recipients without ``labels`` have the empty set (age's
    ``RecipientWithLabels``): ``HybridRecipient`` has ``{"postquantum"}``.
    """

    labels: frozenset[str]


def _check_labels(recipients: Sequence[Recipient]) -> None:
    """Every recipient of one file carries the same labels, or none is used."""
    kinds = {frozenset(getattr(r, "labels", frozenset())) for r in recipients}
    if len(kinds) > 1:
        raise IncompatibleRecipientsError(
            "incompatible recipients: a post-quantum (age1pq1...) recipient cannot "
            "seal a file together with classic ones (age1..., passphrase)"
        )


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac_sha256(hkdf_sha256(file_key, b"", b"header"), mac_input)


def _make_header(recipients: Sequence[Recipient], file_key: bytes) -> bytes:
    if not recipients:
        raise AgeError("at least one recipient is required")
    _check_labels(recipients)
    stanzas: list[Stanza] = []
    for recipient in recipients:
        stanzas.extend(recipient.wrap(file_key))
    if len(stanzas) > 1 and any(s.type == "scrypt" for s in stanzas):
        raise AgeError("a passphrase (scrypt) recipient must be the only recipient")
    without_mac = _format.marshal_without_mac(stanzas)
    return without_mac + _format.marshal_mac(_header_mac(file_key, without_mac))


class EncryptWriter:
    """Seal a stream as it is written, in constant memory.

    Use as a context manager; leaving the block normally seals the final
    chunk. Leaving it by an exception does not, so a failed write never
    produces a file that looks complete.
    """

    def __init__(
        self, dst: Writer, recipients: Sequence[Recipient], *, armored: bool = False
    ) -> None:
        file_key = random_bytes(FILE_KEY_SIZE)
        header = _make_header(recipients, file_key)
        self._armor = armor.ArmorWriter(dst) if armored else None
        sink: Writer = self._armor if self._armor else dst
        sink.write(header)
        self._stream = _stream.StreamWriter(file_key, random_bytes(16), sink)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Seal ``data`` (buffered until a whole chunk is known not to be last)."""
        return self._stream.write(data)

    def close(self) -> None:
        """Seal the final chunk and, when armored, write the END line."""
        self._stream.close()
        if self._armor:
            self._armor.finish()

    def __enter__(self) -> EncryptWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()


def encrypt_stream(
    src: Reader,
    dst: Writer,
    recipients: Sequence[Recipient],
    *,
    armored: bool = False,
) -> int:
    """Seal everything read from ``src`` into ``dst``; return plaintext bytes."""
    if armored:
        with EncryptWriter(dst, recipients, armored=True) as writer:
            total = 0
            while block := src.read(1 << 20):
                total += writer.write(block)
        return total
    file_key = random_bytes(FILE_KEY_SIZE)
    dst.write(_make_header(recipients, file_key))
    return _stream.encrypt_payload(file_key, random_bytes(16), src, dst)


def encrypt(
    data: bytes, recipients: Sequence[Recipient], *, armored: bool = False
) -> bytes:
    """Seal ``data`` held in memory."""
    if armored:
        out = io.BytesIO()
        encrypt_stream(io.BytesIO(data), out, recipients, armored=True)
        return out.getvalue()
    return encrypt_keyed(data, recipients)[0]


def encrypt_keyed(data: bytes, recipients: Sequence[Recipient]) -> tuple[bytes, bytes]:
    """Seal ``data`` held in memory; return the age file and its file key.

    The 16-byte file key opens this one file (``decrypt_with_file_key``) and
    nothing else. Whoever keeps it must keep it as secret as the file's
    plaintext: store it only inside something sealed to the same recipients.
    """
    file_key = random_bytes(FILE_KEY_SIZE)
    header = _make_header(recipients, file_key)
    payload = _stream.encrypt_payload_bytes(file_key, random_bytes(16), data)
    return header + payload, file_key


class _Prefixed(io.RawIOBase):
    """``prefix`` followed by the rest of ``src``, without copying ``src``."""

    def __init__(self, prefix: bytes, src: Reader) -> None:
        super().__init__()
        self._prefix = prefix
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)  # io.BufferedReader passes one already
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            return int(readinto(view) or 0)
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)


_SNIFF_SIZE = 2048


def _open_source(src: Reader) -> BinaryIO:
    """Detect armor and return a buffered stream of the binary age file."""
    prefix = b""
    while len(prefix) < _SNIFF_SIZE:
        block = src.read(_SNIFF_SIZE - len(prefix))
        if not block:
            break
        prefix += block
    chained = io.BufferedReader(_Prefixed(prefix, src), buffer_size=64 * 1024)
    if prefix.startswith(_format.VERSION_PREFIX):
        return chained
    if armor.BEGIN in prefix or prefix.lstrip().startswith(b"-----BEGIN"):
        return armor.open_armored(chained)
    raise HeaderError("not an age file")


def _unwrap_file_key(header: Header, identities: Sequence[Identity]) -> bytes:
    stanzas = header.stanzas
    if len(stanzas) > 1 and any(s.type == "scrypt" for s in stanzas):
        raise HeaderError("an scrypt stanza must be the only stanza")
    errors: list[AgeError] = []
    for identity in identities:
        try:
            file_key = identity.unwrap(stanzas)
        except IncorrectIdentityError as err:
            errors.append(err)
            continue
        if len(file_key) != FILE_KEY_SIZE:
            raise HeaderError("file key must be 16 bytes")
        return file_key
    raise NoIdentityMatchError(sorted({s.type for s in stanzas}), errors)


def decrypt_chunks(src: Reader, identities: Sequence[Identity]) -> Iterator[memoryview]:
    """Open an age file (binary or armored) and yield its authenticated chunks.

    The header is checked completely (stanzas, identity, MAC) before the first
    chunk is yielded. Each view is valid until the next is requested.
    """
    source = _open_source(src)
    header = _format.parse_header(source)
    file_key = _unwrap_file_key(header, identities)
    if not constant_time_equal(_header_mac(file_key, header.mac_input), header.mac):
        raise HeaderMacError("header MAC does not match: the header was altered")
    return _stream.decrypt_payload(file_key, source)


def decrypt_stream(src: Reader, dst: Writer, identities: Sequence[Identity]) -> int:
    """Decrypt ``src`` into ``dst``; return the plaintext bytes written.

    On PayloadError, ``dst`` holds only authenticated chunks (an incomplete
    but genuine prefix).
    """
    total = 0
    for chunk in decrypt_chunks(src, identities):
        dst.write(chunk)
        total += len(chunk)
    return total


def decrypt(data: bytes, identities: Sequence[Identity]) -> bytes:
    """Decrypt an age file held in memory (all or nothing)."""
    if not data.startswith(_format.VERSION_PREFIX):
        out = io.BytesIO()
        decrypt_stream(io.BytesIO(data), out, identities)
        return out.getvalue()
    # Binary and in memory: no stream layers, the payload is opened in place.
    src = io.BytesIO(data)
    header = _format.parse_header(src)
    file_key = _unwrap_file_key(header, identities)
    if not constant_time_equal(_header_mac(file_key, header.mac_input), header.mac):
        raise HeaderMacError("header MAC does not match: the header was altered")
    return _stream.decrypt_payload_bytes(file_key, memoryview(data)[src.tell() :])


_MAC_LINE_SIZE = len(_format.MAC_PREFIX) + 1 + 43


def decrypt_with_file_key(data: bytes, file_key: bytes) -> bytes:
    """Open a binary age file held in memory with its file key (all or nothing).

    For a caller that kept the key from ``encrypt_keyed``: it skips the
    recipient stanzas (no identity, no X25519) but checks the header MAC,
    which binds the whole header to this key, and then every payload chunk.
    """
    if len(file_key) != FILE_KEY_SIZE:
        raise HeaderError("file key must be 16 bytes")
    if not data.startswith(_format.VERSION_LINE):
        raise HeaderError("not a binary age v1 file")
    # Stanza lines start with "-> " or are base64, so the first line that
    # starts with "---" is the MAC line that ends the header.
    mac_at = data.find(b"\n" + _format.MAC_PREFIX, 0, _format.MAX_HEADER) + 1
    if mac_at == 0:
        raise HeaderError("header is truncated")
    end = mac_at + _MAC_LINE_SIZE
    if data[end : end + 1] != b"\n" or data[mac_at + 3 : mac_at + 4] != b" ":
        raise HeaderError("malformed header MAC line")
    mac_input = data[: mac_at + len(_format.MAC_PREFIX)]
    # Compare encodings: only the canonical encoding of the right MAC matches.
    expected = _format.b64encode(_header_mac(file_key, mac_input)).encode("ascii")
    if not constant_time_equal(expected, data[mac_at + 4 : end]):
        raise HeaderMacError("header MAC does not match this file key")
    return _stream.decrypt_payload_bytes(file_key, memoryview(data)[end + 1 :])
