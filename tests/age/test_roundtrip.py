"""Property tests of the whole codec: round trips, tampering, truncation.

Plaintext is derived from a hypothesis-drawn seed with SHAKE-256, so sizes up
to 65 chunks cost nothing to shrink and every chunk is distinct (a reordered
or repeated chunk could not go unnoticed).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confvault import age
from confvault.age import _format, _stream
from confvault.age.armor import BEGIN, END
from confvault.errors import (
    AgeError,
    ArmorError,
    HeaderError,
    HeaderMacError,
    IncorrectIdentityError,
    NoIdentityMatchError,
    PayloadError,
    ScryptWorkFactorError,
)

CHUNK = _stream.CHUNK_SIZE
RECORD = _stream.ENCRYPTED_CHUNK_SIZE
TAG = RECORD - CHUNK
NONCE = _stream.NONCE_SIZE
BLOCK = _stream._BLOCK_CHUNKS  # chunks per block on the threaded path
FAST_WORK_FACTOR = 10

BOUNDARY_SIZES = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    BLOCK * CHUNK,  # exactly one block: all chunks go through the tail path
    (BLOCK + 1) * CHUNK + 1,  # one threaded block, then a tail of two chunks
]
SMALL_SIZES = st.one_of(
    st.sampled_from([s for s in BOUNDARY_SIZES if s <= 2 * CHUNK]),
    st.integers(0, 3 * CHUNK + 100),
)
SIZES = st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(0, 3 * CHUNK + 100))
SEEDS = st.integers(0, 2**32)

HEADER_FAILURES = (HeaderError, HeaderMacError, NoIdentityMatchError)

IDENTITY = age.X25519Identity.generate()
STRANGER = age.X25519Identity.generate()
PASSPHRASE = b"correct horse battery staple"

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _plaintext(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(seed.to_bytes(8, "big")).digest(size)


def _chunk_count(size: int) -> int:
    return max(1, -(-size // CHUNK))


def _header_len(binary: bytes) -> int:
    src = io.BytesIO(binary)
    _format.parse_header(src)
    return src.tell()


def _decrypt_collect(
    sealed: bytes, identities: list[age.Identity]
) -> tuple[bytes, AgeError | None]:
    """All plaintext released by decrypt_chunks, and the error that ended it."""
    released = bytearray()
    try:
        for chunk in age.decrypt_chunks(io.BytesIO(sealed), identities):
            released += chunk
    except AgeError as err:
        return bytes(released), err
    return bytes(released), None


def _flip(data: bytes, position: int, bit: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 1 << bit
    return bytes(out)


@functools.cache
def _sealed(size: int, armored: bool = False) -> tuple[bytes, bytes]:
    """(plaintext, sealed file) to IDENTITY, cached for the large sizes."""
    data = _plaintext(size, size)
    return data, age.encrypt(data, [IDENTITY.recipient], armored=armored)


class _ReadOnlyTrickle:
    """A source with only ``read()``, returning at most ``step`` bytes a call."""

    def __init__(self, data: bytes, step: int) -> None:
        self._src = io.BytesIO(data)
        self._step = step

    def read(self, n: int = -1) -> bytes:
        limit = self._step if n is None or n < 0 else min(n, self._step)
        return self._src.read(limit)


class _RawTrickle(io.RawIOBase):
    """A raw stream whose ``readinto()`` fills at most ``step`` bytes a call."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__()
        self._src = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)[: self._step]
        return self._src.readinto(view)


def _trickle(data: bytes, step: int, raw: bool) -> object:
    return _RawTrickle(data, step) if raw else _ReadOnlyTrickle(data, step)


# --- round trips -----------------------------------------------------------------


def test_threaded_block_is_64_chunks() -> None:
    # The boundary sizes above are chosen against this constant.
    assert BLOCK == 64
    assert CHUNK == 65536
    assert TAG == 16


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_encrypt_decrypt_round_trip_at_chunk_boundaries(
    size: int, armored: bool
) -> None:
    data, sealed = _sealed(size, armored)
    assert age.decrypt(sealed, [IDENTITY]) == data
    if not armored:
        expected = _header_len(sealed) + NONCE + size + TAG * _chunk_count(size)
        assert len(sealed) == expected


