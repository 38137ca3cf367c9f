"""Opening a file with its kept file key: ``encrypt_keyed`` / ``decrypt_with_file_key``.

The vault keeps each note's file key inside the client's sealed index so that
a search or a rotation skips the X25519 unwrap. The key must open exactly its
own file, and every alteration must still be caught.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confvault import age
from confvault.age import _format, _stream
from confvault.errors import AgeError, HeaderError, HeaderMacError, PayloadError

CHUNK = _stream.CHUNK_SIZE
IDENTITY = age.X25519Identity.generate()
SIZES = [0, 1, 3000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5]
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _plaintext(size: int) -> bytes:
    return hashlib.shake_256(size.to_bytes(8, "big")).digest(size)


def _header_len(binary: bytes) -> int:
    src = io.BytesIO(binary)
    _format.parse_header(src)
    return src.tell()


@pytest.mark.parametrize("size", SIZES)
def test_kept_file_key_opens_the_file_like_the_identity(size: int) -> None:
    plaintext = _plaintext(size)
    sealed, file_key = age.encrypt_keyed(plaintext, [IDENTITY.recipient])
    assert len(file_key) == 16
    assert age.decrypt(sealed, [IDENTITY]) == plaintext
    assert age.decrypt_with_file_key(sealed, file_key) == plaintext


def test_file_key_is_fresh_for_every_file_and_opens_only_its_own() -> None:
    first, first_key = age.encrypt_keyed(b"same", [IDENTITY.recipient])
    second, second_key = age.encrypt_keyed(b"same", [IDENTITY.recipient])
    assert first_key != second_key
    with pytest.raises(HeaderMacError):
        age.decrypt_with_file_key(second, first_key)
    assert age.decrypt_with_file_key(first, first_key) == b"same"


def test_file_key_works_with_several_recipients() -> None:
    others = [age.X25519Identity.generate() for _ in range(3)]
    sealed, file_key = age.encrypt_keyed(b"shared", [i.recipient for i in others])
    assert age.decrypt_with_file_key(sealed, file_key) == b"shared"
    assert all(age.decrypt(sealed, [i]) == b"shared" for i in others)


@pytest.mark.parametrize("bad", [b"", bytes(15), bytes(17)])
def test_file_key_of_the_wrong_length_is_refused(bad: bytes) -> None:
    sealed, _ = age.encrypt_keyed(b"x", [IDENTITY.recipient])
    with pytest.raises(HeaderError, match="16 bytes"):
        age.decrypt_with_file_key(sealed, bad)


def test_armored_file_is_refused() -> None:
    armored = age.encrypt(b"x", [IDENTITY.recipient], armored=True)
    with pytest.raises(HeaderError, match="binary"):
        age.decrypt_with_file_key(armored, bytes(16))


def test_stanza_swapped_for_another_recipient_is_caught_by_the_mac() -> None:
    # Same file key, but the header names a different recipient: the MAC
    # covers the stanzas, so the header cannot be re-pointed unnoticed.
    sealed, file_key = age.encrypt_keyed(b"note", [IDENTITY.recipient])
    other, _ = age.encrypt_keyed(b"note", [age.X25519Identity.generate().recipient])
    spliced = other[: _header_len(other)] + sealed[_header_len(sealed) :]
    with pytest.raises(HeaderMacError):
        age.decrypt_with_file_key(spliced, file_key)


@PROPERTY
@given(size=st.sampled_from(SIZES), data=st.data(), bit=st.integers(0, 7))
def test_any_bit_flip_fails_typed_and_releases_nothing(
    size: int, data: st.DataObject, bit: int
) -> None:
    plaintext = _plaintext(size)
    sealed, file_key = age.encrypt_keyed(plaintext, [IDENTITY.recipient])
    header_len = _header_len(sealed)
    position = data.draw(st.integers(0, len(sealed) - 1), label="position")
    damaged = bytearray(sealed)
    damaged[position] ^= 1 << bit
    with pytest.raises(AgeError) as caught:
        age.decrypt_with_file_key(bytes(damaged), file_key)
    if position < header_len:
        assert isinstance(caught.value, (HeaderError, HeaderMacError))
    else:
        assert isinstance(caught.value, (HeaderError, PayloadError))


@PROPERTY
@given(size=st.sampled_from(SIZES), data=st.data())
def test_any_truncation_fails_typed(size: int, data: st.DataObject) -> None:
    sealed, file_key = age.encrypt_keyed(_plaintext(size), [IDENTITY.recipient])
    cut = data.draw(st.integers(0, len(sealed) - 1), label="cut")
    with pytest.raises((HeaderError, HeaderMacError, PayloadError)):
        age.decrypt_with_file_key(sealed[:cut], file_key)


def test_data_after_the_final_chunk_fails() -> None:
    sealed, file_key = age.encrypt_keyed(b"note", [IDENTITY.recipient])
    with pytest.raises(PayloadError):
        age.decrypt_with_file_key(sealed + b"\x00", file_key)
