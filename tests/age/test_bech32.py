"""Bech32 keys: the codec's encoder/decoder and the age key formats built on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confvault import age
from confvault.age import _bech32
from confvault.errors import KeyFormatError

# The age spec's example pair (C2SP age, "The X25519 recipient type").
SPEC_IDENTITY = (
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
)
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _reference_checksum(hrp: str, values: list[int]) -> list[int]:
    """BIP 173's reference checksum, written out independently of the codec."""
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    for value in [*expanded, *values, 0, 0, 0, 0, 0, 0]:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    polymod = chk ^ 1
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def _reference_encode_values(hrp: str, values: list[int]) -> str:
    checksum = _reference_checksum(hrp, values)
    return hrp + "1" + "".join(CHARSET[v] for v in values + checksum)


# --- the encoder and decoder ----------------------------------------------------

HRP = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"),
    min_size=1,
    max_size=20,
)


@settings(max_examples=50, deadline=None)
@given(hrp=HRP, data=st.binary(max_size=64), upper=st.booleans())
def test_bech32_encode_decode_round_trip(hrp: str, data: bytes, upper: bool) -> None:
    hrp = hrp.upper() if upper and hrp.upper() != hrp.lower() else hrp
    text = _bech32.encode(hrp, data)
    assert _bech32.decode(text) == (hrp, data)
    assert text == (text.upper() if hrp.isupper() else text.lower())


@settings(max_examples=50, deadline=None)
@given(hrp=HRP, data=st.binary(max_size=64))
def test_bech32_encode_matches_reference_checksum(hrp: str, data: bytes) -> None:
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    values = [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]
    assert _bech32.encode(hrp, data) == _reference_encode_values(hrp, values)


def test_bech32_has_no_90_character_limit() -> None:
    data = bytes(range(200))
    text = _bech32.encode("age", data)
    assert len(text) > 90
    assert _bech32.decode(text) == ("age", data)


@pytest.mark.parametrize(
    ("text", "hrp"),
    [
        ("A12UEL5L", "A"),
        ("a12uel5l", "a"),
        (
            "an83characterlonghumanreadablepartthatcontainsthenumber1andthe"
            "excludedcharactersbio1tt5tgs",
            "an83characterlonghumanreadablepartthatcontainsthenumber1andthe"
            "excludedcharactersbio",
        ),
        ("?1ezyfcl", "?"),
    ],
)
def test_bech32_decodes_bip173_valid_strings(text: str, hrp: str) -> None:
    assert _bech32.decode(text) == (hrp, b"")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\x201nwldj5", id="hrp-space"),
        pytest.param("\x7f1axkwrx", id="hrp-del"),
        pytest.param("pzry9x0s0muk", id="no-separator"),
        pytest.param("1pzry9x0s0muk", id="empty-hrp"),
        pytest.param("x1b4n0q5v", id="invalid-data-character"),
        pytest.param("li1dgmt3", id="checksum-too-short"),
        pytest.param("de1lg7wt\xff", id="non-ascii"),
        pytest.param("A1G7SGD8", id="checksum-from-uppercase-hrp"),
        pytest.param("10a06t8", id="empty-hrp-2"),
        pytest.param("1qzzfhee", id="empty-hrp-3"),
        pytest.param("a12uEl5l", id="mixed-case"),
    ],
)
def test_bech32_rejects_bip173_invalid_strings(text: str) -> None:
    with pytest.raises(KeyFormatError):
        _bech32.decode(text)


def test_bech32_rejects_non_zero_padding_bits() -> None:
    # One byte is 8 bits: two 5-bit groups, the last 2 bits must be zero padding.
    assert _bech32.decode(_reference_encode_values("age", [0, 0])) == ("age", b"\x00")
    with pytest.raises(KeyFormatError, match="padding"):
        _bech32.decode(_reference_encode_values("age", [0, 1]))