def test_round_trip_over_two_threaded_blocks_and_a_full_final_chunk() -> None:
    # 129 chunks: two whole blocks on the threaded path, then a tail holding
    # only the final chunk, which is full-size.
    size = (2 * BLOCK + 1) * CHUNK
    plaintext = _plaintext(size, 2)
    sealed = age.encrypt(plaintext, [IDENTITY.recipient])
    assert len(sealed) == _header_len(sealed) + NONCE + size + TAG * (2 * BLOCK + 1)
    assert age.decrypt(sealed, [IDENTITY]) == plaintext


@PROPERTY
@given(size=SMALL_SIZES, seed=SEEDS, armored=st.booleans())
def test_encrypt_decrypt_round_trip_any_size(
    size: int, seed: int, armored: bool
) -> None:
    data = _plaintext(size, seed)
    sealed = age.encrypt(data, [IDENTITY.recipient], armored=armored)
    assert sealed.startswith(BEGIN if armored else b"age-encryption.org/v1\n")
    assert age.decrypt(sealed, [IDENTITY]) == data


def test_each_encryption_is_fresh() -> None:
    first = age.encrypt(b"same", [IDENTITY.recipient])
    second = age.encrypt(b"same", [IDENTITY.recipient])
    assert first != second
    assert age.decrypt(first, [IDENTITY]) == age.decrypt(second, [IDENTITY]) == b"same"


