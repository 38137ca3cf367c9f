"""The codec's primitives against published test vectors (RFC 5869, RFC 7748)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confvault.age import _primitives
from confvault.age._primitives import (
    TAG_SIZE,
    BulkChunkCipher,
    ChunkCipher,
    aead_open_zero_nonce,
    aead_seal_zero_nonce,
    hkdf_sha256,
    x25519,
    x25519_base,
)
from confvault.errors import HeaderError

# --- HKDF-SHA-256, RFC 5869 appendix A.1-A.3 ----------------------------------

RFC5869_CASES = [
    pytest.param(
        bytes([0x0B] * 22),
        bytes(range(0x00, 0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865",
        id="case1-basic",
    ),
    pytest.param(
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        id="case2-long-inputs",
    ),
    pytest.param(
        bytes([0x0B] * 22),
        b"",
        b"",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        "9d201395faa4b61a96c8",
        id="case3-empty-salt-and-info",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869_CASES)
def test_hkdf_sha256_matches_rfc5869(
    ikm: bytes, salt: bytes, info: bytes, length: int, okm: str
) -> None:
    assert hkdf_sha256(ikm, salt, info, length).hex() == okm


def test_hkdf_sha256_defaults_to_32_bytes_and_prefixes_longer_output() -> None:
    ikm, salt, info = bytes([0x0B] * 22), bytes(range(13)), bytes(range(0xF0, 0xFA))
    short = hkdf_sha256(ikm, salt, info)
    assert len(short) == 32
    assert hkdf_sha256(ikm, salt, info, 42)[:32] == short


def test_hkdf_sha256_empty_salt_equals_32_zero_bytes_salt() -> None:
    ikm = bytes([0x0B] * 22)
    assert hkdf_sha256(ikm, b"", b"header") == hkdf_sha256(ikm, bytes(32), b"header")


# --- X25519, RFC 7748 section 6.1 and low-order points -------------------------

ALICE_SECRET = bytes.fromhex(
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
)
ALICE_PUBLIC = bytes.fromhex(
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
)
BOB_SECRET = bytes.fromhex(
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
)
BOB_PUBLIC = bytes.fromhex(
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
)
SHARED = bytes.fromhex(
    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
)


def test_x25519_base_matches_rfc7748_public_keys() -> None:
    assert x25519_base(ALICE_SECRET) == ALICE_PUBLIC
    assert x25519_base(BOB_SECRET) == BOB_PUBLIC


def test_x25519_shared_secret_matches_rfc7748() -> None:
    assert x25519(ALICE_SECRET, BOB_PUBLIC) == SHARED
    assert x25519(BOB_SECRET, ALICE_PUBLIC) == SHARED


LOW_ORDER_POINTS = [
    pytest.param("00" * 32, id="zero"),
    pytest.param("01" + "00" * 31, id="one"),
    pytest.param(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        id="order-8-a",
    ),
    pytest.param(
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        id="order-8-b",
    ),
    pytest.param("ec" + "ff" * 30 + "7f", id="p-minus-1"),
    pytest.param("ed" + "ff" * 30 + "7f", id="p"),
    pytest.param("ee" + "ff" * 30 + "7f", id="p-plus-1"),
]


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_x25519_rejects_low_order_point_with_header_error(point: str) -> None:
    with pytest.raises(HeaderError, match="low-order"):
        x25519(ALICE_SECRET, bytes.fromhex(point))


def test_x25519_rejects_all_zero_point_for_any_scalar() -> None:
    for scalar in (ALICE_SECRET, BOB_SECRET, bytes(32), b"\xff" * 32):
        with pytest.raises(HeaderError):
            x25519(scalar, bytes(32))


# --- zero-nonce AEAD (file key wrapping) ---------------------------------------


def test_zero_nonce_aead_round_trips_and_rejects_wrong_key() -> None:
    key = bytes(range(32))
    sealed = aead_seal_zero_nonce(key, b"sixteen byte key")
    assert len(sealed) == 16 + TAG_SIZE
    assert aead_open_zero_nonce(key, sealed) == b"sixteen byte key"
    assert aead_open_zero_nonce(bytes(32), sealed) is None
    tampered = bytes([sealed[0] ^ 1]) + sealed[1:]
    assert aead_open_zero_nonce(key, tampered) is None


# --- ChunkCipher ----------------------------------------------------------------

KEY = bytes(range(100, 132))
NONCE = bytes(11) + b"\x01"


def _seal(cipher: ChunkCipher, nonce: bytes, plaintext: bytes) -> bytes:
    out = bytearray(len(plaintext) + TAG_SIZE)
    cipher.seal_into(nonce, memoryview(plaintext), memoryview(out))
    return bytes(out)


def _open(cipher: ChunkCipher, nonce: bytes, sealed: bytes) -> tuple[bool, bytes]:
    out = bytearray(max(len(sealed) - TAG_SIZE, 0))
    ok = cipher.open_into(nonce, memoryview(sealed), memoryview(out))
    return ok, bytes(out)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 65535, 65536])
def test_chunk_cipher_seal_open_round_trip(size: int) -> None:
    cipher = ChunkCipher(KEY)
    plaintext = bytes(i % 251 for i in range(size))
    sealed = _seal(cipher, NONCE, plaintext)
    assert len(sealed) == size + TAG_SIZE
    assert sealed[:size] != plaintext or size == 0
    assert _open(cipher, NONCE, sealed) == (True, plaintext)


def test_chunk_cipher_zero_nonce_matches_file_key_aead() -> None:
    # Both paths are ChaCha20-Poly1305-IETF without associated data.
    plaintext = b"0123456789abcdef"
    assert _seal(ChunkCipher(KEY), bytes(12), plaintext) == aead_seal_zero_nonce(
        KEY, plaintext
    )


@settings(max_examples=40, deadline=None)
@given(
    plaintext=st.binary(max_size=300),
    data=st.data(),
)
def test_chunk_cipher_any_bit_flip_fails_the_tag(
    plaintext: bytes, data: st.DataObject
) -> None:
    cipher = ChunkCipher(KEY)
    sealed = bytearray(_seal(cipher, NONCE, plaintext))
    position = data.draw(st.integers(0, len(sealed) - 1), label="position")
    bit = data.draw(st.integers(0, 7), label="bit")
    sealed[position] ^= 1 << bit
    ok, _ = _open(cipher, NONCE, bytes(sealed))
    assert ok is False


def test_chunk_cipher_wrong_nonce_or_key_fails_the_tag() -> None:
    sealed = _seal(ChunkCipher(KEY), NONCE, b"payload chunk")
    assert _open(ChunkCipher(KEY), bytes(12), sealed)[0] is False
    assert _open(ChunkCipher(bytes(32)), NONCE, sealed)[0] is False


def test_chunk_cipher_open_rejects_short_ciphertext_and_wrong_buffer_size() -> None:
    cipher = ChunkCipher(KEY)
    sealed = _seal(cipher, NONCE, b"abc")
    too_small = bytearray(2)
    assert cipher.open_into(NONCE, memoryview(sealed), memoryview(too_small)) is False
    short = sealed[: TAG_SIZE - 1]
    assert cipher.open_into(NONCE, memoryview(short), memoryview(bytearray(0))) is False


def test_chunk_cipher_seal_rejects_wrong_output_size() -> None:
    cipher = ChunkCipher(KEY)
    with pytest.raises(ValueError, match="wrong size"):
        cipher.seal_into(
            NONCE, memoryview(b"abc"), memoryview(bytearray(3 + TAG_SIZE + 1))
        )


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_chunk_cipher_requires_32_byte_key(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ChunkCipher(bytes(length))


# --- BulkChunkCipher (OpenSSL's, for the whole blocks of large payloads) ------


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 65535, 65536])
def test_bulk_chunk_cipher_gives_libsodiums_bytes_and_opens_them(size: int) -> None:
    plaintext = bytes(i % 251 for i in range(size))
    bulk, sodium = BulkChunkCipher(KEY), ChunkCipher(KEY)
    sealed = _seal(bulk, NONCE, plaintext)
    assert sealed == _seal(sodium, NONCE, plaintext)
    assert _open(bulk, NONCE, sealed) == (True, plaintext)
    assert _open(sodium, NONCE, sealed) == (True, plaintext)


@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(max_size=300), data=st.data())
def test_bulk_chunk_cipher_any_bit_flip_fails_the_tag(
    plaintext: bytes, data: st.DataObject
) -> None:
    sealed = bytearray(_seal(ChunkCipher(KEY), NONCE, plaintext))
    position = data.draw(st.integers(0, len(sealed) - 1), label="position")
    sealed[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    assert _open(BulkChunkCipher(KEY), NONCE, bytes(sealed))[0] is False


def test_bulk_chunk_cipher_refuses_what_chunk_cipher_refuses() -> None:
    bulk = BulkChunkCipher(KEY)
    sealed = _seal(bulk, NONCE, b"abc")
    assert _open(bulk, bytes(12), sealed)[0] is False
    assert _open(BulkChunkCipher(bytes(32)), NONCE, sealed)[0] is False
    assert bulk.open_into(NONCE, memoryview(sealed), memoryview(bytearray(2))) is False
    short = sealed[: TAG_SIZE - 1]
    assert bulk.open_into(NONCE, memoryview(short), memoryview(bytearray(0))) is False
    with pytest.raises(ValueError, match="wrong size"):
        bulk.seal_into(
            NONCE, memoryview(b"abc"), memoryview(bytearray(3 + TAG_SIZE + 1))
        )
    with pytest.raises(ValueError, match="32 bytes"):
        BulkChunkCipher(bytes(31))


def test_random_bytes_returns_requested_length_and_differs() -> None:
    first = _primitives.random_bytes(32)
    assert len(first) == 32
    assert first != _primitives.random_bytes(32)
