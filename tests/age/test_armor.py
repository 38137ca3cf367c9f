"""ASCII armor: strict PEM encoding of age files (C2SP age, "ASCII armor")."""

from __future__ import annotations

import base64
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confvault import age
from confvault.age import armor
from confvault.age.armor import BEGIN, END, ArmorWriter, open_armored
from confvault.errors import ArmorError, HeaderError

IDENTITY = age.X25519Identity(bytes(range(1, 33)))
PLAINTEXT = b"session notes, 2024-03-01\n" * 7


def _read(data: bytes) -> bytes:
    return open_armored(io.BytesIO(data)).read()


def _sealed_armored() -> bytes:
    return age.encrypt(PLAINTEXT, [IDENTITY.recipient], armored=True)


# --- the writer -------------------------------------------------------------


def test_armor_of_48_bytes_is_one_full_line() -> None:
    assert armor.armor(bytes(48)) == BEGIN + b"\n" + b"A" * 64 + b"\n" + END + b"\n"


def test_armor_of_one_byte_is_one_padded_line() -> None:
    assert armor.armor(b"\xff") == BEGIN + b"\n/w==\n" + END + b"\n"


def test_armor_of_nothing_is_begin_and_end_only_and_is_not_readable() -> None:
    assert armor.armor(b"") == BEGIN + b"\n" + END + b"\n"
    with pytest.raises(ArmorError, match="no data"):
        _read(armor.armor(b""))


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=400))
def test_armor_output_layout(data: bytes) -> None:
    out = armor.armor(data)
    assert out.endswith(b"\n")
    lines = out[:-1].split(b"\n")
    assert lines[0] == BEGIN
    assert lines[-1] == END
    body = lines[1:-1]
    assert all(len(line) == 64 for line in body[:-1])
    assert 0 < len(body[-1]) <= 64
    assert b"".join(body) == base64.b64encode(data)
    assert len(body) == -(-len(data) // 48)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=400), cuts=st.lists(st.integers(0, 400)))
def test_armor_writer_in_pieces_matches_one_shot(data: bytes, cuts: list[int]) -> None:
    out = io.BytesIO()
    writer = ArmorWriter(out)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, end in itertools.pairwise(bounds):
        assert writer.write(data[start:end]) == end - start
    writer.finish()
    writer.finish()  # idempotent: one END line only
    assert out.getvalue() == armor.armor(data)


def test_armor_writer_without_finish_writes_no_end_line() -> None:
    out = io.BytesIO()
    writer = ArmorWriter(out)
    writer.write(bytes(100))
    assert END not in out.getvalue()
    assert out.getvalue().startswith(BEGIN + b"\n")


# --- the reader: round trips and tolerated variations ---------------------------


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=400))
def test_armor_round_trip(data: bytes) -> None:
    assert _read(armor.armor(data)) == data


def test_sealed_armored_file_has_armor_layout_and_decrypts() -> None:
    sealed = _sealed_armored()
    assert sealed.startswith(BEGIN + b"\n")
    assert sealed.endswith(END + b"\n")
    assert _read(sealed).startswith(b"age-encryption.org/v1\n")
    assert age.decrypt(sealed, [IDENTITY]) == PLAINTEXT


def test_armoring_a_binary_file_decrypts() -> None:
    binary = age.encrypt(PLAINTEXT, [IDENTITY.recipient])
    assert age.decrypt(armor.armor(binary), [IDENTITY]) == PLAINTEXT


def test_sealing_armored_equals_armoring_the_binary_file() -> None:
    sealed = _sealed_armored()
    assert armor.armor(_read(sealed)) == sealed


def test_crlf_line_endings_are_accepted() -> None:
    sealed = _sealed_armored().replace(b"\n", b"\r\n")
    assert age.decrypt(sealed, [IDENTITY]) == PLAINTEXT


def test_missing_final_newline_is_accepted() -> None:
    assert age.decrypt(_sealed_armored()[:-1], [IDENTITY]) == PLAINTEXT


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"\n", b""),
        (b"  \t\r\n\n", b""),
        (b"", b"\n\n"),
        (b"", b" \t\r\n  "),
        (b"\r\n\t ", b"\n \n"),
    ],
)
def test_surrounding_whitespace_is_accepted(before: bytes, after: bytes) -> None:
    sealed = before + _sealed_armored() + after
    assert age.decrypt(sealed, [IDENTITY]) == PLAINTEXT


# --- the reader: rejections -------------------------------------------------------


@pytest.mark.parametrize(
    "garbage", [b"garbage\n", b"x", b"\x00\n", b"-----BEGIN PGP MESSAGE-----\n"]
)
def test_garbage_before_begin_is_rejected(garbage: bytes) -> None:
    with pytest.raises(ArmorError):
        age.decrypt(garbage + _sealed_armored(), [IDENTITY])


