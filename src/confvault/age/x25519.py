"""The X25519 recipient type (C2SP age, "The X25519 recipient type")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from confvault.age import _bech32
from confvault.age._format import Stanza, b64decode, b64encode
from confvault.age._primitives import (
    aead_open_zero_nonce,
    aead_seal_zero_nonce,
    hkdf_sha256,
    random_bytes,
    x25519,
    x25519_base,
)
from confvault.errors import HeaderError, IncorrectIdentityError, KeyFormatError

X25519_LABEL = b"age-encryption.org/v1/X25519"
STANZA_TYPE = "X25519"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "AGE-SECRET-KEY-"
FILE_KEY_SIZE = 16
WRAPPED_SIZE = 32


@dataclass(frozen=True)
class X25519Recipient:
    """A public key, ``age1...``; anyone may seal files to it."""

    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise KeyFormatError("X25519 recipient must be 32 bytes")

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Wrap ``file_key`` in one fresh stanza (new ephemeral key each time)."""
        ephemeral = random_bytes(32)
        share = x25519_base(ephemeral)
        shared = x25519(ephemeral, self.public_key)
        wrap_key = hkdf_sha256(shared, share + self.public_key, X25519_LABEL)
        body = aead_seal_zero_nonce(wrap_key, file_key)
        return [Stanza(STANZA_TYPE, (b64encode(share),), body)]

    def __str__(self) -> str:
        return _bech32.encode(RECIPIENT_HRP, self.public_key)


@dataclass(frozen=True)
class X25519Identity:
    """A secret key, ``AGE-SECRET-KEY-1...``. Its repr never shows the key."""

    secret_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret_key) != 32:
            raise KeyFormatError("X25519 identity must be 32 bytes")

    @classmethod
    def generate(cls) -> X25519Identity:
        """A new identity from the CSPRNG."""
        return cls(random_bytes(32))

    @cached_property
    def _public_key(self) -> bytes:
        return x25519_base(self.secret_key)

    @property
    def recipient(self) -> X25519Recipient:
        """The public recipient of this identity."""
        return X25519Recipient(self._public_key)

    def encode(self) -> str:
        """The ``AGE-SECRET-KEY-1...`` string. Handle with care: it is the key."""
        return _bech32.encode(IDENTITY_HRP, self.secret_key)

    def agree(self, peer: X25519Recipient, label: bytes) -> bytes:
        """A 32-byte key that only this identity and ``peer``'s can compute.

        X25519 static-static agreement, then HKDF-SHA-256 with both public
        keys (sorted) as salt and ``label`` as info; the all-zero shared
        secret is refused (``HeaderError``). confvault uses it to authenticate a grantee's
        audit entries to the owner (not part of the age format).
        """
        shared = x25519(self.secret_key, peer.public_key)
        salt = b"".join(sorted((self._public_key, peer.public_key)))
        return hkdf_sha256(shared, salt, label)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes:
        """Return the file key from the first X25519 stanza addressed to us."""
        our_public = self._public_key
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            if len(stanza.args) != 1:
                raise HeaderError("X25519 stanza must have exactly one argument")
            share = b64decode(stanza.args[0])
            if len(share) != 32:
                raise HeaderError("X25519 share must be 32 bytes")
            if len(stanza.body) != WRAPPED_SIZE:
                raise HeaderError("X25519 stanza body must be 32 bytes")
            shared = x25519(self.secret_key, share)
            wrap_key = hkdf_sha256(shared, share + our_public, X25519_LABEL)
            file_key = aead_open_zero_nonce(wrap_key, stanza.body)
            if file_key is not None:
                return file_key
        raise IncorrectIdentityError("no X25519 stanza for this identity")


def parse_recipient(text: str) -> X25519Recipient:
    """Parse an ``age1...`` public key."""
    hrp, data = _bech32.decode(text.strip())
    if hrp != RECIPIENT_HRP:
        raise KeyFormatError("not an age X25519 recipient (age1...)")
    return X25519Recipient(data)


def parse_identity(text: str) -> X25519Identity:
    """Parse an ``AGE-SECRET-KEY-1...`` secret key."""
    hrp, data = _bech32.decode(text.strip())
    if hrp != IDENTITY_HRP:
        raise KeyFormatError("not an age X25519 identity (AGE-SECRET-KEY-1...)")
    return X25519Identity(data)
