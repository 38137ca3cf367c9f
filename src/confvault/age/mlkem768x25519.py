"""The hybrid post-quantum recipient type (C2SP age, "The MLKEM768-X25519 (i.e.
X-Wing) hybrid post-quantum recipient type").

The file key is sealed with HPKE SealBase (KEM MLKEM768-X25519, KDF
HKDF-SHA256, AEAD ChaCha20Poly1305, info ``age-encryption.org/mlkem768x25519``,
empty aad); the stanza is ``-> mlkem768x25519 base64(enc)`` and its body the
HPKE ciphertext. The HPKE itself lives in ``_hpke`` (pyca/cryptography).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import ClassVar

from confvault.age import _bech32, _hpke
from confvault.age._format import Stanza, b64decode, b64encode
from confvault.age._primitives import random_bytes
from confvault.errors import HeaderError, IncorrectIdentityError, KeyFormatError

MLKEM768X25519_LABEL = b"age-encryption.org/mlkem768x25519"  # the HPKE info
STANZA_TYPE = "mlkem768x25519"
RECIPIENT_HRP = "age1pq"
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
POSTQUANTUM = "postquantum"  # the label that keeps classic recipients out
FILE_KEY_SIZE = 16
WRAPPED_SIZE = 32  # the file key and its Poly1305 tag


@dataclass(frozen=True)
class HybridRecipient:
    """A post-quantum public key, ``age1pq1...``; anyone may seal files to it.

    It carries the ``postquantum`` label: ``encrypt`` refuses to seal a file
    to it and to a classic (X25519) recipient together, which would leave the
    file only as strong as X25519.
    """

    public_key: bytes
    labels: ClassVar[frozenset[str]] = frozenset({POSTQUANTUM})

    def __post_init__(self) -> None:
        self._key  # noqa: B018 (load it now: a bad key fails where it is parsed)

    @cached_property
    def _key(self) -> _hpke.HybridPublicKey:
        return _hpke.HybridPublicKey(self.public_key)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Wrap ``file_key`` in one fresh stanza (new encapsulation each time)."""
        enc, body = self._key.seal_base(file_key, MLKEM768X25519_LABEL)
        return [Stanza(STANZA_TYPE, (b64encode(enc),), body)]

    @cached_property
    def _text(self) -> str:
        return _bech32.encode(RECIPIENT_HRP, self.public_key)

    def __str__(self) -> str:
        return self._text


@dataclass(frozen=True)
class HybridIdentity:
    """A post-quantum secret key, ``AGE-SECRET-KEY-PQ-1...`` (a 32-byte seed).

    Its repr never shows the seed.
    """

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != _hpke.SEED_SIZE:
            raise KeyFormatError("hybrid identity must be a 32-byte seed")

    @classmethod
    def generate(cls) -> HybridIdentity:
        """A new identity from the CSPRNG."""
        return cls(random_bytes(_hpke.SEED_SIZE))

    @cached_property
    def _key(self) -> _hpke.HybridPrivateKey:
        return _hpke.HybridPrivateKey(self.seed)

    @cached_property
    def recipient(self) -> HybridRecipient:
        """The public recipient of this identity (made once: loading the
        ML-KEM key costs a third of a millisecond, and a vault seals many
        files to one client key)."""
        return HybridRecipient(self._key.public_key)

    def encode(self) -> str:
        """The ``AGE-SECRET-KEY-PQ-1...`` string. Handle with care: it is the key."""
        return _bech32.encode(IDENTITY_HRP, self.seed)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        """Return the file key from the first mlkem768x25519 stanza addressed to us."""
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            if len(stanza.args) != 1:
                raise HeaderError(
                    "mlkem768x25519 stanza must have exactly one argument"
                )
            enc = b64decode(stanza.args[0])
            if len(enc) != _hpke.ENC_SIZE:
                raise HeaderError("mlkem768x25519 share must be 1120 bytes")
            if len(stanza.body) != WRAPPED_SIZE:
                raise HeaderError("mlkem768x25519 stanza body must be 32 bytes")
            file_key = self._key.open_base(enc, stanza.body, MLKEM768X25519_LABEL)
            if file_key is not None:
                return file_key
        raise IncorrectIdentityError("no mlkem768x25519 stanza for this identity")


@lru_cache(maxsize=256)
def parse_recipient(text: str) -> HybridRecipient:
    """Parse an ``age1pq1...`` public key.

    Memoised: a recipient is a public, immutable value, and a vault parses the
    same few key strings again and again, while decoding 1,959 characters of
    bech32 and loading the ML-KEM key costs about a millisecond.
    """
    hrp, data = _bech32.decode(text.strip())
    if hrp != RECIPIENT_HRP:
        raise KeyFormatError("not an age post-quantum recipient (age1pq1...)")
    return HybridRecipient(data)


def parse_identity(text: str) -> HybridIdentity:
    """Parse an ``AGE-SECRET-KEY-PQ-1...`` secret key."""
    hrp, data = _bech32.decode(text.strip())
    if hrp != IDENTITY_HRP:
        raise KeyFormatError(
            "not an age post-quantum identity (AGE-SECRET-KEY-PQ-1...)"
        )
    return HybridIdentity(data)