@PROPERTY
@given(size=SIZES, seed=SEEDS, data=st.data(), raw=st.booleans())
def test_stream_round_trip_with_short_reads(
    size: int, seed: int, data: st.DataObject, raw: bool
) -> None:
    plaintext = _plaintext(size, seed)
    step = data.draw(st.integers(max(1, size // 64), max(1, size) + 1), label="step")
    sealed = io.BytesIO()
    src = _trickle(plaintext, step, raw)
    assert age.encrypt_stream(src, sealed, [IDENTITY.recipient]) == size  # type: ignore[arg-type]
    assert len(sealed.getvalue()) == (
        _header_len(sealed.getvalue()) + NONCE + size + TAG * _chunk_count(size)
    )
    out = io.BytesIO()
    source = _trickle(sealed.getvalue(), step, raw)
    assert age.decrypt_stream(source, out, [IDENTITY]) == size  # type: ignore[arg-type]
    assert out.getvalue() == plaintext


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_armored_stream_round_trip_at_chunk_boundaries(size: int) -> None:
    plaintext = _plaintext(size, 7)
    sealed = io.BytesIO()
    written = age.encrypt_stream(
        io.BytesIO(plaintext), sealed, [IDENTITY.recipient], armored=True
    )
    assert written == size
    assert sealed.getvalue().endswith(END + b"\n")
    out = io.BytesIO()
    sealed.seek(0)
    assert age.decrypt_stream(sealed, out, [IDENTITY]) == size
    assert out.getvalue() == plaintext


def _write_in_pieces(plaintext: bytes, cuts: list[int], *, armored: bool) -> bytes:
    out = io.BytesIO()
    inside = [c for c in cuts if 0 <= c <= len(plaintext)]
    bounds = sorted({0, len(plaintext), *inside})
    # Repeated cut points are kept as empty writes, which must be harmless.
    bounds += inside[:3]
    bounds.sort()
    kinds = (bytes, bytearray, memoryview)
    with age.EncryptWriter(out, [IDENTITY.recipient], armored=armored) as writer:
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            piece = kinds[index % 3](plaintext[start:end])
            assert writer.write(piece) == end - start
    return out.getvalue()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.parametrize("size", BOUNDARY_SIZES)
@given(data=st.data(), armored=st.booleans())
def test_encrypt_writer_in_pieces_at_chunk_boundaries(
    size: int, data: st.DataObject, armored: bool
) -> None:
    plaintext = _plaintext(size, 3)
    near = st.sampled_from(
        [k * CHUNK + d for k in range(0, BLOCK + 2) for d in (-1, 0, 1)]
    )
    cuts = data.draw(
        st.lists(st.one_of(near, st.integers(0, size)), max_size=20), label="cuts"
    )
    sealed = _write_in_pieces(plaintext, cuts, armored=armored)
    if not armored:
        expected = _header_len(sealed) + NONCE + size + TAG * _chunk_count(size)
        assert len(sealed) == expected
    assert age.decrypt(sealed, [IDENTITY]) == plaintext


@PROPERTY
@given(size=SMALL_SIZES, seed=SEEDS, data=st.data(), armored=st.booleans())
def test_encrypt_writer_in_random_pieces(
    size: int, seed: int, data: st.DataObject, armored: bool
) -> None:
    plaintext = _plaintext(size, seed)
    cuts = data.draw(st.lists(st.integers(0, size), max_size=20), label="cuts")
    sealed = _write_in_pieces(plaintext, cuts, armored=armored)
    assert age.decrypt(sealed, [IDENTITY]) == plaintext


def test_encrypt_writer_closed_twice_seals_once_and_refuses_writes() -> None:
    out = io.BytesIO()
    writer = age.EncryptWriter(out, [IDENTITY.recipient])
    writer.write(b"abc")
    writer.close()
    sealed = out.getvalue()
    writer.close()
    assert out.getvalue() == sealed
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")
    assert age.decrypt(sealed, [IDENTITY]) == b"abc"


def _write_then_fail(out: io.BytesIO, plaintext: bytes, *, armored: bool) -> None:
    with age.EncryptWriter(out, [IDENTITY.recipient], armored=armored) as writer:
        writer.write(plaintext)
        raise RuntimeError("the caller failed mid-stream")


def test_encrypt_writer_left_by_exception_is_not_a_complete_file() -> None:
    plaintext = _plaintext(3 * CHUNK + 5, 9)
    out = io.BytesIO()
    with pytest.raises(RuntimeError, match="mid-stream"):
        _write_then_fail(out, plaintext, armored=False)
    released, err = _decrypt_collect(out.getvalue(), [IDENTITY])
    assert isinstance(err, PayloadError)
    assert released == plaintext[: 3 * CHUNK]


def test_armored_encrypt_writer_left_by_exception_has_no_end_line() -> None:
    out = io.BytesIO()
    with pytest.raises(RuntimeError, match="mid-stream"):
        _write_then_fail(out, b"x" * 1000, armored=True)
    assert END not in out.getvalue()
    with pytest.raises(ArmorError):
        age.decrypt(out.getvalue(), [IDENTITY])


# --- recipients and identities ----------------------------------------------------


@PROPERTY
@given(count=st.integers(2, 5), size=SMALL_SIZES, armored=st.booleans())
def test_multiple_recipients_each_identity_decrypts(
    count: int, size: int, armored: bool
) -> None:
    identities = [age.X25519Identity.generate() for _ in range(count)]
    plaintext = _plaintext(size, count)
    sealed = age.encrypt(plaintext, [i.recipient for i in identities], armored=armored)
    for identity in identities:
        assert age.decrypt(sealed, [identity]) == plaintext
    assert age.decrypt(sealed, [STRANGER, identities[-1]]) == plaintext
    with pytest.raises(NoIdentityMatchError) as excinfo:
        age.decrypt(sealed, [STRANGER])
    assert excinfo.value.stanza_types == ["X25519"]


def test_multiple_recipients_header_has_one_stanza_each() -> None:
    identities = [age.X25519Identity.generate() for _ in range(4)]
    sealed = age.encrypt(b"x", [i.recipient for i in identities])
    header = _format.parse_header(io.BytesIO(sealed))
    assert [s.type for s in header.stanzas] == ["X25519"] * 4
    assert len({s.args for s in header.stanzas}) == 4  # fresh ephemeral shares


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
def test_header_longer_than_the_format_sniff_decrypts(armored: bool) -> None:
    # decrypt_chunks sniffs the first 2048 bytes to detect armor, then replays
    # them; a header of 40 stanzas straddles that boundary.
    identities = [age.X25519Identity.generate() for _ in range(40)]
    plaintext = _plaintext(CHUNK + 1, 40)
    sealed = age.encrypt(plaintext, [i.recipient for i in identities], armored=armored)
    binary = _strict_unarmor(sealed) if armored else sealed
    assert binary is not None
    assert _header_len(binary) > 2048
    assert age.decrypt(sealed, [identities[-1]]) == plaintext
    assert age.decrypt(sealed, [identities[0]]) == plaintext


@pytest.mark.parametrize(
    "public_key",
    [bytes(32), b"\x01" + bytes(31), bytes.fromhex("ec" + "ff" * 30 + "7f")],
    ids=["zero", "one", "p-minus-1"],
)
def test_encrypting_to_a_low_order_recipient_is_refused(public_key: bytes) -> None:
    with pytest.raises(AgeError, match="low-order"):
        age.encrypt(b"x", [age.X25519Recipient(public_key)])


def test_no_recipients_is_rejected() -> None:
    with pytest.raises(AgeError, match="at least one recipient"):
        age.encrypt(b"x", [])


def test_no_identities_is_no_match() -> None:
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(_sealed(1)[1], [])


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1])
def test_scrypt_round_trip(size: int, armored: bool) -> None:
    plaintext = _plaintext(size, 5)
    recipient = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    sealed = age.encrypt(plaintext, [recipient], armored=armored)
    assert age.decrypt(sealed, [age.ScryptIdentity(PASSPHRASE)]) == plaintext
    limit = age.ScryptIdentity(PASSPHRASE, max_work_factor=FAST_WORK_FACTOR)
    assert age.decrypt(sealed, [limit]) == plaintext


@settings(max_examples=10, deadline=None)
@given(passphrase=st.binary(min_size=1, max_size=64), other=st.binary(max_size=64))
def test_scrypt_only_the_right_passphrase_decrypts(
    passphrase: bytes, other: bytes
) -> None:
    recipient = age.ScryptRecipient(passphrase, work_factor=FAST_WORK_FACTOR)
    sealed = age.encrypt(b"secret", [recipient])
    assert age.decrypt(sealed, [age.ScryptIdentity(passphrase)]) == b"secret"
    # HMAC zero-pads its key, so scrypt (PBKDF2 inside) cannot tell b"" from
    # b"\x00": passphrases differing only in trailing NULs are the same key.
    if other.rstrip(b"\x00") != passphrase.rstrip(b"\x00"):
        with pytest.raises(NoIdentityMatchError) as excinfo:
            age.decrypt(sealed, [age.ScryptIdentity(other)])
        assert excinfo.value.stanza_types == ["scrypt"]
        assert all(isinstance(e, IncorrectIdentityError) for e in excinfo.value.errors)


def test_scrypt_wrong_passphrase_is_no_match() -> None:
    recipient = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    sealed = age.encrypt(b"secret", [recipient])
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(sealed, [age.ScryptIdentity(b"wrong passphrase")])


@pytest.mark.parametrize("scrypt_first", [True, False])
def test_scrypt_mixed_with_x25519_recipient_is_rejected(scrypt_first: bool) -> None:
    scrypt = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    recipients: list[age.Recipient] = [scrypt, IDENTITY.recipient]
    if not scrypt_first:
        recipients.reverse()
    with pytest.raises(AgeError, match="only recipient") as excinfo:
        age.encrypt(b"x", recipients)
    assert excinfo.type is AgeError
    with pytest.raises(AgeError, match="only recipient"):
        age.EncryptWriter(io.BytesIO(), recipients)


def test_two_scrypt_recipients_are_rejected() -> None:
    scrypt = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    with pytest.raises(AgeError, match="only recipient"):
        age.encrypt(b"x", [scrypt, scrypt])


def test_scrypt_work_factor_above_limit_is_refused() -> None:
    recipient = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    sealed = age.encrypt(b"secret", [recipient])
    limit = age.ScryptIdentity(PASSPHRASE, max_work_factor=FAST_WORK_FACTOR - 1)
    with pytest.raises(ScryptWorkFactorError) as excinfo:
        age.decrypt(sealed, [limit])
    assert isinstance(excinfo.value, HeaderError)


def test_identity_of_the_other_type_is_no_match() -> None:
    scrypt = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(age.encrypt(b"x", [scrypt]), [IDENTITY])
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(_sealed(1)[1], [age.ScryptIdentity(PASSPHRASE)])


# --- tampering: binary --------------------------------------------------------------


def _assert_binary_flip_outcome(
    plaintext: bytes, sealed: bytes, position: int, released: bytes, err: object
) -> None:
    header_len = _header_len(sealed)
    if position < header_len:
        assert isinstance(err, HEADER_FAILURES), repr(err)
        assert released == b""
        return
    assert isinstance(err, PayloadError), repr(err)
    # Every chunk before the damaged record is genuine and is released.
    damaged = max(0, position - header_len - NONCE) // RECORD
    assert released == plaintext[: damaged * CHUNK]


@PROPERTY
@given(
    size=SMALL_SIZES,
    recipients=st.integers(1, 3),
    data=st.data(),
    bit=st.integers(0, 7),
)
def test_any_bit_flip_in_binary_file_fails_typed(
    size: int, recipients: int, data: st.DataObject, bit: int
) -> None:
    plaintext = _plaintext(size, size)
    others = [age.X25519Identity.generate().recipient for _ in range(recipients - 1)]
    sealed = age.encrypt(plaintext, [*others, IDENTITY.recipient])
    header_len = _header_len(sealed)
    position = data.draw(
        st.one_of(
            st.integers(0, header_len - 1), st.integers(header_len, len(sealed) - 1)
        ),
        label="position",
    )
    released, err = _decrypt_collect(_flip(sealed, position, bit), [IDENTITY])
    assert err is not None, "a tampered file decrypted without error"
    _assert_binary_flip_outcome(plaintext, sealed, position, released, err)


@PROPERTY
@given(data=st.data(), bit=st.integers(0, 7))
def test_any_bit_flip_on_threaded_path_fails_typed(
    data: st.DataObject, bit: int
) -> None:
    plaintext, sealed = _sealed((BLOCK + 1) * CHUNK + 1)
    header_len = _header_len(sealed)
    position = data.draw(
        st.one_of(
            st.integers(0, header_len + NONCE - 1),
            st.integers(header_len, len(sealed) - 1),
            # the last chunk of each half of the first block, and its successor
            st.sampled_from(
                [header_len + NONCE + k * RECORD for k in (31, 32, 63, 64)]
            ),
        ),
        label="position",
    )
    released, err = _decrypt_collect(_flip(sealed, position, bit), [IDENTITY])
    assert err is not None, "a tampered file decrypted without error"
    _assert_binary_flip_outcome(plaintext, sealed, position, released, err)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), bit=st.integers(0, 7))
