"""The codec's only door to libsodium (via PyNaCl) and to hashlib/hmac, and
(``BulkChunkCipher``) to OpenSSL's ChaCha20-Poly1305 through pyca/cryptography.

Every third-party error is translated here into a confvault error, so the rest
of the codec never sees ``nacl.exceptions``.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import nacl.bindings
import nacl.exceptions
from nacl._sodium import ffi, lib  # the raw bindings: no per-call copies

from confvault.errors import HeaderError

KEY_SIZE = 32
TAG_SIZE = 16
NONCE_SIZE = 12
_ZERO_NONCE = bytes(NONCE_SIZE)


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    return os.urandom(n)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA-256 (RFC 5869): extract with ``salt``, expand with ``info``."""
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    if length <= 32:  # one expand block: every length age uses
        return hmac.digest(prk, info + b"\x01", "sha256")[:length]
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-256 of ``message``."""
    return hmac.digest(key, message, "sha256")


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two MACs or hashes without leaking where they differ."""
    return hmac.compare_digest(a, b)


def x25519(scalar: bytes, point: bytes) -> bytes:
    """X25519 (RFC 7748). Raises HeaderError on an all-zero shared secret."""
    try:
        shared = nacl.bindings.crypto_scalarmult(scalar, point)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.TypeError) as err:
        raise HeaderError("X25519 share yields a low-order shared secret") from err
    if constant_time_equal(shared, bytes(32)):
        raise HeaderError("X25519 share yields a low-order shared secret")
    return shared


def x25519_base(scalar: bytes) -> bytes:
    """The X25519 public point of ``scalar``."""
    return nacl.bindings.crypto_scalarmult_base(scalar)


def scrypt(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    """scrypt(N=2**log_n, r=8, p=1, dkLen=32), memory bounded to what it needs."""
    n = 1 << log_n
    maxmem = 128 * 8 * n + (32 << 20)
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=8, p=1, maxmem=maxmem, dklen=32)


def aead_seal_zero_nonce(key: bytes, plaintext: bytes) -> bytes:
    """ChaCha20-Poly1305 with the all-zero nonce (used to wrap file keys)."""
    return nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
        plaintext, None, _ZERO_NONCE, key
    )


def aead_open_zero_nonce(key: bytes, ciphertext: bytes) -> bytes | None:
    """Open a zero-nonce ChaCha20-Poly1305 box; ``None`` when the tag is wrong."""
    try:
        return nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
            ciphertext, None, _ZERO_NONCE, key
        )
    except nacl.exceptions.CryptoError:
        return None


class ChunkCipher:
    """ChaCha20-Poly1305-IETF over caller-owned buffers, for the STREAM hot loop.

    Calls libsodium directly through PyNaCl's cffi handle, so a 64 KiB chunk
    is sealed or opened straight into the caller's buffer with no intermediate
    copy. cffi releases the GIL during the call, so one cipher may be used
    from several threads at once on disjoint buffers.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("ChaCha20-Poly1305 key must be 32 bytes")
        self._key = key

    def seal_into(self, nonce: bytes, plaintext: memoryview, out: memoryview) -> None:
        """Seal ``plaintext`` into ``out`` (exactly ``len(plaintext) + 16`` bytes)."""
        n = len(plaintext)
        if len(out) != n + TAG_SIZE:
            raise ValueError("output buffer has the wrong size")
        lib.crypto_aead_chacha20poly1305_ietf_encrypt(
            ffi.from_buffer(out, require_writable=True),
            ffi.NULL,
            ffi.from_buffer(plaintext),
            n,
            ffi.NULL,
            0,
            ffi.NULL,
            nonce,
            self._key,
        )

    def seal(self, nonce: bytes, plaintext: bytes | memoryview) -> bytes:
        """``plaintext`` sealed into new bytes (for small payloads held in memory)."""
        out = bytearray(len(plaintext) + TAG_SIZE)
        self.seal_into(nonce, memoryview(plaintext), memoryview(out))
        return bytes(out)

    def open(self, nonce: bytes, ciphertext: bytes | memoryview) -> bytes | None:
        """``ciphertext`` opened into new bytes, or ``None`` on a bad tag."""
        if len(ciphertext) < TAG_SIZE:
            return None
        out = bytearray(len(ciphertext) - TAG_SIZE)
        return (
            bytes(out)
            if self.open_into(nonce, memoryview(ciphertext), memoryview(out))
            else None
        )

    def open_into(self, nonce: bytes, ciphertext: memoryview, out: memoryview) -> bool:
        """Open ``ciphertext`` into ``out``; False (``out`` is garbage) on a bad tag."""
        n = len(ciphertext)
        if n < TAG_SIZE or len(out) != n - TAG_SIZE:
            return False
        rc = lib.crypto_aead_chacha20poly1305_ietf_decrypt(
            ffi.from_buffer(out, require_writable=True),
            ffi.NULL,
            ffi.NULL,
            ffi.from_buffer(ciphertext),
            n,
            ffi.NULL,
            0,
            nonce,
            self._key,
        )
        return bool(rc == 0)


class BulkChunkCipher(ChunkCipher):
    """``ChunkCipher`` for the whole blocks of a large payload: OpenSSL's
    ChaCha20-Poly1305 (pyca/cryptography, imported on first use), the same
    bytes as libsodium's at about half its CPU time on this machine's AVX2
    and AVX-512 (docs/PERFORMANCE.md, issue 19). One instance per thread.
    Small payloads (a note) keep libsodium: no import of OpenSSL's bindings
    on a command's path."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self._aead = ChaCha20Poly1305(key)
        self._invalid = InvalidTag

    def seal_into(self, nonce: bytes, plaintext: memoryview, out: memoryview) -> None:
        """Seal ``plaintext`` into ``out`` (exactly ``len(plaintext) + 16`` bytes)."""
        if len(out) != len(plaintext) + TAG_SIZE:
            raise ValueError("output buffer has the wrong size")
        self._aead.encrypt_into(nonce, plaintext, None, out)

    def open_into(self, nonce: bytes, ciphertext: memoryview, out: memoryview) -> bool:
        """Open ``ciphertext`` into ``out``; False (``out`` is garbage) on a bad tag."""
        n = len(ciphertext)
        if n < TAG_SIZE or len(out) != n - TAG_SIZE:
            return False
        try:
            self._aead.decrypt_into(nonce, ciphertext, None, out)
        except self._invalid:
            return False
        return True