@pytest.mark.parametrize(
    "garbage", [b"garbage\n", b"x", b"\n\nx", b"\x00", b"  \n" + END + b"\n"]
)
def test_garbage_after_end_is_rejected(garbage: bytes) -> None:
    with pytest.raises(ArmorError):
        age.decrypt(_sealed_armored() + garbage, [IDENTITY])


def test_too_much_surrounding_whitespace_is_rejected() -> None:
    with pytest.raises(ArmorError, match="whitespace"):
        age.decrypt(b" " * 1100 + _sealed_armored(), [IDENTITY])
    with pytest.raises(ArmorError):
        age.decrypt(_sealed_armored() + b"\n" * 2000, [IDENTITY])


def test_missing_end_line_is_rejected() -> None:
    sealed = _sealed_armored()
    without_end = sealed[: sealed.index(END)]
    with pytest.raises(ArmorError, match="END"):
        age.decrypt(without_end, [IDENTITY])


def test_every_truncation_of_the_armor_is_rejected_by_the_reader() -> None:
    sealed = _sealed_armored()
    # Dropping only the final newline leaves a valid file; any shorter cut
    # loses the END line (or more) and must fail.
    for cut in range(len(sealed) - 1):
        with pytest.raises(ArmorError):
            _read(sealed[:cut])


def test_every_truncation_of_the_armor_fails_decryption_with_a_typed_error() -> None:
    sealed = _sealed_armored()
    for cut in range(len(sealed) - 1):
        # Too short to recognise as armor at all: "not an age file".
        expected = HeaderError if cut < len(b"-----BEGIN") else ArmorError
        with pytest.raises(expected):
            age.decrypt(sealed[:cut], [IDENTITY])


def _replace_line(sealed: bytes, index: int, new: bytes) -> bytes:
    lines = sealed.split(b"\n")
    lines[index] = new
    return b"\n".join(lines)


def _body_lines(sealed: bytes) -> list[bytes]:
    return sealed.split(b"\n")[1:-2]


def test_line_longer_than_64_columns_is_rejected() -> None:
    sealed = _sealed_armored()
    first, second = _body_lines(sealed)[:2]
    merged = sealed.replace(
        first + b"\n" + second, first + second[:4] + b"\n" + second[4:]
    )
    with pytest.raises(ArmorError):
        age.decrypt(merged, [IDENTITY])


def test_short_line_before_the_last_is_rejected() -> None:
    sealed = _sealed_armored()
    first = _body_lines(sealed)[0]
    split = sealed.replace(first, first[:32] + b"\n" + first[32:], 1)
    with pytest.raises(ArmorError, match="short line"):
        age.decrypt(split, [IDENTITY])


@pytest.mark.parametrize(
    ("line", "transform"),
    [
        pytest.param(1, lambda line: line + b" ", id="trailing-space"),
        pytest.param(1, lambda line: b" " + line[:-1], id="leading-space"),
        pytest.param(1, lambda line: line[:10] + b"*" + line[11:], id="invalid-char"),
        pytest.param(-3, lambda line: line.rstrip(b"="), id="missing-padding"),
        pytest.param(-3, lambda line: line + b"\n", id="empty-last-line"),
        pytest.param(1, lambda line: b"\n" + line, id="empty-first-line"),
        pytest.param(0, lambda line: line + b" ", id="begin-trailing-space"),
        pytest.param(-2, lambda line: b" " + line, id="end-leading-space"),
        pytest.param(0, lambda line: line.replace(b"AGE", b"PGP"), id="wrong-type"),
    ],
)
def test_non_strict_pem_is_rejected(line: int, transform: object) -> None:
    sealed = _sealed_armored()
    lines = sealed.split(b"\n")
    assert callable(transform)
    tampered = _replace_line(sealed, line % len(lines), transform(lines[line]))
    with pytest.raises(ArmorError):
        age.decrypt(tampered, [IDENTITY])


def test_non_canonical_padding_bits_are_rejected() -> None:
    # "/w==" encodes 0xff; "/x==" decodes to the same byte with non-zero
    # padding bits, which strict PEM forbids.
    with pytest.raises(ArmorError, match="canonical"):
        _read(BEGIN + b"\n/x==\n" + END + b"\n")
    assert _read(BEGIN + b"\n/w==\n" + END + b"\n") == b"\xff"


def test_padding_in_a_full_line_must_end_the_data() -> None:
    padded_full = base64.b64encode(bytes(47))  # 64 columns ending in "="
    assert len(padded_full) == 64
    assert padded_full.endswith(b"=")
    assert _read(BEGIN + b"\n" + padded_full + b"\n" + END + b"\n") == bytes(47)
    with pytest.raises(ArmorError):
        _read(BEGIN + b"\n" + padded_full + b"\nAAAA\n" + END + b"\n")