def test_any_bit_flip_in_scrypt_file_fails_typed(data: st.DataObject, bit: int) -> None:
    plaintext = _plaintext(CHUNK + 3, 11)
    recipient = age.ScryptRecipient(PASSPHRASE, work_factor=FAST_WORK_FACTOR)
    sealed = age.encrypt(plaintext, [recipient])
    header_len = _header_len(sealed)
    position = data.draw(
        st.one_of(
            st.integers(0, header_len - 1), st.integers(header_len, len(sealed) - 1)
        ),
        label="position",
    )
    # The limit keeps a flipped work factor ("10" -> "18") from costing seconds.
    identity = age.ScryptIdentity(PASSPHRASE, max_work_factor=FAST_WORK_FACTOR)
    released, err = _decrypt_collect(_flip(sealed, position, bit), [identity])
    assert err is not None, "a tampered file decrypted without error"
    _assert_binary_flip_outcome(plaintext, sealed, position, released, err)


# --- tampering: armored ---------------------------------------------------------

_B64_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2}")


def _strict_unarmor(text: bytes) -> bytes | None:
    """The binary inside ``text`` if it is strict PEM as the spec defines, else None.

    Written independently of the codec's reader; LF line endings only.
    """
    lines = text.split(b"\n")
    if len(lines) < 4 or lines[0] != BEGIN or lines[-2:] != [END, b""]:
        return None
    body = lines[1:-2]
    decoded = []
    for index, line in enumerate(body):
        last = index == len(body) - 1
        if not _B64_LINE.fullmatch(line) or len(line) % 4 or len(line) > 64:
            return None
        if not last and (len(line) != 64 or b"=" in line):
            return None
        chunk = base64.b64decode(line)
        if base64.b64encode(chunk) != line:
            return None
        decoded.append(chunk)
    return b"".join(decoded)