def test_bech32_rejects_a_whole_extra_group_of_padding() -> None:
    # Three groups are 15 bits: one byte and 7 leftover bits, more than a group.
    with pytest.raises(KeyFormatError, match="padding"):
        _bech32.decode(_reference_encode_values("age", [0, 0, 0]))
    # Five groups are 25 bits: three bytes and one zero padding bit.
    assert _bech32.decode(_reference_encode_values("age", [0] * 5)) == (
        "age",
        bytes(3),
    )


def _reference_from_values(values: list[int]) -> bytes | None:
    """BIP 173's convertbits(5 -> 8, pad=False); None where it refuses."""
    acc = bits = 0
    out = []
    for value in values:
        acc = (acc << 5) | value
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 255)
    if bits >= 5 or (acc << (8 - bits)) & 255:
        return None
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 31), max_size=80))
def test_bech32_decode_accepts_exactly_what_bip173_accepts(values: list[int]) -> None:
    text = _reference_encode_values("age", values)
    expected = _reference_from_values(values)
    if expected is None:
        with pytest.raises(KeyFormatError, match="padding"):
            _bech32.decode(text)
    else:
        assert _bech32.decode(text) == ("age", expected)


# --- the spec's key pair ------------------------------------------------------


def test_spec_identity_corresponds_to_spec_recipient() -> None:
    identity = age.parse_identity(SPEC_IDENTITY)
    assert str(identity.recipient) == SPEC_RECIPIENT
    assert identity.encode() == SPEC_IDENTITY
    assert identity.recipient == age.parse_recipient(SPEC_RECIPIENT)


def test_spec_recipient_round_trips_through_str() -> None:
    assert str(age.parse_recipient(SPEC_RECIPIENT)) == SPEC_RECIPIENT


def test_parse_strips_surrounding_whitespace() -> None:
    identity = age.parse_identity(f"  {SPEC_IDENTITY}\n")
    assert identity.encode() == SPEC_IDENTITY
    assert str(age.parse_recipient(f"\t{SPEC_RECIPIENT} ")) == SPEC_RECIPIENT


def test_identity_repr_never_shows_the_key() -> None:
    identity = age.parse_identity(SPEC_IDENTITY)
    assert SPEC_IDENTITY not in repr(identity)
    assert identity.secret_key.hex() not in repr(identity)
    assert repr(identity.secret_key) not in repr(identity)


@settings(max_examples=25, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32))
def test_generated_keys_round_trip_through_their_strings(secret: bytes) -> None:
    identity = age.X25519Identity(secret)
    encoded = identity.encode()
    assert encoded.startswith("AGE-SECRET-KEY-1")
    assert encoded == encoded.upper()
    assert age.parse_identity(encoded) == identity
    recipient = str(identity.recipient)
    assert recipient.startswith("age1")
    assert age.parse_recipient(recipient) == identity.recipient


def _flip_case(text: str, index: int) -> str:
    return text[:index] + text[index].swapcase() + text[index + 1 :]


@pytest.mark.parametrize("index", [0, 20, -1])
def test_mixed_case_identity_is_rejected(index: int) -> None:
    index %= len(SPEC_IDENTITY)
    with pytest.raises(KeyFormatError, match="case"):
        age.parse_identity(_flip_case(SPEC_IDENTITY, index))


@pytest.mark.parametrize("index", [0, 10, -1])
def test_mixed_case_recipient_is_rejected(index: int) -> None:
    index %= len(SPEC_RECIPIENT)
    with pytest.raises(KeyFormatError, match="case"):
        age.parse_recipient(_flip_case(SPEC_RECIPIENT, index))


@pytest.mark.parametrize("index", [-1, -7, 20, 5])
def test_corrupted_recipient_fails_checksum(index: int) -> None:
    index %= len(SPEC_RECIPIENT)
    old = SPEC_RECIPIENT[index]
    new = CHARSET[(CHARSET.index(old) + 1) % 32]
    corrupted = SPEC_RECIPIENT[:index] + new + SPEC_RECIPIENT[index + 1 :]
    with pytest.raises(KeyFormatError, match="checksum"):
        age.parse_recipient(corrupted)


