"""The age v1 header: canonical stanza encoding and strict parsing."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confvault.age import _format
from confvault.age._format import (
    MAX_LINE,
    MAX_STANZAS,
    Stanza,
    b64decode,
    b64encode,
    marshal_mac,
    marshal_without_mac,
    parse_header,
)
from confvault.errors import HeaderError

MAC = bytes(range(32))
MAC_LINE = b"--- " + b64encode(MAC).encode() + b"\n"


def _header(*stanza_bytes: bytes, mac_line: bytes = MAC_LINE) -> bytes:
    return b"age-encryption.org/v1\n" + b"".join(stanza_bytes) + mac_line


# --- Stanza.marshal -------------------------------------------------------------


def test_marshal_empty_body_is_argument_line_and_empty_final_line() -> None:
    assert Stanza("X", ("a", "b")).marshal() == b"-> X a b\n\n"


def test_marshal_47_byte_body_is_one_63_column_line() -> None:
    body = bytes(range(47))
    assert Stanza("t", (), body).marshal() == (
        b"-> t\n" + b64encode(body).encode() + b"\n"
    )
    assert len(b64encode(body)) == 63


def test_marshal_48_byte_body_is_full_line_and_empty_final_line() -> None:
    body = bytes(range(48))
    encoded = b64encode(body).encode()
    assert len(encoded) == 64
    assert Stanza("t", (), body).marshal() == b"-> t\n" + encoded + b"\n\n"


def test_marshal_49_byte_body_is_full_line_and_2_column_final_line() -> None:
    body = bytes(range(49))
    encoded = b64encode(body).encode()
    lines = Stanza("t", (), body).marshal().split(b"\n")
    assert lines == [b"-> t", encoded[:64], encoded[64:], b""]
    assert len(lines[2]) == 2


def test_marshal_96_byte_body_is_two_full_lines_and_empty_final_line() -> None:
    body = bytes(range(96))
    encoded = b64encode(body).encode()
    lines = Stanza("t", (), body).marshal().split(b"\n")
    assert lines == [b"-> t", encoded[:64], encoded[64:], b"", b""]


@pytest.mark.parametrize("word", ["", "has space", "tab\t", "nl\n", "del\x7f"])
def test_marshal_rejects_invalid_argument(word: str) -> None:
    with pytest.raises(HeaderError):
        Stanza("t", (word,)).marshal()
    with pytest.raises(HeaderError):
        Stanza(word).marshal()


@pytest.mark.parametrize(
    "word",
    [
        pytest.param("caf\u00e9", id="latin-1"),
        pytest.param("\u2603", id="bmp"),
        pytest.param("\U0001f512", id="astral"),
        # What os.fsdecode() makes of a non-UTF-8 file name byte.
        pytest.param("key-\udcff", id="lone-surrogate"),
    ],
)
def test_marshal_rejects_non_ascii_argument_with_header_error(word: str) -> None:
    # Every encoding failure must surface as the codec's own HeaderError, never
    # as a bare UnicodeEncodeError escaping the confvault error hierarchy.
    with pytest.raises(HeaderError):
        Stanza("t", (word,)).marshal()
    with pytest.raises(HeaderError):
        Stanza(word).marshal()


@settings(max_examples=50, deadline=None)
@given(
    word=st.text(alphabet=st.characters(exclude_categories=()), min_size=0, max_size=8)
)
def test_marshal_any_argument_round_trips_or_raises_header_error(word: str) -> None:
    stanza = Stanza("t", (word,), b"body")
    try:
        encoded = stanza.marshal()
    except HeaderError:
        assert not word or not word.isascii() or not word.isprintable() or " " in word
        return
    header = parse_header(io.BytesIO(b"age-encryption.org/v1\n" + encoded + MAC_LINE))
    assert header.stanzas == (stanza,)


def test_marshal_accepts_every_visible_ascii_character() -> None:
    word = "".join(chr(c) for c in range(0x21, 0x7F))
    assert Stanza(word, (word,)).marshal() == f"-> {word} {word}\n\n".encode()


# --- parse_header round trip ----------------------------------------------------

ARGUMENT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
    min_size=1,
    max_size=20,
)
STANZAS = st.lists(
    st.builds(
        Stanza,
        ARGUMENT,
        st.lists(ARGUMENT, max_size=3).map(tuple),
        st.binary(max_size=200),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=50, deadline=None)
@given(stanzas=STANZAS, mac=st.binary(min_size=32, max_size=32))
def test_parse_header_round_trips_marshal_output(
    stanzas: list[Stanza], mac: bytes
) -> None:
    without_mac = marshal_without_mac(stanzas)
    src = io.BytesIO(without_mac + marshal_mac(mac) + b"payload")
    header = parse_header(src)
    assert header.stanzas == tuple(stanzas)
    assert header.mac == mac
    assert header.mac_input == without_mac
    assert src.read() == b"payload"


def test_marshal_without_mac_ends_at_the_three_dashes() -> None:
    out = marshal_without_mac([Stanza("t")])
    assert out == b"age-encryption.org/v1\n-> t\n\n---"
    assert marshal_mac(MAC) == b" " + b64encode(MAC).encode() + b"\n"


def test_parse_header_accepts_body_line_of_exactly_64_columns_then_short() -> None:
    body = bytes(range(48))
    raw = _header(b"-> t\n" + b64encode(body).encode() + b"\n\n")
    header = parse_header(io.BytesIO(raw))
    assert header.stanzas == (Stanza("t", (), body),)


# --- base64 ---------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=100))
def test_b64_round_trips_without_padding(data: bytes) -> None:
    encoded = b64encode(data)
    assert "=" not in encoded
    assert b64decode(encoded) == data
    assert b64decode(encoded.encode()) == data


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("AA==", id="padding"),
        pytest.param("AAA=", id="single-padding"),
        pytest.param("AB", id="non-canonical-trailing-bits"),
        pytest.param("AAB", id="non-canonical-two-bytes"),
        pytest.param("AAAAA", id="impossible-length"),
        pytest.param("A*", id="invalid-character"),
        pytest.param("A-", id="url-safe-minus"),
        pytest.param("A_", id="url-safe-underscore"),
        pytest.param("AA AA", id="space"),
        pytest.param("AAAA\nAAAA", id="newline"),
        pytest.param("AAAA\r", id="carriage-return"),
        pytest.param("A\u00e9", id="non-ascii"),
    ],
)
def test_b64decode_rejects_non_canonical_or_invalid(text: str) -> None:
    with pytest.raises(HeaderError):
        b64decode(text)


def test_b64decode_accepts_canonical_short_forms() -> None:
    assert b64decode("") == b""
    assert b64decode("AA") == b"\x00"
    assert b64decode("AAA") == b"\x00\x00"
    assert b64decode("/w") == b"\xff"


# --- header parsing failures ----------------------------------------------------


def test_parse_header_accepts_exactly_max_stanzas() -> None:
    raw = _header(b"-> t\n\n" * MAX_STANZAS)
    assert len(parse_header(io.BytesIO(raw)).stanzas) == MAX_STANZAS


def test_parse_header_rejects_too_many_stanzas() -> None:
    raw = _header(b"-> t\n\n" * (MAX_STANZAS + 1))
    with pytest.raises(HeaderError, match="too many stanzas"):
        parse_header(io.BytesIO(raw))


def test_parse_header_accepts_line_of_max_length() -> None:
    arg_line = b"-> " + b"a" * (MAX_LINE - 4) + b"\n"
    assert len(arg_line) == MAX_LINE
    header = parse_header(io.BytesIO(_header(arg_line + b"\n")))
    assert header.stanzas[0].type == "a" * (MAX_LINE - 4)


def test_parse_header_rejects_too_long_line() -> None:
    arg_line = b"-> " + b"a" * (MAX_LINE - 3) + b"\n"
    with pytest.raises(HeaderError, match="too long"):
        parse_header(io.BytesIO(_header(arg_line + b"\n")))


def test_parse_header_rejects_header_larger_than_limit() -> None:
    stanza = b"-> " + b"a" * 8000 + b"\n\n"
    count = _format.MAX_HEADER // len(stanza) + 1
    assert count < MAX_STANZAS
    with pytest.raises(HeaderError, match="too large"):
        parse_header(io.BytesIO(_header(stanza * count)))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"", "bad version", id="empty"),
        pytest.param(b"age-encryption.org/v2\n-> t\n\n", "unsupported", id="v2"),
        pytest.param(b"age-encryption.org/v1", "version", id="no-newline"),
        pytest.param(b"age-encryption.org/v1\n---", "truncated", id="mac-cut"),
        pytest.param(_header(), "no recipient", id="no-stanzas"),
        pytest.param(_header(b"-> t\n"), "missing its final", id="no-body-line"),
        pytest.param(
            b"age-encryption.org/v1\n-> t\n", "truncated", id="eof-after-stanza"
        ),
        pytest.param(
            _header(b"-> t\n" + b"A" * 64 + b"\n"),
            "missing its final",
            id="full-body-line-then-mac",
        ),
        pytest.param(
            _header(b"-> t\n" + b"A" * 65 + b"\n"),
            "longer than 64",
            id="body-line-65-columns",
        ),
        pytest.param(_header(b"-> t\nAA==\n"), "padding", id="body-padding"),
        pytest.param(_header(b"-> t\nAB\n"), "non-canonical", id="body-non-canonical"),
        pytest.param(_header(b"-> \n\n"), "argument", id="empty-type"),
        pytest.param(_header(b"-> t  a\n\n"), "argument", id="double-space"),
        pytest.param(_header(b"-> t a \n\n"), "argument", id="trailing-space"),
        pytest.param(_header(b"-> t\r\n\n"), "argument", id="crlf-argument-line"),
        pytest.param(_header(b"-> t\n\r\n"), "base64", id="crlf-body-line"),
        pytest.param(_header(b"->t\n\n"), "unexpected line", id="no-space-arrow"),
        pytest.param(
            _header(b"-> t\n\n", mac_line=b"---\n"), "unexpected line", id="mac-bare"
        ),
        pytest.param(
            _header(b"-> t\n\n", mac_line=b"--- " + b"A" * 42 + b"\n"),
            "wrong length",
            id="mac-short",
        ),
        pytest.param(
            _header(b"-> t\n\n", mac_line=b"--- " + b"A" * 44 + b"\n"),
            "wrong length",
            id="mac-long",
        ),
        pytest.param(
            _header(b"-> t\n\n", mac_line=b"--- " + b"A" * 42 + b"B\n"),
            "non-canonical",
            id="mac-non-canonical",
        ),
        pytest.param(
            _header(b"-> t\n\n", mac_line=MAC_LINE[:-1] + b" \n"),
            "wrong length",
            id="mac-trailing-space",
        ),
    ],
)
def test_parse_header_rejects_malformed_header(raw: bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        parse_header(io.BytesIO(raw))
