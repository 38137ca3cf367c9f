"""Every age test vector (tests/vectors/age and, for the post-quantum hybrid
type, tests/vectors/age-pq, copied from C2SP/CCTV) through decrypt.

Each vector asserts the exact failure class and the SHA-256 of everything the
decryptor released, including before a payload failure.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import (
    ArmorError,
    HeaderError,
    HeaderMacError,
    NoIdentityMatchError,
    PayloadError,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "age"
PQ_VECTORS = VECTORS.parent / "age-pq"
EXPECT = {
    "header failure": HeaderError,
    "HMAC failure": HeaderMacError,
    "payload failure": PayloadError,
    "armor failure": ArmorError,
    "no match": NoIdentityMatchError,
}
KNOWN_KEYS = {
    "expect",
    "payload",
    "identity",
    "passphrase",
    "armored",
    "compressed",
    "file key",
    "comment",
}


def _load(path: Path) -> tuple[dict[str, list[str]], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    fields: dict[str, list[str]] = {}
    for line in head.decode().splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return fields, body


def _vector_files(folder: Path = VECTORS) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name != "README.md")


def test_all_vectors_present() -> None:
    assert len(_vector_files()) == 94


def test_all_pq_vectors_present() -> None:
    assert [p.name for p in _vector_files(PQ_VECTORS)] == [
        "armor_hybrid",
        "hybrid",
        "hybrid_and_x25519",
        "hybrid_bad_tag",
        "hybrid_currupted_enc_x25519",
        "hybrid_extra_argument",
        "hybrid_identity",
        "hybrid_long_file_key",
        "hybrid_no_match",
        "hybrid_not_canonical_body",
    ]


@pytest.mark.parametrize(
    "path",
    _vector_files() + _vector_files(PQ_VECTORS),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_vector(path: Path) -> None:
    fields, body = _load(path)
    assert set(fields) <= KNOWN_KEYS, f"unknown keys in {path.name}"
    identities: list[age.Identity] = [
        age.parse_identity(text) for text in fields.get("identity", [])
    ]
    identities += [
        age.ScryptIdentity(text.encode()) for text in fields.get("passphrase", [])
    ]
    released = hashlib.sha256()
    expect = fields["expect"][0]

    def run() -> None:
        for chunk in age.decrypt_chunks(io.BytesIO(body), identities):
            released.update(chunk)

    if expect == "success":
        run()
    else:
        with pytest.raises(EXPECT[expect]):
            run()
    if "payload" in fields:
        assert released.hexdigest() == fields["payload"][0]
    elif expect != "success":
        # A failure with no payload recorded must release nothing at all.
        assert released.digest() == hashlib.sha256().digest()
