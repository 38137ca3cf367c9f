"""Sealed JSON documents (root index, compartment indexes), and size padding.

Every sealed object is padded so its size says little: to a power of two of
at least 1 KiB up to 64 KiB, and above that to Padmé buckets (at most ~12%
overhead; see Nikitin et al., "Reducing Metadata Leakage from Encrypted
Files and Communication with PURBs").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache

from confvault import age
from confvault.errors import IntegrityError, KeyFormatError
from confvault.vault.store.documents import JSONObject

MIN_BUCKET = 1024
_POW2_LIMIT = 64 * 1024


def padded_size(n: int) -> int:
    """The bucket a plaintext of ``n`` bytes is padded up to."""
    if n <= MIN_BUCKET:
        return MIN_BUCKET
    if n <= _POW2_LIMIT:
        return 1 << (n - 1).bit_length()
    e = n.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def pad_text(data: bytes) -> bytes:
    """Pad a JSON document with trailing spaces (JSON ignores them)."""
    return data + b" " * (padded_size(len(data)) - len(data))


def encode_document(doc: Mapping[str, object]) -> bytes:
    """A JSON document as sealed: compact, keys sorted, UTF-8."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def seal_document(
    doc: Mapping[str, object], recipients: Sequence[age.Recipient]
) -> bytes:
    """A JSON document, padded, sealed to ``recipients``."""
    return age.encrypt(pad_text(encode_document(doc)), recipients)


def open_document(
    sealed: bytes, identities: Sequence[age.Identity], kind: str
) -> JSONObject:
    """Decrypt and parse a sealed document, checking its format tag."""
    plain = age.decrypt(sealed, identities)
    try:
        doc = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise IntegrityError(f"a sealed {kind} document is malformed") from err
    if not isinstance(doc, dict) or doc.get("format") != f"confvault/{kind}/v1":
        raise IntegrityError(f"a sealed {kind} document has the wrong format")
    return doc


# A client key file holds this many recipient stanzas, or a multiple of it:
# the owner, the compartment's grantees, and decoys (stanzas to random keys
# of the recipients' kind, which no one holds and which look like any other
# stanza: each stanza has its own ephemeral share, so reusing a decoy key
# shows in no file).
KEY_STANZAS = 8


@lru_cache(maxsize=1)
def _hybrid_decoys() -> tuple[age.HybridRecipient, ...]:
    """Post-quantum decoy keys, made once a process: a hybrid key pair costs
    an ML-KEM key generation, and no one keeps the secret halves."""
    return tuple(age.HybridIdentity.generate().recipient for _ in range(KEY_STANZAS))


def _decoys(recipients: Sequence[age.Recipient], count: int) -> list[age.Recipient]:
    if any(getattr(r, "labels", frozenset()) for r in recipients):
        return list(_hybrid_decoys()[:count])
    return [age.X25519Identity.generate().recipient for _ in range(count)]


def client_key_text(client_id: str, compartment: str, created: str, key: str) -> bytes:
    """The identity file a client key is sealed as (stock age reads it)."""
    return (
        f"# confvault client key\n# client: {client_id}\n"
        f"# compartment: {compartment}\n# created: {created}\n{key}\n"
    ).encode()


def _pad_identity_text(text: bytes) -> bytes:
    """Pad an identity file to its bucket with one trailing comment line.

    An earlier padding line (``#`` then only spaces) is dropped first, so
    re-sealing a key file opened from the vault gives the same size again.
    """
    lines = text.rstrip(b"\n").split(b"\n")
    while lines and lines[-1].startswith(b"#") and not lines[-1][1:].strip(b" "):
        lines.pop()
    core = b"\n".join(lines) + b"\n"
    total = padded_size(len(core) + 2)
    return core + b"#" + b" " * (total - len(core) - 2) + b"\n"


def seal_key_file(text: bytes, recipients: Sequence[age.Recipient]) -> bytes:
    """A client key file: padded to a bucket, and with a stanza count that is
    a multiple of ``KEY_STANZAS`` whatever the number of grantees."""
    decoys = _decoys(recipients, -len(recipients) % KEY_STANZAS)
    return age.encrypt(_pad_identity_text(text), [*recipients, *decoys])


def open_key_file(sealed: bytes, identities: Sequence[age.Identity]) -> age.AnyIdentity:
    """The client key a key file holds (``IntegrityError`` if it holds none)."""
    text = age.decrypt(sealed, identities)
    try:
        key = age.parse_identities(text.decode("utf-8"))[0]
    except (UnicodeDecodeError, IndexError, KeyFormatError) as err:
        raise IntegrityError("a client key file holds no key") from err
    return key