def _first_difference(a: bytes, b: bytes) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


@PROPERTY
@given(size=st.sampled_from([0, 1, 500, CHUNK, CHUNK + 1]), data=st.data())
def test_any_bit_flip_in_armored_file_fails_typed(
    size: int, data: st.DataObject
) -> None:
    plaintext, armored = _sealed(size, armored=True)
    binary = _strict_unarmor(armored)
    assert binary is not None
    header_len = _header_len(binary)
    # Where the header's last byte lands in the armor (48 bytes a line).
    header_end = len(BEGIN) + 1 + header_len // 48 * 65 + header_len % 48 * 4 // 3
    position = data.draw(
        st.one_of(
            st.integers(0, header_end),
            st.integers(0, len(armored) - 1),
            st.integers(len(armored) - len(END) - 70, len(armored) - 1),
        ),
        label="position",
    )
    bit = data.draw(st.integers(0, 7), label="bit")
    tampered = _flip(armored, position, bit)
    released, err = _decrypt_collect(tampered, [IDENTITY])
    assert err is not None, "a tampered file decrypted without error"
    if position <= len(BEGIN):
        # A damaged BEGIN line: not armor at all, or armor that is malformed.
        assert isinstance(err, (ArmorError, HeaderError)), repr(err)
        assert released == b""
        return
    inner = _strict_unarmor(tampered)
    if inner is None:
        assert isinstance(err, ArmorError), repr(err)
        assert plaintext.startswith(released)
        return
    changed = _first_difference(inner, binary)
    if changed < header_len:
        assert isinstance(err, HEADER_FAILURES), repr(err)
        assert released == b""
    else:
        assert isinstance(err, PayloadError), repr(err)
        damaged = max(0, changed - header_len - NONCE) // RECORD
        assert released == plaintext[: damaged * CHUNK]


