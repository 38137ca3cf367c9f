"""Fuzzing the parsers with hypothesis: any input either parses or raises a
typed confvault error; nothing else escapes. CI runs a bounded number of
examples; `CONFVAULT_FUZZ_EXAMPLES=100000 pytest tests/age/test_fuzz.py`
runs a long session."""

from __future__ import annotations

import contextlib
import io
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confvault import age
from confvault.age import _format, armor
from confvault.errors import ConfvaultError
from confvault.vault.model import note_format
from confvault.vault.model.index import NoteEntry
from confvault.vault.store import manifest, sealing

EXAMPLES = int(os.environ.get("CONFVAULT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
IDENTITY = age.X25519Identity.generate()
# The index entry body_recorded checks a note against (body size 0, a zero hash).
_ENTRY = NoteEntry.of(
    note_format.NoteMeta(
        *("0" * 16, "0" * 16, "progress", "t", "d", "c", "draft"), 0, "0" * 64, ""
    ),
    "0" * 64,
    None,
)
VALID = age.encrypt(b"fuzz payload " * 50, [IDENTITY.recipient])
ARMORED = age.encrypt(b"fuzz payload", [IDENTITY.recipient], armored=True)
HEADER_END = VALID.index(b"\n---") + 1

_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"age-encryption.org/v1",
                b"-> X25519 ",
                b"-> scrypt ",
                b"--- ",
                b"",
                b"AAAA",
                b"-> ",
                b"---",
            ]
        ),
        st.binary(max_size=80),
    ),
    max_size=12,
)


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        if out:
            out[position % len(out)] = value
    return bytes(out)


@FUZZ
@given(st.binary(max_size=600))
def test_header_parser_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ConfvaultError):
        _format.parse_header(io.BytesIO(data))


@FUZZ
@given(_lines)
def test_header_parser_line_soup(lines: list[bytes]) -> None:
    with contextlib.suppress(ConfvaultError):
        _format.parse_header(io.BytesIO(b"\n".join(lines) + b"\n"))


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_decrypt_mutated_file(edits: list[tuple[int, int]]) -> None:
    data = _mutate(VALID, edits)
    try:
        plain = age.decrypt(data, [IDENTITY])
    except ConfvaultError:
        return
    assert plain == b"fuzz payload " * 50  # only a no-op mutation may succeed


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 127)), min_size=1, max_size=4
    )
)
def test_armor_mutated(edits: list[tuple[int, int]]) -> None:
    data = _mutate(ARMORED, edits)
    try:
        plain = age.decrypt(data, [IDENTITY])
    except ConfvaultError:
        return
    assert plain == b"fuzz payload"


@FUZZ
@given(st.binary(max_size=400))
def test_armor_reader_random(data: bytes) -> None:
    with contextlib.suppress(ConfvaultError):
        armor.open_armored(io.BytesIO(armor.BEGIN + b"\n" + data)).read()


@FUZZ
@given(st.binary(max_size=300), st.integers(0, 3000))
def test_stream_payload_random(tail: bytes, cut: int) -> None:
    data = VALID[: HEADER_END + 43 + 1] + tail if cut % 2 else VALID[: HEADER_END + cut]
    with contextlib.suppress(ConfvaultError):
        age.decrypt(data, [IDENTITY])


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=12,
)


@FUZZ
@given(_json_values)
def test_manifest_body_parser(doc: object) -> None:
    with contextlib.suppress(ConfvaultError):
        manifest.ManifestBody.from_json(doc)


@FUZZ
@given(st.binary(max_size=300))
def test_note_metadata_parser(line: bytes) -> None:
    entry = {"id": "0" * 16, "body_size": 0, "body_sha256": "0" * 64}
    with contextlib.suppress(ConfvaultError):
        note_format.parse_header(line)
    with contextlib.suppress(ConfvaultError):
        note_format.parse_recorded(line, entry)
    with contextlib.suppress(ConfvaultError):
        note_format.body_recorded(line, _ENTRY)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["id", "client", "kind", "status", "title", "compartment"]),
        _json_values,
        max_size=6,
    )
)
def test_note_metadata_fields(doc: dict[str, object]) -> None:
    # The index entry says the same as the note: only the field checks decide.
    with contextlib.suppress(ConfvaultError):
        note_format.parse_recorded(json.dumps(doc).encode() + b"\nbody", doc)


@FUZZ
@given(st.binary(max_size=200))
def test_sealed_document_parser(plain: bytes) -> None:
    sealed = age.encrypt(plain, [IDENTITY.recipient])
    with contextlib.suppress(ConfvaultError):
        sealing.open_document(sealed, [IDENTITY], "root")