def test_corrupted_identity_fails_checksum() -> None:
    corrupted = SPEC_IDENTITY[:-1] + ("Q" if SPEC_IDENTITY[-1] != "Q" else "P")
    with pytest.raises(KeyFormatError, match="checksum"):
        age.parse_identity(corrupted)


def test_recipient_given_as_identity_is_rejected_as_wrong_type() -> None:
    with pytest.raises(KeyFormatError, match="not an age X25519 identity"):
        age.parse_identity(SPEC_RECIPIENT)


def test_identity_given_as_recipient_is_rejected_as_wrong_type() -> None:
    with pytest.raises(KeyFormatError, match="not an age X25519 recipient"):
        age.parse_recipient(SPEC_IDENTITY)


def test_unknown_hrp_is_rejected() -> None:
    other = _bech32.encode("ssh", bytes(32))
    with pytest.raises(KeyFormatError):
        age.parse_recipient(other)
    with pytest.raises(KeyFormatError):
        age.parse_identity(other.upper())


@pytest.mark.parametrize("length", [0, 31, 33])
def test_wrong_key_length_is_rejected(length: int) -> None:
    with pytest.raises(KeyFormatError, match="32 bytes"):
        age.parse_recipient(_bech32.encode("age", bytes(length)))
    with pytest.raises(KeyFormatError, match="32 bytes"):
        age.parse_identity(_bech32.encode("AGE-SECRET-KEY-", bytes(length)))


# --- identity and recipient files -----------------------------------------------


def test_parse_identities_skips_comments_and_blank_lines() -> None:
    second = age.X25519Identity(bytes(range(32)))
    text = (
        "# created: 2024-01-01\n"
        f"# public key: {SPEC_RECIPIENT}\n"
        "\n"
        f"{SPEC_IDENTITY}\n"
        "   \t\n"
        "  # indented comment\n"
        f"  {second.encode()}  \r\n"
    )
    assert age.parse_identities(text) == [age.parse_identity(SPEC_IDENTITY), second]


def test_parse_identities_error_names_line_and_hides_the_key() -> None:
    bad_key = SPEC_IDENTITY[:-1] + "Q"
    text = f"# comment\n\n{SPEC_IDENTITY}\n{bad_key}\n"
    with pytest.raises(KeyFormatError) as excinfo:
        age.parse_identities(text)
    message = str(excinfo.value)
    assert "line 4" in message
    assert bad_key not in message
    assert bad_key[16:40] not in message
    assert SPEC_IDENTITY[16:40] not in repr(excinfo.value)
    assert excinfo.value.__cause__ is not None
    assert bad_key[16:40] not in str(excinfo.value.__cause__)


def test_parse_identities_rejects_recipient_line_by_number() -> None:
    with pytest.raises(KeyFormatError, match="line 2"):
        age.parse_identities(f"{SPEC_IDENTITY}\n{SPEC_RECIPIENT}\n")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "  \n# x\n"])
def test_parse_identities_without_keys_is_rejected(text: str) -> None:
    with pytest.raises(KeyFormatError, match="no identities"):
        age.parse_identities(text)


def test_parse_recipients_skips_comments_and_names_bad_line() -> None:
    second = str(age.X25519Identity(bytes(range(32))).recipient)
    text = f"# team\n{SPEC_RECIPIENT}\n\n{second}\n"
    assert [str(r) for r in age.parse_recipients(text)] == [SPEC_RECIPIENT, second]
    with pytest.raises(KeyFormatError, match="line 3") as excinfo:
        age.parse_recipients(f"{SPEC_RECIPIENT}\n# x\nage1notakey\n")
    assert "age1notakey" not in str(excinfo.value)
    with pytest.raises(KeyFormatError, match="no recipients"):
        age.parse_recipients("# nobody\n")