# --- truncation and trailing data -------------------------------------------------


def _assert_binary_truncation_outcome(
    plaintext: bytes, sealed: bytes, cut: int, released: bytes, err: object
) -> None:
    header_len = _header_len(sealed)
    if cut < header_len + NONCE:
        assert isinstance(err, HeaderError), repr(err)
        assert released == b""
        return
    assert isinstance(err, PayloadError), repr(err)
    whole_records = (cut - header_len - NONCE) // RECORD
    assert released == plaintext[: whole_records * CHUNK]


@PROPERTY
@given(size=SMALL_SIZES, data=st.data())
def test_truncated_binary_file_fails_typed_and_releases_a_prefix(
    size: int, data: st.DataObject
) -> None:
    plaintext = _plaintext(size, size)
    sealed = age.encrypt(plaintext, [IDENTITY.recipient])
    header_len = _header_len(sealed)
    cut = data.draw(
        st.one_of(
            st.integers(0, len(sealed) - 1),
            st.integers(header_len - 2, header_len + NONCE + 1),
            st.sampled_from(
                [
                    header_len + NONCE + k * RECORD + d
                    for k in range(4)
                    for d in (-1, 0, 1)
                ]
            ).filter(lambda c: c < len(sealed)),
        ),
        label="cut",
    )
    released, err = _decrypt_collect(sealed[:cut], [IDENTITY])
    assert err is not None, "a truncated file decrypted without error"
    _assert_binary_truncation_outcome(plaintext, sealed, cut, released, err)


@PROPERTY
@given(data=st.data())
def test_truncated_file_on_threaded_path_fails_typed(data: st.DataObject) -> None:
    plaintext, sealed = _sealed((BLOCK + 1) * CHUNK + 1)
    start = _header_len(sealed) + NONCE
    cut = data.draw(
        st.one_of(
            st.integers(0, len(sealed) - 1),
            st.sampled_from(
                [start + k * RECORD + d for k in (63, 64, 65) for d in (-1, 0, 1)]
            ),
        ),
        label="cut",
    )
    released, err = _decrypt_collect(sealed[:cut], [IDENTITY])
    assert err is not None, "a truncated file decrypted without error"
    _assert_binary_truncation_outcome(plaintext, sealed, cut, released, err)


@PROPERTY
@given(size=st.sampled_from([0, 1, CHUNK, 2 * CHUNK + 7]), data=st.data())
def test_truncated_armored_file_fails_typed_and_releases_a_prefix(
    size: int, data: st.DataObject
) -> None:
    plaintext, armored = _sealed(size, armored=True)
    # Dropping only the final newline leaves a valid file (see test_armor).
    cut = data.draw(st.integers(0, len(armored) - 2), label="cut")
    released, err = _decrypt_collect(armored[:cut], [IDENTITY])
    expected = HeaderError if cut < len(b"-----BEGIN") else ArmorError
    assert isinstance(err, expected), repr(err)
    assert plaintext.startswith(released)


@PROPERTY
@given(size=SMALL_SIZES, length=st.integers(1, 2 * RECORD + 3), seed=SEEDS)
def test_trailing_data_fails_with_payload_error(
    size: int, length: int, seed: int
) -> None:
    plaintext = _plaintext(size, size)
    sealed = age.encrypt(plaintext, [IDENTITY.recipient])
    released, err = _decrypt_collect(sealed + _plaintext(length, seed), [IDENTITY])
    assert isinstance(err, PayloadError), repr(err)
    assert plaintext.startswith(released)


@pytest.mark.parametrize("size", [BLOCK * CHUNK, (BLOCK + 1) * CHUNK + 1])
@pytest.mark.parametrize(
    "length", [1, TAG, RECORD, BLOCK * RECORD, (BLOCK + 1) * RECORD]
)
def test_trailing_data_on_threaded_path_fails_with_payload_error(
    size: int, length: int
) -> None:
    plaintext, sealed = _sealed(size)
    released, err = _decrypt_collect(sealed + bytes(length), [IDENTITY])
    assert isinstance(err, PayloadError), repr(err)
    assert plaintext.startswith(released)


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1])
def test_appended_copy_of_last_record_fails_with_payload_error(size: int) -> None:
    _, sealed = _sealed(size)
    last = (len(sealed) - _header_len(sealed) - NONCE) % RECORD or RECORD
    with pytest.raises(PayloadError):
        age.decrypt(sealed + sealed[-last:], [IDENTITY])


def test_appended_second_sealed_file_fails_with_payload_error() -> None:
    _, sealed = _sealed(1)
    with pytest.raises(PayloadError):
        age.decrypt(sealed + sealed, [IDENTITY])


def test_header_is_checked_before_any_chunk_is_released() -> None:
    _, sealed = _sealed(2 * CHUNK)
    header_len = _header_len(sealed)
    mac_position = header_len - 5  # inside the MAC's base64
    tampered = _flip(sealed, mac_position, 0)
    released, err = _decrypt_collect(tampered, [IDENTITY])
    assert isinstance(err, (HeaderMacError, HeaderError)), repr(err)
    assert released == b""
